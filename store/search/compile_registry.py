"""MLflow's registry searches compiled to SQL: registered models (name and tags.<key> with =, !=, LIKE,
ILIKE; order by name, the default and tie break, timestamp / last_updated_timestamp,
creation_timestamp) and model versions (name, version_number, run_id also with IN, source_path and
tags.<key>; by default the most recently updated first, then name, then the highest version)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runstream.store.search.grammar import Clause, Dialect, Entity, Order, parse_filter, parse_order_by
from runstream.store.search.paging import decode_page_token
from runstream.store.search.sql import Params, Query, compare, page

PROMPT_TAG = "mlflow.prompt.is_prompt"

_MODEL_ATTRIBUTE = Entity(
    "attribute",
    keys={
        "name": ("name", "listable"),
        "timestamp": ("last_update_time", "number"),
        "last_updated_timestamp": ("last_update_time", "number"),
        "creation_timestamp": ("creation_time", "number"),
    },
)
_VERSION_ATTRIBUTE = Entity(
    "attribute",
    keys={
        "name": ("name", "string"),
        "version_number": ("version", "number"),
        "run_id": ("run_id", "listable"),
        "source_path": ("source", "string"),
        "timestamp": ("last_update_time", "number"),
        "last_updated_timestamp": ("last_update_time", "number"),
        "creation_timestamp": ("creation_time", "number"),
    },
)
_TAG = Entity("tag", key_type="string", orderable=False)
MODELS = Dialect(
    entities={"tag": _TAG, "tags": _TAG, "attribute": _MODEL_ATTRIBUTE, "attributes": _MODEL_ATTRIBUTE},
    default=_MODEL_ATTRIBUTE,
    prefixes="tags., attributes.",
)
VERSIONS = Dialect(
    entities={"tag": _TAG, "tags": _TAG, "attribute": _VERSION_ATTRIBUTE, "attributes": _VERSION_ATTRIBUTE},
    default=_VERSION_ATTRIBUTE,
    prefixes="tags., attributes.",
)

LIVE_MODELS = "SELECT * FROM registered_models_view WHERE deleted = 0"
# Versions of live models, with the model's current name (a rename carries its versions along).
LIVE_VERSIONS = (
    "SELECT v.*, m.name AS name FROM model_versions_view AS v INNER JOIN "
    "(SELECT registered_model_id, name FROM registered_models_view WHERE deleted = 0) AS m "
    "ON v.registered_model_id = m.registered_model_id WHERE v.deleted = 0"
)


@dataclass(frozen=True)
class Target:
    base: str  # SELECT ... WHERE <live rows>
    columns: dict[str, str]  # grammar key → column
    model: str  # the registered_model_id column
    owner: str  # what a tag belongs to, and its columns in `tags`
    tags: str
    tag_columns: str


def _compile(
    target: Target, clauses: list[Clause], orders: list[Order], max_results: int, page_token: str | None
) -> Query:
    offset = decode_page_token(page_token)
    bind = Params()
    # MLflow 3 keeps prompts in the registry, told apart by a tag that models lack: its client adds
    # `tags.mlflow.prompt.is_prompt != 'true'` to every search, meant as "not a prompt".
    prompt = next((c for c in clauses if c.kind == "tag" and c.key == PROMPT_TAG), None)
    wants_prompts = prompt is not None and (prompt.comparator, str(prompt.value).lower()) in (
        ("=", "true"),
        ("!=", "false"),
    )
    where = [
        f"{target.model} {'' if wants_prompts else 'NOT '}IN (SELECT registered_model_id FROM {target.tags} "
        f"WHERE key = {bind(PROMPT_TAG, 'String')} AND value = 'true')"
    ]
    for clause in clauses:
        if clause is prompt:
            continue
        if clause.kind == "tag":
            key, match = bind(clause.key, "String"), compare("value", clause, bind)
            where.append(
                f"{target.owner} IN (SELECT {target.tag_columns} FROM {target.tags} WHERE key = {key} AND {match})"
            )
        else:
            where.append(compare(target.columns[clause.key], clause, bind))
    order = [f"{target.columns[o.key]} {'ASC' if o.ascending else 'DESC'}" for o in orders]
    sql = f"{target.base}{''.join(f' AND {w}' for w in where)} ORDER BY {', '.join(order)}"
    return page(sql, bind, offset, max_results)


_MODELS = Target(
    f"SELECT * FROM ({LIVE_MODELS}) AS m WHERE 1",
    {"name": "m.name", "last_update_time": "m.last_update_time", "creation_time": "m.creation_time"},
    "m.registered_model_id",
    "m.registered_model_id",
    "registered_model_tags_view",
    "registered_model_id",
)
_VERSIONS = Target(
    f"SELECT * FROM ({LIVE_VERSIONS}) AS v WHERE 1",
    {
        "name": "v.name",
        "version": "v.version",
        "run_id": "v.run_id",
        "source": "v.source",
        "last_update_time": "v.last_update_time",
        "creation_time": "v.creation_time",
    },
    "v.registered_model_id",
    "(v.registered_model_id, v.version)",
    "model_version_tags_view",
    "registered_model_id, version",
)


def _with_tie_breaks(orders: list[Order], defaults: Sequence[Order]) -> list[Order]:
    keys = {o.key for o in orders}
    return orders + [d for d in defaults if d.key not in keys]


_VERSION_DEFAULT_ORDER = [
    Order("attribute", "last_update_time", False),
    Order("attribute", "name", True),
    Order("attribute", "version", False),
]


def compile_registered_model_search(
    filter_string: str | None, order_by: Sequence[str], max_results: int, page_token: str | None
) -> Query:
    orders = _with_tie_breaks(parse_order_by(order_by, MODELS), [Order("attribute", "name", True)])
    return _compile(_MODELS, parse_filter(filter_string, MODELS), orders, max_results, page_token)


def compile_model_version_search(
    filter_string: str | None, order_by: Sequence[str], max_results: int, page_token: str | None
) -> Query:
    orders = parse_order_by(order_by, VERSIONS) or _VERSION_DEFAULT_ORDER[:1]
    orders = _with_tie_breaks(orders, _VERSION_DEFAULT_ORDER[1:])
    return _compile(_VERSIONS, parse_filter(filter_string, VERSIONS), orders, max_results, page_token)
