"""The synthetic world: deterministic from its seed, covering every path, with sound tenprints."""

from __future__ import annotations

import re

import numpy as np
import pytest

from scfed.common.v1 import common_pb2
from services.biometrics.params import DEFAULT_THRESHOLD, FINGERS, TEMPLATE_DIM
from services.biometrics.scoring import match_score
from services.biometrics.template import TenprintTemplate, tenprint_from_proto
from services.lesc.config import LescSettings
from services.world.tenprints import SyntheticFingerprints
from services.world.world import (
    DISPOSITIONS,
    IMMIGRATION_STATUSES,
    MAX_LOCAL_CUSTODY_DAYS,
    MAX_PRETRIAL_DAYS,
    BookingSpec,
    World,
    booking_payload,
    build_world,
)

ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")
YMD = re.compile(r"^[0-9]{8}$")
PAIRS = 200


@pytest.fixture(scope="module")
def world() -> World:
    """The 500-booking world most tests look at."""
    return build_world(2009, 500)


def _rebookings(world: World) -> list[tuple[BookingSpec, BookingSpec]]:
    """(previous booking, re-booking) pairs of the same person, in booking order."""
    latest: dict[int, BookingSpec] = {}
    pairs = []
    for booking in world.bookings:
        if booking.person_id in latest:
            pairs.append((latest[booking.person_id], booking))
        latest[booking.person_id] = booking
    return pairs


def _booked_people(world: World) -> set[int]:
    return {b.person_id for b in world.bookings}


def test_same_seed_builds_the_same_world_and_captures() -> None:
    first, second = build_world(11, 120), build_world(11, 120)
    assert first == second
    for a, b in zip(first.persons, second.persons, strict=True):
        assert np.array_equal(a.fingers, b.fingers)
    for booking in first.bookings[:20]:
        assert first.booking_capture(booking) == second.booking_capture(booking)
        assert booking_payload(first, booking) == booking_payload(second, booking)


def test_capturing_twice_gives_the_same_tenprint(world: World) -> None:
    booking = world.bookings[3]
    assert world.booking_capture(booking) == world.booking_capture(booking)


def test_different_seeds_build_different_worlds() -> None:
    first, second = build_world(11, 120), build_world(12, 120)
    assert first != second
    assert [p.nam for p in first.persons] != [p.nam for p in second.persons]
    assert not np.array_equal(first.persons[0].fingers, second.persons[0].fingers)
    assert first.booking_capture(first.bookings[0]) != second.booking_capture(second.bookings[0])


def test_rebookings_are_at_least_the_gap_after_an_earlier_booking(world: World) -> None:
    pairs = _rebookings(world)
    assert 0.1 * len(world.bookings) < len(pairs) < 0.3 * len(world.bookings)
    for previous, rebooking in pairs:
        assert rebooking.seq - previous.seq >= 32
        assert rebooking.doa >= previous.doa
    wide = build_world(3, 300, rebook_gap=100)
    for previous, rebooking in _rebookings(wide):
        assert rebooking.seq - previous.seq >= 100


def test_small_world_has_no_rebookings() -> None:
    small = build_world(1, 30)
    assert len({b.person_id for b in small.bookings}) == 30
    assert _rebookings(small) == []


def test_bookings_reach_every_state_and_the_non_activated_agency(world: World) -> None:
    states = {world.state_of(b.ori).code for b in world.bookings}
    assert states == {s.code for s in world.states} == {"TX", "CA", "AZ", "NM"}
    inactive = [a for a in world.agencies if not a.activated]
    assert [a.state for a in inactive] == ["CA"]
    assert any(b.ori == inactive[0].ori for b in world.bookings)
    assert {b.ori for b in world.bookings} == {a.ori for a in world.agencies}


def test_nff_state_sees_rebookings(world: World) -> None:
    assert [s.code for s in world.states if s.nff] == ["TX"]
    assert any(world.state_of(r.ori).nff for _, r in _rebookings(world))


def test_states_and_field_offices_are_as_specified(world: World) -> None:
    by_code = {s.code: s for s in world.states}
    assert (by_code["TX"].nff, by_code["TX"].relay_capable, by_code["TX"].moa_status) == (
        True,
        True,
        "ACTIVE",
    )
    assert by_code["AZ"].moa_status == "SUSPENDED"
    assert not by_code["NM"].relay_capable
    assert not by_code["CA"].nff
    assert {o.name: o.states for o in world.field_offices} == {
        "Dallas Field Office": ("TX", "NM"),
        "Los Angeles Field Office": ("CA",),
        "Phoenix Field Office": ("AZ",),
    }
    assert world.field_office_of("NM0010000").name == "Dallas Field Office"
    assert all(len([a for a in world.agencies if a.state == s]) == 3 for s in by_code)


