"""The LESC suite: the IAQ's acknowledgement, the IAR to CJIS and its copy to the field office.

LESC takes an IAQ from CJIS after an IDENT match (MOA V.B), acknowledges it to CJIS at once,
determines status and removability, classifies the charges by Appendix A and answers with the
same IAR to CJIS and to the ICE field office covering the booking LEA. The IAQs here are ones a
24x7 desk answers without an analyst: a strong biometric match (score 0.95) and a status IDENT
holds firmly (entry without inspection, or a naturalized citizen), so their IAR comes within
the case's deadline on a real clock. The codes classify the same in both Appendix A tables:
0901 homicide (Level 1), 2201 burglary (Level 2), 3901 gambling (Level 3), 1201 robbery (1).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.lesc.v1 import lesc_pb2 as lesc

from ...federation import Agency
from ..kit import CaseFailed, Probe, case, for_booking, refusal_cases
from ..messages import CA, envelope, iaq, new_tcn
from ..refusals import EXISTS, INVALID, content_refusals, envelope_refusals

LESC = Agency.LESC
CJIS = Agency.CJIS_IAFIS
ICE = Agency.ICE_FIELD

HOMICIDE, BURGLARY, GAMBLING, ROBBERY = "0901", "2201", "3901", "1201"
EWI = common.IMMIGRATION_STATUS_ENTRY_WITHOUT_INSPECTION
CITIZEN = common.IMMIGRATION_STATUS_NATURALIZED_CITIZEN
LEVEL = {1: common.OFFENSE_LEVEL_1, 2: common.OFFENSE_LEVEL_2, 3: common.OFFENSE_LEVEL_3}


def _charges(*codes: str, convicted: bool = False) -> list[common.Charge]:
    disposition = common.DISPOSITION_CONVICTED if convicted else common.DISPOSITION_CHARGED
    return [
        common.Charge(
            ncic_code=code,
            literal=f"NCIC {code}",
            disposition=disposition,
            sentence_days=400 if convicted else 0,
        )
        for code in codes
    ]


def automated_iaq(
    *codes: str,
    status: common.ImmigrationStatus.ValueType = EWI,
    prior: tuple[str, ...] = (),
    score: float = 0.95,
) -> lesc.Iaq:
    """An IAQ for a fresh booking in `CA` whose IDR is a strong match with a firm status,
    charged with `codes` and previously convicted of `prior`."""
    fin = "FIN" + uuid.uuid4().hex[:12].upper()
    history = common.CriminalHistory(
        fbi_number="1234567AB",
        cycles=[
            common.ArrestCycle(ori=CA, doa="20050101", charges=_charges(*prior, convicted=True))
        ]
        if prior
        else [],
    )
    return iaq(
        envelope=envelope("IAQ", tcr=new_tcn("BOOK"), ori=CA),
        off=_charges(*codes),
        fbi="1234567AB",
        sid="CA0000000001",
        booking_number="BK-" + uuid.uuid4().hex[:8].upper(),
        idr=common.Idr(
            match=True,
            fin=fin,
            score=score,
            encounters=[
                common.Encounter(
                    encounter_id="ENC-" + fin,
                    encounter_type="BORDER-APPREHENSION",
                    status=status,
                )
            ],
        ),
        history=history,
    )


async def _iar_for(probe: Probe, request: lesc.Iaq) -> common.Iar:
    """Submits the IAQ and waits for LESC's IAR to CJIS about its booking."""
    await probe.deliver("SubmitIaq", request)
    received = await probe.expect(
        CJIS, "DeliverIar", for_booking(request.envelope.tcr), what="IAR to CJIS"
    )
    answer: cjis.IarMessage = received.message
    if not answer.HasField("iar"):
        raise CaseFailed(f"the IAR message to CJIS carries no IAR: {answer}")
    return answer.iar


def _level_name(level: int) -> str:
    return common.OffenseLevel.Name(level)  # type: ignore[arg-type]


