"""Building and checking the common envelope every inter-agency message carries."""

from __future__ import annotations

import uuid
from enum import StrEnum

from google.protobuf.timestamp_pb2 import Timestamp

from scfed.common.v1 import common_pb2

from .clock import Clock
from .errors import InvalidArgument
from .validation import check_ori


class MessageType(StrEnum):
    """The type of transaction (TOT) of a message, as its envelope and journal carry it."""

    # An LEA's booking, as the SIB journals its receipt.
    BOOKING = "BOOKING"
    # Criminal Answer Required: an arrest submission with prints.
    CAR = "CAR"
    # Criminal Print Ident: an NFF state's subsequent arrest, without prints.
    CPI = "CPI"
    # Submission Results - Electronic: identification and rap sheet.
    SRE = "SRE"
    # Error response to a refused submission.
    ERRT = "ERRT"
    # CJIS's interoperability search of IDENT, and IDENT's answer.
    IDENT_SEARCH = "IDENT-SEARCH"
    IDR = "IDR"
    # The SIB's copy of a no-match IDR.
    NO_MATCH_IDR = "NO-MATCH-IDR"
    # Immigration Alien Query to LESC, its acknowledgement, and the Immigration Alien Response.
    IAQ = "IAQ"
    IAQ_ACK = "IAQ-ACK"
    IAR = "IAR"
    # LESC's copy of the IAR to the field office.
    IAR_COPY = "IAR-COPY"
    # The joint IDR/IAR to the SIB.
    IDR_IAR = "IDR/IAR"
    # The I-247 immigration detainer.
    I247 = "I-247"
    # An LEA's release notice for a subject under detainer.
    RELEASE = "RELEASE"
    # The field office's notice to IDENT of an encounter it had (a removal).
    ENCOUNTER = "ENCOUNTER"


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
    tot: MessageType,
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
