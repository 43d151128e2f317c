"""Fault rules: make a service refuse, slow down, lose or cut off calls on demand, to see what
its peers (or a team's own implementation of one) do.

A rule matches a call by RPC method (a glob over the short name or the full path), message type
(the envelope's TOT), peer (the agency at the other end: the envelope's sender on the receiving
side, the outbox row's peer on the sending side) and TCN (a glob), on the receiving side (the
gRPC server), the sending side (the outbox worker) or both. It does one of:

- ``status``: answer (receive) or count (send) the gRPC status `code` with `details`, without
  processing or sending the message;
- ``latency``: wait a delay drawn from `latency_distribution` (fixed, uniform, normal or
  exponential around `latency_ms`, spread `latency_spread_ms`), then go on;
- ``drop``: lose the request: nothing is processed or sent, and the caller waits for its own
  deadline (the receiving side holds the call at most `latency_ms`, default 30 s, then answers
  UNAVAILABLE);
- ``drop_ack``: process (or send) the message, then lose the acknowledgement: the caller sees
  UNAVAILABLE and retries, so the receiver must find the repeat a duplicate;
- ``partition``: cut the `peer` off, in both directions, until the rule is cleared;
- ``slow_db``: delay each of the service's database transactions by a drawn latency (only those
  of matching calls when the rule names a method, type, peer or TCN).

Each rule fires with its `probability`, at most `count` times and until `expires_in_s` have
passed; latency rules add up, and of the other actions the first rule (in the order they were
added) that fires wins. Every injection is journaled with the outcome ``fault`` (once per call
for ``slow_db``), so `scfed trace` shows what was injected where. Rules live in the service's
memory: a restart or a reset clears them. The Faults service, health and reflection are never
matched, so a rule can always be cleared.
"""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import itertools
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import grpc
from google.protobuf.message import Message
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from ..federation import Agency
from . import journal
from .edge import UnaryBehaviour, UnaryInterceptor
from .errors import ResourceExhausted
from .models import Direction, Outcome

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

# The services a rule never matches: clearing the rules, health and reflection always answer.
UNMATCHED_SERVICES: Final = (
    "/scfed.common.v1.Faults/",
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
)
# How long a dropped request is held on the receiving side when the rule sets no latency.
DEFAULT_DROP_HOLD_S: Final = 30.0
# The longest delay a rule may draw (ten minutes).
MAX_LATENCY_MS: Final = 600_000.0
# The most rules one service holds.
MAX_RULES: Final = 1000


class FaultAction(StrEnum):
    """What a rule does to a call it matches."""

    STATUS = "status"
    LATENCY = "latency"
    DROP = "drop"
    DROP_ACK = "drop_ack"
    PARTITION = "partition"
    SLOW_DB = "slow_db"


class FaultSide(StrEnum):
    """Which side of a call a rule acts on: the service receiving it, sending it, or both."""

    RECEIVE = "receive"
    SEND = "send"
    BOTH = "both"


class LatencyDistribution(StrEnum):
    """How a rule's delay is drawn from `latency_ms` and `latency_spread_ms`."""

    FIXED = "fixed"  # latency_ms exactly
    UNIFORM = "uniform"  # between latency_ms - spread and latency_ms + spread
    NORMAL = "normal"  # mean latency_ms, standard deviation spread (never below 0)
    EXPONENTIAL = "exponential"  # mean latency_ms


_STATUS_NAMES: Final = tuple(code.name for code in grpc.StatusCode if code != grpc.StatusCode.OK)
_STATUS_BY_NUMBER: Final = {code.value[0]: code.name for code in grpc.StatusCode}
_Pattern = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


