-- Production monitoring (events/inference_logged) and the reference profiles it is compared with
-- (events/profile_logged): one row per window, and one per feature of a window or a profile, holding
-- the feature's counts per bucket (schemas/sketch.py) or per category as arrays. Drift is computed
-- from them at read time (api/monitoring/drift.py), so a new reference or statistic needs no backfill.

CREATE TABLE IF NOT EXISTS inference_windows (
    model_name String,
    version Int64,
    environment String,
    window_start Int64,
    window_end Int64,
    requests UInt64,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (model_name, version, environment, window_start, event_id);

CREATE TABLE IF NOT EXISTS inference_features (
    model_name String,
    version Int64,
    environment String,
    window_start Int64,
    event_id FixedString(16),
    feature String,
    kind LowCardinality(String),            -- number | category
    count UInt64,
    missing UInt64,
    sum Float64,
    buckets Array(Int32),
    bucket_counts Array(UInt64),
    categories Array(String),
    category_counts Array(UInt64)
) ENGINE = ReplacingMergeTree ORDER BY (model_name, version, environment, feature, window_start, event_id);

CREATE TABLE IF NOT EXISTS profile_features (
    run_id String,
    name String,                            -- the profile's name: training, validation, ...
    event_time Int64,
    seq Int64,
    event_id FixedString(16),
    feature String,
    kind LowCardinality(String),
    count UInt64,
    missing UInt64,
    sum Float64,
    buckets Array(Int32),
    bucket_counts Array(UInt64),
    categories Array(String),
    category_counts Array(UInt64)
) ENGINE = ReplacingMergeTree ORDER BY (run_id, name, feature, event_time, event_id);
