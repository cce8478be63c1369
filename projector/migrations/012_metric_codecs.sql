-- Metric points in fewer bytes (bench/results/scale.json, README "Scale out"): a loss curve's values
-- change little from one step to the next, which Gorilla's XOR of neighbours turns into runs of zero
-- bits for ZSTD (5.3 → 3.2 bytes a value on noisy float32 losses), and steps go up by one, which
-- DoubleDelta stores in next to nothing (0.39 → 0.01 bytes). Parts written before keep their codecs
-- until a merge rewrites them.
ALTER TABLE metrics MODIFY COLUMN value Float64 CODEC(Gorilla, ZSTD(1));
ALTER TABLE metrics MODIFY COLUMN step Int64 CODEC(DoubleDelta, ZSTD(1));
