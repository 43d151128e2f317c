"""A started service runs on the event loop its settings name."""

from __future__ import annotations

import asyncio

from services.runtime.config import ServiceSettings
from services.runtime.server import run_on_loop


def test_a_service_runs_on_uvloop_by_default_and_on_asyncio_when_told() -> None:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__.partition(".")[0])

    run_on_loop(main(), ServiceSettings().event_loop)
    run_on_loop(main(), "asyncio")
    assert seen == ["uvloop", "asyncio"]
