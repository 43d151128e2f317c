"""The criminal master file and the interoperability transactions CJIS tracks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..biometrics.changes import biometric_changes_table
from ..runtime.db import StrEnumType, UtcDateTime
from ..runtime.envelope import MessageType


class TransactionStatus(StrEnum):
    """Where a CAR or CPI stands: sre_sent (no interoperability), or ident_pending ->
    answered (no match) | iaq_pending -> answered (the joint IDR/IAR went out)."""

    SRE_SENT = "sre_sent"
    IDENT_PENDING = "ident_pending"
    IAQ_PENDING = "iaq_pending"
    ANSWERED = "answered"


class CjisBase(DeclarativeBase):
    """Declarative base of the CJIS tables."""


class Subject(CjisBase):
    """One FBI number with the prints on file."""

    __tablename__ = "subjects"

    fbi_number: Mapped[str] = mapped_column(String(12), primary_key=True)
    nam: Mapped[str] = mapped_column(String(80))
    dob: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(1), default="")
    pob: Mapped[str] = mapped_column(String(8), default="")
    tenprint: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ArrestCycleRecord(CjisBase):
    """One arrest cycle of a subject's criminal history."""

    __tablename__ = "arrest_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fbi_number: Mapped[str] = mapped_column(ForeignKey("subjects.fbi_number"), index=True)
    ori: Mapped[str] = mapped_column(String(9))
    doa: Mapped[str] = mapped_column(String(8))
    sid: Mapped[str] = mapped_column(String(20), default="")
    tcn: Mapped[str] = mapped_column(String(40), default="")
    # common.v1 Charges in the stored form of services.runtime.proto_json.
    charges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class Transaction(CjisBase):
    """A CAR or CPI and where its interoperability processing stands."""

    __tablename__ = "transactions"

    tcn: Mapped[str] = mapped_column(String(40), primary_key=True)
    # CAR or CPI
    tot: Mapped[MessageType] = mapped_column(StrEnumType(MessageType, 8))
    ori: Mapped[str] = mapped_column(String(9))
    sid: Mapped[str] = mapped_column(String(20), default="")
    booking_number: Mapped[str] = mapped_column(String(40))
    fbi_number: Mapped[str] = mapped_column(String(12), default="")
    # The messages of the transaction in the stored form of services.runtime.proto_json:
    # common.v1 Descriptors, Charges, and IDENT's Idr and LESC's Iar once they come.
    descriptors: Mapped[dict[str, Any]] = mapped_column(JSON)
    charges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[TransactionStatus] = mapped_column(StrEnumType(TransactionStatus, 16))
    identification: Mapped[str] = mapped_column(String(1), default="")
    idr: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    iaq_case_id: Mapped[str] = mapped_column(String(40), default="")
    iar: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# Every change to a master-file tenprint, written with the subject it changes.
biometric_changes = biometric_changes_table(CjisBase.metadata)
