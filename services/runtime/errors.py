"""Domain errors: raised by domain code, mapped to gRPC or HTTP status at the edges."""

from __future__ import annotations


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
