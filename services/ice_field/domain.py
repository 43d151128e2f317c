"""ICE field office domain: areas of responsibility, decisions on IARs, I-247 detainers."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2 as pb
from scfed.sib.v1 import sib_pb2
from services.ice_field.decision import DiscretionPolicy, decide
from services.ice_field.models import DecisionRecord, DetainerRecord, FieldOfficeRecord
from services.runtime import routes
from services.runtime.clock import Clock
from services.runtime.delivery import Outbox
from services.runtime.envelope import check_ori, make_envelope
from services.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)

_LEVEL_ENUM = {
    1: common_pb2.OFFENSE_LEVEL_1,
    2: common_pb2.OFFENSE_LEVEL_2,
    3: common_pb2.OFFENSE_LEVEL_3,
}


@dataclass
class FieldOperations:
    """The field offices of the federation and their enforcement decisions."""

    clock: Clock
    outbox: Outbox
    policy: DiscretionPolicy
    max_hold_hours: int = 48

    async def register_office(
        self, session: AsyncSession, office: pb.FieldOffice
    ) -> pb.FieldOffice:
        """Creates or replaces a field office."""
        check_ori(office.ori)
        if not office.states:
            raise InvalidArgument("a field office needs at least one state in its area")
        for state in office.states:
            if not re.fullmatch(r"[A-Z]{2}", state):
                raise InvalidArgument(f"state codes are two letters A-Z, got {state!r}")
        row = await session.get(FieldOfficeRecord, office.ori)
        if row is None:
            row = FieldOfficeRecord(ori=office.ori)
            session.add(row)
        row.name = office.name or office.ori
        row.states = sorted(set(office.states))
        row.bed_capacity = office.bed_capacity
        return office

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
        """Decides on the IAR copy; a detainer goes to the LEA through its SIB."""
        if not copy.HasField("iar"):
            raise InvalidArgument("iar is required")
        tcn = copy.envelope.tcr or copy.envelope.tcn
        lea_ori = copy.envelope.ori
        if await session.get(DecisionRecord, tcn) is not None:
            raise AlreadyExists(f"booking {tcn} already has a field office decision")
        office = await self.office_for(session, lea_ori)
        decision = decide(copy.iar, self.policy)
        now = self.clock.now()
        session.add(
            DecisionRecord(
                tcn=tcn,
                case_id=copy.iar.case_id,
                field_office=office.ori,
                action=decision.action,
                level=decision.level,
                basis=common_pb2.DetainerBasis.Name(decision.basis).removeprefix("DETAINER_BASIS_"),
                decided_at=now,
            )
        )
        if decision.action != "detainer":
            return f"{decision.action} level {decision.level} by {office.ori}"
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
        session.add(
            DetainerRecord(
                detainer_id=detainer.detainer_id,
                tcn=tcn,
                field_office=office.ori,
                lea_ori=lea_ori,
                level=decision.level,
                state="issued",
                issued_at=now,
                body=detainer.SerializeToString(),
            )
        )
        message = sib_pb2.DetainerMessage(
            envelope=make_envelope(
                clock=self.clock,
                sender=routes.ICE_FIELD,
                tot="I-247",
                tcr=tcn,
                ori=office.ori,
                dai=lea_ori,
                pry=1 if decision.level == 1 else 5,
                tcn_prefix="ICE",
            ),
            detainer=detainer,
        )
        self.outbox.add(
            session, peer=routes.SIB, method=routes.SIB_DELIVER_DETAINER, message=message
        )
        return f"detainer {detainer.detainer_id} level {decision.level} by {office.ori}"

    async def notify_release(self, session: AsyncSession, notice: pb.ReleaseNotice) -> str:
        """Records the LEA's notice that a subject under detainer will be released."""
        if not notice.detainer_id:
            raise InvalidArgument("detainer_id is required")
        row = await session.get(DetainerRecord, notice.detainer_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no detainer {notice.detainer_id!r}")
        if row.lea_ori != notice.envelope.ori:
            raise InvalidArgument(
                f"detainer {row.detainer_id} was lodged with {row.lea_ori}, "
                f"not {notice.envelope.ori}"
            )
        row.state = "release_noticed"
        row.release_at = (
            notice.release_at.ToDatetime(tzinfo=self.clock.now().tzinfo)
            if notice.HasField("release_at")
            else self.clock.now()
        )
        return f"release noticed for {row.detainer_id}"

    async def detainer(self, session: AsyncSession, detainer_id: str) -> pb.DetainerRecord:
        """One detainer with its state."""
        if not detainer_id:
            raise InvalidArgument("detainer_id is required")
        row = await session.get(DetainerRecord, detainer_id)
        if row is None:
            raise NotFound(f"no detainer {detainer_id!r}")
        record = pb.DetainerRecord(
            detainer=common_pb2.I247Detainer.FromString(row.body), state=row.state
        )
        if row.release_at is not None:
            record.release_at.FromDatetime(row.release_at)
        return record
