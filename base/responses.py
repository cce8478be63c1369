"""Response bodies: JSON written with orjson (numpy arrays included, no per-element Python on large
series), or, for clients that accept it, columns as an Arrow IPC stream (no text at all)."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
from fastapi.responses import Response

from runstream.schemas.wire import ARROW_STREAM, METADATA_KEY


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def accepts_arrow(accept: str | None) -> bool:
    return accept is not None and ARROW_STREAM in accept


def arrow_response(table: pa.Table, metadata: dict[str, Any]) -> Response:
    """The columns as one Arrow IPC stream; what the JSON body carries beside them rides along as
    JSON in the schema metadata."""
    table = table.replace_schema_metadata({METADATA_KEY: orjson.dumps(metadata)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
