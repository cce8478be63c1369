"""The `runstream` command's front door: its subcommands are the server's roles and tools, which need
the server extra; a client-only install says so instead of a traceback."""

from __future__ import annotations

import sys

SERVER_MODULES = frozenset({"click", "fastapi", "uvicorn", "clickhouse_connect", "chdb", "confluent_kafka", "boto3"})


def main() -> None:
    if sys.argv[1:2] == ["import"]:  # a client-side tool: needs mlflow, not the server extra
        from runstream.mlflow_api.importer.cli import main as import_main

        sys.exit(import_main(sys.argv[2:]))
    try:
        from runstream.server.cli import main as cli
    except ModuleNotFoundError as exc:
        if exc.name not in SERVER_MODULES:
            raise
        sys.exit(
            f"the runstream command needs the server extra ({exc.name} is not installed): "
            "pip install 'runstream[server]'"
        )
    cli()
