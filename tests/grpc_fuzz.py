"""A small gRPC fuzzer over the services' descriptors: random messages of any request type
(NUL, control characters, surrogate-free unicode, empty and long strings, extreme integers,
NaN and infinite floats, unknown enum values, nested and repeated fields), mutations of valid
messages, and raw bytes that are not a message at all. Deterministic for a seed."""

from __future__ import annotations

import contextlib
import random
import string
from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2

from scfed.admin.v1 import admin_pb2
from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.ident.v1 import ident_pb2
from scfed.lesc.v1 import lesc_pb2
from scfed.sib.v1 import sib_pb2
from services.federation import Agency

_OWN = {
    Agency.SIB: sib_pb2,
    Agency.CJIS_IAFIS: cjis_iafis_pb2,
    Agency.IDENT: ident_pb2,
    Agency.LESC: lesc_pb2,
    Agency.ICE_FIELD: ice_field_pb2,
}
# Every service also serves these.
_SHARED = [
    common_pb2.DESCRIPTOR.services_by_name["Journal"],
    common_pb2.DESCRIPTOR.services_by_name["Faults"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
]

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e308, -1e308, 1e-308, float("nan"), float("inf")]
_FLOATS += [float("-inf"), 3.4e38, 1e39]
# Strings that look like what the services take (ORIs, TCNs, dates, codes, clock specs).
_LIKELY = [
    "CA0190000",
    "CASIB0000",
    "ORICE0100",
    "CA",
    "20091015",
    "19800229",
    "1201",
    "1234567AB",
    "I",
    "N",
    "M",
    "real",
    "manual",
    "accelerated:60",
    "accelerated:1e308",
    "manual:9999-12-31T23:59:59",
    "P1D",
    "PT48H",
    "P99999999D",
    "{}",
    '{"version": 1}',
    "[]",
    "DOE,JOHN",
    "IAR",
    "I-247",
    "detainer_issued",
    "released",
]


def service_descriptors(agency: str) -> list[ServiceDescriptor]:
    """The gRPC services one agency's server registers (its own, journal, faults, admin,
    health)."""
    return [*_OWN[Agency(agency)].DESCRIPTOR.services_by_name.values(), *_SHARED]


def message_class(descriptor: Descriptor) -> type[Message]:
    """The generated class of a message descriptor."""
    return GetMessageClass(descriptor)


