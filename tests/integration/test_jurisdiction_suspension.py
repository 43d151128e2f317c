"""MOA VIII: one jurisdiction suspended (racial or ethnic profiling), apart from its state's
MOA: criminal-history processing only, the reason on the booking's journal, and only the
suspending party lifts it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from scfed.sib.v1 import sib_pb2 as sib
from scfed.sib.v1 import sib_pb2_grpc
from services.federation import Agency
from tests.federation import Federation
from tests.scenario import Scenario, scenario_in
from tests.support import response_kinds

LA = "CA0190000"
REASON = "use of IDENT/IAFIS for racial profiling (MOA VIII)"


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered in a fresh federation, with an HTTP client for the SIB."""
    async with scenario_in(federation) as s:
        yield s


async def _sib(fed: Federation, method: str, request: object) -> sib.JurisdictionAccess:
    async with grpc.aio.insecure_channel(fed.addresses()[Agency.SIB]) as channel:
        reply: sib.JurisdictionAccess = await getattr(
            sib_pb2_grpc.StateIdentificationBureauStub(channel), method
        )(request)
        return reply


async def _refused(fed: Federation, method: str, request: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _sib(fed, method, request)
    return caught.value


async def test_a_suspended_jurisdiction_gets_criminal_history_only_and_says_why(
    scenario: Scenario,
) -> None:
    fed = scenario.fed
    subject = scenario.subject()
    await scenario.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    access = await _sib(
        fed,
        "SuspendJurisdiction",
        sib.SuspendJurisdictionRequest(ori=LA, by=sib.SUSPENDING_PARTY_ICE, reason=REASON),
    )
    assert access.suspended and access.reason == REASON and access.HasField("suspended_at")

    shown = (await scenario.client.get(f"/v1/jurisdictions/{LA}")).json()
    assert (shown["suspended"], shown["suspended_by"], shown["reason"]) == (
        True,
        "ICE",
        REASON,
    )
    tcn = await scenario.book(subject, LA, ("2399",))
    view = await scenario.final(tcn)
    assert view["expects_idr"] is False and response_kinds(view) == ["SRE"]
    async with httpx.AsyncClient() as client:
        sib_journal = (
            await client.get(f"{fed.hosts[Agency.SIB].http_url}/v1/journal/{tcn}")
        ).json()
        ident_journal = (
            await client.get(f"{fed.hosts[Agency.IDENT].http_url}/v1/journal/{tcn}")
        ).json()
        trail = (await client.get(f"{fed.sib_url}/v1/audit")).json()
    accepted = next(e for e in sib_journal if e["tot"] == "BOOKING")
    assert f"interoperability=no (jurisdiction suspended by ICE: {REASON})" in accepted["detail"]
    assert ident_journal == []
    # The audit trail says who suspended the jurisdiction and why, and why the booking's
    # search went no further than the state file.
    suspended = [r for r in trail if r["outcome"] == "suspended"]
    assert len(suspended) == 1 and suspended[0]["rpc"] == "SuspendJurisdiction"
    assert suspended[0]["who"].startswith("unauthenticated@")
    assert f"{LA}: jurisdiction suspended by ICE: {REASON}" == suspended[0]["detail"]
    booked = next(r for r in trail if r["tcn"] == tcn and r["purpose"] == "booking")
    assert "no IDENT search: jurisdiction suspended by ICE" in booked["detail"]

    # The state's MOA stays active: another jurisdiction of the state is still checked.
    other = scenario.subject()
    await scenario.in_ident(other, "VISA_OVERSTAY")
    view = await scenario.final(await scenario.book(other, "CA0370000"))
    assert view["expects_idr"] is True


async def test_only_the_suspending_party_lifts_a_suspension(federation: Federation) -> None:
    async with scenario_in(federation):
        by_sib = sib.SuspendJurisdictionRequest(ori=LA, by=sib.SUSPENDING_PARTY_SIB, reason="x")
        await _sib(federation, "SuspendJurisdiction", by_sib)
        again = await _sib(
            federation,
            "SuspendJurisdiction",
            sib.SuspendJurisdictionRequest(ori=LA, by=sib.SUSPENDING_PARTY_SIB, reason="y"),
        )
        assert again.reason == "y", "the same party suspending again replaces the reason"
        refused = await _refused(
            federation,
            "SuspendJurisdiction",
            sib.SuspendJurisdictionRequest(ori=LA, by=sib.SUSPENDING_PARTY_ICE, reason="z"),
        )
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "already suspended by SIB" in (refused.details() or "")
        refused = await _refused(
            federation,
            "ResumeJurisdiction",
            sib.ResumeJurisdictionRequest(ori=LA, by=sib.SUSPENDING_PARTY_ICE),
        )
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "only that party" in (refused.details() or "")
        resumed = await _sib(
            federation,
            "ResumeJurisdiction",
            sib.ResumeJurisdictionRequest(ori=LA, by=sib.SUSPENDING_PARTY_SIB),
        )
        assert not resumed.suspended and resumed.reason == ""
        # Resuming a jurisdiction not suspended answers it as it is.
        assert not (
            await _sib(
                federation,
                "ResumeJurisdiction",
                sib.ResumeJurisdictionRequest(ori=LA, by=sib.SUSPENDING_PARTY_ICE),
            )
        ).suspended
        async with httpx.AsyncClient(base_url=federation.sib_url) as client:
            assert (await client.get("/v1/jurisdictions/WY0000000")).status_code == 404
            assert (await client.get("/v1/jurisdictions/CA01")).status_code == 422
            assert (await client.get(f"/v1/jurisdictions/{LA}")).json()["suspended"] is False
            trail = (await client.get("/v1/audit")).json()
        # Two suspensions by the SIB (the second replacing the reason) and one lifting; the
        # refused attempts changed nothing and were not audited as changes.
        outcomes = [r["outcome"] for r in trail if r["rpc"].endswith("Jurisdiction")]
        assert sorted(outcomes) == ["resumed", "suspended", "suspended"], trail