def _check_levels(iar: common.Iar, expected: dict[str, int], current: int) -> None:
    """Every current charge classified at its Appendix A level, and the most serious one as the
    IAR's current charge level."""
    got = {c.charge.ncic_code: c.level for c in iar.current_charges}
    want = {code: LEVEL[level] for code, level in expected.items()}
    if got != want:
        shown = {code: _level_name(level) for code, level in got.items()}
        raise CaseFailed(f"expected the charges classified {expected}, got {shown}")
    if iar.current_charge_level != LEVEL[current]:
        raise CaseFailed(
            f"expected current_charge_level OFFENSE_LEVEL_{current}, "
            f"got {_level_name(iar.current_charge_level)}"
        )


def _check_follow_on(reply: common.Envelope, request: common.Envelope, what: str) -> None:
    """A follow-on is a new message of its own about the same booking of the same LEA."""
    problems = []
    if not reply.message_id or reply.message_id == request.message_id:
        problems.append(f"message_id {reply.message_id!r} must be new")
    if not reply.tcn or reply.tcn == request.tcn:
        problems.append(f"tcn {reply.tcn!r} must be its own")
    if reply.tcr != request.tcr:
        problems.append(f"tcr {reply.tcr!r} must be the booking's {request.tcr!r}")
    if reply.ori != request.ori:
        problems.append(f"ori {reply.ori!r} must be the booking LEA's {request.ori!r}")
    if not 1 <= reply.pry <= 9:
        problems.append(f"pry {reply.pry} must be 1..9")
    if problems:
        raise CaseFailed(f"the {what}'s envelope: " + "; ".join(problems))


@case(LESC, "SubmitIaq is acknowledged, then CJIS gets an IaqAcknowledgement naming the case")
async def acknowledged(probe: Probe) -> None:
    """The Ack names the IAQ's message id; CJIS's AcknowledgeIaq follows, with a LESC case id,
    the booking's TCN as TCR, in a message of its own."""
    request = automated_iaq(HOMICIDE)
    await probe.deliver("SubmitIaq", request)
    received = await probe.expect(
        CJIS, "AcknowledgeIaq", for_booking(request.envelope.tcr), what="IAQ acknowledgement"
    )
    ack: cjis.IaqAcknowledgement = received.message
    if not ack.case_id:
        raise CaseFailed(f"the IAQ acknowledgement names no case id: {ack}")
    _check_follow_on(ack.envelope, request.envelope, "IAQ acknowledgement")


@case(LESC, "An IAQ is answered with an IAR to CJIS and the same IAR to the field office")
async def answered(probe: Probe) -> None:
    """The IAR to CJIS names the acknowledged case and the IDR's FIN; the field office's
    IarCopy carries the very same IAR, the booking number and the name."""
    request = automated_iaq(HOMICIDE)
    iar = await _iar_for(probe, request)
    ack = await probe.expect(CJIS, "AcknowledgeIaq", for_booking(request.envelope.tcr))
    if iar.case_id != ack.message.case_id or iar.fin != request.idr.fin:
        raise CaseFailed(
            f"expected case {ack.message.case_id} and FIN {request.idr.fin}, "
            f"got {iar.case_id} and {iar.fin}"
        )
    received = await probe.expect(
        ICE, "DeliverIar", for_booking(request.envelope.tcr), what="IAR copy to the field office"
    )
    copied: ice.IarCopy = received.message
    if copied.iar != iar:
        raise CaseFailed(f"the field office's IAR differs from CJIS's: {copied.iar} vs {iar}")
    if copied.booking_number != request.booking_number or copied.nam != request.descriptors.nam:
        raise CaseFailed(
            f"expected booking {request.booking_number} of {request.descriptors.nam}, "
            f"got {copied.booking_number!r} of {copied.nam!r}"
        )
    answer = await probe.expect(CJIS, "DeliverIar", for_booking(request.envelope.tcr))
    _check_follow_on(answer.message.envelope, request.envelope, "IAR")
    _check_follow_on(copied.envelope, request.envelope, "IAR copy")


