"""ICE field, broken: no detainer for Level 1, an IAR copy for an uncovered state decided by
some office, a retried IAR copy decided again, a repeated release notice accepted."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.common.v1 import common_pb2
from services.federation import Agency
from services.ice_field import cases
from services.ice_field.decision import Decision, DiscretionPolicy, decide
from services.ice_field.domain import FieldOperations
from services.ice_field.models import CaseState, DecisionAction, FieldOfficeRecord
from tests.conformance.broken.common import forget_message_ids
from tests.conformance.harness import Broken


def _declines_level_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def lax(iar: common_pb2.Iar, policy: DiscretionPolicy) -> Decision:
        decision = decide(iar, policy)
        if decision.basis == common_pb2.DETAINER_BASIS_LEVEL_1:
            return Decision(DecisionAction.DECLINED, 1, common_pb2.DETAINER_BASIS_UNSPECIFIED)
        return decision

    # The domain calls the name it imported.
    monkeypatch.setattr("services.ice_field.domain.decide", lax)


def _any_office_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    office_for = FieldOperations.office_for

    async def anywhere(
        self: FieldOperations, session: AsyncSession, lea_ori: str
    ) -> FieldOfficeRecord:
        first = await session.scalar(select(FieldOfficeRecord).order_by(FieldOfficeRecord.ori))
        if first is not None:
            return first
        return await office_for(self, session, lea_ori)

    monkeypatch.setattr(FieldOperations, "office_for", anywhere)


def _takes_every_release_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    check = cases.check_transition

    def lenient(case_id: str, from_state: CaseState, to_state: str) -> CaseState:
        if from_state == to_state == CaseState.RELEASE_NOTICED:
            return CaseState.RELEASE_NOTICED
        return check(case_id, from_state, to_state)

    monkeypatch.setattr(cases, "check_transition", lenient)


VARIANTS = [
    Broken(
        Agency.ICE_FIELD,
        "issues no detainer for a removable Level 1 subject",
        "A removable subject charged at Level 1 gets an I-247 detainer through the SIB",
        _declines_level_1,
    ),
    Broken(
        Agency.ICE_FIELD,
        "decides an IAR copy for a state no office covers",
        "refuses DeliverIar: IAR copy for a state no office covers",
        _any_office_decides,
    ),
    Broken(
        Agency.ICE_FIELD,
        "decides a retried IAR copy again",
        "A repeated IAR copy message id is acknowledged as a duplicate and decided once",
        forget_message_ids,
    ),
    Broken(
        Agency.ICE_FIELD,
        "takes a second release notice for the same detainer",
        "A repeated release notice is FAILED_PRECONDITION, a retried one a duplicate",
        _takes_every_release_notice,
    ),
]
