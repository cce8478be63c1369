"""Liveness and readiness of a role. /health: the process serves HTTP. /ready: every dependency this
role needs answers (ClickHouse, the event log, the projector's thread), else 503 naming what failed, so
an orchestrator or load balancer sends traffic only to instances that can serve it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from runstream.base.clickhouse import ClickHouse
from runstream.base.responses import json_response

Check = Callable[[], None]
"""Raises when its dependency is not usable."""

CHECK_TIMEOUT_S = 2.0  # a dependency slower than this to answer a probe is not ready


def clickhouse_check(store: ClickHouse) -> Check:
    def check() -> None:
        store.client.command("SELECT 1")

    return check


def thread_check(name: str, is_alive: Callable[[], bool]) -> Check:
    def check() -> None:
        if not is_alive():
            raise RuntimeError(f"the {name} thread has stopped")

    return check


async def _run(check: Check) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(check), CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S} s"
    except Exception as exc:  # any failure of a probe means "not ready", with its reason
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def health_router(role: str, version: str, checks: dict[str, Check]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health", summary="Liveness: the process serves")
    async def health() -> Response:
        return json_response({"status": "ok", "role": role, "version": version})

    @router.get("/ready", summary="Readiness: every dependency of this role answers (503 otherwise)")
    async def ready() -> Response:
        results = dict(zip(checks, await asyncio.gather(*(_run(c) for c in checks.values())), strict=True))
        ok = all(r == "ok" for r in results.values())
        return json_response({"status": "ready" if ok else "not ready", "checks": results}, 200 if ok else 503)

    return router
