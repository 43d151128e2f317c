"""IDENT identities (one per FIN) and their immigration encounters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..biometrics.changes import biometric_changes_table
from ..runtime.db import UtcDateTime


class IdentBase(DeclarativeBase):
    """Declarative base of the IDENT tables."""


class IdentityRecord(IdentBase):
    """One person known to IDENT, keyed by the fingerprint identification number."""

    __tablename__ = "identities"

    fin: Mapped[str] = mapped_column(String(16), primary_key=True)
    a_number: Mapped[str] = mapped_column(String(12), default="")
    fbi_number: Mapped[str] = mapped_column(String(12), default="")
    nam: Mapped[str] = mapped_column(String(80))
    dob: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(1), default="")
    pob: Mapped[str] = mapped_column(String(8), default="")
    tenprint: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EncounterRecord(IdentBase):
    """One immigration encounter of an identity."""

    __tablename__ = "encounters"

    encounter_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    fin: Mapped[str] = mapped_column(ForeignKey("identities.fin"), index=True)
    encounter_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[int] = mapped_column(Integer)
    encountered_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SearchRecord(IdentBase):
    """One interoperability search and its answer."""

    __tablename__ = "searches"

    tcn: Mapped[str] = mapped_column(String(40), primary_key=True)
    matched_fin: Mapped[str] = mapped_column(String(16), default="")
    score: Mapped[float] = mapped_column(default=0.0)
    searched_at: Mapped[datetime] = mapped_column(UtcDateTime)


# Every change to a gallery tenprint, written with the record it changes.
biometric_changes = biometric_changes_table(IdentBase.metadata)
