"""LESC domain: take an IAQ, acknowledge it, determine status, answer with the IAR."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.lesc.v1 import lesc_pb2
from services.lesc.determination import ClassifiedCharge, StatusRule, determine
from services.lesc.models import CaseRecord
from services.lesc.offense_levels import InvalidNcicCode, OffenseTable
from services.runtime import routes
from services.runtime.clock import Clock
from services.runtime.delivery import Outbox
from services.runtime.envelope import make_envelope
from services.runtime.errors import AlreadyExists, InvalidArgument
from services.runtime.records import check_charges

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
    """LESC's 24x7 desk: every IAQ is acknowledged and answered with an IAR."""

    clock: Clock
    outbox: Outbox
    table: OffenseTable
    rules: Mapping[str, StatusRule]

    def _envelope(self, tot: str, tcr: str, ori: str, dai: str) -> common_pb2.Envelope:
        return make_envelope(
            clock=self.clock,
            sender=routes.LESC,
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
        determined_at = Timestamp()
        determined_at.FromDatetime(now)
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
            determined_at=determined_at,
        )
        session.add(
            CaseRecord(
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
                received_at=now,
                answered_at=now,
            )
        )
        ack = cjis_iafis_pb2.IaqAcknowledgement(
            envelope=self._envelope("IAQ-ACK", tcr, ori, routes.CJIS_ORI), case_id=case_id
        )
        self.outbox.add(
            session, peer=routes.CJIS_IAFIS, method=routes.CJIS_ACKNOWLEDGE_IAQ, message=ack
        )
        answer = cjis_iafis_pb2.IarMessage(
            envelope=self._envelope("IAR", tcr, ori, routes.CJIS_ORI), iar=iar
        )
        self.outbox.add(
            session, peer=routes.CJIS_IAFIS, method=routes.CJIS_DELIVER_IAR, message=answer
        )
        copy = ice_field_pb2.IarCopy(
            envelope=self._envelope("IAR-COPY", tcr, ori, ""),
            iar=iar,
            booking_number=iaq.booking_number,
            nam=iaq.descriptors.nam,
        )
        self.outbox.add(session, peer=routes.ICE_FIELD, method=routes.ICE_DELIVER_IAR, message=copy)
        return f"{case_id} {found.status} removable={found.removable} priority={found.priority}"
