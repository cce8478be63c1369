"""The shape of the code: each folder is a stage of the data flow or a base the stages share, and every
import (deferred ones too) points to a lower layer; no module imports itself back through others."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Lowest first. A package may import its own modules and those of lower layers, never a package of
# its own layer or above: the SDK (client side) and the server's stages share only the bases below them.
LAYERS: list[set[str]] = [
    {"schemas"},  # the contract: events, validation, wire shapes
    {"base", "artifacts"},  # ClickHouse connection, errors, responses, auth; artifact storage
    {"eventlog"},  # the log every stage shares: backends, positions, write marks
    {"sdk", "store"},  # the client side; the read store (every SELECT, what is applied)
    {"ingest", "projector", "webhooks"},  # into the log; log → tables; log → receivers
    {"api"},  # runstream's read API
    {"mlflow_api"},  # MLflow's REST API, reads and writes
    {"lifecycle"},  # gates, promotions, deployments, monitoring: built on the registry
    {"server"},  # the composition: app, roles, command line
    {"runstream"},  # the front doors: the SDK's names, the command
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
SERVER_LIBRARIES = ["fastapi", "starlette", "uvicorn", "chdb", "clickhouse_connect", "boto3", "confluent_kafka"]


def package_of(module: str) -> str:
    """runstream.store.search.sql → store; runstream.command → runstream."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANK) else "runstream"


def modules() -> dict[str, Path]:
    found = {}
    for package in RANK:
        folder = REPO / package
        for path in folder.rglob("*.py"):
            if package == "runstream" and path.parent != folder:
                continue  # runstream/<stage> are links to the stage folders
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(["runstream", *parts[parts[0] == "runstream" :]]).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules `path` imports, at any depth of its code."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        out.update(name for name in names if name in known)
    return out


def test_every_stage_folder_is_in_a_layer() -> None:
    linked = {p.name for p in (REPO / "runstream").iterdir() if p.is_symlink()}
    assert linked == set(RANK) - {"runstream"}


def test_imports_point_down_the_layers() -> None:
    known = modules()
    upward = []
    for name, path in known.items():
        source = package_of(name)
        for target in imports(path, known):
            dest = package_of(target)
            if dest != source and RANK[dest] >= RANK[source]:
                upward.append(f"{name} → {target}")
    assert not upward, "imports that do not point down:\n" + "\n".join(sorted(upward))


def test_no_module_imports_itself_back() -> None:
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError, naming the circle


# Folders whose code reads no ClickHouse table: every read of the data is the read store's (store/).
# The projector keeps the bookkeeping of the tables it owns (migrations, pauses, replay's counts); base/
# and server/ ask ClickHouse about itself (its cluster, whether it answers); the local log is SQLite.
NO_SQL = ["api", "ingest", "mlflow_api", "lifecycle", "webhooks", "sdk", "artifacts", "schemas"]


def test_reads_of_the_data_are_all_in_the_store() -> None:
    selects = []
    for package in NO_SQL:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and "SELECT " in node.value:
                    selects.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not selects, "SQL outside store/: " + ", ".join(selects)


def test_the_sdk_loads_no_server_library() -> None:
    """What training environments import: the SDK and its read client, with no server library (also
    where they are installed, as in this venv)."""
    code = f"import sys, runstream; print(sorted(m for m in {SERVER_LIBRARIES!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
    for library in SERVER_LIBRARIES:  # the check can fail: each is importable here
        assert subprocess.run([sys.executable, "-c", f"import {library}"], timeout=120).returncode == 0
