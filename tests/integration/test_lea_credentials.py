"""LEA credentials at the SIB's agency edge (SCFED_SIB_LEA_CREDENTIALS=required): an API key per
ORI issued by IssueLeaCredential; no key or an unknown one is a 401, another LEA's inbox or
booking ORI a 403, another LEA's booking a 404 like an unknown TCN, and the list the caller's
own; a new key revokes the old one; with credentials off the edge is as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from scfed.sib.v1 import sib_pb2 as sib
from scfed.sib.v1 import sib_pb2_grpc
from services.federation import Agency
from services.sib.credentials import KEY_PREFIX
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.scenario import Scenario, scenario_in

LA = "CA0190000"
SAN_DIEGO = "CA0370000"


@pytest.fixture
async def scenario(db: DatabaseChoice) -> AsyncIterator[Scenario]:
    """The fixed world in a federation whose SIB requires LEA credentials."""
    async with (
        running_federation(db, sib={"lea_credentials": "required"}) as fed,
        scenario_in(fed) as s,
    ):
        yield s


async def _issue(fed: Federation, ori: str) -> str:
    """A fresh API key for `ori`, through the SIB's gRPC RPC."""
    async with grpc.aio.insecure_channel(fed.addresses()[Agency.SIB]) as channel:
        stub = sib_pb2_grpc.StateIdentificationBureauStub(channel)
        reply = await stub.IssueLeaCredential(sib.IssueLeaCredentialRequest(ori=ori))
    assert reply.ori == ori and reply.HasField("issued_at")
    assert reply.api_key.startswith(KEY_PREFIX)
    return str(reply.api_key)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _booking(s: Scenario, ori: str, number: str) -> dict[str, Any]:
    return s.subject().booking_body(ori, number, ("2399",))


