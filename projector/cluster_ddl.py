"""Where each migration statement runs on a ClickHouse cluster, and in what form: the one place that
turns the single-server DDL of migrations/ into a cluster's.

Every node gets each table twice: the rows in DATABASE_local (the statement as written; on a cluster
with Keeper a Replicated* engine, one replica per node of a shard), and in DATABASE a `Distributed`
table of the same name over them, which the code reads and writes. A table is sharded by its run
(`run_id`), else by its first column (experiment, model, registered model id): an entity's rows, and
a replay's copies of them, meet on one shard, so ReplacingMergeTree/AggregatingMergeTree collapses and
FINAL stay right per shard, and materialized views and backfills run local table to local table.
Views (plain) read the Distributed tables; this engine refuses ON CLUSTER, so each node gets its DDL.
A backfill from such a view (`INSERT ... FROM name_source`) runs there too, writing through the
Distributed table: each node runs it as it is migrated, over the shards migrated so far (the others
have no tables yet), so the last one covers every shard; the target's fold keeps one row of the copies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# How many recent insert tokens a non-replicated table remembers (replicated ones keep their own
# window in Keeper): a retried insert carrying one adds nothing.
DEDUP_WINDOW = 1000

_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) \(\s*(\w+)", re.S)
_ENGINE = re.compile(r"ENGINE = (\w*)MergeTree(?:\(([^)]*)\))?")
_LOCAL = re.compile(r"^(CREATE MATERIALIZED VIEW|INSERT|ALTER)\b")
_VIEW = re.compile(r"^CREATE (OR REPLACE )?VIEW\b")
_FROM_VIEW = re.compile(r"^INSERT INTO \w+ SELECT .* FROM \w+_source\b", re.S)


@dataclass(frozen=True)
class ClusterLayout:
    cluster: str
    database: str
    local_database: str
    replicated: bool  # the cluster has Keeper: a shard's replicas hold one Replicated* table

    def place(self, statement: str) -> list[tuple[str, str]]:
        """(database, statement) pairs to run on each node, in order, for one migration statement."""
        table = _CREATE_TABLE.match(statement)
        if table is not None:
            name, first_column = table[1], table[2]
            key = "run_id" if re.search(r"^\s*run_id\s", statement, re.M) else first_column
            return [
                (self.local_database, self._local_table(statement)),
                (
                    self.database,
                    f"CREATE TABLE IF NOT EXISTS {name} AS {self.local_database}.{name} "
                    f"ENGINE = Distributed({self.cluster}, {self.local_database}, {name}, cityHash64({key}))",
                ),
            ]
        if _FROM_VIEW.match(statement):
            settings = "distributed_foreground_insert = 1, skip_unavailable_shards = 1"
            return [(self.database, f"{statement} SETTINGS {settings}")]
        if _LOCAL.match(statement):
            return [(self.local_database, statement)]
        if _VIEW.match(statement):
            return [(self.database, statement)]
        raise ValueError(f"no cluster placement for this migration statement: {statement[:80]!r}")

    def _local_table(self, statement: str) -> str:
        if self.replicated:
            return _ENGINE.sub(_replicated_engine, statement, count=1)
        setting = f"non_replicated_deduplication_window = {DEDUP_WINDOW}"
        if re.search(r"^SETTINGS\b", statement, re.M):
            return re.sub(r"^SETTINGS ", f"SETTINGS {setting}, ", statement, count=1, flags=re.M)
        return f"{statement}\nSETTINGS {setting}"


def _replicated_engine(match: re.Match[str]) -> str:
    # {shard} and {replica} come from each server's <macros>; {database} and {table} from the DDL.
    arguments = ["'/clickhouse/tables/{shard}/{database}/{table}'", "'{replica}'"]
    if match[2]:
        arguments.append(match[2])
    return f"ENGINE = Replicated{match[1]}MergeTree({', '.join(arguments)})"
