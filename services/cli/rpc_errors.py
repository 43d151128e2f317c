"""A failed gRPC call as the command line says it: the status and its details, and what to do
where the status alone would leave a user guessing."""

from __future__ import annotations

import grpc

# Seeding writes the world's records under ids drawn from its seed and size: a second world
# with other ones meets the first one's ids.
ANOTHER_WORLD = (
    "the federation already holds another world's records under these ids (seeded with "
    "another --seed or world size); seed the same world again, or run `scfed reset` first"
)


def rpc_failure(exc: grpc.aio.AioRpcError) -> str:
    """`CODE: details`, with the remedy for a status that has a known one."""
    message = f"{exc.code().name}: {exc.details()}"
    if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
        message += f" ({ANOTHER_WORLD})"
    return message
