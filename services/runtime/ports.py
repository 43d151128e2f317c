"""Free loopback ports for services started "on any free port" (`scfed demo`, the test suite).

A port chosen now is bound later, by another process, a second or more after the choice. In
that gap the OS may hand the same port to anyone's outgoing connection when it lies in the
ephemeral range, which is where a bind to port 0 takes it from. With `SCFED_PORT_RANGE` set
("20000-20999"), ports are taken from that range instead, which should lie outside the
ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range): outgoing connections never
take them, and two runs given disjoint ranges never choose the same port. Unset, the OS chooses.
"""

from __future__ import annotations

import os
import random
import socket
import threading

PORT_RANGE_VARIABLE = "SCFED_PORT_RANGE"


class PortRangeError(ValueError):
    """SCFED_PORT_RANGE is not a range of ports; the message says why."""


def port_range(value: str | None = None) -> range | None:
    """The range SCFED_PORT_RANGE (or `value`) names as "LOW-HIGH", both included; None when
    unset or empty."""
    text = os.environ.get(PORT_RANGE_VARIABLE, "") if value is None else value
    text = text.strip()
    if not text:
        return None
    low, dash, high = text.partition("-")
    if not dash or not low.strip().isdigit() or not high.strip().isdigit():
        raise PortRangeError(f"{PORT_RANGE_VARIABLE}={text!r} is not LOW-HIGH, e.g. 20000-20999")
    first, last = int(low), int(high)
    if not 1024 <= first <= last <= 65535:
        raise PortRangeError(
            f"{PORT_RANGE_VARIABLE}={text!r} must have 1024 <= LOW <= HIGH <= 65535"
        )
    return range(first, last + 1)


class _Cursor:
    """Walks a range from a random start, so this process hands out each port once per lap and
    two processes sharing the range rarely start near each other."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.next = random.randrange(len(ports))
        self.lock = threading.Lock()

    def take(self) -> int:
        with self.lock:
            port = self.ports[self.next]
            self.next = (self.next + 1) % len(self.ports)
            return port


_cursors: dict[range, _Cursor] = {}
_cursors_lock = threading.Lock()


def _bindable(host: str, port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, port))
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now: the next bindable one of SCFED_PORT_RANGE when set (each
    handed out once per lap of the range in this process), else one the OS chooses."""
    ports = port_range()
    if ports is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    with _cursors_lock:
        cursor = _cursors.setdefault(ports, _Cursor(ports))
    for _ in range(len(ports)):
        port = cursor.take()
        if _bindable(host, port):
            return port
    raise OSError(f"no port of {PORT_RANGE_VARIABLE}={ports.start}-{ports.stop - 1} is free")
