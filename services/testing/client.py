"""The federation as a team's test sees it: a synchronous facade over a running federation.

Every call blocks until it has its answer, so a plain (non-asyncio) test suite uses it as is;
an asyncio test may call it too (the federation runs on its own loop, never the test's), or
hand a slow wait to a thread with ``await asyncio.to_thread(scfed.book, booking)``.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc import Channel

from scfed.cjis_iafis.v1 import cjis_iafis_pb2_grpc
from scfed.ice_field.v1 import ice_field_pb2_grpc
from scfed.ident.v1 import ident_pb2_grpc
from scfed.lesc.v1 import lesc_pb2_grpc
from scfed.sib.v1 import sib_pb2_grpc

from ..cli.control import post_each
from ..cli.endpoints import tls_operator_headers
from ..cli.remote import trace_http
from ..federation import Agency, parse_agency
from ..lesc.determination import default_status_rules
from ..runtime.clock import parse_duration
from ..runtime.tls import OPERATOR, ChannelFactory, SecureChannels, insecure_channels
from ..sib.lea_client import LeaKeys
from ..world.seeding import SeedCounts, seed_world
from ..world.world import CHARGE_POOL, BookingSpec, World, booking_payload, build_world
from .loop import LoopThread
from .waits import final_booking

# The generated client of each agency's gRPC service.
STUBS: dict[Agency, Callable[[grpc.Channel], Any]] = {
    Agency.SIB: sib_pb2_grpc.StateIdentificationBureauStub,
    Agency.CJIS_IAFIS: cjis_iafis_pb2_grpc.CjisIafisStub,
    Agency.IDENT: ident_pb2_grpc.IdentStub,
    Agency.LESC: lesc_pb2_grpc.LescStub,
    Agency.ICE_FIELD: ice_field_pb2_grpc.IceFieldStub,
}
_LEVELS = {kind.ncic_code: kind.level for kind in CHARGE_POOL}


@dataclass(frozen=True)
class Endpoints:
    """Where a federation answers: each agency's HTTP edge and gRPC address, and the
    operator's certificates when its gRPC hops are mutual TLS (None: plaintext)."""

    http: dict[Agency, str]
    grpc: dict[Agency, str]
    tls_dir: Path | None = None

    @property
    def sib_url(self) -> str:
        """Base URL of the SIB's agency edge."""
        return self.http[Agency.SIB]

    def operator_channels(self) -> ChannelFactory:
        """How the operator's tools (seeding) dial the services."""
        if self.tls_dir is None:
            return insecure_channels
        return SecureChannels.of(self.tls_dir, OPERATOR)

    def blocking_channel(self, agency: Agency) -> Channel:
        """A synchronous channel to an agency, with the operator's certificate under TLS."""
        if self.tls_dir is None:
            return grpc.insecure_channel(self.grpc[agency])
        return SecureChannels.of(self.tls_dir, OPERATOR).blocking(agency, self.grpc[agency])


@dataclass
class Timings:
    """Seconds spent on the federation: its start, and each reset and re-seed."""

    started_s: float = 0.0
    resets_s: list[float] = field(default_factory=list)
    seeds_s: list[float] = field(default_factory=list)


