-- Ids are never reused (AUTOINCREMENT): the event log and scripts name
-- objects by id, and a deleted task's id must not come back as another.
-- Times are Unix seconds (UTC). Status columns hold the lowercase words of
-- the command-line contract so the database reads like the JSON.

CREATE TABLE packages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL,
    version           TEXT,
    kind              TEXT    NOT NULL CHECK (kind IN ('install', 'file')),
    format            TEXT    NOT NULL CHECK (format IN ('msi', 'exe', 'zip', 'file')),
    size              INTEGER NOT NULL,
    hash              TEXT    NOT NULL,
    sha256            TEXT    NOT NULL,
    file_name         TEXT    NOT NULL,
    install_command   TEXT,
    uninstall_command TEXT,
    folder            TEXT,
    success_codes     TEXT    NOT NULL,
    installer         TEXT,
    product_code      TEXT,
    unzipped_size     INTEGER,
    entries           INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX packages_by_hash ON packages (hash);

CREATE TABLE destinations (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'online', 'offline', 'rejected')),
    os               TEXT,
    hostname         TEXT,
    agent_version    TEXT,
    cert_fingerprint TEXT UNIQUE,
    token_id         INTEGER,
    -- Set by 'dest move': the agent re-enrols with this server and token,
    -- then leaves this one.
    move_to          TEXT,
    move_token       TEXT,
    last_seen        INTEGER,
    created_at       INTEGER NOT NULL
);

CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    type         TEXT    NOT NULL CHECK (type IN ('install', 'uninstall')),
    class        TEXT    NOT NULL CHECK (class IN ('admin', 'countermeasure')),
    -- Kept when the package is deleted later, so finished tasks still say
    -- what they distributed.
    package_id   INTEGER REFERENCES packages (id) ON DELETE SET NULL,
    package_name TEXT    NOT NULL,
    policy_id    INTEGER,
    start_at     INTEGER,
    -- Daily window "HH:MM-HH:MM" (server local time) outside which no new
    -- installation starts; NULL for any time.
    window       TEXT,
    created_at   INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX tasks_by_package ON tasks (package_id);

CREATE TABLE task_destinations (
    task_id        INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    destination_id INTEGER NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    status         TEXT    NOT NULL CHECK (status IN ('waiting', 'transferring', 'installing',
                                                      'succeeded', 'failed', 'cancelled')),
    attempt        INTEGER NOT NULL DEFAULT 0,
    exit_code      INTEGER,
    message        TEXT,
    output         TEXT,
    -- Bytes the agent downloaded for this attempt, resumed requests included.
    transferred    INTEGER NOT NULL DEFAULT 0,
    reboot_required INTEGER NOT NULL DEFAULT 0,
    -- Automatic retries of transient failures in this attempt chain.
    retries        INTEGER NOT NULL DEFAULT 0,
    -- A retried destination is not handed out before this time.
    not_before     INTEGER,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (task_id, destination_id)
);
CREATE INDEX task_destinations_by_destination ON task_destinations (destination_id, status);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    level   TEXT    NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    kind    TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    message TEXT    NOT NULL
);

-- Enrolment tokens. Only a digest of the secret is kept.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    digest       TEXT    NOT NULL UNIQUE,
    auto_approve INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    uses         INTEGER NOT NULL DEFAULT 0
);
