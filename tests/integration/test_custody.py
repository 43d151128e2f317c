"""One person, one custody: a later booking joins the open case, the database refuses a second
open case, a removal reaches IDENT, LESC reports the re-entry, and the field office refers it
to a U.S. Attorney's office."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.exc import IntegrityError

from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.ice_field.v1 import ice_field_pb2_grpc as ice_grpc
from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from services.ice_field.models import CaseState, DetainerRecord, IceFieldBase
from services.runtime.clock import ManualClock
from services.runtime.db import Database
from services.runtime.envelope import new_message_id
from tests.federation import DatabaseChoice, running_federation
from tests.scenario import Scenario, scenario_in
from tests.support import eventually

LA = "CA0190000"
SAN_DIEGO = "CA0370000"


@pytest.fixture
async def stepped(db: DatabaseChoice) -> AsyncIterator[tuple[Scenario, ManualClock]]:
    """A federation whose field offices run on a manual clock, from the present: IDENT dates
    the tests' enrolments by its real clock, and a removal must come after them."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    field = {"clock": clock, "case_poll_s": 0.02}
    async with running_federation(db, ice_field=field) as fed, scenario_in(fed) as s:
        yield s, clock


async def _detainer(s: Scenario, detainer_id: str) -> ice.DetainerRecord:
    async with grpc.aio.insecure_channel(s.fed.addresses()["ice_field"]) as channel:
        record: ice.DetainerRecord = await ice_grpc.IceFieldStub(channel).GetDetainer(
            ice.GetDetainerRequest(detainer_id=detainer_id)
        )
        return record


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


async def _release(s: Scenario, ori: str, detainer_id: str, at: datetime) -> None:
    r = await s.client.post(
        "/v1/release-notices",
        json={"ori": ori, "detainer_id": detainer_id, "release_at": at.isoformat()},
    )
    assert r.status_code == 202, r.text


def _detainer_id(message: dict[str, Any]) -> str:
    return str(message["body"]["detainer"]["detainer_id"])


async def _ice_get(s: Scenario, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=s.fed.hosts["ice_field"].http_url) as client:
        return await client.get(path, params=params)


async def test_a_second_booking_before_pickup_moves_the_detainer_instead_of_opening_another(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    subject = s.subject()
    await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    first = await s.book(subject, LA, ("2399",))
    (lodged,) = await s.detainers_for(first, LA, expect=1)
    detainer_id = _detainer_id(lodged)
    await _release(s, LA, detainer_id, clock.now() + timedelta(days=3))
    await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)

    # Released in Los Angeles, arrested in San Diego before ICE picked the person up.
    second = await s.book(subject, SAN_DIEGO, ("1201",))
    (moved,) = await s.detainers_for(second, SAN_DIEGO, expect=1)
    assert _detainer_id(moved) == detainer_id, "the same detainer, lodged again"
    record = await _reaches(s, detainer_id, CaseState.DETAINER_ISSUED)
    assert record.detainer.lea_ori == SAN_DIEGO and record.detainer.booking_tcn == second
    assert record.detainer.level == common_pb2.OFFENSE_LEVEL_1, "the new Level 1 charge counts"
    assert not record.HasField("release_at"), "the Los Angeles release notice no longer holds"
    assert [(b.booking_tcn, b.lea_ori, b.effect) for b in record.bookings] == [
        (first, LA, "opened"),
        (second, SAN_DIEGO, "detainer moved"),
    ]
    summary = (await _ice_get(s, "/v1/cases-summary")).json()
    assert summary["cases"] == 1

    # Only the LEA now holding the person can notice its release.
    await _release(s, SAN_DIEGO, detainer_id, clock.now() + timedelta(days=1))
    await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    clock.advance(timedelta(days=1, hours=4))
    await _reaches(s, detainer_id, CaseState.IN_CUSTODY)


