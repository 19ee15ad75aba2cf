-- Groups (everything but their apps and subgroups, which are found by id) and the versions of
-- the whole tree: each names the groups as they were and the version of every app then.
CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL
);

CREATE TABLE root_versions (
    version TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL
);
