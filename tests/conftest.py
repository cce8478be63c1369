"""Fixtures shared by every test folder. `store` runs a test on both ClickHouse backends: the
embedded engine (chdb, in this process) and a real ClickHouse server (started once per session).
The query corpus tests also run on a 2-shard cluster (CLUSTER_BACKENDS; its migrations cost ~4 s a
database, so tests that make one database each stay off it)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runstream.base.clickhouse import ClickHouse
from runstream.projector.migrate import migrate
from tests.services.clickhouse_cluster import ClickHouseCluster, start_clickhouse_cluster
from tests.services.clickhouse_server import ClickHouseServer, start_clickhouse
from tests.services.s3_server import S3Server, start_seaweedfs
from tests.venvs import prebuild

BACKENDS = ["embedded", "server"]
CLUSTER_BACKENDS = [*BACKENDS, "cluster"]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Starts building the cached venvs (tests/venvs.py) the collected tests will ask for, named by
    their modules' CACHED_VENVS, in the order the tests come."""
    if session.config.option.collectonly:
        return
    wanted: dict[Path, None] = {}
    for item in session.items:
        for requirements in getattr(getattr(item, "module", None), "CACHED_VENVS", ()):
            wanted.setdefault(requirements)
    if wanted:
        prebuild(list(wanted))


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The embedded engine allows one data path per process: tests share it, one database each.
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    server = start_clickhouse(tmp_path_factory.mktemp("clickhouse"))
    yield server
    server.kill()  # session services hold only the session's scratch data: a graceful stop only costs time


@pytest.fixture(scope="session")
def clickhouse_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseCluster]:
    """Two ClickHouse servers as the two shards of one cluster, for the session."""
    cluster = start_clickhouse_cluster(tmp_path_factory.mktemp("clickhouse-cluster"))
    yield cluster
    cluster.kill()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) for the session."""
    server = start_seaweedfs(tmp_path_factory.mktemp("s3"), "runstream-test", "runstream-test-secret")
    yield server
    server.kill()


def new_store(request: pytest.FixtureRequest, backend: str) -> ClickHouse:
    """A fresh database with the migrations applied, on the given backend."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    if backend == "embedded":
        store = ClickHouse(f"chdb://{request.getfixturevalue('chdb_dir')}?database={database}")
    elif backend == "cluster":
        cluster: ClickHouseCluster = request.getfixturevalue("clickhouse_cluster")
        store = ClickHouse(f"{cluster.url}/{database}", cluster.name)
    else:
        store = ClickHouse(f"{request.getfixturevalue('clickhouse').url}/{database}")
    migrate(store)
    return store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> ClickHouse:
    return new_store(request, request.param)


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    # Every test has run and reported, and every service was stopped by its fixture. The embedded
    # engine (chdb) and librdkafka's threads can crash in the interpreter's own teardown after that
    # (seen once in CI: SIGSEGV after "383 passed"), so leave with pytest's status instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
