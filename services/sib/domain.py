"""SIB domain: state records, CAR or CPI per booking, responses relayed to the LEAs.

The SIB never determines immigration status or removability: it forwards what CJIS and ICE
send, and relays it to the LEA unless the state lacks the technical capability.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.sib.v1 import sib_pb2 as pb

from ..biometrics.engine import BiometricEngine, load_gallery
from ..biometrics.enrollment import StagedEnrollments
from ..biometrics.template import TenprintTemplate, tenprint_from_proto
from ..federation import Agency
from ..runtime import audit, journal, message_routes
from ..runtime.clock import Clock
from ..runtime.delivery import Outbox
from ..runtime.envelope import MessageType, make_envelope, new_tcn
from ..runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, shown
from ..runtime.formats import STATE_CODE_PATTERN, iso_day
from ..runtime.models import Direction, OutboxMessage, Outcome
from ..runtime.proto_json import from_json, list_from_json, list_to_json, to_json
from ..runtime.validation import check_charges, check_date, check_descriptors, check_ori
from .models import (
    AgencyRecord,
    Booking,
    BookingStatus,
    JurisdictionSuspension,
    ResponseRecord,
    StateRecord,
    StateSubject,
)

MOA_NOTICE_PERIOD = timedelta(days=30)


def moa_in_effect(state: StateRecord, now: datetime) -> bool:
    """True while the state's MOA is signed, not suspended, and not yet terminated."""
    if state.moa_status == pb.MOA_STATUS_ACTIVE:
        return True
    if state.moa_status == pb.MOA_STATUS_TERMINATION_NOTICED:
        return state.termination_effective_at is None or now < state.termination_effective_at
    return False


def attest_interoperability(
    state: StateRecord,
    agency: AgencyRecord,
    suspension: JurisdictionSuspension | None,
    *,
    doa: str,
    now: datetime,
) -> cjis_iafis_pb2.Interoperability:
    """What a booking's CAR or CPI attests, each gate its own fact: the state's MOA in effect
    now; the jurisdiction activated (its flag, and its rollout day on or before the DOA) and
    not suspended."""
    activated_on = agency.activated_on or ""
    activated = agency.activated and (not activated_on or doa >= activated_on)
    return cjis_iafis_pb2.Interoperability(
        moa_active=moa_in_effect(state, now),
        jurisdiction_activated=activated and suspension is None,
        jurisdiction_activated_on=activated_on,
        jurisdiction_suspended=suspension is not None,
    )


def closed_gate_words(interop: cjis_iafis_pb2.Interoperability, state: str) -> str:
    """The booking journal's words for the gates that are closed ("" when both are open)."""
    words = []
    if not interop.moa_active:
        words.append(f"MOA not in effect for {state}")
    if not interop.jurisdiction_activated and not interop.jurisdiction_suspended:
        day = interop.jurisdiction_activated_on
        words.append(
            f"jurisdiction not activated until {iso_day(day)}"
            if day
            else "jurisdiction not activated"
        )
    return "; ".join(words)


def _check_share(share: float) -> None:
    if not 0.0 <= share <= 1.0:
        raise InvalidArgument(f"criminal_alien_share must be between 0 and 1, got {share}")


# The longest reason a suspension notice may give.
MAX_SUSPENSION_REASON = 500


def party_name(by: int) -> str:
    """ "SIB" or "ICE" for a SuspendingParty number."""
    return pb.SuspendingParty.Name(pb.SuspendingParty.ValueType(by)).removeprefix(
        "SUSPENDING_PARTY_"
    )


def describe_suspension(row: JurisdictionSuspension) -> str:
    """The words a booking's journal gives for a suspended jurisdiction."""
    return f"jurisdiction suspended by {party_name(row.suspended_by)}: {row.reason}"


def _audit_access(
    session: AsyncSession,
    who: str,
    rpc: str,
    outcome: audit.AuditOutcome,
    row: JurisdictionSuspension,
) -> None:
    audit.record(
        session,
        who=who,
        rpc=rpc,
        tcn="",
        purpose=audit.Purpose.ADMINISTRATIVE,
        outcome=outcome,
        detail=f"{row.ori}: {describe_suspension(row)}",
    )


