"""The federation in one process: five real hosts on loopback, port 0, wired to each other.

The scenario runner starts one per scenario (SQLite in a temporary folder, one clock shared by
every agency); the integration tests start theirs the same way, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from ..federation import Agency
from ..runtime.clock import Clock
from ..runtime.config import ServiceSettings
from ..runtime.server import ServiceHost


def make_settings(service: str, database: Mapping[str, Any], **overrides: Any) -> ServiceSettings:
    """Settings for one service on loopback port 0 with fast retries; `database` holds its
    database settings (data_dir, or database_url and db_schema)."""
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
        **database,
        # LESC's analysts work instantly unless a caller steps time through their handling.
        **(
            {"analyst_minutes": 0, "vtc_minutes": 0, "desk_poll_s": 0.02}
            if service == Agency.LESC
            else {}
        ),
        **overrides,
    }
    return settings_cls(**values)


def make_host(
    service: str, database: Mapping[str, Any], *, clock: Clock | None = None, **overrides: Any
) -> ServiceHost:
    """A host for one service (not started)."""
    settings = make_settings(service, database, **overrides)
    provider_cls = Agency(service).profile.provider_class()
    return ServiceHost(provider_cls(settings), settings, clock=clock)


@dataclass
class Federation:
    """Five started hosts wired to each other."""

    hosts: dict[str, ServiceHost]

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

    @property
    def sib_url(self) -> str:
        """Base URL of the SIB's agency edge."""
        return self.hosts[Agency.SIB].http_url

    async def stop(self) -> None:
        """Stops every host that runs."""
        for host in self.hosts.values():
            if host.ready:
                await host.stop()


F = TypeVar("F", bound=Federation)


@asynccontextmanager
async def running_federation(
    database: Callable[[str], Mapping[str, Any]],
    federation_class: type[F],
    **overrides: dict[str, Any],
) -> AsyncIterator[F]:
    """Starts the five services (each in the database `database(service)` gives; settings per
    service in `overrides`, a "clock" key included) as a `federation_class`, wires them, and
    stops them afterwards."""
    hosts: dict[str, ServiceHost] = {}
    for name in Agency:
        settings = dict(overrides.get(name, {}))
        clock = settings.pop("clock", None)
        hosts[name] = make_host(name, database(name), clock=clock, **settings)
    fed = federation_class(hosts=hosts)
    try:
        await fed.start()
        yield fed
    finally:
        await fed.stop()
