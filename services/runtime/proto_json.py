"""The one stored form of agency records: protobuf messages as their protobuf JSON.

Every table that keeps a message (a booking's descriptors and charges, an arrest cycle, an IDR,
an IAR, a response relayed to an LEA) keeps it as `json_format` writes it with the proto field
names: readable with plain SQL, the same in SQLite and PostgreSQL, and read back into the same
message with no hand-written mapping. Formats of the outside world (the LEAs' HTTP bodies) are
converted at the edge that takes them, never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


def to_json(message: Message) -> dict[str, Any]:
    """A message as JSON-ready protobuf JSON, with the proto field names."""
    return MessageToDict(message, preserving_proto_field_name=True)


def from_json(data: Mapping[str, Any], message_type: type[M]) -> M:
    """A message back from its protobuf JSON."""
    return ParseDict(dict(data), message_type())


def list_to_json(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Messages as a JSON-ready list."""
    return [to_json(m) for m in messages]


def list_from_json(items: Iterable[Mapping[str, Any]], message_type: type[M]) -> list[M]:
    """Messages back from a JSON list."""
    return [from_json(item, message_type) for item in items]
