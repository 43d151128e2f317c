"""SIB, broken: relays despite no relay capability, forgets NFF (a CAR instead of a CPI), accepts
race and ethnicity, ignores a suspended MOA, attests both gates with one boolean, ignores a
jurisdiction's activation day, never sends the CAR, processes a retried SRE again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.sib.v1 import sib_pb2 as pb
from services.federation import Agency
from services.runtime.envelope import MessageType
from services.runtime.errors import InvalidArgument
from services.runtime.proto_json import to_json
from services.sib import api, domain
from services.sib.domain import StateBureau
from services.sib.models import StateRecord
from tests.conformance.broken.common import forget_message_ids
from tests.conformance.harness import Broken


def _relays_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    async def relaying(self: StateBureau, session: AsyncSession, message: Any) -> str:
        which = message.WhichOneof("response")
        if which is None:
            raise InvalidArgument("response (no_match or joint) is required")
        booking = await self._booking(session, message.envelope)
        kind = MessageType.NO_MATCH_IDR if which == "no_match" else MessageType.IDR_IAR
        booking.idr_received = True
        self._respond(session, booking, kind, to_json(message), relayed=True)
        return f"{kind} relayed, capability or not"

    monkeypatch.setattr(StateBureau, "take_interoperability_response", relaying)


def _forgets_nff(monkeypatch: pytest.MonkeyPatch) -> None:
    register = StateBureau.register_state

    async def forgetful(self: StateBureau, session: AsyncSession, state: pb.State) -> pb.State:
        reply = await register(self, session, state)
        row = await session.get(StateRecord, state.code)
        if row is not None:
            row.nff = False
        return reply

    monkeypatch.setattr(StateBureau, "register_state", forgetful)


class _BookingWithRace(api.BookingIn):
    """A booking model that drops race and ethnicity instead of refusing them."""

    @model_validator(mode="before")
    @classmethod
    def _no_race_or_ethnicity(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in api.PROFILING_FIELDS}
            descriptors = data.get("descriptors")
            if isinstance(descriptors, dict):
                data["descriptors"] = {
                    k: v for k, v in descriptors.items() if k not in api.PROFILING_FIELDS
                }
        return data


def _accepts_race(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "BookingIn", _BookingWithRace)


def _ignores_suspension(monkeypatch: pytest.MonkeyPatch) -> None:
    def always(state: StateRecord, now: datetime) -> bool:
        return True

    monkeypatch.setattr(domain, "moa_in_effect", always)


def _one_boolean_for_both_gates(monkeypatch: pytest.MonkeyPatch) -> None:
    attest = domain.attest_interoperability

    def together(*args: Any, **kwargs: Any) -> Any:
        gates = attest(*args, **kwargs)
        both = gates.moa_active and gates.jurisdiction_activated
        gates.moa_active = gates.jurisdiction_activated = both
        return gates

    monkeypatch.setattr(domain, "attest_interoperability", together)


def _ignores_the_activation_day(monkeypatch: pytest.MonkeyPatch) -> None:
    register = StateBureau.register_agency

    async def undated(self: StateBureau, session: AsyncSession, agency: pb.Agency) -> pb.Agency:
        plain = pb.Agency()
        plain.CopyFrom(agency)
        plain.activated_on = ""
        return await register(self, session, plain)

    monkeypatch.setattr(StateBureau, "register_agency", undated)


def _never_sends_the_car(monkeypatch: pytest.MonkeyPatch) -> None:
    def silent(self: StateBureau, *args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(StateBureau, "_send_submission", silent)


VARIANTS = [
    Broken(
        Agency.SIB,
        "relays the IDR to the LEA despite no relay capability",
        "An interoperability response is not relayed where the SIB lacks the capability",
        _relays_everywhere,
    ),
    Broken(
        Agency.SIB,
        "sends a CAR instead of a CPI in an NFF state",
        "A subsequent arrest in an NFF state is a CPI with the FBI number, not a CAR",
        _forgets_nff,
    ),
    Broken(
        Agency.SIB,
        "accepts race and ethnicity in a booking",
        "Bad bookings get 422 naming the problem, race and ethnicity refused",
        _accepts_race,
    ),
    Broken(
        Agency.SIB,
        "keeps searching IDENT while the MOA is suspended",
        "A booking in a state whose MOA is suspended tells CJIS the MOA is not in effect",
        _ignores_suspension,
    ),
    Broken(
        Agency.SIB,
        "attests the MOA and the jurisdiction with one boolean",
        "A booking in a state whose MOA is suspended tells CJIS the MOA is not in effect",
        _one_boolean_for_both_gates,
    ),
    Broken(
        Agency.SIB,
        "ignores the day its rollout phase activates a jurisdiction",
        "A jurisdiction its rollout phase activates on a day is activated from that DOA on",
        _ignores_the_activation_day,
    ),
    Broken(
        Agency.SIB,
        "never sends the CAR",
        "A booking is submitted to CJIS as a CAR with its prints",
        _never_sends_the_car,
    ),
    Broken(
        Agency.SIB,
        "processes a retried SRE again",
        "A repeated DeliverSre message id is a duplicate and reaches the LEA once",
        forget_message_ids,
    ),
]
