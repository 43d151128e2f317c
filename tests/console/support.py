"""The console served in the test's event loop, on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from services.console.app import create_app
from services.console.server import ConsoleServer, bind
from services.console.sources import ConsoleConfig


@asynccontextmanager
async def serving_console(
    urls: Mapping[str, str], operator_headers: Mapping[str, str] | None = None
) -> AsyncIterator[str]:
    """The console over `urls`, answering at the URL yielded until the block ends."""
    config = ConsoleConfig(urls=dict(urls), operator_headers=dict(operator_headers or {}))
    server = ConsoleServer(create_app(config), bind("127.0.0.1", 0))
    task = asyncio.create_task(server.serve())
    try:
        while not server.server.started:
            if task.done():
                await task
                raise RuntimeError("the console stopped at start")
            await asyncio.sleep(0.01)
        yield server.url.rstrip("/")
    finally:
        server.server.should_exit = True
        await asyncio.wait_for(task, 10)
        server.sock.close()
