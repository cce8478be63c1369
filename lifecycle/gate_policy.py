"""A gate and its checks, without I/O.

A gate is a registered-model tag `runstream.gate.<target>` (an alias, or a stage such as Production),
so MLflow's client can set one, and its history is the tag's. Its value is a condition in MLflow's run
filter grammar over the candidate version's run (metrics.accuracy >= 0.9 and tags.validation_status
= 'passed'), where a value may also be read from the run of the version the target names now
(metrics.accuracy >= current.metrics.accuracy). The tag `runstream.gate.<target>.approvers` (users,
comma-separated) limits who may move the target; aliases cannot hold a dot, so the suffix is free."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from runstream.store.search.grammar import (
    COMPARATORS,
    RUNS,
    Clause,
    Comparator,
    Dialect,
    Kind,
    Parser,
    Value,
    joined_clauses,
)
from runstream.store.search.lexer import InvalidSearch, Tok

TAG_PREFIX = "runstream.gate."
APPROVERS_SUFFIX = ".approvers"
STAGES = ("None", "Staging", "Production", "Archived")
_APPROVERS = "user in "
GATE = Dialect(
    entities={k: e for k, e in RUNS.entities.items() if e.kind != "dataset"},
    default=RUNS.default,
    prefixes="metrics., params., tags., attributes. (and current. before any of them, as a value)",
)
_PLURAL: Mapping[Kind, str] = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}


@dataclass(frozen=True)
class Current:
    """A value read from the run of the version the target names now."""

    kind: Kind
    key: str

    def __str__(self) -> str:
        return f"current.{_PLURAL[self.kind]}.{self.key}"


@dataclass(frozen=True)
class Condition:
    clause: Clause
    current: Current | None  # compared with this instead of clause.value

    def __str__(self) -> str:
        c = self.clause
        return f"{_PLURAL[c.kind]}.{c.key} {c.comparator}{_operand(self.current or c.value)}"


def _operand(value: Value | Current) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f" {value:g}"
    if isinstance(value, tuple):
        return " (" + ", ".join(_quoted(v) for v in value) + ")"
    return f" {value}" if isinstance(value, Current) else f" {_quoted(value)}"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _GateParser(Parser):
    def condition(self) -> Condition:
        start = self.i
        entity, key, type_ = self.key()
        comparator = self.comparator()
        if self._at_current():
            if comparator not in ("=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE"):
                raise InvalidSearch(f"{comparator} cannot compare with the current version's value")
            if comparator not in COMPARATORS[type_]:
                raise InvalidSearch(f"comparator {comparator} is not supported for {entity.kind} {key!r}")
            self.take(), self.take()  # current .
            other, other_key, other_type = self.key()
            if (other_type == "number") != (type_ == "number"):
                raise InvalidSearch(
                    f"{entity.kind} {key!r} and {other.kind} {other_key!r}: compare numbers with numbers"
                )
            placeholder = Clause(entity.kind, key, comparator, None)
            return Condition(placeholder, Current(other.kind, other_key))
        self.i = start
        return Condition(self.clause(), None)

    def _at_current(self) -> bool:
        token, after = self.tokens[self.i], self.tokens[min(self.i + 1, len(self.tokens) - 1)]
        return token.kind is Tok.WORD and token.text == "current" and after.kind is Tok.DOT


def parse_condition(text: str) -> list[Condition]:
    """The conditions of a gate (joined by AND); InvalidSearch says what is wrong with the text."""
    if not text.strip():
        raise InvalidSearch("a gate's condition is empty; write one such as metrics.accuracy >= 0.9")
    parser = _GateParser(text, GATE)
    return joined_clauses(parser, parser.condition)


@dataclass(frozen=True)
class Gate:
    target: str
    condition: str
    approvers: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        return {"target": self.target, "condition": self.condition, "approvers": list(self.approvers)}


def gate_tags(target: str, condition: str, approvers: list[str]) -> dict[str, str | None]:
    """The model tags that hold this gate (None: the tag is deleted, as are both when dropping it)."""
    return {TAG_PREFIX + target: condition, TAG_PREFIX + target + APPROVERS_SUFFIX: ",".join(approvers) or None}


def gates_from_tags(tags: Mapping[str, str]) -> dict[str, Gate]:
    """A model's gates, by target, from its tags."""
    gates = {}
    for key, condition in tags.items():
        if key.startswith(TAG_PREFIX) and not key.endswith(APPROVERS_SUFFIX):
            target = canonical_target(key.removeprefix(TAG_PREFIX))
            approvers = tags.get(key + APPROVERS_SUFFIX, "")
            gates[target] = Gate(target, condition, tuple(a.strip() for a in approvers.split(",") if a.strip()))
    return gates


