-- Every table holds facts from events; the views fold them into current state. Facts are keyed so
-- that a replayed event collapses into its first copy (ReplacingMergeTree), and every fold is
-- idempotent (latest/first by event time, min, max), so duplicates never change an answer.

CREATE TABLE IF NOT EXISTS experiment_events (
    experiment_id String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16),
    kind LowCardinality(String),            -- created | renamed | deleted | restored
    name Nullable(String),
    artifact_location Nullable(String)
) ENGINE = ReplacingMergeTree ORDER BY (experiment_id, event_time, event_id);

CREATE TABLE IF NOT EXISTS experiment_tags (
    experiment_id String,
    key String,
    value String,
    deleted UInt8,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (experiment_id, key, event_time, event_id);

CREATE TABLE IF NOT EXISTS run_events (
    run_id String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16),
    kind LowCardinality(String),            -- created | updated | deleted | restored
    experiment_id String,                   -- set by 'created' only
    run_name Nullable(String),
    user_id Nullable(String),
    start_time Nullable(Int64),
    parent_run_id Nullable(String),
    artifact_uri Nullable(String),
    status Nullable(String),
    end_time Nullable(Int64)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, event_time, event_id);

CREATE TABLE IF NOT EXISTS run_params (
    run_id String,
    key String,
    value String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, key, event_time, event_id);

CREATE TABLE IF NOT EXISTS run_tags (
    run_id String,
    key String,
    value String,
    deleted UInt8,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, key, event_time, event_id);

-- Points are stored once: each row records the log position of its message, and a restarted
-- projector skips metric messages at or below the highest position already stored (the projection
-- answers that without a scan, and is written atomically with each insert). A point's identity is
-- all of it (as in MLflow's own metrics table), so anything re-sent collapses on merge as well.
CREATE TABLE IF NOT EXISTS metrics (
    run_id String,
    key LowCardinality(String),
    step Int64 CODEC(Delta, ZSTD(1)),
    timestamp Int64 CODEC(Delta, ZSTD(1)),
    rank UInt32,
    value Float64,
    node LowCardinality(String),
    src_partition UInt32,
    src_offset Int64 CODEC(Delta, ZSTD(1)),
    PROJECTION applied (SELECT src_partition, max(src_offset) GROUP BY src_partition)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, key, step, timestamp, rank, value)
SETTINGS deduplicate_merge_projection_mode = 'rebuild';

-- Derived from the points by the projector (projector/points.py) in the same flush, each row
-- marked with the log position of its newest point so a replay never adds a point twice.

-- Per key and run: MLflow's "latest" point (the greatest (step, timestamp, value), so its value is
-- latest.3), min, max (NaN ignored) and the number of points. Key first: a search on one metric
-- reads one key's range.
CREATE TABLE IF NOT EXISTS metric_summary (
    key LowCardinality(String),
    run_id String,
    latest SimpleAggregateFunction(max, Tuple(Int64, Int64, Float64)),
    min_value SimpleAggregateFunction(min, Float64),
    max_value SimpleAggregateFunction(max, Float64),
    points SimpleAggregateFunction(sum, UInt64),
    src_partition SimpleAggregateFunction(any, UInt32),
    src_offset SimpleAggregateFunction(max, Int64),
    PROJECTION applied (SELECT src_partition, max(src_offset) GROUP BY src_partition)
) ENGINE = AggregatingMergeTree ORDER BY (key, run_id)
SETTINGS deduplicate_merge_projection_mode = 'rebuild';

-- Points rolled up per block of 64 steps (block = floor(step / 64)) per run, key and rank, so a
-- chart over millions of points reads 64 times fewer rows. first/last_point: the (step, timestamp,
-- rank, value) with the least/greatest position; low/high_point: (value, step) of the extremes, NaN
-- read as +inf/-inf so it never wins (a block with no number has finite = 0); total/finite: sum and
-- count of the non-NaN values.
CREATE TABLE IF NOT EXISTS metric_rollup (
    run_id String,
    key LowCardinality(String),
    rank UInt32,
    block Int64,
    first_point SimpleAggregateFunction(min, Tuple(Int64, Int64, UInt32, Float64)),
    last_point SimpleAggregateFunction(max, Tuple(Int64, Int64, UInt32, Float64)),
    low_point SimpleAggregateFunction(min, Tuple(Float64, Int64)),
    high_point SimpleAggregateFunction(max, Tuple(Float64, Int64)),
    total SimpleAggregateFunction(sum, Float64),
    finite SimpleAggregateFunction(sum, UInt64),
    points SimpleAggregateFunction(sum, UInt64),
    src_partition SimpleAggregateFunction(any, UInt32),
    src_offset SimpleAggregateFunction(max, Int64),
    PROJECTION applied (SELECT src_partition, max(src_offset) GROUP BY src_partition)
) ENGINE = AggregatingMergeTree ORDER BY (run_id, key, rank, block)
SETTINGS deduplicate_merge_projection_mode = 'rebuild';

