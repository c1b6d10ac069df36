-- IAM: roles, customer managed policies with their versions, role to
-- managed policy attachments and inline role policies. IAM is global: rows
-- belong to an account, not a region. Names are unique per account without
-- regard to case, so each table keys on the lowercased name (`name_key`)
-- and keeps the name as created.

CREATE TABLE iam_roles (
    account TEXT NOT NULL,
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    path TEXT NOT NULL,
    assume_role_policy TEXT NOT NULL,
    description TEXT,
    max_session_duration BIGINT NOT NULL,
    tags_json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account, name_key)
);

CREATE TABLE iam_policies (
    account TEXT NOT NULL,
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    path TEXT NOT NULL,
    arn TEXT NOT NULL,
    description TEXT,
    default_version BIGINT NOT NULL,
    tags_json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account, name_key)
);

CREATE TABLE iam_policy_versions (
    account TEXT NOT NULL,
    policy_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account, policy_key, version)
);

-- `policy_arn` names an AWS managed policy or a customer one of the same
-- account; the store does not interpret it.
CREATE TABLE iam_role_attachments (
    account TEXT NOT NULL,
    role_key TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    attached_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account, role_key, policy_arn)
);

CREATE INDEX iam_role_attachments_by_policy ON iam_role_attachments (account, policy_arn);

CREATE TABLE iam_role_inline_policies (
    account TEXT NOT NULL,
    role_key TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (account, role_key, name)
);
