"""The LEA's side of the credentials at the SIB's agency edge (credentials.py): issuing keys
with the operator's channel, and an httpx authentication that sends each request with the key
of the LEA whose data it touches.

`LeaKeys` finds that LEA the way the SIB checks it: the ``ori`` of a booking or a release
notice body, field 1.008 ORI of an EBTS file, the ORI in an inbox path, and for a booking read
(or its EBTS answers), the LEA that submitted the booking through this same client (learnt
from the 202). A request with no ORI it knows of goes
without a key, and the SIB answers it 401 as it would any LEA without one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Mapping
from typing import Final

import httpx

from scfed.sib.v1 import sib_pb2, sib_pb2_grpc

from ..formats import ansi_nist

# Routes whose JSON body names the LEA: a booking and a release notice.
_BODY_NAMES_ORI: Final = frozenset({"/v1/bookings", "/v1/release-notices"})
_INBOX: Final = re.compile(r"^/v1/agencies/([^/]+)/")
_BOOKING: Final = re.compile(r"^/v1/(?:bookings/([^/]+)|transactions/([^/]+)/responses(?:/.*)?)$")
# The routes that take a booking, and the one whose body is an EBTS file.
_SUBMISSIONS: Final = frozenset({"/v1/bookings", "/v1/transactions"})
_FILE: Final = "/v1/transactions"


async def issue_lea_keys(
    sib: sib_pb2_grpc.StateIdentificationBureauStub, oris: Iterable[str]
) -> dict[str, str]:
    """Issues a fresh key for each LEA (revoking its previous one); ORI -> key."""
    keys = {}
    for ori in dict.fromkeys(oris):
        issued = await sib.IssueLeaCredential(sib_pb2.IssueLeaCredentialRequest(ori=ori))
        keys[issued.ori] = issued.api_key
    return keys


def _file_ori(request: httpx.Request) -> str | None:
    try:
        ori = ansi_nist.decode(request.content).header.first(8)
    except (ansi_nist.AnsiNistError, httpx.RequestNotRead):
        return None
    return ori or None


def _body_ori(request: httpx.Request) -> str | None:
    try:
        body = json.loads(request.content)
    except ValueError:
        return None
    ori = body.get("ori") if isinstance(body, dict) else None
    return ori if isinstance(ori, str) else None


class LeaKeys(httpx.Auth):
    """Sends each LEA route's request with the key of the LEA it concerns (`keys`: ORI ->
    key), as ``Authorization: Bearer``; a request that already carries a credential is left
    as it is."""

    requires_response_body = True

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        self.keys: dict[str, str] = dict(keys or {})
        # TCN -> the ORI that submitted it, for reading the booking back.
        self._submitted_by: dict[str, str] = {}

    def ori_of(self, request: httpx.Request) -> str | None:
        """The LEA a request concerns, or None when it names none this client knows."""
        path = request.url.path
        if request.method == "POST" and path in _BODY_NAMES_ORI:
            return _body_ori(request)
        if request.method == "POST" and path == _FILE:
            return _file_ori(request)
        if inbox := _INBOX.match(path):
            return inbox.group(1)
        if booking := _BOOKING.match(path):
            return self._submitted_by.get(booking.group(1) or booking.group(2))
        return None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Adds the key, and remembers which LEA a booking the SIB accepted belongs to."""
        ori = self.ori_of(request)
        carries_one = "authorization" in request.headers or "x-api-key" in request.headers
        if ori in self.keys and not carries_one:
            request.headers["Authorization"] = f"Bearer {self.keys[ori]}"
        response = yield request
        if ori and request.url.path in _SUBMISSIONS and response.status_code in (200, 202):
            tcn = response.json().get("tcn")
            if isinstance(tcn, str):
                self._submitted_by[tcn] = ori