@case(LESC, "An IAQ that needs an analyst is still acknowledged to CJIS at once")
async def acknowledged_before_analysis(probe: Probe) -> None:
    """A weak biometric match goes to the desk (analyst or VTC interview), yet CJIS gets the
    acknowledgement at once; the IAR may come later."""
    request = automated_iaq(BURGLARY, status=common.IMMIGRATION_STATUS_UNSPECIFIED, score=0.3)
    await probe.deliver("SubmitIaq", request)
    await probe.expect(
        CJIS, "AcknowledgeIaq", for_booking(request.envelope.tcr), what="IAQ acknowledgement"
    )


@case(LESC, "A homicide charge (NCIC 0901) makes the IAR's current charge level 1")
async def level_1(probe: Probe) -> None:
    """Homicide (Level 1), burglary (Level 2) and gambling (Level 3): each charge at its level,
    the IAR's current charge level the most serious, 1; removable, so priority 1."""
    iar = await _iar_for(probe, automated_iaq(HOMICIDE, BURGLARY, GAMBLING))
    _check_levels(iar, {HOMICIDE: 1, BURGLARY: 2, GAMBLING: 3}, current=1)
    if not iar.removable or iar.priority != 1:
        raise CaseFailed(
            f"entry without inspection charged at Level 1: expected removable, priority 1, got "
            f"removable={iar.removable} priority={iar.priority}"
        )


@case(LESC, "Burglary (NCIC 2201) is Level 2, gambling (NCIC 3901) Level 3")
async def levels_2_and_3(probe: Probe) -> None:
    """Burglary with gambling: current charge level 2; gambling alone: level 3."""
    both = await _iar_for(probe, automated_iaq(BURGLARY, GAMBLING))
    _check_levels(both, {BURGLARY: 2, GAMBLING: 3}, current=2)
    alone = await _iar_for(probe, automated_iaq(GAMBLING))
    _check_levels(alone, {GAMBLING: 3}, current=3)


@case(LESC, "A prior robbery conviction (NCIC 1201) makes the prior conviction level 1")
async def prior_level_1(probe: Probe) -> None:
    """The criminal history's convicted robbery is a prior Level 1 conviction, while the current
    gambling charge stays Level 3; removable, so priority 1."""
    iar = await _iar_for(probe, automated_iaq(GAMBLING, prior=(ROBBERY,)))
    levels = [c.level for c in iar.prior_convictions if c.charge.ncic_code == ROBBERY]
    if iar.prior_conviction_level != common.OFFENSE_LEVEL_1 or levels != [LEVEL[1]]:
        raise CaseFailed(
            f"expected the prior robbery at Level 1, got prior_conviction_level "
            f"{_level_name(iar.prior_conviction_level)} and convictions {iar.prior_convictions}"
        )
    _check_levels(iar, {GAMBLING: 3}, current=3)
    if not iar.removable or iar.priority != 1:
        raise CaseFailed(f"expected removable, priority 1, got {iar.removable} {iar.priority}")


@case(LESC, "A naturalized citizen's IAR says not removable, priority 0")
async def citizen(probe: Probe) -> None:
    """Charged with homicide, but IDENT holds the person as a naturalized citizen: the IAR says
    so, not removable, with no removal ground and priority 0; the field office still gets it."""
    request = automated_iaq(HOMICIDE, status=CITIZEN)
    iar = await _iar_for(probe, request)
    if iar.status != CITIZEN or iar.removable or iar.removal_ground or iar.priority != 0:
        raise CaseFailed(
            "expected NATURALIZED_CITIZEN, not removable, no ground, priority 0, got "
            f"{common.ImmigrationStatus.Name(iar.status)} removable={iar.removable} "
            f"ground={iar.removal_ground!r} priority={iar.priority}"
        )
    await probe.expect(ICE, "DeliverIar", for_booking(request.envelope.tcr), what="IAR copy")


@case(LESC, "The IAR carries no race or ethnicity, nor any field outside the contract")
async def no_profiling(probe: Probe) -> None:
    """The IAR to CJIS and its copy to the field office hold only fields of the contract (none
    of which names race or ethnicity): nothing a profiling decision could read."""
    request = automated_iaq(HOMICIDE)
    await _iar_for(probe, request)
    for peer in (CJIS, ICE):
        received = await probe.expect(peer, "DeliverIar", for_booking(request.envelope.tcr))
        unknown = _unknown_fields(received.message)
        if unknown:
            raise CaseFailed(f"the IAR to {peer} carries fields outside the contract: {unknown}")
        named = _fields_naming(received.message, ("race", "ethnic"))
        if named:
            raise CaseFailed(f"the IAR to {peer} has fields naming race or ethnicity: {named}")