async def test_a_booking_while_in_ice_custody_is_recorded_on_the_case_without_a_new_detainer(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    subject = s.subject()
    await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    first = await s.book(subject, LA, ("1201",))
    detainer_id = _detainer_id((await s.detainers_for(first, LA, expect=1))[0])
    await _release(s, LA, detainer_id, clock.now())
    await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    clock.advance(timedelta(hours=4))
    held = await _reaches(s, detainer_id, CaseState.IN_CUSTODY)

    second = await s.book(subject, SAN_DIEGO, ("2399",))
    await s.final(second)
    await s.quiet()
    record = await _detainer(s, detainer_id)
    assert record.state == CaseState.IN_CUSTODY and record.facility_id == held.facility_id
    assert [b.effect for b in record.bookings] == ["opened", "recorded"]
    assert [m for m in await s.inbox(SAN_DIEGO) if m["kind"] == "I-247"] == []
    measures = (await _ice_get(s, "/v1/measures")).json()
    assert measures["alien_arrests"] == 1 and measures["beds_occupied"] == 1


async def test_a_removal_reaches_ident_and_a_return_is_a_reentry_lesc_reports_and_refers(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, clock = stepped
    subject = s.subject()
    await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    first = await s.book(subject, LA, ("1201",))
    detainer_id = _detainer_id((await s.detainers_for(first, LA, expect=1))[0])
    await _release(s, LA, detainer_id, clock.now())
    await _reaches(s, detainer_id, CaseState.RELEASE_NOTICED)
    clock.advance(timedelta(days=60))
    removed = await _reaches(s, detainer_id, CaseState.REMOVED)
    removed_at = removed.history[-1].at.ToDatetime(tzinfo=UTC)
    assert removed.detainer.fin
    await s.quiet()

    async with grpc.aio.insecure_channel(s.fed.addresses()["ident"]) as channel:
        identity = await ident_pb2_grpc.IdentStub(channel).GetIdentity(
            ident_pb2.GetIdentityRequest(fin=removed.detainer.fin)
        )
    removals = [e for e in identity.encounters if e.encounter_type == "REMOVAL"]
    assert len(removals) == 1
    assert removals[0].encountered_at.ToDatetime(tzinfo=UTC) == removed_at
    assert removals[0].status == common_pb2.IMMIGRATION_STATUS_PREVIOUSLY_REMOVED

    again = await s.book(subject, LA, ("7399",))
    final = await s.final(again)
    assert final["status"] != "refused", final
    (joint,) = [m for m in await s.inbox(LA) if m["tcn"] == again and m["kind"] == "IDR/IAR"]
    iar = joint["body"]["joint"]["iar"]
    assert iar["status"] == "IMMIGRATION_STATUS_PREVIOUSLY_REMOVED"
    assert iar["reentry_after_removal"] is True
    assert datetime.fromisoformat(iar["removed_at"].replace("Z", "+00:00")) == removed_at

    async def referred() -> bool:
        return bool((await _ice_get(s, "/v1/referrals", fin=removed.detainer.fin)).json())

    await eventually(referred, what="a referral for prosecution")
    (referral,) = (await _ice_get(s, "/v1/referrals", fin=removed.detainer.fin)).json()
    assert referral["us_attorney_office"] == "USAO-CDCA"
    assert referral["status"] == "referred" and referral["statute"] == "8 U.S.C. 1326"
    assert referral["booking_tcn"] == again
    assert datetime.fromisoformat(referral["removed_at"]) == removed_at

    # A Level 3 re-entry is declined by the office's discretion, but still referred: once.
    third = await s.book(subject, LA, ("7399",))
    await s.final(third)
    await s.quiet()
    assert len((await _ice_get(s, "/v1/referrals", fin=removed.detainer.fin)).json()) == 1

    ice_url = s.fed.hosts["ice_field"].http_url
    answer = f"{ice_url}/v1/referrals/{referral['referral_id']}/answer"
    async with httpx.AsyncClient() as client:
        bad = await client.post(answer, json={"status": "maybe"})
        assert bad.status_code == 422, bad.text
        unknown = await client.post(
            f"{ice_url}/v1/referrals/NOPE/answer", json={"status": "accepted"}
        )
        assert unknown.status_code == 404, unknown.text
        ok = await client.post(answer, json={"status": "accepted", "reason": "indicted"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "accepted" and ok.json()["answered_at"]
        twice = await client.post(answer, json={"status": "declined"})
        assert twice.status_code == 409, twice.text
    shown = (await _ice_get(s, f"/v1/referrals/{referral['referral_id']}")).json()
    assert shown["status"] == "accepted" and shown["reason"] == "indicted"
    assert (await _ice_get(s, "/v1/referrals/NOPE")).status_code == 404


def _encounter_notice(fin: str, **encounter: Any) -> ident_pb2.EncounterNotice:
    at = Timestamp()
    at.FromDatetime(datetime(2010, 3, 1, tzinfo=UTC))
    fields: dict[str, Any] = {
        "encounter_id": "REMOVAL-TEST-1",
        "encounter_type": "REMOVAL",
        "encountered_at": at,
        "status": common_pb2.IMMIGRATION_STATUS_PREVIOUSLY_REMOVED,
    }
    fields.update(encounter)
    return ident_pb2.EncounterNotice(
        envelope=common_pb2.Envelope(
            message_id=new_message_id(), tot="ENCOUNTER", tcn="ICE1", tcr="ICE1", ori="CAICE0100"
        ),
        fin=fin,
        encounter=common_pb2.Encounter(**{k: v for k, v in fields.items() if v is not None}),
    )


async def test_ident_records_an_encounter_once_and_refuses_a_bad_one(
    stepped: tuple[Scenario, ManualClock],
) -> None:
    s, _ = stepped
    subject = s.subject()
    await s.in_ident(subject, "VISA_OVERSTAY")
    async with grpc.aio.insecure_channel(s.fed.addresses()["ident"]) as channel:
        stub = ident_pb2_grpc.IdentStub(channel)
        found = await stub.Identify(ident_pb2.IdentifyRequest(tenprint=subject.capture()))
        fin = found.candidates[0].fin
        notice = _encounter_notice(fin)
        assert (await stub.RecordEncounter(notice)).duplicate is False
        assert (await stub.RecordEncounter(notice)).duplicate is True
        # The same encounter under another message id is stored once.
        await stub.RecordEncounter(_encounter_notice(fin))
        identity = await stub.GetIdentity(ident_pb2.GetIdentityRequest(fin=fin))
        assert [e.encounter_type for e in identity.encounters].count("REMOVAL") == 1

        refusals = {
            grpc.StatusCode.INVALID_ARGUMENT: [
                _encounter_notice(""),
                _encounter_notice(fin, encounter_id=""),
                _encounter_notice(fin, encounter_type=""),
                _encounter_notice(fin, encountered_at=None),
                _encounter_notice(fin, status=common_pb2.IMMIGRATION_STATUS_UNSPECIFIED),
            ],
            grpc.StatusCode.NOT_FOUND: [_encounter_notice("FINNOBODY")],
            grpc.StatusCode.ALREADY_EXISTS: [_encounter_notice(fin, encounter_type="OTHER")],
        }
        for code, notices in refusals.items():
            for bad in notices:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.RecordEncounter(bad)
                assert caught.value.code() == code, (bad, caught.value.details())


async def test_the_database_refuses_a_second_open_case_for_one_person(
    db: DatabaseChoice,
) -> None:
    if db.kind == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{db.tmp / 'custody.db'}")
    else:
        assert db.postgres_url is not None
        database = Database(db.postgres_url, schema=db.schema("ice_field"))
    await database.connect([IceFieldBase.metadata])
    now = datetime(2009, 6, 1, tzinfo=UTC)

    def case(detainer_id: str, state: CaseState, fin: str = "FINONE") -> DetainerRecord:
        return DetainerRecord(
            detainer_id=detainer_id,
            tcn=detainer_id,
            field_office="CAICE0100",
            lea_ori=LA,
            fin=fin,
            level=1,
            state=state,
            issued_at=now,
            body=b"",
        )

    try:
        async with database.session() as session:
            session.add(case("I247-REMOVED", CaseState.REMOVED))
            session.add(case("I247-LAPSED", CaseState.LAPSED))
            session.add(case("I247-OPEN", CaseState.IN_CUSTODY))
            session.add(case("I247-OTHER", CaseState.DETAINER_ISSUED, fin="FINTWO"))
            session.add(case("I247-NOFIN-1", CaseState.DETAINER_ISSUED, fin=""))
            session.add(case("I247-NOFIN-2", CaseState.DETAINER_ISSUED, fin=""))
        with pytest.raises(IntegrityError):
            async with database.session() as session:
                session.add(case("I247-SECOND", CaseState.DETAINER_ISSUED))
    finally:
        await database.dispose()
