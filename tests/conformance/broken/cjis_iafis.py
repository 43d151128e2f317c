"""CJIS/IAFIS, broken: an IDENT search without the MOA attested, or with only the MOA gate
read, no SRE, no IAQ on a match, an unknown FBI number's CPI dropped silently, a retried CAR
processed again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from services.cjis_iafis import domain
from services.cjis_iafis.domain import CriminalMasterFile
from services.federation import Agency
from services.runtime import message_routes
from services.runtime.delivery import Outbox
from services.runtime.message_routes import Route
from tests.conformance.broken.common import forget_message_ids
from tests.conformance.harness import Broken


def _searches_without_moa(monkeypatch: pytest.MonkeyPatch) -> None:
    take_car = CriminalMasterFile.take_car

    async def eager(
        self: CriminalMasterFile, session: AsyncSession, car: cjis.Car, *, who: str
    ) -> str:
        attested = cjis.Car()
        attested.CopyFrom(car)
        attested.interoperability.moa_active = True
        attested.interoperability.jurisdiction_activated = True
        return await take_car(self, session, attested, who=who)

    monkeypatch.setattr(CriminalMasterFile, "take_car", eager)


def _reads_only_the_moa_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    def moa_only(interop: cjis.Interoperability, *, ori: str, doa: str) -> tuple[bool, str]:
        return interop.moa_active, "MOA gate only"

    monkeypatch.setattr(domain, "interoperability_search", moa_only)


def _drops(dropped: Route[Any]) -> Callable[[pytest.MonkeyPatch], None]:
    """A break: the outbox silently drops every message for the `dropped` route."""

    def apply(monkeypatch: pytest.MonkeyPatch) -> None:
        add = Outbox.add

        def dropping(
            self: Outbox, session: AsyncSession, *, route: Route[Any], message: Any
        ) -> None:
            if route.path != dropped.path:
                add(self, session, route=route, message=message)

        monkeypatch.setattr(Outbox, "add", dropping)

    return apply


VARIANTS = [
    Broken(
        Agency.CJIS_IAFIS,
        "searches IDENT although the MOA is not attested",
        "CAR without an active MOA gets an SRE and no IDENT search",
        _searches_without_moa,
    ),
    Broken(
        Agency.CJIS_IAFIS,
        "searches IDENT for a jurisdiction its rollout phase has not reached",
        "CAR from a jurisdiction its rollout phase activates later gets no IDENT search",
        _reads_only_the_moa_gate,
    ),
    Broken(
        Agency.CJIS_IAFIS,
        "never sends the SRE",
        "CAR of someone new is answered with an SRE 'N' assigning an FBI number",
        _drops(message_routes.SIB_DELIVER_SRE),
    ),
    Broken(
        Agency.CJIS_IAFIS,
        "sends no IAQ on a match",
        "A match IDR becomes an IAQ to LESC with the FIN and the booking's charges",
        _drops(message_routes.LESC_SUBMIT_IAQ),
    ),
    Broken(
        Agency.CJIS_IAFIS,
        "drops the ERRT of a CPI for an unknown FBI number",
        "CPI for an unknown FBI number is answered with an ERRT UNKNOWN_FBI_NUMBER",
        _drops(message_routes.SIB_DELIVER_ERRT),
    ),
    Broken(
        Agency.CJIS_IAFIS,
        "processes a retried CAR again",
        "A repeated CAR message id is acknowledged as a duplicate and answered once",
        forget_message_ids,
    ),
]
