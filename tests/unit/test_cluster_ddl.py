"""Where each migration statement goes on a cluster: every one has a placement, and the Replicated
engines (runnable only on users' clusters with Keeper) are those the migrations' engines become."""

import re

import pytest

from runstream.projector.cluster_ddl import ClusterLayout
from runstream.projector.migrate import MIGRATIONS_DIR, statements

LAYOUT = ClusterLayout("c", "db", "db_local", replicated=True)
ALL = [s for path in sorted(MIGRATIONS_DIR.glob("*.sql")) for s in statements(path.read_text())]


def test_every_table_gets_a_replicated_local_table_and_a_distributed_one_by_its_entity():
    tables = [s for s in ALL if s.startswith("CREATE TABLE")]
    for statement in tables:
        (local_db, local), (db, distributed) = LAYOUT.place(statement)
        named = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
        assert named is not None
        name = named[1]
        assert (local_db, db) == ("db_local", "db")
        assert re.search(
            r"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/\{shard\}/\{database\}/\{table\}', '\{replica\}'",
            local,
        )
        assert distributed.startswith(
            f"CREATE TABLE IF NOT EXISTS {name} AS db_local.{name} "
            f"ENGINE = Distributed(c, db_local, {name}, cityHash64("
        )
    [progress] = [s for s in tables if "projector_progress" in s]
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', offset)"
        in LAYOUT.place(progress)[0][1]
    )
    [summary] = [s for s in tables if "TABLE IF NOT EXISTS metric_summary" in s]
    assert LAYOUT.place(summary)[1][1].endswith("cityHash64(run_id))")  # its key starts with `key`
    [search] = [s for s in tables if "TABLE IF NOT EXISTS run_search " in s]
    assert LAYOUT.place(search)[1][1].endswith("cityHash64(run_id))")  # ordered by experiment first
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)"
        in (LAYOUT.place(search)[0][1])
    )


def test_views_read_the_distributed_tables_and_the_rest_runs_on_the_local_ones():
    backfills_from_views = 0
    for statement in ALL:
        places = LAYOUT.place(statement)
        if re.match(r"CREATE (OR REPLACE )?VIEW", statement):
            assert places == [("db", statement)]
        elif re.match(r"INSERT INTO \w+ SELECT \* FROM \w+_source$", statement):
            # Through the Distributed tables, done before the migration is recorded, over the shards
            # migrated so far.
            settings = "distributed_foreground_insert = 1, skip_unavailable_shards = 1"
            assert places == [("db", f"{statement} SETTINGS {settings}")]
            backfills_from_views += 1
        elif not statement.startswith("CREATE TABLE"):
            assert places == [("db_local", statement)]
    assert backfills_from_views == 1  # run_search's, from run_search_source


def test_without_keeper_local_tables_keep_insert_tokens():
    plain = ClusterLayout("c", "db", "db_local", replicated=False)
    [details] = [s for s in ALL if "TABLE IF NOT EXISTS run_details " in s]
    local = plain.place(details)[0][1]
    assert "SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 64" in local
    with pytest.raises(ValueError, match="no cluster placement"):
        plain.place("DROP TABLE metrics")
