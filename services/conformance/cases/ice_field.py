"""The ICE field suite: detainer decisions by level, the I-247 through the SIB, the case after.

MOA section V: a removable subject charged with, or previously convicted of, a Level 1 offense
is detained (an I-247 to the LEA, through its SIB, always); Levels 2 and 3 are at the field
office's discretion (III.B.iii), so a detainer for them, if any, says so; a subject who is not
removable gets none. The field office covering the booking LEA's state decides; with none, the
IAR copy is refused and not remembered. The LEA's release notice starts the 48-hour hold
(weekends and holidays excluded), and an officer moves the case on by hand within the removal
case's state machine. The suite's setup registers the office covering `CA`.
"""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta

from scfed.common.v1 import common_pb2 as common
from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.sib.v1 import sib_pb2 as sib

from ...federation import Agency
from ..kit import CaseFailed, Probe, case, for_booking, refusal_cases, setup
from ..messages import CA, envelope, iar, new_tcn
from ..refusals import EXISTS, FAILED, content_refusals, envelope_refusals

ICE = Agency.ICE_FIELD
SIB = Agency.SIB

CA_OFFICE = "CAICE0100"
# An office the cases move in and out of a state nobody else covers (a code of no real state);
# its ORI sorts after `CA_OFFICE`, so it never takes California's bookings.
SPARE_OFFICE = "ZZICE0001"
# Registered (and replaced on every run) by the case that checks RegisterFieldOffice's answer.
GUAM_OFFICE = "GUICE0100"
SPARE_STATE = "QX"
HOLD = timedelta(hours=48)
# 48 hours excluding weekends and holidays: never less, and never more than a week of wall time.
LONGEST_HOLD = timedelta(days=7)


@setup(ICE)
async def register_california(probe: Probe) -> None:
    """The field office covering California, with beds and ATD slots."""
    await probe.call(
        "RegisterFieldOffice",
        ice.FieldOffice(
            ori=CA_OFFICE, name="San Francisco", states=[CA[:2]], bed_capacity=20, atd_slots=5
        ),
    )


def iar_copy(lea: str = CA, **iar_fields: object) -> ice.IarCopy:
    """LESC's IAR copy for a fresh booking of `lea`: a removable subject charged at Level 1
    unless `iar_fields` say otherwise."""
    fin = "FIN" + uuid.uuid4().hex[:12].upper()
    values: dict[str, object] = {
        "case_id": "LESC" + uuid.uuid4().hex[:12].upper(),
        "fin": fin,
        "fbi_number": "1234567AB",
        "removal_ground": "INADMISSIBLE-EWI",
        "priority": 1,
    }
    values.update(iar_fields)
    return ice.IarCopy(
        envelope=envelope("IAR-COPY", tcr=new_tcn("BOOK"), ori=lea, sender="lesc"),
        iar=iar(**values),
        booking_number="BK-" + uuid.uuid4().hex[:8].upper(),
        nam="CONFORMANCE,SUBJECT",
    )


async def _detainer_for(probe: Probe, request: ice.IarCopy) -> common.I247Detainer:
    """Delivers the copy and waits for the I-247 to the SIB about its booking."""
    await probe.deliver("DeliverIar", request)
    received = await probe.expect(
        SIB, "DeliverDetainer", for_booking(request.envelope.tcr), what="I-247 detainer"
    )
    message: sib.DetainerMessage = received.message
    if message.envelope.tcr != request.envelope.tcr or message.envelope.tcn in (
        "",
        request.envelope.tcn,
    ):
        raise CaseFailed(
            f"the I-247's envelope must name the booking {request.envelope.tcr} and a TCN of "
            f"its own: {message.envelope}"
        )
    return message.detainer


