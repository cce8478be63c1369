"""Errors as the API answers them: HTTP status + {"error_code", "message"} (MLflow's shape)."""

from __future__ import annotations

import logging
import re

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from runstream.base.responses import json_response

log = logging.getLogger(__name__)

# A query reached a server that could not reach a shard of a cluster: 279 ALL_CONNECTION_TRIES_FAILED,
# 210 NETWORK_ERROR, 209 SOCKET_TIMEOUT. Any answer then would leave that shard's rows out.
_SHARD_DOWN = {279, 210, 209}
_SHARD_ADDRESS = re.compile(r"\((\[?[\w.:-]+\]?:\d+)[,)]")
# ClickHouse's error codes for a query stopped by a limit it ran under (ReadLimits), with what to change.
_LIMIT_CODES = {
    159: "time limit (max_execution_time; --read-timeout)",
    160: "time limit (estimated; max_execution_time; --read-timeout)",
    241: "memory limit (max_memory_usage; --read-max-memory)",
}
_CODE = re.compile(r"Code: (\d+)\.")


def over_read_limit(exc: DatabaseError) -> ApiError | None:
    """The answer to a query ClickHouse stopped at a read limit; None for any other database error."""
    found = _CODE.search(str(exc))
    limit = _LIMIT_CODES.get(int(found.group(1))) if found else None
    if limit is None:
        return None
    return ApiError(
        429,
        "RESOURCE_EXHAUSTED",
        f"the query went over the server's read {limit}: ask for less (fewer runs, keys or buckets, a narrower "
        "x range, a smaller page or filter to fewer runs), or have the operator raise the limit",
    )


def _shard_unreachable(exc: DatabaseError) -> ApiError | None:
    found = _CODE.search(str(exc))
    if not found or int(found.group(1)) not in _SHARD_DOWN:
        return None
    address = _SHARD_ADDRESS.search(str(exc))
    shard = address[1] if address else "unknown address"
    return unavailable(f"a ClickHouse shard is unreachable ({shard}); retry later")


class InvalidRequest(ValueError):
    """Raised by query code for input it cannot take; answered as 400 INVALID_PARAMETER_VALUE."""


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def refused(message: str) -> ApiError:
    return ApiError(403, "PERMISSION_DENIED", message)


def unavailable(message: str) -> ApiError:
    return ApiError(503, "TEMPORARILY_UNAVAILABLE", message)


def _response(err: ApiError) -> Response:
    headers = {"Retry-After": "1"} if err.status == 503 else None
    return json_response({"error_code": err.error_code, "message": err.message}, err.status, headers)


class ContentLengthCheck:
    """A Content-Length that is not a whole number is a 400 before anything reads it (the metrics
    middleware would fail on it). uvicorn's parser refuses such requests; in-process callers don't."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and not value.isdigit():
                    refused = invalid(
                        f"Content-Length must be a whole number of bytes, not {value.decode('latin-1')!r}"
                    )
                    await _response(refused)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _response(exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return _response(invalid(details or "invalid request"))

    async def store_down(request: Request, exc: Exception) -> Response:
        log.warning("ClickHouse unavailable: %s", exc)
        return _response(unavailable("the query store is unavailable; retry later"))

    async def invalid_request(request: Request, exc: Exception) -> Response:
        return _response(invalid(str(exc)))

    async def database_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DatabaseError)
        refused = over_read_limit(exc) or _shard_unreachable(exc)
        if refused is None:
            raise exc  # any other database error is a server error (500)
        log.warning("%s on %s: %s", refused.message, request.url.path, exc)
        return _response(refused)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(InvalidRequest, invalid_request)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(OperationalError, store_down)
    app.add_exception_handler(DatabaseError, database_error)
