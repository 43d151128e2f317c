"""Typed statuses keep the stored strings; bookings and CJIS transactions store protobuf JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import InstrumentedAttribute

from scfed.common.v1 import common_pb2
from services.cjis_iafis.models import Transaction, TransactionStatus
from services.ice_field.models import (
    CaseState,
    CaseStepRecord,
    DecisionAction,
    DecisionRecord,
    DetainerRecord,
    FlightRisk,
    IceFieldBase,
)
from services.lesc.models import CaseRecord, Route
from services.lesc.models import CaseState as LescCaseState
from services.runtime.db import Database, StrEnumType
from services.runtime.envelope import MessageType
from services.runtime.journal import JournalKey, counts_from_json, counts_to_json
from services.runtime.models import (
    AuditOutcome,
    AuditRecord,
    Direction,
    JournalRecord,
    OutboxMessage,
    OutboxStatus,
    Outcome,
    Purpose,
)
from services.runtime.proto_json import from_json, list_from_json, to_json
from services.sib import queries
from services.sib.api import BookingIn, to_submission
from services.sib.models import FINISHED, Booking, BookingStatus, ResponseRecord, SibBase

AT = datetime(2009, 10, 27, 9, 30, tzinfo=UTC)
SQLITE = sqlite.dialect()

# Every typed column, the strings it held before it was typed, and its VARCHAR length then.
TYPED_COLUMNS: list[tuple[InstrumentedAttribute[object], type[StrEnum], set[str], int]] = [
    (
        Booking.status,
        BookingStatus,
        {"awaiting_fbi_number", "submitted", "answered", "refused"},
        24,
    ),
    (Booking.tot, MessageType, {"CAR", "CPI"}, 8),
    (ResponseRecord.kind, MessageType, {"SRE", "ERRT", "NO-MATCH-IDR", "IDR/IAR", "I-247"}, 16),
    (
        Transaction.status,
        TransactionStatus,
        {"sre_sent", "ident_pending", "iaq_pending", "answered"},
        16,
    ),
    (Transaction.tot, MessageType, {"CAR", "CPI"}, 8),
    (CaseRecord.route, Route, {"automated", "analyst", "vtc"}, 12),
    (CaseRecord.state, LescCaseState, {"queued", "in_work", "answered"}, 12),
    (DecisionRecord.action, DecisionAction, {"detainer", "declined", "no_action"}, 16),
    (DetainerRecord.flight_risk, FlightRisk, {"low", "high"}, 8),
    (
        DetainerRecord.state,
        CaseState,
        {
            "detainer_issued",
            "release_noticed",
            "in_custody",
            "alternatives_to_detention",
            "in_proceedings",
            "final_order",
            "travel_document",
            "removed",
            "lapsed",
            "relief_granted",
        },
        32,
    ),
    (CaseStepRecord.to_state, CaseState, {s.value for s in CaseState}, 32),
    (CaseStepRecord.from_state, CaseState, {s.value for s in CaseState}, 32),
    (OutboxMessage.status, OutboxStatus, {"pending", "inflight", "delivered", "dead"}, 16),
    (JournalRecord.direction, Direction, {"sent", "received"}, 8),
    (
        JournalRecord.outcome,
        Outcome,
        {
            "processed",
            "duplicate",
            "refused",
            "delivered",
            "dead",
            "accepted",
            "relayed",
            "not_relayed",
            "fault",
        },
        16,
    ),
    (AuditRecord.purpose, Purpose, {"booking", "administrative"}, 16),
    (
        AuditRecord.outcome,
        AuditOutcome,
        {"match", "no_match", "read", "refused", "reset", "suspended", "resumed", "issued"},
        16,
    ),
]


@pytest.mark.parametrize(
    ("attribute", "enum", "old", "length"),
    TYPED_COLUMNS,
    ids=[f"{a.class_.__name__}.{a.key}" for a, *_ in TYPED_COLUMNS],
)
def test_every_typed_column_stores_the_strings_it_stored_before(
    attribute: InstrumentedAttribute[object], enum: type[StrEnum], old: set[str], length: int
) -> None:
    column_type = attribute.property.columns[0].type
    assert isinstance(column_type, StrEnumType) and column_type.enum is enum
    assert column_type.length == length
    stored = {column_type.process_bind_param(member, SQLITE) for member in enum}
    # The response kinds and a booking's TOT are a subset of the message types.
    assert old <= stored
    if enum is not MessageType:
        assert stored == old


def test_every_message_type_keeps_the_tot_written_before() -> None:
    assert {t.value for t in MessageType} == {
        "BOOKING",
        "CAR",
        "CPI",
        "SRE",
        "ERRT",
        "IDENT-SEARCH",
        "IDR",
        "NO-MATCH-IDR",
        "IAQ",
        "IAQ-ACK",
        "IAR",
        "IAR-COPY",
        "IDR/IAR",
        "I-247",
        "ENCOUNTER",
        "RELEASE",
    }


def test_a_booking_is_finished_once_answered_or_refused() -> None:
    assert {BookingStatus.ANSWERED, BookingStatus.REFUSED} == FINISHED
    assert [s for s in BookingStatus if s.finished] == [
        BookingStatus.ANSWERED,
        BookingStatus.REFUSED,
    ]
    # Statuses read from JSON are plain strings: the set still answers for them.
    assert "answered" in FINISHED and "submitted" not in FINISHED


@pytest.fixture
async def sib_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SIB and an ICE field office database in one SQLite file."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stored.db'}")
    await db.connect([SibBase.metadata, IceFieldBase.metadata])
    try:
        yield db
    finally:
        await db.dispose()


def _booking(tcn: str, status: BookingStatus, charges: list[common_pb2.Charge]) -> Booking:
    return Booking(
        tcn=tcn,
        ori="CA0190000",
        booking_number=f"B-{tcn}",
        sid="CA0001",
        tot=MessageType.CPI,
        descriptors=to_json(common_pb2.Descriptors(nam="DOE,JOHN", sex="M")),
        charges=[to_json(c) for c in charges],
        doa="20091027",
        prints_sha256="0" * 64,
        status=status,
        expects_idr=True,
        accepted_at=AT,
    )


async def test_rows_read_raw_hold_the_plain_strings_and_read_back_as_members(
    sib_db: Database,
) -> None:
    async with sib_db.session() as session:
        session.add(_booking("T1", BookingStatus.AWAITING_FBI_NUMBER, []))
        session.add(
            ResponseRecord(
                tcn="T1",
                ori="CA0190000",
                kind=MessageType.IDR_IAR,
                relayed=False,
                body={},
                received_at=AT,
            )
        )
        session.add(
            DetainerRecord(
                detainer_id="I247-1",
                tcn="T1",
                field_office="CAICE0100",
                lea_ori="CA0190000",
                level=1,
                state=CaseState.ATD,
                issued_at=AT,
                body=b"",
            )
        )
        await session.flush()
        session.add(
            CaseStepRecord(
                detainer_id="I247-1", from_state=None, to_state=CaseState.DETAINER_ISSUED, at=AT
            )
        )
    async with sib_db.session() as session:
        raw = (await session.execute(text("SELECT status, tot FROM bookings"))).one()
        assert tuple(raw) == ("awaiting_fbi_number", "CPI")
        assert (await session.scalar(text("SELECT kind FROM responses"))) == "IDR/IAR"
        detainer = (await session.execute(text("SELECT state, flight_risk FROM detainers"))).one()
        assert tuple(detainer) == ("alternatives_to_detention", "low")
        step = (await session.execute(text("SELECT from_state, to_state FROM case_steps"))).one()
        assert tuple(step) == ("", "detainer_issued")

        booking = await session.get(Booking, "T1")
        assert booking is not None and booking.status is BookingStatus.AWAITING_FBI_NUMBER
        assert booking.tot is MessageType.CPI
        first_step = await session.scalar(select(CaseStepRecord))
        assert first_step is not None
        assert first_step.from_state is None and first_step.to_state is CaseState.DETAINER_ISSUED


async def test_a_string_outside_the_enum_is_refused_on_write(sib_db: Database) -> None:
    with pytest.raises(StatementError, match="not a valid BookingStatus"):
        async with sib_db.session() as session:
            booking = _booking("T2", BookingStatus.SUBMITTED, [])
            booking.status = "answred"  # type: ignore[assignment]
            session.add(booking)


async def test_a_page_of_bookings_by_a_status_no_booking_can_have_is_empty(
    sib_db: Database,
) -> None:
    async with sib_db.session() as session:
        session.add(_booking("T3", BookingStatus.SUBMITTED, []))
    async with sib_db.session() as session:
        found = await queries.bookings(session, status="submitted", limit=10, offset=0)
        assert [b.tcn for b in found] == ["T3"]
        assert await queries.bookings(session, status="vacation", limit=10, offset=0) == []


def test_journal_keys_are_written_direction_tot_outcome_on_the_wire() -> None:
    key = JournalKey(Direction.RECEIVED, MessageType.IDR_IAR, Outcome.PROCESSED)
    assert str(key) == "received:IDR/IAR:processed"
    assert JournalKey.parse(str(key)) == key
    # A peer's own TOT is counted as it came.
    assert JournalKey.parse("received:X-FOO:refused").tot == "X-FOO"
    counts = {key: 3, JournalKey(Direction.SENT, MessageType.CAR, Outcome.DELIVERED): 1}
    assert counts_to_json(counts) == {"received:IDR/IAR:processed": 3, "sent:CAR:delivered": 1}
    assert counts_from_json(counts_to_json(counts)) == counts
    for junk in ("sent:CAR", "sideways:CAR:delivered", "sent:CAR:lost"):
        with pytest.raises(ValueError):
            JournalKey.parse(junk)


def _booking_in(dispositions: list[str]) -> BookingIn:
    return BookingIn.model_validate(
        {
            "ori": "CA0190000",
            "booking_number": "B-1",
            "descriptors": {"nam": "DOE,JOHN", "dob": "19800101", "sex": "M"},
            "fingers": [{"position": 1, "template": [0.5] * 4, "quality": 80}],
            "charges": [
                {"ncic_code": f"13{i:02d}", "disposition": d, "sentence_days": i * 10}
                for i, d in enumerate(dispositions)
            ],
        }
    )


def test_the_edge_converts_the_leas_charges_to_the_contracts_messages() -> None:
    body = _booking_in(["charged", "convicted", "dismissed", "acquitted"])
    submission = to_submission(body, "20091027")
    assert [(c.ncic_code, c.disposition, c.sentence_days) for c in submission.charges] == [
        ("1300", common_pb2.DISPOSITION_CHARGED, 0),
        ("1301", common_pb2.DISPOSITION_CONVICTED, 10),
        ("1302", common_pb2.DISPOSITION_DISMISSED, 20),
        ("1303", common_pb2.DISPOSITION_ACQUITTED, 30),
    ]
    assert submission.descriptors == common_pb2.Descriptors(nam="DOE,JOHN", dob="19800101", sex="M")
    assert submission.doa == "20091027"


def test_a_booking_is_stored_as_the_protobuf_json_of_its_messages_and_read_back_whole() -> None:
    submission = to_submission(_booking_in(["charged", "convicted"]), "20091027")
    stored = _booking("T4", BookingStatus.SUBMITTED, list(submission.charges))
    stored.descriptors = to_json(submission.descriptors)
    stored.prints_sha256 = submission.prints_sha256()
    assert stored.charges[1] == {
        "ncic_code": "1301",
        "disposition": "DISPOSITION_CONVICTED",
        "sentence_days": 10,
    }
    assert stored.descriptors == {"nam": "DOE,JOHN", "dob": "19800101", "sex": "M"}
    assert list_from_json(stored.charges, common_pb2.Charge) == list(submission.charges)
    assert from_json(stored.descriptors, common_pb2.Descriptors) == submission.descriptors
    assert submission.same_as(stored)
    other_prints = to_submission(_booking_in(["charged", "convicted"]), "20091027")
    other_prints.tenprint.fingers[0].quality = 81
    assert not other_prints.same_as(stored)
    assert not to_submission(_booking_in(["charged", "dismissed"]), "20091027").same_as(stored)
    assert not to_submission(_booking_in(["charged", "convicted"]), "20091028").same_as(stored)
