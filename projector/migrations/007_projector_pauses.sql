-- Replay's handover (projector/pauses.py): a replay asks the live projectors of a group to pause
-- while it catches up and swaps its tables in; each projector, once its writes are committed, says so.
-- These two tables stay where they are when projections are swapped.

CREATE TABLE IF NOT EXISTS projector_pauses (
    consumer_group String,
    request String,
    until DateTime64(3),                    -- the pause lapses then unless renewed; lifted: in the past
    updated_at DateTime64(6) DEFAULT now64(6)      -- the latest word counts: a renewal, or the lift
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (consumer_group, request);

CREATE TABLE IF NOT EXISTS projector_pause_acks (
    consumer_group String,
    request String,
    member String,                          -- the consumer group member that paused
    acked_at DateTime64(3) DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(acked_at) ORDER BY (consumer_group, request, member);