def test_booked_people_include_every_kind_of_record(world: World) -> None:
    booked = [world.person(pid) for pid in _booked_people(world)]
    statuses = {p.immigration.status for p in booked if p.immigration}
    assert "NATURALIZED_CITIZEN" in statuses
    assert any(p.missing for p in booked)
    assert any(p.history for p in booked)
    assert any(p.immigration is None and not p.history for p in booked)
    ident_share = sum(p.immigration is not None for p in booked) / len(booked)
    assert 0.3 < ident_share < 0.5


def test_background_populations_make_search_meaningful(world: World) -> None:
    booked = _booked_people(world)
    ident_only = [
        p for p in world.ident_population() if p.person_id not in booked and not p.history
    ]
    iafis_only = [p for p in world.iafis_population() if p.person_id not in booked]
    assert len(ident_only) >= 2 * len(world.bookings)
    assert len(iafis_only) >= len(world.bookings)
    tiny = build_world(4, 0)
    assert len(tiny.ident_population()) >= 20 and len(tiny.iafis_population()) >= 20


def test_records_are_well_formed(world: World) -> None:
    oris = [s.sib_ori for s in world.states]
    oris += [a.ori for a in world.agencies] + [o.ori for o in world.field_offices]
    oris += [b.ori for b in world.bookings]
    oris += [arrest.ori for p in world.persons for arrest in p.history]
    assert all(ORI.match(ori) for ori in oris)
    numbers = {(b.ori, b.booking_number) for b in world.bookings}
    assert len(numbers) == len(world.bookings)
    a_numbers = [p.immigration.a_number for p in world.persons if p.immigration]
    assert len(set(a_numbers) - {""}) == len([a for a in a_numbers if a])
    for booking in world.bookings:
        assert "20090101" <= booking.doa <= "20101231"
        assert 1 <= len(booking.charges) <= 3
        assert all(c.disposition == "CHARGED" and c.sentence_days == 0 for c in booking.charges)
    for person in world.persons:
        assert person.fingers.shape == (FINGERS, TEMPLATE_DIM)
        assert np.allclose(np.linalg.norm(person.fingers, axis=1), 1.0)
        assert len(person.missing) <= 2
        if person.immigration:
            assert person.immigration.status in IMMIGRATION_STATUSES
            assert all(YMD.match(day) for _, day in person.immigration.encounters)
        for arrest in person.history:
            assert arrest.doa < "20090101"
            assert all(c.disposition in DISPOSITIONS for c in arrest.charges)
    priors = [c for p in world.persons for a in p.history for c in a.charges]
    assert any(c.disposition == "DISMISSED" for c in priors)
    assert any(c.disposition == "CONVICTED" and c.sentence_days > 365 for c in priors)


def test_missing_fingers_are_sent_amputated_without_template(world: World) -> None:
    booking = next(b for b in world.bookings if world.person(b.person_id).missing)
    person = world.person(booking.person_id)
    for finger in world.booking_capture(booking).fingers:
        if finger.position in person.missing:
            assert finger.status == common_pb2.FINGER_STATUS_AMPUTATED
            assert len(finger.template) == 0 and finger.quality == 0
        elif finger.status == common_pb2.FINGER_STATUS_UNPRINTABLE:
            assert len(finger.template) == 0 and finger.quality == 0
        else:
            assert finger.status == common_pb2.FINGER_STATUS_PRESENT
            assert len(finger.template) == TEMPLATE_DIM and 20 <= finger.quality <= 100


def test_genuine_captures_match_and_impostors_do_not(world: World) -> None:
    people = world.persons[: PAIRS + 1]
    rng = np.random.default_rng(77)
    model = world.fingerprints

    def template(person_index: int) -> TenprintTemplate:
        person = people[person_index]
        return tenprint_from_proto(model.capture(person.fingers, rng, missing=person.missing))

    genuine = [match_score(template(i), template(i)) for i in range(PAIRS)]
    impostor = [match_score(template(i), template(i + 1)) for i in range(PAIRS)]
    assert min(genuine) > DEFAULT_THRESHOLD
    assert 0.8 <= float(np.mean(genuine)) <= 0.95
    # Fingers of the same pattern class look alike, so impostors sit a little above zero.
    assert max(impostor) < 0.35
    assert 0.0 < float(np.mean(impostor)) < 0.15


