"""How the SDK delivers events: HTTP to the gateway, or straight into Kafka. Chosen by tracking URI:
`http(s)://host:port` or `kafka://host:port[,host:port...]`."""

from __future__ import annotations

import atexit
import functools
import os
from collections.abc import Generator
from typing import Protocol
from urllib.parse import urlparse

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from runstream.eventlog.base import Positions, parse_token
from runstream.schemas.framing import CONTENT_TYPE, MAX_EVENTS, frame

DEFAULT_TRACKING_URI = "http://127.0.0.1:5000"
_tracking_uri: str | None = None  # set_tracking_uri's, over the environment's


def set_tracking_uri(uri: str) -> None:
    global _tracking_uri
    _tracking_uri = uri


def get_tracking_uri() -> str:
    return _tracking_uri or os.environ.get("RUNSTREAM_TRACKING_URI") or DEFAULT_TRACKING_URI


def api_uri(tracking_uri: str | None = None) -> str:
    uri = tracking_uri or get_tracking_uri()
    if urlparse(uri).scheme in ("http", "https"):
        return uri
    api = os.environ.get("RUNSTREAM_API_URI")
    if not api:
        raise ValueError(f"reads need an http(s) URI: {uri!r} is not one and RUNSTREAM_API_URI is not set")
    return api


DEFAULT_TOPIC_PREFIX = "runstream."
_REQUEST_BYTES = 8 * 1024 * 1024  # split sends so one request stays well under the gateway's limit


class Transport(Protocol):
    def send(self, messages: list[tuple[str, bytes]]) -> Positions:
        """Delivers (key, message) pairs durably, in order, or raises."""
        ...

    def close(self) -> None: ...


class RejectedEvents(ValueError):
    """The server refused the events (4xx): sending them again cannot succeed."""


def transient_http_error(exc: BaseException) -> bool:
    """Worth retrying: the server was unreachable or answered 5xx (503: retriable by contract)."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


def http_retrying(retry_for_s: float) -> Retrying:
    """Retries transient HTTP failures with exponential backoff for up to `retry_for_s` seconds."""
    return Retrying(
        retry=retry_if_exception(transient_http_error),
        wait=wait_exponential(multiplier=0.1, max=5),
        stop=stop_after_delay(retry_for_s),
        reraise=True,
    )


def http_auth() -> httpx.Auth | None:
    """Credentials for a server with auth on, from the environment (as MLflow's client takes them):
    RUNSTREAM_TRACKING_TOKEN (Bearer), or RUNSTREAM_TRACKING_USERNAME and _PASSWORD (Basic)."""
    token = os.environ.get("RUNSTREAM_TRACKING_TOKEN")
    if token:
        return _Bearer(token)
    user = os.environ.get("RUNSTREAM_TRACKING_USERNAME")
    return httpx.BasicAuth(user, os.environ.get("RUNSTREAM_TRACKING_PASSWORD", "")) if user else None


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class HttpTransport:
    """One per process and server, shared by every run (its connections too): making a client (its
    TLS context) costs far more than a short run's events. Credentials are read at each send."""

    def __init__(self, base_url: str, retry_for_s: float = 300.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=60.0)
        self._retry_for_s = retry_for_s

    def send(self, messages: list[tuple[str, bytes]]) -> Positions:
        positions: Positions = {}
        chunk: list[bytes] = []
        size = 0
        for _, message in messages:
            if chunk and (size + len(message) > _REQUEST_BYTES or len(chunk) == MAX_EVENTS):
                positions.update(self._post(frame(chunk)))
                chunk, size = [], 0
            chunk.append(message)
            size += len(message) + 4
        if chunk:
            positions.update(self._post(frame(chunk)))
        return positions

    def _post(self, body: bytes) -> Positions:
        for attempt in http_retrying(self._retry_for_s):
            with attempt:
                headers = {"content-type": CONTENT_TYPE}
                auth = http_auth() or httpx.Auth()
                response = self._http.post("/api/v1/events", content=body, headers=headers, auth=auth)
                if 400 <= response.status_code < 500:
                    raise RejectedEvents(f"{response.status_code}: {response.text}")
                response.raise_for_status()
        return parse_token(response.json()["token"])

    def close(self) -> None:
        self._http.close()


class KafkaTransport:
    """One per process and cluster, shared by every run: a producer's start (topic check, idempotent
    producer id) costs far more than a run's events. Closing a run flushes; the producer lives on."""

    def __init__(self, bootstrap: str, topic_prefix: str) -> None:
        try:  # confluent-kafka is an extra: a client logging over HTTP does not need it
            from runstream.eventlog.kafka import KafkaLog, ensure_topic, events_topic
        except ModuleNotFoundError as exc:
            if exc.name != "confluent_kafka":
                raise
            raise RuntimeError("kafka:// tracking URIs need the Kafka extra: pip install 'runstream[kafka]'") from exc
        topic = events_topic(topic_prefix)
        ensure_topic(bootstrap, topic)
        self.log = KafkaLog(bootstrap, topic)
        _kafka_transports.append(self)

    def send(self, messages: list[tuple[str, bytes]]) -> Positions:
        return self.log.append(messages)  # returns once every message is acknowledged

    def close(self) -> None:
        """Nothing to do: send() already waited for the acknowledgements; the producer is shared."""


_kafka_transports: list[KafkaTransport] = []


@functools.cache
def _kafka_transport(bootstrap: str, topic_prefix: str) -> KafkaTransport:
    return KafkaTransport(bootstrap, topic_prefix)


@atexit.register
def close_kafka_transports() -> None:
    """Flushes and closes the process's shared producers: at exit, or before their cluster goes away
    (they would otherwise keep reconnecting to it)."""
    for transport in _kafka_transports:
        transport.log.close()
    _kafka_transports.clear()
    _kafka_transport.cache_clear()


_http_transports: list[HttpTransport] = []


@functools.cache
def _http_transport(uri: str) -> HttpTransport:
    transport = HttpTransport(uri)
    _http_transports.append(transport)
    return transport


@atexit.register
def _close_http_transports() -> None:
    # Registered at import, so it runs after the sender's exit flush (atexit runs last-registered first).
    for transport in _http_transports:
        transport.close()


def _forget_http_transports() -> None:
    """A forked child opens connections of its own."""
    _http_transports.clear()
    _http_transport.cache_clear()


os.register_at_fork(after_in_child=_forget_http_transports)


def transport_for(uri: str) -> Transport:
    """The process's shared transport for `uri`."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        return _http_transport(uri.rstrip("/"))
    if parsed.scheme == "kafka":
        prefix = os.environ.get("RUNSTREAM_TOPIC_PREFIX", DEFAULT_TOPIC_PREFIX)
        return _kafka_transport(parsed.netloc, prefix)
    raise ValueError(f"unsupported tracking URI {uri!r}: use http://host:port or kafka://host:port")
