"""The conformance kit: the contract suite of one agency, run against any server of its proto.

A suite is the agency's cases: every bad input its proto comments document (the shared table in
refusals.py), each RPC's happy path, idempotency by message id, envelope rules and the MOA rules
the agency owns. The kit plays the target's peers (peers.py) on their addresses, so a case checks
the asynchronous follow-on messages the target must send, each within a deadline. A case that
needs the agency's HTTP edge is skipped, saying so, unless its URL is given.

Cases are written once, here, and run both by `scfed conformance` against someone else's server
and by our own integration tests against ours.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import grpc
import httpx

from scfed.common.v1 import common_pb2

from ..federation import Agency
from ..runtime.server import PortUnavailable
from ..sib.lea_client import LeaKeys
from .channels import Dialer
from .peers import SERVICES, FakePeers, Match, Received
from .refusals import Refusal

DEFAULT_DEADLINE_S = 10.0
# How long a case waits to be sure a message the target must not send does not come.
DEFAULT_QUIET_S = 1.5


class CaseFailed(Exception):
    """A case's check failed; the message says what was expected and what happened."""


class CaseSkipped(Exception):
    """A case cannot run against this target (its HTTP edge was not given, say)."""


class Outcome(StrEnum):
    """How one case ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Probe:
    """What a case works with: the target's channel and HTTP edge, and the fake peers."""

    agency: Agency
    dialer: Dialer
    peers: FakePeers
    http: httpx.AsyncClient | None
    deadline: float = DEFAULT_DEADLINE_S
    quiet: float = DEFAULT_QUIET_S
    # Our own services also match the words of each refusal, not only its status.
    strict: bool = False
    # The LEAs' API keys the HTTP client sends (the SIB's cases issue them).
    lea_keys: LeaKeys = field(default_factory=LeaKeys)

    def rpc(self, method: str, *, identity: str | None = None) -> Any:
        """The target's `method`, called (with TLS) as the identity the federation calls it
        as, or as `identity`."""
        path = method_path(self.agency, method)
        channel = (
            self.dialer.for_method(path) if identity is None else self.dialer.channel(identity)
        )
        return getattr(_stub_class(self.agency)(channel), method)

    async def call(self, method: str, request: Any) -> Any:
        """Calls the target's `method`; a refusal fails the case with its status and reason."""
        try:
            return await self.rpc(method)(request, timeout=self.deadline)
        except grpc.aio.AioRpcError as err:
            raise CaseFailed(
                f"{method} refused a well-formed request: {err.code().name} {err.details()!r}"
            ) from None

    async def deliver(self, method: str, message: Any) -> Any:
        """Delivers a new message to an inbox RPC: its Ack must name the message id and not
        call it a duplicate."""
        ack = await self.call(method, message)
        if ack.message_id != message.envelope.message_id or ack.duplicate:
            raise CaseFailed(f"{method}: the Ack must name the message id, not duplicate: {ack}")
        return ack

    async def deliver_twice(self, method: str, message: Any) -> None:
        """Delivers the same message twice (a retry after a lost Ack): new, then a duplicate,
        both Acks naming its id."""
        await self.deliver(method, message)
        again = await self.call(method, message)
        if again.message_id != message.envelope.message_id or not again.duplicate:
            raise CaseFailed(
                f"{method}: the repeated message must be acknowledged as a duplicate "
                f"naming its id, got {again}"
            )

    async def refuses(self, refusal: Refusal) -> None:
        """The target answers `refusal.request` with the documented status and a reason."""
        try:
            reply = await self.rpc(refusal.method)(refusal.request, timeout=self.deadline)
        except grpc.aio.AioRpcError as err:
            details = err.details() or ""
            if err.code() != refusal.code:
                raise CaseFailed(
                    f"expected {refusal.code.name}, got {err.code().name} {details!r}"
                ) from None
            if not details.strip():
                raise CaseFailed(f"{refusal.code.name} without a reason") from None
            if self.strict and refusal.words not in details:
                raise CaseFailed(
                    f"{refusal.code.name} {details!r} does not say {refusal.words!r}"
                ) from None
            return
        shown = str(reply).replace("\n", " ")[:160]
        raise CaseFailed(f"expected {refusal.code.name}, the request was accepted: {shown}")

    async def refused_with(self, method: str, request: Any, code: grpc.StatusCode) -> str:
        """Calls `method` expecting `code`; returns the reason given."""
        try:
            reply = await self.rpc(method)(request, timeout=self.deadline)
        except grpc.aio.AioRpcError as err:
            if err.code() != code:
                raise CaseFailed(
                    f"{method}: expected {code.name}, got {err.code().name} {err.details()!r}"
                ) from None
            return err.details() or ""
        shown = str(reply).replace("\n", " ")[:160]
        raise CaseFailed(f"{method}: expected {code.name}, the request was accepted: {shown}")

    async def expect(
        self, peer: Agency, method: str, where: Match | None = None, *, what: str = ""
    ) -> Received:
        """The first message the target sends `peer` by `method` (that `where` accepts), within
        the deadline; fails the case naming what never came."""
        found = await self.peers.wait_for(peer, method, where, within=self.deadline)
        if not found:
            raise CaseFailed(
                f"no {what or method} reached {peer}.{method} within {self.deadline:g} s"
                + _others(self.peers.received)
            )
        if _has_unknown_fields(found[0].message):
            raise CaseFailed(
                f"{found[0].describe()} carries fields the contract does not have (a field that "
                "reads race or ethnicity, say): it must send the proto's fields only"
            )
        return found[0]

    async def expect_none(
        self, peer: Agency, method: str, where: Match | None = None, *, what: str = ""
    ) -> None:
        """Fails the case if the target sends such a message within the quiet window."""
        found = await self.peers.wait_for(peer, method, where, within=self.quiet)
        if found:
            raise CaseFailed(f"{what or method} must not be sent, got {found[0].describe()}")

    async def count(self, peer: Agency, method: str, where: Match | None = None) -> list[Received]:
        """Every such message once the quiet window has passed (for "exactly once" checks)."""
        await asyncio.sleep(self.quiet)
        return self.peers.matching(peer, method, where)

    def http_edge(self) -> httpx.AsyncClient:
        """The target's HTTP edge; skips the case when it was not given."""
        if self.http is None:
            raise CaseSkipped("needs the target's HTTP edge (--http URL)")
        return self.http


