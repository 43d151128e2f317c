"""Building and checking the common envelope every inter-agency message carries."""

from __future__ import annotations

import re
import uuid

from google.protobuf.timestamp_pb2 import Timestamp

from scfed.common.v1 import common_pb2
from services.runtime.clock import Clock
from services.runtime.errors import InvalidArgument

ORI_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")


def new_message_id() -> str:
    """A fresh message id."""
    return str(uuid.uuid4())


def new_tcn(prefix: str) -> str:
    """A fresh transaction control number with an agency prefix."""
    return f"{prefix}{uuid.uuid4().hex[:16].upper()}"


def make_envelope(
    *,
    clock: Clock,
    sender: str,
    tot: str,
    tcr: str,
    ori: str,
    dai: str = "",
    pry: int = 5,
    tcn_prefix: str = "",
) -> common_pb2.Envelope:
    """A new envelope for a message that belongs to the booking `tcr`."""
    sent_at = Timestamp()
    sent_at.FromDatetime(clock.now())
    return common_pb2.Envelope(
        message_id=new_message_id(),
        tot=tot,
        tcn=new_tcn(tcn_prefix or sender[:3].upper()),
        tcr=tcr,
        ori=ori,
        dai=dai,
        pry=pry,
        sent_at=sent_at,
        sender=sender,
    )


def check_ori(ori: str, *, field: str = "ori") -> str:
    """Refuses an ORI that is not nine characters, two letters of state then [A-Z0-9]."""
    if not ORI_PATTERN.fullmatch(ori):
        raise InvalidArgument(
            f"{field} must be nine characters: a two-letter state code then 7 of [A-Z0-9], "
            f"got {ori!r}"
        )
    return ori


def check_envelope(
    envelope: common_pb2.Envelope, *, has_envelope: bool, follow_on: bool = True
) -> str:
    """Refuses an envelope without the fields delivery needs; returns the booking TCN.

    A follow-on message (anything but the CAR or CPI that opens a transaction) names its
    booking in `tcr`; an opening message has only its own `tcn`.
    """
    if not has_envelope:
        raise InvalidArgument("envelope is required")
    if not envelope.message_id:
        raise InvalidArgument("envelope.message_id is required")
    if len(envelope.message_id) > 36:
        raise InvalidArgument("envelope.message_id must be at most 36 characters")
    if follow_on and not envelope.tcr:
        raise InvalidArgument("envelope.tcr (the TCN of the booking) is required")
    booking_tcn = envelope.tcr or envelope.tcn
    if not booking_tcn:
        raise InvalidArgument("envelope.tcn or envelope.tcr is required")
    if len(booking_tcn) > 40:
        raise InvalidArgument("envelope.tcn/tcr must be at most 40 characters")
    if envelope.pry > 9:
        raise InvalidArgument(f"envelope.pry must be 1..9, got {envelope.pry}")
    check_ori(envelope.ori, field="envelope.ori")
    return booking_tcn
