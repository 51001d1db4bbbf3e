-- Security policies and the countermeasure tasks they create, and
-- uninstallation from the inventory (no package needed).

-- `kind` mandatory: `software` must be installed, at `min_version` or
-- later, else `package_id` is installed; prohibited: programs whose name
-- matches the glob `software` are uninstalled; update: `package_id` is
-- installed wherever it is missing. `enforce` 0 keeps the policy (and
-- shows its violations) without a countermeasure task.
CREATE TABLE policies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    kind        TEXT    NOT NULL CHECK (kind IN ('mandatory', 'prohibited', 'update')),
    software    TEXT,
    min_version TEXT,
    package_id  INTEGER REFERENCES packages (id),
    enforce     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX policies_by_package ON policies (package_id);
CREATE INDEX tasks_by_policy ON tasks (policy_id);

-- An uninstallation from the inventory names the program (and version)
-- instead of a package; each destination runs the removal command its
-- own inventory gave, kept on its row.
ALTER TABLE tasks ADD COLUMN software TEXT;
ALTER TABLE tasks ADD COLUMN software_version TEXT;
ALTER TABLE task_destinations ADD COLUMN command TEXT;