def _others(received: Sequence[Received]) -> str:
    """What did arrive, for a failure message."""
    if not received:
        return "; the target sent its peers nothing"
    shown = ", ".join(r.describe() for r in received[-3:])
    return f"; the peers last got: {shown}"


def _has_unknown_fields(message: Any) -> bool:
    """True when the message (at any depth) holds fields its type does not declare."""
    known = type(message)()
    known.CopyFrom(message)
    known.DiscardUnknownFields()
    return bool(known.ByteSize() != message.ByteSize())


def for_booking(tcr: str) -> Match:
    """Accepts a message whose envelope names the booking `tcr`."""
    return lambda r: r.envelope is not None and r.envelope.tcr == tcr


def check_follow_on(
    reply: common_pb2.Envelope, answering: common_pb2.Envelope, *, what: str
) -> None:
    """A follow-on envelope is a new message of its own naming, as TCR, the booking that
    `answering` (an opening with its TCN, or a follow-on with its TCR) belongs to."""
    booking = answering.tcr or answering.tcn
    problems = []
    if not reply.message_id or reply.message_id == answering.message_id:
        problems.append(f"message_id {reply.message_id!r} must be new")
    if not reply.tcn or reply.tcn == answering.tcn:
        problems.append(f"tcn {reply.tcn!r} must be the {what}'s own")
    if reply.tcr != booking:
        problems.append(f"tcr {reply.tcr!r} must name the booking {booking!r}")
    if len(reply.ori) != 9:
        problems.append(f"ori {reply.ori!r} must be nine characters")
    if not 1 <= reply.pry <= 9:
        problems.append(f"pry {reply.pry} must be 1..9")
    if problems:
        raise CaseFailed(f"the {what}'s envelope: " + "; ".join(problems))


def method_path(agency: Agency, method: str) -> str:
    """The full path of `agency`'s `method` (``/scfed.ident.v1.Ident/Search``)."""
    return f"/{SERVICES[agency].full_name}/{method}"


def _stub_class(agency: Agency) -> Callable[[grpc.aio.Channel], Any]:
    from scfed.cjis_iafis.v1 import cjis_iafis_pb2_grpc
    from scfed.ice_field.v1 import ice_field_pb2_grpc
    from scfed.ident.v1 import ident_pb2_grpc
    from scfed.lesc.v1 import lesc_pb2_grpc
    from scfed.sib.v1 import sib_pb2_grpc

    stubs: dict[Agency, Callable[[grpc.aio.Channel], Any]] = {
        Agency.SIB: sib_pb2_grpc.StateIdentificationBureauStub,
        Agency.CJIS_IAFIS: cjis_iafis_pb2_grpc.CjisIafisStub,
        Agency.IDENT: ident_pb2_grpc.IdentStub,
        Agency.LESC: lesc_pb2_grpc.LescStub,
        Agency.ICE_FIELD: ice_field_pb2_grpc.IceFieldStub,
    }
    return stubs[agency]


