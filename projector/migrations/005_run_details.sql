-- A run's params, tags and latest metrics ordered by run, for pages of runs: 100 random run ids
-- touched every granule of the key-ordered state tables (a scan of ~1M rows per page); here they
-- read ~100 granules of 64 rows, in compressed blocks of a few KB (a 64 KB-1 MB block per column
-- and granule would be decompressed otherwise, most of such a read's time). A projection ordered by
-- run_id would not do: FINAL reads ignore projections, and at 8192 rows a granule 100 random runs
-- still touch every one.
-- Kept by materialized views from the state tables, so the projector writes nothing new; a row
-- sets only its kind's column (kind is in the key, so the others never fold with real values).
-- The folds are those of 001/002, idempotent, so an event counted twice changes nothing.

CREATE TABLE IF NOT EXISTS run_details (
    run_id String,
    kind UInt8,  -- 0 param, 1 tag, 2 metric
    key String,
    param SimpleAggregateFunction(min, Tuple(Int64, Int64, String)),
    tag SimpleAggregateFunction(max, Tuple(Int64, Int64, UInt8, String)),  -- (.., deleted, value)
    metric SimpleAggregateFunction(max, Tuple(Int64, Int64, Float64))  -- (step, timestamp, value)
) ENGINE = AggregatingMergeTree ORDER BY (run_id, kind, key)
SETTINGS index_granularity = 64, min_compress_block_size = 1024, max_compress_block_size = 4096,
    min_age_to_force_merge_seconds = 60;

CREATE MATERIALIZED VIEW IF NOT EXISTS run_details_params TO run_details
AS SELECT run_id, 0 AS kind, key, first AS param FROM param_state;

CREATE MATERIALIZED VIEW IF NOT EXISTS run_details_tags TO run_details
AS SELECT run_id, 1 AS kind, key, latest AS tag FROM tag_state;

CREATE MATERIALIZED VIEW IF NOT EXISTS run_details_metrics TO run_details
AS SELECT run_id, 2 AS kind, CAST(key, 'String') AS key, latest AS metric FROM metric_summary;

-- After the views: a row written meanwhile is in both, which the folds absorb.
INSERT INTO run_details (run_id, kind, key, param) SELECT run_id, 0, key, first FROM param_state;

INSERT INTO run_details (run_id, kind, key, tag) SELECT run_id, 1, key, latest FROM tag_state;

INSERT INTO run_details (run_id, kind, key, metric) SELECT run_id, 2, key, latest FROM metric_summary;
