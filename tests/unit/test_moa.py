"""A state's MOA in effect: signed and active, suspended, or ended 30 days after notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scfed.sib.v1 import sib_pb2
from services.sib.domain import moa_in_effect
from services.sib.models import StateRecord


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
