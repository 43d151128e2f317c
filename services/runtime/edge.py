"""The gRPC edge's one translation: a DomainError raised by an RPC method becomes its gRPC
status and message."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from .errors import DomainError

Servicer = TypeVar("Servicer")
Request = TypeVar("Request")
Response = TypeVar("Response")
RpcMethod = Callable[[Servicer, Request, grpc.aio.ServicerContext], Awaitable[Response]]


def grpc_edge(
    method: RpcMethod[Servicer, Request, Response],
) -> RpcMethod[Servicer, Request, Response]:
    """Maps a DomainError raised by an RPC method to its gRPC status and message."""

    @functools.wraps(method)
    async def wrapper(
        self: Servicer, request: Request, context: grpc.aio.ServicerContext
    ) -> Response:
        try:
            return await method(self, request, context)
        except DomainError as exc:
            await context.abort(grpc.StatusCode[exc.status], exc.message)
            raise  # unreachable: abort raises

    return wrapper