class FaultSpec(BaseModel):
    """A fault rule as a client writes it (HTTP body, gRPC message, scenario step)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: FaultAction
    side: FaultSide = Field(
        default=FaultSide.RECEIVE,
        description="receive (the gRPC server), send (the outbox) or both; partition: both",
    )
    method: _Pattern = Field(
        default="*", description='Glob over the RPC\'s short name or full path ("Search")'
    )
    message_type: str = Field(
        default="", max_length=16, pattern=r"^[A-Za-z0-9_]*$", description="TOT; empty: any"
    )
    peer: Agency | None = Field(default=None, description="The agency at the other end")
    tcn: _Pattern = Field(default="*", description="Glob over the booking's TCN")
    code: str = Field(default="UNAVAILABLE", description="status: the gRPC status to answer")
    details: str = Field(default="", max_length=500, pattern=r"^[^\x00]*$")
    latency_ms: StrictFloat = Field(default=0.0, ge=0.0, le=MAX_LATENCY_MS)
    latency_spread_ms: StrictFloat = Field(default=0.0, ge=0.0, le=MAX_LATENCY_MS)
    latency_distribution: LatencyDistribution = LatencyDistribution.FIXED
    probability: StrictFloat = Field(default=1.0, ge=0.0, le=1.0)
    count: StrictInt | None = Field(default=None, ge=1, le=2**31 - 1, description="Most injections")
    expires_in_s: StrictFloat | None = Field(default=None, gt=0.0, le=30 * 86400.0)

    @field_validator("peer", mode="before")
    @classmethod
    def _agency(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("code", mode="before")
    @classmethod
    def _status_name(cls, value: Any) -> Any:
        # A status is named ("UNAVAILABLE", any case) or numbered as on the wire (14).
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = _STATUS_BY_NUMBER.get(value, str(value))
        if not isinstance(value, str):
            return value  # pydantic refuses it as not a string
        name = value.strip().upper()
        if name not in _STATUS_NAMES:
            raise ValueError(
                "must be a gRPC status other than OK, by name (UNAVAILABLE) or number (14)"
            )
        return name

    @model_validator(mode="after")
    def _complete(self) -> FaultSpec:
        delays = (FaultAction.LATENCY, FaultAction.SLOW_DB)
        if self.action in delays and self.latency_ms <= 0:
            raise ValueError(f"a {self.action} rule needs latency_ms above 0")
        if self.action == FaultAction.PARTITION and self.peer is None:
            raise ValueError("a partition rule needs the peer it cuts off")
        return self

    @property
    def matches_every_call(self) -> bool:
        """True when no matcher narrows the rule."""
        return (self.method, self.message_type, self.peer, self.tcn) == ("*", "", None, "*")

    def describe(self) -> str:
        """The rule's effect in a few words, for the journal and the CLI."""
        if self.action == FaultAction.STATUS:
            return f"status {self.code}" + (f" ({self.details})" if self.details else "")
        if self.action in (FaultAction.LATENCY, FaultAction.SLOW_DB):
            spread = f" ±{self.latency_spread_ms:g}" if self.latency_spread_ms else ""
            return f"{self.action} {self.latency_distribution} {self.latency_ms:g}{spread} ms"
        if self.action == FaultAction.PARTITION:
            return f"partition from {self.peer}"
        return str(self.action)


class FaultView(FaultSpec):
    """A rule as the service holds it: the spec, its id, and what it has done so far."""

    id: str
    injected: int
    remaining: int | None = Field(description="Injections left when the rule has a count")
    created_at: datetime
    expires_at: datetime | None


@dataclass
class FaultRule:
    """One rule in force."""

    id: str
    spec: FaultSpec
    created_at: datetime
    expires_at_monotonic: float | None
    injected: int = 0

    def view(self) -> FaultView:
        """The rule as clients read it."""
        expires = None
        if self.expires_at_monotonic is not None:
            expires = self.created_at + timedelta(seconds=self.spec.expires_in_s or 0.0)
        remaining = None if self.spec.count is None else self.spec.count - self.injected
        return FaultView(
            **self.spec.model_dump(),
            id=self.id,
            injected=self.injected,
            remaining=remaining,
            created_at=self.created_at,
            expires_at=expires,
        )

    def live(self, now: float) -> bool:
        """False once the rule has expired or used its count."""
        if self.expires_at_monotonic is not None and now >= self.expires_at_monotonic:
            return False
        return self.spec.count is None or self.injected < self.spec.count


