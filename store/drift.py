"""Drift of production windows from a reference, per feature, computed in ClickHouse from the counts
per bucket or category the windows and the reference hold (migrations/011_monitoring.sql).

Numbers (buckets of schemas/sketch.py, ordered by value):
- ks: the Kolmogorov-Smirnov statistic, max |F_ref - F_prod| over the buckets both hold: the exact
  statistic of the two samples with each value rounded to its bucket (within 1%).
- psi: the population stability index over ten bins of the reference's mass: a bucket goes to bin
  min(9, floor(10 · F_ref(before it))); Σ (p - r) · ln(p / r), each share at least 1e-4.
Categories:
- psi: as above, one bin per category.
- chi2: Pearson's statistic of the window's counts against the reference's shares, smoothed by half a
  count per category seen in either (so a category new in production is not an infinite surprise);
  dof = categories - 1.
A window's feature without a reference (not in the profile) has no drift figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

DEFAULT_REFERENCE = "profile:training"
PSI_FLOOR = 1e-4
BINS = 10


@dataclass(frozen=True)
class Reference:
    """Where the reference counts come from: a profile of a run, or windows of the served model."""

    sql: str  # SELECT feature, kind, buckets, bucket_counts, categories, category_counts FROM ... WHERE ...
    parameters: dict[str, Any]


class BadReference(ValueError):
    pass


def version_run(client: Client, model: str, version: int) -> str | None:
    """The run of a live version of the live model of that name, if it has one."""
    rows = client.query(
        "SELECT v.run_id FROM model_versions_view AS v INNER JOIN (SELECT registered_model_id FROM "
        "registered_models_view WHERE deleted = 0 AND name = {model:String}) AS m "
        "ON v.registered_model_id = m.registered_model_id WHERE v.version = {version:Int64} AND v.deleted = 0",
        parameters={"model": model, "version": version},
    ).result_rows
    return str(rows[0][0]) if rows and rows[0][0] else None


def resolve_reference(client: Client, served: Served, spec: str) -> Reference:
    """`profile:NAME`: that profile of the version's run; `windows:START:END`: the model's windows in
    the environment that started in [START, END) (ms)."""
    kind, _, rest = spec.partition(":")
    if kind == "profile" and rest:
        run_id = version_run(client, served.model, served.version)
        if run_id is None:
            raise BadReference(
                f"version {served.version} of {served.model!r} has no run to hold a profile; "
                "use reference=windows:START:END"
            )
        return profile_reference(run_id, rest)
    start, _, end = rest.partition(":")
    if kind == "windows" and start.isdigit() and end.isdigit() and int(start) < int(end):
        return window_reference(served.model, served.environment, int(start), int(end))
    raise BadReference(f"reference {spec!r}: use profile:NAME (of the version's run) or windows:START:END (ms)")


def profile_reference(run_id: str, name: str) -> Reference:
    """The latest profile of that name logged with the run."""
    return Reference(
        "SELECT feature, kind, buckets, bucket_counts, categories, category_counts FROM profile_features FINAL "
        "WHERE run_id = {ref_run:String} AND name = {ref_name:String} AND event_id = ("
        "SELECT argMax(event_id, (event_time, seq)) FROM profile_features "
        "WHERE run_id = {ref_run:String} AND name = {ref_name:String})",
        {"ref_run": run_id, "ref_name": name},
    )


def window_reference(model: str, environment: str, start: int, end: int) -> Reference:
    """Every window of the model in the environment (any version) that started in [start, end)."""
    return Reference(
        "SELECT feature, kind, buckets, bucket_counts, categories, category_counts FROM inference_features FINAL "
        "WHERE model_name = {ref_model:String} AND environment = {ref_env:String} "
        "AND window_start >= {ref_start:Int64} AND window_start < {ref_end:Int64}",
        {"ref_model": model, "ref_env": environment, "ref_start": start, "ref_end": end},
    )


@dataclass(frozen=True)
class Served:
    """Which windows: a model version in an environment, started in [start, end), grouped every `every`
    ms (0: each window alone)."""

    model: str
    version: int
    environment: str
    start: int
    end: int
    every: int = 0

    def parameters(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "env": self.environment,
            "start": self.start,
            "end": self.end,
            "every": self.every,
        }


# A Served's windows (its parameters): the interval each falls in, and the filter that picks them.
SERVED_AT = "if({every:Int64} > 0, intDiv(window_start, {every:Int64}) * {every:Int64}, window_start)"
SERVED_WHERE = (
    "model_name = {model:String} AND version = {version:Int64} AND environment = {env:String} "
    "AND window_start >= {start:Int64} AND window_start < {end:Int64}"
)
_PRODUCTION = f"""
    SELECT {SERVED_AT} AS at, feature, kind, buckets, bucket_counts, categories, category_counts
    FROM inference_features FINAL WHERE {SERVED_WHERE}
