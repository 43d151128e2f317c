"""The SIB's HTTP edge for local law enforcement agencies (FastAPI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from scfed.common.v1 import common_pb2

from ..biometrics.params import TEMPLATE_DIM
from ..runtime import audit
from ..runtime.bearer import NotBearer, bearer_token, unauthenticated
from ..runtime.envelope import MessageType
from ..runtime.errors import PermissionDenied
from ..runtime.formats import NCIC_CODE, ORI, YYYYMMDD, anchored
from ..runtime.http_edge import INT32_MAX, Text, at_most, before_body, error_responses
from ..runtime.proto_json import to_json
from ..runtime.server import Runtime
from . import credentials, queries
from .domain import BookingSubmission, StateBureau, party_name
from .models import BookingStatus

PROFILING_FIELDS = frozenset({"rac", "race", "eth", "ethnicity"})
# The most charges one booking carries.
MAX_CHARGES = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_race_or_ethnicity(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = PROFILING_FIELDS & {str(k).lower() for k in data}
            if found:
                raise ValueError(
                    f"{', '.join(sorted(found))}: race and ethnicity are not accepted; "
                    "IDENT/IAFIS may not be used for racial or ethnic profiling (MOA VIII)"
                )
        return data


class FingerIn(_Strict):
    """One finger slot of the booking's tenprint."""

    position: int = Field(ge=1, le=10, description="FGP: 1 right thumb .. 10 left little")
    status: Literal["present", "amputated", "unprintable"] = "present"
    template: Annotated[list[float] | None, BeforeValidator(at_most(TEMPLATE_DIM))] = Field(
        default=None, max_length=TEMPLATE_DIM, description="Feature template (present)"
    )
    quality: int = Field(default=0, ge=0, le=100)


class DescriptorsIn(_Strict):
    """Type-2 descriptors: only those the flow needs."""

    nam: Text = Field(min_length=1, max_length=80, description="SURNAME,GIVEN")
    dob: str = Field(default="", pattern=f"^({YYYYMMDD})?$")
    sex: Literal["M", "F", "X", "U", ""] = ""
    pob: Text = Field(default="", max_length=8)


class ChargeIn(_Strict):
    """A current charge with its NCIC code."""

    ncic_code: str = Field(pattern=anchored(NCIC_CODE))
    literal: Text = Field(default="", max_length=120)
    disposition: Literal["charged", "convicted", "dismissed", "acquitted"] = "charged"
    # A century at most; the contract carries it as uint32.
    sentence_days: int = Field(default=0, ge=0, le=36_525)


class BookingIn(_Strict):
    """A booking submitted by an LEA: prints, descriptors and charges."""

    ori: str = Field(pattern=anchored(ORI), description="Nine-character ORI of the booking agency")
    booking_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    doa: str | None = Field(default=None, pattern=anchored(YYYYMMDD), description="Date of arrest")
    descriptors: DescriptorsIn
    # Counted before any item is validated: 200,000 charges are refused at once.
    fingers: Annotated[list[FingerIn], BeforeValidator(at_most(10))] = Field(
        min_length=1, max_length=10
    )
    charges: Annotated[list[ChargeIn], BeforeValidator(at_most(MAX_CHARGES))] = Field(
        min_length=1, max_length=MAX_CHARGES
    )


class BookingAccepted(BaseModel):
    """The SIB's receipt for a booking."""

    tcn: str
    transaction: Literal[MessageType.CAR, MessageType.CPI]
    status: BookingStatus
    sid: str
    duplicate: bool = False


class ReleaseNoticeIn(_Strict):
    """An LEA's notice that a subject under detainer will be released."""

    ori: str = Field(pattern=anchored(ORI))
    detainer_id: Text = Field(min_length=1, max_length=40)
    release_at: datetime | None = Field(
        default=None, description="When the LEA releases the subject; no offset means UTC"
    )

    @field_validator("release_at")
    @classmethod
    def _plausible_release(cls, value: datetime | None) -> datetime | None:
        # The field office checks against its own clock; the edge refuses what no clock allows.
        if value is not None and not 1970 <= value.year <= 2199:
            raise ValueError("release_at must be within the years 1970 to 2199")
        return value


class ReleaseForwarded(BaseModel):
    """The SIB's receipt for a release notice it forwarded to the ICE field office."""

    message_id: str
    status: Literal["forwarded"] = "forwarded"


_STATUS = {
    "present": common_pb2.FINGER_STATUS_PRESENT,
    "amputated": common_pb2.FINGER_STATUS_AMPUTATED,
    "unprintable": common_pb2.FINGER_STATUS_UNPRINTABLE,
}


