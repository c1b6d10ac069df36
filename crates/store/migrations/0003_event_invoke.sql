-- Asynchronous invocation settings (PutFunctionEventInvokeConfig), per
-- function, as a JSON document owned by the functions crate.
ALTER TABLE functions ADD COLUMN event_invoke_json TEXT;
