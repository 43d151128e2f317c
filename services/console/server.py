"""Serving the console: bound before it starts (a taken port is an error at once, naming the
port), in the foreground (`scfed console`) or in a thread beside the services (`scfed up`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Final

import uvicorn
from fastapi import FastAPI

# The console's port unless told otherwise (`scfed console --port`, `scfed up --console-port`);
# above the services' 8081..8085.
DEFAULT_PORT: Final = 8090


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: a free port); OSError naming the port when taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"the console's port {host}:{port} is not free: {exc.strerror}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class ConsoleServer:
    """The console app on its bound socket."""

    app: FastAPI
    sock: socket.socket
    server: uvicorn.Server = field(init=False)
    thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)

    @property
    def url(self) -> str:
        """The console's address, for a browser."""
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}/"

    async def serve(self) -> None:
        """Serves until `stop` (or, in the foreground, Ctrl-C)."""
        await self.server.serve(sockets=[self.sock])

    def start_in_thread(self, timeout: float = 10.0) -> None:
        """Serves in a thread of its own, with its own event loop; returns once it answers."""
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.serve()), name="scfed-console", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console did not start")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops serving (and its thread, when it has one)."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.sock.close()