def _check_detainer(
    detainer: common.I247Detainer,
    request: ice.IarCopy,
    level: common.OffenseLevel.ValueType,
    basis: common.DetainerBasis.ValueType,
) -> None:
    """The I-247 names the LEA, the booking and the subject, at `level` on `basis`, asking for
    notice before release and a hold of at most 48 hours."""
    problems = []
    expected = {
        "lea_ori": request.envelope.ori,
        "booking_tcn": request.envelope.tcr,
        "booking_number": request.booking_number,
        "fin": request.iar.fin,
        "nam": request.nam,
    }
    for name, value in expected.items():
        if getattr(detainer, name) != value:
            problems.append(f"{name} {getattr(detainer, name)!r}, expected {value!r}")
    if detainer.level != level:
        problems.append(f"level {common.OffenseLevel.Name(detainer.level)}, expected {level}")
    if detainer.basis != basis:
        problems.append(
            f"basis {common.DetainerBasis.Name(detainer.basis)}, "
            f"expected {common.DetainerBasis.Name(basis)}"
        )
    if not detainer.detainer_id or len(detainer.field_office) != 9:
        problems.append(f"id {detainer.detainer_id!r} and office {detainer.field_office!r}")
    if not detainer.notify_before_release:
        problems.append("notify_before_release is false")
    if not 1 <= detainer.max_hold_hours <= 48:
        problems.append(f"max_hold_hours {detainer.max_hold_hours} (the I-247 says 48 at most)")
    if problems:
        raise CaseFailed("the I-247: " + "; ".join(problems))


async def _issued(probe: Probe) -> tuple[ice.IarCopy, common.I247Detainer]:
    """A Level 1 detainer for a fresh booking in `CA`."""
    request = iar_copy()
    return request, await _detainer_for(probe, request)


def _release(detainer: common.I247Detainer) -> ice.ReleaseNotice:
    """The LEA's notice that the subject is released now."""
    return ice.ReleaseNotice(
        envelope=envelope("RELEASE", tcr=detainer.booking_tcn, ori=detainer.lea_ori),
        detainer_id=detainer.detainer_id,
    )


async def _record(probe: Probe, detainer_id: str) -> ice.DetainerRecord:
    record: ice.DetainerRecord = await probe.call(
        "GetDetainer", ice.GetDetainerRequest(detainer_id=detainer_id)
    )
    return record


@case(ICE, "RegisterFieldOffice returns the office, its area and its beds")
async def register(probe: Probe) -> None:
    """A new office with two facilities comes back with its ORI, states, facilities and their
    beds summed as its capacity."""
    ori = GUAM_OFFICE
    facilities = [
        ice.Facility(facility_id=f"{ori}-A", name="Hagatna", beds=3),
        ice.Facility(facility_id=f"{ori}-B", name="Tamuning", beds=4),
    ]
    office = await probe.call(
        "RegisterFieldOffice",
        ice.FieldOffice(ori=ori, name="Guam", states=["GU"], facilities=facilities, atd_slots=2),
    )
    got = (office.ori, list(office.states), office.bed_capacity, office.atd_slots)
    if got != (ori, ["GU"], 7, 2):
        raise CaseFailed(f"expected ({ori!r}, ['GU'], 7 beds, 2 ATD slots), got {got}")
    if sorted(f.facility_id for f in office.facilities) != [f"{ori}-A", f"{ori}-B"]:
        raise CaseFailed(f"expected both facilities back, got {list(office.facilities)}")


@case(ICE, "A removable subject charged at Level 1 gets an I-247 detainer through the SIB")
async def level_1_detainer(probe: Probe) -> None:
    """MOA V.C: the copy is acknowledged; the SIB's DeliverDetainer gets an I-247 for the
    booking's LEA and TCN, Level 1 on basis LEVEL_1."""
    request, detainer = await _issued(probe)
    _check_detainer(detainer, request, common.OFFENSE_LEVEL_1, common.DETAINER_BASIS_LEVEL_1)


@case(ICE, "GetDetainer returns an issued detainer in state detainer_issued")
async def get_detainer(probe: Probe) -> None:
    """The detainer read back is the one the SIB got, in state detainer_issued, with its first
    case step."""
    _, detainer = await _issued(probe)
    record = await _record(probe, detainer.detainer_id)
    if record.detainer != detainer or record.state != "detainer_issued":
        raise CaseFailed(f"expected the issued detainer in detainer_issued, got {record}")
    if [step.to_state for step in record.history][:1] != ["detainer_issued"]:
        raise CaseFailed(f"the case history must start at detainer_issued: {record.history}")


