"""ICE field office domain: areas of responsibility, decisions on IARs, I-247 detainers."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2 as pb
from scfed.ident.v1 import ident_pb2
from scfed.sib.v1 import sib_pb2

from ..federation import Agency
from ..runtime import message_routes
from ..runtime.clock import Clock
from ..runtime.delivery import Outbox
from ..runtime.envelope import MessageType, make_envelope
from ..runtime.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    shown,
)
from ..runtime.formats import STATE_CODE_PATTERN
from ..runtime.validation import check_ori
from . import cases
from .custody import CustodyPolicy
from .decision import Decision, DiscretionPolicy, decide
from .holidays import add_business_hours
from .models import (
    BookingEffect,
    CaseBookingRecord,
    CaseState,
    CaseStepRecord,
    DecisionAction,
    DecisionRecord,
    DetainerRecord,
    FacilityRecord,
    FieldOfficeRecord,
    ReferralRecord,
    ReferralStatus,
)

_LEVEL_ENUM = {
    1: common_pb2.OFFENSE_LEVEL_1,
    2: common_pb2.OFFENSE_LEVEL_2,
    3: common_pb2.OFFENSE_LEVEL_3,
}


# Grounds under which no relief is available: the case goes to a (stipulated or reinstated)
# final order without a hearing.
NO_RELIEF_GROUNDS = frozenset({"FINAL-ORDER", "REINSTATEMENT"})
# A release notice further than this from now is a mistake, not a plan.
MAX_RELEASE_OFFSET = timedelta(days=5 * 366)
# What a re-entry after removal is referred for (Strategic Plan, goal 2).
REENTRY_STATUTE = "8 U.S.C. 1326"
# IDENT's encounter type of a removal (LESC reads the same).
REMOVAL_ENCOUNTER = "REMOVAL"
FACILITY_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")
USAO_ID = FACILITY_ID


@dataclass(frozen=True)
class CaseTiming:
    """Agency time each step of a removal case takes."""

    pickup: timedelta = timedelta(hours=4)
    charging: timedelta = timedelta(days=1)
    hearing: timedelta = timedelta(days=30)
    travel_document: timedelta = timedelta(days=14)
    removal: timedelta = timedelta(days=7)
    bed_retry: timedelta = timedelta(hours=1)


@dataclass
class FieldOperations:
    """The field offices of the federation, their decisions, and the cases that follow."""

    clock: Clock
    outbox: Outbox
    policy: DiscretionPolicy
    max_hold_hours: int = 48
    timing: CaseTiming = field(default_factory=CaseTiming)
    custody: CustodyPolicy = field(default_factory=CustodyPolicy)

    async def register_office(
        self, session: AsyncSession, office: pb.FieldOffice
    ) -> pb.FieldOffice:
        """Creates or replaces a field office."""
        check_ori(office.ori)
        if not office.states:
            raise InvalidArgument("a field office needs at least one state in its area")
        if office.us_attorney_office and not USAO_ID.fullmatch(office.us_attorney_office):
            raise InvalidArgument(
                "us_attorney_office must be 1 to 40 letters, digits, '.', '_' or '-', "
                f"got {shown(office.us_attorney_office)}"
            )
        for state in office.states:
            if not STATE_CODE_PATTERN.fullmatch(state):
                raise InvalidArgument(f"state codes are two letters A-Z, got {shown(state)}")
        listed = list(office.facilities) or [
            pb.Facility(facility_id=f"{office.ori}-MAIN", name="beds", beds=office.bed_capacity)
        ]
        ids = [f.facility_id for f in listed]
        for facility in listed:
            if not FACILITY_ID.fullmatch(facility.facility_id):
                raise InvalidArgument(
                    "facility_id must be 1 to 40 letters, digits, '.', '_' or '-', "
                    f"got {shown(facility.facility_id)}"
                )
        if len(set(ids)) != len(ids):
            raise InvalidArgument(f"a facility is listed twice in {office.ori}: {sorted(ids)}")
        row = await session.get(FieldOfficeRecord, office.ori, with_for_update=True)
        if row is None:
            row = FieldOfficeRecord(ori=office.ori, name=office.ori, states=[], bed_capacity=0)
            session.add(row)
        existing = {
            f.facility_id: f
            for f in await session.scalars(
                select(FacilityRecord).where(FacilityRecord.facility_id.in_(ids))
            )
        }
        for facility_id, record in existing.items():
            if record.field_office != office.ori:
                raise AlreadyExists(
                    f"facility {facility_id} belongs to field office {record.field_office}"
                )
        for old in await session.scalars(
            select(FacilityRecord).where(FacilityRecord.field_office == office.ori)
        ):
            if old.facility_id not in ids:
                if await self._occupied_beds(session, old.facility_id):
                    raise FailedPrecondition(
                        f"facility {old.facility_id} still holds people in custody"
                    )
                await session.delete(old)
        for facility in listed:
            found = existing.get(facility.facility_id)
            if found is None:
                found = FacilityRecord(facility_id=facility.facility_id, field_office=office.ori)
                session.add(found)
            found.name = facility.name or facility.facility_id
            found.beds = facility.beds
        row.name = office.name or office.ori
        row.states = sorted(set(office.states))
        row.bed_capacity = sum(f.beds for f in listed)
        row.atd_slots = office.atd_slots
        row.us_attorney_office = office.us_attorney_office or None
        return pb.FieldOffice(
            ori=office.ori,
            name=row.name,
            states=row.states,
            bed_capacity=row.bed_capacity,
            facilities=listed,
            atd_slots=row.atd_slots,
            us_attorney_office=us_attorney_office(row),
        )

    async def office_for(self, session: AsyncSession, lea_ori: str) -> FieldOfficeRecord:
        """The field office whose area covers the LEA's state."""
        state = lea_ori[:2]
        for office in await session.scalars(
            select(FieldOfficeRecord).order_by(FieldOfficeRecord.ori)
        ):
            if state in office.states:
                return office
        raise FailedPrecondition(f"no field office covers state {state} (LEA {lea_ori})")

    async def take_iar(self, session: AsyncSession, copy: pb.IarCopy) -> str:
        """Decides on the IAR copy; a detainer goes to the LEA through its SIB. A person with an
        open case keeps that one case: the booking is recorded on it (see `_record_booking`)."""
        if not copy.HasField("iar"):
            raise InvalidArgument("iar is required")
        tcn = copy.envelope.tcr or copy.envelope.tcn
        lea_ori = copy.envelope.ori
        if await session.get(DecisionRecord, tcn) is not None:
            raise AlreadyExists(f"booking {tcn} already has a field office decision")
        office = await self.office_for(session, lea_ori)
        decision = decide(copy.iar, self.policy)
        now = self.clock.now()
        removed_at = await self._removed_at(session, copy.iar)
        reentry = removed_at is not None
        session.add(
            DecisionRecord(
                tcn=tcn,
                case_id=copy.iar.case_id,
                field_office=office.ori,
                action=decision.action,
                level=decision.level,
                basis=common_pb2.DetainerBasis.Name(decision.basis).removeprefix("DETAINER_BASIS_"),
                fin=copy.iar.fin,
                reentry_after_removal=reentry,
                decided_at=now,
                removable=copy.iar.removable,
                current_charge_level=_level_number(copy.iar.current_charge_level),
                prior_conviction_level=_level_number(copy.iar.prior_conviction_level),
            )
        )
        open_case = await self.open_case(session, copy.iar.fin)
        flag = ""
        referral: ReferralRecord | None = None
        if removed_at is not None:
            referral = await self._refer(
                session,
                fin=copy.iar.fin,
                office=office,
                tcn=tcn,
                removed_at=removed_at,
                detainer_id=open_case.detainer_id if open_case is not None else "",
                at=now,
            )
            if referral is not None:
                flag = (
                    f"; re-entry after removal: referred for prosecution ({REENTRY_STATUTE}) "
                    f"to {referral.us_attorney_office} as {referral.referral_id}"
                )
        if open_case is not None:
            effect = await self._record_booking(session, open_case, copy, office, decision, now)
            return f"{effect} on the open case {open_case.detainer_id}{flag}"
        if decision.action != DecisionAction.DETAINER:
            return f"{decision.action} level {decision.level} by {office.ori}{flag}"
        issued_at = Timestamp()
        issued_at.FromDatetime(now)
        detainer = common_pb2.I247Detainer(
            detainer_id="I247-" + uuid.uuid4().hex[:12].upper(),
            field_office=office.ori,
            lea_ori=lea_ori,
            booking_tcn=tcn,
            booking_number=copy.booking_number,
            fin=copy.iar.fin,
            a_number=copy.iar.a_number,
            fbi_number=copy.iar.fbi_number,
            nam=copy.nam,
            level=_LEVEL_ENUM[decision.level],
            basis=decision.basis,
            issued_at=issued_at,
            notify_before_release=True,
            max_hold_hours=self.max_hold_hours,
        )
        row = DetainerRecord(
            detainer_id=detainer.detainer_id,
            tcn=tcn,
            field_office=office.ori,
            lea_ori=lea_ori,
            fin=copy.iar.fin,
            level=decision.level,
            removal_ground=copy.iar.removal_ground,
            state=CaseState.DETAINER_ISSUED,
            issued_at=now,
            reentry_after_removal=reentry,
            body=detainer.SerializeToString(),
            current_charge_level=_level_number(copy.iar.current_charge_level),
            prior_conviction_level=_level_number(copy.iar.prior_conviction_level),
            flight_risk=self.custody.flight_risk(
                copy.iar.removal_ground, reentry_after_removal=reentry
            ),
        )
        session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:
            # Another delivery opened this person's case in the same moment (the unique index
            # of open cases per FIN): sent again, this booking is recorded on that case.
            raise Aborted(
                f"FIN {copy.iar.fin} had a case opened concurrently; deliver {tcn} again"
            ) from exc
        if referral is not None:
            referral.detainer_id = row.detainer_id
        self._step(
            session, row, None, CaseState.DETAINER_ISSUED, now, decision_reason(decision) + flag
        )
        self._book_on(session, row, copy, decision, now, effect=BookingEffect.OPENED)
        self._lodge(session, row, detainer, decision.level)
        return f"detainer {detainer.detainer_id} level {decision.level} by {office.ori}{flag}"

    async def open_case(self, session: AsyncSession, fin: str) -> DetainerRecord | None:
        """The person's open case (at most one: a unique index holds it), locked."""
        if not fin:
            return None
        found: DetainerRecord | None = await session.scalar(
            select(DetainerRecord)
            .where(DetainerRecord.fin == fin, DetainerRecord.state.not_in(cases.TERMINAL))
            .with_for_update()
        )
        return found

    async def _removed_at(self, session: AsyncSession, iar: common_pb2.Iar) -> datetime | None:
        """When the person was last removed: the IAR's removal (IDENT's encounter), else one
        of this service's own cases (an IAR from a LESC that does not report it)."""
        if iar.HasField("removed_at"):
            return iar.removed_at.ToDatetime(tzinfo=UTC)
        if not iar.fin:
            return None
        ended = await session.scalar(
            select(func.max(DetainerRecord.custody_ended_at)).where(
                DetainerRecord.fin == iar.fin, DetainerRecord.state == CaseState.REMOVED
            )
        )
        if ended is not None:
            return ended if ended.tzinfo is not None else ended.replace(tzinfo=UTC)
        if iar.reentry_after_removal:
            raise InvalidArgument("iar.reentry_after_removal is set without iar.removed_at")
        return None

    async def _refer(
        self,
        session: AsyncSession,
        *,
        fin: str,
        office: FieldOfficeRecord,
        tcn: str,
        removed_at: datetime,
        detainer_id: str,
        at: datetime,
    ) -> ReferralRecord | None:
        """Refers the re-entry to the office's U.S. Attorney, once per person and removal;
        None when that removal's re-entry was referred already."""
        done = await session.scalar(
            select(ReferralRecord.referral_id).where(
                ReferralRecord.fin == fin, ReferralRecord.removed_at == removed_at
            )
        )
        if done is not None:
            return None
        row = ReferralRecord(
            referral_id="USAO-REF-" + uuid.uuid4().hex[:12].upper(),
            fin=fin,
            field_office=office.ori,
            us_attorney_office=us_attorney_office(office),
            booking_tcn=tcn,
            detainer_id=detainer_id,
            statute=REENTRY_STATUTE,
            status=ReferralStatus.REFERRED,
            referred_at=at,
            removed_at=removed_at,
        )
        session.add(row)
        return row

    async def _record_booking(
        self,
        session: AsyncSession,
        row: DetainerRecord,
        copy: pb.IarCopy,
        office: FieldOfficeRecord,
        decision: Decision,
        now: datetime,
    ) -> str:
        """A later booking of a person with an open case: the new charges (and the criminal
        history) join the case; before ICE has the person (detainer issued, release noticed)
        the detainer is lodged again with the booking's LEA, the field office covering it
        taking the case over; after, the booking is recorded and the case goes on."""
        current = _level_number(copy.iar.current_charge_level)
        prior = _level_number(copy.iar.prior_conviction_level)
        row.current_charge_level = _most_serious(row.current_charge_level, current)
        row.prior_conviction_level = _most_serious(row.prior_conviction_level, prior)
        if row.state not in (CaseState.DETAINER_ISSUED, CaseState.RELEASE_NOTICED):
            self._book_on(session, row, copy, decision, now, effect=BookingEffect.RECORDED)
            return "recorded"
        moved_from = row.lea_ori
        if row.state == CaseState.RELEASE_NOTICED:
            self._move(
                session,
                row,
                CaseState.DETAINER_ISSUED,
                now,
                f"booked again by {copy.envelope.ori} before pickup: detainer lodged there",
            )
            row.release_at = None
            row.hold_until = None
        row.lea_ori = copy.envelope.ori
        row.field_office = office.ori
        row.level = _most_serious(row.level, decision.level)
        if copy.iar.removal_ground:
            row.removal_ground = copy.iar.removal_ground
        row.flight_risk = self.custody.flight_risk(
            row.removal_ground, reentry_after_removal=row.reentry_after_removal
        )
        detainer = common_pb2.I247Detainer.FromString(row.body)
        detainer.field_office = office.ori
        detainer.lea_ori = copy.envelope.ori
        detainer.booking_tcn = copy.envelope.tcr or copy.envelope.tcn
        detainer.booking_number = copy.booking_number
        detainer.level = _LEVEL_ENUM[row.level]
        row.body = detainer.SerializeToString()
        self._book_on(session, row, copy, decision, now, effect=BookingEffect.DETAINER_MOVED)
        self._lodge(session, row, detainer, row.level)
        return f"detainer moved from {moved_from} to {copy.envelope.ori}"

    def _book_on(
        self,
        session: AsyncSession,
        row: DetainerRecord,
        copy: pb.IarCopy,
        decision: Decision,
        at: datetime,
        *,
        effect: BookingEffect,
    ) -> None:
        session.add(
            CaseBookingRecord(
                detainer_id=row.detainer_id,
                tcn=copy.envelope.tcr or copy.envelope.tcn,
                lea_ori=copy.envelope.ori,
                booking_number=copy.booking_number[:40],
                at=at,
                current_charge_level=_level_number(copy.iar.current_charge_level),
                effect=effect,
            )
        )

    def _lodge(
        self,
        session: AsyncSession,
        row: DetainerRecord,
        detainer: common_pb2.I247Detainer,
        level: int,
    ) -> None:
        """Sends the I-247 to the LEA holding the subject, through its SIB."""
        message = sib_pb2.DetainerMessage(
            envelope=make_envelope(
                clock=self.clock,
                sender=Agency.ICE_FIELD,
                tot=MessageType.I247,
                tcr=detainer.booking_tcn,
                ori=row.field_office,
                dai=detainer.lea_ori,
                pry=1 if level == 1 else 5,
                tcn_prefix="ICE",
            ),
            detainer=detainer,
        )
        self.outbox.add(session, route=message_routes.SIB_DELIVER_DETAINER, message=message)

    def _tell_ident_of_removal(
        self, session: AsyncSession, row: DetainerRecord, at: datetime
    ) -> None:
        """IDENT records the removal as an encounter, so a later booking shows the re-entry."""
        if not row.fin:
            return
        encountered_at = Timestamp()
        encountered_at.FromDatetime(at)
        booking_tcn = common_pb2.I247Detainer.FromString(row.body).booking_tcn or row.tcn
        notice = ident_pb2.EncounterNotice(
            envelope=make_envelope(
                clock=self.clock,
                sender=Agency.ICE_FIELD,
                tot=MessageType.ENCOUNTER,
                tcr=booking_tcn,
                ori=row.field_office,
                dai=Agency.IDENT.ori,
                tcn_prefix="ICE",
            ),
            fin=row.fin,
            encounter=common_pb2.Encounter(
                encounter_id=f"{REMOVAL_ENCOUNTER}-{row.detainer_id}",
                encounter_type=REMOVAL_ENCOUNTER,
                encountered_at=encountered_at,
                status=common_pb2.IMMIGRATION_STATUS_PREVIOUSLY_REMOVED,
            ),
        )
        self.outbox.add(session, route=message_routes.IDENT_RECORD_ENCOUNTER, message=notice)

    async def notify_release(self, session: AsyncSession, notice: pb.ReleaseNotice) -> str:
        """Records the LEA's notice that a subject under detainer will be released."""
        if not notice.detainer_id:
            raise InvalidArgument("detainer_id is required")
        row = await session.get(DetainerRecord, notice.detainer_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no detainer {shown(notice.detainer_id)}")
        if row.lea_ori != notice.envelope.ori:
            raise InvalidArgument(
                f"detainer {row.detainer_id} was lodged with {row.lea_ori}, "
                f"not {notice.envelope.ori}"
            )
        now = self.clock.now()
        release_at = now
        if notice.HasField("release_at"):
            seconds = notice.release_at.seconds
            if abs(seconds - now.timestamp()) > MAX_RELEASE_OFFSET.total_seconds():
                raise InvalidArgument(
                    f"release_at must be within 5 years of now, got {seconds} s after the epoch"
                )
            release_at = notice.release_at.ToDatetime(tzinfo=UTC)
        hold_until = add_business_hours(release_at, self.max_hold_hours)
        self._move(
            session,
            row,
            CaseState.RELEASE_NOTICED,
            self.clock.now(),
            f"release at {release_at.isoformat()}; hold until {hold_until.isoformat()}",
        )
        row.release_at = release_at
        row.hold_until = hold_until
        row.next_action_at = max(release_at, self.clock.now()) + self.timing.pickup
        return f"release noticed for {row.detainer_id}"

    async def detainer(self, session: AsyncSession, detainer_id: str) -> pb.DetainerRecord:
        """One detainer with its case history."""
        if not detainer_id:
            raise InvalidArgument("detainer_id is required")
        row = await session.get(DetainerRecord, detainer_id)
        if row is None:
            raise NotFound(f"no detainer {shown(detainer_id)}")
        record = pb.DetainerRecord(
            detainer=common_pb2.I247Detainer.FromString(row.body),
            state=row.state,
            reentry_after_removal=row.reentry_after_removal,
            facility_id=row.facility_id,
            flight_risk=row.flight_risk,
        )
        if row.release_at is not None:
            record.release_at.FromDatetime(row.release_at)
        if row.hold_until is not None:
            record.hold_until.FromDatetime(row.hold_until)
        steps = await session.scalars(
            select(CaseStepRecord)
            .where(CaseStepRecord.detainer_id == detainer_id)
            .order_by(CaseStepRecord.id)
        )
        for step in steps:
            item = record.history.add(
                from_state=step.from_state or "", to_state=step.to_state, reason=step.reason
            )
            item.at.FromDatetime(step.at)
        bookings = await session.scalars(
            select(CaseBookingRecord)
            .where(CaseBookingRecord.detainer_id == detainer_id)
            .order_by(CaseBookingRecord.id)
        )
        for booking in bookings:
            entry = record.bookings.add(
                booking_tcn=booking.tcn,
                lea_ori=booking.lea_ori,
                booking_number=booking.booking_number,
                current_charge_level=booking.current_charge_level,
                effect=booking.effect,
            )
            entry.at.FromDatetime(booking.at)
        referral = await session.scalar(
            select(ReferralRecord)
            .where(ReferralRecord.detainer_id == detainer_id)
            .order_by(ReferralRecord.referred_at)
            .limit(1)
        )
        if referral is not None:
            record.referral.CopyFrom(_referral_message(referral))
        return record

    async def referrals(self, session: AsyncSession, *, fin: str = "") -> list[pb.Referral]:
        """Referrals for prosecution, oldest first; one person's when `fin` is given."""
        query = select(ReferralRecord).order_by(
            ReferralRecord.referred_at, ReferralRecord.referral_id
        )
        if fin:
            query = query.where(ReferralRecord.fin == fin)
        return [_referral_message(row) for row in await session.scalars(query)]

    async def referral(self, session: AsyncSession, referral_id: str) -> pb.Referral:
        """One referral for prosecution."""
        row = await session.get(ReferralRecord, referral_id)
        if row is None:
            raise NotFound(f"no referral {shown(referral_id)}")
        return _referral_message(row)

    async def answer_referral(
        self, session: AsyncSession, referral_id: str, status: str, reason: str
    ) -> pb.Referral:
        """The U.S. Attorney's answer to a referral: accepted or declined, once."""
        answers = (ReferralStatus.ACCEPTED, ReferralStatus.DECLINED)
        if status not in answers:
            raise InvalidArgument(f"status must be accepted or declined, got {shown(status)}")
        row = await session.get(ReferralRecord, referral_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no referral {shown(referral_id)}")
        if row.status != ReferralStatus.REFERRED:
            raise FailedPrecondition(f"referral {referral_id} was {row.status} already")
        row.status = ReferralStatus(status)
        row.answered_at = self.clock.now()
        row.reason = reason[:200]
        return _referral_message(row)

    def _step(
        self,
        session: AsyncSession,
        row: DetainerRecord,
        from_state: CaseState | None,
        to_state: CaseState,
        at: datetime,
        reason: str,
    ) -> None:
        session.add(
            CaseStepRecord(
                detainer_id=row.detainer_id,
                from_state=from_state,
                to_state=to_state,
                at=at,
                reason=reason[:200],
            )
        )

    def _move(
        self, session: AsyncSession, row: DetainerRecord, to_state: str, at: datetime, reason: str
    ) -> None:
        """Moves a case on, refusing a transition the state machine does not allow."""
        target = cases.check_transition(row.detainer_id, row.state, to_state)
        self._step(session, row, row.state, target, at, reason)
        row.state = target
        if target == CaseState.IN_CUSTODY:
            row.custody_started_at = at
        elif target in cases.TERMINAL and row.custody_started_at is not None:
            row.custody_ended_at = at  # removed or released: the bed is free again
        if target == CaseState.REMOVED:
            self._tell_ident_of_removal(session, row, at)
        row.next_action_at = None if target in cases.TERMINAL else self._after(target, at)

    def _after(self, state: CaseState, at: datetime) -> datetime | None:
        """When the field office acts next on a case that just entered `state`."""
        t = self.timing
        delays = {
            CaseState.IN_CUSTODY: t.charging,
            CaseState.ATD: t.charging,
            CaseState.IN_PROCEEDINGS: t.hearing,
            CaseState.FINAL_ORDER: t.travel_document,
            CaseState.TRAVEL_DOCUMENT: t.removal,
        }
        delay = delays.get(state)
        return None if delay is None else at + delay

    async def advance(
        self, session: AsyncSession, detainer_id: str, to_state: str, reason: str
    ) -> pb.DetainerRecord:
        """An officer moves a case by hand; illegal transitions are refused."""
        if not detainer_id or not to_state:
            raise InvalidArgument("detainer_id and to_state are required")
        row = await session.get(DetainerRecord, detainer_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no detainer {shown(detainer_id)}")
        self._move(session, row, to_state, self.clock.now(), reason or "by hand")
        await session.flush()
        return await self.detainer(session, detainer_id)

    async def _occupied_beds(self, session: AsyncSession, facility_id: str) -> int:
        """People held in the facility: from custody until removal or release."""
        count = await session.scalar(
            select(func.count()).where(
                DetainerRecord.facility_id == facility_id,
                DetainerRecord.custody_started_at.is_not(None),
                DetainerRecord.custody_ended_at.is_(None),
            )
        )
        return int(count or 0)

    async def progress(self, session: AsyncSession, *, limit: int = 100) -> int:
        """Takes every case whose next step is due (agency time) one step on."""
        now = self.clock.now()
        rows = list(
            await session.scalars(
                select(DetainerRecord)
                .where(DetainerRecord.next_action_at <= now)
                .order_by(DetainerRecord.next_action_at, DetainerRecord.detainer_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            at = row.next_action_at
            assert at is not None
            if row.state == CaseState.RELEASE_NOTICED:
                await self._take_custody(session, row, at)
            elif row.state in (CaseState.IN_CUSTODY, CaseState.ATD):
                if row.removal_ground in NO_RELIEF_GROUNDS:
                    reason = f"stipulated order: no relief available ({row.removal_ground})"
                    self._move(session, row, CaseState.FINAL_ORDER, at, reason)
                else:
                    self._move(
                        session, row, CaseState.IN_PROCEEDINGS, at, "notice to appear; VTC hearing"
                    )
            elif row.state == CaseState.IN_PROCEEDINGS:
                self._move(session, row, CaseState.FINAL_ORDER, at, "order of removal")
            elif row.state == CaseState.FINAL_ORDER:
                self._move(session, row, CaseState.TRAVEL_DOCUMENT, at, "travel document issued")
            elif row.state == CaseState.TRAVEL_DOCUMENT:
                self._move(session, row, CaseState.REMOVED, at, "removed")
            await session.flush()
        return len(rows)

    async def _take_custody(self, session: AsyncSession, row: DetainerRecord, at: datetime) -> None:
        hold_until = row.hold_until or at
        if at > hold_until:
            self._move(session, row, CaseState.LAPSED, hold_until, "hold expired before pickup")
            return
        row.atd_eligible = self.custody.atd_eligible(
            prior_conviction_level=row.prior_conviction_level,
            current_charge_level=row.current_charge_level,
            flight_risk=row.flight_risk,
        )
        office = await session.get(FieldOfficeRecord, row.field_office, with_for_update=True)
        if row.atd_eligible and office is not None:
            supervised = await session.scalar(
                select(func.count()).where(
                    DetainerRecord.field_office == office.ori,
                    DetainerRecord.on_atd.is_(True),
                    DetainerRecord.state.not_in(cases.TERMINAL),
                )
            )
            if int(supervised or 0) < office.atd_slots:
                row.on_atd = True
                self._move(session, row, CaseState.ATD, at, "no conviction, low flight risk: ATD")
                return
        # The office's facilities are locked in a fixed order, so two replicas placing people
        # at once never give the last bed twice.
        facilities = await session.scalars(
            select(FacilityRecord)
            .where(FacilityRecord.field_office == row.field_office)
            .order_by(FacilityRecord.facility_id)
            .with_for_update()
        )
        for facility in facilities:
            if await self._occupied_beds(session, facility.facility_id) < facility.beds:
                row.facility_id = facility.facility_id
                self._move(session, row, CaseState.IN_CUSTODY, at, f"bed at {facility.facility_id}")
                return
        retry = at + self.timing.bed_retry
        if retry > hold_until:
            self._move(session, row, CaseState.LAPSED, hold_until, "no bed before the hold expired")
        else:
            row.next_action_at = retry


def _referral_message(row: ReferralRecord) -> pb.Referral:
    """A referral's record as the contract gives it."""
    message = pb.Referral(
        referral_id=row.referral_id,
        fin=row.fin,
        us_attorney_office=row.us_attorney_office,
        field_office=row.field_office,
        booking_tcn=row.booking_tcn,
        statute=row.statute,
        status=row.status,
        reason=row.reason,
    )
    message.referred_at.FromDatetime(row.referred_at)
    message.removed_at.FromDatetime(row.removed_at)
    if row.answered_at is not None:
        message.answered_at.FromDatetime(row.answered_at)
    return message


def _most_serious(a: int, b: int) -> int:
    """The more serious of two levels 1..3, where 0 is none."""
    return min((x for x in (a, b) if x), default=0)


def us_attorney_office(office: FieldOfficeRecord) -> str:
    """Where the office refers re-entry: its own recipient, else "USAO-" and its first state."""
    return office.us_attorney_office or f"USAO-{office.states[0] if office.states else 'US'}"


def _level_number(value: int) -> int:
    """An IAR offense level as 1..3, or 0 where none applies."""
    return int(value) if value in (1, 2, 3) else 0


def decision_reason(decision: Decision) -> str:
    """The journal and case wording of a decision."""
    basis = common_pb2.DetainerBasis.Name(decision.basis).removeprefix("DETAINER_BASIS_")
    return f"I-247 issued: level {decision.level}, basis {basis}"


async def case_summary(session: AsyncSession) -> dict[str, object]:
    """Removal cases by state, and how many are still open."""
    rows = await session.execute(
        select(DetainerRecord.state, func.count()).group_by(DetainerRecord.state)
    )
    by_state = {state: int(n) for state, n in rows.all()}
    return {
        "cases": sum(by_state.values()),
        "open": sum(n for state, n in by_state.items() if state not in cases.TERMINAL),
        "by_state": by_state,
    }
