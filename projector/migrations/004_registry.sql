-- The model registry: every change is a row here, keyed so a replayed event collapses into its first
-- copy. A model is named by a stable registered_model_id (its name can change; a name deleted and
-- created again is a new model), and all its events share one log partition, so (event_time, seq)
-- orders them. The views fold the events into current state as the views of 001 do: registry
-- changes are few (people, not training loops, make them), so a fold per read stays cheap and no
-- state table is kept. The event tables are the history that MLflow does not keep: who moved which
-- alias or stage, and when.

CREATE TABLE IF NOT EXISTS registered_model_events (
    registered_model_id String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16),
    kind LowCardinality(String),            -- created | renamed | updated | deleted
    name Nullable(String),                  -- created, renamed
    description String,                     -- created, updated
    user String
) ENGINE = ReplacingMergeTree ORDER BY (registered_model_id, event_time, event_id);

CREATE TABLE IF NOT EXISTS registered_model_tags (
    registered_model_id String,
    key String,
    value String,
    deleted UInt8,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (registered_model_id, key, event_time, event_id);

-- version 0: the alias was deleted (versions start at 1).
CREATE TABLE IF NOT EXISTS registered_model_aliases (
    registered_model_id String,
    alias String,
    version Int64,
    event_time Int64,
    seq Int64,
    event_id FixedString(16),
    user String
) ENGINE = ReplacingMergeTree ORDER BY (registered_model_id, alias, event_time, event_id);

CREATE TABLE IF NOT EXISTS model_version_events (
    registered_model_id String,
    version Int64,
    event_time Int64,
    seq Int64,
    event_id FixedString(16),
    kind LowCardinality(String),            -- created | updated | deleted | stage
    source String,                          -- created only, as are run_id, run_link, logged_model_id
    run_id String,
    run_link String,
    logged_model_id String,
    description String,                     -- created, updated
    stage String,                           -- stage
    user String
) ENGINE = ReplacingMergeTree ORDER BY (registered_model_id, version, event_time, event_id);

CREATE TABLE IF NOT EXISTS model_version_tags (
    registered_model_id String,
    version Int64,
    key String,
    value String,
    deleted UInt8,
    event_time Int64,
    seq Int64,
    event_id FixedString(16)
) ENGINE = ReplacingMergeTree ORDER BY (registered_model_id, version, key, event_time, event_id);

CREATE OR REPLACE VIEW registered_models_view AS
SELECT
    registered_model_id,
    coalesce(argMaxIf(name, (event_time, seq), kind = 'renamed'), argMinIf(name, (event_time, seq), kind = 'created')) AS name,
    argMinIf(user, (event_time, seq), kind = 'created') AS user_id,
    argMaxIf(description, (event_time, seq), kind IN ('created', 'updated')) AS description,
    minIf(event_time, kind = 'created') AS creation_time,
    max(event_time) AS last_update_time,
    countIf(kind = 'deleted') > 0 AS deleted
FROM (
    SELECT registered_model_id, event_time, seq, kind, name, description, user FROM registered_model_events
    UNION ALL
    -- as in MLflow, a change to a version (not to a tag or an alias) updates its model too
    SELECT registered_model_id, event_time, seq, 'version', NULL, '', '' FROM model_version_events
)
GROUP BY registered_model_id
HAVING countIf(kind = 'created') > 0;

-- A version's creation is the first 'created' event of its number in the log (a model's events share
-- a partition, so seq orders them), whatever the writers' clocks say: a writer whose claim of a
-- number came later sees it lost and claims the next (ingest/mlflow_registry.py).
CREATE OR REPLACE VIEW model_versions_view AS
SELECT
    registered_model_id,
    version,
    argMinIf(source, seq, kind = 'created') AS source,
    argMinIf(run_id, seq, kind = 'created') AS run_id,
    argMinIf(run_link, seq, kind = 'created') AS run_link,
    argMinIf(logged_model_id, seq, kind = 'created') AS logged_model_id,
    argMinIf(user, seq, kind = 'created') AS user_id,
    argMinIf(event_id, seq, kind = 'created') AS creation_event,
    if(countIf(kind = 'updated') > 0, argMaxIf(description, (event_time, seq), kind = 'updated'),
        argMinIf(description, seq, kind = 'created')) AS description,
    if(countIf(kind = 'stage') > 0, argMaxIf(stage, (event_time, seq), kind = 'stage'), 'None') AS current_stage,
    argMinIf(event_time, seq, kind = 'created') AS creation_time,
    max(event_time) AS last_update_time,
    countIf(kind = 'deleted') > 0 AS deleted
FROM model_version_events
GROUP BY registered_model_id, version
HAVING countIf(kind = 'created') > 0;

CREATE OR REPLACE VIEW registered_model_tags_view AS
SELECT registered_model_id, key, argMax(value, (event_time, seq)) AS value
FROM registered_model_tags GROUP BY registered_model_id, key
HAVING argMax(deleted, (event_time, seq)) = 0;

CREATE OR REPLACE VIEW model_version_tags_view AS
SELECT registered_model_id, version, key, argMax(value, (event_time, seq)) AS value
FROM model_version_tags GROUP BY registered_model_id, version, key
HAVING argMax(deleted, (event_time, seq)) = 0;

CREATE OR REPLACE VIEW registered_model_aliases_view AS
SELECT registered_model_id, alias, held AS version FROM (
    SELECT registered_model_id, alias, argMax(version, (event_time, seq)) AS held
    FROM registered_model_aliases GROUP BY registered_model_id, alias
) WHERE held > 0;
