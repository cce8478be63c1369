"""The buckets numeric summaries count values in (schemas/avro/feature_summary.avsc): DDSketch's
logarithmic mapping with 1% relative accuracy, fixed for every writer, so summaries logged anywhere add
up bucket by bucket, and two distributions compare without agreeing on bin edges first.

A value v gets bucket 0 when |v| < MIN_ABS, else ±(ceil(log(|v|) / log(GAMMA)) + OFFSET), the sign of
v's: ids grow with the values they hold, and every value of bucket k > 0 lies in
(GAMMA^(k-OFFSET-1), GAMMA^(k-OFFSET)]. Infinities go to the outermost buckets; NaN is missing."""

from __future__ import annotations

import math

import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
MIN_ABS = 1e-9
MAX_ABS = 1e300
OFFSET = 2000  # > -ceil(log(MIN_ABS) / log(GAMMA)) = 1036: every id of a nonzero value is ≥ 1 in size
_LOG_GAMMA = math.log(GAMMA)


def bucket_ids(values: np.ndarray) -> np.ndarray:
    """Bucket id per value (NaN must be left out first)."""
    magnitude = np.minimum(np.abs(values), MAX_ABS)
    ids = np.zeros(len(values), np.int64)
    big = magnitude >= MIN_ABS
    k = np.ceil(np.log(magnitude[big]) / _LOG_GAMMA).astype(np.int64) + OFFSET
    ids[big] = np.where(values[big] > 0, k, -k)
    return ids


def bucket_value(bucket: int) -> float:
    """The value a bucket stands for (within RELATIVE_ACCURACY of every value in it)."""
    if bucket == 0:
        return 0.0
    k = abs(bucket) - OFFSET
    value = 2 * GAMMA**k / (GAMMA + 1)
    return value if bucket > 0 else -value
