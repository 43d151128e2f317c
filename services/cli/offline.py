"""Reading a stopped federation's databases: each agency's SQLite file or PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..federation import Agency
from ..runtime.db import Database

T = TypeVar("T")


@dataclass(frozen=True)
class OfflineDatabases:
    """Where the agencies' databases are: one SQLite file per agency in `data_dir`, or one
    schema per agency (``<schema_prefix>_<agency>``) at `database_url`."""

    data_dir: Path | None
    database_url: str | None
    schema_prefix: str = "scfed"

    def database(self, agency: Agency) -> Database:
        """The agency's database, not yet connected; FileNotFoundError if its file is missing."""
        if self.database_url:
            return Database(self.database_url, schema=f"{self.schema_prefix}_{agency}")
        if self.data_dir is None:
            raise ValueError("give a data dir or a database URL to read a stopped federation")
        path = self.data_dir / f"{agency}.db"
        if not path.exists():
            raise FileNotFoundError(f"no database for {agency} at {path}")
        return Database(f"sqlite+aiosqlite:///{path}")

    async def read_each(
        self, agencies: Iterable[Agency], read: Callable[[Agency, Database], Awaitable[T]]
    ) -> dict[Agency, T]:
        """What `read` returns from each agency's database, in turn; each is closed afterwards."""
        results: dict[Agency, T] = {}
        for agency in agencies:
            db = self.database(agency)
            await db.connect([])
            try:
                results[agency] = await read(agency, db)
            finally:
                await db.dispose()
        return results