@case(ICE, "A prior Level 1 conviction leads to a detainer on that basis")
async def prior_level_1(probe: Probe) -> None:
    """MOA V: removable, charged at Level 3 now, convicted of a Level 1 offense before: an I-247
    at Level 1 on basis PRIOR_LEVEL_1."""
    request = iar_copy(
        current_charge_level=common.OFFENSE_LEVEL_3, prior_conviction_level=common.OFFENSE_LEVEL_1
    )
    detainer = await _detainer_for(probe, request)
    _check_detainer(detainer, request, common.OFFENSE_LEVEL_1, common.DETAINER_BASIS_PRIOR_LEVEL_1)


@case(ICE, "A subject who is not removable gets no detainer, even at Level 1")
async def not_removable(probe: Probe) -> None:
    """A naturalized citizen charged with a Level 1 offense: acknowledged, no I-247."""
    request = iar_copy(
        status=common.IMMIGRATION_STATUS_NATURALIZED_CITIZEN,
        removable=False,
        removal_ground="",
        priority=0,
    )
    await probe.deliver("DeliverIar", request)
    await probe.expect_none(
        SIB, "DeliverDetainer", for_booking(request.envelope.tcr), what="an I-247"
    )


@case(ICE, "Levels 2 and 3 are at the field office's discretion, and a detainer says so")
async def discretion(probe: Probe) -> None:
    """MOA III.B.iii: removable at Level 2 or 3 only, the office may detain or decline; a
    detainer it issues is at that level on basis DISCRETION, never LEVEL_1."""
    for level in (common.OFFENSE_LEVEL_2, common.OFFENSE_LEVEL_3):
        request = iar_copy(current_charge_level=level, priority=int(level))
        await probe.deliver("DeliverIar", request)
        for received in await probe.count(
            SIB, "DeliverDetainer", for_booking(request.envelope.tcr)
        ):
            detainer: common.I247Detainer = received.message.detainer
            _check_detainer(detainer, request, level, common.DETAINER_BASIS_DISCRETION)


@case(ICE, "An IAR copy no office covers is refused, sends nothing, and is not remembered")
async def uncovered(probe: Probe) -> None:
    """FAILED_PRECONDITION while no office covers the LEA's state, and no I-247; once an office
    covers it, the same message is processed (not a duplicate) by that office."""
    await _spare_office(probe, "ZZ")
    request = iar_copy(lea=f"{SPARE_STATE}0010000")
    booking = for_booking(request.envelope.tcr)
    await probe.refused_with("DeliverIar", request, FAILED)
    await probe.expect_none(SIB, "DeliverDetainer", booking, what="an I-247")
    await _spare_office(probe, SPARE_STATE)
    try:
        detainer = await _detainer_for(probe, request)
    finally:
        await _spare_office(probe, "ZZ")
    _check_detainer(detainer, request, common.OFFENSE_LEVEL_1, common.DETAINER_BASIS_LEVEL_1)
    if detainer.field_office != SPARE_OFFICE:
        raise CaseFailed(f"expected {SPARE_OFFICE} to decide, got {detainer.field_office!r}")


async def _spare_office(probe: Probe, state: str) -> None:
    await probe.call(
        "RegisterFieldOffice",
        ice.FieldOffice(ori=SPARE_OFFICE, name="Spare", states=[state], bed_capacity=1),
    )


@case(ICE, "A repeated IAR copy message id is acknowledged as a duplicate and decided once")
async def iar_twice(probe: Probe) -> None:
    """The same copy delivered twice gets `duplicate` the second time; the SIB gets one I-247."""
    request = iar_copy()
    await probe.deliver_twice("DeliverIar", request)
    booking = for_booking(request.envelope.tcr)
    await probe.expect(SIB, "DeliverDetainer", booking, what="I-247")
    detainers = await probe.count(SIB, "DeliverDetainer", booking)
    if len(detainers) != 1:
        raise CaseFailed(f"one IAR copy, {len(detainers)} detainers: it was decided twice")


@case(ICE, "Another IAR copy of a decided booking is ALREADY_EXISTS")
async def second_copy(probe: Probe) -> None:
    """The booking already has a decision: a copy under another message id is refused, and no
    second I-247 goes out."""
    request, _ = await _issued(probe)
    another = copy.deepcopy(request)
    another.envelope.message_id = str(uuid.uuid4())
    another.envelope.tcn = new_tcn("COPY")
    await probe.refused_with("DeliverIar", another, EXISTS)
    detainers = await probe.count(SIB, "DeliverDetainer", for_booking(request.envelope.tcr))
    if len(detainers) != 1:
        raise CaseFailed(f"one decision, {len(detainers)} detainers")