def _refused(r: httpx.Response, status: int, words: str, *secrets: str) -> None:
    """The one error shape, with `words`, quoting none of `secrets`."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"detail", "errors"} and words in body["detail"], body
    for secret in secrets:
        assert secret not in r.text


async def _tcns(s: Scenario, key: str) -> list[str]:
    r = await s.client.get("/v1/bookings", headers=_bearer(key))
    assert r.status_code == 200, r.text
    return [b["tcn"] for b in r.json()]


async def test_without_a_known_credential_the_edge_answers_401_and_stores_nothing(
    scenario: Scenario,
) -> None:
    la_key = await _issue(scenario.fed, LA)
    body = _booking(scenario, LA, "BK-NOKEY")
    r = await scenario.client.post("/v1/bookings", json=body)
    _refused(r, 401, "no LEA credential")
    assert r.headers["www-authenticate"] == "Bearer"
    wrong = KEY_PREFIX + "not-a-key-anyone-was-given"
    for headers in (_bearer(wrong), {"X-API-Key": wrong}, _bearer(la_key + "x")):
        r = await scenario.client.post("/v1/bookings", json=body, headers=headers)
        _refused(r, 401, "unknown or revoked LEA credential", wrong, la_key)
        assert r.headers["www-authenticate"] == "Bearer"
    r = await scenario.client.post("/v1/bookings", json=body, headers={"Authorization": la_key})
    _refused(r, 401, "no LEA credential", la_key)
    for path in ("/v1/bookings", f"/v1/agencies/{LA}/messages", "/v1/bookings/T1"):
        _refused(await scenario.client.get(path), 401, "no LEA credential")
    r = await scenario.client.post("/v1/release-notices", json={"ori": LA, "detainer_id": "D-1"})
    _refused(r, 401, "no LEA credential")
    # Whatever the body, even one that is not JSON (or not UTF-8): the credential comes first.
    for raw in (b"{not json", b"\xff\xfe", b""):
        for path in ("/v1/bookings", "/v1/release-notices"):
            r = await scenario.client.post(
                path, content=raw, headers={"content-type": "application/json"}
            )
            _refused(r, 401, "no LEA credential")
    # With a good key, the same bodies are the 422 they always were.
    r = await scenario.client.post(
        "/v1/bookings",
        content=b"{not json",
        headers={"content-type": "application/json", **_bearer(la_key)},
    )
    _refused(r, 422, "JSON")
    assert await _tcns(scenario, la_key) == []


async def test_an_lea_books_and_reads_only_under_its_own_ori(scenario: Scenario) -> None:
    fed, client = scenario.fed, scenario.client
    la_key, sd_key = await _issue(fed, LA), await _issue(fed, SAN_DIEGO)

    # Another LEA's ORI on a booking or a release notice: 403, naming neither ORI.
    r = await client.post(
        "/v1/bookings", json=_booking(scenario, SAN_DIEGO, "BK-1"), headers=_bearer(la_key)
    )
    _refused(r, 403, "its own ORI only", la_key, SAN_DIEGO, LA)
    r = await client.post(
        "/v1/release-notices",
        json={"ori": SAN_DIEGO, "detainer_id": "D-1"},
        headers=_bearer(la_key),
    )
    _refused(r, 403, "its own ORI only", la_key, SAN_DIEGO, LA)
    assert await _tcns(scenario, sd_key) == []

    r = await client.post(
        "/v1/bookings", json=_booking(scenario, LA, "BK-1"), headers=_bearer(la_key)
    )
    assert r.status_code == 202, r.text
    la_tcn = r.json()["tcn"]
    r = await client.post(
        "/v1/bookings", json=_booking(scenario, SAN_DIEGO, "BK-1"), headers={"X-API-Key": sd_key}
    )
    assert r.status_code == 202, r.text
    sd_tcn = r.json()["tcn"]

    # Inboxes: one's own 200, another's 403.
    r = await client.get(f"/v1/agencies/{LA}/messages", headers=_bearer(la_key))
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/agencies/{SAN_DIEGO}/messages", headers=_bearer(la_key))
    _refused(r, 403, "its own ORI only", la_key)

    # Bookings: one's own 200; another's is answered as an unknown TCN is.
    r = await client.get(f"/v1/bookings/{la_tcn}", headers=_bearer(la_key))
    assert r.status_code == 200 and r.json()["ori"] == LA, r.text
    other = await client.get(f"/v1/bookings/{sd_tcn}", headers=_bearer(la_key))
    unknown = await client.get("/v1/bookings/NO-SUCH-TCN", headers=_bearer(la_key))
    assert other.status_code == unknown.status_code == 404
    assert other.json()["detail"] == unknown.json()["detail"].replace("NO-SUCH-TCN", sd_tcn)
    assert await _tcns(scenario, la_key) == [la_tcn]
    assert await _tcns(scenario, sd_key) == [sd_tcn]

    # The audit trail names the credential's LEA, for the reads and for the refusals.
    trail = (await client.get("/v1/audit", params={"limit": 1000})).json()
    inbox_reads = [r for r in trail if r["rpc"] == "GET /v1/agencies/{ori}/messages"]
    assert [(r["who"], r["outcome"]) for r in inbox_reads] == [
        (f"lea:{LA}", "read"),
        (f"lea:{LA}", "refused"),
    ]
    refused_booking = next(
        r for r in trail if r["rpc"] == "POST /v1/bookings" and r["outcome"] == "refused"
    )
    assert refused_booking["who"] == f"lea:{LA}"
    lists = {r["who"] for r in trail if r["rpc"] == "GET /v1/bookings"}
    assert lists == {f"lea:{LA}", f"lea:{SAN_DIEGO}"}


async def test_a_new_key_revokes_the_previous_one(scenario: Scenario) -> None:
    old = await _issue(scenario.fed, LA)
    assert await _tcns(scenario, old) == []
    new = await _issue(scenario.fed, LA)
    assert new != old
    r = await scenario.client.get("/v1/bookings", headers=_bearer(old))
    _refused(r, 401, "unknown or revoked LEA credential", old)
    assert await _tcns(scenario, new) == []
    # Each issue is on the audit trail (seeding issued every LEA's first); no key ever is.
    trail = (await scenario.client.get("/v1/audit")).json()
    issued = [r for r in trail if r["rpc"] == "IssueLeaCredential" and LA in r["detail"]]
    assert [r["outcome"] for r in issued] == ["issued", "issued", "issued"]
    assert all(old not in str(r) and new not in str(r) for r in trail)


async def test_issuing_a_credential_refuses_a_malformed_or_unknown_ori(
    scenario: Scenario,
) -> None:
    for ori, code in (
        ("CA01", grpc.StatusCode.INVALID_ARGUMENT),
        ("WY0000000", grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _issue(scenario.fed, ori)
        assert caught.value.code() == code and ori in (caught.value.details() or "")


async def test_with_credentials_off_the_edge_takes_the_ori_on_trust(
    federation: Federation,
) -> None:
    async with scenario_in(federation) as s:
        r = await s.client.post("/v1/bookings", json=_booking(s, SAN_DIEGO, "BK-1"))
        assert r.status_code == 202, r.text
        tcn = r.json()["tcn"]
        assert (await s.client.get(f"/v1/agencies/{LA}/messages")).status_code == 200
        assert (await s.client.get(f"/v1/bookings/{tcn}")).status_code == 200
        listed = (await s.client.get("/v1/bookings")).json()
        assert [b["tcn"] for b in listed] == [tcn]
        trail = (await s.client.get("/v1/audit", params={"limit": 1000})).json()
        inbox_read = next(r for r in trail if r["rpc"] == "GET /v1/agencies/{ori}/messages")
        assert inbox_read["who"] == f"lea:{LA}"