class Fuzzer:
    """Random values, messages and bytes from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def text(self) -> str:
        """A string: empty, likely, NUL- or control-laden, long, or random unicode."""
        rng = self.rng
        kind = rng.randrange(9)
        if kind == 0:
            return ""
        if kind == 1:
            return rng.choice(_LIKELY)
        if kind == 2:
            value = rng.choice(_LIKELY)
            at = rng.randrange(len(value) + 1)
            return value[:at] + rng.choice("\x00\x01\n\t\r\x1b\x7f\x85") + value[at:]
        if kind == 3:
            return rng.choice(string.printable) * rng.choice([41, 1000, 70_000])
        if kind == 4:
            return " " * rng.randrange(1, 4)
        # Any code point but a surrogate (which protobuf cannot encode).
        chars = []
        for _ in range(rng.randrange(1, 24)):
            code = rng.randrange(0x110000) if rng.random() < 0.5 else rng.randrange(0x80)
            if 0xD800 <= code <= 0xDFFF:
                code = 0xFFFD
            chars.append(chr(code))
        return "".join(chars)

    def scalar(self, field: Any) -> Any:
        """A random value of a scalar field's type."""
        rng = self.rng
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return self.text()
        if kind == FieldDescriptor.TYPE_BYTES:
            return rng.randbytes(rng.choice([0, 1, 16, 300]))
        if kind == FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            value = rng.choice(_FLOATS) if rng.random() < 0.7 else rng.uniform(-1e6, 1e6)
            if kind == FieldDescriptor.TYPE_FLOAT and abs(value) > 3.4e38 and value == value:
                value = float("inf") if value > 0 else float("-inf")
            return value
        if kind == FieldDescriptor.TYPE_ENUM:
            numbers = [v.number for v in field.enum_type.values]
            return rng.choice(numbers) if rng.random() < 0.7 else rng.choice([-1, 99, 2**31 - 1])
        low, high = _INT_RANGES[kind]
        edges = [low, high, 0, 1, -1 if low < 0 else 2, 9, 10, 2**31 - 1 if high > 2**31 else high]
        return rng.choice(edges) if rng.random() < 0.6 else rng.randint(low, high)

    def fill(self, message: Message, depth: int = 0) -> Message:
        """Sets a random subset of `message`'s fields to random values, `depth` levels down."""
        rng = self.rng
        for field in message.DESCRIPTOR.fields:
            if rng.random() < 0.4:
                continue
            self.set_field(message, field, depth)
        return message

    def set_field(self, message: Message, field: Any, depth: int) -> None:
        """Gives one field of `message` a random value (items, for a repeated field); a value
        protobuf itself refuses (a closed enum's unknown number) leaves the field as it was."""
        with contextlib.suppress(ValueError, TypeError):
            self._set_field(message, field, depth)

    def _set_field(self, message: Message, field: Any, depth: int) -> None:
        rng = self.rng
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(rng.randrange(4)):
                key = self.scalar(key_field)
                if value_field.message_type is not None:
                    if depth < 3:
                        self.fill(target[key], depth + 1)
                else:
                    target[key] = self.scalar(value_field)
        elif field.is_repeated:
            message.ClearField(field.name)
            for _ in range(rng.choice([0, 1, 2, 3, 12])):
                if field.message_type is not None:
                    if depth < 3:
                        self.fill(target.add(), depth + 1)
                else:
                    target.append(self.scalar(field))
        elif field.message_type is not None:
            if depth < 3:
                target.SetInParent()
                self.fill(target, depth + 1)
        else:
            setattr(message, field.name, self.scalar(field))

    def mutate(self, valid: Message) -> Message:
        """A copy of a valid message with one to three fields, at any depth, changed or
        cleared."""
        rng = self.rng
        message = type(valid)()
        message.CopyFrom(valid)
        for _ in range(rng.randrange(1, 4)):
            target = message
            # Walk down through set message fields, then change one field there.
            while True:
                fields = target.DESCRIPTOR.fields
                field: Any = rng.choice(list(fields))
                child_set = (
                    field.message_type is not None
                    and not field.is_repeated
                    and target.HasField(field.name)
                )
                if child_set and rng.random() < 0.6:
                    target = getattr(target, field.name)
                    continue
                if rng.random() < 0.2:
                    target.ClearField(field.name)
                else:
                    self.set_field(target, field, depth=2)
                break
        return message

    def garbage(self, valid: bytes) -> bytes:
        """Bytes that may not decode: random, or a valid message's bytes with some flipped,
        cut or spliced."""
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0 or not valid:
            return rng.randbytes(rng.choice([1, 2, 5, 64, 1000]))
        data = bytearray(valid)
        if kind == 1:
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)
        if kind == 2:
            return bytes(data[: rng.randrange(len(data))])
        at = rng.randrange(len(data))
        return bytes(data[:at] + rng.randbytes(rng.randrange(1, 9)) + data[at:])


def cases(
    fuzzer: Fuzzer, request: Descriptor, valid: list[Message], count: int
) -> Iterator[tuple[str, bytes]]:
    """`count` cases for one method: (kind, request bytes), generated, mutated and garbage."""
    cls = message_class(request)
    for i in range(count):
        kind = i % 3
        if kind == 0 or (kind == 1 and not valid):
            yield "generated", fuzzer.fill(cls()).SerializeToString()
        elif kind == 1:
            yield "mutated", fuzzer.mutate(fuzzer.rng.choice(valid)).SerializeToString()
        else:
            base = fuzzer.rng.choice(valid).SerializeToString() if valid else b""
            yield "garbage", fuzzer.garbage(base)