@dataclass
class Call:
    """One call as the rules see it."""

    side: FaultSide  # RECEIVE or SEND
    method: str  # the full path, /package.Service/Method
    message_type: str = ""
    peer: str = ""
    tcn: str = ""
    message_id: str = ""
    # slow_db rules already journaled for this call (one entry per call, not per transaction).
    journaled: set[str] = field(default_factory=set)

    @property
    def short_method(self) -> str:
        """The method's name without its service."""
        return self.method.rpartition("/")[2]


@dataclass
class Injection:
    """What the rules decided for one call: a delay, then at most one terminal action."""

    delay_s: float = 0.0
    rule: FaultRule | None = None  # the terminal rule (status, drop, drop_ack, partition)

    @property
    def action(self) -> FaultAction | None:
        """The terminal action, if any."""
        return None if self.rule is None else self.rule.spec.action


# The call being handled in this task, for slow_db rules that name a method, type, peer or TCN.
_current_call: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "scfed_fault_call", default=None
)
# Set while a fault is journaled, so that journal write is not itself slowed down.
_journaling: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "scfed_fault_journaling", default=False
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _clean(value: str, length: int) -> str:
    """`value` fit for a journal column of `length` characters."""
    return _CONTROL.sub("?", value)[:length].encode("utf-8", "replace").decode("utf-8")


