"""The operator's routes on the HTTP edge (reset, snapshots, clocks, faults, dead-letter
requeue) with TLS on: only with the operator's token.

Mutual TLS covers the gRPC port, where the same operations are the operator certificate's alone
(authorization.py); the HTTP edge is plain HTTP, so there the operator shows the token that
`scfed certs init` writes beside the certificates (tls.OPERATOR_TOKEN), as `Authorization:
Bearer <token>`. A service checks it against the token's SHA-256 (tls.OPERATOR_TOKEN_HASH), so
an agency's directory need not hold the token itself. With TLS off the routes are open, as the
gRPC port is.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request

from .bearer import NotBearer, bearer_token, unauthenticated
from .config import ServiceSettings
from .http_edge import before_body
from .tls import OPERATOR_TOKEN, OPERATOR_TOKEN_HASH, operator_token_hash, token_hash


def operator_only(settings: ServiceSettings) -> Callable[..., Awaitable[None]]:
    """The dependency of every operator route: nothing with TLS off; with TLS on, a 401 unless
    the request carries the operator's token. The expected hash is read once, here."""
    directory = settings.resolved_tls_dir()
    expected = None
    if settings.tls == "on":
        expected = settings.operator_token_sha256 or operator_token_hash(directory)

    # It reads the header itself rather than declaring it: a declared header would give each
    # operator route FastAPI's own 422 in the OpenAPI document (the edge has one error shape).
    async def operator(request: Request) -> None:
        """Admits the operator's token only (with TLS on)."""
        authorization = request.headers.get("authorization")
        if settings.tls == "off":
            return
        if expected is None:
            raise unauthenticated(
                "operator routes need the operator's token, and this service has none to check "
                f"it against ({directory / OPERATOR_TOKEN_HASH}, or SCFED_OPERATOR_TOKEN_SHA256):"
                " run `scfed certs init`, or use the gRPC AdminService with the operator's "
                "certificate"
            )
        try:
            token = bearer_token(authorization)
        except NotBearer:
            token = None
        if token is None:
            raise unauthenticated(
                "an operator route: send Authorization: Bearer <the operator's token, "
                f"{OPERATOR_TOKEN} beside the certificates>"
            )
        if not hmac.compare_digest(token_hash(token), expected):
            raise unauthenticated("not the operator's token")

    # A clock step or a fault rule without the token is a 401 even when its body is not JSON.
    before_body(operator, operator)
    return operator
