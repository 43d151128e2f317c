"""LESC, broken: no acknowledgement, no copy to the field office, homicide classified Level 3,
a retried IAQ answered again."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from services.federation import Agency
from services.lesc.offense_levels import Classification, OffenseTable
from services.runtime import message_routes
from services.runtime.delivery import Outbox
from services.runtime.message_routes import Route
from tests.conformance.broken.common import forget_message_ids
from tests.conformance.harness import Broken


def _drops(dropped: Route[Any]) -> Callable[[pytest.MonkeyPatch], None]:
    """Breaks the outbox so that messages of the route `dropped` are never written."""

    def apply(monkeypatch: pytest.MonkeyPatch) -> None:
        add = Outbox.add

        def forgetful(self: Outbox, session: Any, *, route: Route[Any], message: Any) -> None:
            if route is not dropped:
                add(self, session, route=route, message=message)

        monkeypatch.setattr(Outbox, "add", forgetful)

    return apply


def _homicide_is_level_3(monkeypatch: pytest.MonkeyPatch) -> None:
    classify = OffenseTable.classify

    def lenient(
        self: OffenseTable, code: str, *, sentence_days: int | None = None
    ) -> Classification:
        found = classify(self, code, sentence_days=sentence_days)
        if code.startswith("09"):
            return dataclasses.replace(found, level=3, category="Other offenses")
        return found

    monkeypatch.setattr(OffenseTable, "classify", lenient)


VARIANTS = [
    Broken(
        Agency.LESC,
        "never acknowledges the IAQ to CJIS",
        "SubmitIaq is acknowledged, then CJIS gets an IaqAcknowledgement naming the case",
        _drops(message_routes.CJIS_ACKNOWLEDGE_IAQ),
    ),
    Broken(
        Agency.LESC,
        "sends no IAR copy to the field office",
        "An IAQ is answered with an IAR to CJIS and the same IAR to the field office",
        _drops(message_routes.ICE_DELIVER_IAR),
    ),
    Broken(
        Agency.LESC,
        "classifies homicide (09xx) as Level 3",
        "A homicide charge (NCIC 0901) makes the IAR's current charge level 1",
        _homicide_is_level_3,
    ),
    Broken(
        Agency.LESC,
        "answers a retried IAQ again",
        "A repeated IAQ message id is acknowledged as a duplicate and answered once",
        forget_message_ids,
    ),
]
