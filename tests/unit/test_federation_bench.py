"""`scfed bench federation`'s arithmetic: latency, modeled waits, hops and outbox waits, read
from the journal entries of the five services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.cli.federation_bench import Entry, _kinds_per_booking, analyse, percentiles
from services.federation import Agency
from services.runtime.db import statement_kind
from services.runtime.models import Direction, Outcome

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def _got(service: str, tot: str, ms: float, tcn: str, mid: str, detail: str = "") -> Entry:
    outcome = Outcome.ACCEPTED if tot == "BOOKING" else Outcome.PROCESSED
    return Entry(service, mid, tcn, tot, Direction.RECEIVED, outcome, _at(ms), detail)


def _sent(service: str, tot: str, ms: float, tcn: str, mid: str) -> Entry:
    return Entry(service, mid, tcn, tot, Direction.SENT, Outcome.DELIVERED, _at(ms), "")


def _booking(tcn: str, start: float, *, desk_ms: float = 0.0) -> list[Entry]:
    """One matched booking's journal: CAR, SRE, search, IDR, IAQ, IAR, joint IDR/IAR."""
    route = "route=automated" if not desk_ms else "route=analyst"
    s = start
    return [
        _got(Agency.SIB, "BOOKING", s, tcn, f"{tcn}-b"),
        _sent(Agency.SIB, "CAR", s + 1, tcn, f"{tcn}-car"),
        _got(Agency.CJIS_IAFIS, "CAR", s + 4, tcn, f"{tcn}-car"),
        _sent(Agency.CJIS_IAFIS, "SRE", s + 6, tcn, f"{tcn}-sre"),
        _sent(Agency.CJIS_IAFIS, "IDENT-SEARCH", s + 6, tcn, f"{tcn}-search"),
        _got(Agency.SIB, "SRE", s + 10, tcn, f"{tcn}-sre"),
        _got(Agency.IDENT, "IDENT-SEARCH", s + 8, tcn, f"{tcn}-search"),
        _sent(Agency.IDENT, "IDR", s + 12, tcn, f"{tcn}-idr"),
        _got(Agency.CJIS_IAFIS, "IDR", s + 15, tcn, f"{tcn}-idr"),
        _sent(Agency.CJIS_IAFIS, "IAQ", s + 16, tcn, f"{tcn}-iaq"),
        _got(Agency.LESC, "IAQ", s + 18, tcn, f"{tcn}-iaq", f"c1 route={route}"),
        _sent(Agency.LESC, "IAR", s + 20 + desk_ms, tcn, f"{tcn}-iar"),
        _got(Agency.CJIS_IAFIS, "IAR", s + 23 + desk_ms, tcn, f"{tcn}-iar"),
        _sent(Agency.CJIS_IAFIS, "IDR/IAR", s + 24 + desk_ms, tcn, f"{tcn}-joint"),
        _got(Agency.SIB, "IDR/IAR", s + 30 + desk_ms, tcn, f"{tcn}-joint"),
    ]


def test_machine_latency_subtracts_the_desk_hold_and_hops_read_across_agencies() -> None:
    entries = _booking("T1", 0.0) + _booking("T2", 100.0, desk_ms=500.0)
    report = analyse(entries, ["T1", "T2"])
    assert report["answered"] == 2 and report["unanswered"] == 0
    # T1: 30 ms, nothing modeled. T2: 530 ms, of which LESC held the IAQ 502 ms (from its
    # receipt to the IAR's writing: the 500 ms desk hold and LESC's own 2 ms).
    assert report["latency_ms"]["max"] == 530.0
    assert report["machine_latency_ms"]["max"] == 30.0
    assert report["modeled_wait_ms"] == {"n": 1, "p50": 502.0, "p99": 502.0, "max": 502.0}
    assert report["hops_ms"]["car_to_sre"]["p50"] == 6.0
    assert report["hops_ms"]["search_to_idr"]["p50"] == 7.0
    assert report["hops_ms"]["iaq_to_iar"]["max"] == 5.0  # the desk hold taken out
    assert report["outbox_wait_ms"]["CAR"]["p50"] == 3.0
    assert report["outbox_wait_ms"]["IDR/IAR"]["p50"] == 6.0
    assert report["span_s"] == 0.63


def test_a_booking_without_its_final_response_is_unanswered_not_fast() -> None:
    entries = [e for e in _booking("T1", 0.0) if e.tot != "IDR/IAR"] + _booking("T2", 0.0)
    report = analyse(entries, ["T1", "T2", "T3"])
    # T1 has its SRE, so it counts as answered at the SRE (its IDR is not journaled here).
    assert report["answered"] == 2
    assert report["unanswered"] == 1  # T3 never reached the SIB


def test_percentiles_of_nothing_are_zero_and_of_one_value_are_that_value() -> None:
    assert percentiles([]) == {"n": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    assert percentiles([4.0]) == {"n": 1, "p50": 4.0, "p99": 4.0, "max": 4.0}


def test_statements_are_tallied_by_verb_and_first_table_whatever_the_quoting() -> None:
    assert statement_kind("SELECT bookings.tcn FROM bookings WHERE x = ?") == "SELECT bookings"
    assert statement_kind('SELECT a FROM "sib".journal JOIN x') == "SELECT journal"
    assert statement_kind("INSERT INTO journal (a) VALUES ($1)") == "INSERT journal"
    assert statement_kind('insert into "lea_credentials" (a)') == "INSERT lea_credentials"
    assert statement_kind("UPDATE outbox SET status = 1") == "UPDATE outbox"
    assert statement_kind('DELETE FROM "sib"."inbox" WHERE 1') == "DELETE inbox"
    assert statement_kind("SELECT 1") == "SELECT"
    assert statement_kind("PRAGMA journal_mode=WAL") == "PRAGMA"
    assert statement_kind("  ") == "OTHER"


def test_statement_kinds_per_booking_are_the_phase_deltas_most_frequent_first() -> None:
    before = {"sib": {"db_statements_by_kind": {"SELECT states": 10, "INSERT journal": 5}}}
    after = {
        "sib": {
            "db_statements_by_kind": {"SELECT states": 10, "INSERT journal": 25, "UPDATE x": 10}
        }
    }
    kinds = _kinds_per_booking(after, before, 10)
    assert kinds == {"sib": {"INSERT journal": 2.0, "UPDATE x": 1.0}}
    assert list(kinds["sib"]) == ["INSERT journal", "UPDATE x"]
