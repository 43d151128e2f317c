"""EBTS files at the SIB's agency edge: `POST /v1/transactions` takes a CAR as an ANSI/NIST-ITL
file and books it exactly as `POST /v1/bookings` books the same booking in JSON; the answers the
LEA was sent can be read back as EBTS files.

The route reads the file (within the edge's body limit, which refuses a larger one with 413
before reading it), decodes it (400 for a file that is not ANSI/NIST-ITL, naming the record and
field), reads the CAR (422 for one the SIB does not take: unknown TOT, no fingers, a field over
its length...) and hands the same `BookingIn` the JSON route validates to `accept_booking`.
Nothing is stored for a refused file.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..biometrics.params import MODEL_VERSION
from ..federation import Agency
from ..formats import ebts
from ..formats.ansi_nist import AnsiNistError
from ..runtime import audit
from ..runtime.envelope import MessageType
from ..runtime.errors import NotFound, shown
from ..runtime.http_edge import ErrorBody, error_responses
from ..runtime.server import Runtime
from .api import (
    BookingAccepted,
    BookingIn,
    CallingLea,
    LeaCredentials,
    accept_booking,
    lea_authentication,
)
from .domain import StateBureau
from .models import Booking, ResponseRecord, StateRecord

# The content types of an ANSI/NIST-ITL file: no type is registered for it, so scfed names one
# and takes the generic binary type as well.
ANSI_NIST_TYPE: Final = "application/x-ansi-nist"
CONTENT_TYPES: Final = (ANSI_NIST_TYPE, "application/octet-stream")
# The file extension EBTS files are usually given.
EXTENSION: Final = "eft"

_FILE_BODY: Final = {
    "required": True,
    "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES},
}


class TransactionAccepted(BookingAccepted):
    """The SIB's receipt for a CAR file: the booking's TCN, the sender's own TCN (1.009), and
    the records it did not read (images)."""

    lea_tcn: str
    ignored: list[str]


class ResponseFile(BaseModel):
    """One answer the LEA was sent for a booking, readable as an EBTS file at `href`."""

    n: int
    kind: MessageType
    tot: str
    received_at: str
    href: str


def booking_from_car(car: ebts.Car) -> BookingIn:
    """The booking a CAR file holds, as the JSON edge would have received it."""
    data: dict[str, Any] = {
        "ori": car.ori,
        "booking_number": car.booking_number,
        "doa": car.doa or None,
        "descriptors": {"nam": car.nam, "dob": car.dob, "sex": car.sex, "pob": car.pob},
        "fingers": [
            {"position": f.position, "status": f.status, "quality": f.quality}
            | ({"template": list(f.template)} if f.status == "present" else {})
            for f in car.fingers
        ],
        "charges": [
            {
                "ncic_code": c.ncic_code,
                "literal": c.literal,
                "disposition": c.disposition,
                "sentence_days": c.sentence_days,
            }
            for c in car.charges
        ],
    }
    return BookingIn.model_validate(data)


def car_from_booking(booking: BookingIn, *, tcn: str, dai: str, dat: str) -> ebts.Car:
    """The CAR an LEA's system would send for a booking (what `scfed demo --format ebts` and
    `scfed ebts example` write)."""
    d = booking.descriptors
    return ebts.Car(
        tcn=tcn,
        ori=booking.ori,
        dai=dai,
        dat=dat,
        booking_number=booking.booking_number,
        nam=d.nam,
        dob=d.dob,
        sex=d.sex,
        pob=d.pob,
        doa=booking.doa or "",
        fingers=tuple(
            ebts.Finger(f.position, f.status, f.quality, tuple(f.template or ()))
            for f in sorted(booking.fingers, key=lambda f: f.position)
        ),
        charges=tuple(
            ebts.Charge(c.ncic_code, c.literal, c.disposition, c.sentence_days)
            for c in booking.charges
        ),
    )


def car_file(booking: BookingIn, *, tcn: str, dai: str, dat: str) -> bytes:
    """The CAR file for a booking."""
    car = car_from_booking(booking, tcn=tcn, dai=dai, dat=dat)
    return ebts.write_car(car, algorithm=MODEL_VERSION)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _read(data: bytes) -> ebts.Car:
    """The CAR in an uploaded file, or the 400/422 that names the record and field."""
    try:
        return ebts.read_car(data)
    except ebts.EbtsError as exc:
        raise HTTPException(422, f"not a CAR the SIB takes: {exc}") from None
    except AnsiNistError as exc:
        raise HTTPException(400, f"not an ANSI/NIST-ITL file: {exc}") from None


async def _relayed(
    session: AsyncSession, tcn: str, ori: str | None
) -> tuple[Booking, list[ResponseRecord]]:
    """A booking (another LEA's is not found, like an unknown TCN) and the answers relayed to
    its LEA, oldest first."""
    booking = await session.get(Booking, tcn)
    if booking is None or (ori is not None and booking.ori != ori):
        raise NotFound(f"no booking with TCN {shown(tcn)}")
    rows = await session.scalars(
        select(ResponseRecord)
        .where(ResponseRecord.tcn == tcn, ResponseRecord.relayed)
        .order_by(ResponseRecord.id)
    )
    return booking, list(rows)


def _tot(kind: MessageType) -> str:
    return ebts.ANSWER_TOTS[kind]


def _sender(row: ResponseRecord, sib_ori: str) -> str:
    """Who wrote the answer: the field office for a detainer, CJIS for what came from CJIS,
    the state's SIB for its own ERRT (a submission CJIS never took)."""
    if row.kind == MessageType.I247:
        return str(row.body.get("detainer", {}).get("field_office", "")) or sib_ori
    if row.kind == MessageType.ERRT and "envelope" not in row.body:
        return sib_ori or Agency.CJIS_IAFIS.ori
    return Agency.CJIS_IAFIS.ori


def build_transactions_router(
    runtime: Runtime, bureau: StateBureau, *, lea_credentials: LeaCredentials = "off"
) -> APIRouter:
    """The EBTS routes, for the agency edge's router (whose prefix is /v1)."""
    router = APIRouter(tags=["transactions (EBTS)"])
    lea_routes = [Depends(lea_authentication(runtime, lea_credentials))]
    lea_errors = (401, 403) if lea_credentials == "required" else ()
    unsupported: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody, "description": "Not an ANSI/NIST-ITL file: record and field"},
        415: {"model": ErrorBody, "description": "Not an ANSI/NIST-ITL content type"},
    }

    @router.post(
        "/transactions",
        status_code=202,
        dependencies=lea_routes,
        response_model=TransactionAccepted,
        openapi_extra={"requestBody": _FILE_BODY},
        responses={
            200: {"model": TransactionAccepted, "description": "An identical resubmission"},
            **unsupported,
            **error_responses(*lea_errors, 409, 413, 422),
        },
    )
    async def submit_transaction(
        request: Request, response: Response, caller: CallingLea
    ) -> TransactionAccepted:
        """Takes a CAR as an ANSI/NIST-ITL file (content type application/x-ansi-nist or
        application/octet-stream) and books it as POST /v1/bookings would: 202 with the TCN,
        200 for an identical resubmission. 400 for a file that does not decode, 422 for one
        that is not a CAR the SIB takes, each naming the record and field; 413 over the
        edge's body limit; nothing is stored for a refused file."""
        if _media_type(request) not in CONTENT_TYPES:
            raise HTTPException(
                415,
                f"send the file as {' or '.join(CONTENT_TYPES)}, not {shown(_media_type(request))}",
            )
        # A file up to the body limit takes some hundred milliseconds to decode: in a thread,
        # so the edge goes on answering others meanwhile.
        car = await asyncio.to_thread(_read, await request.body())
        try:
            body = booking_from_car(car)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        note = f"EBTS CAR, LEA TCN {car.tcn}" + (
            f", {len(car.ignored)} record(s) not read: {'; '.join(car.ignored)}"
            if car.ignored
            else ""
        )
        accepted = await accept_booking(
            runtime,
            bureau,
            body,
            request=request,
            response=response,
            caller=caller,
            rpc="POST /v1/transactions",
            received_as=note,
        )
        return TransactionAccepted(
            **accepted.model_dump(), lea_tcn=car.tcn, ignored=list(car.ignored)
        )

    @router.get(
        "/transactions/{tcn}/responses",
        dependencies=lea_routes,
        responses=error_responses(*lea_errors[:1], 404, 422),
    )
    async def list_responses(
        tcn: Annotated[str, Path(max_length=64)], request: Request, caller: CallingLea
    ) -> list[ResponseFile]:
        """The answers the LEA was sent for a booking (SRE, ERRT, IDR, IDR/IAR, I-247), each
        readable as an EBTS file at its `href`; an IDR or IDR/IAR a SIB without relay
        capability kept is not among them. Another LEA's booking is a 404, like an unknown
        TCN. The read is audited."""
        async with audit.audited_read(
            runtime.db,
            who=audit.http_caller(request, lea_ori=caller),
            rpc="GET /v1/transactions/{tcn}/responses",
            tcn=tcn,
        ) as session:
            _booking, rows = await _relayed(session, tcn, caller)
        return [
            ResponseFile(
                n=n,
                kind=row.kind,
                tot=_tot(row.kind),
                received_at=row.received_at.isoformat(),
                href=f"/v1/transactions/{tcn}/responses/{n}",
            )
            for n, row in enumerate(rows, start=1)
        ]

    @router.get(
        "/transactions/{tcn}/responses/{n}",
        dependencies=lea_routes,
        response_class=Response,
        responses={
            200: {
                "description": "The answer as an EBTS file",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            },
            **error_responses(*lea_errors[:1], 404, 422),
        },
    )
    async def response_file(
        tcn: Annotated[str, Path(max_length=64)],
        n: Annotated[int, Path(ge=1, le=10_000)],
        request: Request,
        caller: CallingLea,
    ) -> Response:
        """The n-th answer (from 1, as the list numbers them) as an EBTS file: TOT SRE, ERRT
        (the reason in 2.060 MSG), IDR, IAR or I247; 1.010 TCR and 2.009 OCA name the
        booking. The read is audited."""
        async with audit.audited_read(
            runtime.db,
            who=audit.http_caller(request, lea_ori=caller),
            rpc="GET /v1/transactions/{tcn}/responses/{n}",
            tcn=tcn,
        ) as session:
            booking, rows = await _relayed(session, tcn, caller)
            if n > len(rows):
                raise NotFound(f"booking {shown(tcn)} has {len(rows)} response(s), not {n}")
            state = await session.get(StateRecord, booking.ori[:2])
        row = rows[n - 1]
        meta = ebts.ResponseMeta(
            tcn=tcn,
            booking_number=booking.booking_number,
            lea_ori=booking.ori,
            sender_ori=_sender(row, state.sib_ori if state is not None else ""),
            number=n,
            received_at=row.received_at.astimezone(UTC)
            if row.received_at.tzinfo
            else row.received_at.replace(tzinfo=UTC),
        )
        content = ebts.response_file(row.kind, row.body, meta)
        filename = f"{tcn}-{n}-{_tot(row.kind)}.{EXTENSION}"
        return Response(
            content,
            media_type="application/octet-stream",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    return router
