"""Hand-made subjects for integration tests: enrol them where the test wants, then book them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import numpy as np

from scfed.cjis_iafis.v1 import cjis_iafis_pb2, cjis_iafis_pb2_grpc
from scfed.common.v1 import common_pb2
from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from services.sib.models import BookingStatus
from services.world.seeding import seed_world
from services.world.tenprints import SyntheticFingerprints
from services.world.world import build_world
from tests.conftest import eventually
from tests.federation import Federation

_ids = itertools.count(1)


@dataclass
class Subject:
    """A synthetic person the test controls."""

    name: str
    fingers: np.ndarray[Any, Any]
    rng: np.random.Generator
    prints: SyntheticFingerprints
    fin: str = ""
    fbi_number: str = ""

    def capture(self) -> common_pb2.Tenprint:
        """A fresh, good-quality impression."""
        return self.prints.capture(self.fingers, self.rng, quality=90)

    def fingers_json(self) -> list[dict[str, Any]]:
        """The capture as the SIB's HTTP edge takes it."""
        return [
            {
                "position": f.position,
                "status": "present",
                "template": list(f.template),
                "quality": f.quality,
            }
            if f.status == common_pb2.FINGER_STATUS_PRESENT
            else {"position": f.position, "status": "unprintable", "quality": 0}
            for f in self.capture().fingers
        ]


@dataclass
class Scenario:
    """The fixed world (states, agencies, field offices) plus subjects made per test."""

    fed: Federation
    client: httpx.AsyncClient
    prints: SyntheticFingerprints = field(default_factory=SyntheticFingerprints)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(99))

    async def setup(self) -> None:
        """Registers the world's states, agencies and field offices (no bookings)."""
        await seed_world(build_world(11, 0), self.fed.addresses())

    def subject(self, name: str = "") -> Subject:
        """A new person nobody knows yet."""
        n = next(_ids)
        return Subject(
            name=name or f"TESTER,NUMBER{n}",
            fingers=self.prints.new_fingers(self.rng),
            rng=np.random.default_rng(1000 + n),
            prints=self.prints,
        )

    async def in_ident(self, subject: Subject, status: str, a_number: str = "A123456789") -> None:
        """Gives the subject an IDENT encounter with an immigration status."""
        async with grpc.aio.insecure_channel(self.fed.addresses()["ident"]) as channel:
            reply = await ident_pb2_grpc.IdentStub(channel).EnrollEncounters(
                ident_pb2.EnrollEncountersRequest(
                    encounters=[
                        ident_pb2.NewEncounter(
                            descriptors=common_pb2.Descriptors(nam=subject.name, sex="M"),
                            tenprint=subject.capture(),
                            a_number=a_number,
                            encounter=common_pb2.Encounter(
                                encounter_type="BORDER-APPREHENSION",
                                status=common_pb2.ImmigrationStatus.Value(
                                    "IMMIGRATION_STATUS_" + status
                                ),
                            ),
                        )
                    ]
                )
            )
        subject.fin = reply.enrollments[0].fin

    async def in_iafis(self, subject: Subject, convictions: list[tuple[str, int]]) -> None:
        """Gives the subject a criminal history: (NCIC code, sentence days) convictions."""
        cycle = common_pb2.ArrestCycle(
            ori="CA0190000",
            doa="20050101",
            charges=[
                common_pb2.Charge(
                    ncic_code=code,
                    disposition=common_pb2.DISPOSITION_CONVICTED,
                    sentence_days=days,
                )
                for code, days in convictions
            ],
        )
        async with grpc.aio.insecure_channel(self.fed.addresses()["cjis_iafis"]) as channel:
            reply = await cjis_iafis_pb2_grpc.CjisIafisStub(channel).EnrollCriminalRecords(
                cjis_iafis_pb2.EnrollCriminalRecordsRequest(
                    records=[
                        cjis_iafis_pb2.CriminalRecord(
                            descriptors=common_pb2.Descriptors(nam=subject.name),
                            tenprint=subject.capture(),
                            cycles=[cycle],
                        )
                    ]
                )
            )
        subject.fbi_number = reply.fbi_numbers[0]

    async def book(
        self,
        subject: Subject,
        ori: str,
        codes: tuple[str, ...] = ("2399",),
        *,
        descriptors: dict[str, str] | None = None,
    ) -> str:
        """Submits a booking at the SIB's edge; returns its TCN."""
        body = {
            "ori": ori,
            "booking_number": f"BK-{next(_ids)}",
            "doa": "20091015",
            "descriptors": descriptors or {"nam": subject.name, "sex": "M", "dob": "19800101"},
            "fingers": subject.fingers_json(),
            "charges": [{"ncic_code": c, "literal": "TEST CHARGE"} for c in codes],
        }
        r = await self.client.post("/v1/bookings", json=body)
        assert r.status_code == 202, r.text
        return str(r.json()["tcn"])

    async def final(self, tcn: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """Waits until the booking is answered or refused; returns its view."""
        view: dict[str, Any] = {}

        async def done() -> bool:
            nonlocal view
            view = (await self.client.get(f"/v1/bookings/{tcn}")).json()
            return BookingStatus(view["status"]).finished

        await eventually(done, timeout=timeout, what=f"booking {tcn} to be final")
        return view

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

        async def idle() -> bool:
            async with httpx.AsyncClient() as client:
                for host in self.fed.hosts.values():
                    stats = (await client.get(f"{host.http_url}/v1/outbox")).json()
                    if stats["pending"] or stats["inflight"]:
                        return False
            return True

        await eventually(idle, what="every outbox to drain")


@asynccontextmanager
async def scenario_in(fed: Federation) -> AsyncIterator[Scenario]:
    """A Scenario over a running federation, its fixed world registered."""
    async with httpx.AsyncClient(base_url=fed.sib_url, timeout=30) as client:
        scenario = Scenario(fed, client)
        await scenario.setup()
        yield scenario
