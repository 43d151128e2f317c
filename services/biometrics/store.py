"""The saved copy of a service's biometric index, kept consistent with its database.

The database is the source of truth. Every change to a gallery tenprint (enrolment, a merged
encounter, a deletion) is also written as a row of `biometric_changes` in the same transaction
as the record it changes. The index is saved to a directory beside a manifest that holds the
SHA-256 of each file and the watermark: the id of the last change the saved index reflects.

At start the service loads the saved index and replays the changes after its watermark. It
rebuilds the index from its records instead when the saved copy is missing, stale (another
model, dimension, coarse vector or index parameters), damaged (a hash that does not match, a
file that does not load) or ahead of the database (a watermark past its last change, as after a
database restore). The index is saved again every `save_every` changes and at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from ..runtime.db import Database
from .changes import OP_DELETE, OP_ENROLL
from .config import GallerySettings
from .engine import BiometricEngine, file_sha256, load_gallery
from .enrollment import StagedEnrollments
from .params import COARSE_VERSION, MODEL_VERSION
from .template import TenprintTemplate

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
DEFAULT_SAVE_EVERY = 1000

GalleryRows = Callable[[AsyncSession], Awaitable[Iterable[tuple[str, bytes]]]]
# Told how long each timed 1:N search took: the RPC it served and the seconds.
SearchObserver = Callable[[str, float], None]


@dataclass
class BiometricStore:
    """Writes the change log, saves the index, and loads or rebuilds it at start."""

    engine: BiometricEngine
    changes: Table
    directory: Path | None = None
    save_every: int = DEFAULT_SAVE_EVERY
    _unsaved: int = 0
    _watermark: int = 0
    last_start: str = ""

    @classmethod
    def for_settings(cls, settings: GallerySettings, changes: Table) -> BiometricStore:
        """A store over a new engine, as a gallery service's settings describe both."""
        return cls(
            engine=BiometricEngine(
                threshold=settings.fixed_threshold(),
                target_fpir=settings.target_fpir,
                params=settings.index_params(),
                # A fit at each doubling searches the gallery 20,000 times (about 30 s at a
                # million): off the enrolling call, so enrolments do not wait for it.
                background_fit=True,
            ),
            changes=changes,
            directory=settings.index_dir,
            save_every=settings.index_save_every,
        )

    async def record(self, session: AsyncSession, key: str, template: TenprintTemplate) -> None:
        """Logs that `key` now has `template`, in the caller's transaction."""
        await session.execute(
            insert(self.changes).values(gallery_key=key, op=OP_ENROLL, tenprint=template.to_bytes())
        )
        self._unsaved += 1

    async def record_delete(self, session: AsyncSession, key: str) -> None:
        """Logs that `key` left the gallery, in the caller's transaction."""
        await session.execute(
            insert(self.changes).values(gallery_key=key, op=OP_DELETE, tenprint=b"")
        )
        self._unsaved += 1

    def _expected(self) -> dict[str, Any]:
        p = self.engine.params
        return {
            "model_version": MODEL_VERSION,
            "coarse": COARSE_VERSION,
            "dim": self.engine.dim,
            "m": p.m,
            "ef_construction": p.ef_construction,
        }

    async def _last_change(self, db: Database) -> int:
        async with db.session() as session:
            return int(await session.scalar(select(func.max(self.changes.c.id))) or 0)

    async def start(self, db: Database, rows: GalleryRows) -> str:
        """Loads the saved index and replays later changes, or rebuilds it; says which."""
        last = await self._last_change(db)
        reason = self._load_saved(last) if self.directory is not None else "no index directory"
        if reason:
            count = await self.rebuild(db, rows, last_change=last)
            self.last_start = f"rebuilt {count} from the database ({reason})"
        else:
            loaded = len(self.engine)
            replayed = await self._replay(db, self._watermark)
            self.last_start = f"loaded {loaded} and replayed {replayed} changes"
            if replayed:
                await self.save(db)
        log.info("biometric index: %s", self.last_start)
        return self.last_start

    async def rebuild(
        self, db: Database, rows: GalleryRows, *, last_change: int | None = None
    ) -> int:
        """Empties the index, enrols every record's tenprint again and saves the index (at a
        start that cannot use the saved copy, or after a snapshot load); returns the count."""
        last = await self._last_change(db) if last_change is None else last_change
        self.engine.clear()
        async with db.session() as session:
            count = load_gallery(self.engine, await rows(session))
        self._unsaved = 0
        if self.directory is not None:
            await self.save(db, watermark=last)
        return count

    def _load_saved(self, last_change: int) -> str:
        """Loads the saved copy; returns why it cannot be used, or '' when it was loaded."""
        assert self.directory is not None
        manifest_path = self.directory / MANIFEST_FILE
        if not manifest_path.exists():
            return "no saved index"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if {k: manifest.get(k) for k in self._expected()} != self._expected():
                return "saved index is stale (another model or index parameters)"
            for name, digest in manifest["files"].items():
                if file_sha256(self.directory / name) != digest:
                    return f"saved index is damaged ({name} does not match its hash)"
            watermark = int(manifest["watermark"])
            if watermark > last_change:
                return "saved index is ahead of the database"
            self.engine.load(self.directory)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            return f"saved index does not load ({exc})"
        self._watermark = watermark
        return ""

    async def _replay(self, db: Database, after: int) -> int:
        async with db.session() as session:
            result = await session.execute(
                select(
                    self.changes.c.id,
                    self.changes.c.gallery_key,
                    self.changes.c.op,
                    self.changes.c.tenprint,
                )
                .where(self.changes.c.id > after)
                .order_by(self.changes.c.id)
            )
            rows = result.all()
        for _, key, op, blob in rows:
            if op == OP_DELETE:
                if key in self.engine:
                    self.engine.delete(key)
            else:
                self.engine.enroll(key, TenprintTemplate.from_bytes(blob, self.engine.dim))
        return len(rows)

    async def save(self, db: Database, *, watermark: int | None = None) -> None:
        """Saves the index with its manifest (call where no enrolling transaction runs)."""
        if self.directory is None:
            return
        mark = await self._last_change(db) if watermark is None else watermark
        directory = self.directory
        hashes = await asyncio.to_thread(self.engine.save, directory)
        manifest = {
            **self._expected(),
            "watermark": mark,
            "gallery_size": len(self.engine),
            "files": hashes,
        }
        tmp = directory / (MANIFEST_FILE + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(tmp, directory / MANIFEST_FILE)
        self._watermark = mark
        self._unsaved = 0

    async def reset(self, db: Database) -> None:
        """Empties the index after its records and change log were deleted, and saves the
        empty copy, so a restart does not load the old gallery back."""
        self.engine.clear()
        self._unsaved = 0
        self._watermark = 0
        self.last_start = ""
        await self.save(db, watermark=0)

    async def maybe_save(self, db: Database) -> None:
        """Saves once `save_every` changes have been logged since the last save."""
        if self._unsaved >= self.save_every:
            await self.save(db)


@dataclass(kw_only=True)
class StoredGallery:
    """The index lifecycle every service's gallery shares, over its `store` and `enrollments`.

    A gallery names its records' key and tenprint columns in `gallery_columns`; starting loads
    the saved index or rebuilds it from those rows, and the index is saved after commits (every
    `save_every` changes) and at shutdown, always under the enrolment lock.
    """

    gallery_columns: ClassVar[tuple[InstrumentedAttribute[str], InstrumentedAttribute[bytes]]]

    store: BiometricStore
    enrollments: StagedEnrollments = field(default_factory=StagedEnrollments)
    # Set by the service's metrics (a latency histogram); the domain only times.
    on_search: SearchObserver | None = None

    @property
    def engine(self) -> BiometricEngine:
        """The store's search engine."""
        return self.store.engine

    @contextmanager
    def timed_search(self, rpc: str) -> Iterator[None]:
        """Times the 1:N search inside the block for `on_search`, naming the RPC it serves."""
        began = time.perf_counter()
        try:
            yield
        finally:
            if self.on_search is not None:
                self.on_search(rpc, time.perf_counter() - began)

    async def gallery_rows(self, session: AsyncSession) -> list[tuple[str, bytes]]:
        """Every enrolled record's key and tenprint blob, in key order (the engine learns its
        coarse centre from the first rows)."""
        key, tenprint = self.gallery_columns
        result = await session.execute(select(key, tenprint).order_by(key))
        return [(row_key, blob) for row_key, blob in result]

    async def start(self, db: Database) -> str:
        """Loads the saved index (replaying later changes) or rebuilds it from the records."""
        return await self.store.start(db, self.gallery_rows)

    @asynccontextmanager
    async def changing(self, db: Database) -> AsyncIterator[AsyncSession]:
        """A session whose enrolments reach the index when it commits; then saves if due."""
        async with self.enrollments.transaction(), db.session() as session:
            yield session
        await self.after_commit(db)

    async def after_commit(self, db: Database) -> None:
        """Saves the index when enough changes have gathered (under the enrolment lock)."""
        async with self.enrollments.lock:
            await self.store.maybe_save(db)

    async def reset(self, db: Database) -> None:
        """Empties the index once the records are gone (under the enrolment lock)."""
        async with self.enrollments.lock:
            await self.store.reset(db)

    async def rebuild(self, db: Database) -> int:
        """Rebuilds the index from the records, as after a snapshot load replaced them (under
        the enrolment lock); returns the gallery size."""
        async with self.enrollments.lock:
            return await self.store.rebuild(db, self.gallery_rows)

    async def stop(self, db: Database) -> None:
        """Saves the index at shutdown."""
        async with self.enrollments.lock:
            await self.store.save(db)
