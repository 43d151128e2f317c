"""Authorization by flow over mutual TLS: every RPC of every service called with every
identity's certificate answers as the table says (services/runtime/authorization.py), and a
refused call changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from scfed.sib.v1 import sib_pb2 as sib
from services.conformance.messages import Person
from services.federation import Agency
from services.runtime.authorization import allowed_callers
from services.runtime.tls import IDENTITIES, OPERATOR, SecureChannels, init_certificates
from services.sib.models import StateRecord
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.grpc_fuzz import service_descriptors

REFUSALS = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
# Calls whose empty request does something an operator might not want mid-test; their refusal
# for everyone else is still checked.
SKIPPED_FOR_THE_ALLOWED = {"Reset", "LoadSnapshot"}


@pytest.fixture
async def tls_federation(tmp_path: Path) -> AsyncIterator[tuple[Federation, Path]]:
    """The five services with TLS on (and so authorization), on SQLite."""
    certs = tmp_path / "certs"
    init_certificates(certs, days=1)
    overrides: dict[str, Any] = {name: {"tls": "on", "tls_dir": certs} for name in Agency}
    async with running_federation(DatabaseChoice("sqlite", tmp_path), **overrides) as fed:
        yield fed, certs


async def _code(channel: grpc.aio.Channel, path: str) -> tuple[grpc.StatusCode, str]:
    call = channel.unary_unary(path)
    try:
        await call(b"", timeout=10)
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


async def test_every_rpc_with_every_certificate_answers_as_the_table_says(
    tls_federation: tuple[Federation, Path],
) -> None:
    fed, certs = tls_federation
    wrong: list[str] = []
    calls = 0
    for identity in IDENTITIES:
        channels = SecureChannels.of(certs, identity)
        for agency, address in fed.addresses().items():
            async with channels(agency, address) as channel:
                for service in service_descriptors(agency):
                    if service.full_name.startswith("grpc."):
                        continue
                    for method in service.methods:
                        path = f"/{service.full_name}/{method.name}"
                        allowed = identity in allowed_callers(path)
                        if allowed and method.name in SKIPPED_FOR_THE_ALLOWED:
                            continue
                        code, details = await _code(channel, path)
                        calls += 1
                        if allowed and code in REFUSALS:
                            wrong.append(f"{identity} refused {path}: {code.name} {details}")
                        if not allowed and (
                            code != grpc.StatusCode.PERMISSION_DENIED
                            or identity not in details
                            or path not in details
                        ):
                            wrong.append(f"{identity} not refused {path}: {code.name} {details}")
    assert wrong == [], "\n".join(wrong)
    assert calls > 200


async def test_a_refused_administration_changes_nothing(
    tls_federation: tuple[Federation, Path],
) -> None:
    fed, certs = tls_federation
    sib_address = fed.addresses()[Agency.SIB]
    state = sib.State(code="WY", name="Wyoming", moa_status=sib.MOA_STATUS_ACTIVE)
    async with SecureChannels.of(certs, str(Agency.CJIS_IAFIS))(Agency.SIB, sib_address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ch.unary_unary(
                "/scfed.sib.v1.StateIdentificationBureau/RegisterState",
                request_serializer=sib.State.SerializeToString,
                response_deserializer=sib.State.FromString,
            )(state)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "cjis_iafis may not call" in (caught.value.details() or "")
    async with fed.hosts[Agency.SIB].runtime.db.session() as session:
        assert await session.get(StateRecord, "WY") is None
    async with SecureChannels.of(certs, OPERATOR)(Agency.SIB, sib_address) as channel:
        stub_call = channel.unary_unary(
            "/scfed.sib.v1.StateIdentificationBureau/RegisterState",
            request_serializer=sib.State.SerializeToString,
            response_deserializer=sib.State.FromString,
        )
        assert (await stub_call(state)).code == "WY"


async def test_the_audit_trail_names_the_certificate_that_searched(
    tls_federation: tuple[Federation, Path],
) -> None:
    fed, certs = tls_federation
    ident = fed.addresses()[Agency.IDENT]
    async with SecureChannels.of(certs, OPERATOR)(Agency.IDENT, ident) as channel:
        await ident_pb2_grpc.IdentStub(channel).Identify(
            ident_pb2.IdentifyRequest(tenprint=Person().capture(), candidate_list_size=3)
        )
    async with httpx.AsyncClient() as client:
        trail = (await client.get(f"{fed.hosts[Agency.IDENT].http_url}/v1/audit")).json()
    assert [(r["rpc"], r["who"]) for r in trail if r["rpc"] == "Identify"] == [
        ("Identify", "operator")
    ]
