"""Well-formed messages of every contract, for the conformance cases and our own edge tests.

Each builder gives a message a conforming agency accepts in shape (its own fresh message id and
TCN); keyword arguments replace parts of it, so a case spoils exactly one thing. The bookings
they name are unknown to the target unless a case books them first.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.ident.v1 import ident_pb2 as ident
from scfed.lesc.v1 import lesc_pb2 as lesc

from ..biometrics.params import TEMPLATE_DIM

# The LEA every case books through (registered by the SIB suite's setup) and a TCR nobody has.
CA: Final = "CA0190000"
UNKNOWN_TCR: Final = "TCR-EDGE-404"


def new_tcn(prefix: str = "CONF") -> str:
    """A transaction control number no target has seen."""
    return prefix + uuid.uuid4().hex[:12].upper()


def envelope(tot: str, **fields: Any) -> common.Envelope:
    """A well-formed envelope (fresh message id) for a booking nobody knows."""
    values: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "tot": tot,
        "tcn": new_tcn("EDGE"),
        "tcr": UNKNOWN_TCR,
        "ori": CA,
        "pry": 5,
        "sender": "test",
    }
    values.update(fields)
    return common.Envelope(**values)


def finger(slot: int, **fields: Any) -> common.FingerCapture:
    """A good present finger in `slot`; `fields` replace parts of it."""
    values: dict[str, Any] = {
        "position": slot,
        "status": common.FINGER_STATUS_PRESENT,
        "template": [0.1 * slot] + [0.5] * (TEMPLATE_DIM - 1),
        "quality": 80,
    }
    values.update(fields)
    return common.FingerCapture(**values)


def tenprint(**first: Any) -> common.Tenprint:
    """Two good fingers; `first` overrides fields of the first one."""
    return common.Tenprint(fingers=[finger(1, **first), finger(2)])


def charge(code: str = "2399") -> common.Charge:
    """A current charge with this NCIC code."""
    return common.Charge(ncic_code=code, literal="THEFT", disposition=common.DISPOSITION_CHARGED)


NAM = common.Descriptors(nam="DOE,JOHN", sex="M", dob="19800101")
AMPUTATED_PRINT = common.Tenprint(
    fingers=[
        common.FingerCapture(position=p, status=common.FINGER_STATUS_AMPUTATED)
        for p in range(1, 11)
    ]
)


def car(**fields: Any) -> cjis.Car:
    """A well-formed CAR (with a TCN of its own); `fields` replace parts of it."""
    values: dict[str, Any] = {
        "envelope": envelope("CAR", tcr=""),
        "sid": "CA0000000001",
        "descriptors": NAM,
        "tenprint": tenprint(),
        "charges": [charge()],
        "booking_number": "BK-EDGE",
        "doa": "20091015",
    }
    values.update(fields)
    return cjis.Car(**values)


def cpi(**fields: Any) -> cjis.Cpi:
    """A well-formed CPI (with a TCN of its own); `fields` replace parts of it."""
    values: dict[str, Any] = {
        "envelope": envelope("CPI", tcr=""),
        "sid": "TX0000000001",
        "fbi_number": "1234567AB",
        "descriptors": NAM,
        "charges": [charge()],
        "booking_number": "BK-EDGE",
        "doa": "20091015",
    }
    values.update(fields)
    return cjis.Cpi(**values)


def search(**fields: Any) -> ident.IdentSearch:
    """A well-formed IDENT search; `fields` replace parts of it."""
    values: dict[str, Any] = {"envelope": envelope("IDENT-SEARCH"), "tenprint": tenprint()}
    values.update(fields)
    return ident.IdentSearch(**values)


def removal_notice(**fields: Any) -> ident.EncounterNotice:
    """A well-formed removal encounter from the field office for a FIN nobody knows; `fields`
    replace the FIN or parts of the encounter."""
    encounter: dict[str, Any] = {
        "encounter_id": f"REMOVAL-{uuid.uuid4().hex[:12].upper()}",
        "encounter_type": "REMOVAL",
        "encountered_at": Timestamp(seconds=1262304000),  # 2010-01-01
        "status": common.IMMIGRATION_STATUS_PREVIOUSLY_REMOVED,
    }
    fin = fields.pop("fin", "FINEDGE00001")
    encounter.update(fields)
    return ident.EncounterNotice(
        envelope=envelope("ENCOUNTER", ori="CAICE0100"),
        fin=fin,
        encounter=common.Encounter(**encounter),
    )


def iaq(**fields: Any) -> lesc.Iaq:
    """A well-formed IAQ with a matching IDR; `fields` replace parts of it."""
    values: dict[str, Any] = {
        "envelope": envelope("IAQ"),
        "pur": "C",
        "descriptors": NAM,
        "cus": "Y",
        "off": [charge()],
        "idr": common.Idr(match=True, fin="FINEDGE00001"),
    }
    values.update(fields)
    return lesc.Iaq(**values)


def iar(**fields: Any) -> common.Iar:
    """An IAR of a removable subject charged at Level 1; `fields` replace parts of it."""
    values: dict[str, Any] = {
        "case_id": "LESCEDGE0001",
        "fin": "FINEDGE00001",
        "status": common.IMMIGRATION_STATUS_ENTRY_WITHOUT_INSPECTION,
        "removable": True,
        "current_charge_level": common.OFFENSE_LEVEL_1,
        "prior_conviction_level": common.OFFENSE_LEVEL_NONE,
    }
    values.update(fields)
    return common.Iar(**values)


class Person:
    """A synthetic person no target knows: the same ten fingers at every capture."""

    _people = 0

    def __init__(self, name: str = "") -> None:
        import numpy as np

        from ..world.tenprints import SyntheticFingerprints

        Person._people += 1
        self.name = name or f"CONFORMANCE,PERSON{Person._people}"
        self._rng = np.random.default_rng()
        self._prints = SyntheticFingerprints()
        self._fingers = self._prints.new_fingers(self._rng)

    def capture(self) -> common.Tenprint:
        """A fresh good-quality impression of every finger, none unprintable."""
        return self._prints.capture(self._fingers, self._rng, quality=90, unprintable_rate=0.0)

    def descriptors(self) -> common.Descriptors:
        """The person's name, sex and date of birth."""
        return common.Descriptors(nam=self.name, sex="M", dob="19800101")

    def encounter(
        self, status: int = common.IMMIGRATION_STATUS_VISA_OVERSTAY
    ) -> ident.NewEncounter:
        """An IDENT encounter of this person with an immigration status."""
        return ident.NewEncounter(
            descriptors=self.descriptors(),
            tenprint=self.capture(),
            encounter=common.Encounter(status=status),  # type: ignore[arg-type]
        )
