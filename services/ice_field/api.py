"""The ICE field office's HTTP edge: the case view and the referrals for prosecution (FastAPI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from scfed.ice_field.v1 import ice_field_pb2 as pb

from ..runtime.http_edge import error_responses
from ..runtime.operator_http import operator_only
from ..runtime.server import Runtime
from .domain import FieldOperations, case_summary


class ReferralView(BaseModel):
    """A referral for prosecution of re-entry after removal, and the U.S. Attorney's answer."""

    referral_id: str
    fin: str
    us_attorney_office: str
    field_office: str
    booking_tcn: str
    statute: str
    status: Literal["referred", "accepted", "declined"]
    referred_at: datetime
    removed_at: datetime
    answered_at: datetime | None
    reason: str


class ReferralAnswer(BaseModel):
    """The U.S. Attorney's office's answer to a referral."""

    status: Literal["accepted", "declined"]
    reason: str = Field(default="", max_length=200)


def _view(referral: pb.Referral) -> ReferralView:
    return ReferralView(
        referral_id=referral.referral_id,
        fin=referral.fin,
        us_attorney_office=referral.us_attorney_office,
        field_office=referral.field_office,
        booking_tcn=referral.booking_tcn,
        statute=referral.statute,
        status=referral.status,
        referred_at=referral.referred_at.ToDatetime(UTC),
        removed_at=referral.removed_at.ToDatetime(UTC),
        answered_at=(
            referral.answered_at.ToDatetime(UTC) if referral.HasField("answered_at") else None
        ),
        reason=referral.reason,
    )


ReferralId = Annotated[str, Path(min_length=1, max_length=40)]


def build_router(runtime: Runtime, operations: FieldOperations) -> APIRouter:
    """The case view and the referrals for prosecution."""
    router = APIRouter(prefix="/v1", tags=["ice_field"])

    @router.get("/cases-summary")
    async def cases_summary() -> dict[str, object]:
        """Cases by state, and how many are still open (not removed, lapsed or relieved)."""
        async with runtime.db.session() as session:
            return await case_summary(session)

    @router.get("/referrals", responses=error_responses(422))
    async def referrals(
        fin: Annotated[str, Query(max_length=16)] = "",
    ) -> list[ReferralView]:
        """Referrals for prosecution of re-entry after removal (Strategic Plan goal 2), oldest
        first; one person's with `fin`."""
        async with runtime.db.session() as session:
            return [_view(r) for r in await operations.referrals(session, fin=fin)]

    @router.get("/referrals/{referral_id}", responses=error_responses(404, 422))
    async def referral(referral_id: ReferralId) -> ReferralView:
        """One referral: 404 when unknown."""
        async with runtime.db.session() as session:
            return _view(await operations.referral(session, referral_id))

    @router.post(
        "/referrals/{referral_id}/answer",
        dependencies=[Depends(operator_only(runtime.settings))],
        responses=error_responses(401, 404, 409, 422),
    )
    async def answer(referral_id: ReferralId, body: ReferralAnswer) -> ReferralView:
        """The U.S. Attorney's office accepts or declines a referral (the operator plays the
        office): 404 when unknown, 409 when it was answered already."""
        async with runtime.db.session() as session:
            return _view(
                await operations.answer_referral(session, referral_id, body.status, body.reason)
            )

    return router
