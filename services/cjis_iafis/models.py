"""The criminal master file and the interoperability transactions CJIS tracks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.biometrics.changes import biometric_changes_table
from services.runtime.db import UtcDateTime


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
    charges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class Transaction(CjisBase):
    """A CAR or CPI and where its interoperability processing stands."""

    __tablename__ = "transactions"

    tcn: Mapped[str] = mapped_column(String(40), primary_key=True)
    tot: Mapped[str] = mapped_column(String(8))
    ori: Mapped[str] = mapped_column(String(9))
    sid: Mapped[str] = mapped_column(String(20), default="")
    booking_number: Mapped[str] = mapped_column(String(40))
    fbi_number: Mapped[str] = mapped_column(String(12), default="")
    descriptors: Mapped[dict[str, Any]] = mapped_column(JSON)
    charges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # sre_sent (no interoperability) | ident_pending | iaq_pending | answered | refused
    status: Mapped[str] = mapped_column(String(16))
    identification: Mapped[str] = mapped_column(String(1), default="")
    idr: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    iaq_case_id: Mapped[str] = mapped_column(String(40), default="")
    iar: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# Every change to a master-file tenprint, written with the subject it changes.
biometric_changes = biometric_changes_table(CjisBase.metadata)
