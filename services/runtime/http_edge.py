"""What every service's HTTP edge does the same way with bad input: one error body, a body size
limit enforced before anything is parsed, and no NUL character past the edge.

Every error the edge sends has the shape of `ErrorBody`: `detail` is one string a person reads
(each field error as "loc: msg", joined by "; "), `errors` lists the field errors of a 422 for a
program. Neither ever echoes more than `ECHO_CHARS` characters of what the client sent, and both
are always encodable: a lone surrogate (JSON's "\\ud800") is written as its escape. PostgreSQL
refuses NUL in text, so a NUL in a query, a path or a text field is a 422 naming it, whatever
the database.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import DomainError

# How much of a client's input an error may quote.
ECHO_CHARS: Final = 40
# How long a whole `detail` may be (a DomainError's message quotes input in its own words).
DETAIL_CHARS: Final = 1000
# The largest integer a PostgreSQL `integer` column (and our Integer ids) holds.
INT32_MAX: Final = 2**31 - 1


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` at most `limit` characters long (saying how long it was), lone surrogates
    written as escapes so that the result always encodes as UTF-8."""
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def at_most(count: int) -> Callable[[Any], Any]:
    """A before-validator refusing a list of more than `count` items before any is read
    (pydantic's own max_length validates every item first)."""

    def check(value: Any) -> Any:
        if isinstance(value, list) and len(value) > count:
            raise ValueError(f"at most {count} items, got {len(value)}")
        return value

    return check


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


# Free text stored as it is (names, literals, identifiers without a pattern): no NUL, which
# PostgreSQL's text refuses. Lone surrogates never get this far: pydantic refuses them.
Text = Annotated[str, AfterValidator(_no_nul)]


# What a date-time from a client begins with (the rest is pydantic's to read).
ISO_START: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso(value: Any) -> Any:
    # pydantic also reads a number as Unix time: the OpenAPI document says date-time.
    if isinstance(value, int | float) or (isinstance(value, str) and not ISO_START.match(value)):
        raise ValueError("must be an ISO 8601 date-time, such as 2026-01-31T08:00:00Z")
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time between the years 1 and 9999 in UTC") from None


# A time from a client: without an offset it is UTC; one that has no UTC form (the year 1 at
# +14:00) is a 422, not an overflow in the database driver.
UtcTime = Annotated[datetime, BeforeValidator(_iso), AfterValidator(_utc)]


class FieldError(BaseModel):
    """One refused field: where it is, why, and the start of what was sent."""

    loc: list[str | int] = Field(description='Where: "body", "query", "path" then the names')
    msg: str
    type: str = Field(description="pydantic's error type, or value_error")
    input: str | None = Field(
        default=None, description=f"At most the first {ECHO_CHARS} characters of the input"
    )


class ErrorBody(BaseModel):
    """Every error the HTTP edges send (4xx and 503): the reason, and the field errors."""

    detail: str = Field(description='The reason; for a 422 each field error as "loc: msg"')
    errors: list[FieldError] = Field(
        default_factory=list, description="The field errors of a 422 (empty otherwise)"
    )


