"""Domain errors: raised by domain code, mapped to gRPC or HTTP status at the edges."""

from __future__ import annotations

# How much of a refused value an error message quotes: enough to recognise it, never so much
# that a huge input makes a huge error (gRPC details must fit in the trailers).
SHOWN_PREFIX = 40


def shown(value: object) -> str:
    """`value` as an error message quotes it: its repr, cut to a short prefix when long."""
    text = repr(value)
    if len(text) <= SHOWN_PREFIX + 2:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} in all"
    return f"{text[:SHOWN_PREFIX]}... ({size})"


class DomainError(Exception):
    """A request the domain refuses, with the reason a caller can act on."""

    status = "INTERNAL"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request is malformed or breaks a rule of the contract."""

    status = "INVALID_ARGUMENT"
    http_status = 422


class NotFound(DomainError):
    """The request names something that does not exist."""

    status = "NOT_FOUND"
    http_status = 404


class AlreadyExists(DomainError):
    """The request would create something that exists already."""

    status = "ALREADY_EXISTS"
    http_status = 409


class FailedPrecondition(DomainError):
    """The request is valid but the system is not in a state to accept it."""

    status = "FAILED_PRECONDITION"
    http_status = 409


class Aborted(DomainError):
    """The request met a concurrent one on the same record: sent again, it succeeds (the
    outbox retries it)."""

    status = "ABORTED"
    http_status = 409


class ResourceExhausted(DomainError):
    """The request would exceed a limit the service keeps (the reason gives it)."""

    status = "RESOURCE_EXHAUSTED"
    http_status = 429


class PermissionDenied(DomainError):
    """The caller is known, but the request is for what is not its own (another LEA's)."""

    status = "PERMISSION_DENIED"
    http_status = 403
