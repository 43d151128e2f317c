"""LEA credentials at the agency edge: one API key per LEA (ORI), issued by the operator.

A key is `KEY_PREFIX` then 256 random bits (secrets.token_urlsafe), answered once when issued;
the SIB keeps only its SHA-256. A slow, salted hash (scrypt, PBKDF2) protects a password a
person chose; a key of 256 random bits cannot be guessed from its hash, so plain SHA-256 is
enough here, and it lets a key be found by its hash in one indexed look-up. Issuing a key for
an LEA replaces its previous one: rotation and revocation are the same act.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..runtime.errors import NotFound
from ..runtime.validation import check_ori
from .models import AgencyRecord, LeaCredentialRecord

# What every LEA key starts with, so that one found in a log or a repository is recognised.
KEY_PREFIX: Final = "scfed_lea_"
# Random bytes in a key: 256 bits, 43 URL-safe characters.
KEY_BYTES: Final = 32


@dataclass(frozen=True)
class IssuedKey:
    """A key as issued: the only time the key itself is seen."""

    ori: str
    api_key: str
    issued_at: datetime


def key_hash(api_key: str) -> str:
    """The SHA-256 of a key, as stored."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


async def issue(session: AsyncSession, ori: str, *, now: datetime) -> IssuedKey:
    """Issues a fresh key for a registered LEA, replacing (revoking) its previous one."""
    check_ori(ori)
    if await session.get(AgencyRecord, ori) is None:
        raise NotFound(f"no agency with ORI {ori}")
    api_key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = await session.get(LeaCredentialRecord, ori, with_for_update=True)
    if row is None:
        row = LeaCredentialRecord(ori=ori)
        session.add(row)
    row.key_sha256 = key_hash(api_key)
    row.issued_at = now
    return IssuedKey(ori=ori, api_key=api_key, issued_at=now)


async def lea_of(session: AsyncSession, api_key: str) -> str | None:
    """The ORI whose current key this is; None for an unknown or revoked key."""
    ori: str | None = await session.scalar(
        select(LeaCredentialRecord.ori).where(LeaCredentialRecord.key_sha256 == key_hash(api_key))
    )
    return ori