CREATE TABLE IF NOT EXISTS run_artifacts (
    run_id String,
    path String,
    size UInt64,
    sha256 String,
    uri String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, path, event_time, event_id);

CREATE TABLE IF NOT EXISTS run_inputs (
    run_id String,
    name String,
    digest String,
    source_type String,
    source String,
    schema Nullable(String),
    profile Nullable(String),
    tags Map(String, String),
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, name, digest, event_time, event_id);

CREATE TABLE IF NOT EXISTS dead_letters (
    received_at DateTime64(3),
    source String,                          -- consumer group
    partition UInt32,
    offset Int64,
    reason String,
    payload String
) ENGINE = MergeTree ORDER BY (received_at, partition, offset);

-- How far each partition has been applied; the read API waits on it for read-your-writes.
CREATE TABLE IF NOT EXISTS projector_progress (
    consumer_group String,
    partition UInt32,
    offset Int64,                           -- last applied offset
    updated_at DateTime64(3)
) ENGINE = ReplacingMergeTree(offset) ORDER BY (consumer_group, partition);

CREATE VIEW IF NOT EXISTS experiments_view AS
SELECT
    experiment_id,
    coalesce(argMaxIf(name, (event_time, seq), kind = 'renamed'), argMinIf(name, (event_time, seq), kind = 'created')) AS name,
    argMinIf(artifact_location, (event_time, seq), kind = 'created') AS artifact_location,
    minIf(event_time, kind = 'created') AS creation_time,
    max(event_time) AS last_update_time,
    argMaxIf(kind, (event_time, seq), kind IN ('deleted', 'restored')) = 'deleted' AS deleted
FROM experiment_events
GROUP BY experiment_id
HAVING countIf(kind = 'created') > 0;

CREATE VIEW IF NOT EXISTS runs_view AS
SELECT
    run_id,
    argMinIf(experiment_id, (event_time, seq), kind = 'created') AS experiment_id,
    coalesce(argMaxIf(run_name, (event_time, seq), kind = 'updated'), argMinIf(run_name, (event_time, seq), kind = 'created')) AS run_name,
    coalesce(argMinIf(user_id, (event_time, seq), kind = 'created'), '') AS user_id,
    minIf(start_time, kind = 'created') AS start_time,
    argMaxIf(end_time, (event_time, seq), kind = 'updated') AS end_time,
    coalesce(argMaxIf(status, (event_time, seq), kind = 'updated'), 'RUNNING') AS status,
    argMinIf(parent_run_id, (event_time, seq), kind = 'created') AS parent_run_id,
    argMinIf(artifact_uri, (event_time, seq), kind = 'created') AS artifact_uri,
    argMaxIf(kind, (event_time, seq), kind IN ('deleted', 'restored')) = 'deleted' AS deleted
FROM run_events
GROUP BY run_id
HAVING countIf(kind = 'created') > 0;

CREATE VIEW IF NOT EXISTS run_params_view AS
SELECT run_id, key, argMin(value, (event_time, seq)) AS value
FROM run_params GROUP BY run_id, key;

CREATE VIEW IF NOT EXISTS run_tags_view AS
SELECT run_id, key, argMax(value, (event_time, seq)) AS value
FROM run_tags GROUP BY run_id, key
HAVING argMax(deleted, (event_time, seq)) = 0;

CREATE VIEW IF NOT EXISTS experiment_tags_view AS
SELECT experiment_id, key, argMax(value, (event_time, seq)) AS value
FROM experiment_tags GROUP BY experiment_id, key
HAVING argMax(deleted, (event_time, seq)) = 0;