@dataclass(frozen=True)
class Check:
    condition: str
    passed: bool
    actual: str | None  # the candidate's value (None: it has none)
    expected: str | None = None  # the current version's value, where the condition reads one


@dataclass
class Decision:
    target: str
    kind: str  # alias | stage
    version: int
    current_version: int | None
    condition: str
    checks: list[Check] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return all(c.passed for c in self.checks)

    def json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "version": str(self.version),
            "current_version": None if self.current_version is None else str(self.current_version),
            "condition": self.condition,
            "allowed": self.allowed,
            "checks": [asdict(c) for c in self.checks],
        }

    def refusal(self, model: str) -> str:
        failed = "; ".join(_failure(c) for c in self.checks if not c.passed)
        gate = f"the promotion gate of {self.kind} '{self.target}' of model '{model}'"
        return f"{gate} refused version {self.version}: {failed}"


def _failure(c: Check) -> str:
    if c.condition.startswith(_APPROVERS):
        return f"{c.condition} failed (asked by {c.actual or 'nobody: auth is off'})"
    has = "has none" if c.actual is None else f"has {c.actual}"
    against = "" if c.expected is None else f", the current version {c.expected}"
    return f"{c.condition} failed (the candidate {has}{against})"


def decide(
    gate: Gate,
    kind: str,
    version: int,
    candidate: Mapping[str, Any] | None,
    current_version: int | None,
    current: Mapping[str, Any] | None,
    user: str,
) -> Decision:
    """The gate's checks of a candidate version's run (None: the version has no run) against the
    run of the version the target names now (None: none, or it has no run), for `user`."""
    decision = Decision(gate.target, kind, version, current_version, gate.condition)
    if gate.approvers:
        approved = user in gate.approvers
        decision.checks.append(Check(f"{_APPROVERS}({', '.join(gate.approvers)})", approved, user or None))
    try:
        conditions = parse_condition(gate.condition)
    except InvalidSearch as exc:  # set through MLflow's client, which cannot be refused a tag
        decision.checks.append(Check(f"a valid condition ({exc})", False, gate.condition))
        return decision
    for condition in conditions:
        decision.checks.append(_check(condition, candidate, current))
    return decision


def _check(condition: Condition, candidate: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> Check:
    clause = condition.clause
    actual = _value(candidate, clause.kind, clause.key)
    if condition.current is None:
        target: Value = clause.value
        expected = None
    else:
        read = _value(current, condition.current.kind, condition.current.key)
        if read is None:  # nothing to compare with: the target names no version, or its run lacks it
            return Check(str(condition), True, _shown(actual), None)
        target, expected = read, _shown(read)
    return Check(str(condition), _compare(clause.comparator, actual, target), _shown(actual), expected)


def _value(run: Mapping[str, Any] | None, kind: Kind, key: str) -> Any:
    if run is None:
        return None
    if kind == "metric":
        found = run["metrics"].get(key)
        return None if found is None else float(found["value"])
    if kind == "param":
        return run["params"].get(key)
    if kind == "tag":
        return run["tags"].get(key)
    return run.get(key)


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    return f"{value:g}" if isinstance(value, float) else str(value)


def _compare(comparator: Comparator, actual: Any, target: Any) -> bool:
    """As MLflow's search does: a run without the key never matches, except IS NULL."""
    if comparator == "IS NULL":
        return actual is None
    if actual is None:
        return False
    if comparator == "IS NOT NULL":
        return True
    if comparator in ("IN", "NOT IN"):
        return (actual in target) == (comparator == "IN")
    if comparator in ("LIKE", "ILIKE"):
        return _like(str(actual), str(target), comparator == "ILIKE")
    if isinstance(actual, float) or isinstance(target, float):
        a, t = float(actual), float(target)
        if math.isnan(a) or math.isnan(t):
            return comparator == "!="
        actual, target = a, t
    match comparator:
        case "=":
            return bool(actual == target)
        case "!=":
            return bool(actual != target)
        case ">":
            return bool(actual > target)
        case ">=":
            return bool(actual >= target)
        case "<":
            return bool(actual < target)
        case _:
            return bool(actual <= target)


def _like(value: str, pattern: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.S | (re.I if ignore_case else 0)) is not None


def canonical_target(target: str) -> str:
    """A stage's gate is named by its stage, in MLflow's spelling (production → Production)."""
    for stage in STAGES:
        if target.lower() == stage.lower():
            return stage
    return target
