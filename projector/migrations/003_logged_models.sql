-- MLflow 3 logged models: their events, tags, params and files, and the models each run produced.
-- Keyed like the run tables: a replayed event collapses into its first copy; reads fold by
-- (event_time, seq).

CREATE TABLE IF NOT EXISTS logged_model_events (
    model_id String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16),
    kind LowCardinality(String),            -- created | finalized | deleted
    experiment_id String,                   -- set by 'created' only, as are the next five
    name Nullable(String),
    model_type Nullable(String),
    source_run_id Nullable(String),
    artifact_uri Nullable(String),
    status Nullable(String),                -- 'finalized': PENDING | READY | FAILED
    status_message Nullable(String)
) ENGINE = ReplacingMergeTree ORDER BY (model_id, event_time, event_id);

CREATE TABLE IF NOT EXISTS logged_model_tags (
    model_id String,
    key String,
    value String,
    deleted UInt8,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (model_id, key, event_time, event_id);

CREATE TABLE IF NOT EXISTS logged_model_params (
    model_id String,
    key String,
    value String,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (model_id, key, event_time, event_id);

CREATE TABLE IF NOT EXISTS model_artifacts (
    model_id String,
    path String,
    size UInt64,
    sha256 String,
    uri String,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (model_id, path, event_time, event_id);

CREATE TABLE IF NOT EXISTS run_outputs (
    run_id String,
    model_id String,
    step Int64,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, model_id, step, event_time, event_id);

-- One row per model: the first creation's fields, the latest status, deleted once deleted.
CREATE OR REPLACE VIEW logged_models_view AS
SELECT
    model_id,
    argMinIf(experiment_id, (event_time, seq), kind = 'created') AS experiment_id,
    argMinIf(name, (event_time, seq), kind = 'created') AS name,
    argMinIf(model_type, (event_time, seq), kind = 'created') AS model_type,
    argMinIf(source_run_id, (event_time, seq), kind = 'created') AS source_run_id,
    argMinIf(artifact_uri, (event_time, seq), kind = 'created') AS artifact_uri,
    coalesce(argMaxIf(status, (event_time, seq), kind = 'finalized'), 'PENDING') AS status,
    argMaxIf(status_message, (event_time, seq), kind = 'finalized') AS status_message,
    minIf(event_time, kind = 'created') AS creation_timestamp,
    max(event_time) AS last_updated_timestamp,
    toUInt8(countIf(kind = 'deleted') > 0) AS deleted
FROM logged_model_events FINAL
GROUP BY model_id
HAVING countIf(kind = 'created') > 0;

CREATE OR REPLACE VIEW logged_model_tags_view AS
SELECT model_id, key, argMax(value, (event_time, seq)) AS value
FROM logged_model_tags FINAL
GROUP BY model_id, key
HAVING argMax(deleted, (event_time, seq)) = 0;

-- The first value logged wins, as for run params.
CREATE OR REPLACE VIEW logged_model_params_view AS
SELECT model_id, key, argMin(value, (event_time, seq)) AS value
FROM logged_model_params FINAL
GROUP BY model_id, key;
