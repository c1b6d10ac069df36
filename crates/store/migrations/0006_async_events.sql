-- Asynchronous (Event) invocations accepted and not yet finished, so that a
-- restarted server delivers them again. The payload is the event's JSON.
CREATE TABLE async_events (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    function_ref TEXT NOT NULL,
    qualifier TEXT,
    payload TEXT NOT NULL,
    client_context TEXT,
    received_ms BIGINT NOT NULL
);
