"""One webhook delivery: the JSON body MLflow sends, signed as MLflow signs it (Standard Webhooks'
scheme), POSTed and retried with exponential backoff while the receiver is unreachable or answers 429
or 5xx. Receivers written for MLflow's webhooks verify these as they are."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from runstream.webhooks.targets import RefusedTarget, check_target

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
_RETRIED = {429, 500, 502, 503, 504}  # MLflow's
_MAX_BODY = 64 * 1024  # of a receiver's answer, kept for the test endpoint's result


@dataclass(frozen=True)
class Target:
    webhook_id: str
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    success: bool
    attempts: int
    status: int | None = None
    body: str | None = None
    error: str | None = None


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def body(event: str, payload: dict[str, Any]) -> str:
    entity, _, action = event.partition(".")
    sent = {"entity": entity, "action": action, "timestamp": datetime.now(UTC).isoformat(), "data": payload}
    return json.dumps(sent)


class Sender:
    """`timeout_s` per request; a failing delivery is tried again, waiting 1, 2, 4 ... (at most
    `max_wait_s`, or what a Retry-After asks, within that) seconds, until `retry_s` have passed."""

    def __init__(self, timeout_s: float = 30.0, retry_s: float = 300.0, max_wait_s: float = 60.0) -> None:
        self.retry_s = retry_s
        self.max_wait_s = max_wait_s
        # No proxies from the environment: the peer checked must be the receiver itself.
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        target: Target,
        event: str,
        payload: dict[str, Any],
        delivery_id: str,
        retry: bool = True,
        stop: threading.Event | None = None,
    ) -> Outcome:
        """Delivers until the receiver takes it (any status below 400), refuses it (another 4xx), or
        the retries run out; `stop` set gives up at once. A redelivery keeps `delivery_id`."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + (self.retry_s if retry else 0)
        wait = 1.0
        attempts = 0
        while True:
            attempts += 1
            outcome, retryable, retry_after = self._attempt(target, event, payload, delivery_id, attempts)
            pause = min(retry_after if retry_after is not None else wait, self.max_wait_s)
            if not retryable or time.monotonic() + pause > deadline:
                return outcome
            if stop.wait(pause):
                return outcome
            wait *= 2

    def _attempt(
        self, target: Target, event: str, payload: dict[str, Any], delivery_id: str, attempts: int
    ) -> tuple[Outcome, bool, float | None]:
        """The outcome, whether trying again may change it, and when the receiver asked to be retried."""
        try:
            check_target(target.url)
        except RefusedTarget as exc:
            return Outcome(False, attempts, error=str(exc)), False, None
        text = body(event, payload)
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", DELIVERY_ID_HEADER: delivery_id, TIMESTAMP_HEADER: timestamp}
        if target.secret:
            headers[SIGNATURE_HEADER] = sign(target.secret, delivery_id, timestamp, text)
        try:
            answer = self._http.post(target.url, content=text.encode(), headers=headers)
        except httpx.HTTPError as exc:  # unreachable, timed out
            return Outcome(False, attempts, error=f"{type(exc).__name__}: {exc}"), True, None
        status = answer.status_code
        outcome = Outcome(status < 400, attempts, status, answer.text[:_MAX_BODY])
        return outcome, status in _RETRIED, _retry_after(answer)


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None
