"""The chaos bench's pure parts: its fault schedule, its fault rules, duplicate detection."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from services.cli.chaos import (
    Episode,
    FaultKind,
    Gate,
    chaos_schedule,
    failed,
    fault_rule,
    find_duplicates,
    redeliveries,
    run_schedule,
)
from services.federation import Agency


def _entry(service: str, message_id: str, tot: str, outcome: str = "processed") -> dict[str, Any]:
    return {
        "service": service,
        "message_id": message_id,
        "tot": tot,
        "direction": "received",
        "outcome": outcome,
    }


def test_the_schedule_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    assert chaos_schedule(1000, 1) == chaos_schedule(1000, 1)
    assert chaos_schedule(1000, 1) != chaos_schedule(1000, 2)


def test_a_full_run_kills_every_agency_once_and_spreads_faults_over_the_submission() -> None:
    schedule = chaos_schedule(1000, 7)
    kinds = Counter(e.kind for e in schedule)
    assert sorted(e.target for e in schedule if e.kind is FaultKind.KILL) == sorted(Agency)
    assert kinds[FaultKind.PAUSE] == 3
    assert kinds[FaultKind.PARTITION] == kinds[FaultKind.LOST_ACK] == 5
    starts = [e.at_booking for e in schedule]
    assert starts == sorted(starts)
    assert starts[0] == 50 and starts[-1] == 800
    partitions = [(e.target, e.peer) for e in schedule if e.kind is FaultKind.PARTITION]
    assert len(set(partitions)) == 5 and all(a != b for a, b in partitions)


def test_a_short_run_has_one_fault_of_each_kind() -> None:
    schedule = chaos_schedule(35, 1)
    assert Counter(e.kind for e in schedule) == dict.fromkeys(FaultKind, 1)
    assert all(1 <= e.at_booking < 35 for e in schedule)
    # Short pauses: the CI run stays under a minute.
    assert all(e.hold_s <= 3.0 for e in schedule)


def test_fault_rules_follow_the_faults_edge_contract() -> None:
    partition = fault_rule(Episode(1, FaultKind.PARTITION, "sib", "lesc"), 100)
    assert partition["action"] == "partition" and partition["peer"] == "lesc"
    lost_ack = fault_rule(Episode(1, FaultKind.LOST_ACK, "lesc"), 100)
    assert lost_ack["action"] == "drop_ack" and lost_ack["side"] == "receive"
    transient = fault_rule(Episode(1, FaultKind.TRANSIENT, "ident"), 100)
    assert transient["action"] == "status" and transient["code"] == "UNAVAILABLE"
    assert 0 < transient["probability"] < 1 and transient["count"] >= 5
    with pytest.raises(ValueError):
        fault_rule(Episode(1, FaultKind.KILL, "sib"), 100)


def test_a_clean_journal_has_no_duplicates() -> None:
    journals = {
        "T1": [
            _entry("cjis_iafis", "m1", "CAR"),
            # A retry of the same message is journaled duplicate; an injected fault, fault.
            _entry("cjis_iafis", "m1", "CAR", outcome="duplicate"),
            _entry("cjis_iafis", "m1", "CAR", outcome="fault"),
            _entry("cjis_iafis", "m2", "IAR"),
            _entry("sib", "m3", "I-247"),
        ]
    }
    assert find_duplicates(journals, {"T1": ["SRE", "IDR/IAR", "I-247"]}) == []


def test_a_message_processed_twice_is_counted() -> None:
    journals = {"T1": [_entry("lesc", "m1", "IAQ"), _entry("lesc", "m1", "IAQ")]}
    found = find_duplicates(journals)
    assert "lesc processed message m1 2 times" in found


def test_two_iars_for_one_iaq_are_counted() -> None:
    journals = {"T1": [_entry("cjis_iafis", "m1", "IAR"), _entry("cjis_iafis", "m2", "IAR")]}
    assert find_duplicates(journals) == ["cjis_iafis processed IAR of T1 2 times"]


def test_two_detainers_for_one_booking_are_counted() -> None:
    found = find_duplicates({"T1": []}, {"T1": ["SRE", "I-247", "I-247"]})
    assert found == ["booking T1 holds 2 I-247 responses"]


def test_the_same_tot_of_two_bookings_is_no_duplicate() -> None:
    journals = {"T1": [_entry("sib", "m1", "SRE")], "T2": [_entry("sib", "m2", "SRE")]}
    assert find_duplicates(journals) == []


def test_a_report_fails_on_loss_duplicates_or_dead_letters() -> None:
    clean = {"lost": 0, "duplicated": 0, "dead_letters": 0}
    assert not failed(clean)
    for key in clean:
        assert failed({**clean, key: 1})


async def test_episodes_start_in_order_once_their_booking_is_due() -> None:
    schedule = [Episode(2, FaultKind.PAUSE, "sib"), Episode(4, FaultKind.KILL, "lesc")]
    gate = Gate(schedule)
    ran: list[tuple[FaultKind, int]] = []

    async def run(episode: Episode) -> None:
        ran.append((episode.kind, gate.submitted))

    async def submit() -> None:
        for i in range(6):
            await gate(i)
            gate.submitted = i + 1
            await asyncio.sleep(0.01)

    submission = asyncio.create_task(submit())
    await asyncio.wait_for(run_schedule(schedule, gate, run, submission), timeout=5)
    await submission
    assert ran == [(FaultKind.PAUSE, 2), (FaultKind.KILL, 4)]


def test_redeliveries_count_the_retries_the_inbox_recognised() -> None:
    journals = {
        "T1": [
            _entry("lesc", "m1", "IAQ"),
            _entry("lesc", "m1", "IAQ", outcome="duplicate"),
            _entry("lesc", "m1", "IAQ", outcome="duplicate"),
        ],
        "T2": [_entry("sib", "m2", "SRE", outcome="fault")],
    }
    assert redeliveries(journals) == 2
