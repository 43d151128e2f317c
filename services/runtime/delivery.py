"""At-least-once delivery, processed once: a transactional outbox and an idempotent inbox.

The sender writes a message to its outbox in the transaction of the state change that caused
it; a worker delivers it with a deadline, retries with exponential backoff and full jitter, and
moves it to the visible ``dead`` state after too many attempts or a permanent refusal. The
receiver records the message id in its inbox in the same transaction as the processing, so a
repeated id is acknowledged again and not processed twice. A crash at any point loses nothing:
before the sender commits, nothing happened; after, the worker (or another replica, once the
lease runs out) delivers; before the receiver commits, the sender retries; after, the retry is a
duplicate.

A message is sent as soon as the transaction that wrote it commits, by the process that wrote
it (the direct path): it is written not yet due for the worker's poll (a claim's lease ahead),
handed to a pool of senders on commit, and its outcome is settled with others in one
transaction; a failed call is retried by the poll with the usual backoff. The poll also takes
what the direct path did not finish: a stop makes the rows still queued, and those whose call
it cut off, due at once; a crash between the commit and the settle, or a settle that failed,
leaves the row to fall due when its lease runs out (the receiver's inbox answers a repeat as
such). A message written while the worker is stopped is due for the poll at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, TypeVar

import grpc
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.common.v1 import common_pb2

from . import journal, tracing
from .db import Database, is_unavailable
from .envelope import check_envelope
from .errors import DomainError
from .faults import Call, FaultRules, FaultSide, Injected, apply_sending
from .logs import log_context
from .message_routes import EnvelopedMessage, RequestT, Route
from .metrics import DeliveryMetrics, SentOutcome
from .models import Direction, InboxMessage, OutboxMessage, OutboxStatus, Outcome
from .periodic import AT_ONCE, PeriodicTask
from .tls import ChannelFactory, insecure_channels

log = logging.getLogger(__name__)

# Where a session keeps the rows it wrote for the direct path (see Outbox._send_on_commit).
_DIRECT_ROWS = "scfed.outbox.direct"

# Refusals that another attempt cannot cure: the message goes to the dead-letter state at once.
PERMANENT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


class ReceivedMessage(EnvelopedMessage, Protocol):
    """An enveloped message as an RPC receives it: it tells whether the envelope was sent."""

    def HasField(self, field_name: Literal["envelope"], /) -> bool:
        """True when the sender set the field."""
        ...


Received = TypeVar("Received", bound=ReceivedMessage)

DeadLetterHook = Callable[[AsyncSession, OutboxMessage], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a message is retried."""

    max_attempts: int = 60
    base_delay_s: float = 0.1
    max_delay_s: float = 5.0
    deadline_s: float = 10.0

    def delay_after(self, attempt: int) -> float:
        """Backoff before the next attempt: exponential, capped, with full jitter."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** min(attempt, 30)))
        return random.uniform(min(self.base_delay_s / 2, ceiling), ceiling)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def peer_addresses(address: str) -> list[str]:
    """The host:port entries of a `*_ADDR` value, which may list several, comma-separated."""
    return [part.strip() for part in address.split(",") if part.strip()]


class Outbox:
    """The sending half: enqueue in a transaction, deliver from a background worker."""

    def __init__(
        self,
        db: Database,
        *,
        service: str,
        peers: dict[str, str],
        policy: RetryPolicy,
        batch: int = 64,
        poll_s: float = 0.5,
        faults: FaultRules | None = None,
        channels: ChannelFactory = insecure_channels,
        metrics: DeliveryMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._db = db
        # The host's tracer (runtime/tracing.py); None with tracing off: no span, no context.
        self.tracer = tracer
        # What it counts for /metrics, once each settle has committed (the host's registry).
        self.metrics = metrics if metrics is not None else DeliveryMetrics()
        # Opens the channel to a peer: plaintext, or mutual TLS with this service's certificate.
        self._open_channel = channels
        # The sending side's fault rules, applied to each delivery.
        self._faults = faults
        self._service = service
        self._peers = dict(peers)
        self._policy = policy
        self._batch = batch
        self._poll_s = poll_s
        self._worker = PeriodicTask(f"{service}-outbox", self._deliver_round, poll_s=poll_s)
        # The direct path: rows written while the worker runs, sent on commit by `_senders`
        # tasks, their outcomes settled together by one more.
        self._direct: asyncio.Queue[OutboxMessage] = asyncio.Queue()
        self._outcomes: list[tuple[OutboxMessage, grpc.StatusCode | str | None]] = []
        self._outcome_ready = asyncio.Event()
        self._direct_tasks: list[asyncio.Task[None]] = []
        # The rows whose call is under way, by id (a stop cuts them off).
        self._sending: dict[int, OutboxMessage] = {}
        self._senders = max(16, batch * 4)
        # How long a claim holds a message; a row for the direct path is written not due for
        # the poll until as long after.
        self._lease = timedelta(seconds=policy.deadline_s * 2 + 5)
        # A peer's address may list several replicas ("h1:p1,h2:p2"): one channel each, used
        # in turn, so every replica of the peer gets a share of the messages.
        self._channels: dict[str, list[grpc.aio.Channel]] = {}
        self._turn: dict[str, int] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._dead_hooks: dict[str, DeadLetterHook] = {}
        # Deliveries by this process (the database's counts are every replica's together),
        # and the calls it made to deliver them (retries included).
        self.delivered_here = 0
        self.calls_here = 0

    def on_dead_letter(self, tot: str, hook: DeadLetterHook) -> None:
        """Calls `hook` in the transaction that dead-letters a message of type `tot`."""
        self._dead_hooks[tot] = hook

    def set_peer(self, peer: str, address: str) -> None:
        """Points deliveries for `peer` at a new address.

        The old channel is closed only after a deadline's grace, so a call in flight on it
        ends on its own terms instead of being cancelled under the worker.
        """
        self._peers[peer] = address
        grace = self._policy.deadline_s + 1.0
        for old in self._channels.pop(peer, []):
            task = asyncio.get_running_loop().create_task(old.close(grace=grace))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def add(
        self,
        session: AsyncSession,
        *,
        route: Route[RequestT],
        message: RequestT,
    ) -> None:
        """Writes `message` for `route`'s peer into the outbox, inside the caller's transaction.

        Raises TypeError when `message` is not the route's request class (which mypy also
        refuses), or when this service is not the route's sender, so a message never waits in
        the outbox for a method that cannot take it or a peer that would refuse the caller.
        """
        if type(message) is not route.request:
            raise TypeError(
                f"{route.path} takes {route.request.__name__}, not {type(message).__name__}"
            )
        if route.sender != self._service:
            raise TypeError(f"{route.path} is sent by {route.sender}, not by {self._service}")
        envelope = message.envelope
        now = _utcnow()
        direct = self.running
        row = OutboxMessage(
            message_id=envelope.message_id,
            peer=route.peer,
            method=route.path,
            tot=envelope.tot,
            tcn=envelope.tcr or envelope.tcn,
            payload=message.SerializeToString(),
            status=OutboxStatus.PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now + self._lease if direct else now,
        )
        if self.tracer is not None:
            # The writer's span is the parent of the message's wait and delivery spans.
            row.traceparent, row.tracestate = tracing.current_headers()
        session.add(row)
        if direct:
            self._send_on_commit(session, row)

    async def written(
        self, session: AsyncSession, *, route: Route[RequestT], tcn: str
    ) -> list[RequestT]:
        """The messages this service wrote for `route` in booking `tcn`, oldest first, whatever
        became of them: the outbox keeps delivered and dead messages as it wrote them."""
        payloads = await session.scalars(
            select(OutboxMessage.payload)
            .where(OutboxMessage.method == route.path, OutboxMessage.tcn == tcn)
            .order_by(OutboxMessage.id)
        )
        messages = []
        for payload in payloads:
            message = route.request()
            message.ParseFromString(payload)
            messages.append(message)
        return messages

    def _send_on_commit(self, session: AsyncSession, row: OutboxMessage) -> None:
        """Queues `row` for the direct path once `session`'s transaction commits (a rollback
        drops it with the transaction)."""
        rows: list[OutboxMessage] | None = session.info.get(_DIRECT_ROWS)
        if rows is None:
            rows = session.info[_DIRECT_ROWS] = []
            queued = rows

            def committed(_session: object) -> None:
                for item in queued:
                    self._direct.put_nowait(_detached(item))

            event.listen(session.sync_session, "after_commit", committed, once=True)
        rows.append(row)

    @contextlib.asynccontextmanager
    async def continuing_trace(
        self, session: AsyncSession, tcn: str, name: str
    ) -> AsyncIterator[None]:
        """A span `name` in which the messages written carry on `tcn`'s trace (its latest
        journal entry's), for work no traced request started: an analyst's answer, an LEA's
        later notice. Nothing at all with tracing off."""
        if self.tracer is None:
            yield
            return
        ids = await journal.last_trace(session, tcn)
        with tracing.continued(self.tracer, name, ids, {"scfed.tcn": tcn}):
            yield

    def notify(self) -> None:
        """Wakes the worker: something was committed to the outbox. While the direct path
        runs, what was committed is already on its way, and the worker sleeps on."""
        if not self._direct_tasks:
            self._worker.notify()

    def start(self) -> None:
        """Starts the delivery worker and the direct path's senders."""
        self._worker.start()
        if not self._direct_tasks:
            loop = asyncio.get_running_loop()
            self._direct_tasks = [
                loop.create_task(self._direct_sender(), name=f"{self._service}-send-{i}")
                for i in range(self._senders)
            ]
            self._direct_tasks.append(
                loop.create_task(self._direct_settler(), name=f"{self._service}-settle")
            )

    @property
    def running(self) -> bool:
        """True while the worker is alive."""
        return self._worker.running

    async def stop(self) -> None:
        """Stops the worker and closes peer channels; undelivered messages stay pending (the
        outcomes of calls already made are settled first, where the database answers)."""
        await self._worker.stop()
        for task in self._direct_tasks:
            task.cancel()
        await asyncio.gather(*self._direct_tasks, return_exceptions=True)
        self._direct_tasks = []
        await self._release_direct()
        for channels in self._channels.values():
            for channel in channels:
                await channel.close()
        self._channels.clear()
        for task in list(self._closing):
            task.cancel()

    async def stats(self) -> dict[str, int]:
        """Message counts by status."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            counts = {str(status): 0 for status in OutboxStatus}
            counts.update({str(status): int(n) for status, n in rows})
            return counts

    async def dead_letters(self, limit: int = 100) -> list[OutboxMessage]:
        """The messages in the dead-letter state, newest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.DEAD)
                .order_by(OutboxMessage.id.desc())
                .limit(limit)
            )
            return list(rows)

    async def requeue_dead(self) -> int:
        """Puts every dead letter back in the queue for a fresh set of attempts."""
        async with self._db.session() as session:
            dead = OutboxMessage.status == OutboxStatus.DEAD
            rows = list(await session.scalars(select(OutboxMessage).where(dead)))
            now = _utcnow()
            for row in rows:
                row.status = OutboxStatus.PENDING
                row.attempts = 0
                row.next_attempt_at = now
        self._worker.notify()
        return len(rows)

    async def _direct_sender(self) -> None:
        """Sends rows of the direct path in the order they were committed. Under a backlog
        longer than the hold, the poll may claim and send a queued row too: the receiver's
        inbox takes the second copy as a repeat, and whichever settle finds the row still
        pending (direct) or claimed (poll) records it."""
        while True:
            row = await self._direct.get()
            self._sending[row.id] = row
            try:
                outcome = await self._send(row)
            except Exception as exc:  # a sender must outlive any one message: retry it later
                log.exception("%s outbox: sending %s %s", self._service, row.tot, row.message_id)
                outcome = row.last_error = f"{type(exc).__name__}: {exc}"
            del self._sending[row.id]  # (a cancelled call leaves it there, for the stop)
            self._outcomes.append((row, outcome))
            self._outcome_ready.set()

    async def _direct_settler(self) -> None:
        """Settles the direct path's outcomes, as many at once as have come in."""
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            outcomes, self._outcomes = self._outcomes, []
            try:
                await self._settle_direct(outcomes)
            except Exception as exc:  # the rows stay pending: the poll delivers them again
                if not is_unavailable(exc):
                    log.exception("%s outbox: settling %d messages", self._service, len(outcomes))

    async def _settle_direct(
        self, outcomes: list[tuple[OutboxMessage, grpc.StatusCode | str | None]]
    ) -> None:
        """Records the direct path's outcomes in one transaction: the delivered rows with one
        UPDATE, a failed one as the poll's settle records it (retry later, or dead)."""
        now = _utcnow()
        delivered = {row.id: row for row, outcome in outcomes if outcome is None}
        settled: list[tuple[OutboxMessage, SentOutcome]] = []
        async with self._db.session() as session:
            if delivered:
                result = await session.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id.in_(delivered),
                        OutboxMessage.status == OutboxStatus.PENDING,
                    )
                    .values(
                        status=OutboxStatus.DELIVERED,
                        delivered_at=now,
                        attempts=OutboxMessage.attempts + 1,
                        last_error=None,
                    )
                    .returning(OutboxMessage.id)
                    .execution_options(synchronize_session=False)
                )
                for row_id in result.scalars():
                    self.delivered_here += 1
                    row = delivered[row_id]
                    row.attempts += 1
                    self._journal(session, row, Outcome.DELIVERED, "after 1 attempt(s)")
                    settled.append((row, SentOutcome.DELIVERED))
            for sent, outcome in outcomes:
                if outcome is None:
                    continue
                failed = await session.get(OutboxMessage, sent.id, with_for_update=True)
                if failed is None or failed.status != OutboxStatus.PENDING:
                    continue
                failed.attempts += 1
                error = sent.last_error or str(outcome)
                settled.append((failed, await self._failed(session, failed, error, outcome, now)))
        self._settled(settled)

    async def _release_direct(self) -> None:
        """At stop: settles the calls already made, and makes the rows still queued, and those
        whose call the stop cut off, due now, so the next start (or another replica) sends them
        without waiting out their hold (a cut-off call may have arrived: the inbox knows)."""
        outcomes, self._outcomes = self._outcomes, []
        queued = list(self._sending.values())
        self._sending.clear()
        while not self._direct.empty():
            queued.append(self._direct.get_nowait())
        try:
            if outcomes:
                await self._settle_direct(outcomes)
            if queued:
                async with self._db.session() as session:
                    await session.execute(
                        update(OutboxMessage)
                        .where(
                            OutboxMessage.id.in_([row.id for row in queued]),
                            OutboxMessage.status == OutboxStatus.PENDING,
                        )
                        .values(next_attempt_at=_utcnow())
                        .execution_options(synchronize_session=False)
                    )
        except Exception as exc:  # a database gone at shutdown: the holds run out instead
            log.warning("%s outbox: at stop, %s", self._service, exc)

    async def _deliver_round(self) -> float | None:
        """One round of the worker; returns the pause until the next (None: the poll interval)."""
        delivered, next_due = await self.run_once()
        if delivered >= self._batch:
            return AT_ONCE
        if next_due is None:
            return None
        return max(0.0, min(self._poll_s, (next_due - _utcnow()).total_seconds()))

    async def run_once(self) -> tuple[int, datetime | None]:
        """Delivers one batch of due messages; returns how many were tried and the next due."""
        claimed = await self._claim()
        if not claimed:
            return 0, await self._next_due()
        results = await asyncio.gather(*(self._send(row) for row in claimed))
        return len(claimed), await self._settle(list(zip(claimed, results, strict=True)))

    async def _claim(self) -> list[OutboxMessage]:
        now = _utcnow()
        lease = self._lease
        async with self._db.session() as session:
            due = or_(
                and_(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.next_attempt_at <= now,
                ),
                and_(
                    OutboxMessage.status == OutboxStatus.INFLIGHT,
                    OutboxMessage.lease_until < now,
                ),
            )
            rows = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(due)
                    .order_by(OutboxMessage.id)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                row.status = OutboxStatus.INFLIGHT
                row.lease_until = now + lease
                row.attempts += 1
            return rows

    async def _next_due(self) -> datetime | None:
        async with self._db.session() as session:
            return await self._min_due(session)

    @staticmethod
    async def _min_due(session: AsyncSession) -> datetime | None:
        return await session.scalar(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == OutboxStatus.PENDING
            )
        )

    def _channel(self, peer: str) -> grpc.aio.Channel | None:
        """The next channel to `peer`, round-robin over the addresses it lists."""
        channels = self._channels.get(peer)
        if channels is None:
            addresses = peer_addresses(self._peers.get(peer, ""))
            if not addresses:
                return None
            # round_robin also spreads over the addresses one DNS name resolves to (Compose's
            # `--scale`, a Kubernetes headless Service); the default pick_first would stick to one.
            # gRPC's own reconnect backoff grows to two minutes while a peer is down: a peer
            # back after a restart would wait that long for its mail. Reconnect at least as often
            # as the outbox retries.
            options = [
                ("grpc.lb_policy_name", "round_robin"),
                ("grpc.max_reconnect_backoff_ms", max(1000, int(self._policy.max_delay_s * 1000))),
            ]
            channels = [self._open_channel(peer, address, options) for address in addresses]
            self._channels[peer] = channels
        turn = self._turn.get(peer, 0)
        self._turn[peer] = turn + 1
        return channels[turn % len(channels)]

    async def _send(self, row: OutboxMessage) -> grpc.StatusCode | str | None:
        """None on success; a status code, or a reason string when no call was made. With
        tracing on, the row's wait and this attempt are spans of the trace that wrote it."""
        if self.tracer is None:
            return await self._attempt(row, None)
        parent = tracing.context_from(row.traceparent, row.tracestate)
        attributes = _span_attributes(row)
        tracing.record_wait(self.tracer, parent, row.created_at, attributes)
        with self.tracer.start_as_current_span(
            "outbox.deliver",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={
                **attributes,
                "rpc.system": "grpc",
                "rpc.method": row.method,
                "scfed.attempt": row.attempts + (0 if row.status == OutboxStatus.INFLIGHT else 1),
            },
        ) as span:
            outcome = await self._attempt(row, tracing.metadata())
            if outcome is None:
                span.set_attribute("scfed.outcome", "delivered")
            else:
                span.set_attribute("scfed.outcome", str(getattr(outcome, "name", outcome)))
                span.set_status(Status(StatusCode.ERROR, row.last_error or str(outcome)))
            return outcome

    async def _attempt(
        self, row: OutboxMessage, metadata: tuple[tuple[str, str], ...] | None
    ) -> grpc.StatusCode | str | None:
        """One delivery of `row`, with `metadata`: the sending side's fault rules may delay,
        refuse, drop or cut it off first."""
        if self._faults is None or not self._faults.active:
            return await self._call(row, metadata)
        call = Call(
            side=FaultSide.SEND,
            method=row.method,
            message_type=row.tot,
            peer=row.peer,
            tcn=row.tcn,
            message_id=row.message_id,
        )
        result = await apply_sending(
            self._faults,
            call,
            lambda: self._call(row, metadata),
            deadline_s=self._policy.deadline_s,
        )
        if isinstance(result, Injected):
            row.last_error = result.error
            return result.code
        return result

    async def _call(
        self, row: OutboxMessage, metadata: tuple[tuple[str, str], ...] | None
    ) -> grpc.StatusCode | str | None:
        """Delivers `row` to its peer (the trace context in `metadata`): None on success, as
        `_send` otherwise."""
        channel = self._channel(row.peer)
        if channel is None:
            return f"no address configured for peer {row.peer!r}"
        call = channel.unary_unary(
            row.method,
            request_serializer=None,
            response_deserializer=common_pb2.Ack.FromString,
        )
        self.calls_here += 1
        try:
            await call(row.payload, timeout=self._policy.deadline_s, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            row.last_error = f"{exc.code().name}: {exc.details()}"
            return exc.code()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the worker itself is stopping
            row.last_error = "call cancelled (its channel was closed); will retry"
            return row.last_error
        except Exception as exc:  # a broken channel must not take the worker down
            row.last_error = f"{type(exc).__name__}: {exc}"
            return row.last_error
        return None

    async def _settle(
        self, outcomes: list[tuple[OutboxMessage, grpc.StatusCode | str | None]]
    ) -> datetime | None:
        """Records each outcome; returns when the next pending message is due."""
        now = _utcnow()
        settled: list[tuple[OutboxMessage, SentOutcome]] = []
        async with self._db.session() as session:
            for claimed, outcome in outcomes:
                row = await session.get(OutboxMessage, claimed.id, with_for_update=True)
                if row is None or row.status != OutboxStatus.INFLIGHT:
                    continue
                row.lease_until = None
                if outcome is None:
                    self.delivered_here += 1
                    row.status = OutboxStatus.DELIVERED
                    row.delivered_at = now
                    row.last_error = None
                    attempts = f"after {row.attempts} attempt(s)"
                    self._journal(session, row, Outcome.DELIVERED, attempts)
                    settled.append((row, SentOutcome.DELIVERED))
                    continue
                error = claimed.last_error or str(outcome)
                settled.append((row, await self._failed(session, row, error, outcome, now)))
            next_due = await self._min_due(session)
        self._settled(settled)
        return next_due

    def _settled(self, settled: list[tuple[OutboxMessage, SentOutcome]]) -> None:
        """Counts and logs the attempts a settle recorded, once its transaction committed."""
        for row, outcome in settled:
            self.metrics.sent(row.tot, outcome, created_at=row.created_at)
        self._log_sent(settled)

    async def _failed(
        self,
        session: AsyncSession,
        row: OutboxMessage,
        error: str,
        outcome: grpc.StatusCode | str,
        now: datetime,
    ) -> SentOutcome:
        """Records a failed attempt: dead after a permanent refusal or the last attempt (with
        the TOT's dead-letter hook), otherwise pending again after a backoff; returns which."""
        row.last_error = error
        permanent = isinstance(outcome, grpc.StatusCode) and outcome in PERMANENT_CODES
        if permanent or row.attempts >= self._policy.max_attempts:
            row.status = OutboxStatus.DEAD
            self._journal(session, row, Outcome.DEAD, row.last_error or "")
            hook = self._dead_hooks.get(row.tot)
            if hook is not None:
                await hook(session, row)
            return SentOutcome.DEAD
        row.status = OutboxStatus.PENDING
        row.next_attempt_at = now + timedelta(seconds=self._policy.delay_after(row.attempts))
        return SentOutcome.RETRY

    def _log_sent(self, settled: list[tuple[OutboxMessage, SentOutcome]]) -> None:
        """One line for each attempt settled, once its transaction committed: delivered or
        retry at INFO, dead at WARNING, with the attempts so far and the last error."""
        for row, outcome in settled:
            level = logging.WARNING if outcome == SentOutcome.DEAD else logging.INFO
            if not log.isEnabledFor(level):
                continue
            result = str(outcome)
            fields: dict[str, object] = {
                "tcn": row.tcn,
                "message_id": row.message_id,
                "tot": row.tot,
                "peer": row.peer,
                "outcome": result,
                "attempts": row.attempts,
            }
            trace_id = tracing.trace_id_of(row.traceparent)
            if trace_id is not None:
                fields["trace_id"] = trace_id
            why = ""
            if outcome != SentOutcome.DELIVERED:
                fields["error"] = row.last_error
                why = f": {row.last_error}"
            log.log(
                level,
                "%s outbox: %s %s to %s: %s after %d attempt(s)%s",
                self._service,
                row.tot,
                row.message_id,
                row.peer,
                result,
                row.attempts,
                why,
                extra=fields,
            )

    def _journal(
        self, session: AsyncSession, row: OutboxMessage, outcome: Outcome, detail: str = ""
    ) -> None:
        # Stamped with the time the message was written, so a trace reads in causal order.
        journal.record(
            session,
            message_id=row.message_id,
            tcn=row.tcn,
            tot=row.tot,
            direction=Direction.SENT,
            peer=row.peer,
            outcome=outcome,
            detail=detail,
            at=row.created_at,
            trace=tracing.ids_of(row.traceparent),
        )


def _span_attributes(row: OutboxMessage) -> dict[str, str | int]:
    """What a message's spans say about it."""
    return {
        "scfed.tot": row.tot,
        "scfed.tcn": row.tcn,
        "scfed.message_id": row.message_id,
        "scfed.peer": row.peer,
    }


def _detached(row: OutboxMessage) -> OutboxMessage:
    """A copy of a just-committed row that belongs to no session, for the direct path to
    note its outcome on while the writing session closes."""
    return OutboxMessage(
        id=row.id,
        message_id=row.message_id,
        peer=row.peer,
        method=row.method,
        tot=row.tot,
        tcn=row.tcn,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        traceparent=row.traceparent,
        tracestate=row.tracestate,
    )


Handler = Callable[[AsyncSession], Awaitable[str | None]]
# The domain's handler of one received message type, with the message as its second argument.
MessageHandler = Callable[[AsyncSession, Received], Awaitable[str | None]]


class Inbox:
    """The receiving half: persist the message id and process it in one transaction."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox
        self._tracer = outbox.tracer
        # Counted with the sending half's metrics: one registry per host.
        self._metrics = outbox.metrics
        # Messages this process processed or found repeated (not other replicas').
        self.processed_here = 0
        self.duplicates_here = 0

    async def receive(
        self,
        message: EnvelopedMessage,
        *,
        has_envelope: bool,
        peer: str,
        handler: Handler,
        follow_on: bool = True,
    ) -> common_pb2.Ack:
        """Processes `message` once; a repeated message id is acknowledged, not reprocessed.

        `handler` runs inside the transaction and may return a detail for the journal. A
        DomainError from it rolls everything back, is journaled as refused, and propagates.
        """
        envelope = message.envelope
        tcn = check_envelope(envelope, has_envelope=has_envelope, follow_on=follow_on)
        received_at = _utcnow()
        began = time.perf_counter()
        record = functools.partial(
            journal.record,
            message_id=envelope.message_id,
            tcn=tcn,
            tot=envelope.tot,
            direction=Direction.RECEIVED,
            peer=peer,
        )
        with contextlib.ExitStack() as stack:
            span = None
            if self._tracer is not None:
                attributes = {
                    "scfed.tot": envelope.tot,
                    "scfed.tcn": tcn,
                    "scfed.message_id": envelope.message_id,
                    "scfed.peer": peer,
                }
                span = stack.enter_context(
                    self._tracer.start_as_current_span("inbox.receive", attributes=attributes)
                )
            # Every line the handler logs carries the message's fields too.
            stack.enter_context(
                log_context(
                    tcn=tcn,
                    message_id=envelope.message_id,
                    tot=envelope.tot,
                    peer=peer,
                    trace_id=tracing.current_ids()[0],
                )
            )
            try:
                async with self._db.session() as session:
                    insert = self._db.insert_ignoring_conflicts(
                        InboxMessage.__table__, ["message_id"]
                    ).values(
                        message_id=envelope.message_id,
                        tot=envelope.tot,
                        tcn=tcn,
                        peer=peer,
                        received_at=received_at,
                    )
                    result = await session.execute(insert)
                    duplicate = result.rowcount == 0  # type: ignore[attr-defined]
                    if duplicate:
                        outcome, detail = Outcome.DUPLICATE, ""
                    else:
                        detail = await handler(session) or ""
                        outcome = Outcome.PROCESSED
                    record(session, outcome=outcome, detail=detail, at=received_at)
            except DomainError as exc:
                error = f"{exc.status}: {exc.message}"
                async with self._db.session() as session:
                    record(session, outcome=Outcome.REFUSED, detail=error)
                self._metrics.received(envelope.tot, Outcome.REFUSED)
                self._log_received(envelope, tcn, peer, Outcome.REFUSED, began, error=error)
                if span is not None:
                    span.set_attribute("scfed.outcome", str(Outcome.REFUSED))
                    span.set_status(Status(StatusCode.ERROR, error))
                raise
            if span is not None:
                span.set_attribute("scfed.outcome", str(outcome))
            self._metrics.received(envelope.tot, outcome)
            self._log_received(envelope, tcn, peer, outcome, began)
        if duplicate:
            self.duplicates_here += 1
        else:
            self.processed_here += 1
            self._outbox.notify()
        return common_pb2.Ack(message_id=envelope.message_id, duplicate=duplicate)

    async def take(
        self,
        message: Received,
        *,
        peer: str,
        handler: MessageHandler[Received],
        follow_on: bool = True,
    ) -> common_pb2.Ack:
        """Receives an RPC's `message` from `peer` once, processed by `handler(session, message)`.

        Every inbox RPC makes this one call. A message sent without its envelope is refused;
        repeats, refusals and rollback are as in `receive`.
        """
        return await self.receive(
            message,
            has_envelope=message.HasField("envelope"),
            peer=peer,
            handler=lambda session: handler(session, message),
            follow_on=follow_on,
        )

    def _log_received(
        self,
        envelope: common_pb2.Envelope,
        tcn: str,
        peer: str,
        outcome: Outcome,
        began: float,
        *,
        error: str | None = None,
    ) -> None:
        """The one line for a message received: what, from whom, what became of it, how long
        it took (from the envelope's check to the commit)."""
        if not log.isEnabledFor(logging.INFO):
            return
        took_ms = round((time.perf_counter() - began) * 1000, 1)
        fields: dict[str, object] = {
            "tcn": tcn,
            "message_id": envelope.message_id,
            "tot": envelope.tot,
            "peer": peer,
            "outcome": str(outcome),
            "duration_ms": took_ms,
        }
        if error is not None:
            fields["error"] = error
        log.info(
            "received %s %s from %s: %s in %.1f ms%s",
            envelope.tot,
            envelope.message_id,
            peer,
            outcome,
            took_ms,
            f" ({error})" if error else "",
            extra=fields,
        )