def test_poor_quality_captures_still_match() -> None:
    model = SyntheticFingerprints()
    rng = np.random.default_rng(5)
    scores = []
    for _ in range(50):
        fingers = model.new_fingers(rng)
        probe = tenprint_from_proto(model.capture(fingers, rng, quality=30))
        gallery = tenprint_from_proto(model.capture(fingers, rng, quality=30))
        scores.append(match_score(probe, gallery))
    assert float(np.mean(scores)) > 0.6
    assert min(scores) > DEFAULT_THRESHOLD


def test_booking_capture_matches_the_enrolled_gallery(world: World) -> None:
    for booking in world.bookings[:50]:
        person = world.person(booking.person_id)
        probe = tenprint_from_proto(world.booking_capture(booking))
        gallery = tenprint_from_proto(world.enrollment_capture(person))
        assert match_score(probe, gallery) > DEFAULT_THRESHOLD


def test_capture_refuses_bad_input() -> None:
    model = SyntheticFingerprints()
    rng = np.random.default_rng(1)
    fingers = model.new_fingers(rng)
    with pytest.raises(ValueError, match="missing finger positions"):
        model.capture(fingers, rng, missing=frozenset({0}))
    with pytest.raises(ValueError, match="quality"):
        model.capture(fingers, rng, quality=101)
    with pytest.raises(ValueError, match="shape"):
        model.capture(fingers[:9], rng)


def test_build_world_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="seed"):
        build_world(-1, 10)
    with pytest.raises(ValueError, match="bookings"):
        build_world(1, -1)
    with pytest.raises(ValueError, match="rebook_gap"):
        build_world(1, 10, rebook_gap=0)


def test_booking_payload_carries_the_sib_edge_fields(world: World) -> None:
    booking = next(b for b in world.bookings if world.person(b.person_id).missing)
    person = world.person(booking.person_id)
    payload = booking_payload(world, booking)
    assert set(payload) == {"ori", "booking_number", "doa", "descriptors", "fingers", "charges"}
    assert (payload["ori"], payload["booking_number"], payload["doa"]) == (
        booking.ori,
        booking.booking_number,
        booking.doa,
    )
    assert payload["descriptors"] == {
        "nam": person.nam,
        "dob": person.dob,
        "sex": person.sex,
        "pob": person.pob,
    }
    capture = world.booking_capture(booking)
    assert [f["position"] for f in payload["fingers"]] == list(range(1, FINGERS + 1))
    for entry, finger in zip(payload["fingers"], capture.fingers, strict=True):
        if finger.position in person.missing:
            assert entry == {"position": finger.position, "status": "amputated", "quality": 0}
        elif finger.status == common_pb2.FINGER_STATUS_UNPRINTABLE:
            assert entry == {"position": finger.position, "status": "unprintable", "quality": 0}
        else:
            assert set(entry) == {"position", "status", "template", "quality"}
            assert entry["status"] == "present"
            assert entry["template"] == list(finger.template)
            assert entry["quality"] == finger.quality
    assert payload["charges"] == [
        {"ncic_code": c.ncic_code, "literal": c.literal, "disposition": "charged"}
        for c in booking.charges
    ]


def test_release_dates_are_pretrial_or_part_of_a_sentence_and_do_not_change_the_world(
    world: World,
) -> None:
    days = [b.release_after_days for b in world.bookings]
    assert all(1 <= d <= MAX_LOCAL_CUSTODY_DAYS for d in days)
    pretrial = sum(d <= MAX_PRETRIAL_DAYS for d in days) / len(days)
    assert 0.5 < pretrial < 0.7, pretrial
    assert any(d > MAX_PRETRIAL_DAYS for d in days)
    # Each booking's day comes from a stream of its own: a longer world of the same seed keeps
    # the same people, charges and release days for the bookings they share.
    longer = build_world(2009, 520)
    assert [(b.person_id, b.charges, b.release_after_days) for b in longer.bookings[:500]] == [
        (b.person_id, b.charges, b.release_after_days) for b in world.bookings
    ]


def test_the_worlds_lesc_staffing_is_a_valid_lesc_configuration(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in world.lesc_staffing.settings().items():
        monkeypatch.setenv(name, value)
    settings = LescSettings()
    assert settings.shifts == world.lesc_staffing.shifts
    assert settings.analyst_minutes == world.lesc_staffing.analyst_minutes
    assert settings.iar_target_minutes == world.lesc_staffing.iar_target_minutes
