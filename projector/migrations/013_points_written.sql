-- When each point was written, for the raw points' retention policy (projector/retention.py): a TTL
-- counts from it, not from the point's own timestamp, which the client chooses (an import's are
-- years old, a clock-less logger's may be 0). One value per insert, so it takes next to no bytes.
-- Parts written before this have no value stored: it is filled in (now()) when a policy is first worked
-- out for them, so their points count from then.
-- A part goes as a whole once all of its rows expired, instead of being rewritten without them.
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS written DateTime DEFAULT now() CODEC(DoubleDelta, ZSTD(1));
ALTER TABLE metrics MODIFY SETTING ttl_only_drop_parts = 1;