class ScfedFederation:
    """A running federation, driven synchronously: reset, seed, book, wait, read."""

    def __init__(
        self,
        endpoints: Endpoints,
        loop: LoopThread,
        *,
        timeout: float = 30.0,
        agency_clock: str | None = None,
    ) -> None:
        self.endpoints = endpoints
        # The clock spec LESC and the field offices run on, when this session started them.
        self.agency_clock = agency_clock
        self.timeout = timeout
        self.timings = Timings()
        self.world: World | None = None
        self._loop = loop
        # The seeded LEAs' API keys, sent with each LEA route's request (seed() fills them).
        self._lea_keys = LeaKeys()
        self._http = httpx.Client(base_url=endpoints.sib_url, timeout=timeout, auth=self._lea_keys)
        self._channels: dict[Agency, grpc.Channel] = {}
        self._worlds: dict[tuple[int, int], World] = {}

    # Where it runs

    @property
    def sib_url(self) -> str:
        """Base URL of the SIB's agency edge (where LEAs book and read their inbox)."""
        return self.endpoints.sib_url

    def http_url(self, agency: str) -> str:
        """Base URL of an agency's HTTP edge (``sib``, ``cjis-iafis``, ...)."""
        return self.endpoints.http[parse_agency(agency)]

    def address(self, agency: str) -> str:
        """host:port of an agency's gRPC server."""
        return self.endpoints.grpc[parse_agency(agency)]

    def channel(self, agency: str) -> grpc.Channel:
        """A (synchronous) gRPC channel to an agency, open until the session ends."""
        key = parse_agency(agency)
        if key not in self._channels:
            self._channels[key] = self.endpoints.blocking_channel(key)
        return self._channels[key]

    def stub(self, agency: str) -> Any:
        """The generated gRPC client of an agency's service, on its channel."""
        key = parse_agency(agency)
        return STUBS[key](self.channel(key))

    # Between tests

    def reset(self, *, settle_s: float = 5.0) -> dict[str, Any]:
        """Empties every service (records, outbox, inbox, journal, indexes); returns what each
        removed. Raises when a service refuses or does not answer. A reset is meant for a
        quiet federation, so it first gives messages still in flight up to `settle_s` to land
        (the last test's trailing detainer or case update)."""
        started = time.perf_counter()
        with contextlib.suppress(AssertionError):
            self.quiet(timeout=settle_s)
        urls = _named(self.endpoints.http)
        headers = tls_operator_headers(self.endpoints.tls_dir)
        outcome = self._loop.run(post_each(urls, "/v1/admin/reset", None, headers=headers))
        self.timings.resets_s.append(time.perf_counter() - started)
        if outcome.refused or outcome.unreachable:
            raise RuntimeError(f"reset failed: {outcome.as_dict()}")
        self.world = None
        return outcome.done

    def seed(self, seed: int = 1, size: int = 20) -> SeedCounts:
        """Seeds the synthetic world `seed` planning `size` bookings (states, LEAs, field
        offices, IAFIS and IDENT records); it becomes `self.world`."""
        started = time.perf_counter()
        world = self._worlds.get((seed, size))
        if world is None:
            world = self._worlds[seed, size] = build_world(seed, size)
        seeding = seed_world(
            world, _named(self.endpoints.grpc), channels=self.endpoints.operator_channels()
        )
        counts = self._loop.run(seeding)
        self._lea_keys.keys = dict(counts.lea_keys)
        self.timings.seeds_s.append(time.perf_counter() - started)
        self.world = world
        return counts

    # Bookings

    def pick(
        self,
        *,
        in_ident: bool | None = None,
        removable: bool | None = None,
        charge_level: int | None = None,
        searched: bool = True,
    ) -> BookingSpec:
        """The first booking of the seeded world that fits: its person `in_ident` (has an IDENT
        record) or not, `removable` whatever their history, its most serious current charge
        at Appendix A `charge_level`, and (`searched`) booked at an activated LEA of a state
        whose MOA is active with a relaying SIB, so IDENT is searched and answers relayed."""
        world = self._seeded()
        for booking in world.bookings:
            person = world.person(booking.person_id)
            status = person.immigration.status if person.immigration else None
            if in_ident is not None and (status is not None) != in_ident:
                continue
            if removable is not None and (status in _always_removable()) != removable:
                continue
            level = min((_LEVELS.get(c.ncic_code, 3) for c in booking.charges), default=3)
            if charge_level is not None and level != charge_level:
                continue
            if searched and not _searched(world, booking.ori):
                continue
            return booking
        raise LookupError(
            f"no booking of world {world.seed} fits; seed a larger world (--scfed-world-size)"
        )

    def payload(self, booking: BookingSpec) -> dict[str, Any]:
        """The JSON body an LEA posts for a booking of the seeded world."""
        return booking_payload(self._seeded(), booking)

    def submit(self, booking: BookingSpec | Mapping[str, Any]) -> str:
        """Posts a booking (of the seeded world, or a raw JSON body) to the SIB; returns its
        TCN. Raises when the SIB does not accept it."""
        body = self.payload(booking) if isinstance(booking, BookingSpec) else dict(booking)
        r = self._http.post("/v1/bookings", json=body)
        if r.status_code not in (200, 202):
            raise AssertionError(f"the SIB refused the booking: {r.status_code} {r.text}")
        return str(r.json()["tcn"])

    def final(self, tcn: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Waits until the booking is answered or refused; returns the SIB's view of it."""

        async def wait() -> dict[str, Any]:
            async with httpx.AsyncClient(
                base_url=self.sib_url, timeout=self.timeout, auth=self._lea_keys
            ) as client:
                return await final_booking(client, tcn, timeout=timeout or self.timeout)

        return self._loop.run(wait())

    def book(
        self, booking: BookingSpec | Mapping[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Submits a booking and waits for its final answer; returns the SIB's view."""
        return self.final(self.submit(booking), timeout=timeout)

    def booking(self, tcn: str) -> dict[str, Any]:
        """The SIB's view of a booking now (status, responses)."""
        r = self._http.get(f"/v1/bookings/{tcn}")
        r.raise_for_status()
        return dict(r.json())

    # What the LEAs and the agencies hold

    def inbox(self, ori: str, *, kind: str | None = None, tcn: str | None = None) -> list[Any]:
        """The LEA's inbox at the SIB (relayed responses and detainers), optionally only the
        messages of one `kind` ("SRE", "IDR/IAR", "I-247", ...) or of one booking."""
        messages: list[Any] = []
        after = 0
        while True:
            r = self._http.get(
                f"/v1/agencies/{ori}/messages", params={"after": after, "limit": 1000}
            )
            r.raise_for_status()
            page = r.json()
            if not page:
                break
            messages.extend(page)
            after = page[-1]["id"]
        return [
            m
            for m in messages
            if (kind is None or m["kind"] == kind) and (tcn is None or m["tcn"] == tcn)
        ]

    def wait_inbox(
        self,
        ori: str,
        *,
        kind: str,
        tcn: str | None = None,
        count: int = 1,
        timeout: float | None = None,
    ) -> list[Any]:
        """Waits until the LEA's inbox holds `count` messages of `kind` (for `tcn`)."""
        found: list[Any] = []

        def arrived() -> bool:
            nonlocal found
            found = self.inbox(ori, kind=kind, tcn=tcn)
            return len(found) >= count

        what = f"{count} {kind} message(s) for {ori}" + (f" about {tcn}" if tcn else "")
        _until(arrived, timeout=timeout or self.timeout, what=what)
        return found

    def journal(self, tcn: str) -> list[dict[str, Any]]:
        """Every service's journal entries for a booking, in time order."""
        urls = _named(self.endpoints.http)
        entries, unreachable = self._loop.run(trace_http(tcn, urls))
        if unreachable:
            raise RuntimeError(f"journal not readable at {', '.join(unreachable)}")
        return entries

    def quiet(self, *, timeout: float | None = None) -> None:
        """Waits until no service holds a message still to deliver."""

        def idle() -> bool:
            for url in self.endpoints.http.values():
                stats = self._http.get(f"{url}/v1/outbox").json()
                if stats["pending"] or stats["inflight"]:
                    return False
            return True

        _until(idle, timeout=timeout or self.timeout, what="every outbox to drain")

    def advance(self, duration: str | timedelta, *, agency: str | None = None) -> dict[str, Any]:
        """Steps the manual clocks (``--scfed-clock manual``) by `duration` ("20m", "P2D" or a
        timedelta), of one agency or of all that run one; returns each stepped clock."""
        span = duration if isinstance(duration, timedelta) else parse_duration(duration)
        urls = _named(self.endpoints.http)
        if agency is not None:
            urls = {str(parse_agency(agency)): self.http_url(agency)}
        body = {"seconds": span.total_seconds()}
        headers = tls_operator_headers(self.endpoints.tls_dir)
        outcome = self._loop.run(post_each(urls, "/v1/clock/advance", body, headers=headers))
        if outcome.unreachable or not outcome.done or (agency and outcome.refused):
            raise RuntimeError(f"clock advance failed: {outcome.as_dict()}")
        return outcome.done

    def close(self) -> None:
        """Closes the HTTP client and every gRPC channel."""
        self._http.close()
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def _seeded(self) -> World:
        if self.world is None:
            raise RuntimeError("no world is seeded: call seed() (the scfed fixture does)")
        return self.world


def _until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Polls `check` from the caller's thread (never the federation's loop, which must keep
    serving) until it holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@functools.cache
def _always_removable() -> frozenset[str]:
    """Immigration statuses removable whatever the criminal history (LESC's status rules)."""
    return frozenset(n for n, rule in default_status_rules().items() if rule.removable == "always")


def _searched(world: World, ori: str) -> bool:
    state = world.state_of(ori)
    return world.agency(ori).activated and state.moa_status == "ACTIVE" and state.relay_capable


def _named(by_agency: Mapping[Agency, str]) -> dict[str, str]:
    """The same mapping keyed by agency name, as the CLI's helpers take it."""
    return {str(agency): value for agency, value in by_agency.items()}
