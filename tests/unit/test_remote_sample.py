"""The booking a demo (remote or local) suggests tracing is one that crossed IDENT when any
did."""

from __future__ import annotations

from typing import Any

import httpx

from services.cli.demo import SAMPLE_LOOK_AT, _sample_tcn
from services.cli.remote import sample_tcn


def _view(*kinds: str) -> dict[str, Any]:
    return {"responses": [{"kind": kind} for kind in kinds]}


def test_the_sample_is_the_first_booking_that_crossed_ident() -> None:
    views = {"T1": _view("SRE"), "T2": _view("SRE", "NO-MATCH-IDR"), "T3": _view("SRE", "I-247")}
    assert sample_tcn(["T1", "T2", "T3"], views) == "T2"
    assert sample_tcn(["T1", "T3"], views) == "T3"


def test_without_one_the_sample_is_the_first_booking_or_none() -> None:
    assert sample_tcn(["T1", "T9"], {"T1": _view("SRE")}) == "T1"
    assert sample_tcn([], {}) == ""


async def test_the_local_demo_reads_bookings_back_until_one_crossed_ident() -> None:
    views = {"T1": _view("SRE"), "T2": _view("SRE"), "T3": _view("SRE", "IDR/IAR")}
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        tcn = request.url.path.rsplit("/", 1)[-1]
        asked.append(tcn)
        if tcn not in views:
            return httpx.Response(404, json={"detail": "no such booking"})
        return httpx.Response(200, json=views[tcn])

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport, base_url="http://sib") as client:
        assert await _sample_tcn(client, ["T0", "T1", "T2", "T3", "T4"]) == "T3"
        assert asked == ["T0", "T1", "T2", "T3"]  # stops at the first
        asked.clear()
        many = ["T1"] * (SAMPLE_LOOK_AT + 5)
        assert await _sample_tcn(client, many) == "T1"  # none crossed: the first
        assert len(asked) == SAMPLE_LOOK_AT  # and it read no more than it may
        assert await _sample_tcn(client, []) == ""
