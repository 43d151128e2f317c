"""The audit trail's pure parts: values clipped to their columns, and who a caller is until
mutual TLS names it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String

from scfed.common.v1 import common_pb2
from services.runtime import audit
from services.runtime.models import AuditRecord


class _Session:
    """Collects what `audit.record` adds."""

    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, row: Any) -> None:
        self.added.append(row)


class _Context:
    def __init__(self, auth: dict[str, list[bytes]] | None = None) -> None:
        self._auth = auth or {}

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5555"

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


def test_every_string_is_clipped_to_its_column() -> None:
    session = _Session()
    audit.record(
        session,  # type: ignore[arg-type]
        who="w" * 1000,
        rpc="r" * 1000,
        tcn="t" * 1000,
        purpose=audit.Purpose.BOOKING,
        outcome=audit.AuditOutcome.NO_MATCH,
        detail="d" * 10_000,
    )
    (row,) = session.added
    assert isinstance(row, AuditRecord)
    for column in ("who", "rpc", "tcn", "detail"):
        column_type = AuditRecord.__table__.c[column].type
        assert isinstance(column_type, String)
        value = getattr(row, column)
        assert len(value) == column_type.length and value.endswith("..."), column


def test_short_values_are_stored_as_given() -> None:
    session = _Session()
    audit.record(
        session,  # type: ignore[arg-type]
        who="sib",
        rpc="SubmitCar",
        tcn="CA123",
        purpose=audit.Purpose.BOOKING,
        outcome=audit.AuditOutcome.MATCH,
        candidates=1,
    )
    (row,) = session.added
    assert (row.who, row.rpc, row.tcn, row.candidates, row.detail) == (
        "sib",
        "SubmitCar",
        "CA123",
        1,
        "",
    )


def test_the_caller_is_the_senders_agency_else_the_unauthenticated_peer() -> None:
    context: Any = _Context()
    envelope = common_pb2.Envelope(sender="cjis_iafis")
    assert audit.caller(context, envelope) == "cjis_iafis"
    assert audit.caller(context, common_pb2.Envelope()) == "unauthenticated@ipv4:127.0.0.1:5555"
    assert audit.caller(context) == "unauthenticated@ipv4:127.0.0.1:5555"
    assert audit.lea_caller("CA0190000") == "lea:CA0190000"


def test_with_tls_the_caller_is_the_certificates_identity_whatever_the_envelope_says() -> None:
    context: Any = _Context({"x509_subject_alternative_name": [b"spiffe://scfed/operator"]})
    assert audit.caller(context, common_pb2.Envelope(sender="cjis_iafis")) == "operator"
