-- Webhooks (MLflow's webhooks API): every save is the webhook's whole state (events/webhook_saved), so
-- the latest save of an id is the webhook, and its first is its creation. A webhook's events share a
-- log partition, so (event_time, seq) orders them. The secret is read only by what delivers (never
-- answered by the API).

CREATE TABLE IF NOT EXISTS webhook_events (
    webhook_id String,
    event_time Int64,
    seq Int64,                              -- log offset: orders events of one millisecond
    event_id FixedString(16),
    deleted UInt8,
    name String,
    description String,
    url String,
    events Array(String),                   -- entity.action, e.g. model_version.created
    secret String,
    status LowCardinality(String),          -- ACTIVE | DISABLED
    user String
) ENGINE = ReplacingMergeTree ORDER BY (webhook_id, event_time, event_id);

CREATE OR REPLACE VIEW webhooks_view AS
SELECT
    webhook_id,
    argMax(name, (event_time, seq)) AS name,
    argMax(description, (event_time, seq)) AS description,
    argMax(url, (event_time, seq)) AS url,
    argMax(events, (event_time, seq)) AS events,
    argMax(secret, (event_time, seq)) AS secret,
    argMax(status, (event_time, seq)) AS status,
    min(event_time) AS creation_time,
    max(event_time) AS last_update_time
FROM webhook_events
GROUP BY webhook_id
HAVING max(deleted) = 0;