def to_submission(body: BookingIn, doa: str) -> BookingSubmission:
    """The booking in the federation's own messages: the one place the LEAs' format is read."""
    fingers = [
        common_pb2.FingerCapture(
            position=f.position,
            status=_STATUS[f.status],
            template=f.template or [],
            quality=f.quality,
        )
        for f in body.fingers
    ]
    charges = [
        common_pb2.Charge(
            ncic_code=c.ncic_code,
            literal=c.literal,
            disposition=common_pb2.Disposition.Value("DISPOSITION_" + c.disposition.upper()),
            sentence_days=c.sentence_days,
        )
        for c in body.charges
    ]
    return BookingSubmission(
        ori=body.ori,
        booking_number=body.booking_number,
        doa=doa,
        descriptors=common_pb2.Descriptors(**body.descriptors.model_dump()),
        tenprint=common_pb2.Tenprint(fingers=fingers),
        charges=charges,
    )


async def accept_booking(
    runtime: Runtime,
    bureau: StateBureau,
    body: BookingIn,
    *,
    request: Request,
    response: Response,
    caller: str | None,
    rpc: str = "POST /v1/bookings",
    received_as: str = "",
) -> BookingAccepted:
    """Submits a booking however it came (JSON or an EBTS file, `received_as` saying how for
    the journal); 200 instead of 202 for an identical resubmission. The state file search, or
    the refusal, is audited as the LEA's under `rpc`."""
    doa = body.doa or runtime.clock.now().strftime("%Y%m%d")
    submission = replace(to_submission(body, doa), received_as=received_as)
    who = audit.http_caller(request, lea_ori=caller or body.ori)
    async with (
        audit.refusals(
            runtime.db,
            who=who,
            rpc=rpc,
            tcn="",
            purpose=audit.Purpose.BOOKING,
            detail=f"booking {body.booking_number}",
        ),
        bureau.enrollments.transaction(),
        runtime.db.session() as session,
    ):
        check_own(caller, body.ori, "bookings")
        receipt = await bureau.submit_booking(session, submission, who=who, rpc=rpc)
    runtime.outbox.notify()
    if receipt.duplicate:
        response.status_code = 200
    return BookingAccepted(
        tcn=receipt.tcn,
        transaction=receipt.transaction,
        status=receipt.status,
        sid=receipt.sid,
        duplicate=receipt.duplicate,
    )


# How the agency edge treats LEA credentials (SibSettings.lea_credentials).
LeaCredentials = Literal["required", "off"]


_NO_CREDENTIAL = "no LEA credential: send Authorization: Bearer <api key>"


def _presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `X-API-Key`; None without one."""
    try:
        key = bearer_token(authorization)
    except NotBearer as exc:
        raise unauthenticated(_NO_CREDENTIAL) from exc
    if key is not None:
        return key
    return x_api_key.strip() if x_api_key and x_api_key.strip() else None


def lea_authentication(runtime: Runtime, mode: LeaCredentials) -> Callable[..., Awaitable[None]]:
    """The dependency every LEA route runs first: it keeps the calling LEA's ORI, from its API
    key, on the request (None with credentials off), or refuses the request with 401."""

    async def authenticate(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> None:
        """Finds the ORI whose credential the request carries."""
        ori = None
        if mode == "required":
            key = _presented_key(authorization, x_api_key)
            if key is None:
                raise unauthenticated(_NO_CREDENTIAL)
            async with runtime.db.session() as session:
                ori = await credentials.lea_of(session, key)
            if ori is None:
                raise unauthenticated("unknown or revoked LEA credential")
        request.state.lea_ori = ori

    async def before_the_body(request: Request) -> None:
        headers = request.headers
        await authenticate(request, headers.get("authorization"), headers.get("x-api-key"))

    # A booking with no credential is a 401 even when its body is not JSON.
    before_body(authenticate, before_the_body)
    return authenticate


def calling_lea(request: Request) -> str | None:
    """The calling LEA's ORI, as `lea_authentication` found it (None with credentials off). A
    route that did not run it fails here rather than serve every LEA's data."""
    ori: str | None = request.state.lea_ori
    return ori


# The calling LEA's ORI in a route that runs `lea_authentication`.
CallingLea = Annotated[str | None, Depends(calling_lea)]


def check_own(caller: str | None, ori: str, what: str) -> None:
    """Refuses (403) a request for an ORI that is not the calling LEA's, naming neither."""
    if caller is not None and ori != caller:
        raise PermissionDenied(f"an LEA's credential covers {what} of its own ORI only")


class JurisdictionView(BaseModel):
    """One jurisdiction's access to interoperability: suspended or not, by which party to the
    MOA ("SIB" or "ICE"), why and since when."""

    ori: str
    suspended: bool
    suspended_by: Literal["SIB", "ICE"] | None
    reason: str
    suspended_at: datetime | None