class FaultRules:
    """The rules one service holds, and the decisions they make for its calls."""

    def __init__(
        self, service: str, db: Database | None = None, rng: random.Random | None = None
    ) -> None:
        self.service = service
        self._db = db
        self._rng = rng or random.Random()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        """True while any rule is held (expired ones may still count until the next look)."""
        return bool(self._rules)

    # -- managing rules ------------------------------------------------------------------------

    def add(self, spec: FaultSpec) -> FaultRule:
        """Puts a rule in force; ResourceExhausted when the service already holds MAX_RULES."""
        self._prune()
        if len(self._rules) >= MAX_RULES:
            raise ResourceExhausted(
                f"{self.service} already holds {MAX_RULES} fault rules; clear some first"
            )
        now = time.monotonic()
        expires = None if spec.expires_in_s is None else now + spec.expires_in_s
        rule = FaultRule(f"f{next(self._ids)}", spec, datetime.now(UTC), expires)
        self._rules.append(rule)
        log.info("%s: fault rule %s added: %s", self.service, rule.id, spec.describe())
        return rule

    def list(self) -> list[FaultRule]:
        """The rules in force, oldest first (expired and used-up rules are gone)."""
        self._prune()
        return list(self._rules)

    def remove(self, rule_id: str) -> bool:
        """Clears one rule; False when no rule in force has that id."""
        self._prune()
        kept = [rule for rule in self._rules if rule.id != rule_id]
        found = len(kept) != len(self._rules)
        self._rules = kept
        return found

    def clear(self) -> int:
        """Clears every rule; returns how many were in force."""
        self._prune()
        cleared = len(self._rules)
        self._rules = []
        if cleared:
            log.info("%s: %d fault rule(s) cleared", self.service, cleared)
        return cleared

    def _prune(self) -> None:
        now = time.monotonic()
        self._rules = [rule for rule in self._rules if rule.live(now)]

    # -- deciding ------------------------------------------------------------------------------

    def decide(self, call: Call) -> Injection:
        """Which rules fire for `call`: their summed delay and the first terminal action. Each
        rule that fires counts an injection and is journaled."""
        injection = Injection()
        if not self._rules or call.method.startswith(UNMATCHED_SERVICES):
            return injection
        for rule in self._candidates(call):
            spec = rule.spec
            if spec.action == FaultAction.LATENCY:
                if self._fires(rule):
                    delay = self._draw(spec)
                    injection.delay_s += delay
                    self._record(call, rule, f"{delay * 1000:.0f} ms added")
            elif injection.rule is None and self._fires(rule):
                injection.rule = rule
                self._record(call, rule, spec.describe())
        return injection

    def _candidates(self, call: Call) -> Iterator[FaultRule]:
        now = time.monotonic()
        for rule in self._rules:
            spec = rule.spec
            if spec.action == FaultAction.SLOW_DB or not rule.live(now):
                continue
            if spec.action != FaultAction.PARTITION and spec.side not in (call.side, "both"):
                continue
            if _matches(spec, call):
                yield rule

    def _fires(self, rule: FaultRule) -> bool:
        if rule.spec.probability < 1.0 and self._rng.random() >= rule.spec.probability:
            return False
        rule.injected += 1
        return True

    def _draw(self, spec: FaultSpec) -> float:
        """A delay in seconds from the rule's distribution, within [0, MAX_LATENCY_MS]."""
        mean, spread = spec.latency_ms, spec.latency_spread_ms
        match spec.latency_distribution:
            case LatencyDistribution.UNIFORM:
                ms = self._rng.uniform(mean - spread, mean + spread)
            case LatencyDistribution.NORMAL:
                ms = self._rng.gauss(mean, spread)
            case LatencyDistribution.EXPONENTIAL:
                ms = self._rng.expovariate(1.0 / mean)
            case _:
                ms = mean
        return min(max(ms, 0.0), MAX_LATENCY_MS) / 1000.0

    async def before_transaction(self) -> None:
        """Waits as the slow_db rules in force say, before a database transaction begins."""
        if not self._rules or _journaling.get():
            return
        call = _current_call.get()
        now = time.monotonic()
        delay = 0.0
        for rule in self._rules:
            spec = rule.spec
            if spec.action != FaultAction.SLOW_DB or not rule.live(now):
                continue
            if call is None:
                if not spec.matches_every_call:
                    continue
            elif not _matches(spec, call):
                continue
            if self._fires(rule):
                drawn = self._draw(spec)
                delay += drawn
                if call is not None and rule.id not in call.journaled:
                    call.journaled.add(rule.id)
                    self._record(call, rule, f"database slowed {drawn * 1000:.0f} ms")
        if delay > 0:
            await asyncio.sleep(delay)

    # -- journaling ----------------------------------------------------------------------------

    def _record(self, call: Call, rule: FaultRule, what: str) -> None:
        """Journals the injection in its own transaction, in the background: a fault must not
        wait for, nor fail with, the database (whose outage may be the point)."""
        if self._db is None:
            return
        task = asyncio.get_running_loop().create_task(self._write(call, rule, what))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, call: Call, rule: FaultRule, what: str) -> None:
        assert self._db is not None
        token = _journaling.set(True)
        try:
            async with self._db.session() as session:
                journal.record(
                    session,
                    message_id=_clean(call.message_id, 36),
                    tcn=_clean(call.tcn, 40),
                    tot=_clean(call.message_type or call.short_method, 16),
                    direction=Direction.RECEIVED
                    if call.side == FaultSide.RECEIVE
                    else Direction.SENT,
                    peer=_clean(call.peer, 32),
                    outcome=Outcome.FAULT,
                    detail=f"fault rule {rule.id} on {call.short_method}: {what}",
                )
        except Exception:
            log.debug("%s: could not journal fault %s", self.service, rule.id, exc_info=True)
        finally:
            _journaling.reset(token)

    async def flush(self) -> None:
        """Waits for the journal entries still being written."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _matches(spec: FaultSpec, call: Call) -> bool:
    if spec.peer is not None and spec.peer != call.peer:
        return False
    if spec.message_type and spec.message_type.upper() != call.message_type.upper():
        return False
    if spec.method != "*" and not (
        fnmatch.fnmatchcase(call.short_method, spec.method)
        or fnmatch.fnmatchcase(call.method, spec.method)
    ):
        return False
    return spec.tcn == "*" or fnmatch.fnmatchcase(call.tcn, spec.tcn)


def received_call(method: str, request: Any) -> Call:
    """The call a server received: type, sender, TCN and message id from the request's
    envelope when it has one, else the TCN from a top-level `tcn` field."""
    call = Call(side=FaultSide.RECEIVE, method=method)
    if not isinstance(request, Message):
        return call
    fields = request.DESCRIPTOR.fields_by_name
    if "envelope" in fields and fields["envelope"].message_type is not None:
        envelope = request.envelope  # type: ignore[attr-defined]
        call.message_type = envelope.tot
        call.peer = envelope.sender
        call.tcn = envelope.tcr or envelope.tcn
        call.message_id = envelope.message_id
    elif "tcn" in fields and fields["tcn"].type == fields["tcn"].TYPE_STRING:
        call.tcn = request.tcn  # type: ignore[attr-defined]
    return call


class FaultInterceptor(UnaryInterceptor):
    """Applies the receiving side's rules to every unary RPC of the server (the Faults
    service, health and reflection excepted)."""

    def __init__(self, rules: FaultRules) -> None:
        self._rules = rules

    def wrap(self, method: str, inner: UnaryBehaviour) -> UnaryBehaviour | None:
        """`inner` under the rules, which see the call's method and envelope."""
        if method.startswith(UNMATCHED_SERVICES):
            return None
        rules = self._rules

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if not rules.active:
                return await inner(request, context)
            call = received_call(method, request)
            token = _current_call.set(call)
            try:
                injection = rules.decide(call)
                return await _apply_received(injection, inner, request, context)
            finally:
                _current_call.reset(token)

        return unary_unary


