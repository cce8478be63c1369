-- Promotion gates' decisions (events/gate_decided): one row per move of an alias or a stage that a
-- gate decided, allowed or refused, with what each check read (checks: JSON). The gates themselves
-- are registered-model tags runstream.gate.<target> (api/gates/policy.py), so their history is the tags'.

CREATE TABLE IF NOT EXISTS gate_decisions (
    registered_model_id String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16),
    kind LowCardinality(String),            -- alias | stage
    target String,
    version Int64,
    current_version Nullable(Int64),
    condition String,
    allowed UInt8,
    checks String,
    user String
) ENGINE = ReplacingMergeTree ORDER BY (registered_model_id, event_time, event_id);
