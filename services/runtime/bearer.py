"""`Authorization: Bearer <token>` at the HTTP edges: reading the token, and the 401 that
refuses a request without a good one (the operator's routes, the SIB's LEA routes)."""

from __future__ import annotations

from fastapi import HTTPException

SCHEME = "Bearer"


def unauthenticated(detail: str) -> HTTPException:
    """A 401 that says what is wrong with the credential (never quoting it) and asks for a
    bearer token."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": SCHEME})


class NotBearer(ValueError):
    """An Authorization header of another scheme, or a bearer one without a token."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme in any case, spaces trimmed); None
    without the header; NotBearer for another scheme or an empty token."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not token.strip():
        raise NotBearer("not a bearer token")
    return token.strip()
