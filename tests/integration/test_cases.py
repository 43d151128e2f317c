"""Removal cases in agency time: custody, ATD, hearings, stipulated orders, lapsed holds,
re-entry after removal, and illegal transitions, with the field office on a stepped clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.ice_field.v1 import ice_field_pb2_grpc as ice_grpc
from services.cli.report import review_programs
from services.ice_field.models import CaseState
from services.runtime.clock import ManualClock
from tests.federation import DatabaseChoice, running_federation
from tests.scenario import Scenario, scenario_in
from tests.support import eventually

CA = "CA0190000"
# Wednesday before Thanksgiving 2009: the hold spans the holiday and a weekend.
BEFORE_THANKSGIVING = datetime(2009, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def stepped(db: DatabaseChoice) -> AsyncIterator[tuple[Scenario, ManualClock]]:
    """A federation whose field offices run on a manual clock and detain Level 3 too."""
    clock = ManualClock(datetime(2009, 11, 2, 9, 0, tzinfo=UTC))
    field = {"clock": clock, "case_poll_s": 0.02, "discretion_level_3": "detain"}
    async with running_federation(db, ice_field=field) as fed, scenario_in(fed) as s:
        yield s, clock


async def _detainer(s: Scenario, detainer_id: str) -> ice.DetainerRecord:
    async with grpc.aio.insecure_channel(s.fed.addresses()["ice_field"]) as channel:
        record: ice.DetainerRecord = await ice_grpc.IceFieldStub(channel).GetDetainer(
            ice.GetDetainerRequest(detainer_id=detainer_id)
        )
        return record


async def _booked_with_detainer(
    s: Scenario, status: str, codes: tuple[str, ...]
) -> tuple[Any, str, str]:
    subject = s.subject()
    await s.in_ident(subject, status)
    tcn = await s.book(subject, CA, codes)
    found = await s.detainers_for(tcn, CA, expect=1)
    return subject, tcn, str(found[0]["body"]["detainer"]["detainer_id"])


async def _release(s: Scenario, detainer_id: str, at: datetime) -> None:
    r = await s.client.post(
        "/v1/release-notices",
        json={"ori": CA, "detainer_id": detainer_id, "release_at": at.isoformat()},
    )
    assert r.status_code == 202, r.text


async def _reaches(s: Scenario, detainer_id: str, state: str) -> ice.DetainerRecord:
    record = ice.DetainerRecord()

    async def there() -> bool:
        nonlocal record
        record = await _detainer(s, detainer_id)
        return record.state == state

    try:
        await eventually(there, what=f"case {detainer_id} to be {state}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it is {record.state}: {list(record.history)}") from None
    return record


async def test_a_level_1_case_runs_from_detainer_to_removal_and_a_return_is_flagged(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    subject, _, detainer_id = await _booked_with_detainer(s, "ENTRY_WITHOUT_INSPECTION", ("1201",))
    released = datetime(2009, 11, 9, 12, 0, tzinfo=UTC)  # Monday; Wednesday is Veterans Day
    clock.advance(released - clock.now())
    await _release(s, detainer_id, released)
    noticed = await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    assert noticed.hold_until.ToDatetime(tzinfo=UTC) == datetime(2009, 11, 12, 12, tzinfo=UTC)

    for delta, state in [
        (timedelta(hours=4), CaseState.IN_CUSTODY),
        (timedelta(days=1), CaseState.IN_PROCEEDINGS),
        (timedelta(days=30), CaseState.FINAL_ORDER),
        (timedelta(days=14), CaseState.TRAVEL_DOCUMENT),
        (timedelta(days=7), CaseState.REMOVED),
    ]:
        clock.advance(delta)
        record = await _reaches(s, detainer_id, state)
    steps = [(h.to_state, h.at.ToDatetime(tzinfo=UTC)) for h in record.history]
    assert steps == [
        (CaseState.DETAINER_ISSUED, steps[0][1]),
        (CaseState.RELEASE_NOTICED, released),
        (CaseState.IN_CUSTODY, released + timedelta(hours=4)),
        (CaseState.IN_PROCEEDINGS, released + timedelta(hours=4, days=1)),
        (CaseState.FINAL_ORDER, released + timedelta(hours=4, days=31)),
        (CaseState.TRAVEL_DOCUMENT, released + timedelta(hours=4, days=45)),
        (CaseState.REMOVED, released + timedelta(hours=4, days=52)),
    ]

    again = await s.book(subject, CA, ("1201",))
    second = await s.detainers_for(again, CA, expect=1)
    record = await _detainer(s, str(second[0]["body"]["detainer"]["detainer_id"]))
    assert record.reentry_after_removal is True
    assert "referred for prosecution" in record.history[0].reason


async def test_an_lea_dates_its_release_notice_ahead_in_the_field_offices_served_time(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    _, _, detainer_id = await _booked_with_detainer(s, "ENTRY_WITHOUT_INSPECTION", ("1201",))
    async with httpx.AsyncClient() as client:
        served = await client.get(f"{s.fed.hosts['ice_field'].http_url}/v1/clock")
    assert served.status_code == 200 and served.json()["service"] == "ice_field"
    now = datetime.fromisoformat(served.json()["now"])
    assert now == clock.now(), "/v1/clock serves the stepped agency time"

    release = now + timedelta(days=10)  # the end of a local sentence, ten days out
    await _release(s, detainer_id, release)
    noticed = await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    assert noticed.release_at.ToDatetime(tzinfo=UTC) == release
    clock.advance(timedelta(days=9))
    assert (await _detainer(s, detainer_id)).state == CaseState.RELEASE_NOTICED, "not yet released"
    clock.advance(timedelta(days=1, hours=4))
    record = await _reaches(s, detainer_id, CaseState.IN_CUSTODY)
    assert record.history[-1].at.ToDatetime(tzinfo=UTC) == release + timedelta(hours=4)


async def test_a_hold_lapses_after_48_business_hours_without_a_bed(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    async with grpc.aio.insecure_channel(s.fed.addresses()["ice_field"]) as channel:
        await ice_grpc.IceFieldStub(channel).RegisterFieldOffice(
            ice.FieldOffice(ori="CAICE0100", name="LA", states=["CA"], bed_capacity=0)
        )
    _, _, detainer_id = await _booked_with_detainer(s, "VISA_OVERSTAY", ("0901",))
    clock.advance(BEFORE_THANKSGIVING - clock.now())
    await _release(s, detainer_id, BEFORE_THANKSGIVING)
    noticed = await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    # Wed 12h, Thanksgiving skipped, Fri 24h, the weekend skipped, Mon 12h.
    hold_until = datetime(2009, 11, 30, 12, 0, tzinfo=UTC)
    assert noticed.hold_until.ToDatetime(tzinfo=UTC) == hold_until
    clock.advance(timedelta(days=3))
    record = await _detainer(s, detainer_id)
    assert record.state == CaseState.RELEASE_NOTICED, "still within the hold"
    clock.advance(timedelta(days=3))
    record = await _reaches(s, detainer_id, CaseState.LAPSED)
    assert record.history[-1].at.ToDatetime(tzinfo=UTC) == hold_until
    assert record.history[-1].reason == "no bed before the hold expired"
    # Goal 3.3 reviews the office's Criminal Alien Program: its Level 1 subject was lost.
    counts = await _measures(s)
    assert counts["office_CAICE0100_level_1_lapsed"] == 1
    assert "office_CAICE0100_level_1_taken" not in counts
    assert counts["office_CAICE0100_steps"] >= 2  # detainer lodged, release noticed, lapsed
    (program,) = [
        row
        for row in review_programs({"ice_field": counts})
        if row["program"].endswith("CAICE0100")
    ]
    assert (program["value_pct"], program["met"]) == (0.0, False)


async def test_a_non_criminal_low_risk_case_goes_to_atd(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    _, _, detainer_id = await _booked_with_detainer(s, "VISA_OVERSTAY", ("7399",))
    await _release(s, detainer_id, clock.now())
    await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    clock.advance(timedelta(hours=4))
    record = await _reaches(s, detainer_id, CaseState.ATD)
    assert record.flight_risk == "low" and record.facility_id == ""
    assert record.history[-1].reason == "no conviction, low flight risk: ATD"


async def test_a_convicted_alien_is_never_put_on_atd(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    subject = s.subject()
    await s.in_ident(subject, "VISA_OVERSTAY")
    await s.in_iafis(subject, [("7399", 30)])  # a prior Level 3 conviction
    tcn = await s.book(subject, CA, ("7399",))
    detainer_id = str(
        (await s.detainers_for(tcn, CA, expect=1))[0]["body"]["detainer"]["detainer_id"]
    )
    await _release(s, detainer_id, clock.now())
    await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    clock.advance(timedelta(hours=4))
    record = await _reaches(s, detainer_id, CaseState.IN_CUSTODY)
    assert record.flight_risk == "low" and record.facility_id.startswith("CAICE0100-")

    # A day in a bed, up to the hearing: one criminal-alien bed-day out of a day of every bed.
    clock.advance(timedelta(days=1))
    await _reaches(s, detainer_id, CaseState.IN_PROCEEDINGS)
    measures = await _measures(s)
    assert measures["criminal_alien_bed_days"] == 1.0
    assert measures["bed_days_available"] == measures["beds"] > 0


async def test_a_prior_final_order_is_a_flight_risk_held_in_a_bed_to_a_stipulated_order(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    _, _, detainer_id = await _booked_with_detainer(s, "FINAL_ORDER_OF_REMOVAL", ("7399",))
    await _release(s, detainer_id, clock.now())
    await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    clock.advance(timedelta(hours=4))
    record = await _reaches(s, detainer_id, CaseState.IN_CUSTODY)
    assert record.flight_risk == "high" and record.facility_id.startswith("CAICE0100-")
    clock.advance(timedelta(days=1))
    record = await _reaches(s, detainer_id, CaseState.FINAL_ORDER)
    assert record.history[-1].reason.startswith("stipulated order")
    assert CaseState.IN_PROCEEDINGS not in [h.to_state for h in record.history]


async def test_beds_are_given_facility_by_facility_and_free_again_after_removal(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    office = ice.FieldOffice(
        ori="CAICE0100",
        name="LA",
        states=["CA"],
        facilities=[
            ice.Facility(facility_id="CA-A", name="A", beds=1),
            ice.Facility(facility_id="CA-B", name="B", beds=1),
        ],
        atd_slots=0,  # so even an ATD-eligible person needs a bed
    )
    async with grpc.aio.insecure_channel(s.fed.addresses()["ice_field"]) as channel:
        registered = await ice_grpc.IceFieldStub(channel).RegisterFieldOffice(office)
    assert registered.bed_capacity == 2
    ids = [(await _booked_with_detainer(s, "VISA_OVERSTAY", ("7399",)))[2] for _ in range(3)]
    for detainer_id in ids:
        await _release(s, detainer_id, clock.now())
    for detainer_id in ids:
        await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    clock.advance(timedelta(hours=4))

    async def placed() -> bool:
        states = [(await _detainer(s, i)).state for i in ids]
        return states.count(CaseState.IN_CUSTODY) == 2

    await eventually(placed, what="two of three cases in custody")
    records = {i: await _detainer(s, i) for i in ids}
    held = [r for r in records.values() if r.state == CaseState.IN_CUSTODY]
    assert sorted(r.facility_id for r in held) == ["CA-A", "CA-B"]
    (waiting,) = [i for i, r in records.items() if r.state == CaseState.RELEASE_NOTICED]
    measures = await _measures(s)
    assert measures["beds_occupied"] == 2
    assert measures["atd_eligible_arrests"] == 2 and measures["atd_placements"] == 0

    clock.advance(timedelta(days=6))  # past the 48 business-hour hold: the third one lapses
    lapsed = await _reaches(s, waiting, CaseState.LAPSED)
    assert lapsed.history[-1].reason == "no bed before the hold expired"
    clock.advance(timedelta(days=60))
    for detainer_id in set(ids) - {waiting}:
        await _reaches(s, detainer_id, CaseState.REMOVED)
    measures = await _measures(s)
    assert measures["beds_occupied"] == 0 and measures["removals"] == 2
    assert measures["criminal_alien_removals"] == 0 and measures["lapsed"] == 1
    assert measures["criminal_custody_stays_ended"] == 0
    later = (clock.now() + timedelta(days=1)).isoformat()
    assert (await _measures(s, since=later))["removals"] == 0


async def _measures(s: Scenario, **params: str) -> dict[str, float]:
    url = s.fed.hosts["ice_field"].http_url
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{url}/v1/measures", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_illegal_transitions_are_refused_and_change_nothing(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, _ = stepped
    _, _, detainer_id = await _booked_with_detainer(s, "VISA_OVERSTAY", ("1201",))
    async with grpc.aio.insecure_channel(s.fed.addresses()["ice_field"]) as channel:
        stub = ice_grpc.IceFieldStub(channel)
        for to_state in (CaseState.REMOVED, CaseState.IN_CUSTODY, "vacation"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.AdvanceCase(
                    ice.AdvanceCaseRequest(detainer_id=detainer_id, to_state=to_state)
                )
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert detainer_id in (caught.value.details() or "")
        lapsed = await stub.AdvanceCase(
            ice.AdvanceCaseRequest(
                detainer_id=detainer_id, to_state=CaseState.LAPSED, reason="LEA released"
            )
        )
        assert lapsed.state == CaseState.LAPSED and lapsed.history[-1].reason == "LEA released"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.NotifyRelease(
                ice.ReleaseNotice(envelope=_envelope(detainer_id), detainer_id=detainer_id)
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await _detainer(s, detainer_id)).state == CaseState.LAPSED


def _envelope(detainer_id: str) -> Any:
    from scfed.common.v1 import common_pb2

    return common_pb2.Envelope(message_id=f"rel-{detainer_id}", tcn="X", tcr="X", ori=CA)


async def test_a_deployments_own_appendix_a_table_changes_outcomes_without_code(
    db: DatabaseChoice, tmp_path: Path
) -> None:
    """7399 is Level 3 in the MOA's table (no detainer by default); a deployment's table that
    puts it at Level 1 gets a Level 1 detainer, with no code changed."""
    moa = resources.files("services.lesc").joinpath("data", "appendix_a_moa.toml").read_text()
    local = tmp_path / "appendix_a_local.toml"
    local.write_text(
        moa.replace('name = "moa"', 'name = "moa-local"', 1)
        + '\n[[category]]\nname = "Local priority"\nprinted = "Local priority 7399"\n'
        'level = 1\ncodes = ["7399"]\n'
    )
    outcomes = {}
    for i, table in enumerate(("moa", str(local))):
        fresh = DatabaseChoice(db.kind, tmp_path / f"run{i}")  # a federation of its own
        fresh.tmp.mkdir()
        async with (
            running_federation(fresh, lesc={"offense_table": table}) as fed,
            scenario_in(fed) as s,
        ):
            subject = s.subject()
            await s.in_ident(subject, "VISA_OVERSTAY")
            view = await s.final(await s.book(subject, CA, ("7399",)))
            (answer,) = [r for r in view["responses"] if r["kind"] == "IDR/IAR"]
            iar = answer["body"]["joint"]["iar"]
            await s.quiet()
            inbox = [m for m in await s.inbox(CA) if m["kind"] == "I-247"]
            outcomes[table] = (iar["current_charge_level"], iar["offense_table"], len(inbox))
    assert outcomes["moa"] == ("OFFENSE_LEVEL_3", "moa", 0)
    assert outcomes[str(local)] == ("OFFENSE_LEVEL_1", "moa-local", 1)
