-- MLflow 3: metric points logged against a logged model (for a dataset or none: ''), and the logged
-- models a run took as inputs. Keyed like the other event tables: a replayed event collapses.

CREATE TABLE IF NOT EXISTS logged_model_metrics (
    model_id String,
    key String,
    step Int64,
    timestamp Int64,
    run_id String,
    dataset_name String,
    dataset_digest String,
    value Float64,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (model_id, key, step, timestamp, run_id, dataset_name, dataset_digest, value, event_id);

CREATE TABLE IF NOT EXISTS run_model_inputs (
    run_id String,
    model_id String,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, model_id, event_time, event_id);
