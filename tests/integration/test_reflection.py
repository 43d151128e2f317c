"""A generic client finds every service of a running agency through server reflection, whether it
speaks grpc.reflection.v1 (grpcurl, `buf curl`) or the older v1alpha."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from services.federation import Agency
from services.runtime.server import ServiceHost
from tests.federation import DatabaseChoice, make_host

Request = reflection_pb2.ServerReflectionRequest
Response = reflection_pb2.ServerReflectionResponse
VERSIONS = ("grpc.reflection.v1", "grpc.reflection.v1alpha")


@pytest.fixture
async def lesc(tmp_path: Path) -> AsyncIterator[ServiceHost]:
    """LESC alone on free ports (what it sends to its peers stays queued)."""
    host = make_host(Agency.LESC, DatabaseChoice("sqlite", tmp_path))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def _ask(address: str, version: str, request: Any) -> Any:
    """One reflection request on the given protocol version; the two share their wire format.

    grpcio-reflection ships no types the project checks, hence Any.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            f"/{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=Request.SerializeToString,
            response_deserializer=Response.FromString,
        )
        replies = [reply async for reply in call(iter([request]))]
    (reply,) = replies
    return reply


@pytest.mark.parametrize("version", VERSIONS)
async def test_reflection_lists_every_service_on_both_versions(
    lesc: ServiceHost, version: str
) -> None:
    reply = await _ask(lesc.grpc_address, version, Request(list_services=""))
    assert {s.name for s in reply.list_services_response.service} == {
        "scfed.lesc.v1.Lesc",
        "scfed.common.v1.Journal",
        "scfed.common.v1.Faults",
        "scfed.admin.v1.AdminService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


@pytest.mark.parametrize("version", VERSIONS)
async def test_reflection_describes_the_contracts_on_both_versions(
    lesc: ServiceHost, version: str
) -> None:
    reply = await _ask(
        lesc.grpc_address, version, Request(file_containing_symbol="scfed.lesc.v1.Lesc")
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    lesc_file = next(f for f in files if f.name == "scfed/lesc/v1/lesc.proto")
    assert [s.name for s in lesc_file.service] == ["Lesc"]
    assert "scfed/common/v1/common.proto" in lesc_file.dependency


@pytest.mark.parametrize("version", VERSIONS)
async def test_each_reflection_service_describes_itself(lesc: ServiceHost, version: str) -> None:
    reply = await _ask(
        lesc.grpc_address, version, Request(file_containing_symbol=f"{version}.ServerReflection")
    )
    (raw, *_) = reply.file_descriptor_response.file_descriptor_proto
    file = descriptor_pb2.FileDescriptorProto.FromString(raw)
    assert file.package == version
    assert [s.name for s in file.service] == ["ServerReflection"]
    # Every type the file refers to is its own: a strict client (buf curl) links it alone.
    refs = [
        *(m.input_type for m in file.service[0].method),
        *(m.output_type for m in file.service[0].method),
        *(f.type_name for m in file.message_type for f in m.field if f.type_name),
    ]
    assert refs
    assert all(ref.startswith(f".{version}.") for ref in refs), refs


async def test_an_unknown_symbol_is_not_found_on_v1(lesc: ServiceHost) -> None:
    reply = await _ask(
        lesc.grpc_address, "grpc.reflection.v1", Request(file_containing_symbol="no.such.Service")
    )
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
