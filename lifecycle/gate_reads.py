"""What a gate decides for a candidate version, read from ClickHouse: the model's gates (its tags),
the candidate's run and the run of the version the target names now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from runstream.lifecycle.gate_policy import TAG_PREFIX, Decision, Gate, canonical_target, decide, gates_from_tags
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.mlflow_api.registry_reads import RegistryReads, pick_version
from runstream.store import queries
from runstream.store import registry as rq


def holder(versions: list[dict[str, Any]], kind: str, target: str) -> int | None:
    """The version the alias names now, or the newest version in the stage."""
    if kind == "alias":
        found = [int(v["version"]) for v in versions if target in v["aliases"]]
    else:
        found = [int(v["version"]) for v in versions if v["current_stage"] == target]
    return max(found, default=None)


class GateReads:
    def __init__(self, ctx: MlflowContext) -> None:
        self.ctx = ctx
        self.registry = RegistryReads(ctx)

    async def check(self, name: str, kind: str, target: str, ref: str | int, who: str) -> Decision | None:
        """What the target's gate would decide now on moving it to that version (a dry run)."""
        model_id, versions = await self.registry.versions(name)
        candidate = pick_version(versions, name, ref)
        return await self.decide(model_id, kind, target, candidate, versions, who)

    async def gates(self, model_id: str) -> dict[str, Gate]:
        return gates_from_tags(await self.ctx.query(rq.model_tags, model_id, TAG_PREFIX))

    async def decide(
        self,
        model_id: str,
        kind: str,
        target: str,
        candidate: dict[str, Any],
        versions: list[dict[str, Any]],
        user: str,
    ) -> Decision | None:
        """The decision of the target's gate on moving it to `candidate` (ModelVersion JSON); None if
        the target has no gate. `versions`: the model's live versions, as they are now."""
        gate = (await self.gates(model_id)).get(canonical_target(target))
        if gate is None:
            return None
        current = holder(versions, kind, target)
        current_run_id = next((v["run_id"] for v in versions if int(v["version"]) == current), None)
        return decide(
            gate,
            kind,
            int(candidate["version"]),
            await self._run(candidate.get("run_id")),
            current,
            await self._run(current_run_id),
            user,
        )

    async def _run(self, run_id: str | None) -> dict[str, Any] | None:
        return await self.ctx.query(queries.run, run_id) if run_id else None


def _gates(ctx: Mlflow) -> GateReads:
    return GateReads(ctx)


Gates = Annotated[GateReads, Depends(_gates)]
