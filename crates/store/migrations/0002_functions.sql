-- Lambda functions. A function's configurations ($LATEST and published
-- versions) are stored as JSON documents owned by the functions crate;
-- the columns are what queries filter or sort on.

CREATE TABLE functions (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    latest_json TEXT NOT NULL,
    next_version BIGINT NOT NULL,
    reserved_concurrency BIGINT,
    tags_json TEXT NOT NULL,
    policy_json TEXT,
    UNIQUE (account, region, name)
);

CREATE TABLE function_versions (
    function_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    config_json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (function_id, version)
);

CREATE TABLE function_aliases (
    function_id TEXT NOT NULL,
    name TEXT NOT NULL,
    config_json TEXT NOT NULL,
    PRIMARY KEY (function_id, name)
);
