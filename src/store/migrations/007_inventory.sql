-- Each destination's software inventory, as its agent last sent it: one
-- row per installed program, replaced whole when the agent's digest of
-- it changes. Names compare without regard to case (policies and
-- `software list --name` match them so).
CREATE TABLE software (
    destination_id INTEGER NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL COLLATE NOCASE,
    version        TEXT,
    publisher      TEXT,
    -- Where the agent read it: registry, dpkg, rpm.
    source         TEXT    NOT NULL,
    -- The Windows Installer ProductCode, when the entry is one.
    product_code   TEXT,
    -- The command that removes it, and whether it runs without asking.
    uninstall      TEXT,
    quiet          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX software_by_destination ON software (destination_id);
CREATE INDEX software_by_name ON software (name);

-- The digest of the inventory held, and when it came.
ALTER TABLE destinations ADD COLUMN inventory_digest TEXT;
ALTER TABLE destinations ADD COLUMN inventory_at INTEGER;
