"""The in-process federation of the integration tests (services.testing.federation), on the
test PostgreSQL at 127.0.0.1:5432 where a test asks for it."""

from __future__ import annotations

from dataclasses import dataclass

from services.testing.federation import (
    DatabaseChoice as _DatabaseChoice,
)
from services.testing.federation import (
    Federation,
    make_host,
    make_settings,
    running_federation,
)

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

__all__ = [
    "POSTGRES_URL",
    "DatabaseChoice",
    "Federation",
    "make_host",
    "make_settings",
    "running_federation",
]


@dataclass
class DatabaseChoice(_DatabaseChoice):
    """The tests' database choice: PostgreSQL means the test database."""

    postgres_url: str | None = POSTGRES_URL
