-- Registry metadata: repositories, blobs and their links, manifests, tags, uploads.
-- Column types are chosen to read the same on SQLite and PostgreSQL (BLOB becomes
-- BYTEA in the PostgreSQL twin of this file). Times are epoch milliseconds.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE repositories (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    tag_mutability TEXT NOT NULL,
    scan_on_push BIGINT NOT NULL,
    encryption_type TEXT NOT NULL,
    kms_key TEXT,
    tags_json TEXT NOT NULL,
    lifecycle_policy TEXT,
    lifecycle_updated_ms BIGINT,
    repository_policy TEXT,
    UNIQUE (account, region, name)
);
CREATE INDEX repositories_by_name ON repositories (account, name);

CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE repo_blobs (
    repo_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    linked_at_ms BIGINT NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_by_digest ON repo_blobs (digest);

CREATE TABLE manifests (
    repo_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    content BLOB NOT NULL,
    image_size BIGINT NOT NULL,
    pushed_at_ms BIGINT NOT NULL,
    last_pull_ms BIGINT,
    annotations_json TEXT,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repo_id, subject);

CREATE TABLE manifest_refs (
    repo_id TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    child_digest TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, kind, child_digest)
);
CREATE INDEX manifest_refs_by_child ON manifest_refs (repo_id, child_digest);

CREATE TABLE tags (
    repo_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (repo_id, tag)
);
CREATE INDEX tags_by_digest ON tags (repo_id, digest);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repo_id TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL
);
