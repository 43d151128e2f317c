"""The gRPC methods inter-agency messages travel by, typed by the message each one takes.

Each route is read from the generated descriptors and names its peer agency, its full method
path and its request class. A route whose class is not the method's input type fails when this
module is imported, and `Outbox.add(route=..., message=...)` accepts only the route's own
message class (mypy checks it, and the outbox checks it again at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from google.protobuf.descriptor import Descriptor, ServiceDescriptor

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.ident.v1 import ident_pb2
from scfed.lesc.v1 import lesc_pb2
from scfed.sib.v1 import sib_pb2

from ..federation import Agency


class EnvelopedMessage(Protocol):
    """A protobuf message whose first field is the common envelope."""

    DESCRIPTOR: Descriptor

    @property
    def envelope(self) -> common_pb2.Envelope:
        """The message's envelope."""
        ...

    def SerializeToString(self, *, deterministic: bool = ...) -> bytes:
        """The message's wire form."""
        ...

    def ParseFromString(self, serialized: bytes) -> int:
        """Reads the message from its wire form."""
        ...


RequestT = TypeVar("RequestT", bound=EnvelopedMessage)


@dataclass(frozen=True)
class Route(Generic[RequestT]):
    """One inter-agency method: the peer that serves it, its path, the message it takes.

    Construction checks all three against the generated descriptors: the path must name a
    method of the peer's own package (``scfed.<peer>.v1``) whose input is `request`.
    """

    peer: Agency
    path: str
    request: type[RequestT]
    # The agency whose outbox sends this message: the only one that may call the method
    # (authorization.py), and the flow the Kubernetes NetworkPolicies allow.
    sender: Agency

    def __post_init__(self) -> None:
        service, _, method = self.path.removeprefix("/").partition("/")
        pool = self.request.DESCRIPTOR.file.pool
        try:
            descriptor = pool.FindMethodByName(f"{service}.{method}")
        except KeyError:
            raise ValueError(f"no gRPC method {self.path}") from None
        package = descriptor.containing_service.file.package
        if package != f"scfed.{self.peer}.v1":
            raise ValueError(f"{self.path} is served by {package}, not by {self.peer}")
        if descriptor.input_type.full_name != self.request.DESCRIPTOR.full_name:
            raise TypeError(
                f"{self.path} takes {descriptor.input_type.full_name}, "
                f"not {self.request.DESCRIPTOR.full_name}"
            )


def route(
    service: ServiceDescriptor, method: str, request: type[RequestT], *, sender: Agency
) -> Route[RequestT]:
    """The route of `service`'s `method`, which must take `request`, sent by `sender`."""
    peer = Agency(service.file.package.removeprefix("scfed.").removesuffix(".v1"))
    descriptor = service.methods_by_name[method]
    return Route(peer, f"/{service.full_name}/{descriptor.name}", request, sender)


_SIB = sib_pb2.DESCRIPTOR.services_by_name["StateIdentificationBureau"]
_CJIS = cjis_iafis_pb2.DESCRIPTOR.services_by_name["CjisIafis"]
_IDENT = ident_pb2.DESCRIPTOR.services_by_name["Ident"]
_LESC = lesc_pb2.DESCRIPTOR.services_by_name["Lesc"]
_ICE = ice_field_pb2.DESCRIPTOR.services_by_name["IceField"]

SIB_DELIVER_SRE: Final = route(_SIB, "DeliverSre", sib_pb2.SreMessage, sender=Agency.CJIS_IAFIS)
SIB_DELIVER_ERRT: Final = route(_SIB, "DeliverErrt", sib_pb2.ErrtMessage, sender=Agency.CJIS_IAFIS)
SIB_DELIVER_RESPONSE: Final = route(
    _SIB,
    "DeliverInteroperabilityResponse",
    sib_pb2.InteroperabilityResponse,
    sender=Agency.CJIS_IAFIS,
)
SIB_DELIVER_DETAINER: Final = route(
    _SIB, "DeliverDetainer", sib_pb2.DetainerMessage, sender=Agency.ICE_FIELD
)
CJIS_SUBMIT_CAR: Final = route(_CJIS, "SubmitCar", cjis_iafis_pb2.Car, sender=Agency.SIB)
CJIS_SUBMIT_CPI: Final = route(_CJIS, "SubmitCpi", cjis_iafis_pb2.Cpi, sender=Agency.SIB)
CJIS_DELIVER_IDR: Final = route(_CJIS, "DeliverIdr", cjis_iafis_pb2.IdrMessage, sender=Agency.IDENT)
CJIS_ACKNOWLEDGE_IAQ: Final = route(
    _CJIS, "AcknowledgeIaq", cjis_iafis_pb2.IaqAcknowledgement, sender=Agency.LESC
)
CJIS_DELIVER_IAR: Final = route(_CJIS, "DeliverIar", cjis_iafis_pb2.IarMessage, sender=Agency.LESC)
IDENT_SEARCH: Final = route(_IDENT, "Search", ident_pb2.IdentSearch, sender=Agency.CJIS_IAFIS)
IDENT_RECORD_ENCOUNTER: Final = route(
    _IDENT, "RecordEncounter", ident_pb2.EncounterNotice, sender=Agency.ICE_FIELD
)
LESC_SUBMIT_IAQ: Final = route(_LESC, "SubmitIaq", lesc_pb2.Iaq, sender=Agency.CJIS_IAFIS)
ICE_DELIVER_IAR: Final = route(_ICE, "DeliverIar", ice_field_pb2.IarCopy, sender=Agency.LESC)
ICE_NOTIFY_RELEASE: Final = route(
    _ICE, "NotifyRelease", ice_field_pb2.ReleaseNotice, sender=Agency.SIB
)

ROUTES: Final[tuple[Route[Any], ...]] = (
    SIB_DELIVER_SRE,
    SIB_DELIVER_ERRT,
    SIB_DELIVER_RESPONSE,
    SIB_DELIVER_DETAINER,
    CJIS_SUBMIT_CAR,
    CJIS_SUBMIT_CPI,
    CJIS_DELIVER_IDR,
    CJIS_ACKNOWLEDGE_IAQ,
    CJIS_DELIVER_IAR,
    IDENT_SEARCH,
    IDENT_RECORD_ENCOUNTER,
    LESC_SUBMIT_IAQ,
    ICE_DELIVER_IAR,
    ICE_NOTIFY_RELEASE,
)