def access_to_proto(ori: str, row: JurisdictionSuspension | None) -> pb.JurisdictionAccess:
    """A jurisdiction's access as the RPCs answer it."""
    if row is None:
        return pb.JurisdictionAccess(ori=ori, suspended=False)
    access = pb.JurisdictionAccess(
        ori=ori,
        suspended=True,
        suspended_by=pb.SuspendingParty.ValueType(row.suspended_by),
        reason=row.reason,
    )
    access.suspended_at.FromDatetime(row.suspended_at)
    return access


def state_to_proto(row: StateRecord) -> pb.State:
    """The wire form of a state."""
    state = pb.State(
        code=row.code,
        name=row.name,
        nff=row.nff,
        relay_capable=row.relay_capable,
        moa_status=row.moa_status,  # type: ignore[arg-type]
        sib_ori=row.sib_ori,
    )
    if row.termination_effective_at is not None:
        state.termination_effective_at.FromDatetime(row.termination_effective_at)
    return state


@dataclass(frozen=True)
class BookingSubmission:
    """A booking as an LEA submits it, in the federation's own messages."""

    ori: str
    booking_number: str
    doa: str
    descriptors: common_pb2.Descriptors
    tenprint: common_pb2.Tenprint
    charges: Sequence[common_pb2.Charge]
    # How the booking came, when not as JSON (an EBTS file: its TCN, the records not read),
    # for the journal; not part of the booking's content.
    received_as: str = ""

    def prints_sha256(self) -> str:
        """A digest of the prints, so a resubmission can be held to the same ones."""
        wire = self.tenprint.SerializeToString(deterministic=True)
        return hashlib.sha256(wire).hexdigest()

    def same_as(self, booking: Booking) -> bool:
        """True when `booking` was accepted with exactly this content."""
        return (
            booking.doa == self.doa
            and booking.prints_sha256 == self.prints_sha256()
            and from_json(booking.descriptors, common_pb2.Descriptors) == self.descriptors
            and list_from_json(booking.charges, common_pb2.Charge) == list(self.charges)
        )


@dataclass(frozen=True)
class BookingReceipt:
    """What the SIB answers to a submitted booking."""

    tcn: str
    transaction: MessageType
    status: BookingStatus
    sid: str
    duplicate: bool = False


