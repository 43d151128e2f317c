"""The settings base every service extends: one class per service, one environment prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.federation import FEDERATION_PREFIX
from services.runtime.biometrics import DEFAULT_THRESHOLD, IndexParams
from services.runtime.clock import clock_from_spec


class ServiceSettings(BaseSettings):
    """Settings shared by all services.

    Each service subclass sets `env_prefix` (for example ``SCFED_SIB_``). Every setting can
    also be given federation-wide without the service part (``SCFED_DATABASE_URL``,
    ``SCFED_DATA_DIR``, ``SCFED_CJIS_IAFIS_ADDR``); the per-service variable wins.
    """

    model_config = SettingsConfigDict(env_prefix=FEDERATION_PREFIX, extra="ignore")

    service_name: ClassVar[str] = "service"

    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=0, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=0, ge=0, le=65535)
    data_dir: Path = Path(".scfed-data")
    database_url: str | None = None
    db_schema: str | None = None
    clock: str = "real"
    log_level: str = "INFO"
    outbox_max_attempts: int = Field(default=60, ge=1)
    outbox_base_delay_s: float = Field(default=0.1, gt=0)
    outbox_max_delay_s: float = Field(default=5.0, gt=0)
    outbox_deadline_s: float = Field(default=10.0, gt=0)
    outbox_batch: int = Field(default=16, ge=1)
    outbox_poll_s: float = Field(default=0.5, gt=0)
    shutdown_grace_s: float = Field(default=5.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Per-service variables first, then the federation-wide ``SCFED_*`` ones."""
        federation = EnvSettingsSource(settings_cls, env_prefix=FEDERATION_PREFIX)
        return (init_settings, env_settings, federation, dotenv_settings, file_secret_settings)

    @field_validator("clock")
    @classmethod
    def _clock_is_valid(cls, value: str) -> str:
        clock_from_spec(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_supported(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("postgresql://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError(
                "database_url must be postgresql+asyncpg://... (or postgresql://...) "
                f"or sqlite+aiosqlite:///path, got {value!r}"
            )
        return value

    @field_validator("db_schema")
    @classmethod
    def _schema_is_an_identifier(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError(f"db_schema must be a lower-case SQL identifier, got {value!r}")
        return value

    def resolved_database_url(self) -> str:
        """The database this service uses: the configured URL, or its SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / (self.service_name + '.db')}"

    def resolved_schema(self) -> str | None:
        """PostgreSQL schema this service owns (its "own database" on a shared server)."""
        if not self.database_url or not self.database_url.startswith("postgresql"):
            return None
        return self.db_schema or f"scfed_{self.service_name}"

    def peer_addresses(self) -> dict[str, str]:
        """The `*_addr` settings, keyed by peer service name."""
        return {
            name.removesuffix("_addr"): str(value)
            for name, value in self.model_dump().items()
            if name.endswith("_addr") and value
        }


class GallerySettings(ServiceSettings):
    """Settings of a service that holds a biometric gallery (IDENT, CJIS/IAFIS).

    `index_dir` is where the HNSW index is saved (``SCFED_IDENT_INDEX_DIR``,
    ``SCFED_CJIS_IAFIS_INDEX_DIR``); unset, the index is rebuilt from the database at every
    start. Give each service its own directory. `index_m` and `index_ef_construction` shape the
    graph (a saved index built otherwise is rebuilt); `index_ef` and `index_rescore` set the
    search breadth and the proposals rescored, traded between recall and search time (see the
    README's parameter table).
    """

    match_threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, lt=1)
    index_dir: Path | None = None
    index_save_every: int = Field(default=1000, ge=1)
    index_m: int = Field(default=IndexParams.m, ge=2, le=200)
    index_ef_construction: int = Field(default=IndexParams.ef_construction, ge=1)
    index_ef: int = Field(default=IndexParams.ef, ge=1)
    index_rescore: int = Field(default=IndexParams.rescore, ge=1, le=10_000)

    def index_params(self) -> IndexParams:
        """The HNSW parameters these settings ask for (ef at least the proposals rescored)."""
        return IndexParams(m=self.index_m, ef_construction=self.index_ef_construction).searching(
            ef=self.index_ef, rescore=self.index_rescore
        )
