"""Fake peers: gRPC servers that stand in for every agency but the one under test.

Each serves its agency's whole service from the generated descriptors, acknowledges every
message (an `Ack` naming the message id, `duplicate` when the id came before) and records what
it received, so a case can wait for the follow-on messages the MOA requires of the target, or
check that one never came. A method that does not answer an `Ack` (configuration and look-ups)
answers its request back when the types agree, or an empty reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.ident.v1 import ident_pb2
from scfed.lesc.v1 import lesc_pb2
from scfed.sib.v1 import sib_pb2

from ..federation import Agency
from ..runtime.server import bind_grpc
from .channels import peer_credentials

SERVICES: dict[Agency, ServiceDescriptor] = {
    Agency.SIB: sib_pb2.DESCRIPTOR.services_by_name["StateIdentificationBureau"],
    Agency.CJIS_IAFIS: cjis_iafis_pb2.DESCRIPTOR.services_by_name["CjisIafis"],
    Agency.IDENT: ident_pb2.DESCRIPTOR.services_by_name["Ident"],
    Agency.LESC: lesc_pb2.DESCRIPTOR.services_by_name["Lesc"],
    Agency.ICE_FIELD: ice_field_pb2.DESCRIPTOR.services_by_name["IceField"],
}


@dataclass(frozen=True)
class Received:
    """One message a fake peer took from the target."""

    peer: Agency
    method: str
    message: Any
    at: float

    @property
    def envelope(self) -> common_pb2.Envelope | None:
        """The message's envelope, when its type has one."""
        if "envelope" not in self.message.DESCRIPTOR.fields_by_name:
            return None
        envelope: common_pb2.Envelope = self.message.envelope
        return envelope

    def describe(self) -> str:
        """The message in one line: peer, method, envelope's TOT, TCN and TCR."""
        envelope = self.envelope
        if envelope is None:
            return f"{self.peer}.{self.method}"
        return (
            f"{self.peer}.{self.method} (tot {envelope.tot!r}, tcn {envelope.tcn!r}, "
            f"tcr {envelope.tcr!r})"
        )


Match = Callable[[Received], bool]


class FakePeers:
    """Agencies that acknowledge and record, each on its address; start, then read what came.
    With `tls_dir`, each serves mutual TLS with its own agency's certificate from there."""

    def __init__(self, addresses: Mapping[Agency, str], *, tls_dir: Path | None = None) -> None:
        self.addresses = dict(addresses)
        self.tls_dir = tls_dir
        self.received: list[Received] = []
        self._seen: set[str] = set()
        self._arrived = asyncio.Condition()
        self._servers: list[grpc.aio.Server] = []

    async def start(self) -> None:
        """Serves every peer; a taken address raises PortUnavailable naming it."""
        try:
            for peer, address in self.addresses.items():
                server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
                server.add_generic_rpc_handlers((self._handler(peer),))
                host, _, port = address.rpartition(":")
                credentials = peer_credentials(self.tls_dir, peer)
                bind_grpc(server, host.strip("[]") or "127.0.0.1", int(port), credentials)
                await server.start()
                self._servers.append(server)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stops every peer at once."""
        servers, self._servers = self._servers, []
        await asyncio.gather(*(server.stop(grace=None) for server in servers))

    def _handler(self, peer: Agency) -> grpc.GenericRpcHandler:
        service = SERVICES[peer]
        handlers = {
            method.name: grpc.unary_unary_rpc_method_handler(
                self._behaviour(peer, method),
                request_deserializer=message_factory.GetMessageClass(method.input_type).FromString,
                response_serializer=lambda reply: reply.SerializeToString(),
            )
            for method in service.methods
        }
        return grpc.method_handlers_generic_handler(service.full_name, handlers)

    def _behaviour(
        self, peer: Agency, method: MethodDescriptor
    ) -> Callable[[Any, grpc.aio.ServicerContext], Any]:
        reply_class = message_factory.GetMessageClass(method.output_type)

        async def answer(request: Any, _context: grpc.aio.ServicerContext) -> Message:
            received = Received(peer, method.name, request, time.monotonic())
            async with self._arrived:
                self.received.append(received)
                self._arrived.notify_all()
            envelope = received.envelope
            if reply_class is common_pb2.Ack:
                message_id = envelope.message_id if envelope is not None else ""
                duplicate = message_id in self._seen
                self._seen.add(message_id)
                return common_pb2.Ack(message_id=message_id, duplicate=duplicate)
            if isinstance(request, reply_class):
                return request
            reply: Message = reply_class()
            return reply

        return answer

    def matching(self, peer: Agency, method: str, where: Match | None = None) -> list[Received]:
        """What `peer` took by `method` (and `where` accepts), oldest first."""
        return [
            r
            for r in self.received
            if r.peer == peer and r.method == method and (where is None or where(r))
        ]

    async def wait_for(
        self, peer: Agency, method: str, where: Match | None, *, within: float, count: int = 1
    ) -> list[Received]:
        """The first `count` such messages, waiting up to `within` seconds; fewer if they do
        not come in time."""
        deadline = time.monotonic() + within
        async with self._arrived:
            while len(found := self.matching(peer, method, where)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    break
        return found
