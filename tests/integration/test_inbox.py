"""The inbox's one call for every inbox RPC: processed once, refused with a reason, rolled back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.common.v1 import common_pb2
from scfed.sib.v1 import sib_pb2
from services.federation import Agency
from services.runtime import journal
from services.runtime.db import Database
from services.runtime.delivery import Inbox, Outbox, RetryPolicy
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.models import Direction, InboxMessage, RuntimeBase

TCN = "CJI0000000000000001"


@dataclass
class Received:
    """An inbox over a fresh SQLite database, and what its handlers were given."""

    db: Database
    inbox: Inbox
    seen: list[sib_pb2.SreMessage] = field(default_factory=list)

    async def take_sre(self, session: AsyncSession, message: sib_pb2.SreMessage) -> str:
        """Records the message and answers a detail for the journal."""
        self.seen.append(message)
        return f"identified {message.fbi_number}"

    async def inbox_rows(self) -> int:
        """How many message ids the inbox holds."""
        async with self.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(InboxMessage)) or 0)


@pytest.fixture
async def received(tmp_path: Path) -> AsyncIterator[Received]:
    """An inbox with its outbox over one SQLite file."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inbox.db'}")
    await db.connect([RuntimeBase.metadata])
    outbox = Outbox(db, service="sib", peers={}, policy=RetryPolicy())
    try:
        yield Received(db=db, inbox=Inbox(db, outbox))
    finally:
        await outbox.stop()
        await db.dispose()


def _sre(message_id: str = "m-1", *, tcr: str = TCN) -> sib_pb2.SreMessage:
    envelope = common_pb2.Envelope(
        message_id=message_id, tot="SRE", tcn="CJI0000000000000002", tcr=tcr, ori="NY0000000"
    )
    return sib_pb2.SreMessage(envelope=envelope, identification="I", fbi_number="123456AB7")


async def test_a_message_is_handed_to_its_handler_once_and_journaled(received: Received) -> None:
    message = _sre()
    ack = await received.inbox.take(message, peer=Agency.CJIS_IAFIS, handler=received.take_sre)
    assert ack == common_pb2.Ack(message_id="m-1", duplicate=False)
    assert received.seen == [message]
    (entry,) = await journal.entries_for(received.db, TCN)
    assert (entry.direction, entry.peer, entry.tot) == (Direction.RECEIVED, "cjis_iafis", "SRE")
    assert (entry.outcome, entry.detail) == ("processed", "identified 123456AB7")
    assert received.inbox.processed_here == 1


async def test_a_repeated_message_is_acknowledged_and_not_handled_again(
    received: Received,
) -> None:
    await received.inbox.take(_sre(), peer=Agency.CJIS_IAFIS, handler=received.take_sre)
    ack = await received.inbox.take(_sre(), peer=Agency.CJIS_IAFIS, handler=received.take_sre)
    assert ack == common_pb2.Ack(message_id="m-1", duplicate=True)
    assert len(received.seen) == 1
    outcomes = [e.outcome for e in await journal.entries_for(received.db, TCN)]
    assert outcomes == ["processed", "duplicate"]
    assert received.inbox.duplicates_here == 1


async def test_a_message_sent_without_its_envelope_is_refused(received: Received) -> None:
    bare = sib_pb2.SreMessage(identification="I", fbi_number="123456AB7")
    with pytest.raises(InvalidArgument, match="envelope is required"):
        await received.inbox.take(bare, peer=Agency.CJIS_IAFIS, handler=received.take_sre)
    assert received.seen == []
    assert await received.inbox_rows() == 0


async def test_a_follow_on_message_must_name_its_booking_and_an_opening_one_need_not(
    received: Received,
) -> None:
    with pytest.raises(InvalidArgument, match=r"envelope\.tcr"):
        await received.inbox.take(_sre(tcr=""), peer=Agency.CJIS_IAFIS, handler=received.take_sre)
    ack = await received.inbox.take(
        _sre(tcr=""), peer="sib", handler=received.take_sre, follow_on=False
    )
    assert not ack.duplicate
    assert len(received.seen) == 1


async def test_a_domain_refusal_is_journaled_rolled_back_and_the_retry_is_processed(
    received: Received,
) -> None:
    async def refuse(session: AsyncSession, message: sib_pb2.SreMessage) -> str:
        raise FailedPrecondition("no booking with that TCN")

    with pytest.raises(FailedPrecondition):
        await received.inbox.take(_sre(), peer=Agency.CJIS_IAFIS, handler=refuse)
    (entry,) = await journal.entries_for(received.db, TCN)
    assert entry.outcome == "refused"
    assert entry.detail == "FAILED_PRECONDITION: no booking with that TCN"
    assert await received.inbox_rows() == 0
    ack = await received.inbox.take(_sre(), peer=Agency.CJIS_IAFIS, handler=received.take_sre)
    assert not ack.duplicate
    assert len(received.seen) == 1


async def test_an_unexpected_error_rolls_back_without_a_journal_entry(received: Received) -> None:
    async def crash(session: AsyncSession, message: sib_pb2.SreMessage) -> str:
        raise RuntimeError("the handler broke")

    with pytest.raises(RuntimeError, match="the handler broke"):
        await received.inbox.take(_sre(), peer=Agency.CJIS_IAFIS, handler=crash)
    assert await journal.entries_for(received.db, TCN) == []
    assert await received.inbox_rows() == 0
    ack = await received.inbox.take(_sre(), peer=Agency.CJIS_IAFIS, handler=received.take_sre)
    assert not ack.duplicate
