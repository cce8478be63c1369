"""Where a webhook may point, by MLflow's rules: a URL of an allowed scheme (https, unless
RUNSTREAM_WEBHOOK_ALLOWED_SCHEMES lists more) whose host resolves only to public addresses, so that a
webhook cannot reach the servers' own network, unless RUNSTREAM_WEBHOOK_ALLOW_PRIVATE_IPS is true (for
receivers on a private network, or tests). MLflow's names for both (MLFLOW_WEBHOOK_...) are read too:
a team moving off MLflow keeps its settings. Checked when a webhook is saved and before every send."""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit


class RefusedTarget(ValueError):
    """The URL may not receive webhooks; the message says why."""


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"RUNSTREAM_{name}", os.environ.get(f"MLFLOW_{name}", default))


def allowed_schemes() -> list[str]:
    return [s.strip() for s in _setting("WEBHOOK_ALLOWED_SCHEMES", "https").split(",") if s.strip()]


def private_allowed() -> bool:
    return _setting("WEBHOOK_ALLOW_PRIVATE_IPS", "false").strip().lower() in ("1", "true", "yes")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


def check_target(url: str) -> None:
    """Raises RefusedTarget unless deliveries may go to `url` now (its host is resolved here)."""
    if not url.strip():
        raise RefusedTarget(f"Webhook URL cannot be empty or just whitespace: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedTarget(f"Invalid webhook URL {url!r}: {exc}") from exc
    schemes = allowed_schemes()
    if parts.scheme not in schemes:
        raise RefusedTarget(f"Invalid webhook URL scheme: {parts.scheme!r}. Allowed schemes are: {', '.join(schemes)}.")
    host = parts.hostname
    if not host:
        raise RefusedTarget(f"Webhook URL must include a hostname: {url!r}")
    if private_allowed():
        return
    try:
        found = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:  # UnicodeError is a ValueError
        raise RefusedTarget(f"Cannot resolve webhook URL hostname {host!r}: {exc}") from exc
    for *_, address in found:
        if not _public(str(address[0])):
            raise RefusedTarget(
                f"Webhook URL must not resolve to a non-public IP address. {host!r} resolves to {address[0]}."
            )