@case(LESC, "A repeated IAQ message id is acknowledged as a duplicate and answered once")
async def iaq_twice(probe: Probe) -> None:
    """The same IAQ delivered twice (a retry after a lost Ack) gets `duplicate` the second time;
    CJIS gets one acknowledgement and one IAR, the field office one copy."""
    request = automated_iaq(HOMICIDE)
    await probe.deliver_twice("SubmitIaq", request)
    booking = for_booking(request.envelope.tcr)
    await probe.expect(ICE, "DeliverIar", booking, what="IAR copy")
    for peer, method in ((CJIS, "AcknowledgeIaq"), (CJIS, "DeliverIar"), (ICE, "DeliverIar")):
        sent = await probe.count(peer, method, booking)
        if len(sent) != 1:
            raise CaseFailed(f"one IAQ, {len(sent)} messages to {peer}.{method}")


@case(LESC, "A second IAQ of the same booking under another message id is ALREADY_EXISTS")
async def second_iaq(probe: Probe) -> None:
    """The booking already has a LESC case: the second IAQ is refused and nothing more is
    sent about the booking."""
    request = automated_iaq(HOMICIDE)
    await _iar_for(probe, request)
    another = copy.deepcopy(request)
    another.envelope.message_id = str(uuid.uuid4())
    another.envelope.tcn = new_tcn("IAQ")
    await probe.refused_with("SubmitIaq", another, EXISTS)
    booking = for_booking(request.envelope.tcr)
    for peer, method in ((CJIS, "AcknowledgeIaq"), (CJIS, "DeliverIar"), (ICE, "DeliverIar")):
        sent = await probe.count(peer, method, booking)
        if len(sent) != 1:
            raise CaseFailed(f"one case, {len(sent)} messages to {peer}.{method}")


@case(LESC, "A refused IAQ sends nothing")
async def refused_iaq(probe: Probe) -> None:
    """An IAQ with a bad NCIC code is refused with INVALID_ARGUMENT; CJIS gets no
    acknowledgement and no IAR, the field office no copy."""
    request = automated_iaq(HOMICIDE)
    request.off.add(ncic_code="9X01", disposition=common.DISPOSITION_CHARGED)
    await probe.refused_with("SubmitIaq", request, INVALID)
    booking = for_booking(request.envelope.tcr)
    await probe.expect_none(CJIS, "AcknowledgeIaq", booking, what="an IAQ acknowledgement")
    for peer in (CJIS, ICE):
        if probe.peers.matching(peer, "DeliverIar", booking):
            raise CaseFailed(f"a refused IAQ was answered with an IAR to {peer}")


def _unknown_fields(message: Message, path: str = "") -> list[str]:
    """Where a message (or any message inside it) holds fields its descriptor does not know."""
    unknown = UnknownFieldSet(message)
    found = [
        f"{path or message.DESCRIPTOR.name} field {unknown[i].field_number}"
        for i in range(len(unknown))
    ]
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        items: list[Any] = list(value) if descriptor.is_repeated else [value]
        for i, item in enumerate(items):
            if isinstance(item, Message):
                found += _unknown_fields(item, f"{path}{descriptor.name}[{i}].")
    return found


def _fields_naming(message: Message, words: tuple[str, ...]) -> list[str]:
    """Field names of the message's type (and the types inside it) containing any word."""
    seen: set[str] = set()
    named: list[str] = []

    def walk(descriptor: Any) -> None:
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if any(word in field.name.lower() for word in words):
                named.append(f"{descriptor.full_name}.{field.name}")
            if field.message_type is not None:
                walk(field.message_type)

    walk(message.DESCRIPTOR)
    return named


refusal_cases(LESC, envelope_refusals() + content_refusals())
