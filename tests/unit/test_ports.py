"""Free ports: from SCFED_PORT_RANGE when set (each once per lap, skipping taken ones), else the
OS's choice; a malformed range is refused with the reason."""

from __future__ import annotations

import socket

import pytest

from services.runtime.ports import PORT_RANGE_VARIABLE, PortRangeError, free_port, port_range


@pytest.mark.parametrize(
    "value", ["20000", "a-b", "20000-", "-20000", "30000-20000", "80-90", "60000-70000", "1-2-3"]
)
def test_a_malformed_range_is_refused_with_the_variable_named(value: str) -> None:
    with pytest.raises(PortRangeError, match=PORT_RANGE_VARIABLE):
        port_range(value)


def test_a_range_includes_both_ends_and_unset_is_none() -> None:
    assert port_range(" 20000-20002 ") == range(20000, 20003)
    assert port_range("") is None


def _set_range(monkeypatch: pytest.MonkeyPatch, size: int) -> range:
    """A range of `size` ports starting at one the OS chose, set as SCFED_PORT_RANGE."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        start = probe.getsockname()[1]
    # Any run of ports from the OS's choice would do; keep within the valid bounds.
    start = min(start, 65535 - size)
    ports = range(start, start + size)
    monkeypatch.setenv(PORT_RANGE_VARIABLE, f"{ports.start}-{ports.stop - 1}")
    return ports


def test_ports_come_from_the_range_each_once_per_lap_and_skip_a_taken_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = _set_range(monkeypatch, 6)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[2]))
        taken.listen()
        free_now = [p for p in ports if _bindable(p)]
        given = [free_port() for _ in free_now]
        assert ports[2] not in free_now
        assert sorted(given) == free_now
        with pytest.raises(OSError, match="no port of SCFED_PORT_RANGE"):
            _fill_and_ask(ports, taken=ports[2])


def _bindable(port: int) -> bool:
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def _fill_and_ask(ports: range, *, taken: int) -> int:
    """Binds every port of `ports` but `taken` (bound by the caller), then asks for one."""
    held = []
    try:
        for port in ports:
            if port == taken:
                continue
            sock = socket.socket()
            held.append(sock)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken by someone else: just as good
            sock.listen()
        return free_port()
    finally:
        for sock in held:
            sock.close()


def test_without_a_range_the_os_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PORT_RANGE_VARIABLE, raising=False)
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
