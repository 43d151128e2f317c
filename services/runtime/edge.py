"""The gRPC edge's translations, the same for every RPC of every service: request bytes that do
not decode and strings with control characters are refused as INVALID_ARGUMENT naming the
field, and a DomainError raised by an RPC method becomes its gRPC status and message, cut to a
length that always fits in the trailers."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from .errors import DomainError, InvalidArgument, shown

Servicer = TypeVar("Servicer")
Request = TypeVar("Request")
Response = TypeVar("Response")
RpcMethod = Callable[[Servicer, Request, grpc.aio.ServicerContext], Awaitable[Response]]

# The longest status details the edge sends. gRPC's trailers are bounded (grpcio's client
# drops a value over 16 KiB, counted after percent-encoding): longer details turn the caller's
# status into RESOURCE_EXHAUSTED and lose the reason.
MAX_DETAILS = 1000

# Fields that hold identifiers (keys, numbers, codes): no control character at all, not even
# tab or line feed. Every other string may carry tab, line feed and carriage return.
IDENTIFIER_FIELDS = frozenset(
    {
        "a_number",
        "booking_number",
        "booking_tcn",
        "case_id",
        "code",
        "dai",
        "detainer_id",
        "fbi_number",
        "fin",
        "lea_ori",
        "message_id",
        "ncic_code",
        "ori",
        "refused_tcn",
        "service",
        "sid",
        "sib_ori",
        "tcn",
        "tcr",
        "tot",
    }
)
# A Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
# C0 and C1 control characters and DEL; in text, all but tab, LF and CR.
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def bounded(details: str) -> str:
    """Status details cut to MAX_DETAILS characters, saying that they were cut."""
    if len(details) <= MAX_DETAILS:
        return details
    return details[: MAX_DETAILS - 15] + "... (truncated)"


def _leaves(message: Message, prefix: str = "") -> Iterator[tuple[str, str, str | Timestamp]]:
    """Every string and Timestamp set in `message` at any depth: (path, field name, value)."""
    if isinstance(message, Timestamp):
        yield prefix.removesuffix("."), prefix.removesuffix(".").rpartition(".")[2], message
        return
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                item_path = f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]"
                if isinstance(key, str):
                    yield f"{path} key", field.name, key
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    yield from _leaves(item, f"{item_path}.")
                elif value_field.type == FieldDescriptor.TYPE_STRING:
                    yield item_path, field.name, item
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                for i, item in enumerate(value):
                    yield from _leaves(item, f"{path}[{i}].")
            else:
                yield from _leaves(value, f"{path}.")
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                for i, item in enumerate(value):
                    yield f"{path}[{i}]", field.name, item
            else:
                yield path, field.name, value


def check_request(message: Message) -> None:
    """Refuses a message with a NUL or another control character in any string field (tab,
    LF and CR pass in free text, not in identifiers), or a Timestamp out of its range (years
    1 to 9999, nanos 0 to 999,999,999), naming the field."""
    for path, name, value in _leaves(message):
        if isinstance(value, Timestamp):
            if not (_MIN_SECONDS <= value.seconds <= _MAX_SECONDS and 0 <= value.nanos < 10**9):
                raise InvalidArgument(
                    f"{path} is not a valid timestamp (years 1 to 9999, nanos 0 to "
                    f"999999999): seconds {value.seconds}, nanos {value.nanos}"
                )
            continue
        pattern = _ANY_CONTROL if name in IDENTIFIER_FIELDS else _TEXT_CONTROL
        found = pattern.search(value)
        if found is not None:
            raise InvalidArgument(
                f"{path} must not contain control characters, "
                f"found U+{ord(found.group()):04X} in {shown(value)}"
            )


def grpc_edge(
    method: RpcMethod[Servicer, Request, Response],
) -> RpcMethod[Servicer, Request, Response]:
    """Refuses control characters in the request's strings and Timestamps out of range, and
    maps a DomainError raised by an RPC method to its gRPC status and (bounded) message."""

    @functools.wraps(method)
    async def wrapper(
        self: Servicer, request: Request, context: grpc.aio.ServicerContext
    ) -> Response:
        try:
            if isinstance(request, Message):
                check_request(request)
            return await method(self, request, context)
        except DomainError as exc:
            await context.abort(grpc.StatusCode[exc.status], bounded(exc.message))
            raise  # unreachable: abort raises

    return wrapper


class _Undecodable:
    """What a request that did not decode is handed to the method as: the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _lenient(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """`deserializer`, but bytes that do not decode give an _Undecodable, not an exception
    (which gRPC would answer with UNKNOWN)."""

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, UnicodeDecodeError, ValueError, TypeError) as exc:
            return _Undecodable(str(exc) or type(exc).__name__)

    return deserialize


async def _refuse(request: _Undecodable, context: grpc.aio.ServicerContext) -> None:
    """Ends the call with INVALID_ARGUMENT and the reason the request did not decode."""
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        bounded(f"the request is not a valid message of the method's type: {request.reason}"),
    )


def _refusing_unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Undecodable):
            await _refuse(request, context)
        return await behavior(request, context)

    return unary


def _refusing_unary_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Undecodable):
            await _refuse(request, context)
        result = behavior(request, context)
        if hasattr(result, "__aiter__"):
            async for item in result:
                yield item
        else:
            await result

    return unary_stream


def _refusing_stream(behavior: Callable[..., Any], *, streams: bool) -> Callable[..., Any]:
    async def checked(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        async for request in requests:
            if isinstance(request, _Undecodable):
                await _refuse(request, context)
            yield request

    if streams:

        async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            result = behavior(checked(requests, context), context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            else:
                await result

        return stream_stream

    async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        return await behavior(checked(requests, context), context)

    return stream_unary


# A unary-unary RPC's behaviour as a server interceptor sees it.
UnaryBehaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class UnaryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server interceptor that wraps the behaviour of unary-unary RPCs (every RPC of the
    federation's services) and leaves streaming ones alone."""

    def wrap(self, method: str, inner: UnaryBehaviour) -> UnaryBehaviour | None:
        """The behaviour to run instead of `inner` for `method`; None leaves it as it is."""
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, its unary-unary behaviour wrapped by `wrap`."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = self.wrap(handler_call_details.method, handler.unary_unary)
        if wrapped is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class DecodeRefusal(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Answers request bytes that do not decode as the method's message with INVALID_ARGUMENT
    and the reason, for every method of the server (gRPC itself says UNKNOWN)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler with a deserializer that cannot fail."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        deserializer = _lenient(handler.request_deserializer)
        serializer = handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _refusing_unary(handler.unary_unary), deserializer, serializer
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _refusing_unary_stream(handler.unary_stream), deserializer, serializer
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _refusing_stream(handler.stream_unary, streams=False), deserializer, serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            _refusing_stream(handler.stream_stream, streams=True), deserializer, serializer
        )