@dataclass
class StateBureau:
    """The SIB: one state file per state, bookings, and the LEAs' inboxes."""

    clock: Clock
    outbox: Outbox
    threshold: float
    engines: dict[str, BiometricEngine] = field(default_factory=dict)
    enrollments: StagedEnrollments = field(default_factory=StagedEnrollments)

    def _engine(self, state: str) -> BiometricEngine:
        engine = self.engines.get(state)
        if engine is None:
            engine = BiometricEngine(threshold=self.threshold)
            self.engines[state] = engine
        return engine

    async def load(self, session: AsyncSession) -> int:
        """Rebuilds each state's tenprint file from the state records."""
        rows = await session.execute(
            select(StateSubject.state, StateSubject.sid, StateSubject.tenprint)
        )
        count = 0
        for state, sid, blob in rows:
            count += load_gallery(self._engine(state), [(sid, blob)])
        return count

    async def clear(self) -> None:
        """Forgets every state's tenprint file (after a reset emptied the state records)."""
        async with self.enrollments.lock:
            self.engines.clear()

    # --- configuration -------------------------------------------------------------------

    async def register_state(self, session: AsyncSession, state: pb.State) -> pb.State:
        """Creates or replaces a state."""
        if not STATE_CODE_PATTERN.fullmatch(state.code):
            raise InvalidArgument(f"state code must be two letters A-Z, got {shown(state.code)}")
        if state.moa_status == pb.MOA_STATUS_UNSPECIFIED:
            raise InvalidArgument("moa_status is required")
        if state.sib_ori:
            check_ori(state.sib_ori, field="sib_ori")
        row = await session.get(StateRecord, state.code)
        if row is None:
            row = StateRecord(code=state.code)
            session.add(row)
        row.name = state.name or state.code
        row.sib_ori = state.sib_ori
        row.nff = state.nff
        row.relay_capable = state.relay_capable
        row.moa_status = int(state.moa_status)
        row.termination_effective_at = None
        if state.moa_status == pb.MOA_STATUS_TERMINATION_NOTICED:
            row.termination_effective_at = self.clock.now() + MOA_NOTICE_PERIOD
        await session.flush()
        return state_to_proto(row)

    async def register_agency(self, session: AsyncSession, agency: pb.Agency) -> pb.Agency:
        """Creates or replaces an agency."""
        check_ori(agency.ori)
        if agency.activated_on:
            check_date(agency.activated_on, field="activated_on")
        _check_share(agency.criminal_alien_share)
        if await session.get(StateRecord, agency.ori[:2]) is None:
            raise FailedPrecondition(f"state {agency.ori[:2]} is not registered with this SIB")
        row = await session.get(AgencyRecord, agency.ori)
        if row is None:
            row = AgencyRecord(ori=agency.ori)
            session.add(row)
        row.name = agency.name or agency.ori
        row.state = agency.ori[:2]
        row.activated = agency.activated
        row.activated_on = agency.activated_on
        row.rollout_phase = agency.rollout_phase
        row.criminal_alien_share = agency.criminal_alien_share
        return agency

    async def set_moa_status(
        self, session: AsyncSession, request: pb.SetMoaStatusRequest
    ) -> pb.State:
        """Signs, suspends (at once), resumes, or gives 30 days' notice of termination."""
        allowed = (
            pb.MOA_STATUS_ACTIVE,
            pb.MOA_STATUS_SUSPENDED,
            pb.MOA_STATUS_TERMINATION_NOTICED,
        )
        if request.status not in allowed:
            raise InvalidArgument(
                "status must be ACTIVE, SUSPENDED or TERMINATION_NOTICED "
                "(termination takes effect 30 days after notice)"
            )
        row = await session.get(StateRecord, request.state, with_for_update=True)
        if row is None:
            raise NotFound(f"no state {shown(request.state)}")
        now = self.clock.now()
        if row.moa_status == pb.MOA_STATUS_TERMINATION_NOTICED and not moa_in_effect(row, now):
            row.moa_status = pb.MOA_STATUS_TERMINATED
        if row.moa_status == pb.MOA_STATUS_TERMINATED:
            raise FailedPrecondition(f"the MOA with {row.code} is terminated; sign a new one")
        if request.status == pb.MOA_STATUS_TERMINATION_NOTICED:
            if row.moa_status != pb.MOA_STATUS_TERMINATION_NOTICED:
                row.termination_effective_at = now + MOA_NOTICE_PERIOD
        else:
            row.termination_effective_at = None
        row.moa_status = int(request.status)
        return state_to_proto(row)

    async def suspend_jurisdiction(
        self, session: AsyncSession, request: pb.SuspendJurisdictionRequest, *, who: str
    ) -> pb.JurisdictionAccess:
        """Suspends one jurisdiction's interoperability at once (MOA VIII), apart from its
        state's MOA; the same party suspending again replaces the reason. Audited as `who`'s,
        with the reason."""
        reason = request.reason.strip()
        check_ori(request.ori)
        if not reason:
            raise InvalidArgument("reason is required: the notice says why (MOA VIII)")
        if len(reason) > MAX_SUSPENSION_REASON:
            raise InvalidArgument(
                f"reason is at most {MAX_SUSPENSION_REASON} characters, got {len(reason)}"
            )
        await self._jurisdiction(session, request.ori, request.by)
        row = await session.get(JurisdictionSuspension, request.ori, with_for_update=True)
        if row is not None and row.suspended_by != request.by:
            raise FailedPrecondition(
                f"{request.ori} is already suspended by {party_name(row.suspended_by)}"
            )
        if row is None:
            row = JurisdictionSuspension(ori=request.ori, suspended_by=int(request.by))
            session.add(row)
        row.reason = reason
        row.suspended_at = self.clock.now()
        _audit_access(session, who, "SuspendJurisdiction", audit.AuditOutcome.SUSPENDED, row)
        return access_to_proto(request.ori, row)

    async def resume_jurisdiction(
        self, session: AsyncSession, request: pb.ResumeJurisdictionRequest, *, who: str
    ) -> pb.JurisdictionAccess:
        """Lifts a suspension; only the party that suspended the jurisdiction lifts it. A
        lifted suspension is audited as `who`'s."""
        await self._jurisdiction(session, request.ori, request.by)
        row = await session.get(JurisdictionSuspension, request.ori, with_for_update=True)
        if row is not None:
            if row.suspended_by != request.by:
                raise FailedPrecondition(
                    f"{request.ori} was suspended by {party_name(row.suspended_by)}; "
                    "only that party lifts the suspension"
                )
            _audit_access(session, who, "ResumeJurisdiction", audit.AuditOutcome.RESUMED, row)
            await session.delete(row)
        return access_to_proto(request.ori, None)

    async def jurisdiction_access(self, session: AsyncSession, ori: str) -> pb.JurisdictionAccess:
        """Whether a registered jurisdiction is suspended, by whom and why."""
        check_ori(ori)
        if await session.get(AgencyRecord, ori) is None:
            raise NotFound(f"no agency with ORI {ori}")
        return access_to_proto(ori, await session.get(JurisdictionSuspension, ori))

    @staticmethod
    async def _jurisdiction(session: AsyncSession, ori: str, by: int) -> None:
        """Refuses a malformed ORI, an unspecified party or an unknown agency."""
        check_ori(ori)
        if by not in (pb.SUSPENDING_PARTY_SIB, pb.SUSPENDING_PARTY_ICE):
            raise InvalidArgument("by must be SUSPENDING_PARTY_SIB or SUSPENDING_PARTY_ICE")
        if await session.get(AgencyRecord, ori) is None:
            raise NotFound(f"no agency with ORI {ori}")

    async def states(self, session: AsyncSession) -> list[pb.State]:
        """Every state, with its MOA status as of now."""
        rows = await session.scalars(select(StateRecord).order_by(StateRecord.code))
        result = []
        for row in rows:
            state = state_to_proto(row)
            if row.moa_status == pb.MOA_STATUS_TERMINATION_NOTICED and not moa_in_effect(
                row, self.clock.now()
            ):
                state.moa_status = pb.MOA_STATUS_TERMINATED
            result.append(state)
        return result

    # --- bookings ------------------------------------------------------------------------

    async def submit_booking(
        self,
        session: AsyncSession,
        submission: BookingSubmission,
        *,
        who: str,
        rpc: str = "POST /v1/bookings",
    ) -> BookingReceipt:
        """Takes a booking: state file search (audited as `who`'s call of `rpc`), then a CAR
        with prints or an NFF state's CPI."""
        received_at = datetime.now(UTC)
        check_ori(submission.ori)
        check_date(submission.doa, field="doa")
        check_descriptors(submission.descriptors)
        if not submission.charges:
            raise InvalidArgument("at least one charge is required")
        check_charges(submission.charges)
        probe = tenprint_from_proto(submission.tenprint, field="fingers")
        agency = await session.get(AgencyRecord, submission.ori)
        if agency is None:
            raise InvalidArgument(f"no agency with ORI {submission.ori} is registered")
        state = await session.get(StateRecord, agency.state)
        if state is None:
            raise FailedPrecondition(f"state {agency.state} is not registered")
        existing = await session.scalar(
            select(Booking).where(
                Booking.ori == submission.ori,
                Booking.booking_number == submission.booking_number,
            )
        )
        if existing is not None:
            if not submission.same_as(existing):
                raise AlreadyExists(
                    f"booking {submission.booking_number} of {submission.ori} was already "
                    f"submitted with other content as TCN {existing.tcn}"
                )
            return BookingReceipt(
                existing.tcn, existing.tot, existing.status, existing.sid, duplicate=True
            )

        now = self.clock.now()
        mate = self._engine(state.code).identify(probe)
        # The subject row is locked: an SRE that is giving it its FBI number right now either
        # commits first (and this booking sees the number) or waits for this booking (and
        # releases it if parked). Without the lock a CPI could be parked after the SRE looked.
        subject = (
            await session.get(StateSubject, mate.key, with_for_update=True, populate_existing=True)
            if mate is not None
            else None
        )
        if subject is None:
            subject = StateSubject(
                sid=f"{state.code}{uuid.uuid4().hex[:10].upper()}",
                state=state.code,
                fbi_number="",
                tenprint=probe.to_bytes(),
                created_at=now,
            )
            session.add(subject)
            self.enrollments.stage(self._engine(state.code), subject.sid, probe)
            subsequent = False
        else:
            subsequent = True
        tot = MessageType.CPI if state.nff and subsequent else MessageType.CAR
        suspension = await session.get(JurisdictionSuspension, agency.ori)
        gates = attest_interoperability(state, agency, suspension, doa=submission.doa, now=now)
        interop = gates.moa_active and gates.jurisdiction_activated
        booking = Booking(
            tcn=new_tcn(state.code),
            ori=submission.ori,
            booking_number=submission.booking_number,
            sid=subject.sid,
            tot=tot,
            descriptors=to_json(submission.descriptors),
            charges=list_to_json(submission.charges),
            doa=submission.doa,
            prints_sha256=submission.prints_sha256(),
            status=BookingStatus.SUBMITTED,
            expects_idr=interop,
            interoperability=to_json(gates),
            accepted_at=now,
        )
        session.add(booking)
        audit.record(
            session,
            who=who,
            rpc=rpc,
            tcn=booking.tcn,
            purpose=audit.Purpose.BOOKING,
            outcome=audit.AuditOutcome.MATCH if subsequent else audit.AuditOutcome.NO_MATCH,
            candidates=int(subsequent),
            detail=f"state file {state.code}, sid {subject.sid}"
            + (
                ""
                if suspension is None
                else f"; no IDENT search: {describe_suspension(suspension)}"
            ),
        )
        if tot == MessageType.CPI and not subject.fbi_number:
            # The first arrest's SRE has not come back yet: the CPI waits for the FBI number.
            booking.status = BookingStatus.AWAITING_FBI_NUMBER
        else:
            self._send_submission(
                session, booking, submission.tenprint, fbi_number=subject.fbi_number
            )
        journal.record(
            session,
            message_id=booking.tcn,
            tcn=booking.tcn,
            tot=MessageType.BOOKING,
            direction=Direction.RECEIVED,
            peer=f"lea:{submission.ori}",
            outcome=Outcome.ACCEPTED,
            detail=f"{tot} sid={subject.sid} interoperability={'yes' if interop else 'no'}"
            + "".join(
                f" ({words})"
                for words in (
                    closed_gate_words(gates, state.code),
                    "" if suspension is None else describe_suspension(suspension),
                )
                if words
            )
            + (f"; {submission.received_as}" if submission.received_as else ""),
            at=received_at,
        )
        return BookingReceipt(booking.tcn, tot, booking.status, subject.sid)

    def _send_submission(
        self,
        session: AsyncSession,
        booking: Booking,
        tenprint: common_pb2.Tenprint | None,
        *,
        fbi_number: str,
    ) -> None:
        """The booking's CAR (with prints) or CPI goes into the outbox for CJIS."""
        if booking.interoperability is None:
            interop = cjis_iafis_pb2.Interoperability(
                moa_active=booking.expects_idr, jurisdiction_activated=booking.expects_idr
            )
        else:
            interop = from_json(booking.interoperability, cjis_iafis_pb2.Interoperability)
        descriptors = from_json(booking.descriptors, common_pb2.Descriptors)
        charges = list_from_json(booking.charges, common_pb2.Charge)
        envelope = make_envelope(
            clock=self.clock,
            sender=Agency.SIB,
            tot=booking.tot,
            tcr="",
            ori=booking.ori,
            dai=Agency.CJIS_IAFIS.ori,
        )
        envelope.tcn = booking.tcn
        if booking.tot == MessageType.CAR:
            assert tenprint is not None, "a CAR carries prints"
            car = cjis_iafis_pb2.Car(
                envelope=envelope,
                sid=booking.sid,
                descriptors=descriptors,
                tenprint=tenprint,
                charges=charges,
                booking_number=booking.booking_number,
                doa=booking.doa,
                interoperability=interop,
            )
            self.outbox.add(session, route=message_routes.CJIS_SUBMIT_CAR, message=car)
        else:
            cpi = cjis_iafis_pb2.Cpi(
                envelope=envelope,
                sid=booking.sid,
                fbi_number=fbi_number,
                descriptors=descriptors,
                charges=charges,
                booking_number=booking.booking_number,
                doa=booking.doa,
                interoperability=interop,
            )
            self.outbox.add(session, route=message_routes.CJIS_SUBMIT_CPI, message=cpi)

    async def _booking(self, session: AsyncSession, envelope: common_pb2.Envelope) -> Booking:
        tcn = envelope.tcr or envelope.tcn
        booking = await session.get(Booking, tcn, with_for_update=True)
        if booking is None:
            raise NotFound(f"no booking with TCN {shown(tcn)}")
        return booking

    def _respond(
        self,
        session: AsyncSession,
        booking: Booking,
        kind: MessageType,
        body: dict[str, Any],
        *,
        relayed: bool,
        ref: str = "",
    ) -> None:
        session.add(
            ResponseRecord(
                tcn=booking.tcn,
                ori=booking.ori,
                kind=kind,
                ref=ref,
                relayed=relayed,
                body=body,
                received_at=self.clock.now(),
            )
        )
        journal.record(
            session,
            message_id=str(uuid.uuid4()),
            tcn=booking.tcn,
            tot=kind,
            direction=Direction.SENT,
            peer=f"lea:{booking.ori}",
            outcome=Outcome.RELAYED if relayed else Outcome.NOT_RELAYED,
        )

    def _complete_if_answered(self, booking: Booking) -> None:
        if booking.status.finished:
            return
        if booking.sre_received and (booking.idr_received or not booking.expects_idr):
            booking.status = BookingStatus.ANSWERED
            booking.completed_at = self.clock.now()

    async def take_sre(self, session: AsyncSession, message: pb.SreMessage) -> str:
        """SRE: to the LEA; the FBI number goes on the state record; waiting CPIs go out."""
        if message.identification not in ("I", "N"):
            raise InvalidArgument(
                f"identification must be 'I' or 'N', got {shown(message.identification)}"
            )
        if not message.fbi_number:
            raise InvalidArgument("fbi_number is required")
        booking = await self._booking(session, message.envelope)
        booking.sre_received = True
        self._respond(session, booking, MessageType.SRE, to_json(message), relayed=True)
        subject = await session.get(StateSubject, booking.sid, with_for_update=True)
        released = 0
        if subject is not None and not subject.fbi_number:
            subject.fbi_number = message.fbi_number
            waiting = await session.scalars(
                select(Booking)
                .where(
                    Booking.sid == subject.sid,
                    Booking.status == BookingStatus.AWAITING_FBI_NUMBER,
                )
                .order_by(Booking.accepted_at)
            )
            for parked in waiting:
                parked.status = BookingStatus.SUBMITTED
                # The CPI belongs to its own booking's trace, not to this SRE's.
                async with self.outbox.continuing_trace(session, parked.tcn, "sib.release_cpi"):
                    self._send_submission(session, parked, None, fbi_number=subject.fbi_number)
                released += 1
        self._complete_if_answered(booking)
        return f"{message.identification} {message.fbi_number}" + (
            f"; released {released} CPI" if released else ""
        )

    async def take_errt(self, session: AsyncSession, message: pb.ErrtMessage) -> str:
        """ERRT: the booking is refused and the LEA gets the reason."""
        if not message.HasField("errt") or not message.errt.reason:
            raise InvalidArgument("errt.reason is required")
        booking = await self._booking(session, message.envelope)
        self._refuse(session, booking, to_json(message), message.errt.reason)
        released = await self._release_parked_as_car(session, booking)
        return f"{message.errt.code}: {message.errt.reason}" + (
            f"; {released} parked CPI sent as CAR" if released else ""
        )

    async def _release_parked_as_car(self, session: AsyncSession, refused: Booking) -> int:
        """The first arrest was refused, so no FBI number will come: parked CPIs go as CARs.

        The state record's prints on file go with them, as a CAR needs a tenprint.
        """
        subject = await session.get(StateSubject, refused.sid, with_for_update=True)
        if subject is None or subject.fbi_number:
            return 0
        waiting = list(
            await session.scalars(
                select(Booking)
                .where(
                    Booking.sid == subject.sid,
                    Booking.status == BookingStatus.AWAITING_FBI_NUMBER,
                )
                .order_by(Booking.accepted_at)
            )
        )
        prints = TenprintTemplate.from_bytes(subject.tenprint).to_proto()
        for parked in waiting:
            parked.status = BookingStatus.SUBMITTED
            parked.tot = MessageType.CAR
            async with self.outbox.continuing_trace(session, parked.tcn, "sib.release_cpi"):
                self._send_submission(session, parked, prints, fbi_number="")
        return len(waiting)

    def _refuse(
        self, session: AsyncSession, booking: Booking, body: dict[str, Any], reason: str
    ) -> None:
        booking.status = BookingStatus.REFUSED
        booking.error = reason
        booking.completed_at = self.clock.now()
        self._respond(session, booking, MessageType.ERRT, body, relayed=True)

    async def take_interoperability_response(
        self, session: AsyncSession, message: pb.InteroperabilityResponse
    ) -> str:
        """No-match IDR or joint IDR/IAR: relayed unless the state lacks the capability."""
        which = message.WhichOneof("response")
        if which is None:
            raise InvalidArgument("response (no_match or joint) is required")
        booking = await self._booking(session, message.envelope)
        state = await session.get(StateRecord, booking.ori[:2])
        relayed = bool(state is not None and state.relay_capable)
        kind = MessageType.NO_MATCH_IDR if which == "no_match" else MessageType.IDR_IAR
        booking.idr_received = True
        self._respond(session, booking, kind, to_json(message), relayed=relayed)
        self._complete_if_answered(booking)
        return f"{kind} {'relayed' if relayed else 'not relayed: SIB lacks relay capability'}"

    async def take_detainer(self, session: AsyncSession, message: pb.DetainerMessage) -> str:
        """I-247: always to the LEA, through the agency edge, whatever the relay setting."""
        detainer = message.detainer
        if not message.HasField("detainer") or not detainer.detainer_id:
            raise InvalidArgument("detainer.detainer_id is required")
        check_ori(detainer.lea_ori, field="detainer.lea_ori")
        if await session.get(AgencyRecord, detainer.lea_ori) is None:
            raise NotFound(f"no agency with ORI {detainer.lea_ori}")
        booking = await session.get(Booking, detainer.booking_tcn)
        if booking is None:
            raise NotFound(f"no booking with TCN {shown(detainer.booking_tcn)}")
        self._respond(
            session,
            booking,
            MessageType.I247,
            to_json(message),
            relayed=True,
            ref=detainer.detainer_id,
        )
        return f"{detainer.detainer_id} level {detainer.level}"

    async def submission_dead(self, session: AsyncSession, row: OutboxMessage) -> None:
        """A CAR or CPI that CJIS refused for good: the LEA gets an ERRT with the reason."""
        booking = await session.get(Booking, row.tcn, with_for_update=True)
        if booking is None or booking.status.finished:
            return
        reason = f"CJIS did not accept the {row.tot}: {row.last_error}"
        errt = common_pb2.Errt(refused_tcn=booking.tcn, code="DELIVERY_FAILED", reason=reason)
        self._refuse(session, booking, to_json(pb.ErrtMessage(errt=errt)), reason)
        await self._release_parked_as_car(session, booking)

    async def release_notice(
        self, session: AsyncSession, *, ori: str, detainer_id: str, release_at: datetime | None
    ) -> str:
        """Forwards an LEA's release notice for a detainer to the ICE field office."""
        check_ori(ori)
        if not detainer_id:
            raise InvalidArgument("detainer_id is required")
        response = await session.scalar(
            select(ResponseRecord).where(
                ResponseRecord.ori == ori,
                ResponseRecord.kind == MessageType.I247,
                ResponseRecord.ref == detainer_id,
            )
        )
        if response is None:
            raise NotFound(f"no detainer {shown(detainer_id)} was lodged with {ori}")
        if release_at is not None and release_at.tzinfo is None:
            release_at = release_at.replace(tzinfo=UTC)  # a time without an offset is UTC
        envelope = make_envelope(
            clock=self.clock,
            sender=Agency.SIB,
            tot=MessageType.RELEASE,
            tcr=response.tcn,
            ori=ori,
            dai=str(response.body["detainer"].get("field_office", "")),
        )
        notice = ice_field_pb2.ReleaseNotice(envelope=envelope, detainer_id=detainer_id)
        if release_at is not None:
            # Without a time the release is now, as the field office's clock reads it: its
            # agency time may run ahead of the SIB's.
            notice.release_at.FromDatetime(release_at)
        # The notice joins its booking's trace (linked to the LEA's request).
        async with self.outbox.continuing_trace(session, response.tcn, "sib.release_notice"):
            self.outbox.add(session, route=message_routes.ICE_NOTIFY_RELEASE, message=notice)
        return envelope.message_id
