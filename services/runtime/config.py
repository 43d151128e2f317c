"""The settings base every service extends: one class per service, one environment prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ..federation import FEDERATION_PREFIX
from .clock import clock_from_spec


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
    # The lowest level logged, and the form of each line (logs.py): "json", one JSON object
    # per line, for a collector; "text", the plain line; "auto", text when stderr is a
    # terminal and JSON otherwise (a container, a file, a pipe).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    # Distributed tracing (tracing.py): "on" makes spans (the journal and the logs get trace
    # ids) and exports them by OTLP when OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT names a
    # collector; "auto" is on exactly when one is named; "off" makes none.
    tracing: Literal["off", "on", "auto"] = "auto"
    # The event loop a started service runs on: uvloop (libuv; the services spend less CPU per
    # message on it, see `scfed bench federation`), or the standard library's asyncio loop.
    # Where uvloop is not installed (Windows), asyncio.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    outbox_max_attempts: int = Field(default=60, ge=1)
    outbox_base_delay_s: float = Field(default=0.1, gt=0)
    outbox_max_delay_s: float = Field(default=5.0, gt=0)
    outbox_deadline_s: float = Field(default=10.0, gt=0)
    outbox_batch: int = Field(default=16, ge=1)
    outbox_poll_s: float = Field(default=0.5, gt=0)
    shutdown_grace_s: float = Field(default=5.0, ge=0)
    # How long one connection attempt to the database may take (a server that accepts and
    # never answers would otherwise hold the start for a minute).
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    # Attempts to reach the database at start, with backoff between them (1 s doubling to
    # 30 s), before the service gives up and exits; the HTTP edge answers /readyz 503 meanwhile.
    db_start_attempts: int = Field(default=6, ge=1)
    # How often readiness (database and delivery worker) is probed; gRPC health and /readyz
    # both follow the last probe.
    readiness_probe_s: float = Field(default=2.0, gt=0)
    # While the database is out, one summary line this often (plus one at its start and end).
    outage_summary_s: float = Field(default=30.0, gt=0)
    # The largest gRPC request the service takes, in MiB (gRPC's own default is 4): an
    # AdminService.LoadSnapshot carries the service's whole state.
    grpc_max_message_mb: int = Field(default=256, ge=4, le=2047)
    # The largest request body the HTTP edge reads, in bytes (a booking is a few KiB), refused
    # with 413 before it is parsed; the snapshot PUT (the service's whole state) has its own.
    http_max_body_bytes: int = Field(default=2**20, ge=1024)
    http_max_snapshot_bytes: int = Field(default=2 * 2**30, ge=1024)
    # Mutual TLS on the gRPC hops (runtime/tls.py): "on" binds the gRPC port with the service's
    # certificate, admits only clients with one from the federation's CA, and dials peers
    # with it (the default); "off" is plaintext, said in a warning at start.
    tls: Literal["on", "off"] = "on"
    # Where the certificates are (`scfed certs init --dir D`); default <data_dir>/certs.
    tls_dir: Path | None = None
    # The SHA-256 (hex) of the operator's token, which the HTTP operator routes ask for with
    # TLS on (operator_http.py); default: the file operator.token.sha256 in the TLS directory.
    operator_token_sha256: str | None = None

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

    @field_validator("tls", "log_format", "tracing", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        level = value.strip().upper()
        # The standard library's own alias, which a service took before levels were checked.
        return "WARNING" if level == "WARN" else level

    @field_validator("operator_token_sha256", mode="before")
    @classmethod
    def _token_hash_is_hex(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        digest = value.strip().lower()
        if not digest:
            return None
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError("operator_token_sha256 must be 64 hex digits (a SHA-256)")
        return digest

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

    def resolved_tls_dir(self) -> Path:
        """Where this service's certificates are: `tls_dir`, else <data_dir>/certs."""
        return self.tls_dir or self.data_dir / "certs"

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
