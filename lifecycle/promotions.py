"""Moves of an alias or a stage, through the model's promotion gates (lifecycle/gate_policy.py).

Under the registry lock, after this process's earlier registry writes are applied, the target's gate
(if it has one) is checked against the candidate version's run and the run of the version the target
names now. The decision is appended with the move when allowed, alone when refused (then a 403 names
each failed check), so the model's history holds both. Two writers promoting at once through one
process are checked one after the other, the second against what the first moved; as for model names
(mlflow_api/registry_writer.py), route a model's registry writes to one gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends

from runstream.base.auth import Principal, user_name
from runstream.base.errors import invalid, refused
from runstream.lifecycle.gate_policy import APPROVERS_SUFFIX, TAG_PREFIX, Decision, parse_condition
from runstream.lifecycle.gate_reads import GateReads
from runstream.mlflow_api.registry_reads import REGISTRY, RegistryReads, pick_version
from runstream.mlflow_api.writer import Event, MlflowWriter, Writer
from runstream.schemas.events import event
from runstream.store.search.lexer import InvalidSearch

# The events of an allowed move: (model id, the candidate's number, the model's live versions) → events.
Moves = Callable[[str, int, list[dict[str, Any]]], Awaitable[list[Event]]]


def _decided(model_id: str, d: Decision, who: str) -> Event:
    checks = [
        {"condition": c.condition, "passed": c.passed, "actual": c.actual, "expected": c.expected} for c in d.checks
    ]
    return event(
        "GateDecided",
        registered_model_id=model_id,
        kind=d.kind,
        target=d.target,
        version=d.version,
        current_version=d.current_version,
        condition=d.condition,
        allowed=d.allowed,
        checks=checks,
        user=who,
    )


class Promotions:
    def __init__(self, w: MlflowWriter) -> None:
        self.w = w
        self.reads = RegistryReads(w.ctx)
        self.gates = GateReads(w.ctx)

    def check_tag(self, key: str, value: str) -> None:
        """A gate set as a model tag through MLflow's client is checked as the native API checks it."""
        if key.startswith(TAG_PREFIX) and not key.endswith(APPROVERS_SUFFIX):
            try:
                parse_condition(value)
            except InvalidSearch as exc:
                raise invalid(f"tag {key!r} is a promotion gate, whose condition is invalid: {exc}") from exc

    async def move_alias(self, name: str, alias: str, ref: str | int, principal: Principal | None) -> Decision | None:
        async def moves(model_id: str, number: int, _: list[dict[str, Any]]) -> list[Event]:
            alias_set = event(
                "RegisteredModelAliasSet",
                registered_model_id=model_id,
                alias=alias,
                version=number,
                user=user_name(principal),
            )
            return [alias_set]

        return await self._move(name, "alias", alias, ref, principal, moves)

    async def move_stage(
        self, name: str, stage: str, ref: str | int, archive_others: bool, principal: Principal | None
    ) -> tuple[int, Decision | None]:
        """Transitions the version to `stage` (a canonical stage); with archive_others, the versions in
        that stage go to Archived in the same append."""
        if archive_others and stage not in ("Staging", "Production"):
            raise invalid(
                f"Model version transition cannot archive existing model versions because '{stage}' is not "
                "an Active stage. Valid stages are Staging, Production"
            )
        moved: list[int] = []

        async def moves(model_id: str, number: int, versions: list[dict[str, Any]]) -> list[Event]:
            moved.append(number)
            if archive_others:
                moved.extend(
                    int(v["version"]) for v in versions if v["current_stage"] == stage and int(v["version"]) != number
                )
            return [
                event(
                    "ModelVersionStageTransitioned",
                    registered_model_id=model_id,
                    version=n,
                    stage=stage if n == number else "Archived",
                    user=user_name(principal),
                )
                for n in moved
            ]

        decision = await self._move(name, "stage", stage, ref, principal, moves)
        return moved[0], decision

    async def _move(
        self, name: str, kind: str, target: str, ref: str | int, principal: Principal | None, moves: Moves
    ) -> Decision | None:
        who = user_name(principal)
        async with self.w.registry_lock:
            model_id, versions = await self.reads.versions(name)  # after this process's registry writes
            candidate = pick_version(versions, name, ref)
            decision = await self.gates.decide(model_id, kind, target, candidate, versions, who)
            events = [] if decision is None else [_decided(model_id, decision, who)]
            if decision is None or decision.allowed:
                events += await moves(model_id, int(candidate["version"]), versions)
            await self.w.append(events, REGISTRY)
        if decision is not None and not decision.allowed:
            raise refused(decision.refusal(name))
        return decision


def _promotions(w: Writer) -> Promotions:
    return Promotions(w)


Promoting = Annotated[Promotions, Depends(_promotions)]
