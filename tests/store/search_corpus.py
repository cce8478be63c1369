"""A seeded corpus of runs and experiments (written as events), a brute-force evaluation of search
filters over it (what MLflow's SQL store answers), and generators of filters rendered as text."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runstream.schemas.codec import encode
from runstream.schemas.events import MetricColumns, header, metric_batch_fields, partition_key
from runstream.store.search.grammar import COMPARATORS, SQL_KEYWORDS, Clause, Order
from runstream.store.tables import EVENT_TABLES

EXPERIMENT_IDS = ["1", "2", "3"]
TEXTS = [
    "",
    "a",
    "ab",
    "abc",
    "A",
    "b",
    "a%b",
    "a_b",
    "it's",
    'say "hi"',
    "back\\slash",
    "é",
    "École",
    "x y",
    "10",
    "日本",
]
NASTY = ["\x00", "'; DROP TABLE runs; --", "{p0:String}", "\\", "''", '"', "`", "\n"]
PATTERNS = [
    "%",
    "a%",
    "%b",
    "_",
    "a_b",
    "%\\%",
    "%é%",
    "É%",
    "%'%",
    '%"%',
    "__",
    "%a%b%",
    "A%",
    "%.%",
    "s3://%",
    "C:\\%",
]
PARAM_KEYS = ["lr", "depth", "with space", "mlflow.x", "é", "from"]
TAG_KEYS = ["team", "stage", "note", "from", "a`b"]
METRIC_KEYS = ["acc", "loss", "m.x"]
METRIC_VALUES = [-math.inf, -1.5, 0.0, 0.25, 0.5, 1.0, 2.0, 1e300, math.inf, math.nan]
STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
USERS = ["alice", "bob", "Ève", ""]
URIS = ["s3://b/x", "file:///tmp/a_b", "C:\\runs", "s3://b/%"]
DATASET_NAMES = ["train", "eval", "it's", "é"]
DIGESTS = ["d1", "d2", "D1"]
CONTEXTS = ["training", "validation", None]
PARENT = "mlflow.parentRunId"


def message(schema: str, event_time: int, /, **fields: Any) -> tuple[str, bytes]:
    record = {"header": header(event_time), **fields}
    return partition_key(schema, record), encode(schema, record)


@dataclass
class Run:
    run_id: str
    experiment_id: str
    run_name: str | None
    user_id: str
    start_time: int
    artifact_uri: str | None
    status: str = "RUNNING"
    end_time: int | None = None
    deleted: bool = False
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value per key
    datasets: list[tuple[str, str, str | None]] = field(default_factory=list)  # name, digest, context


@dataclass
class Experiment:
    experiment_id: str
    name: str
    creation_time: int
    last_update_time: int
    deleted: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Corpus:
    runs: list[Run]
    experiments: list[Experiment]
    messages: list[tuple[str, bytes]]
    inputs: list[list[Any]]  # run_inputs rows, inserted directly (see build())


def _metrics(rng: random.Random, run: Run, t: int) -> tuple[str, bytes]:
    keys = [k for k in METRIC_KEYS if rng.random() < 0.6]
    key_index, values, steps = [], [], []
    for i, key in enumerate(keys):
        points = rng.sample(range(10), rng.randint(1, 3))  # distinct steps: the latest is unambiguous
        for step in points:
            key_index.append(i)
            steps.append(step)
            values.append(rng.choice(METRIC_VALUES))
        run.metrics[key] = values[len(values) - len(points) + points.index(max(points))]
    cols = MetricColumns(
        run.run_id,
        0,
        "node0",
        keys,
        np.array(key_index, np.uint16),
        np.array(values, np.float64),
        np.array(steps, np.int64),
        np.full(len(values), t, np.int64),
    )
    return message("MetricBatch", t, **metric_batch_fields(cols))


def _run(rng: random.Random, i: int, runs: list[Run], out: list[tuple[str, bytes]]) -> Run:
    t = 10_000 + 100 * i  # every event of a run gets its own time: state folds by event time
    run = Run(
        run_id=f"{rng.getrandbits(128):032x}",
        experiment_id=rng.choice(EXPERIMENT_IDS),
        run_name=None if rng.random() < 0.1 else rng.choice([*TEXTS, f"run-{i}"]),
        user_id=rng.choice(USERS),
        start_time=rng.randrange(1000, 1100),  # ties: order falls back to run_id
        artifact_uri=None if rng.random() < 0.3 else rng.choice(URIS),
    )
    run.tags = {k: rng.choice(TEXTS) for k in TAG_KEYS if rng.random() < 0.4}
    parent = rng.choice(runs).run_id if runs and rng.random() < 0.2 else None
    if parent:
        run.tags[PARENT] = parent
    out.append(
        message(
            "RunCreated",
            t,
            run_id=run.run_id,
            experiment_id=run.experiment_id,
            run_name=run.run_name,
            user_id=run.user_id,
            start_time=run.start_time,
            tags=dict(run.tags),
            parent_run_id=parent,
            artifact_uri=run.artifact_uri,
        )
    )
    run.params = {k: rng.choice(TEXTS) for k in PARAM_KEYS if rng.random() < 0.5}
    if run.params:
        out.append(message("ParamsLogged", t + 1, run_id=run.run_id, params=dict(run.params)))
    changed = {k: rng.choice(TEXTS) for k in TAG_KEYS if rng.random() < 0.2}
    if changed:
        run.tags.update(changed)
        out.append(message("TagsSet", t + 2, run_id=run.run_id, tags=changed))
    if run.tags and rng.random() < 0.2:
        gone = rng.choice(sorted(run.tags))
        del run.tags[gone]
        out.append(message("TagDeleted", t + 3, run_id=run.run_id, key=gone))
    out.append(_metrics(rng, run, t + 4))
    if rng.random() < 0.7:
        status = rng.choice(STATUSES)
        end_time = None if rng.random() < 0.3 else run.start_time + rng.randrange(0, 50)
        name = rng.choice(TEXTS) if rng.random() < 0.15 else None
        run.status = status
        run.end_time = end_time
        run.run_name = name if name is not None else run.run_name  # null fields leave state as it is
        out.append(message("RunUpdated", t + 5, run_id=run.run_id, status=status, end_time=end_time, run_name=name))
    if rng.random() < 0.12:
        run.deleted = True
        out.append(message("RunDeleted", t + 6, run_id=run.run_id))
        if rng.random() < 0.3:
            run.deleted = False
            out.append(message("RunRestored", t + 7, run_id=run.run_id))
    run.datasets = [
        (rng.choice(DATASET_NAMES), rng.choice(DIGESTS), rng.choice(CONTEXTS)) for _ in range(rng.choice([0, 0, 1, 2]))
    ]
    return run


def _experiment(rng: random.Random, i: int, out: list[tuple[str, bytes]]) -> Experiment:
    t = 1_000 + 10 * rng.randrange(0, 30)  # ties in creation_time: order falls back to experiment_id
    experiment_id = EXPERIMENT_IDS[i] if i < len(EXPERIMENT_IDS) else str(rng.randrange(4, 10 ** rng.randint(1, 7)))
    name = f"{rng.choice(TEXTS)}-{i}"
    exp = Experiment(experiment_id, name, t, t)
    exp.tags = {k: rng.choice(TEXTS) for k in TAG_KEYS if rng.random() < 0.4}
    out.append(
        message("ExperimentCreated", t, experiment_id=experiment_id, name=name, artifact_location=None, tags=exp.tags)
    )
    if rng.random() < 0.3:
        exp.name = f"renamed {rng.choice(TEXTS)}-{i}"
        exp.last_update_time = t + 1
        out.append(message("ExperimentRenamed", t + 1, experiment_id=experiment_id, name=exp.name))
    if i >= len(EXPERIMENT_IDS) and rng.random() < 0.2:
        exp.deleted = True
        exp.last_update_time = t + 2
        out.append(message("ExperimentDeleted", t + 2, experiment_id=experiment_id))
    if exp.tags and rng.random() < 0.3:
        gone = rng.choice(sorted(exp.tags))
        del exp.tags[gone]
        out.append(message("ExperimentTagDeleted", t + 3, experiment_id=experiment_id, key=gone))
    return exp


def build(seed: int = 7, n_runs: int = 300, n_experiments: int = 40) -> Corpus:
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    experiments: dict[str, Experiment] = {}
    for i in range(n_experiments):
        events: list[tuple[str, bytes]] = []
        exp = _experiment(rng, i, events)
        if exp.experiment_id not in experiments:  # a random id may come up twice: keep the first
            experiments[exp.experiment_id] = exp
            out += events
    runs: list[Run] = []
    for i in range(n_runs):
        runs.append(_run(rng, i, runs, out))
    # InputsLogged is not projected yet (store/tables.py names 10 run_inputs columns for 11
    # values), so dataset inputs go straight into the table the projector would fill.
    inputs = [
        [
            r.run_id,
            name,
            digest,
            "local",
            "src",
            None,
            None,
            {} if ctx is None else {"mlflow.data.context": ctx},
            1,
            i,
            rng.randbytes(16),
        ]
        for r in runs
        for i, (name, digest, ctx) in enumerate(r.datasets)
    ]
    return Corpus(runs, list(experiments.values()), out, inputs)


INPUT_COLUMNS = EVENT_TABLES["run_inputs"]  # the projector's own column list


# --- brute force --------------------------------------------------------------------------------


def like(value: str, pattern: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def compare(lhs: Any, op: str, rhs: Any) -> bool:
    if lhs is None:
        return False
    match op:
        case "=":
            return bool(lhs == rhs)
        case "!=":
            return bool(lhs != rhs)
        case ">":
            return bool(lhs > rhs)
        case ">=":
            return bool(lhs >= rhs)
        case "<":
            return bool(lhs < rhs)
        case "<=":
            return bool(lhs <= rhs)
        case "LIKE" | "ILIKE":
            return like(lhs, rhs, op == "ILIKE")
        case "IN":
            return lhs in rhs
        case "NOT IN":
            return lhs not in rhs
    raise AssertionError(op)


def run_attribute(run: Run, key: str) -> Any:
    shown = {"run_name": run.run_name or "", "artifact_uri": run.artifact_uri or ""}
    return shown[key] if key in shown else getattr(run, key)


def keyed(run: Run, kind: str) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = {"metric": run.metrics, "param": run.params, "tag": run.tags}
    return tables[kind]


def run_matches(run: Run, c: Clause) -> bool:
    if c.kind == "attribute":
        return compare(run_attribute(run, c.key), c.comparator, c.value)
    if c.kind == "dataset":
        index = {"name": 0, "digest": 1, "context": 2}[c.key]
        return any(compare(d[index], c.comparator, c.value) for d in run.datasets)
    values = keyed(run, c.kind)
    if c.comparator == "IS NULL":
        return c.key not in values
    if c.comparator == "IS NOT NULL":
        return c.key in values
    return compare(values.get(c.key), c.comparator, c.value)


def _stable_sort(items: list[Any], orders: list[tuple[Any, Any, bool]]) -> list[Any]:
    """orders: (bucket function, value function, ascending), most significant first. Buckets
    always ascend (missing keys last in either direction); values follow the direction."""
    for bucket, value, ascending in reversed(orders):
        items = sorted(items, key=value, reverse=not ascending)
        items = sorted(items, key=bucket)
    return items


def _run_sort_terms(o: Order) -> tuple[Any, Any, bool]:
    if o.kind == "attribute":

        def attribute(r: Run) -> Any:
            v = run_attribute(r, o.key)
            return 0 if v is None else v  # only end_time can be missing

        return (lambda r: run_attribute(r, o.key) is None), attribute, o.ascending

    def present(r: Run) -> Any:
        return keyed(r, o.kind).get(o.key)

    def bucket(r: Run) -> int:
        v = present(r)
        return 2 if v is None else 1 if isinstance(v, float) and math.isnan(v) else 0

    def value(r: Run) -> Any:
        return present(r) if bucket(r) == 0 else (0.0 if o.kind == "metric" else "")

    return bucket, value, o.ascending


def expected_runs(
    corpus: Corpus, clauses: list[Clause], orders: list[Order], experiment_ids: list[str], view: str
) -> list[str]:
    lifecycle = {"active": lambda r: not r.deleted, "deleted": lambda r: r.deleted, "all": lambda r: True}[view]
    found = [
        r
        for r in corpus.runs
        if r.experiment_id in experiment_ids and lifecycle(r) and all(run_matches(r, c) for c in clauses)
    ]
    terms = [_run_sort_terms(o) for o in orders]
    if not any(o.kind == "attribute" and o.key == "start_time" for o in orders):
        terms.append(((lambda r: 0), (lambda r: r.start_time), False))
    terms.append(((lambda r: 0), (lambda r: r.run_id), True))
    return [r.run_id for r in _stable_sort(found, terms)]


def experiment_matches(exp: Experiment, c: Clause) -> bool:
    if c.kind == "attribute":
        return compare(getattr(exp, c.key), c.comparator, c.value)
    if c.comparator == "IS NULL":
        return c.key not in exp.tags
    if c.comparator == "IS NOT NULL":
        return c.key in exp.tags
    return compare(exp.tags.get(c.key), c.comparator, c.value)


def expected_experiments(corpus: Corpus, clauses: list[Clause], orders: list[Order], view: str) -> list[str]:
    lifecycle = {"active": lambda e: not e.deleted, "deleted": lambda e: e.deleted, "all": lambda e: True}[view]
    found = [e for e in corpus.experiments if lifecycle(e) and all(experiment_matches(e, c) for c in clauses)]
    orders = orders or [Order("attribute", "creation_time", False), Order("attribute", "experiment_id", True)]
    if not any(o.key == "experiment_id" for o in orders):
        orders = [*orders, Order("attribute", "experiment_id", False)]

    def value(key: str) -> Any:
        if key == "experiment_id":
            return lambda e: (len(e.experiment_id), e.experiment_id)
        return lambda e: getattr(e, key)

    terms = [((lambda e: 0), value(o.key), o.ascending) for o in orders]
    return [e.experiment_id for e in _stable_sort(found, terms)]


# --- generated filters, rendered as text in MLflow's many spellings ------------------------------

PREFIXES = {
    "metric": ["metrics", "metric", "`metrics`"],
    "param": ["params", "param", "parameter", "parameters"],
    "tag": ["tags", "tag"],
    "attribute": ["attributes", "attribute", "attr", "run", ""],
    "dataset": ["datasets", "dataset"],
}
ALIASES = {"start_time": ["start_time", "created", "Created"], "run_name": ["run_name", "`run name`", '"Run Name"']}
_BARE = re.compile(r"\w+(\.\w+)*\Z")


def quote(text: str, q: str) -> str:
    return q + text.replace(q, q + q) + q


def render_key(key: str, rng: random.Random) -> str:
    keyword = any(part.isascii() and part.upper() in SQL_KEYWORDS for part in key.split("."))
    if _BARE.match(key) and not keyword and rng.random() < 0.7:
        return key
    return quote(key, rng.choice("`\"'"))


def render_value(value: Any, rng: random.Random) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(render_value(v, rng) for v in value) + rng.choice(["", ","]) + ")"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 and rng.random() < 0.5 else repr(value)
    assert isinstance(value, str)
    return quote(value, rng.choice("'\""))


def render_identifier(kind: str, key: str, rng: random.Random, prefixes: dict[str, list[str]] = PREFIXES) -> str:
    prefix = rng.choice(prefixes[kind])
    fixed = kind in ("attribute", "dataset")  # fixed keys are plain names, or aliases spelt quoted
    spelled = rng.choice(ALIASES.get(key, [key])) if fixed else render_key(key, rng)
    return f"{prefix}.{spelled}" if prefix else spelled


def render_clause(c: Clause, rng: random.Random, prefixes: dict[str, list[str]] = PREFIXES) -> str:
    op = c.comparator if not c.comparator[0].isalpha() else rng.choice([c.comparator, c.comparator.lower()])
    space = rng.choice([" ", "  ", ""] if op[0] in "<>=!" else [" "])
    text = f"{render_identifier(c.kind, c.key, rng, prefixes)}{space}{op}"
    if c.value is not None:
        text += " " + render_value(c.value, rng)
    return text


def render_filter(clauses: list[Clause], rng: random.Random, prefixes: dict[str, list[str]] = PREFIXES) -> str:
    joiners = [" AND ", " and ", "\nAND ", "  And\t"]
    return "".join((rng.choice(joiners) if i else "") + render_clause(c, rng, prefixes) for i, c in enumerate(clauses))


def render_order(o: Order, rng: random.Random, prefixes: dict[str, list[str]] = PREFIXES) -> str:
    direction = rng.choice(["", " ASC", " asc"]) if o.ascending else rng.choice([" DESC", " desc"])
    return render_identifier(o.kind, o.key, rng, prefixes) + direction


def _strings(rng: random.Random, op: str, pool: list[str]) -> Any:
    if op in ("LIKE", "ILIKE"):
        return rng.choice(PATTERNS + [p[:2] + "%" for p in pool if p])
    if op in ("IN", "NOT IN"):
        return tuple(rng.choice(pool + NASTY[:2]) for _ in range(rng.randint(1, 4)))
    if op in ("IS NULL", "IS NOT NULL"):
        return None
    return rng.choice(pool + NASTY if rng.random() < 0.1 else pool)


def random_run_clause(rng: random.Random, corpus: Corpus) -> Clause:
    kind = rng.choice(["metric", "metric", "param", "param", "tag", "tag", "attribute", "attribute", "dataset"])
    if kind == "metric":
        op = rng.choice(COMPARATORS["number"])
        value = rng.choice([-1.5, 0.0, 0.25, 0.5, 1.0, 2.0, 1e300, -1e300, 0.3])
        return Clause("metric", rng.choice([*METRIC_KEYS, "missing"]), op, value)
    if kind in ("param", "tag"):
        op = rng.choice(COMPARATORS["kv"])
        keys = PARAM_KEYS if kind == "param" else [*TAG_KEYS, PARENT]
        key = rng.choice([*keys, "missing"])
        pool = [r.run_id for r in rng.sample(corpus.runs, 3)] if key == PARENT else TEXTS
        return Clause("param" if kind == "param" else "tag", key, op, _strings(rng, op, pool))
    if kind == "dataset":
        key = rng.choice(["name", "digest", "context"])
        op = rng.choice(COMPARATORS["listable"])
        pool = {"name": DATASET_NAMES, "digest": DIGESTS, "context": ["training", "validation"]}[key]
        return Clause("dataset", key, op, _strings(rng, op, pool))
    key = rng.choice(["run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"])
    if key in ("start_time", "end_time"):
        value = float(rng.randrange(990, 1160)) + rng.choice([0.0, 0.0, 0.5])
        return Clause("attribute", key, rng.choice(COMPARATORS["number"]), value)
    op = rng.choice(COMPARATORS["listable"] if key == "run_id" else COMPARATORS["string"])
    pools = {
        "run_id": [r.run_id for r in rng.sample(corpus.runs, 4)],
        "run_name": [*TEXTS, "run-7"],
        "status": [*STATUSES, "finished"],
        "user_id": USERS,
        "artifact_uri": URIS,
    }
    return Clause("attribute", key, op, _strings(rng, op, pools[key]))


def random_run_orders(rng: random.Random) -> list[Order]:
    candidates = [
        *(("metric", k) for k in [*METRIC_KEYS, "missing"]),
        *(("param", k) for k in PARAM_KEYS[:3]),
        *(("tag", k) for k in TAG_KEYS[:3]),
        *(
            ("attribute", k)
            for k in ["start_time", "end_time", "run_name", "status", "user_id", "run_id", "artifact_uri"]
        ),
    ]
    picked = rng.sample(candidates, rng.choice([0, 0, 1, 1, 2, 3]))
    return [Order(kind, key, rng.random() < 0.5) for kind, key in picked]  # type: ignore[arg-type]


EXPERIMENT_PREFIXES = {"attribute": ["attribute", "attributes", ""], "tag": ["tags", "tag"]}


def random_experiment_clause(rng: random.Random, corpus: Corpus) -> Clause:
    kind = rng.choice(["attribute", "attribute", "tag"])
    if kind == "tag":
        op = rng.choice(COMPARATORS["kv"])
        return Clause("tag", rng.choice([*TAG_KEYS, "missing"]), op, _strings(rng, op, TEXTS))
    key = rng.choice(["name", "experiment_id", "creation_time", "last_update_time"])
    if key in ("creation_time", "last_update_time"):
        value = float(rng.randrange(990, 1300)) + rng.choice([0.0, 0.5])
        return Clause("attribute", key, rng.choice(COMPARATORS["number"]), value)
    if key == "experiment_id":
        op = rng.choice(COMPARATORS["id"])
        return Clause("attribute", key, op, _strings(rng, op, [e.experiment_id for e in corpus.experiments]))
    op = rng.choice(COMPARATORS["string"])
    return Clause("attribute", key, op, _strings(rng, op, [e.name for e in corpus.experiments]))
