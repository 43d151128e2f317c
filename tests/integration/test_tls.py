"""Mutual TLS on the gRPC hops: a federation with TLS on answers a booking end to end, refuses
plaintext and foreign certificates, and tells the server who called."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.cli.trace import trace_online
from services.federation import Agency
from services.runtime.server import ServiceHost, bind_grpc
from services.runtime.tls import (
    CA_NAME,
    OPERATOR,
    CertificateMissing,
    SecureChannels,
    certificate_path,
    init_certificates,
    key_path,
    operator_token,
    peer_identity,
    server_credentials,
)
from tests.federation import DatabaseChoice, make_host, running_federation
from tests.scenario import Scenario, scenario_in

CA = "CA0190000"
# A method of the tests' own that answers with the caller's identity from its certificate.
WHO_AM_I = "/scfed.test.Identity/WhoAmI"


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A fresh certificate directory for the test."""
    directory = tmp_path / "certs"
    init_certificates(directory, days=1)
    return directory


@pytest.fixture
async def tls_host(db: DatabaseChoice, certs: Path) -> AsyncIterator[ServiceHost]:
    """IDENT started alone with TLS on."""
    host = make_host(Agency.IDENT, db, tls="on", tls_dir=certs)
    await host.start()
    yield host
    await host.stop()


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="liveness"), timeout=5
    )
    return int(reply.status)


@pytest.fixture
async def tls_scenario(db: DatabaseChoice, certs: Path) -> AsyncIterator[Scenario]:
    """The five services with TLS on, their world seeded with the operator's certificate."""
    overrides: dict[str, Any] = {name: {"tls": "on", "tls_dir": certs} for name in Agency}
    async with (
        running_federation(db, **overrides) as fed,
        scenario_in(fed, channels=SecureChannels.of(certs, OPERATOR)) as scenario,
    ):
        yield scenario


async def test_a_booking_is_answered_over_mutual_tls_on_every_hop(tls_scenario: Scenario) -> None:
    tcn = await tls_scenario.book(tls_scenario.subject(), CA)
    view = await tls_scenario.final(tcn)
    await tls_scenario.quiet()
    entries, left_out = await trace_online(
        tcn, tls_scenario.fed.addresses(), channels=tls_scenario.channels
    )
    assert view["status"] == "answered"
    assert "SRE" in {response["kind"] for response in view["responses"]}
    # The operator's certificate also reads every journal; each hop was received over TLS.
    assert left_out == {}
    assert {entry["service"] for entry in entries} >= {Agency.SIB, Agency.CJIS_IAFIS}


async def test_a_match_gets_its_detainer_over_mutual_tls(tls_scenario: Scenario) -> None:
    # IDENT, CJIS, LESC and the field office all take part; the enrolment uses the operator's
    # certificate too.
    subject = tls_scenario.subject()
    await tls_scenario.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    await tls_scenario.in_iafis(subject, [("1201", 1825)])
    tcn = await tls_scenario.book(subject, CA)
    assert (await tls_scenario.final(tcn))["status"] == "answered"
    await tls_scenario.detainers_for(tcn, CA, expect=1)


async def test_a_service_restarted_in_a_tls_federation_serves_tls_again(
    tls_scenario: Scenario, db: DatabaseChoice
) -> None:
    fed = tls_scenario.fed
    await fed.hosts[Agency.CJIS_IAFIS].stop()
    await fed.restart(Agency.CJIS_IAFIS, db)
    assert fed.hosts[Agency.CJIS_IAFIS].settings.tls == "on"
    view = await tls_scenario.final(await tls_scenario.book(tls_scenario.subject(), CA))
    assert view["status"] == "answered"


async def test_rotated_certificates_take_effect_at_restart_and_the_old_ones_are_refused(
    tls_scenario: Scenario, db: DatabaseChoice, certs: Path
) -> None:
    fed = tls_scenario.fed
    assert (await tls_scenario.final(await tls_scenario.book(tls_scenario.subject(), CA)))[
        "status"
    ] == "answered"
    old_operator = SecureChannels.of(certs, OPERATOR)
    # The documented rotation: a new CA and new certificates, then every service restarted.
    init_certificates(certs, days=1, force=True)
    for agency in Agency:
        await fed.hosts[agency].stop()
    for agency in Agency:
        await fed.restart(agency, db)
    sib = fed.addresses()[Agency.SIB]
    async with old_operator(Agency.SIB, sib) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with SecureChannels.of(certs, OPERATOR)(Agency.SIB, sib) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    # Every hop works again on the new certificates (the SIB's edge is on a new port).
    async with scenario_in(fed, channels=SecureChannels.of(certs, OPERATOR)) as again:
        view = await again.final(await again.book(again.subject(), CA))
    assert view["status"] == "answered"
    assert "SRE" in {response["kind"] for response in view["responses"]}


