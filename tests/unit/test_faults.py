"""Fault rules on their own: what a rule accepts, which calls it matches, how often it fires and
what each action makes of a delivery."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc
import pytest
from pydantic import ValidationError

from scfed.common.v1 import common_pb2 as pb
from services.federation import Agency
from services.runtime import faults as faults_module
from services.runtime.errors import InvalidArgument, ResourceExhausted
from services.runtime.faults import (
    Call,
    FaultAction,
    FaultRules,
    FaultSide,
    FaultSpec,
    Injected,
    apply_sending,
    received_call,
)
from services.runtime.faults_edge import spec_from_proto, view_to_proto

IAQ_PATH = "/scfed.lesc.v1.Lesc/SubmitIaq"


def _call(**overrides: Any) -> Call:
    values: dict[str, Any] = {
        "side": FaultSide.RECEIVE,
        "method": IAQ_PATH,
        "message_type": "IAQ",
        "peer": "cjis_iafis",
        "tcn": "CA0190000-0001",
        "message_id": "m-1",
    }
    return Call(**{**values, **overrides})


def _rules(*specs: dict[str, Any], seed: int = 1) -> FaultRules:
    rules = FaultRules("lesc", rng=random.Random(seed))
    for spec in specs:
        rules.add(FaultSpec(**spec))
    return rules


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"action": "latency"}, "needs latency_ms"),
        ({"action": "slow_db", "latency_ms": 0}, "needs latency_ms"),
        ({"action": "partition"}, "needs the peer"),
        ({"action": "status", "code": "OK"}, "gRPC status other than OK"),
        ({"action": "status", "code": "NOPE"}, "gRPC status other than OK"),
        ({"action": "explode"}, "action"),
        ({"action": "status", "peer": "fbi"}, "peer"),
        ({"action": "status", "probability": 1.5}, "probability"),
        ({"action": "status", "count": 0}, "count"),
        ({"action": "status", "expires_in_s": -1}, "expires_in_s"),
        ({"action": "latency", "latency_ms": 1e9}, "latency_ms"),
        ({"action": "status", "method": "Search\x00"}, "method"),
        ({"action": "status", "colour": "red"}, "colour"),
    ],
)
def test_a_malformed_rule_is_refused_naming_the_field(spec: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FaultSpec(**spec)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("given", "name"), [("internal", "INTERNAL"), (14, "UNAVAILABLE"), ("8", "RESOURCE_EXHAUSTED")]
)
def test_a_status_is_named_or_numbered(given: object, name: str) -> None:
    assert FaultSpec.model_validate({"action": "status", "code": given}).code == name
    with pytest.raises(ValidationError, match="gRPC status"):
        FaultSpec.model_validate({"action": "status", "code": 0})


def test_defaults_match_every_received_call() -> None:
    spec = FaultSpec.model_validate({"action": "status", "peer": ""})
    assert spec.peer is None and spec.side == FaultSide.RECEIVE and spec.code == "UNAVAILABLE"
    assert spec.matches_every_call
    assert _rules({"action": "status"}).decide(_call()).action == FaultAction.STATUS


@pytest.mark.parametrize(
    ("matcher", "fires"),
    [
        ({"method": "SubmitIaq"}, True),
        ({"method": "/scfed.lesc.v1.Lesc/*"}, True),
        ({"method": "Search"}, False),
        ({"message_type": "iaq"}, True),
        ({"message_type": "IAR"}, False),
        ({"peer": "cjis_iafis"}, True),
        ({"peer": "sib"}, False),
        ({"tcn": "CA*"}, True),
        ({"tcn": "TX*"}, False),
        ({"side": "send"}, False),
        ({"side": "both"}, True),
    ],
)
def test_a_rule_fires_only_on_the_calls_it_matches(matcher: dict[str, Any], fires: bool) -> None:
    rules = _rules({"action": "status", **matcher})
    assert (rules.decide(_call()).rule is not None) is fires


def test_a_partition_cuts_both_directions_whatever_its_side() -> None:
    rules = _rules({"action": "partition", "peer": "cjis_iafis", "side": "receive"})
    assert rules.decide(_call(side=FaultSide.SEND)).action == FaultAction.PARTITION
    assert rules.decide(_call(side=FaultSide.RECEIVE)).action == FaultAction.PARTITION
    assert rules.decide(_call(peer="ice_field")).rule is None


def test_the_faults_service_health_and_reflection_are_never_matched() -> None:
    rules = _rules({"action": "status"})
    for method in (
        "/scfed.common.v1.Faults/ClearFaults",
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ):
        assert rules.decide(_call(method=method)).rule is None


def test_count_limits_the_injections_and_a_spent_rule_is_gone() -> None:
    rules = _rules({"action": "status", "count": 2})
    fired = [rules.decide(_call()).rule is not None for _ in range(4)]
    assert fired == [True, True, False, False]
    assert rules.list() == []


def test_an_expired_rule_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("services.runtime.faults.time.monotonic", lambda: now[0])
    rules = _rules({"action": "status", "expires_in_s": 5})
    assert rules.decide(_call()).rule is not None
    view = rules.list()[0].view()
    assert view.expires_at is not None and view.expires_at > view.created_at
    now[0] += 5.0
    assert rules.decide(_call()).rule is None and rules.list() == []


def test_probability_fires_about_that_share_of_calls() -> None:
    rules = _rules({"action": "status", "probability": 0.25}, seed=7)
    fired = sum(rules.decide(_call()).rule is not None for _ in range(4000))
    assert 800 < fired < 1200
    assert rules.list()[0].injected == fired
    never = _rules({"action": "status", "probability": 0.0})
    assert all(never.decide(_call()).rule is None for _ in range(100))


def test_latencies_add_up_and_the_first_terminal_rule_wins() -> None:
    rules = _rules(
        {"action": "latency", "latency_ms": 100},
        {"action": "drop_ack"},
        {"action": "latency", "latency_ms": 50},
        {"action": "status", "code": "INTERNAL"},
    )
    injection = rules.decide(_call())
    assert injection.delay_s == pytest.approx(0.15)
    assert injection.action == FaultAction.DROP_ACK
    # The later terminal rule did not fire, so it counted nothing.
    assert [r.injected for r in rules.list()] == [1, 1, 1, 0]


@pytest.mark.parametrize(
    ("distribution", "low", "high"),
    [("fixed", 200, 200), ("uniform", 150, 250), ("normal", 0, 600), ("exponential", 0, 600_000)],
)
def test_latency_is_drawn_from_its_distribution(distribution: str, low: float, high: float) -> None:
    rules = _rules(
        {
            "action": "latency",
            "latency_ms": 200,
            "latency_spread_ms": 50,
            "latency_distribution": distribution,
        }
    )
    draws = [rules.decide(_call()).delay_s * 1000 for _ in range(300)]
    assert all(low - 1e-6 <= d <= high + 1e-6 for d in draws)
    assert sum(draws) / len(draws) == pytest.approx(200, rel=0.25)


def test_a_service_holds_at_most_a_thousand_rules() -> None:
    rules = _rules(*({"action": "status", "tcn": f"T{i}"} for i in range(1000)))
    with pytest.raises(ResourceExhausted, match="1000 fault rules"):
        rules.add(FaultSpec(action=FaultAction.STATUS))
    assert rules.clear() == 1000 and rules.list() == []


def test_remove_clears_one_rule_by_id() -> None:
    rules = _rules({"action": "status"}, {"action": "drop"})
    first, second = rules.list()
    assert rules.remove(first.id) and not rules.remove(first.id)
    assert rules.list() == [second]


def test_the_received_call_is_read_from_the_envelope() -> None:
    from scfed.lesc.v1 import lesc_pb2

    request = lesc_pb2.Iaq()
    request.envelope.tot = "IAQ"
    request.envelope.sender = "cjis_iafis"
    request.envelope.tcr = "CA0190000-0042"
    request.envelope.message_id = "abc"
    call = received_call(IAQ_PATH, request)
    assert (call.message_type, call.peer, call.tcn, call.message_id) == (
        "IAQ",
        "cjis_iafis",
        "CA0190000-0042",
        "abc",
    )
    query = received_call("/scfed.common.v1.Journal/GetJournal", pb.JournalQuery(tcn="T-1"))
    assert (query.tcn, query.peer, query.short_method) == ("T-1", "", "GetJournal")


async def test_sending_status_and_partition_never_call_the_peer() -> None:
    calls: list[str] = []

    async def send() -> None:
        calls.append("sent")

    for spec, code in (
        ({"action": "status", "side": "send", "code": "PERMISSION_DENIED"}, "PERMISSION_DENIED"),
        ({"action": "partition", "peer": "cjis_iafis"}, "UNAVAILABLE"),
    ):
        result = await apply_sending(_rules(spec), _call(side=FaultSide.SEND), send, deadline_s=1.0)
        assert isinstance(result, Injected) and result.code.name == code
        assert "fault rule f1" in result.error
    assert calls == []


async def test_a_dropped_ack_is_sent_then_reported_lost() -> None:
    calls: list[str] = []

    async def send() -> None:
        calls.append("sent")

    rules = _rules({"action": "drop_ack", "side": "send"})
    result = await apply_sending(rules, _call(side=FaultSide.SEND), send, deadline_s=1.0)
    assert calls == ["sent"]
    assert isinstance(result, Injected) and result.code == grpc.StatusCode.UNAVAILABLE
    assert "acknowledgement dropped" in result.error


async def test_a_dropped_request_waits_its_hold_and_is_not_sent() -> None:
    async def send() -> None:
        raise AssertionError("a dropped request is not sent")

    rules = _rules({"action": "drop", "side": "send", "latency_ms": 20})
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await apply_sending(rules, _call(side=FaultSide.SEND), send, deadline_s=5.0)
    assert loop.time() - began >= 0.02
    assert isinstance(result, Injected) and result.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_slow_db_delays_transactions_of_matching_calls_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("services.runtime.faults.asyncio.sleep", fake_sleep)
    everywhere = _rules({"action": "slow_db", "latency_ms": 40})
    await everywhere.before_transaction()
    assert slept == [pytest.approx(0.04)]

    slept.clear()
    narrow = _rules({"action": "slow_db", "latency_ms": 40, "method": "SubmitIaq"})
    await narrow.before_transaction()  # no call: the outbox worker's own transactions
    assert slept == []
    token = faults_module._current_call.set(_call())
    try:
        await narrow.before_transaction()
    finally:
        faults_module._current_call.reset(token)
    assert slept == [pytest.approx(0.04)]


def test_a_grpc_rule_reads_as_the_same_spec_and_back() -> None:
    spec = spec_from_proto(
        pb.FaultRule(action="latency", latency_ms=250, peer="ident", count=3, probability=0.5)
    )
    assert spec == FaultSpec(
        action=FaultAction.LATENCY,
        latency_ms=250,
        peer=Agency.IDENT,
        count=3,
        probability=0.5,
    )
    rules = _rules()
    rule = view_to_proto(rules.add(spec).view())
    assert (rule.id, rule.action, rule.peer, rule.count, rule.probability) == (
        "f1",
        "latency",
        "ident",
        3,
        0.5,
    )
    assert rule.HasField("created_at") and not rule.HasField("expires_at")
    # Unset probability is 1, not proto's 0.
    assert spec_from_proto(pb.FaultRule(action="drop")).probability == 1.0
    with pytest.raises(InvalidArgument, match="latency_distribution"):
        spec_from_proto(pb.FaultRule(action="latency", latency_ms=1, latency_distribution="x"))
