"""The catalog of table shapes (store/tables.py) against the tables the migrations build: the projector
inserts by these column lists, so a column renamed or added in a migration without them fails here,
not in a projector's insert."""

from __future__ import annotations

import pytest

from runstream.store.tables import EVENT_TABLES, METRIC_TABLES, PROGRESS, STATE_TABLES
from tests.conftest import new_store

CATALOG = {**EVENT_TABLES, **STATE_TABLES, **METRIC_TABLES, "projector_progress": PROGRESS}


def test_every_inserted_column_exists_and_every_other_is_filled_by_its_table(request: pytest.FixtureRequest) -> None:
    store = new_store(request, "embedded")
    rows = store.client.query(
        "SELECT table, name, default_kind FROM system.columns WHERE database = currentDatabase()"
    ).result_rows
    columns: dict[str, dict[str, str]] = {}
    for table, name, default_kind in rows:
        columns.setdefault(table, {})[name] = default_kind
    for table, inserted in CATALOG.items():
        assert table in columns, f"{table}: no such table after the migrations"
        assert len(set(inserted)) == len(inserted), f"{table}: a column listed twice"
        missing = set(inserted) - set(columns[table])
        assert not missing, f"{table}: listed but not in the table: {sorted(missing)}"
        unfilled = {name for name, kind in columns[table].items() if name not in inserted and not kind}
        assert not unfilled, f"{table}: not inserted and without a default: {sorted(unfilled)}"