# --- the cases -------------------------------------------------------------------------------

Check = Callable[[Probe], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    """One contract rule of one agency, checked against a target."""

    agency: Agency
    name: str
    check: Check
    summary: str = ""


@dataclass
class Suite:
    """An agency's cases and what the target must know before they run."""

    agency: Agency
    cases: list[Case] = field(default_factory=list)
    setup: Check | None = None


SUITES: dict[Agency, Suite] = {agency: Suite(agency) for agency in Agency}


def case(agency: Agency, name: str) -> Callable[[Check], Check]:
    """Registers a check as a case of `agency`'s suite under `name` (unique in the suite)."""

    def register(check: Check) -> Check:
        suite = SUITES[agency]
        if any(c.name == name for c in suite.cases):
            raise ValueError(f"{agency} already has a case named {name!r}")
        summary = (check.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        suite.cases.append(Case(agency, name, check, " ".join(summary.split())))
        return check

    return register


def setup(agency: Agency) -> Callable[[Check], Check]:
    """Registers what the target must be told before `agency`'s cases run."""

    def register(check: Check) -> Check:
        SUITES[agency].setup = check
        return check

    return register


def refusal_cases(agency: Agency, refusals: Iterable[Refusal]) -> None:
    """One case per documented refusal of `agency`'s RPCs."""
    for refusal in refusals:
        if refusal.service != agency:
            continue

        async def check(probe: Probe, refusal: Refusal = refusal) -> None:
            await probe.refuses(refusal)

        summary = f"{refusal.method} answers {refusal.code.name}: {refusal.name}"
        SUITES[agency].cases.append(
            Case(agency, f"refuses {refusal.method}: {refusal.name}", check, summary)
        )


def suite(agency: Agency) -> Suite:
    """The agency's suite with every case registered (imports the case modules)."""
    from . import cases  # noqa: F401  (registers the cases on import)

    return SUITES[agency]


def select(cases: Iterable[Case], patterns: Sequence[str]) -> list[Case]:
    """The cases whose name matches any pattern: a substring or a glob, ignoring case; "not X"
    excludes. No pattern: every case."""
    wanted = [p.lower() for p in patterns if not p.lower().startswith("not ")]
    unwanted = [p.lower()[4:].strip() for p in patterns if p.lower().startswith("not ")]

    def hits(name: str, pattern: str) -> bool:
        return pattern in name or fnmatch.fnmatch(name, pattern)

    return [
        c
        for c in cases
        if (not wanted or any(hits(c.name.lower(), p) for p in wanted))
        and not any(hits(c.name.lower(), p) for p in unwanted)
    ]


# --- running and reporting -------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """How one case ended, why, and how long it took."""

    name: str
    outcome: Outcome
    detail: str
    seconds: float


@dataclass
class Report:
    """A suite's run against one target."""

    agency: Agency
    target: str
    results: list[CaseResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        """How many cases ended this way."""
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        """True when no case failed."""
        return self.count(Outcome.FAILED) == 0

    def to_json(self) -> dict[str, Any]:
        """`passed`, `failed`, `skipped` and every case's name, outcome and detail."""
        return {
            "agency": str(self.agency),
            "target": self.target,
            "passed": self.count(Outcome.PASSED),
            "failed": self.count(Outcome.FAILED),
            "skipped": self.count(Outcome.SKIPPED),
            "cases": [
                {
                    "name": r.name,
                    "outcome": str(r.outcome),
                    "detail": r.detail,
                    "seconds": r.seconds,
                }
                for r in self.results
            ],
        }

    def to_junit(self) -> bytes:
        """JUnit XML, one testsuite of one testcase per case."""
        suite = ElementTree.Element(
            "testsuite",
            name=f"scfed conformance {self.agency}",
            tests=str(len(self.results)),
            failures=str(self.count(Outcome.FAILED)),
            skipped=str(self.count(Outcome.SKIPPED)),
            errors="0",
            time=f"{sum(r.seconds for r in self.results):.3f}",
        )
        suite.set("hostname", self.target)
        for result in self.results:
            element = ElementTree.SubElement(
                suite,
                "testcase",
                classname=f"scfed.conformance.{self.agency}",
                name=result.name,
                time=f"{result.seconds:.3f}",
            )
            if result.outcome == Outcome.FAILED:
                ElementTree.SubElement(
                    element, "failure", message=result.detail
                ).text = result.detail
            elif result.outcome == Outcome.SKIPPED:
                ElementTree.SubElement(element, "skipped", message=result.detail)
        xml: bytes = ElementTree.tostring(suite, encoding="utf-8", xml_declaration=True)
        return xml


class TargetUnreachable(Exception):
    """No gRPC server answered at the target's address."""


def peer_addresses(target: Agency, given: Mapping[Agency, str] | None = None) -> dict[Agency, str]:
    """Where the fake peers listen: each agency's default port on 127.0.0.1 unless given."""
    addresses = {agency: agency.profile.default_address for agency in Agency if agency != target}
    addresses.update({a: address for a, address in (given or {}).items() if a != target})
    return addresses


async def run(
    agency: Agency,
    target: str,
    *,
    http_url: str | None = None,
    peers: Mapping[Agency, str] | None = None,
    patterns: Sequence[str] = (),
    deadline: float = DEFAULT_DEADLINE_S,
    quiet: float = DEFAULT_QUIET_S,
    strict: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
    connect_timeout: float = 10.0,
    tls_dir: Path | None = None,
) -> Report:
    """Runs `agency`'s suite (the cases `patterns` select) against the server at `target`:
    with mutual TLS and the certificates in `tls_dir` when given, in plaintext otherwise."""
    chosen = select(suite(agency).cases, patterns)
    report = Report(agency, target)
    dialer = Dialer(agency, target, tls_dir)
    fakes = FakePeers(peer_addresses(agency, peers), tls_dir=tls_dir)
    await fakes.start()
    try:
        try:
            await asyncio.wait_for(dialer.channel().channel_ready(), connect_timeout)
        except TimeoutError:
            over = " over mutual TLS (--no-tls for a plaintext server)" if dialer.tls else ""
            raise TargetUnreachable(
                f"no gRPC server answered at {target}{over} within {connect_timeout:g} s"
            ) from None
        lea_keys = LeaKeys()
        async with _http_client(http_url, lea_keys) as http:
            probe = Probe(agency, dialer, fakes, http, deadline, quiet, strict, lea_keys)
            setup_check = SUITES[agency].setup
            if setup_check is not None and chosen:
                try:
                    await setup_check(probe)
                except (CaseFailed, grpc.aio.AioRpcError) as exc:
                    raise CaseFailed(f"the suite's setup failed: {_reason(exc)}") from None
            for one in chosen:
                result = await _run_case(one, probe)
                report.results.append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        await dialer.close()
        await fakes.stop()
    return report


class _NoClient:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


def _http_client(url: str | None, lea_keys: LeaKeys) -> Any:
    return httpx.AsyncClient(base_url=url, timeout=30, auth=lea_keys) if url else _NoClient()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details()!r}"
    return str(exc) or type(exc).__name__


async def _run_case(one: Case, probe: Probe) -> CaseResult:
    started = time.perf_counter()
    limit = probe.deadline * 3 + probe.quiet * 3
    try:
        await asyncio.wait_for(one.check(probe), limit)
    except CaseSkipped as skip:
        outcome, detail = Outcome.SKIPPED, str(skip)
    except (CaseFailed, AssertionError) as failure:
        outcome, detail = Outcome.FAILED, str(failure) or "assertion failed"
    except grpc.aio.AioRpcError as err:
        outcome, detail = Outcome.FAILED, f"unexpected {err.code().name}: {err.details()!r}"
    except TimeoutError:
        outcome, detail = Outcome.FAILED, f"did not finish within {limit:g} s"
    except Exception as exc:
        outcome, detail = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        outcome, detail = Outcome.PASSED, ""
    return CaseResult(one.name, outcome, detail, round(time.perf_counter() - started, 3))


__all__ = [
    "SERVICES",
    "Case",
    "CaseFailed",
    "CaseSkipped",
    "Outcome",
    "PortUnavailable",
    "Probe",
    "Report",
    "TargetUnreachable",
    "case",
    "check_follow_on",
    "for_booking",
    "refusal_cases",
    "run",
    "setup",
    "suite",
]
