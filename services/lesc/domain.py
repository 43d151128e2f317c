"""LESC domain: take an IAQ, acknowledge it, determine status, answer with the IAR."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.lesc.v1 import lesc_pb2

from ..federation import Agency
from ..runtime import message_routes
from ..runtime.clock import Clock
from ..runtime.delivery import Outbox
from ..runtime.envelope import MessageType, make_envelope
from ..runtime.errors import AlreadyExists, InvalidArgument, NotFound
from ..runtime.validation import check_charges
from .desk import DeskPolicy, Shift, analysts_on_duty
from .determination import ClassifiedCharge, StatusRule, determine
from .models import CaseRecord, CaseState, Route
from .offense_levels import InvalidNcicCode, OffenseTable

_LEVELS = {
    None: common_pb2.OFFENSE_LEVEL_NONE,
    1: common_pb2.OFFENSE_LEVEL_1,
    2: common_pb2.OFFENSE_LEVEL_2,
    3: common_pb2.OFFENSE_LEVEL_3,
}


def offense_level(level: int | None) -> common_pb2.OffenseLevel.ValueType:
    """The wire enum of a level (None is OFFENSE_LEVEL_NONE)."""
    return _LEVELS[level]


def _classified(items: tuple[ClassifiedCharge, ...]) -> list[common_pb2.ClassifiedCharge]:
    return [
        common_pb2.ClassifiedCharge(
            charge=item.charge,
            level=offense_level(item.classification.level),
            category=item.classification.category,
        )
        for item in items
    ]


@dataclass
class StatusDeterminationCenter:
    """LESC's 24x7 desk: every IAQ is acknowledged at once and answered with an IAR, at once
    when automated, or when an analyst (or a VTC interview) has handled it."""

    clock: Clock
    outbox: Outbox
    table: OffenseTable
    rules: Mapping[str, StatusRule]
    policy: DeskPolicy = field(default_factory=DeskPolicy)
    shifts: tuple[Shift, ...] = (Shift(0, 1),)

    def _envelope(self, tot: MessageType, tcr: str, ori: str, dai: str) -> common_pb2.Envelope:
        return make_envelope(
            clock=self.clock,
            sender=Agency.LESC,
            tot=tot,
            tcr=tcr,
            ori=ori,
            dai=dai,
            tcn_prefix="LESC",
        )

    async def take_iaq(self, session: AsyncSession, iaq: lesc_pb2.Iaq) -> str:
        """Acknowledges the IAQ, determines status and sends the IAR to CJIS and the field."""
        if not iaq.HasField("idr") or not iaq.idr.match:
            raise InvalidArgument("an IAQ must carry a matching IDR")
        if not iaq.idr.fin:
            raise InvalidArgument("idr.fin is required")
        check_charges(iaq.off, field="off")
        for i, cycle in enumerate(iaq.history.cycles):
            check_charges(cycle.charges, field=f"history.cycles[{i}].charges")
        tcr = iaq.envelope.tcr or iaq.envelope.tcn
        ori = iaq.envelope.ori
        existing = await session.scalar(select(CaseRecord).where(CaseRecord.tcn == tcr))
        if existing is not None:
            raise AlreadyExists(f"booking {tcr} already has LESC case {existing.case_id}")
        try:
            found = determine(
                encounters=iaq.idr.encounters,
                current_charges=iaq.off,
                history=iaq.history.cycles,
                table=self.table,
                rules=self.rules,
            )
        except (InvalidNcicCode, ValueError) as exc:
            raise InvalidArgument(str(exc)) from exc
        case_id = "LESC" + uuid.uuid4().hex[:12].upper()
        now = self.clock.now()
        iar = common_pb2.Iar(
            case_id=case_id,
            fin=iaq.idr.fin,
            a_number=iaq.idr.a_number or iaq.arn,
            fbi_number=iaq.fbi,
            status=common_pb2.ImmigrationStatus.Value("IMMIGRATION_STATUS_" + found.status),
            removable=found.removable,
            removal_ground=found.ground,
            current_charge_level=offense_level(found.current_charge_level),
            prior_conviction_level=offense_level(found.prior_conviction_level),
            current_charges=_classified(found.current_charges),
            prior_convictions=_classified(found.prior_convictions),
            priority=found.priority,
            offense_table=self.table.name,
            reentry_after_removal=found.reentry_after_removal,
        )
        if found.removal is not None:
            iar.removed_at.CopyFrom(found.removal.encountered_at)
        route = self.policy.route(found, iaq.idr.score)
        row = CaseRecord(
            case_id=case_id,
            tcn=tcr,
            ori=ori,
            fin=iar.fin,
            a_number=iar.a_number,
            fbi_number=iar.fbi_number,
            status=found.status,
            removable=found.removable,
            current_charge_level=found.current_charge_level or 0,
            prior_conviction_level=found.prior_conviction_level or 0,
            priority=found.priority,
            offense_table=self.table.name,
            iar=iar.SerializeToString(),
            iaq=iaq.SerializeToString(),
            booking_number=iaq.booking_number,
            nam=iaq.descriptors.nam,
            route=route,
            state=CaseState.QUEUED,
            received_at=now,
            due_at=now + self.policy.target,
        )
        session.add(row)
        ack = cjis_iafis_pb2.IaqAcknowledgement(
            envelope=self._envelope(MessageType.IAQ_ACK, tcr, ori, Agency.CJIS_IAFIS.ori),
            case_id=case_id,
        )
        self.outbox.add(session, route=message_routes.CJIS_ACKNOWLEDGE_IAQ, message=ack)
        if route == Route.AUTOMATED:
            self._answer(session, row, now)
        return (
            f"{case_id} {found.status} removable={found.removable} "
            f"priority={found.priority} route={route}"
        )

    def _answer(self, session: AsyncSession, row: CaseRecord, at: datetime) -> None:
        """Sends the IAR to CJIS and its copy to the field office; a late answer still goes."""
        iar = common_pb2.Iar.FromString(row.iar)
        iar.determined_at.FromDatetime(at)
        row.iar = iar.SerializeToString()
        row.state = CaseState.ANSWERED
        row.answered_at = at
        row.late = at > row.due_at
        answer = cjis_iafis_pb2.IarMessage(
            envelope=self._envelope(MessageType.IAR, row.tcn, row.ori, Agency.CJIS_IAFIS.ori),
            iar=iar,
        )
        self.outbox.add(session, route=message_routes.CJIS_DELIVER_IAR, message=answer)
        copy = ice_field_pb2.IarCopy(
            envelope=self._envelope(MessageType.IAR_COPY, row.tcn, row.ori, ""),
            iar=iar,
            booking_number=row.booking_number,
            nam=row.nam,
        )
        self.outbox.add(session, route=message_routes.ICE_DELIVER_IAR, message=copy)

    async def work(self, session: AsyncSession) -> int:
        """Finishes the cases whose handling time is over and starts queued ones on free
        analysts, Level 1 priority first; returns how many cases changed."""
        now = self.clock.now()
        done = list(
            await session.scalars(
                select(CaseRecord)
                .where(CaseRecord.state == CaseState.IN_WORK, CaseRecord.work_until <= now)
                .order_by(CaseRecord.work_until)
                .with_for_update(skip_locked=True)
            )
        )
        for row in done:
            assert row.work_until is not None
            # The analyst's answer carries on the booking's trace (no request started it).
            async with self.outbox.continuing_trace(session, row.tcn, "lesc.desk.answer"):
                self._answer(session, row, row.work_until)
        # The count autoflushes, so the cases just answered no longer hold an analyst.
        busy = await session.scalar(
            select(func.count()).where(CaseRecord.state == CaseState.IN_WORK)
        )
        free = analysts_on_duty(self.shifts, now) - int(busy or 0)
        started: list[CaseRecord] = []
        if free > 0:
            started = list(
                await session.scalars(
                    select(CaseRecord)
                    .where(CaseRecord.state == CaseState.QUEUED)
                    .order_by(
                        case((CaseRecord.priority == 0, 9), else_=CaseRecord.priority),
                        CaseRecord.received_at,
                        CaseRecord.case_id,
                    )
                    .limit(free)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in started:
                row.state = CaseState.IN_WORK
                row.work_until = now + self.policy.handling(row.route)
        return len(done) + len(started)

    async def _case(self, session: AsyncSession, tcn: str) -> CaseRecord:
        found = await session.scalar(select(CaseRecord).where(CaseRecord.tcn == tcn))
        if found is None:
            raise NotFound(f"LESC has no case for booking {tcn}")
        return found

    async def iaq_of(self, session: AsyncSession, tcn: str) -> lesc_pb2.Iaq:
        """The IAQ a booking's case was opened with; NotFound without a case, or for a case an
        older version kept without its IAQ."""
        row = await self._case(session, tcn)
        if row.iaq is None:
            raise NotFound(f"LESC case {row.case_id} of booking {tcn} was kept without its IAQ")
        return lesc_pb2.Iaq.FromString(row.iaq)

    async def iar_of(self, session: AsyncSession, tcn: str) -> cjis_iafis_pb2.IarMessage:
        """The IAR LESC sent CJIS for a booking, as it sent it; NotFound without a case, or
        while the case is not answered yet."""
        row = await self._case(session, tcn)
        sent = await self.outbox.written(session, route=message_routes.CJIS_DELIVER_IAR, tcn=tcn)
        if not sent:
            raise NotFound(f"LESC case {row.case_id} of booking {tcn} is not answered yet")
        return sent[-1]

    async def cases_for(self, session: AsyncSession, tcn: str) -> list[dict[str, object]]:
        """The desk's view of the cases of one booking."""
        rows = await session.scalars(select(CaseRecord).where(CaseRecord.tcn == tcn))
        return [
            {
                "case_id": r.case_id,
                "tcn": r.tcn,
                "route": r.route,
                "state": r.state,
                "status": r.status,
                "removable": r.removable,
                "priority": r.priority,
                "received_at": r.received_at.isoformat(),
                "due_at": r.due_at.isoformat(),
                "answered_at": r.answered_at.isoformat() if r.answered_at else None,
                "late": r.late,
            }
            for r in rows
        ]
