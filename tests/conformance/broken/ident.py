"""IDENT, broken: no IDR, a search without prints accepted, a retried search searched twice."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.federation import Agency
from services.ident.domain import IdentGallery
from tests.conformance.broken.common import forget_message_ids
from tests.conformance.harness import Broken


def _never_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    async def search(self: IdentGallery, session: AsyncSession, request: Any, *, who: str) -> str:
        return "searched, and forgot to answer"

    monkeypatch.setattr(IdentGallery, "search", search)


def _searches_without_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    search = IdentGallery.search

    async def lenient(self: IdentGallery, session: AsyncSession, request: Any, *, who: str) -> str:
        if not request.HasField("tenprint"):
            return "no prints, no search"
        return await search(self, session, request, who=who)

    monkeypatch.setattr(IdentGallery, "search", lenient)


VARIANTS = [
    Broken(
        Agency.IDENT,
        "never sends the IDR",
        "Search of someone unknown is answered with a no-match IDR to CJIS",
        _never_answers,
    ),
    Broken(
        Agency.IDENT,
        "accepts a search without prints",
        "refuses Search: search without tenprint",
        _searches_without_prints,
    ),
    Broken(
        Agency.IDENT,
        "processes a retried search again",
        "A repeated Search message id is acknowledged as a duplicate and answered once",
        forget_message_ids,
    ),
]
