"""Index updates staged until the transaction that caused them commits."""

from __future__ import annotations

import asyncio

import pytest

from services.biometrics.engine import BiometricEngine
from services.biometrics.enrollment import StagedEnrollments
from services.world.tenprints import SyntheticFingerprints
from tests.unit.biometrics.captures import capture_template, new_people


def test_staged_enrollments_reach_the_index_only_when_the_transaction_commits(
    prints: SyntheticFingerprints,
) -> None:
    alice, bob = new_people(prints, 2)
    engine = BiometricEngine()
    staged = StagedEnrollments()

    async def scenario() -> None:
        async with staged.transaction():
            staged.stage(engine, "alice", capture_template(prints, alice, seed=22))
            assert [key for key, _ in staged.staged(engine)] == ["alice"]
            assert "alice" not in engine
        assert "alice" in engine
        with pytest.raises(RuntimeError, match="rolled back"):
            async with staged.transaction():
                staged.stage(engine, "bob", capture_template(prints, bob, seed=23))
                raise RuntimeError("rolled back")
        assert "bob" not in engine
        assert staged.staged(engine) == []

    asyncio.run(scenario())
    assert len(engine) == 1
