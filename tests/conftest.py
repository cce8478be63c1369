import uuid
from pathlib import Path

import pytest

from projector.migrate import migrate
from runstream.clickhouse import ClickHouse


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The embedded engine allows one data path per process: tests share it, one database each.
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def embedded_store(chdb_dir: Path) -> ClickHouse:
    store = ClickHouse(f"chdb://{chdb_dir}?database=t_{uuid.uuid4().hex[:12]}")
    migrate(store)
    return store
