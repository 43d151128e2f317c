"""CJIS/IAFIS domain: tenprint search of the criminal master file, SRE, interoperability.

No gRPC here: the servicer translates messages and maps DomainError to a status.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as pb
from scfed.common.v1 import common_pb2
from scfed.ident.v1 import ident_pb2
from scfed.lesc.v1 import lesc_pb2
from scfed.sib.v1 import sib_pb2

from ..biometrics.store import StoredGallery
from ..biometrics.template import TenprintTemplate, tenprint_from_proto
from ..federation import Agency
from ..runtime import audit, message_routes
from ..runtime.clock import Clock
from ..runtime.delivery import Outbox
from ..runtime.envelope import MessageType, make_envelope
from ..runtime.errors import AlreadyExists, InvalidArgument, NotFound, shown
from ..runtime.formats import iso_day
from ..runtime.proto_json import from_json, list_from_json, list_to_json, to_json
from ..runtime.validation import check_charges, check_date, check_descriptors, check_ori
from .models import (
    ArrestCycleRecord,
    Subject,
    Transaction,
    TransactionStatus,
)

SENDER = Agency.CJIS_IAFIS


def closed_gates(interop: pb.Interoperability, *, ori: str, doa: str) -> list[str]:
    """The gates that stop the IDENT search of a booking at `ori` dated `doa`, each named: the
    state's MOA, then the jurisdiction (suspended, not yet activated on the DOA, or not
    activated). Empty when both are open. A malformed activation day is refused."""
    day = interop.jurisdiction_activated_on
    if day:
        check_date(day, field="interoperability.jurisdiction_activated_on")
    closed: list[str] = []
    if not interop.moa_active:
        closed.append(f"MOA not active for state {ori[:2]}")
    if interop.jurisdiction_suspended:
        closed.append(f"jurisdiction ORI {ori} suspended (MOA VIII)")
    elif not interop.jurisdiction_activated:
        if day and doa < day:
            closed.append(f"jurisdiction ORI {ori} not activated until {iso_day(day)}")
        else:
            closed.append(f"jurisdiction ORI {ori} not activated")
    return closed


def interoperability_search(
    interop: pb.Interoperability, *, ori: str, doa: str
) -> tuple[bool, str]:
    """Whether CJIS searches IDENT for the booking, and the words its journal gives for it."""
    closed = closed_gates(interop, ori=ori, doa=doa)
    if not closed:
        return True, "+IDENT"
    return False, "interoperability search skipped: " + "; ".join(closed)


def new_fbi_number() -> str:
    """A synthetic FBI number: seven digits and two letters (UCN-like, nine characters)."""
    digits = "".join(secrets.choice(string.digits) for _ in range(7))
    letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(2))
    return digits + letters


@dataclass(kw_only=True)
class CriminalMasterFile(StoredGallery):
    """The master file and the interoperability hub, over one service's database."""

    gallery_columns = (Subject.fbi_number, Subject.tenprint)

    clock: Clock
    outbox: Outbox

    async def _add_subject(
        self,
        session: AsyncSession,
        fbi_number: str,
        descriptors: common_pb2.Descriptors,
        template: TenprintTemplate,
    ) -> None:
        session.add(
            Subject(
                fbi_number=fbi_number,
                nam=descriptors.nam,
                dob=descriptors.dob,
                sex=descriptors.sex,
                pob=descriptors.pob,
                tenprint=template.to_bytes(),
                created_at=self.clock.now(),
            )
        )
        await self.store.record(session, fbi_number, template)
        self.enrollments.stage(self.engine, fbi_number, template)

    async def _unused_fbi_number(self, session: AsyncSession) -> str:
        while True:
            candidate = new_fbi_number()
            if await session.get(Subject, candidate) is None:
                return candidate

    async def _history(self, session: AsyncSession, fbi_number: str) -> common_pb2.CriminalHistory:
        cycles = await session.scalars(
            select(ArrestCycleRecord)
            .where(ArrestCycleRecord.fbi_number == fbi_number)
            .order_by(ArrestCycleRecord.doa, ArrestCycleRecord.id)
        )
        return common_pb2.CriminalHistory(
            fbi_number=fbi_number,
            cycles=[
                common_pb2.ArrestCycle(
                    ori=c.ori,
                    doa=c.doa,
                    sid=c.sid,
                    tcn=c.tcn,
                    charges=list_from_json(c.charges, common_pb2.Charge),
                )
                for c in cycles
            ],
        )

    async def history(self, session: AsyncSession, fbi_number: str) -> common_pb2.CriminalHistory:
        """The criminal history of an FBI number."""
        if not fbi_number:
            raise InvalidArgument("fbi_number is required")
        if await session.get(Subject, fbi_number) is None:
            raise NotFound(f"no subject with FBI number {shown(fbi_number)}")
        return await self._history(session, fbi_number)

    @staticmethod
    def _check_submission(
        envelope: common_pb2.Envelope,
        booking_number: str,
        doa: str,
        charges: Sequence[common_pb2.Charge],
        descriptors: common_pb2.Descriptors,
    ) -> None:
        if not envelope.tcn:
            raise InvalidArgument("envelope.tcn is required")
        if not booking_number:
            raise InvalidArgument("booking_number is required")
        check_date(doa, field="doa")
        if not charges:
            raise InvalidArgument("at least one charge is required")
        check_charges(charges)
        check_descriptors(descriptors)

    @staticmethod
    async def _refuse_repeated_tcn(session: AsyncSession, tcn: str) -> None:
        if await session.get(Transaction, tcn) is not None:
            raise AlreadyExists(f"a transaction with TCN {tcn} exists already")

    async def take_car(self, session: AsyncSession, car: pb.Car, *, who: str) -> str:
        """CAR: search (audited as `who`'s), FBI number found or assigned, arrest appended,
        SRE, maybe IDENT."""
        self._check_submission(
            car.envelope, car.booking_number, car.doa, car.charges, car.descriptors
        )
        if not car.HasField("tenprint"):
            raise InvalidArgument("tenprint is required on a CAR")
        interop, gates = interoperability_search(
            car.interoperability, ori=car.envelope.ori, doa=car.doa
        )
        probe = tenprint_from_proto(car.tenprint, dim=self.engine.dim)
        await self._refuse_repeated_tcn(session, car.envelope.tcn)
        with self.timed_search("SubmitCar"):
            mate = self.engine.identify(probe)
        audit.record(
            session,
            who=who,
            rpc="SubmitCar",
            tcn=car.envelope.tcn,
            purpose=audit.Purpose.BOOKING,
            outcome=audit.AuditOutcome.MATCH if mate else audit.AuditOutcome.NO_MATCH,
            candidates=int(mate is not None),
            detail=f"master file, fbi_number {mate.key}" if mate else "master file",
        )
        if mate is not None:
            fbi_number, identification = mate.key, "I"
        else:
            fbi_number, identification = await self._unused_fbi_number(session), "N"
            await self._add_subject(session, fbi_number, car.descriptors, probe)
            await session.flush()  # the subject row must exist before its arrest cycles
        await self._file_arrest(
            session,
            tot=MessageType.CAR,
            envelope=car.envelope,
            sid=car.sid,
            fbi_number=fbi_number,
            booking_number=car.booking_number,
            doa=car.doa,
            descriptors=car.descriptors,
            charges=car.charges,
            identification=identification,
            ident_probe=probe if interop else None,
            detail=gates,
        )
        return f"{identification} {fbi_number} {gates}"

    async def take_cpi(self, session: AsyncSession, cpi: pb.Cpi) -> str:
        """CPI: the arrest goes on the FBI number's history; IDENT searches the prints on file."""
        self._check_submission(
            cpi.envelope, cpi.booking_number, cpi.doa, cpi.charges, cpi.descriptors
        )
        if not cpi.fbi_number:
            raise InvalidArgument("fbi_number is required on a CPI")
        interop, gates = interoperability_search(
            cpi.interoperability, ori=cpi.envelope.ori, doa=cpi.doa
        )
        await self._refuse_repeated_tcn(session, cpi.envelope.tcn)
        subject = await session.get(Subject, cpi.fbi_number)
        if subject is None:
            self._refuse(
                session,
                cpi.envelope,
                code="UNKNOWN_FBI_NUMBER",
                reason=f"CPI names FBI number {cpi.fbi_number}, which is not on file",
            )
            return f"ERRT unknown FBI number {cpi.fbi_number}"
        on_file = TenprintTemplate.from_bytes(subject.tenprint, self.engine.dim)
        await self._file_arrest(
            session,
            tot=MessageType.CPI,
            envelope=cpi.envelope,
            sid=cpi.sid,
            fbi_number=cpi.fbi_number,
            booking_number=cpi.booking_number,
            doa=cpi.doa,
            descriptors=cpi.descriptors,
            charges=cpi.charges,
            identification="I",
            ident_probe=on_file if interop else None,
            detail=gates,
        )
        return f"I {cpi.fbi_number} {gates}"

    def _refuse(
        self, session: AsyncSession, envelope: common_pb2.Envelope, *, code: str, reason: str
    ) -> None:
        errt = sib_pb2.ErrtMessage(
            envelope=self._envelope(MessageType.ERRT, envelope.tcn, envelope.ori),
            errt=common_pb2.Errt(refused_tcn=envelope.tcn, code=code, reason=reason),
        )
        self.outbox.add(session, route=message_routes.SIB_DELIVER_ERRT, message=errt)

    def _envelope(
        self, tot: MessageType, tcr: str, ori: str, *, dai: str = ""
    ) -> common_pb2.Envelope:
        return make_envelope(
            clock=self.clock, sender=SENDER, tot=tot, tcr=tcr, ori=ori, dai=dai, tcn_prefix="FBI"
        )

    async def _file_arrest(
        self,
        session: AsyncSession,
        *,
        tot: MessageType,
        envelope: common_pb2.Envelope,
        sid: str,
        fbi_number: str,
        booking_number: str,
        doa: str,
        descriptors: common_pb2.Descriptors,
        charges: Sequence[common_pb2.Charge],
        identification: str,
        ident_probe: TenprintTemplate | None,
        detail: str,
    ) -> None:
        tcn = envelope.tcn
        session.add(
            ArrestCycleRecord(
                fbi_number=fbi_number,
                ori=envelope.ori,
                doa=doa,
                sid=sid,
                tcn=tcn,
                charges=list_to_json(charges),
            )
        )
        now = self.clock.now()
        session.add(
            Transaction(
                tcn=tcn,
                tot=tot,
                ori=envelope.ori,
                sid=sid,
                booking_number=booking_number,
                fbi_number=fbi_number,
                descriptors=to_json(descriptors),
                charges=list_to_json(charges),
                status=(
                    TransactionStatus.IDENT_PENDING
                    if ident_probe is not None
                    else TransactionStatus.SRE_SENT
                ),
                identification=identification,
                detail=detail,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        sre = sib_pb2.SreMessage(
            envelope=self._envelope(MessageType.SRE, tcn, envelope.ori, dai=envelope.ori),
            identification=identification,
            fbi_number=fbi_number,
            sid=sid,
            history=await self._history(session, fbi_number),
        )
        self.outbox.add(session, route=message_routes.SIB_DELIVER_SRE, message=sre)
        if ident_probe is not None:
            search = ident_pb2.IdentSearch(
                envelope=self._envelope(
                    MessageType.IDENT_SEARCH, tcn, envelope.ori, dai=Agency.IDENT.ori
                ),
                tenprint=ident_probe.to_proto(),
                fbi_number=fbi_number,
            )
            self.outbox.add(session, route=message_routes.IDENT_SEARCH, message=search)

    async def _transaction(self, session: AsyncSession, tcr: str) -> Transaction:
        txn = await session.get(Transaction, tcr, with_for_update=True)
        if txn is None:
            raise NotFound(f"no transaction with TCN {shown(tcr)}")
        return txn

    async def _iaq_transaction(self, session: AsyncSession, tcr: str) -> Transaction:
        """The transaction of `tcr` when an IAQ went to LESC for it (pending or answered)."""
        txn = await self._transaction(session, tcr)
        if txn.status != TransactionStatus.IAQ_PENDING and txn.iar is None:
            raise NotFound(f"no IAQ with TCN {shown(tcr)}")
        return txn

    async def take_idr(self, session: AsyncSession, message: pb.IdrMessage) -> str:
        """IDR: no match goes to the SIB as a no-match IDR; a match becomes an IAQ to LESC."""
        if not message.HasField("idr"):
            raise InvalidArgument("idr is required")
        idr = message.idr
        if idr.match and not idr.fin:
            raise InvalidArgument("a matching IDR must carry the FIN")
        txn = await self._transaction(session, message.envelope.tcr)
        if txn.status == TransactionStatus.SRE_SENT:
            raise NotFound(f"no interoperability search with TCN {shown(txn.tcn)}")
        if txn.status != TransactionStatus.IDENT_PENDING:
            return f"IDR ignored: transaction is {txn.status}"
        txn.idr = to_json(idr)
        txn.updated_at = self.clock.now()
        if not idr.match:
            txn.status = TransactionStatus.ANSWERED
            response = sib_pb2.InteroperabilityResponse(
                envelope=self._envelope(MessageType.NO_MATCH_IDR, txn.tcn, txn.ori, dai=txn.ori),
                no_match=sib_pb2.NoMatchIdr(idr=idr),
            )
            self.outbox.add(session, route=message_routes.SIB_DELIVER_RESPONSE, message=response)
            return "no match"
        txn.status = TransactionStatus.IAQ_PENDING
        history = await self._history(session, txn.fbi_number)
        prior = common_pb2.CriminalHistory(
            fbi_number=txn.fbi_number, cycles=[c for c in history.cycles if c.tcn != txn.tcn]
        )
        iaq = lesc_pb2.Iaq(
            envelope=self._envelope(MessageType.IAQ, txn.tcn, txn.ori, dai=Agency.LESC.ori),
            pur="C",
            descriptors=from_json(txn.descriptors, common_pb2.Descriptors),
            cus="Y",
            off=list_from_json(txn.charges, common_pb2.Charge),
            arn=idr.a_number,
            fbi=txn.fbi_number,
            sid=txn.sid,
            booking_number=txn.booking_number,
            idr=idr,
            history=prior,
        )
        self.outbox.add(session, route=message_routes.LESC_SUBMIT_IAQ, message=iaq)
        return f"match FIN {idr.fin}"

    async def take_iaq_ack(self, session: AsyncSession, message: pb.IaqAcknowledgement) -> str:
        """LESC acknowledged the IAQ: the case id is recorded."""
        if not message.case_id:
            raise InvalidArgument("case_id is required")
        txn = await self._iaq_transaction(session, message.envelope.tcr)
        txn.iaq_case_id = message.case_id
        txn.updated_at = self.clock.now()
        return f"case {message.case_id}"

    async def take_iar(self, session: AsyncSession, message: pb.IarMessage) -> str:
        """IAR: the joint IDR/IAR goes to the SIB."""
        if not message.HasField("iar"):
            raise InvalidArgument("iar is required")
        txn = await self._iaq_transaction(session, message.envelope.tcr)
        if txn.status != TransactionStatus.IAQ_PENDING or txn.idr is None:
            return f"IAR ignored: transaction is {txn.status}"
        txn.iar = to_json(message.iar)
        txn.iaq_case_id = txn.iaq_case_id or message.iar.case_id
        txn.status = TransactionStatus.ANSWERED
        txn.updated_at = self.clock.now()
        response = sib_pb2.InteroperabilityResponse(
            envelope=self._envelope(MessageType.IDR_IAR, txn.tcn, txn.ori, dai=txn.ori),
            joint=sib_pb2.JointIdrIar(idr=from_json(txn.idr, common_pb2.Idr), iar=message.iar),
        )
        self.outbox.add(session, route=message_routes.SIB_DELIVER_RESPONSE, message=response)
        return f"IAR case {message.iar.case_id}"

    async def enroll_records(
        self, session: AsyncSession, records: Sequence[pb.CriminalRecord]
    ) -> list[str]:
        """Places criminal records (with prints and history) in the master file."""
        numbers: list[str] = []
        for i, record in enumerate(records):
            field_name = f"records[{i}]"
            check_descriptors(record.descriptors, field=f"{field_name}.descriptors")
            template = tenprint_from_proto(
                record.tenprint, dim=self.engine.dim, field=f"{field_name}.tenprint"
            )
            for j, cycle in enumerate(record.cycles):
                check_ori(cycle.ori, field=f"{field_name}.cycles[{j}].ori")
                check_date(cycle.doa, field=f"{field_name}.cycles[{j}].doa")
                check_charges(cycle.charges, field=f"{field_name}.cycles[{j}].charges")
            fbi_number = record.fbi_number or await self._unused_fbi_number(session)
            if record.fbi_number and await session.get(Subject, fbi_number) is not None:
                raise AlreadyExists(f"FBI number {fbi_number} is already on file")
            await self._add_subject(session, fbi_number, record.descriptors, template)
            await session.flush()  # the subject row must exist before its arrest cycles
            for cycle in record.cycles:
                session.add(
                    ArrestCycleRecord(
                        fbi_number=fbi_number,
                        ori=cycle.ori,
                        doa=cycle.doa,
                        sid=cycle.sid,
                        tcn=cycle.tcn,
                        charges=list_to_json(cycle.charges),
                    )
                )
            numbers.append(fbi_number)
        return numbers
