"""Authorization by flow over mutual TLS: every RPC of every service called with every
identity's certificate answers as the table says (services/runtime/authorization.py), and a
refused call changes nothing. The every-RPC sweep is the conformance kit's (cases/trust.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from scfed.sib.v1 import sib_pb2 as sib
from services.conformance.kit import Outcome, run
from services.conformance.messages import Person
from services.federation import Agency
from services.runtime.ports import free_port
from services.runtime.tls import OPERATOR, SecureChannels, init_certificates
from services.sib.models import StateRecord
from tests.federation import DatabaseChoice, Federation, running_federation


@pytest.fixture
async def tls_federation(tmp_path: Path) -> AsyncIterator[tuple[Federation, Path]]:
    """The five services with TLS on (and so authorization), on SQLite."""
    certs = tmp_path / "certs"
    init_certificates(certs, days=1)
    overrides: dict[str, Any] = {name: {"tls": "on", "tls_dir": certs} for name in Agency}
    async with running_federation(DatabaseChoice("sqlite", tmp_path), **overrides) as fed:
        yield fed, certs


@pytest.mark.parametrize("agency", list(Agency))
async def test_every_rpc_with_every_certificate_answers_as_the_table_says(
    agency: Agency, tls_federation: tuple[Federation, Path]
) -> None:
    # The conformance kit's authorization cases (services/conformance/cases/trust.py), against
    # the agency in the running federation; the kit's fake peers on free ports.
    fed, certs = tls_federation
    peers = {peer: f"127.0.0.1:{free_port()}" for peer in Agency if peer != agency}
    report = await run(
        agency,
        fed.addresses()[agency],
        peers=peers,
        patterns=["Authorization:"],
        quiet=0.5,
        strict=True,
        tls_dir=certs,
    )
    assert [(r.name, r.detail) for r in report.results if r.outcome != Outcome.PASSED] == []
    assert len(report.results) == 4


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
