"""The shared runtime's pieces: clock, settings, envelope, retry policy, biometrics, MOA time."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest

from scfed.common.v1 import common_pb2 as common
from scfed.sib.v1 import sib_pb2
from services.runtime.biometrics import (
    TEMPLATE_DIM,
    BiometricEngine,
    TenprintTemplate,
    match_score,
    tenprint_from_proto,
)
from services.runtime.clock import AcceleratedClock, ManualClock, clock_from_spec
from services.runtime.delivery import PERMANENT_CODES, RetryPolicy
from services.runtime.envelope import MessageType, check_envelope, make_envelope
from services.runtime.errors import InvalidArgument
from services.runtime.validation import check_ori
from services.sib.config import SibSettings
from services.sib.domain import moa_in_effect
from services.sib.models import StateRecord
from services.world.tenprints import SyntheticFingerprints


def test_manual_clock_moves_only_when_advanced_and_wakes_sleepers() -> None:
    async def scenario() -> None:
        clock = ManualClock(datetime(2009, 10, 1, tzinfo=UTC))
        sleeper = asyncio.create_task(clock.sleep(3600))
        await asyncio.sleep(0)
        clock.advance(timedelta(minutes=30))
        await asyncio.sleep(0)
        assert not sleeper.done()
        clock.advance(timedelta(minutes=31))
        await asyncio.wait_for(sleeper, 1)
        assert clock.now() == datetime(2009, 10, 1, 1, 1, tzinfo=UTC)
        with pytest.raises(ValueError):
            clock.advance(timedelta(seconds=-1))

    asyncio.run(scenario())


def test_accelerated_clock_runs_faster_than_the_wall() -> None:
    clock = AcceleratedClock(3600.0, epoch=datetime(2009, 1, 1, tzinfo=UTC))
    assert clock.now() >= datetime(2009, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        AcceleratedClock(0)


@pytest.mark.parametrize("spec", ["fast", "accelerated:x", "real:2"])
def test_bad_clock_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="clock"):
        clock_from_spec(spec)


def test_per_service_settings_win_over_federation_wide_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCFED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SCFED_CJIS_IAFIS_ADDR", "10.0.0.1:1")
    monkeypatch.setenv("SCFED_GRPC_PORT", "60000")
    monkeypatch.setenv("SCFED_SIB_GRPC_PORT", "60001")
    settings = SibSettings()
    assert settings.grpc_port == 60001
    assert settings.peer_addresses()["cjis_iafis"] == "10.0.0.1:1"
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'sib.db'}"
    assert settings.resolved_schema() is None


def test_database_urls_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    pg = SibSettings(database_url="postgresql://u@h/db")
    assert pg.database_url == "postgresql+asyncpg://u@h/db"
    assert pg.resolved_schema() == "scfed_sib"
    with pytest.raises(ValueError, match="database_url must be"):
        SibSettings(database_url="mysql://u@h/db")
    with pytest.raises(ValueError, match="db_schema"):
        SibSettings(db_schema="Robert'); DROP")


def test_envelopes_need_an_id_a_tcn_and_a_valid_ori() -> None:
    good = make_envelope(
        clock=ManualClock(), sender="sib", tot=MessageType.SRE, tcr="T1", ori="CA0190000"
    )
    assert check_envelope(good, has_envelope=True) == "T1"
    opening = make_envelope(
        clock=ManualClock(), sender="sib", tot=MessageType.CAR, tcr="", ori="CA0190000"
    )
    assert check_envelope(opening, has_envelope=True, follow_on=False) == opening.tcn
    with pytest.raises(InvalidArgument, match="tcr"):
        check_envelope(opening, has_envelope=True)
    with pytest.raises(InvalidArgument, match="envelope is required"):
        check_envelope(good, has_envelope=False)
    for field, value, words in [
        ("message_id", "", "message_id"),
        ("ori", "CA01", "ori"),
        ("pry", 12, "pry"),
    ]:
        bad = common.Envelope()
        bad.CopyFrom(good)
        setattr(bad, field, value)
        with pytest.raises(InvalidArgument, match=words):
            check_envelope(bad, has_envelope=True)
    with pytest.raises(InvalidArgument):
        check_ori("ca0190000")


def test_retry_delays_grow_are_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=2.0)
    for attempt in range(1, 40):
        delay = policy.delay_after(attempt)
        assert 0.05 <= delay <= 2.0
    assert max(policy.delay_after(20) for _ in range(200)) > 1.0
    assert grpc.StatusCode.INVALID_ARGUMENT in PERMANENT_CODES
    assert grpc.StatusCode.UNAVAILABLE not in PERMANENT_CODES
    assert grpc.StatusCode.DEADLINE_EXCEEDED not in PERMANENT_CODES


def test_moa_termination_takes_effect_thirty_days_after_notice() -> None:
    now = datetime(2009, 10, 1, tzinfo=UTC)
    state = StateRecord(
        code="CA",
        moa_status=sib_pb2.MOA_STATUS_TERMINATION_NOTICED,
        termination_effective_at=now + timedelta(days=30),
    )
    assert moa_in_effect(state, now + timedelta(days=29, hours=23))
    assert not moa_in_effect(state, now + timedelta(days=30))
    suspended = StateRecord(code="AZ", moa_status=sib_pb2.MOA_STATUS_SUSPENDED)
    assert not moa_in_effect(suspended, now)


def _people(n: int) -> tuple[SyntheticFingerprints, list[np.ndarray]]:
    prints = SyntheticFingerprints()
    rng = np.random.default_rng(5)
    return prints, [prints.new_fingers(rng) for _ in range(n)]


def test_a_new_capture_of_an_enrolled_person_is_found_and_a_stranger_is_not() -> None:
    prints, people = _people(300)
    rng = np.random.default_rng(6)
    engine = BiometricEngine(initial_capacity=16)
    for i, fingers in enumerate(people[:250]):
        engine.enroll(f"P{i}", tenprint_from_proto(prints.capture(fingers, rng)))
    assert len(engine) == 250
    for i in (0, 99, 249):
        mate = engine.identify(tenprint_from_proto(prints.capture(people[i], rng)))
        assert mate is not None and mate.key == f"P{i}"
    for fingers in people[250:]:
        assert engine.identify(tenprint_from_proto(prints.capture(fingers, rng))) is None


def test_a_missing_finger_neither_matches_nor_breaks_the_search() -> None:
    prints, people = _people(2)
    rng = np.random.default_rng(7)
    engine = BiometricEngine()
    engine.enroll("A", tenprint_from_proto(prints.capture(people[0], rng, missing=frozenset({3}))))
    probe = tenprint_from_proto(prints.capture(people[0], rng, missing=frozenset({1, 2})))
    mate = engine.identify(probe)
    assert mate is not None and mate.key == "A"
    stranger = tenprint_from_proto(prints.capture(people[1], rng, missing=frozenset(range(2, 11))))
    assert engine.identify(stranger) is None


def test_templates_survive_storage() -> None:
    prints, people = _people(1)
    template = tenprint_from_proto(prints.capture(people[0], np.random.default_rng(1)))
    again = TenprintTemplate.from_bytes(template.to_bytes())
    assert match_score(template, again) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(again.present, template.present)
    assert tenprint_from_proto(template.to_proto()).fingers_present == template.fingers_present


@pytest.mark.parametrize(
    ("finger", "words"),
    [
        (
            {"position": 1, "status": 1, "template": [float("inf")] * TEMPLATE_DIM},
            "NaN or infinite",
        ),
        ({"position": 1, "status": 2, "template": [1.0] * TEMPLATE_DIM}, "must not carry"),
        ({"position": 1, "template": [1.0] * TEMPLATE_DIM}, "status is required"),
    ],
)
def test_bad_templates_are_refused(finger: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        tenprint_from_proto(common.Tenprint(fingers=[common.FingerCapture(**finger)]))  # type: ignore[arg-type]


def test_check_running_names_the_ended_process_with_its_exit_code_and_log(tmp_path: Path) -> None:
    from services.cli.launcher import LocalFederation

    fed = LocalFederation(data_dir=tmp_path)
    fed.check_running("during the demo")  # nothing started, nothing ended
    lesc = fed.services["lesc"]
    lesc.log_path = tmp_path / "lesc.log"
    lesc.log_path.write_text("starting\nTraceback: boom\n")
    lesc.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    lesc.process.wait()
    with pytest.raises(RuntimeError) as failure:
        fed.check_running("during the demo")
    message = str(failure.value)
    assert message.startswith("services exited during the demo: lesc")
    assert "lesc#1 exited with code 3" in message and "Traceback: boom" in message
