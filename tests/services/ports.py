"""Free TCP ports on 127.0.0.1."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999): outgoing connections never take these,
# so a port stays free while a broker restarts on it.
PORT_RANGE = range(20000, 32768)


def free_ports(count: int) -> list[int]:
    """Return `count` distinct TCP ports that are free on 127.0.0.1 right now.

    Every picked port stays bound until all are picked, so none is returned twice.
    Another process may still take one before the caller binds it: rare, since the
    servers here bind within seconds and the range is outside the ephemeral one.
    """
    with ExitStack() as stack:
        ports: list[int] = []
        for port in random.sample(PORT_RANGE, len(PORT_RANGE)):
            if len(ports) == count:
                break
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            ports.append(port)
        if len(ports) < count:
            raise RuntimeError(f"fewer than {count} free ports in {PORT_RANGE}")
        return ports


def free_port() -> int:
    """Return one TCP port that is free on 127.0.0.1 right now."""
    return free_ports(1)[0]


def port_is_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
