"""The scfed pytest plugin: a running federation for a team's tests, like moto for AWS.

Installed with scfed (entry point ``scfed`` in the ``pytest11`` group), so a test only names
the fixture::

    def test_unknown_person_gets_no_detainer(scfed):
        booking = scfed.pick(in_ident=False)
        view = scfed.book(booking)
        assert [r["kind"] for r in view["responses"]][0] == "SRE"

``scfed_federation`` (session) starts the five services in this process on free ports, on
SQLite in a temporary folder, LESC and the field offices on a clock 3600 times faster than the
wall clock (``--scfed-clock``), or drives a federation that already runs (``--scfed-url``).
``scfed`` (each test) empties every service and seeds the same small world again, issuing each
LEA's API key, which the helpers send with the LEA's bookings and reads. The in-process
federation is plaintext on loopback and takes an LEA's ORI on trust; a federation driven with
--scfed-url is dialled as the operator (mutual TLS unless SCFED_TLS=off). Nothing heavier than
pytest is imported until a test asks for a fixture.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .client import Endpoints, ScfedFederation

DEFAULT_CLOCK = "accelerated:3600"
DEFAULT_SEED = 1
DEFAULT_WORLD_SIZE = 20
DEFAULT_TIMEOUT_S = 30.0
MARKER = "scfed_world"
_timings_key = pytest.StashKey["ScfedFederation"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's command-line options (``pytest --help``, group "scfed")."""
    group = parser.getgroup("scfed", "scfed federation (the scfed and scfed_federation fixtures)")
    group.addoption(
        "--scfed-url",
        default=os.environ.get("SCFED_URL"),
        metavar="URL",
        help="Drive the federation already running with its SIB's HTTP edge at URL (env "
        "SCFED_URL) instead of starting one in-process. The other edges come from "
        "--scfed-http/--scfed-grpc, else from the variables the scfed CLI reads "
        "(SCFED_<SERVICE>_ADDR, SCFED_<SERVICE>_HTTP_PORT; default ports 8081.., 50051..). "
        "Its gRPC edges are dialled with the operator's certificate from SCFED_TLS_DIR (default "
        "<SCFED_DATA_DIR>/certs) unless SCFED_TLS=off.",
    )
    group.addoption(
        "--scfed-http",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="With --scfed-url: the HTTP edge of another service (repeatable).",
    )
    group.addoption(
        "--scfed-grpc",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="With --scfed-url: the gRPC address of a service, for seeding (repeatable).",
    )
    group.addoption(
        "--scfed-clock",
        default=DEFAULT_CLOCK,
        metavar="SPEC",
        help="In-process federation: the clock of LESC and the ICE field offices, "
        f"accelerated:<factor> or manual[:<ISO start>] (default {DEFAULT_CLOCK}, so a "
        "matched booking is answered in seconds; step a manual one with scfed.advance).",
    )
    group.addoption(
        "--scfed-seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"Seed of the world each test starts from (default {DEFAULT_SEED}; a test's "
        f"@pytest.mark.{MARKER}(seed=..., size=...) wins).",
    )
    group.addoption(
        "--scfed-world-size",
        type=int,
        default=DEFAULT_WORLD_SIZE,
        metavar="N",
        help=f"Bookings the seeded world plans (default {DEFAULT_WORLD_SIZE}).",
    )
    group.addoption(
        "--scfed-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"How long the helpers wait for an answer (default {DEFAULT_TIMEOUT_S:g}).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Registers the world marker; refuses a malformed scfed option before any test runs."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed=None, size=None): the world the scfed fixture seeds for this test",
    )
    _given_endpoints(config)
    _agency_clock(config)


def _agency_clock(config: pytest.Config) -> str:
    """The --scfed-clock spec, checked (UsageError when it names no clock)."""
    from ..runtime.clock import clock_from_spec

    spec = str(config.getoption("scfed_clock"))
    try:
        clock_from_spec(spec)
    except ValueError as exc:
        raise pytest.UsageError(f"--scfed-clock: {exc}") from exc
    return spec


def _given_endpoints(config: pytest.Config) -> dict[str, dict[str, str]]:
    """The edges the scfed options name ("http" and "grpc", by agency); UsageError when one
    is malformed."""
    from ..cli.endpoints import agency_item, is_host_port, is_http_url

    given: dict[str, dict[str, str]] = {"http": {}, "grpc": {}}
    try:
        for item in config.getoption("scfed_http"):
            agency, url = agency_item(item, "NAME=http://host:port", is_http_url)
            given["http"][agency] = url.rstrip("/")
        for item in config.getoption("scfed_grpc"):
            agency, address = agency_item(item, "NAME=HOST:PORT", is_host_port)
            given["grpc"][agency] = address
    except ValueError as exc:
        raise pytest.UsageError(f"--scfed-http/--scfed-grpc: {exc}") from exc
    sib_url = config.getoption("scfed_url")
    if sib_url and not is_http_url(sib_url):
        raise pytest.UsageError(f"--scfed-url: expected http://host:port, got {sib_url!r}")
    if sib_url:
        given["http"]["sib"] = sib_url.rstrip("/")
    return given


def _remote_endpoints(config: pytest.Config) -> Endpoints:
    """A running federation's edges: the options over the CLI's environment defaults."""
    from ..cli.endpoints import grpc_addresses, http_urls
    from ..federation import Agency
    from ..runtime.config import ServiceSettings
    from .client import Endpoints

    given = _given_endpoints(config)
    http = {Agency(k): v for k, v in {**http_urls(), **given["http"]}.items()}
    grpc = {Agency(k): v for k, v in {**grpc_addresses(), **given["grpc"]}.items()}
    settings = ServiceSettings()
    tls_dir = settings.resolved_tls_dir() if settings.tls == "on" else None
    return Endpoints(http=http, grpc=grpc, tls_dir=tls_dir)


@pytest.fixture(scope="session")
def scfed_federation(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScfedFederation]:
    """A running federation for the whole session: started in-process, or the one
    --scfed-url names. Tests normally take `scfed`, which also resets and seeds it."""
    from contextlib import AsyncExitStack

    from ..federation import Agency
    from ..runtime.clock import clock_from_spec
    from .client import Endpoints, ScfedFederation
    from .federation import DatabaseChoice, running_federation
    from .loop import LoopThread

    started = time.perf_counter()
    spec: str | None = None
    loop = LoopThread()
    stack = AsyncExitStack()
    timeout = float(pytestconfig.getoption("scfed_timeout"))
    try:
        if pytestconfig.getoption("scfed_url"):
            endpoints = _remote_endpoints(pytestconfig)
        else:
            spec = _agency_clock(pytestconfig)
            agency_time = [a for a in Agency if a.profile.works_on_agency_time]
            clocks = {a: {"clock": clock_from_spec(spec)} for a in agency_time}
            db = DatabaseChoice("sqlite", tmp_path_factory.mktemp("scfed"))
            # LESC's analysts keep their desk times: the fast clock makes them seconds.
            fed = loop.run(
                stack.enter_async_context(running_federation(db, instant_analysts=False, **clocks))
            )
            endpoints = Endpoints(
                http={Agency(k): v for k, v in fed.http_urls().items()},
                grpc={Agency(k): v for k, v in fed.addresses().items()},
            )
        federation = ScfedFederation(endpoints, loop, timeout=timeout, agency_clock=spec)
        federation.timings.started_s = time.perf_counter() - started
        pytestconfig.stash[_timings_key] = federation
        try:
            yield federation
        finally:
            federation.close()
    finally:
        loop.run(stack.aclose())
        loop.close()


@pytest.fixture
def scfed(scfed_federation: ScfedFederation, request: pytest.FixtureRequest) -> ScfedFederation:
    """The federation, every service emptied and the test's world seeded again."""
    marker = request.node.get_closest_marker(MARKER)
    kwargs = dict(marker.kwargs) if marker else {}
    seed = kwargs.get("seed") or request.config.getoption("scfed_seed")
    size = kwargs.get("size") or request.config.getoption("scfed_world_size")
    scfed_federation.reset()
    scfed_federation.seed(int(seed), int(size))
    return scfed_federation


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line on what the federation cost: its start and the resets and seeds."""
    federation = terminalreporter.config.stash.get(_timings_key, None)
    if federation is None:
        return
    t = federation.timings
    per_test = [r + s for r, s in zip(t.resets_s, t.seeds_s, strict=False)]
    mean = sum(per_test) / len(per_test) if per_test else 0.0
    terminalreporter.write_line(
        f"scfed: federation ready in {t.started_s:.2f}s; reset+seed {mean:.3f}s per test "
        f"over {len(per_test)} tests (reset {_mean(t.resets_s):.3f}s, "
        f"seed {_mean(t.seeds_s):.3f}s)"
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
