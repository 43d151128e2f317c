"""Every agency's authorization cases: over mutual TLS, who may call what (the table in
runtime/authorization.py, read from the message routes).

A call without a client certificate never reaches an RPC; administration is the operator's
alone; a delivery is its sender's alone, and one from another agency leaves no trace (no
follow-on message, and its message id is still new to the right sender); health answers any
certificate of the federation. Each case is skipped with --no-tls: without certificates there
is no identity to check.
"""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from scfed.admin.v1 import admin_pb2
from scfed.common.v1 import common_pb2

from ...federation import Agency
from ...runtime.authorization import allowed_callers
from ...runtime.message_routes import ROUTES
from ...runtime.tls import IDENTITIES
from ..kit import CaseFailed, CaseSkipped, Probe, case, method_path
from ..peers import SERVICES, Received
from ..refusals import enveloped

REFUSED = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED})
# Services every one of our agencies also serves; another implementation need not
# (UNIMPLEMENTED is then its answer to everyone).
SHARED_SERVICES: tuple[ServiceDescriptor, ...] = (
    common_pb2.DESCRIPTOR.services_by_name["Journal"],
    common_pb2.DESCRIPTOR.services_by_name["Faults"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
)
# RPCs whose empty request changes the target's state: called only by those the table refuses.
CHANGES_STATE = frozenset({"Reset", "LoadSnapshot", "SetClock", "AdvanceClock", "ClearFaults"})
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def _needs_tls(probe: Probe) -> None:
    if not probe.dialer.tls:
        raise CaseSkipped("needs mutual TLS (the kit runs with --no-tls): no identity to check")


async def _code(channel: grpc.aio.Channel, path: str, request: bytes, timeout: float) -> Answer:
    """Calls `path` with a serialized request; the status and reason it answered."""
    try:
        await channel.unary_unary(path)(request, timeout=timeout)
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


Answer = tuple[grpc.StatusCode, str]


def _names_caller_and_rpc(answer: Answer, identity: str, path: str) -> bool:
    code, details = answer
    method = path.rsplit("/", 1)[-1]
    return code == grpc.StatusCode.PERMISSION_DENIED and identity in details and method in details


async def without_certificate(probe: Probe) -> None:
    """A call over TLS with no client certificate is refused: the handshake fails
    (UNAVAILABLE) or the call is UNAUTHENTICATED, never answered."""
    _needs_tls(probe)
    path = method_path(probe.agency, SERVICES[probe.agency].methods[0].name)
    async with probe.dialer.without_certificate() as channel:
        code, details = await _code(channel, path, b"", probe.deadline)
    if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED):
        raise CaseFailed(
            f"{path} without a client certificate answered {code.name} {details!r}: the "
            "handshake must be refused, or the call UNAUTHENTICATED"
        )


async def every_rpc(probe: Probe) -> None:
    """Each RPC of the agency's service (and of Journal, Faults and AdminService) called with
    each identity's certificate: a caller the table does not name gets PERMISSION_DENIED whose
    reason names the caller and the RPC; one it names is not refused (RPCs whose empty request
    changes state are called by the refused only)."""
    _needs_tls(probe)
    wrong: list[str] = []
    services = (SERVICES[probe.agency], *SHARED_SERVICES)
    for identity in IDENTITIES:
        channel = probe.dialer.channel(identity)
        for service in services:
            shared = service in SHARED_SERVICES
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                allowed = identity in allowed_callers(path)
                if allowed and method.name in CHANGES_STATE:
                    continue
                answer = await _code(channel, path, b"", probe.deadline)
                code, details = answer
                if shared and code == grpc.StatusCode.UNIMPLEMENTED:
                    continue
                if allowed and code in REFUSED:
                    wrong.append(f"{identity} refused {path}: {code.name} {details!r}")
                if not allowed and not _names_caller_and_rpc(answer, identity, path):
                    wrong.append(
                        f"{identity} calling {path} got {code.name} {details!r}, not "
                        "PERMISSION_DENIED naming the caller and the RPC"
                    )
    if wrong:
        shown = "; ".join(wrong[:5])
        more = f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else ""
        raise CaseFailed(shown + more)


def _sample_delivery(agency: Agency) -> tuple[str, Message]:
    """A well-formed delivery to `agency` (fresh envelope): its method and message."""
    for service, method, message in enveloped():
        if service == agency:
            return method, message
    raise AssertionError(f"no delivery to {agency}")


async def delivery_from_another(probe: Probe) -> None:
    """A delivery from an agency its route does not name as sender is PERMISSION_DENIED
    naming the caller and the RPC, sends nothing on, and is not remembered: the same message
    from its sender is then new, not a duplicate."""
    _needs_tls(probe)
    method, message = _sample_delivery(probe.agency)
    path = method_path(probe.agency, method)
    sender = next(str(r.sender) for r in ROUTES if r.path == path)
    intruder = next(str(a) for a in Agency if a not in (sender, probe.agency))
    before = len(probe.peers.received)
    answer = await _code(
        probe.dialer.channel(intruder), path, message.SerializeToString(), probe.deadline
    )
    if not _names_caller_and_rpc(answer, intruder, path):
        raise CaseFailed(
            f"{method} from {intruder} (sent by {sender} alone) got {answer[0].name} "
            f"{answer[1]!r}, not PERMISSION_DENIED naming the caller and the RPC"
        )
    envelope: common_pb2.Envelope = getattr(message, "envelope")  # noqa: B009
    booking = envelope.tcr or envelope.tcn

    def about_it(r: Received) -> bool:
        return r.envelope is not None and booking in (r.envelope.tcr, r.envelope.tcn)

    await asyncio.sleep(probe.quiet)
    sent = [r for r in probe.peers.received[before:] if about_it(r)]
    if sent:
        raise CaseFailed(f"the refused {method} was acted on: {sent[0].describe()}")
    try:
        ack = await probe.rpc(method, identity=sender)(message, timeout=probe.deadline)
    except grpc.aio.AioRpcError as err:
        if err.code() in REFUSED:
            raise CaseFailed(
                f"{method} from its sender {sender} was refused: {err.code().name}"
            ) from None
        return
    if ack.duplicate:
        raise CaseFailed(
            f"{method} from {sender} was called a duplicate: the refused call was remembered"
        )


async def health(probe: Probe) -> None:
    """grpc.health.v1 Check answers every certificate of the federation (it is public)."""
    _needs_tls(probe)
    request = health_pb2.HealthCheckRequest().SerializeToString()
    answers = {
        identity: await _code(probe.dialer.channel(identity), HEALTH_CHECK, request, 5)
        for identity in IDENTITIES
    }
    if all(code == grpc.StatusCode.UNIMPLEMENTED for code, _ in answers.values()):
        raise CaseSkipped("the target serves no grpc.health.v1")
    wrong = [f"{i}: {c.name} {d!r}" for i, (c, d) in answers.items() if c != grpc.StatusCode.OK]
    if wrong:
        raise CaseFailed("health refused a federation certificate: " + "; ".join(wrong))


for _agency in Agency:
    case(_agency, "Authorization: a call without a client certificate cannot proceed")(
        without_certificate
    )
    case(_agency, "Authorization: every RPC answers each certificate as the table says")(every_rpc)
    case(_agency, "Authorization: a delivery from an agency that does not send it changes nothing")(
        delivery_from_another
    )
    case(_agency, "Authorization: health answers any federation certificate")(health)

__all__ = ["CHANGES_STATE", "SHARED_SERVICES"]
