"""What a gate decides for a candidate version, read from ClickHouse: the model's gates (its tags),
the candidate's run and the run of the version the target names now."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.lifecycle.gate_policy import TAG_PREFIX, Decision, Gate, canonical_target, decide, gates_from_tags
from runstream.mlflow_api.context import MlflowContext
from runstream.mlflow_api.registry_routes import RegistryReads, pick_version
from runstream.store import queries


def gate_tags(client: Client, model_id: str) -> dict[str, str]:
    rows = client.query(
        "SELECT key, value FROM registered_model_tags_view WHERE registered_model_id = {id:String} "
        "AND startsWith(key, {prefix:String})",
        parameters={"id": model_id, "prefix": TAG_PREFIX},
    ).result_rows
    return {str(key): str(value) for key, value in rows}


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
        return gates_from_tags(await self.ctx.query(gate_tags, model_id))

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
