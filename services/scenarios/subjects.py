"""Hand-made people: synthetic fingers, enrolled in IDENT or IAFIS where wanted, then booked.

The scenario runner and the integration tests both make their subjects here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scfed.cjis_iafis.v1 import cjis_iafis_pb2, cjis_iafis_pb2_grpc
from scfed.common.v1 import common_pb2
from scfed.ident.v1 import ident_pb2, ident_pb2_grpc

from ..federation import Agency
from ..runtime.tls import ChannelFactory, insecure_channels
from ..world.tenprints import SyntheticFingerprints


@dataclass
class Subject:
    """A synthetic person a scenario or test controls."""

    name: str
    fingers: np.ndarray[Any, Any]
    rng: np.random.Generator
    prints: SyntheticFingerprints
    missing: frozenset[int] = frozenset()
    sex: str = "M"
    dob: str = "19800101"
    fin: str = ""
    fbi_number: str = ""

    def capture(self) -> common_pb2.Tenprint:
        """A fresh, good-quality impression (amputated fingers marked so)."""
        return self.prints.capture(self.fingers, self.rng, quality=90, missing=self.missing)

    def fingers_json(self) -> list[dict[str, Any]]:
        """The capture as the SIB's HTTP edge takes it."""
        out: list[dict[str, Any]] = []
        for f in self.capture().fingers:
            if f.status == common_pb2.FINGER_STATUS_PRESENT:
                out.append(
                    {
                        "position": f.position,
                        "status": "present",
                        "template": list(f.template),
                        "quality": f.quality,
                    }
                )
            elif f.status == common_pb2.FINGER_STATUS_AMPUTATED:
                out.append({"position": f.position, "status": "amputated", "quality": 0})
            else:
                out.append({"position": f.position, "status": "unprintable", "quality": 0})
        return out

    def booking_body(
        self,
        ori: str,
        booking_number: str,
        codes: Sequence[str],
        *,
        doa: str = "20091015",
        descriptors: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The JSON an LEA posts to the SIB edge, `POST /v1/bookings`, to book this subject."""
        return {
            "ori": ori,
            "booking_number": booking_number,
            "doa": doa,
            "descriptors": descriptors or {"nam": self.name, "sex": self.sex, "dob": self.dob},
            "fingers": self.fingers_json(),
            "charges": [{"ncic_code": c, "literal": "TEST CHARGE"} for c in codes],
        }


@dataclass
class SubjectMaker:
    """Makes new people from one seed: the same seed and order give the same fingers."""

    seed: int = 99
    prints: SyntheticFingerprints = field(default_factory=SyntheticFingerprints)
    made: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def subject(
        self, name: str = "", *, missing: Iterable[int] = (), sex: str = "M", dob: str = "19800101"
    ) -> Subject:
        """A new person nobody knows yet."""
        self.made += 1
        n = self.made
        return Subject(
            name=name or f"TESTER,NUMBER{n}",
            fingers=self.prints.new_fingers(self.rng),
            rng=np.random.default_rng([self.seed, 1000 + n]),
            prints=self.prints,
            missing=frozenset(missing),
            sex=sex,
            dob=dob,
        )


async def enroll_in_ident(
    addresses: dict[str, str],
    subject: Subject,
    status: str,
    a_number: str = "A123456789",
    *,
    channels: ChannelFactory = insecure_channels,
) -> None:
    """Gives the subject an IDENT encounter with an immigration status (a suffix of
    scfed.common.v1.ImmigrationStatus, e.g. "VISA_OVERSTAY"); sets its FIN. `channels` dials
    IDENT (plaintext, or with the operator's certificate)."""
    async with channels(Agency.IDENT, addresses[Agency.IDENT]) as channel:
        reply = await ident_pb2_grpc.IdentStub(channel).EnrollEncounters(
            ident_pb2.EnrollEncountersRequest(
                encounters=[
                    ident_pb2.NewEncounter(
                        descriptors=common_pb2.Descriptors(nam=subject.name, sex=subject.sex),
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


async def enroll_in_iafis(
    addresses: dict[str, str],
    subject: Subject,
    convictions: Sequence[tuple[str, int]],
    *,
    ori: str = "CA0190000",
    doa: str = "20050101",
    channels: ChannelFactory = insecure_channels,
) -> None:
    """Gives the subject a criminal history, one prior arrest with these (NCIC code, sentence
    days) convictions; sets its FBI number. `channels` dials CJIS (plaintext, or with the
    operator's certificate)."""
    cycle = common_pb2.ArrestCycle(
        ori=ori,
        doa=doa,
        charges=[
            common_pb2.Charge(
                ncic_code=code,
                disposition=common_pb2.DISPOSITION_CONVICTED,
                sentence_days=days,
            )
            for code, days in convictions
        ],
    )
    async with channels(Agency.CJIS_IAFIS, addresses[Agency.CJIS_IAFIS]) as channel:
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