def build_router(
    runtime: Runtime, bureau: StateBureau, *, lea_credentials: LeaCredentials = "off"
) -> APIRouter:
    """Routes of the agency edge; with `lea_credentials` "required" the LEA routes (bookings,
    booking reads, inboxes, release notices) need an LEA's API key and serve its own ORI only."""
    router = APIRouter(prefix="/v1", tags=["agencies"])
    # Run first by every LEA route: a 401 without a known credential (when required).
    lea_routes = [Depends(lea_authentication(runtime, lea_credentials))]
    lea_errors = (401, 403) if lea_credentials == "required" else ()

    @router.post(
        "/bookings",
        status_code=202,
        dependencies=lea_routes,
        response_model=BookingAccepted,
        responses={
            200: {"model": BookingAccepted, "description": "An identical resubmission"},
            **error_responses(*lea_errors, 409, 413, 422),
        },
    )
    async def submit_booking(
        body: BookingIn, request: Request, response: Response, caller: CallingLea
    ) -> BookingAccepted:
        """Submits a booking; answers 202 with the TCN (200 for an identical resubmission). The
        state file search, or the refusal, is audited as the LEA's."""
        return await accept_booking(
            runtime, bureau, body, request=request, response=response, caller=caller
        )

    @router.get(
        "/bookings/{tcn}",
        dependencies=lea_routes,
        responses=error_responses(*lea_errors[:1], 404, 422),
    )
    async def get_booking(
        tcn: Annotated[str, Path(max_length=64)], request: Request, caller: CallingLea
    ) -> queries.BookingView:
        """A booking's status and every response received for it; the read is audited. With
        credentials, another LEA's booking is a 404 like an unknown TCN: its existence is not
        told."""
        async with audit.audited_read(
            runtime.db,
            who=audit.http_caller(request, lea_ori=caller),
            rpc="GET /v1/bookings/{tcn}",
            tcn=tcn,
        ) as session:
            return await queries.booking_view(session, tcn, ori=caller)

    @router.get(
        "/bookings", dependencies=lea_routes, responses=error_responses(*lea_errors[:1], 422)
    )
    async def list_bookings(
        request: Request,
        caller: CallingLea,
        status: Annotated[str | None, Query(max_length=24)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    ) -> list[queries.BookingSummary]:
        """A page of bookings, oldest first, optionally by status (with credentials, the
        calling LEA's only); the read is audited."""
        async with audit.audited_read(
            runtime.db,
            who=audit.http_caller(request, lea_ori=caller),
            rpc="GET /v1/bookings",
            detail=f"status={status or ''} limit={limit} offset={offset}",
        ) as session:
            return await queries.bookings(
                session, status=status, limit=limit, offset=offset, ori=caller
            )

    @router.get("/bookings-summary")
    async def bookings_summary() -> queries.BookingsSummary:
        """Counts by status and transaction, relay, detainers by level, latency."""
        async with runtime.db.session() as session:
            return await queries.summary(session)

    @router.get(
        "/agencies/{ori}/messages",
        dependencies=lea_routes,
        responses=error_responses(*lea_errors, 404, 422),
    )
    async def agency_inbox(
        request: Request,
        caller: CallingLea,
        ori: Annotated[str, Path(pattern=anchored(ORI))],
        # A message id: the column is a 32-bit integer (PostgreSQL `integer`).
        after: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[queries.ResponseView]:
        """The LEA's inbox: relayed responses and detainers, after a message id; the read is
        audited as the LEA's. With credentials, another LEA's inbox is a 403."""
        async with audit.audited_read(
            runtime.db,
            who=audit.http_caller(request, lea_ori=caller or ori),
            rpc="GET /v1/agencies/{ori}/messages",
            purpose=audit.Purpose.BOOKING,
            detail=f"ori={ori} after={after} limit={limit}",
        ) as session:
            check_own(caller, ori, "the inbox")
            return await queries.inbox(session, ori, after=after, limit=limit)

    @router.post(
        "/release-notices",
        status_code=202,
        dependencies=lea_routes,
        responses=error_responses(*lea_errors, 404, 409, 413, 422),
    )
    async def release_notice(body: ReleaseNoticeIn, caller: CallingLea) -> ReleaseForwarded:
        """Tells the ICE field office that a subject under detainer will be released; with
        credentials, only for a detainer lodged with the calling LEA."""
        check_own(caller, body.ori, "release notices")
        async with runtime.db.session() as session:
            message_id = await bureau.release_notice(
                session, ori=body.ori, detainer_id=body.detainer_id, release_at=body.release_at
            )
        runtime.outbox.notify()
        return ReleaseForwarded(message_id=message_id)

    @router.get("/jurisdictions/{ori}", responses=error_responses(404, 422))
    async def jurisdiction(ori: Annotated[str, Path(max_length=9)]) -> JurisdictionView:
        """Whether one jurisdiction's interoperability is suspended (MOA VIII), by whom and
        why: 404 for an unknown ORI."""
        async with runtime.db.session() as session:
            access = await bureau.jurisdiction_access(session, ori)
        return JurisdictionView(
            ori=access.ori,
            suspended=access.suspended,
            suspended_by=party_name(access.suspended_by) if access.suspended else None,
            reason=access.reason,
            suspended_at=access.suspended_at.ToDatetime(UTC) if access.suspended else None,
        )

    @router.get("/states")
    async def list_states() -> list[dict[str, object]]:
        """The states served, with NFF, relay and MOA status as of now."""
        async with runtime.db.session() as session:
            return [to_json(s) for s in await bureau.states(session)]

    return router
