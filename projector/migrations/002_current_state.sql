-- Current state, folded as it is written: every run, param and tag event also becomes one row of a
-- state table whose columns are min/max folds over (event_time, log offset, values...) tuples, so a
-- read takes one row per run or key (FINAL) instead of grouping every event. The folds are the
-- views' rules of 001, unchanged; each is idempotent, so replayed events never change an answer.
-- A tuple's first elements order it: an event that does not set a field sorts where it never wins.
-- Parts older than a minute are merged even when small, so FINAL has little left to merge.

CREATE TABLE IF NOT EXISTS run_state (
    run_id String,
    -- (event_time, seq, experiment_id, run_name, user_id, parent_run_id, artifact_uri) of the first
    created SimpleAggregateFunction(min, Tuple(Int64, Int64, String, Nullable(String), Nullable(String),
        Nullable(String), Nullable(String))),
    start_time SimpleAggregateFunction(min, Nullable(Int64)),  -- ranks each create the run: the earliest
    name_set SimpleAggregateFunction(max, Tuple(Int64, Int64, Nullable(String))),
    status_set SimpleAggregateFunction(max, Tuple(Int64, Int64, Nullable(String))),
    end_set SimpleAggregateFunction(max, Tuple(Int64, Int64, Nullable(Int64))),
    lifecycle SimpleAggregateFunction(max, Tuple(Int64, Int64, UInt8))  -- (.., deleted)
) ENGINE = AggregatingMergeTree ORDER BY run_id
SETTINGS min_age_to_force_merge_seconds = 60;

-- Key first: a search on a param or tag reads one key's range.
CREATE TABLE IF NOT EXISTS param_state (
    key String,
    run_id String,
    first SimpleAggregateFunction(min, Tuple(Int64, Int64, String))  -- the first value logged wins
) ENGINE = AggregatingMergeTree ORDER BY (key, run_id)
SETTINGS min_age_to_force_merge_seconds = 60;

CREATE TABLE IF NOT EXISTS tag_state (
    key String,
    run_id String,
    latest SimpleAggregateFunction(max, Tuple(Int64, Int64, UInt8, String))  -- (.., deleted, value)
) ENGINE = AggregatingMergeTree ORDER BY (key, run_id)
SETTINGS min_age_to_force_merge_seconds = 60;

ALTER TABLE metric_summary MODIFY SETTING min_age_to_force_merge_seconds = 60;

INSERT INTO run_state SELECT
    run_id,
    if(kind = 'created', (event_time, seq, experiment_id, run_name, user_id, parent_run_id, artifact_uri),
        (9223372036854775807, 0, '', NULL, NULL, NULL, NULL)),
    if(kind = 'created', start_time, NULL),
    if(kind = 'updated' AND run_name IS NOT NULL, (event_time, seq, run_name), (-9223372036854775808, 0, NULL)),
    if(kind = 'updated' AND status IS NOT NULL, (event_time, seq, status), (-9223372036854775808, 0, NULL)),
    if(kind = 'updated' AND end_time IS NOT NULL, (event_time, seq, end_time), (-9223372036854775808, 0, NULL)),
    if(kind IN ('deleted', 'restored'), (event_time, seq, kind = 'deleted'), (-9223372036854775808, 0, 0))
FROM run_events;

INSERT INTO param_state SELECT key, run_id, (event_time, seq, value) FROM run_params;

INSERT INTO tag_state SELECT key, run_id, (event_time, seq, deleted, value) FROM run_tags;

CREATE OR REPLACE VIEW runs_view AS
SELECT
    run_id,
    created.3 AS experiment_id,
    coalesce(name_set.3, created.4) AS run_name,
    coalesce(created.5, '') AS user_id,
    start_time,
    end_set.3 AS end_time,
    coalesce(status_set.3, 'RUNNING') AS status,
    created.6 AS parent_run_id,
    created.7 AS artifact_uri,
    lifecycle.3 AS deleted
FROM run_state FINAL
WHERE created.1 < 9223372036854775807;

CREATE OR REPLACE VIEW run_params_view AS
SELECT run_id, key, first.3 AS value FROM param_state FINAL;

CREATE OR REPLACE VIEW run_tags_view AS
SELECT run_id, key, latest.4 AS value FROM tag_state FINAL WHERE latest.3 = 0;
