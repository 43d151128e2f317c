"""Waits on a running federation: a condition to hold, a booking to be final."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..sib.models import FINISHED


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Polls `check` until it holds; fails after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def final_booking(
    client: httpx.AsyncClient, tcn: str, *, timeout: float = 30.0
) -> dict[str, Any]:
    """Waits until the booking is answered or refused at the SIB `client` is based on; returns
    its view."""
    view: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal view
        view = (await client.get(f"/v1/bookings/{tcn}")).json()
        return view["status"] in FINISHED

    await eventually(done, timeout=timeout, what=f"booking {tcn} to be final")
    return view
