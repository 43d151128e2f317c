"""Hand-made subjects for integration tests: enrol them where the test wants, then book them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.runtime.tls import ChannelFactory, insecure_channels
from services.scenarios.subjects import Subject, SubjectMaker, enroll_in_iafis, enroll_in_ident
from services.world.seeding import seed_world
from services.world.world import build_world
from tests.federation import Federation
from tests.support import eventually, final_booking, wait_outboxes_idle

_ids = itertools.count(1)


@dataclass
class Scenario:
    """The fixed world (states, agencies, field offices) plus subjects made per test."""

    fed: Federation
    client: httpx.AsyncClient
    maker: SubjectMaker = field(default_factory=SubjectMaker)
    # How the seeding dials the services: plaintext, or with the operator's certificate.
    channels: ChannelFactory = insecure_channels

    async def setup(self) -> None:
        """Registers the world's states, agencies and field offices (no bookings)."""
        await seed_world(build_world(11, 0), self.fed.addresses(), channels=self.channels)

    def subject(self, name: str = "") -> Subject:
        """A new person nobody knows yet."""
        return self.maker.subject(name or f"TESTER,NUMBER{next(_ids)}")

    async def in_ident(self, subject: Subject, status: str, a_number: str = "A123456789") -> None:
        """Gives the subject an IDENT encounter with an immigration status."""
        await enroll_in_ident(
            self.fed.addresses(), subject, status, a_number, channels=self.channels
        )

    async def in_iafis(self, subject: Subject, convictions: list[tuple[str, int]]) -> None:
        """Gives the subject a criminal history: (NCIC code, sentence days) convictions."""
        await enroll_in_iafis(self.fed.addresses(), subject, convictions, channels=self.channels)

    async def book(
        self,
        subject: Subject,
        ori: str,
        codes: tuple[str, ...] = ("2399",),
        *,
        descriptors: dict[str, str] | None = None,
    ) -> str:
        """Submits a booking at the SIB's edge; returns its TCN."""
        body = subject.booking_body(ori, f"BK-{next(_ids)}", codes, descriptors=descriptors)
        r = await self.client.post("/v1/bookings", json=body)
        assert r.status_code == 202, r.text
        return str(r.json()["tcn"])

    async def final(self, tcn: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """Waits until the booking is answered or refused; returns its view."""
        return await final_booking(self.client, tcn, timeout=timeout)

    async def inbox(self, ori: str) -> list[dict[str, Any]]:
        """The LEA's inbox."""
        r = await self.client.get(f"/v1/agencies/{ori}/messages")
        assert r.status_code == 200, r.text
        return list(r.json())

    async def detainers_for(self, tcn: str, ori: str, *, expect: int) -> list[dict[str, Any]]:
        """Waits until `expect` detainers for the booking are in the LEA's inbox."""
        found: list[dict[str, Any]] = []

        async def arrived() -> bool:
            nonlocal found
            found = [m for m in await self.inbox(ori) if m["kind"] == "I-247" and m["tcn"] == tcn]
            return len(found) >= expect

        await eventually(arrived, what=f"{expect} detainer(s) for {tcn}")
        return found

    async def quiet(self) -> None:
        """Waits until no service holds undelivered messages."""
        await wait_outboxes_idle(host.http_url for host in self.fed.hosts.values())


@asynccontextmanager
async def scenario_in(
    fed: Federation, *, channels: ChannelFactory = insecure_channels
) -> AsyncIterator[Scenario]:
    """A Scenario over a running federation, its fixed world registered (seeded through
    `channels`)."""
    async with httpx.AsyncClient(base_url=fed.sib_url, timeout=30) as client:
        scenario = Scenario(fed, client, channels=channels)
        await scenario.setup()
        yield scenario
