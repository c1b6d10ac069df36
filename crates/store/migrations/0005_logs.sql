-- CloudWatch Logs: per log group settings. The groups themselves are
-- directories of the log store; a row exists only once a retention
-- policy was set.
CREATE TABLE log_group_settings (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    retention_days BIGINT,
    PRIMARY KEY (account, region, log_group)
);
