"""MLflow's search grammar: a filter is clauses joined by AND; an order_by item is a key and ASC/DESC.

The rules follow mlflow/utils/search_utils.py (MLflow 3.x) and are checked here, once, so that the
compiler only ever sees valid clauses: which comparators a key type takes, which value it needs,
which keys exist. Deliberate differences from MLflow, which lexes with sqlparse:
- a doubled quote inside a quoted string or key stands for one quote ('it''s' is "it's"); MLflow
  keeps both characters. A backslash is an ordinary character, as in MLflow's comparisons.
- two clauses without AND between them are an error (MLflow reads them as joined by AND). Stray ANDs
  (leading, trailing, doubled) are skipped, as MLflow does: filters built in a loop often end in one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from runstream.store.search.lexer import InvalidSearch, Tok, Token, tokenize

Kind = Literal["metric", "param", "tag", "attribute", "dataset"]
Comparator = Literal["=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
# How a key compares: numbers; free-form strings that may be absent (params, tags); strings;
# strings that also take IN lists; identifiers (equality and lists only).
FieldType = Literal["number", "kv", "string", "listable", "id"]
Value = str | float | tuple[str, ...] | None
T = TypeVar("T")

COMPARATORS: Mapping[FieldType, tuple[Comparator, ...]] = {
    "number": ("=", "!=", ">", ">=", "<", "<="),
    "kv": ("=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"),
    "string": ("=", "!=", "LIKE", "ILIKE"),
    "listable": ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"),
    "id": ("=", "!=", "IN", "NOT IN"),
}
_SYMBOLS: Mapping[str, Comparator] = {c: c for c in COMPARATORS["number"]}
_WORDS: Mapping[str, Comparator] = {"LIKE": "LIKE", "ILIKE": "ILIKE", "IN": "IN"}
# sqlparse lexes these as keywords even after a dot, so MLflow rejects them as bare keys
# (tags.from); quoted (tags.`from`) they are fine. Other SQL words are ordinary keys there.
SQL_KEYWORDS: frozenset[str] = frozenset({"CASE", "IN", "VALUES", "USING", "FROM", "AS"})
# Each clause costs the query a subquery or a join: bounds keep one request from costing minutes.
MAX_CLAUSES = 50
MAX_ORDER_BY = 20


@dataclass(frozen=True)
class Clause:
    kind: Kind
    key: str  # canonical: attribute aliases resolved (created → start_time)
    comparator: Comparator
    value: Value  # float for numbers, tuple for IN lists, None for IS [NOT] NULL


@dataclass(frozen=True)
class Order:
    kind: Kind
    key: str
    ascending: bool


@dataclass(frozen=True)
class Entity:
    kind: Kind
    key_type: FieldType = "kv"  # the type of every key, for free-form keys
    keys: Mapping[str, tuple[str, FieldType]] | None = None  # fixed keys: spelling → (key, type)
    orderable: bool = True


@dataclass(frozen=True)
class Dialect:
    entities: Mapping[str, Entity]  # prefix → entity
    default: Entity  # for keys without a prefix
    prefixes: str  # for messages


_RUN_ATTRIBUTES: Mapping[str, tuple[str, FieldType]] = {
    "run_id": ("run_id", "listable"),
    "run_name": ("run_name", "string"),
    "run name": ("run_name", "string"),
    "Run name": ("run_name", "string"),
    "Run Name": ("run_name", "string"),
    "status": ("status", "string"),
    "user_id": ("user_id", "string"),
    "artifact_uri": ("artifact_uri", "string"),
    "start_time": ("start_time", "number"),
    "created": ("start_time", "number"),
    "Created": ("start_time", "number"),
    "end_time": ("end_time", "number"),
}
_DATASET_KEYS: Mapping[str, tuple[str, FieldType]] = {k: (k, "listable") for k in ("name", "digest", "context")}
_RUN_ATTRIBUTE = Entity("attribute", keys=_RUN_ATTRIBUTES)
_METRIC = Entity("metric", key_type="number")
_PARAM = Entity("param")
_TAG = Entity("tag")
_DATASET = Entity("dataset", keys=_DATASET_KEYS, orderable=False)

RUNS = Dialect(
    entities={
        "metric": _METRIC,
        "metrics": _METRIC,
        "param": _PARAM,
        "params": _PARAM,
        "parameter": _PARAM,
        "parameters": _PARAM,
        "tag": _TAG,
        "tags": _TAG,
        "attribute": _RUN_ATTRIBUTE,
        "attributes": _RUN_ATTRIBUTE,
        "attr": _RUN_ATTRIBUTE,
        "run": _RUN_ATTRIBUTE,
        "dataset": _DATASET,
        "datasets": _DATASET,
    },
    default=_RUN_ATTRIBUTE,
    prefixes="metrics., params., tags., attributes., datasets.",
)

_EXPERIMENT_ATTRIBUTE = Entity(
    "attribute",
    keys={
        "name": ("name", "string"),
        "experiment_id": ("experiment_id", "id"),
        "creation_time": ("creation_time", "number"),
        "last_update_time": ("last_update_time", "number"),
    },
)
_EXPERIMENT_TAG = Entity("tag", orderable=False)
EXPERIMENTS = Dialect(
    entities={
        "attribute": _EXPERIMENT_ATTRIBUTE,
        "attributes": _EXPERIMENT_ATTRIBUTE,
        "tag": _EXPERIMENT_TAG,
        "tags": _EXPERIMENT_TAG,
    },
    default=_EXPERIMENT_ATTRIBUTE,
    prefixes="tags., attributes.",
)


_MODEL_ATTRIBUTE = Entity(
    "attribute",
    keys={
        "name": ("name", "string"),
        "model_id": ("model_id", "id"),
        "model_type": ("model_type", "string"),
        "status": ("status", "string"),
        "source_run_id": ("source_run_id", "id"),
        "creation_timestamp": ("creation_timestamp", "number"),
        "creation_time": ("creation_timestamp", "number"),
        "last_updated_timestamp": ("last_updated_timestamp", "number"),
    },
)
_MODEL_PARAM = Entity("param", orderable=False)
_MODEL_TAG = Entity("tag", orderable=False)
# MLflow 3's logged models (their metrics' datasets come in the request beside the filter).
LOGGED_MODELS = Dialect(
    entities={
        "attribute": _MODEL_ATTRIBUTE,
        "attributes": _MODEL_ATTRIBUTE,
        "metric": _METRIC,
        "metrics": _METRIC,
        "param": _MODEL_PARAM,
        "params": _MODEL_PARAM,
        "tag": _MODEL_TAG,
        "tags": _MODEL_TAG,
    },
    default=_MODEL_ATTRIBUTE,
    prefixes="attributes., metrics., params., tags.",
)


def _describe(kind: Kind, key: str) -> str:
    return f"{kind} {key!r}"


class Parser:
    def __init__(self, text: str, dialect: Dialect) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.dialect = dialect

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        if token.kind is not Tok.END:
            self.i += 1
        return token

    def at_end(self) -> bool:
        return self.peek().kind is Tok.END

    def take_word(self, *words: str) -> str | None:
        """Consumes the next token if it is one of the (upper-case) keywords."""
        token = self.peek()
        if token.kind is Tok.WORD and token.text.upper() in words:
            self.i += 1
            return token.text.upper()
        return None

    def key(self) -> tuple[Entity, str, FieldType]:
        token = self.take()
        if token.kind not in (Tok.WORD, Tok.QNAME, Tok.DQSTRING):
            raise InvalidSearch(f"expected a key such as metrics.acc or params.lr, found {token.describe()}")
        if self.peek().kind is not Tok.DOT:
            if token.kind is Tok.WORD and token.text.upper() in ("AND", "OR", "NOT"):
                raise InvalidSearch(f"expected a clause, found {token.describe()}; join clauses with AND only")
            return self.resolve(self.dialect.default, token.text)
        entity = self.dialect.entities.get(token.text) if token.kind is not Tok.DQSTRING else None
        if entity is None:
            raise InvalidSearch(
                f"unknown entity type {token.text!r} at position {token.pos}; use {self.dialect.prefixes}"
            )
        dot = self.take()
        return self.resolve(entity, self.key_after_dot(dot))

    def key_after_dot(self, dot: Token) -> str:
        token = self.take()
        if token.spaced:
            raise InvalidSearch(f"unexpected space after '.' at position {dot.pos}")
        if token.kind in (Tok.QNAME, Tok.DQSTRING, Tok.STRING):
            if self.peek().kind is Tok.DOT:
                raise InvalidSearch(f"quote the whole key, e.g. tags.`a.b`, at position {token.pos}")
            return token.text
        parts = [self.bare(token)]
        while self.peek().kind is Tok.DOT:
            self.take()
            parts.append(self.bare(self.take()))
        return ".".join(parts)

    def bare(self, token: Token) -> str:
        if token.kind is not Tok.WORD or token.spaced:
            raise InvalidSearch(f"expected a name after '.', found {token.describe()}")
        if token.text.isascii() and token.text.upper() in SQL_KEYWORDS:
            raise InvalidSearch(
                f"key {token.text!r} at position {token.pos} is an SQL keyword: quote it, e.g. `{token.text}`"
            )
        return token.text

    def resolve(self, entity: Entity, key: str) -> tuple[Entity, str, FieldType]:
        if entity.keys is None:
            return entity, key, entity.key_type
        found = entity.keys.get(key)
        if found is None:
            valid = ", ".join(sorted(entity.keys))
            raise InvalidSearch(f"invalid {entity.kind} key {key!r}; valid keys are {valid}")
        return entity, found[0], found[1]

    def comparator(self) -> Comparator:
        token = self.take()
        if token.kind is Tok.OP:
            if token.text in _SYMBOLS:
                return _SYMBOLS[token.text]
            raise InvalidSearch(f"unknown comparator {token.describe()}; use =, !=, >, >=, <, <=")
        word = token.text.upper() if token.kind is Tok.WORD else ""
        if word in _WORDS:
            return _WORDS[word]
        if word == "IS":
            negated = self.take_word("NOT")
            if self.take_word("NULL"):
                return "IS NOT NULL" if negated else "IS NULL"
            raise InvalidSearch(f"expected {'IS NOT NULL' if negated else 'IS NULL'}, found {self.peek().describe()}")
        if word == "NOT":
            if self.take_word("IN"):
                return "NOT IN"
            raise InvalidSearch(f"NOT is only supported in NOT IN and IS NOT NULL, at position {token.pos}")
        if word == "OR":
            raise InvalidSearch(f"OR is not supported (position {token.pos}): join clauses with AND only")
        raise InvalidSearch(f"expected a comparator, found {token.describe()}")

    def clause(self) -> Clause:
        entity, key, type_ = self.key()
        comparator = self.comparator()
        if comparator not in COMPARATORS[type_]:
            if comparator in ("IN", "NOT IN"):
                raise InvalidSearch(f"{comparator} is not supported for {_describe(entity.kind, key)}")
            allowed = ", ".join(COMPARATORS[type_])
            raise InvalidSearch(
                f"comparator {comparator} is not supported for {_describe(entity.kind, key)}; use one of {allowed}"
            )
        return Clause(entity.kind, key, comparator, self.value(comparator, type_, entity.kind, key))

    def value(self, comparator: Comparator, type_: FieldType, kind: Kind, key: str) -> Value:
        if comparator in ("IS NULL", "IS NOT NULL"):
            return None
        if comparator in ("IN", "NOT IN"):
            return self.string_list()
        token = self.take()
        if type_ == "number":
            if token.kind is not Tok.NUMBER:
                raise InvalidSearch(f"expected a number for {_describe(kind, key)}, found {token.describe()}")
            return float(token.text)
        if token.kind not in (Tok.STRING, Tok.DQSTRING):
            raise InvalidSearch(
                f"expected a quoted string ('...' or \"...\") for {_describe(kind, key)}, found {token.describe()}"
            )
        return token.text

    def string_list(self) -> tuple[str, ...]:
        token = self.take()
        if token.kind is not Tok.LPAREN:
            raise InvalidSearch(f"IN needs a list of quoted strings such as ('a', 'b'), found {token.describe()}")
        values: list[str] = []
        while True:
            token = self.take()
            if token.kind is Tok.RPAREN:  # also after a trailing comma, as MLflow (Python tuples) allows
                if not values:
                    raise InvalidSearch(f"empty IN list at position {token.pos}")
                return tuple(values)
            if token.kind not in (Tok.STRING, Tok.DQSTRING):
                raise InvalidSearch(f"expected a quoted string in the IN list, found {token.describe()}")
            values.append(token.text)
            token = self.take()
            if token.kind is Tok.RPAREN:
                return tuple(values)
            if token.kind is not Tok.COMMA:
                raise InvalidSearch(f"expected ',' or ')' in the IN list, found {token.describe()}")


def parse_filter(text: str | None, dialect: Dialect = RUNS) -> list[Clause]:
    """The clauses of an MLflow filter string; an empty or blank filter has none."""
    if text is None or not text.strip():
        return []
    parser = Parser(text, dialect)
    return joined_clauses(parser, parser.clause)


def joined_clauses(parser: Parser, read: Callable[[], T]) -> list[T]:
    """The clauses `read` takes from the parser's text, joined by AND."""
    clauses: list[T] = []
    joined = True  # nothing has to join the first clause
    while True:
        while parser.take_word("AND"):
            joined = True
        if parser.at_end():
            return clauses
        if not joined:
            token = parser.take()
            if token.kind is Tok.WORD and token.text.upper() == "OR":
                raise InvalidSearch(f"OR is not supported (position {token.pos}): join clauses with AND only")
            raise InvalidSearch(f"expected AND or the end of the filter, found {token.describe()}")
        if len(clauses) == MAX_CLAUSES:
            raise InvalidSearch(f"a filter may have at most {MAX_CLAUSES} clauses")
        clauses.append(read())
        joined = False


def parse_order_by(items: Sequence[str] | None, dialect: Dialect = RUNS) -> list[Order]:
    """Items such as "metrics.acc DESC", "attributes.start_time", "params.lr ASC"."""
    if items and len(items) > MAX_ORDER_BY:
        raise InvalidSearch(f"order_by may have at most {MAX_ORDER_BY} items")
    orders: list[Order] = []
    seen: set[tuple[Kind, str]] = set()
    for item in items or []:
        parser = Parser(item, dialect)
        entity, key, _ = parser.key()
        if not entity.orderable:
            raise InvalidSearch(f"cannot order by {entity.kind} keys: {item!r}")
        direction = parser.take_word("ASC", "DESC")
        if not parser.at_end():
            raise InvalidSearch(
                f"expected ASC, DESC or the end of order_by item {item!r}, found {parser.peek().describe()}"
            )
        if (entity.kind, key) in seen:
            raise InvalidSearch(f"order_by names {entity.kind} {key!r} twice")
        seen.add((entity.kind, key))
        orders.append(Order(entity.kind, key, direction != "DESC"))
    return orders
