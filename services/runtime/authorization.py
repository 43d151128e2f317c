"""Who may call each RPC: one table, read from the message routes, for the services and for the
Kubernetes NetworkPolicies.

- An inter-agency delivery (every `Route` in message_routes.py) may be called by its route's
  sender only: IDENT's `Search` and LESC's `SubmitIaq` by CJIS, the field office's IAR copy by
  LESC, the SIB's deliveries by CJIS and the field offices, and so on.
- Every other RPC of the federation's services (registering states, agencies and field offices,
  MOA status and jurisdiction suspension, seeding, direct searches and record reads, the
  journal, reset, snapshots, faults, clocks) is administration: the operator only.
- Health and reflection answer anyone.

`allowed_callers` answers for one method path; `delivery_flows` gives the (sender, receiver)
pairs the NetworkPolicies in deploy/base/networkpolicies.yaml allow on the gRPC ports, which
tests/deploy checks against the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import grpc
from google.protobuf.descriptor import FileDescriptor

from scfed.admin.v1 import admin_pb2
from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.ident.v1 import ident_pb2
from scfed.lesc.v1 import lesc_pb2
from scfed.sib.v1 import sib_pb2

from ..federation import Agency
from .edge import UnaryBehaviour, UnaryInterceptor
from .message_routes import ROUTES
from .tls import peer_identity

# The identity of the operator's certificate: administration of any service.
OPERATOR: Final = "operator"
# Services that answer any caller, authenticated or not.
PUBLIC_SERVICES: Final = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)

_FILES: Final[tuple[FileDescriptor, ...]] = (
    sib_pb2.DESCRIPTOR,
    cjis_iafis_pb2.DESCRIPTOR,
    ident_pb2.DESCRIPTOR,
    lesc_pb2.DESCRIPTOR,
    ice_field_pb2.DESCRIPTOR,
    common_pb2.DESCRIPTOR,
    admin_pb2.DESCRIPTOR,
)


def _methods(files: Iterable[FileDescriptor]) -> Iterable[str]:
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                yield f"/{service.full_name}/{method.name}"


def _table() -> dict[str, frozenset[str]]:
    senders: dict[str, set[str]] = {}
    for route in ROUTES:
        senders.setdefault(route.path, set()).add(str(route.sender))
    return {path: frozenset(senders.get(path, {OPERATOR})) for path in _methods(_FILES)}


# Every RPC of the federation's services (full path) -> the identities that may call it.
CALLERS: Final[dict[str, frozenset[str]]] = _table()


def is_public(method: str) -> bool:
    """True for health and reflection, which answer anyone."""
    return method.startswith(PUBLIC_SERVICES)


def allowed_callers(method: str) -> frozenset[str]:
    """The identities that may call `method` (a full path); empty for a method the federation
    does not serve (nobody may call it)."""
    return CALLERS.get(method, frozenset())


def may_call(identity: str, method: str) -> bool:
    """Whether `identity` (an agency's name or the operator) may call `method`."""
    return is_public(method) or identity in allowed_callers(method)


def delivery_flows() -> frozenset[tuple[Agency, Agency]]:
    """(sender, receiver) of every inter-agency delivery: what the NetworkPolicies allow on the
    receivers' gRPC ports."""
    return frozenset((route.sender, route.peer) for route in ROUTES)


class AuthorizationInterceptor(UnaryInterceptor):
    """Refuses a call its caller may not make, before anything runs: UNAUTHENTICATED without a
    client certificate's identity, PERMISSION_DENIED naming the caller and the RPC otherwise.
    Installed when TLS is on (with it off there is no identity to check)."""

    def wrap(self, method: str, inner: UnaryBehaviour) -> UnaryBehaviour | None:
        """`inner`, behind the table's check for `method`."""
        if is_public(method):
            return None
        callers = allowed_callers(method)

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            identity = peer_identity(context)
            if identity is None:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"{method} needs a client certificate of the federation's CA",
                )
            elif identity not in callers:
                allowed = ", ".join(sorted(callers)) or "nobody"
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{identity} may not call {method} (it is for {allowed})",
                )
            return await inner(request, context)

        return unary_unary