@case(ICE, "A later booking of a person with an open case lodges the same detainer again")
async def one_person_one_case(probe: Probe) -> None:
    """One person (FIN), one open case: another booking's IAR copy for the same FIN at another
    LEA opens no second case; the same detainer goes to that LEA for the new booking, and the
    case lists both bookings."""
    request, detainer = await _issued(probe)
    later = iar_copy(lea=f"{CA[:2]}0370000", fin=request.iar.fin)
    moved = await _detainer_for(probe, later)
    if moved.detainer_id != detainer.detainer_id or moved.lea_ori != later.envelope.ori:
        raise CaseFailed(
            f"expected detainer {detainer.detainer_id} lodged again with {later.envelope.ori}, "
            f"got {moved.detainer_id} for {moved.lea_ori}"
        )
    record = await _record(probe, detainer.detainer_id)
    booked = [(b.booking_tcn, b.effect) for b in record.bookings]
    if booked != [(request.envelope.tcr, "opened"), (later.envelope.tcr, "detainer moved")]:
        raise CaseFailed(f"the case lists bookings {booked}")


@case(ICE, "NotifyRelease is acknowledged and starts the 48-hour hold")
async def release(probe: Probe) -> None:
    """The LEA's release notice moves the case to release_noticed; the hold ends 48 hours after
    the release, weekends and holidays excluded (so no sooner, and within a week)."""
    _, detainer = await _issued(probe)
    notice = _release(detainer)
    await probe.deliver("NotifyRelease", notice)
    record = await _record(probe, detainer.detainer_id)
    if "release_noticed" not in [step.to_state for step in record.history]:
        raise CaseFailed(f"no release_noticed step in the case: {record.state} {record.history}")
    hold = record.hold_until.ToDatetime() - record.release_at.ToDatetime()
    if not HOLD <= hold <= LONGEST_HOLD:
        raise CaseFailed(f"the hold runs {hold} after the release; expected 48 business hours")


@case(ICE, "A repeated release notice is FAILED_PRECONDITION, a retried one a duplicate")
async def release_twice(probe: Probe) -> None:
    """The same notice again is acknowledged as a duplicate; a second notice (another message
    id) finds the case past the detainer stage: FAILED_PRECONDITION."""
    _, detainer = await _issued(probe)
    notice = _release(detainer)
    await probe.deliver_twice("NotifyRelease", notice)
    await probe.refused_with("NotifyRelease", _release(detainer), FAILED)


@case(ICE, "AdvanceCase moves a released subject into custody")
async def advance(probe: Probe) -> None:
    """After the release notice, an officer takes the subject into custody: the case comes back
    in_custody with that step, and GetDetainer agrees."""
    _, detainer = await _issued(probe)
    await probe.call("NotifyRelease", _release(detainer))
    moved = await probe.call(
        "AdvanceCase",
        ice.AdvanceCaseRequest(
            detainer_id=detainer.detainer_id, to_state="in_custody", reason="picked up"
        ),
    )
    if moved.state != "in_custody" or moved.history[-1].to_state != "in_custody":
        raise CaseFailed(f"expected the case in_custody, got {moved.state} {moved.history}")
    if (await _record(probe, detainer.detainer_id)).state != "in_custody":
        raise CaseFailed("GetDetainer does not show the case in_custody")


@case(ICE, "AdvanceCase refuses a transition the case may not take")
async def advance_forbidden(probe: Probe) -> None:
    """An issued detainer cannot become removed: FAILED_PRECONDITION, and the case stays."""
    _, detainer = await _issued(probe)
    await probe.refused_with(
        "AdvanceCase",
        ice.AdvanceCaseRequest(detainer_id=detainer.detainer_id, to_state="removed"),
        FAILED,
    )
    if (await _record(probe, detainer.detainer_id)).state != "detainer_issued":
        raise CaseFailed("a refused step moved the case")


refusal_cases(ICE, envelope_refusals() + content_refusals())
