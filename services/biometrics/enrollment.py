"""Index updates staged until the database transaction that caused them commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .engine import BiometricEngine
from .template import TenprintTemplate


@dataclass
class StagedEnrollments:
    """Index updates held back until the database transaction that caused them commits.

    Search-then-enrol must not interleave (one person would get two identities), so a
    transaction that may enrol runs inside `transaction()`, which serialises them, applies the
    staged enrolments and deletions to their indexes after a commit and forgets them after a
    rollback.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _pending: list[tuple[BiometricEngine, str, TenprintTemplate | None]] = field(
        default_factory=list
    )

    def stage(self, engine: BiometricEngine, key: str, template: TenprintTemplate) -> None:
        """Adds (or replaces) `template` under `key` in `engine` once the transaction commits."""
        self._pending.append((engine, key, template))

    def stage_delete(self, engine: BiometricEngine, key: str) -> None:
        """Removes `key` from `engine` once the transaction commits."""
        self._pending.append((engine, key, None))

    def staged(self, engine: BiometricEngine) -> list[tuple[str, TenprintTemplate]]:
        """What the running transaction has staged for `engine` so far (latest per key)."""
        latest: dict[str, TenprintTemplate | None] = {}
        for e, key, t in self._pending:
            if e is engine:
                latest[key] = t
        return [(key, t) for key, t in latest.items() if t is not None]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Runs one enrolling transaction at a time; commits or discards its index updates."""
        async with self.lock:
            try:
                yield
            except BaseException:
                self._pending.clear()
                raise
            for engine, key, template in self._pending:
                if template is None:
                    if key in engine:
                        engine.delete(key)
                else:
                    engine.enroll(key, template)
            self._pending.clear()