async def test_with_tls_the_http_operator_routes_need_the_operators_token(
    tls_host: ServiceHost,
) -> None:
    certs = tls_host.settings.resolved_tls_dir()
    token = operator_token(certs)
    routes = [
        ("POST", "/v1/admin/reset", None),
        ("GET", "/v1/admin/snapshot", None),
        ("POST", "/v1/clock/advance", b'{"seconds": 1}'),
        ("POST", "/v1/faults", b'{"action": "latency", "latency_ms": 1}'),
        ("GET", "/v1/faults", None),
        ("DELETE", "/v1/faults", None),
        ("POST", "/v1/outbox/dead/requeue", None),
    ]
    async with httpx.AsyncClient(base_url=tls_host.http_url, timeout=30) as client:
        before = (await client.get("/v1/stats")).json()
        json = {"content-type": "application/json"}
        for method, path, body in routes:
            for headers in ({}, {"Authorization": "Bearer scfed_op_wrong"}, {"X-API-Key": token}):
                r = await client.request(method, path, content=body, headers={**json, **headers})
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
                assert token not in r.text
        # A body that is not JSON does not get its 422 before the 401.
        r = await client.post("/v1/clock/advance", content=b"{nope", headers=json)
        assert r.status_code == 401, r.text
        # Nothing changed, and the service's reads stay open.
        assert (await client.get("/v1/stats")).json() == before
        assert (await client.get("/v1/journal-counts")).status_code == 200
        operator = {"Authorization": f"Bearer {token}"}
        assert (await client.post("/v1/admin/reset", headers=operator)).status_code == 200
        added = await client.post(
            "/v1/faults", json={"action": "latency", "latency_ms": 1}, headers=operator
        )
        assert added.status_code == 201, added.text
        assert (await client.delete("/v1/faults", headers=operator)).json() == {"cleared": 1}
        # The OpenAPI document says so, in the edge's one error shape.
        spec = (await client.get("/openapi.json")).json()
        for method, path, _body in routes:
            declared = spec["paths"][path][method.lower()]["responses"]
            assert declared["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }, (method, path)


async def test_the_operator_certificate_reaches_a_tls_service(tls_host: ServiceHost) -> None:
    certs = tls_host.settings.resolved_tls_dir()
    async with SecureChannels.of(certs, OPERATOR)(Agency.IDENT, tls_host.grpc_address) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_a_plaintext_client_is_refused(tls_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(tls_host.grpc_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_certificate_from_another_ca_is_refused(
    tls_host: ServiceHost, tmp_path: Path
) -> None:
    foreign = tmp_path / "foreign"
    init_certificates(foreign, days=1)
    certs = tls_host.settings.resolved_tls_dir()
    # The client trusts the right CA, so only its own certificate can be what is refused.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certificate_path(certs, CA_NAME).read_bytes(),
        private_key=key_path(foreign, OPERATOR).read_bytes(),
        certificate_chain=certificate_path(foreign, OPERATOR).read_bytes(),
    )
    async with SecureChannels(credentials)(Agency.IDENT, tls_host.grpc_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_on_without_certificates_names_the_file_and_the_ways_out(
    db: DatabaseChoice, tmp_path: Path
) -> None:
    empty = tmp_path / "no-certs"
    with pytest.raises(CertificateMissing, match=r"scfed certs init --dir .*SCFED_TLS=off"):
        make_host(Agency.SIB, db, tls="on", tls_dir=empty)


async def test_a_plaintext_service_says_so_at_start(
    db: DatabaseChoice, caplog: pytest.LogCaptureFixture
) -> None:
    host = make_host(Agency.LESC, db)
    with caplog.at_level(logging.WARNING, logger="services.runtime.server"):
        await host.start()
    await host.stop()
    assert "lesc: TLS off: gRPC is plaintext (SCFED_TLS=off)" in caplog.messages


@pytest.fixture
async def identity_server(certs: Path) -> AsyncIterator[str]:
    """A bare gRPC server with LESC's certificate whose one method answers peer_identity."""

    async def who_am_i(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return (peer_identity(context) or "").encode()

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(who_am_i)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("scfed.test.Identity", {"WhoAmI": handler})]
    )
    port = bind_grpc(server, "127.0.0.1", 0, server_credentials(certs, Agency.LESC))
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.mark.parametrize("caller", [Agency.SIB, Agency.CJIS_IAFIS, OPERATOR])
async def test_the_server_learns_the_callers_identity_from_its_certificate(
    identity_server: str, certs: Path, caller: str
) -> None:
    async with SecureChannels.of(certs, caller)(Agency.LESC, identity_server) as channel:
        answer = await channel.unary_unary(WHO_AM_I)(b"", timeout=5)
    assert answer == str(caller).encode()


async def test_a_peer_with_another_agencys_certificate_is_not_taken_for_the_one_dialled(
    certs: Path, identity_server: str
) -> None:
    # The server holds LESC's certificate: dialled as IDENT, the client refuses it.
    async with SecureChannels.of(certs, Agency.SIB)(Agency.IDENT, identity_server) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(WHO_AM_I)(b"", timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