_DESCRIPTIONS: Final = {
    401: "No credential, or one the service does not know: the reason says which",
    403: "The credential's holder may not do this (another agency's data)",
    404: "Not found: the reason names what",
    409: "Conflict with what is stored: the reason says what",
    413: "Request body too large: the reason gives the limit",
    422: "Refused input: each field error names the field",
    429: "A limit the service keeps is reached: the reason gives it",
    503: "Not ready: the reason says why",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses=` of a route that sends these error statuses."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def _error(status: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


def _field_error(error: Mapping[str, Any]) -> FieldError:
    value = error.get("input")
    shown = None if isinstance(value, dict | list) else clip(str(value))
    return FieldError(
        loc=[part if isinstance(part, int) else clip(str(part)) for part in error["loc"]],
        msg=clip(str(error["msg"]), DETAIL_CHARS),
        type=str(error["type"]),
        input=shown,
    )


def validation_body(errors: Iterable[Mapping[str, Any]]) -> ErrorBody:
    """The 422 body for pydantic's errors: named, short, encodable."""
    fields = [_field_error(error) for error in errors]
    detail = "; ".join(f"{'.'.join(str(p) for p in f.loc)}: {f.msg}" for f in fields)
    return ErrorBody(detail=clip(detail, DETAIL_CHARS), errors=fields)


# The attribute a route dependency carries (`before_body`) when its refusal must come before any
# complaint about the body: FastAPI parses a JSON body before it runs the route's dependencies,
# so without it a request with no credential and a malformed body would get 422, not 401.
_BEFORE_BODY: Final = "scfed_before_body"


def before_body(dependency: Any, check: Callable[[Request], Awaitable[None]]) -> None:
    """Marks a route dependency whose refusal comes first: for a request whose body cannot be
    parsed, `check(request)` (the dependency's own check, reading the request) runs before the
    422, and an HTTPException it raises is the answer."""
    setattr(dependency, _BEFORE_BODY, check)


async def _refused_before_body(request: Request) -> HTTPException | None:
    """The first refusal of the matched route's `before_body` dependencies, if any."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    for dependency in dependant.dependencies if dependant is not None else []:
        check = getattr(dependency.call, _BEFORE_BODY, None)
        if check is None:
            continue
        try:
            await check(request)
        except HTTPException as exc:
            return exc
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Makes every error of `app` an `ErrorBody`: validation, HTTP and domain errors."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            refused = await _refused_before_body(request)
            if refused is not None:
                return await _http(request, refused)
        return _error(422, validation_body(exc.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            refused = await _refused_before_body(request)
            if refused is not None:
                return await _http(request, refused)
            # FastAPI's 400 for a body that is not UTF-8: invalid JSON, like any other (422).
            error = {"loc": ["body"], "msg": "must be JSON in UTF-8", "type": "json_invalid"}
            return _error(422, validation_body([error]))
        body = ErrorBody(detail=clip(str(exc.detail), DETAIL_CHARS))
        headers = dict(exc.headers or {})
        template = None
        if exc.status_code == 405:
            template = _template(app.openapi()["paths"], request.url.path)
        if template is not None:
            # Starlette's Allow names only the first route of the path (one route per method).
            methods = app.openapi()["paths"][template]
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["allow"] = ", ".join(sorted(m.upper() for m in methods))
        return _error(exc.status_code, body, headers)

    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return _error(exc.http_status, ErrorBody(detail=clip(exc.message, DETAIL_CHARS)))


class RequestTooLarge(HTTPException):
    """A request body over the edge's limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


# Which limit a request gets: (method, path) of a route that takes more, else the default.
BodyLimits = Mapping[tuple[str, str], int]


class EdgeGuard:
    """ASGI middleware in front of the routes: refuses a body over its limit with 413 before
    it is read whole (by Content-Length when declared, by counting when chunked), and a NUL in
    the query or path with 422 naming the parameter (`paths`: the app's path templates).

    Our own rather than FastAPI's `max_body_size`, which only its newest releases have."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: Callable[[], Iterable[str]],
        max_body_bytes: int,
        larger: BodyLimits | None = None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.max_body_bytes = max_body_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Checks one request, then hands it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._nul(scope)
        if refused is not None:
            await _error(422, refused)(scope, receive, send)
            return
        limit = self.larger.get((scope["method"], scope["path"]), self.max_body_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._too_large(limit)(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _counting(receive, limit), watched)
        except RequestTooLarge:
            # Read outside a route's own body parsing (which answers it through the handlers).
            if started:
                raise
            await self._too_large(limit)(scope, receive, send)

    @staticmethod
    def _too_large(limit: int) -> JSONResponse:
        exc = RequestTooLarge(limit)
        # Sent before the rest of the body is read; the server then discards or closes.
        return _error(413, ErrorBody(detail=exc.detail))

    def _nul(self, scope: Scope) -> ErrorBody | None:
        query = scope.get("query_string", b"").decode("latin-1")
        if "%00" in query or "\x00" in query:
            for key, value in parse_qsl(query, keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    return _nul_body(["query", clip(key.replace("\x00", "\\x00"))], value)
        if "\x00" in scope["path"]:
            name, value = self._path_parameter(scope)
            return _nul_body(["path", name] if name else ["path"], value)
        return None

    def _path_parameter(self, scope: Scope) -> tuple[str | None, str]:
        """The path parameter holding the NUL, and its value (the whole path if none)."""
        template = _template(self.paths(), scope["path"])
        if template is not None:
            regex, _, _ = compile_path(template)
            match = regex.match(scope["path"])
            for name, value in (match.groupdict() if match else {}).items():
                if "\x00" in value:
                    return name, value
        return None, scope["path"]


def _template(templates: Iterable[str], path: str) -> str | None:
    """The first path template (OpenAPI form, "/v1/bookings/{tcn}") that `path` matches."""
    for template in templates:
        regex, _, _ = compile_path(template)
        if regex.match(path):
            return template
    return None


def _nul_body(loc: list[str | int], value: str) -> ErrorBody:
    msg = "must not contain a NUL character"
    where = ".".join(str(part) for part in loc)
    error = FieldError(loc=loc, msg=msg, type="value_error", input=clip(value))
    return ErrorBody(detail=f"{where}: {msg}", errors=[error])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _counting(receive: Receive, limit: int) -> Callable[[], Awaitable[Message]]:
    """`receive` that raises RequestTooLarge once the body passes `limit` bytes."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestTooLarge(limit)
        return message

    return counted
