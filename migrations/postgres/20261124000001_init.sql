-- Stride's state. Definitions and instances are kept as JSON documents of the shared model types;
-- the columns beside them are what queries and keys need.
CREATE TABLE framework (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    definition TEXT NOT NULL
);

CREATE TABLE app_versions (
    app_id TEXT NOT NULL,
    version TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (app_id, version)
);

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX instances_app ON instances (app_id);

CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