def _by_rule(rule: FaultRule, what: str) -> str:
    return f"{what} (fault rule {rule.id})"


async def _apply_received(
    injection: Injection,
    inner: UnaryBehaviour,
    request: Any,
    context: grpc.aio.ServicerContext[Any, Any],
) -> Any:
    if injection.delay_s:
        await asyncio.sleep(injection.delay_s)
    rule = injection.rule
    if rule is None:
        return await inner(request, context)
    spec = rule.spec
    match spec.action:
        case FaultAction.STATUS:
            await context.abort(
                grpc.StatusCode[spec.code], spec.details or _by_rule(rule, "injected")
            )
        case FaultAction.PARTITION:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, _by_rule(rule, f"partitioned from {spec.peer}")
            )
        case FaultAction.DROP:
            hold = spec.latency_ms / 1000 if spec.latency_ms else DEFAULT_DROP_HOLD_S
            remaining = context.time_remaining()
            await asyncio.sleep(hold if remaining is None else min(hold, max(0.0, remaining)))
            await context.abort(grpc.StatusCode.UNAVAILABLE, _by_rule(rule, "request dropped"))
        case FaultAction.DROP_ACK:
            await inner(request, context)
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                _by_rule(rule, "processed; acknowledgement dropped"),
            )
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


@dataclass(frozen=True)
class Injected:
    """A delivery the sending side's rules ended: the status it counts as, and the error the
    outbox records."""

    code: grpc.StatusCode
    error: str


async def apply_sending(
    rules: FaultRules,
    call: Call,
    send: Callable[[], Awaitable[T | None]],
    *,
    deadline_s: float,
) -> T | Injected | None:
    """Runs `send` (the outbox's delivery of one message; None when acknowledged) as the
    sending side's rules say: its own result, or what a rule made of it."""
    injection = rules.decide(call)
    if injection.delay_s:
        await asyncio.sleep(injection.delay_s)
    rule = injection.rule
    if rule is None:
        return await send()
    spec = rule.spec
    match spec.action:
        case FaultAction.STATUS:
            code = grpc.StatusCode[spec.code]
            why = spec.details or "injected, not sent"
            return Injected(code, f"{code.name}: {_by_rule(rule, why)}")
        case FaultAction.PARTITION:
            why = f"partitioned from {spec.peer}, not sent"
            return Injected(grpc.StatusCode.UNAVAILABLE, f"UNAVAILABLE: {_by_rule(rule, why)}")
        case FaultAction.DROP:
            hold = spec.latency_ms / 1000 if spec.latency_ms else deadline_s
            await asyncio.sleep(min(hold, deadline_s))
            why = _by_rule(rule, "request dropped, not sent")
            return Injected(grpc.StatusCode.DEADLINE_EXCEEDED, f"DEADLINE_EXCEEDED: {why}")
        case _:  # DROP_ACK
            outcome = await send()
            if outcome is not None:
                return outcome
            why = _by_rule(rule, "delivered; acknowledgement dropped")
            return Injected(grpc.StatusCode.UNAVAILABLE, f"UNAVAILABLE: {why}")
