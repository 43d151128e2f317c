"""An in-process federation: the five real hosts on loopback, port 0, in one event loop.

The project's own integration tests and the pytest plugin both start their federations here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from ..federation import Agency
from ..runtime.clock import Clock
from ..runtime.config import ServiceSettings
from ..runtime.server import ServiceHost


@dataclass
class DatabaseChoice:
    """Where the services keep their data: SQLite files under `tmp`, or one PostgreSQL schema
    per service at `postgres_url`."""

    kind: str
    tmp: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    postgres_url: str | None = None

    def settings_for(self, service: str) -> dict[str, Any]:
        """Database settings for one service (its own file or its own schema)."""
        if self.kind == "sqlite":
            return {"data_dir": self.tmp, "database_url": None}
        if not self.postgres_url:
            raise ValueError("a PostgreSQL database choice needs its postgres_url")
        return {"database_url": self.postgres_url, "db_schema": self.schema(service)}

    def schema(self, service: str) -> str:
        """The PostgreSQL schema of one service in this run."""
        return f"t{self.run_id}_{service}"


def make_settings(
    service: str, db: DatabaseChoice, *, instant_analysts: bool = True, **overrides: Any
) -> ServiceSettings:
    """Settings for one service on loopback port 0 with fast retries. With `instant_analysts`
    LESC's analysts take no agency time; otherwise they keep LESC's configured desk.

    The hosts share this process and its loopback, so they run plaintext and the SIB takes an
    LEA's ORI on trust (`tls="off"`, `lea_credentials="off"`), unlike a started federation;
    `overrides` turns either on (the project's TLS and credential tests do)."""
    settings_cls = Agency(service).profile.settings_class()
    values: dict[str, Any] = {
        "grpc_port": 0,
        "http_port": 0,
        # Fast retries, and enough of them that a slow restart never dead-letters a message.
        "outbox_max_attempts": 100_000,
        "outbox_base_delay_s": 0.02,
        "outbox_max_delay_s": 0.2,
        "outbox_poll_s": 0.1,
        "outbox_deadline_s": 5.0,
        "shutdown_grace_s": 0.5,
        "tls": "off",
        **({"lea_credentials": "off"} if service == Agency.SIB else {}),
        **db.settings_for(service),
        **({"desk_poll_s": 0.02} if service == Agency.LESC else {}),
        **(
            {"analyst_minutes": 0, "vtc_minutes": 0}
            if service == Agency.LESC and instant_analysts
            else {}
        ),
        **overrides,
    }
    return settings_cls(**values)


def make_host(
    service: str,
    db: DatabaseChoice,
    *,
    clock: Clock | None = None,
    instant_analysts: bool = True,
    tracer_provider: TracerProvider | None = None,
    **overrides: Any,
) -> ServiceHost:
    """A host for one service (not started); its spans go to `tracer_provider` when given."""
    settings = make_settings(service, db, instant_analysts=instant_analysts, **overrides)
    provider_cls = Agency(service).profile.provider_class()
    return ServiceHost(
        provider_cls(settings), settings, clock=clock, tracer_provider=tracer_provider
    )


@dataclass
class Federation:
    """Five started hosts wired to each other."""

    hosts: dict[str, ServiceHost]
    # Each service's settings overrides (TLS, for one), kept so that a restart keeps them.
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def addresses(self) -> dict[str, str]:
        """gRPC address of every service."""
        return {name: host.grpc_address for name, host in self.hosts.items()}

    def http_urls(self) -> dict[str, str]:
        """Base URL of every service's HTTP edge."""
        return {name: host.http_url for name, host in self.hosts.items()}

    def wire(self) -> None:
        """Points every outbox at every other service's current address."""
        for host in self.hosts.values():
            for peer, other in self.hosts.items():
                if other.grpc_port:
                    host.runtime.outbox.set_peer(peer, other.grpc_address)

    async def start(self) -> None:
        """Starts every host, then wires them to each other."""
        for host in self.hosts.values():
            await host.start()
        self.wire()

    async def restart(self, service: str, db: DatabaseChoice) -> None:
        """Replaces a stopped service with a fresh host on the same database and the same
        settings overrides (its clock apart: a fresh one), and rewires."""
        self.hosts[service] = make_host(service, db, **self.overrides.get(service, {}))
        await self.hosts[service].start()
        self.wire()

    @property
    def sib_url(self) -> str:
        """Base URL of the SIB's agency edge."""
        return self.hosts[Agency.SIB].http_url

    async def stop(self) -> None:
        """Stops every host that runs."""
        for host in self.hosts.values():
            if host.ready:
                await host.stop()


@asynccontextmanager
async def running_federation(
    db: DatabaseChoice, *, instant_analysts: bool = True, **overrides: dict[str, Any]
) -> AsyncIterator[Federation]:
    """Starts the five services (settings per service in `overrides`, a "clock" and a
    "tracer_provider" key included), wires them, and stops them afterwards."""
    hosts: dict[str, ServiceHost] = {}
    kept: dict[str, dict[str, Any]] = {}
    for name in Agency:
        settings = dict(overrides.get(name, {}))
        clock = settings.pop("clock", None)
        hosts[name] = make_host(
            name, db, clock=clock, instant_analysts=instant_analysts, **settings
        )
        kept[name] = settings
    fed = Federation(hosts=hosts, overrides=kept)
    try:
        await fed.start()
        yield fed
    finally:
        await fed.stop()