"""

# Per window and feature, one row: the reference's and the window's counts merged by bucket (sumMap),
# then one walk over the buckets of both, in order, as arrays: no row per bucket. An item is
# (bucket, reference count, window count); within a bucket the window's item sorts first, so the
# cumulative reference count before an item is the reference's mass below its bucket, and the gap is
# read only at a bucket's last item.
_NUMBERS = f"""
WITH
(m, k) -> if(has(m.1, k), m.2[indexOf(m.1, k)], 0) AS share,
reference AS (
    SELECT feature, sumMap(buckets, bucket_counts) AS m FROM ({{reference}}) WHERE kind = 'number' GROUP BY feature
),
production AS (
    SELECT at, feature, sumMap(buckets, bucket_counts) AS m FROM ({_PRODUCTION}) WHERE kind = 'number'
    GROUP BY at, feature
),
merged AS (
    SELECT p.at AS at, p.feature AS feature, arraySum(r.m.2) AS nr, arraySum(p.m.2) AS np,
        arraySort(arrayConcat(
            arrayMap((b, c) -> (toInt64(b), toUInt64(c), toUInt64(0)), r.m.1, r.m.2),
            arrayMap((b, c) -> (toInt64(b), toUInt64(0), toUInt64(c)), p.m.1, p.m.2)
        )) AS items
    FROM production AS p INNER JOIN reference AS r ON p.feature = r.feature
),
walked AS (
    SELECT at, feature, nr, np, items,
        arrayCumSum(arrayMap(x -> x.2, items)) AS cr,
        arrayCumSum(arrayMap(x -> x.3, items)) AS cp,
        arrayPushBack(arrayPopFront(arrayMap(x -> x.1, items)), toInt64(9223372036854775807)) AS next_bucket,
        arrayMap((x, c) -> least({BINS - 1}, toUInt32(floor({BINS} * (c - x.2) / nr))), items, cr) AS bins
    FROM merged WHERE nr > 0 AND np > 0
),
shares AS (
    SELECT at, feature, np, nr, items, cr, cp, next_bucket, arrayDistinct(bins) AS present,
        arrayReduce('sumMap', [bins], [arrayMap(x -> x.2, items)]) AS rs,
        arrayReduce('sumMap', [bins], [arrayMap(x -> x.3, items)]) AS ps
    FROM walked
)
SELECT at, feature,
    arrayMax(arrayMap((x, r, p, after) -> if(x.1 != after, abs(r / nr - p / np), 0), items, cr, cp, next_bucket)) AS ks,
    arraySum(arrayMap(
        k -> (greatest(share(ps, k) / np, {PSI_FLOOR}) - greatest(share(rs, k) / nr, {PSI_FLOOR}))
            * ln(greatest(share(ps, k) / np, {PSI_FLOOR}) / greatest(share(rs, k) / nr, {PSI_FLOOR})),
        present
    )) AS psi,
    np AS n
FROM shares ORDER BY at, feature
SETTINGS max_block_size = 256
"""

_CATEGORIES = f"""
WITH
reference AS (
    SELECT feature, c.1 AS category, sum(c.2) AS r
    FROM ({{reference}}) ARRAY JOIN arrayZip(categories, category_counts) AS c
    WHERE kind = 'category' GROUP BY feature, category
),
production AS (
    SELECT at, feature, c.1 AS category, sum(c.2) AS p
    FROM ({_PRODUCTION}) ARRAY JOIN arrayZip(categories, category_counts) AS c
    WHERE kind = 'category' GROUP BY at, feature, category
),
joined AS (
    SELECT at, feature, category, sum(r) AS r, sum(p) AS p FROM (
        SELECT w.at AS at, w.feature AS feature, ref.category AS category, ref.r AS r, toUInt64(0) AS p
        FROM (SELECT DISTINCT at, feature FROM production) AS w INNER JOIN reference AS ref ON w.feature = ref.feature
        UNION ALL
        SELECT at, feature, category, toUInt64(0), p FROM production
    ) GROUP BY at, feature, category
),
totals AS (
    SELECT at, feature, r, p,
        sum(r) OVER (PARTITION BY at, feature) AS nr,
        sum(p) OVER (PARTITION BY at, feature) AS np,
        count() OVER (PARTITION BY at, feature) AS k
    FROM joined
)
SELECT at, feature,
    sum((greatest(p / np, {PSI_FLOOR}) - greatest(r / nr, {PSI_FLOOR}))
        * ln(greatest(p / np, {PSI_FLOOR}) / greatest(r / nr, {PSI_FLOOR}))) AS psi,
    sum(pow(p - np * (r + 0.5) / (nr + 0.5 * k), 2) / (np * (r + 0.5) / (nr + 0.5 * k))) AS chi2,
    any(k) - 1 AS dof,
    any(np) AS n
FROM totals WHERE nr > 0 GROUP BY at, feature ORDER BY at, feature
"""


def drift(client: Client, served: Served, reference: Reference) -> dict[int, dict[str, dict[str, Any]]]:
    """Per window start (or interval), per feature: its drift figures and how many values it holds."""
    parameters = {**served.parameters(), **reference.parameters}
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for at, feature, ks, psi, n in client.query(
        _NUMBERS.replace("{reference}", reference.sql), parameters=parameters
    ).result_rows:
        out.setdefault(at, {})[feature] = {"kind": "number", "ks": ks, "psi": psi, "n": n}
    for at, feature, psi, chi2, dof, n in client.query(
        _CATEGORIES.replace("{reference}", reference.sql), parameters=parameters
    ).result_rows:
        out.setdefault(at, {})[feature] = {"kind": "category", "psi": psi, "chi2": chi2, "dof": dof, "n": n}
    return out
