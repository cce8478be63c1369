-- Deployment records (events/model_deployed, model_undeployed): which version of a model serves in
-- which environment since when, as a deploy tool reports it. version 0: nothing serves there any more.
-- A model's events share a log partition, so (event_time, seq) orders them.

CREATE TABLE IF NOT EXISTS model_deployments (
    registered_model_id String,
    environment String,
    version Int64,
    note String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16),
    user String
) ENGINE = ReplacingMergeTree ORDER BY (registered_model_id, environment, event_time, event_id);
