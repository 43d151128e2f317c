"""The CJIS/IAFIS suite: the criminal master file and the interoperability hub.

CJIS answers every CAR with an SRE to the SIB (MOA IV.A, steps 1 and 2) and, when the SIB
attests an active MOA and an activated jurisdiction, searches IDENT with the prints (step 3).
IDENT's IDR comes back to CJIS: no match goes to the SIB as a no-match IDR; a match becomes an
IAQ to LESC, whose IAR CJIS joins to the IDR for the SIB (steps 4 to 6). An NFF state's CPI
names an FBI number instead of sending prints; CJIS searches IDENT with the prints on file.
The cases play the SIB, IDENT and LESC against the target and watch what it sends them.
"""

from __future__ import annotations

import secrets
import string

import numpy as np

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.ident.v1 import ident_pb2 as ident
from scfed.lesc.v1 import lesc_pb2 as lesc
from scfed.sib.v1 import sib_pb2 as sib

from ...federation import Agency
from ..kit import CaseFailed, Probe, case, check_follow_on, for_booking, refusal_cases
from ..messages import CA, Person, car, charge, cpi, envelope, iar, new_tcn
from ..refusals import EXISTS, INVALID, NOT_FOUND, content_refusals, envelope_refusals

CJIS = Agency.CJIS_IAFIS
SIB = Agency.SIB
IDENT = Agency.IDENT
LESC = Agency.LESC

ATTESTED = cjis.Interoperability(moa_active=True, jurisdiction_activated=True)
# Charges a booking is held on: a case checks the IAQ carries these and no others.
CHARGES = (charge("1201"), charge("2399"))


def _fbi_number() -> str:
    """An FBI number nobody has: seven digits and two letters."""
    digits = "".join(secrets.choice(string.digits) for _ in range(7))
    return digits + "".join(secrets.choice(string.ascii_uppercase) for _ in range(2))


def _car_of(person: Person, interoperability: cjis.Interoperability = ATTESTED) -> cjis.Car:
    """A CAR booking `person` on CHARGES under a fresh TCN and booking number."""
    return car(
        descriptors=person.descriptors(),
        tenprint=person.capture(),
        charges=list(CHARGES),
        booking_number=new_tcn("BK"),
        interoperability=interoperability,
    )


def _cpi_of(fbi_number: str) -> cjis.Cpi:
    """A CPI (MOA attested) for a subsequent arrest of `fbi_number`, fresh TCN and booking."""
    return cpi(
        fbi_number=fbi_number,
        charges=list(CHARGES),
        booking_number=new_tcn("BK"),
        interoperability=ATTESTED,
    )


async def _sre(probe: Probe, opening: cjis.Car | cjis.Cpi) -> sib.SreMessage:
    """The SRE the SIB gets for the CAR or CPI, its envelope checked."""
    received = await probe.expect(SIB, "DeliverSre", for_booking(opening.envelope.tcn), what="SRE")
    sre: sib.SreMessage = received.message
    check_follow_on(sre.envelope, opening.envelope, what="SRE")
    return sre


async def _ident_search(probe: Probe, opening: cjis.Car | cjis.Cpi) -> ident.IdentSearch:
    """The interoperability search IDENT gets for the CAR or CPI, its envelope checked."""
    received = await probe.expect(
        IDENT, "Search", for_booking(opening.envelope.tcn), what="IDENT search"
    )
    search: ident.IdentSearch = received.message
    check_follow_on(search.envelope, opening.envelope, what="IDENT search")
    return search


async def _booked(probe: Probe, person: Person) -> tuple[cjis.Car, sib.SreMessage]:
    """A CAR with the MOA attested, its SRE, and IDENT's search seen: the target now waits for
    an IDR about the booking."""
    request = _car_of(person)
    await probe.deliver("SubmitCar", request)
    sre = await _sre(probe, request)
    await _ident_search(probe, request)
    return request, sre


def _idr(booking: str, idr: common.Idr) -> cjis.IdrMessage:
    """IDENT's IDR about `booking`, as IDENT sends it."""
    return cjis.IdrMessage(envelope=envelope("IDR", tcr=booking, sender="ident"), idr=idr)


def _match(person: Person) -> common.Idr:
    """A matching IDR for `person` with a FIN and an A-number of its own."""
    return common.Idr(
        match=True,
        fin="FIN" + new_tcn("")[:12],
        a_number="A0" + "".join(secrets.choice(string.digits) for _ in range(8)),
        descriptors=person.descriptors(),
        score=0.97,
    )


async def _iaq(probe: Probe, booking: cjis.Car, idr: cjis.IdrMessage) -> lesc.Iaq:
    """The IAQ LESC gets after the matching `idr`, its envelope checked."""
    received = await probe.expect(
        LESC, "SubmitIaq", for_booking(booking.envelope.tcn), what="IAQ after the match"
    )
    iaq: lesc.Iaq = received.message
    check_follow_on(iaq.envelope, idr.envelope, what="IAQ")
    return iaq


async def _enrolled(probe: Probe, *records: cjis.CriminalRecord) -> list[str]:
    """Places the records in the master file; returns their FBI numbers."""
    reply = await probe.call(
        "EnrollCriminalRecords", cjis.EnrollCriminalRecordsRequest(records=records)
    )
    numbers = [str(n) for n in reply.fbi_numbers]
    if len(numbers) != len(records) or not all(numbers):
        raise CaseFailed(f"{len(records)} records enrolled, FBI numbers {numbers}")
    return numbers


def _record(
    person: Person, *cycles: common.ArrestCycle, fbi_number: str = ""
) -> cjis.CriminalRecord:
    """`person`'s criminal record with prints of their own and these arrest cycles."""
    return cjis.CriminalRecord(
        descriptors=person.descriptors(),
        tenprint=person.capture(),
        cycles=cycles,
        fbi_number=fbi_number,
    )


def _cycle(doa: str = "20050101", code: str = "1201") -> common.ArrestCycle:
    """An earlier arrest in California on one charge."""
    return common.ArrestCycle(ori=CA, doa=doa, charges=[charge(code)])


def _codes(history: common.CriminalHistory) -> list[tuple[str, list[str]]]:
    """Each cycle's date of arrest and NCIC codes, oldest first."""
    return [(c.doa, [ch.ncic_code for ch in c.charges]) for c in history.cycles]


async def _history(probe: Probe, fbi_number: str) -> common.CriminalHistory:
    """The rap sheet of `fbi_number`."""
    history: common.CriminalHistory = await probe.call(
        "GetCriminalHistory", cjis.GetCriminalHistoryRequest(fbi_number=fbi_number)
    )
    return history


def _same_prints(sent: common.Tenprint, enrolled: common.Tenprint) -> str:
    """Why `sent` is not the tenprint `enrolled` (per-finger cosine), or "" when it is."""
    on_file = {f.position: np.asarray(f.template) for f in enrolled.fingers if f.template}
    got = {f.position: np.asarray(f.template) for f in sent.fingers if f.template}
    if set(got) != set(on_file):
        return f"finger positions {sorted(got)}, on file {sorted(on_file)}"
    for position, vector in got.items():
        mate = on_file[position]
        cosine = float(vector @ mate / (np.linalg.norm(vector) * np.linalg.norm(mate)))
        if cosine < 0.999:
            return f"finger {position} differs from the one on file (cosine {cosine:.3f})"
    return ""


# --- CAR -------------------------------------------------------------------------------------


@case(CJIS, "CAR of someone new is answered with an SRE 'N' assigning an FBI number")
async def car_new_subject(probe: Probe) -> None:
    """A CAR is acknowledged at once; the SIB gets an SRE naming the CAR's TCN as TCR, with
    identification "N" and the FBI number assigned, whose history holds this arrest."""
    request = _car_of(Person())
    await probe.deliver("SubmitCar", request)
    sre = await _sre(probe, request)
    if sre.identification != "N" or not sre.fbi_number:
        raise CaseFailed(f"expected identification 'N' with an FBI number, got {_brief(sre)}")
    if sre.sid != request.sid:
        raise CaseFailed(f"the SRE names SID {sre.sid!r}, the CAR {request.sid!r}")
    history = await _history(probe, sre.fbi_number)
    if [c.tcn for c in history.cycles] != [request.envelope.tcn]:
        raise CaseFailed(f"the new FBI number's history is not this arrest: {_codes(history)}")


@case(CJIS, "CAR of someone on file is answered with an SRE 'I' and the arrest is appended")
async def car_known_subject(probe: Probe) -> None:
    """Enrolled first with EnrollCriminalRecords, the person's CAR (another impression) is
    identified: SRE "I" with the enrolled FBI number, and the history gains this arrest after
    the one on file."""
    person = Person()
    (fbi_number,) = await _enrolled(probe, _record(person, _cycle()))
    request = _car_of(person)
    await probe.deliver("SubmitCar", request)
    sre = await _sre(probe, request)
    if sre.identification != "I" or sre.fbi_number != fbi_number:
        raise CaseFailed(f"expected identification 'I' with {fbi_number}, got {_brief(sre)}")
    history = await _history(probe, fbi_number)
    expected = [("20050101", ["1201"]), (request.doa, [c.ncic_code for c in CHARGES])]
    if _codes(history) != expected:
        raise CaseFailed(f"expected the history {expected}, got {_codes(history)}")
    if history.cycles[-1].tcn != request.envelope.tcn:
        raise CaseFailed(f"the new cycle names TCN {history.cycles[-1].tcn!r}, not the CAR's")


@case(CJIS, "CAR with the MOA attested is searched in IDENT with its prints")
async def car_searches_ident(probe: Probe) -> None:
    """With an active MOA and an activated jurisdiction attested, IDENT gets a search for the
    booking carrying the CAR's prints (every finger the CAR had)."""
    person = Person()
    request = _car_of(person)
    await probe.deliver("SubmitCar", request)
    await _sre(probe, request)
    search = await _ident_search(probe, request)
    why = _same_prints(search.tenprint, request.tenprint)
    if why:
        raise CaseFailed(f"the IDENT search does not carry the CAR's prints: {why}")


async def _criminal_history_only(probe: Probe, interop: cjis.Interoperability) -> None:
    """A CAR attesting `interop` (a gate closed) gets its SRE and no IDENT search."""
    request = _car_of(Person(), interop)
    await probe.deliver("SubmitCar", request)
    await _sre(probe, request)
    await probe.expect_none(
        IDENT, "Search", for_booking(request.envelope.tcn), what="an IDENT search"
    )


@case(CJIS, "CAR without an active MOA gets an SRE and no IDENT search")
async def car_moa_inactive(probe: Probe) -> None:
    """moa_active false (jurisdiction activated): criminal-history processing only."""
    await _criminal_history_only(probe, cjis.Interoperability(jurisdiction_activated=True))


@case(CJIS, "CAR from a jurisdiction not activated gets an SRE and no IDENT search")
async def car_jurisdiction_inactive(probe: Probe) -> None:
    """jurisdiction_activated false (MOA active): criminal-history processing only."""
    await _criminal_history_only(probe, cjis.Interoperability(moa_active=True))


@case(CJIS, "CAR from a jurisdiction its rollout phase activates later gets no IDENT search")
async def car_jurisdiction_not_yet_activated(probe: Probe) -> None:
    """jurisdiction_activated false with an activation day after the DOA (MOA active): the
    jurisdiction's rollout phase has not reached it, so criminal-history processing only."""
    interop = cjis.Interoperability(
        moa_active=True, jurisdiction_activated=False, jurisdiction_activated_on="20100301"
    )
    await _criminal_history_only(probe, interop)


@case(CJIS, "CAR from a jurisdiction activated on a day already passed is searched in IDENT")
async def car_jurisdiction_activated_on_a_day(probe: Probe) -> None:
    """Both gates open, the activation day before the DOA: the IDENT search goes out as for
    any activated jurisdiction (the day explains a closed gate, it does not close one)."""
    interop = cjis.Interoperability(
        moa_active=True, jurisdiction_activated=True, jurisdiction_activated_on="20090101"
    )
    request = _car_of(Person(), interop)
    await probe.deliver("SubmitCar", request)
    await _sre(probe, request)
    await _ident_search(probe, request)


@case(CJIS, "A repeated CAR message id is acknowledged as a duplicate and answered once")
async def car_twice(probe: Probe) -> None:
    """The same CAR delivered twice (a retry after a lost Ack) gets `duplicate` the second
    time; the SIB gets one SRE and IDENT one search."""
    request = _car_of(Person())
    await probe.deliver_twice("SubmitCar", request)
    booking = for_booking(request.envelope.tcn)
    await probe.expect(SIB, "DeliverSre", booking, what="SRE")
    await probe.expect(IDENT, "Search", booking, what="IDENT search")
    sres = await probe.count(SIB, "DeliverSre", booking)
    searches = probe.peers.matching(IDENT, "Search", booking)
    if (len(sres), len(searches)) != (1, 1):
        raise CaseFailed(f"one CAR, {len(sres)} SREs and {len(searches)} IDENT searches")


@case(CJIS, "A CAR reusing a TCN under another message id is ALREADY_EXISTS, answered once")
async def car_tcn_reused(probe: Probe) -> None:
    """Another message naming a transaction CJIS already has is not a retry: ALREADY_EXISTS,
    and the SIB gets the first CAR's SRE only."""
    first = _car_of(Person())
    await probe.deliver("SubmitCar", first)
    other = _car_of(Person())
    other.envelope.tcn = first.envelope.tcn
    await probe.refused_with("SubmitCar", other, EXISTS)
    booking = for_booking(first.envelope.tcn)
    await probe.expect(SIB, "DeliverSre", booking, what="SRE")
    sres = await probe.count(SIB, "DeliverSre", booking)
    if len(sres) != 1:
        raise CaseFailed(f"one CAR taken, {len(sres)} SREs: the refused one was processed too")


@case(CJIS, "A refused CAR sends nothing")
async def car_refused(probe: Probe) -> None:
    """A CAR without charges is refused with INVALID_ARGUMENT; no SRE, no IDENT search."""
    request = _car_of(Person())
    del request.charges[:]
    await probe.refused_with("SubmitCar", request, INVALID)
    booking = for_booking(request.envelope.tcn)
    await probe.expect_none(SIB, "DeliverSre", booking, what="an SRE")
    await probe.expect_none(IDENT, "Search", booking, what="an IDENT search")


# --- IDR, IAQ, IAR ---------------------------------------------------------------------------


@case(CJIS, "A no-match IDR is sent on to the SIB as the no-match IDR")
async def idr_no_match(probe: Probe) -> None:
    """IDENT's no-match IDR for a booking reaches the SIB's DeliverInteroperabilityResponse as
    `no_match`, in a new message naming the booking; LESC gets no IAQ."""
    request, _ = await _booked(probe, Person())
    idr = _idr(request.envelope.tcn, common.Idr(match=False))
    await probe.deliver("DeliverIdr", idr)
    booking = for_booking(request.envelope.tcn)
    received = await probe.expect(
        SIB, "DeliverInteroperabilityResponse", booking, what="no-match IDR"
    )
    response: sib.InteroperabilityResponse = received.message
    if response.WhichOneof("response") != "no_match" or response.no_match.idr.match:
        raise CaseFailed(f"expected a no-match IDR, got {response.WhichOneof('response')}")
    check_follow_on(response.envelope, idr.envelope, what="no-match IDR")
    await probe.expect_none(LESC, "SubmitIaq", booking, what="an IAQ after no match")


@case(CJIS, "A match IDR becomes an IAQ to LESC with the FIN and the booking's charges")
async def idr_match(probe: Probe) -> None:
    """IDENT's match for a booking: LESC gets an IAQ (purpose C, in custody) carrying the IDR
    with its FIN, the A-number, the FBI number from the SRE and the booking's charges; the SIB
    gets nothing yet."""
    person = Person()
    request, sre = await _booked(probe, person)
    match = _match(person)
    idr = _idr(request.envelope.tcn, match)
    await probe.call("DeliverIdr", idr)
    iaq = await _iaq(probe, request, idr)
    problems = []
    if not iaq.HasField("idr") or not iaq.idr.match or iaq.idr.fin != match.fin:
        problems.append(f"idr {iaq.idr.fin!r} must be the match with FIN {match.fin}")
    if [c.ncic_code for c in iaq.off] != [c.ncic_code for c in CHARGES]:
        problems.append(f"off {[c.ncic_code for c in iaq.off]} must be the booking's charges")
    if iaq.fbi != sre.fbi_number:
        problems.append(f"fbi {iaq.fbi!r} must be the SRE's {sre.fbi_number!r}")
    if iaq.arn != match.a_number:
        problems.append(f"arn {iaq.arn!r} must be the IDR's A-number {match.a_number!r}")
    if (iaq.pur, iaq.cus) != ("C", "Y"):
        problems.append(f"pur {iaq.pur!r} and cus {iaq.cus!r} must be 'C' and 'Y'")
    if iaq.booking_number != request.booking_number:
        problems.append(f"booking_number {iaq.booking_number!r} must be the CAR's")
    if problems:
        raise CaseFailed("the IAQ: " + "; ".join(problems))
    await probe.expect_none(
        SIB,
        "DeliverInteroperabilityResponse",
        for_booking(request.envelope.tcn),
        what="a response to the SIB before the IAR",
    )


@case(CJIS, "LESC's IAR is sent to the SIB joined to the IDR")
async def iar_joint(probe: Probe) -> None:
    """After the IAQ, LESC acknowledges it and answers with an IAR: the SIB gets the joint
    IDR/IAR (the IDENT match and LESC's determination) in a new message naming the booking."""
    person = Person()
    request, _ = await _booked(probe, person)
    match = _match(person)
    idr = _idr(request.envelope.tcn, match)
    await probe.call("DeliverIdr", idr)
    await _iaq(probe, request, idr)
    tcr = request.envelope.tcn
    case_id = new_tcn("LESC")
    acknowledgement = cjis.IaqAcknowledgement(
        envelope=envelope("IAQ-ACK", tcr=tcr, sender="lesc"), case_id=case_id
    )
    await probe.call("AcknowledgeIaq", acknowledgement)
    answer = cjis.IarMessage(
        envelope=envelope("IAR", tcr=tcr, sender="lesc"), iar=iar(case_id=case_id, fin=match.fin)
    )
    await probe.deliver("DeliverIar", answer)
    received = await probe.expect(
        SIB, "DeliverInteroperabilityResponse", for_booking(tcr), what="joint IDR/IAR"
    )
    response: sib.InteroperabilityResponse = received.message
    if response.WhichOneof("response") != "joint":
        raise CaseFailed(f"expected the joint IDR/IAR, got {response.WhichOneof('response')}")
    joint = response.joint
    if joint.idr.fin != match.fin or not joint.idr.match:
        raise CaseFailed(f"the joint response's IDR is not the match {match.fin}: {joint.idr}")
    if joint.iar.case_id != case_id or not joint.iar.removable:
        raise CaseFailed(f"the joint response's IAR is not LESC's {case_id}: {joint.iar}")
    check_follow_on(response.envelope, answer.envelope, what="joint IDR/IAR")


@case(CJIS, "A repeated IDR message id is acknowledged as a duplicate and makes one IAQ")
async def idr_twice(probe: Probe) -> None:
    """The same matching IDR delivered twice gets `duplicate` the second time; LESC gets one
    IAQ."""
    person = Person()
    request, _ = await _booked(probe, person)
    idr = _idr(request.envelope.tcn, _match(person))
    await probe.deliver_twice("DeliverIdr", idr)
    await _iaq(probe, request, idr)
    iaqs = await probe.count(LESC, "SubmitIaq", for_booking(request.envelope.tcn))
    if len(iaqs) != 1:
        raise CaseFailed(f"one IDR, {len(iaqs)} IAQs: it was processed twice")


@case(CJIS, "An IDR for a booking CJIS did not search in IDENT is refused NOT_FOUND")
async def idr_without_search(probe: Probe) -> None:
    """A CAR without the MOA attested is never searched in IDENT, so an IDR naming it has no
    interoperability search to answer: NOT_FOUND, and nothing goes to the SIB or LESC."""
    request = _car_of(Person(), cjis.Interoperability(jurisdiction_activated=True))
    await probe.deliver("SubmitCar", request)
    await _sre(probe, request)
    tcr = request.envelope.tcn
    await probe.refused_with("DeliverIdr", _idr(tcr, common.Idr(match=False)), NOT_FOUND)
    await probe.expect_none(
        SIB, "DeliverInteroperabilityResponse", for_booking(tcr), what="a no-match IDR"
    )


@case(CJIS, "An IAQ acknowledgement or IAR for a booking with no IAQ is refused NOT_FOUND")
async def iar_without_iaq(probe: Probe) -> None:
    """While IDENT has not answered, and after a no-match IDR, the booking has no IAQ: LESC's
    acknowledgement and IAR naming it are NOT_FOUND, and the SIB gets no joint IDR/IAR."""
    person = Person()
    request, _ = await _booked(probe, person)
    tcr = request.envelope.tcn

    async def refused(when: str) -> None:
        for method, message in (
            (
                "AcknowledgeIaq",
                cjis.IaqAcknowledgement(
                    envelope=envelope("IAQ-ACK", tcr=tcr, sender="lesc"), case_id=new_tcn("LESC")
                ),
            ),
            ("DeliverIar", cjis.IarMessage(envelope=envelope("IAR", tcr=tcr), iar=iar())),
        ):
            try:
                await probe.refused_with(method, message, NOT_FOUND)
            except CaseFailed as failure:
                raise CaseFailed(f"{when}: {failure}") from None

    await refused("before IDENT's IDR")
    await probe.call("DeliverIdr", _idr(tcr, common.Idr(match=False)))
    await probe.expect(SIB, "DeliverInteroperabilityResponse", for_booking(tcr))
    await refused("after a no-match IDR")
    await probe.expect_none(
        SIB,
        "DeliverInteroperabilityResponse",
        lambda r: r.envelope is not None and r.envelope.tcr == tcr and r.message.HasField("joint"),
        what="a joint IDR/IAR without an IAQ",
    )


# --- CPI -------------------------------------------------------------------------------------


@case(CJIS, "CPI for an FBI number on file gets an SRE and an IDENT search with its prints")
async def cpi_on_file(probe: Probe) -> None:
    """An NFF state's CPI names an enrolled FBI number: SRE "I" with that number, the arrest on
    its history, and IDENT searched with the prints on file (the CPI has none)."""
    person = Person()
    record = _record(person, _cycle())
    (fbi_number,) = await _enrolled(probe, record)
    request = _cpi_of(fbi_number)
    await probe.deliver("SubmitCpi", request)
    sre = await _sre(probe, request)
    if sre.identification != "I" or sre.fbi_number != fbi_number:
        raise CaseFailed(f"expected identification 'I' with {fbi_number}, got {_brief(sre)}")
    search = await _ident_search(probe, request)
    why = _same_prints(search.tenprint, record.tenprint)
    if why:
        raise CaseFailed(f"the IDENT search does not carry the prints on file: {why}")
    history = await _history(probe, fbi_number)
    if [c.tcn for c in history.cycles][-1:] != [request.envelope.tcn]:
        raise CaseFailed(f"the CPI's arrest is not on the history: {_codes(history)}")


@case(CJIS, "CPI for an unknown FBI number is answered with an ERRT UNKNOWN_FBI_NUMBER")
async def cpi_unknown(probe: Probe) -> None:
    """The CPI is acknowledged; the SIB gets an ERRT refusing its TCN with the code
    UNKNOWN_FBI_NUMBER, and neither an SRE nor an IDENT search follows."""
    request = _cpi_of(_fbi_number())
    await probe.deliver("SubmitCpi", request)
    booking = for_booking(request.envelope.tcn)
    received = await probe.expect(SIB, "DeliverErrt", booking, what="ERRT")
    errt: sib.ErrtMessage = received.message
    if errt.errt.code != "UNKNOWN_FBI_NUMBER" or errt.errt.refused_tcn != request.envelope.tcn:
        raise CaseFailed(
            f"expected UNKNOWN_FBI_NUMBER refusing {request.envelope.tcn}, got {errt.errt}"
        )
    check_follow_on(errt.envelope, request.envelope, what="ERRT")
    await probe.expect_none(SIB, "DeliverSre", booking, what="an SRE for an unknown FBI number")
    await probe.expect_none(IDENT, "Search", booking, what="an IDENT search without prints")


# --- the master file -------------------------------------------------------------------------


@case(CJIS, "EnrollCriminalRecords files each record and GetCriminalHistory returns it")
async def enroll_records(probe: Probe) -> None:
    """Two records, one with a given FBI number and one without: the numbers come back in
    request order (the given one kept, the other assigned) and each history is its cycles."""
    given = _fbi_number()
    first = _record(
        Person(), _cycle("20030304", "1201"), _cycle("20070809", "2399"), fbi_number=given
    )
    second = _record(Person(), _cycle("20010101", "3599"))
    numbers = await _enrolled(probe, first, second)
    if numbers[0] != given or numbers[1] in ("", given):
        raise CaseFailed(f"expected [{given}, an assigned number], got {numbers}")
    expected = {
        given: [("20030304", ["1201"]), ("20070809", ["2399"])],
        numbers[1]: [("20010101", ["3599"])],
    }
    for fbi_number, cycles in expected.items():
        history = await _history(probe, fbi_number)
        if history.fbi_number != fbi_number or _codes(history) != cycles:
            raise CaseFailed(f"{fbi_number}: expected {cycles}, got {_codes(history)}")


@case(CJIS, "EnrollCriminalRecords is all or nothing")
async def enroll_batch(probe: Probe) -> None:
    """A batch with one bad record (a bad NCIC code) is refused whole, and so is one repeating
    an FBI number on file: the good records of either batch are not kept."""
    good = _record(Person(), _cycle(), fbi_number=_fbi_number())
    bad = _record(Person(), _cycle(code="12A4"))
    await probe.refused_with(
        "EnrollCriminalRecords", cjis.EnrollCriminalRecordsRequest(records=[good, bad]), INVALID
    )
    await probe.refused_with(
        "GetCriminalHistory",
        cjis.GetCriminalHistoryRequest(fbi_number=good.fbi_number),
        NOT_FOUND,
    )
    on_file = _record(Person(), _cycle(), fbi_number=_fbi_number())
    await _enrolled(probe, on_file)
    other = _record(Person(), _cycle(), fbi_number=_fbi_number())
    repeat = _record(Person(), fbi_number=on_file.fbi_number)
    await probe.refused_with(
        "EnrollCriminalRecords",
        cjis.EnrollCriminalRecordsRequest(records=[other, repeat]),
        EXISTS,
    )
    await probe.refused_with(
        "GetCriminalHistory",
        cjis.GetCriminalHistoryRequest(fbi_number=other.fbi_number),
        NOT_FOUND,
    )
    history = await _history(probe, on_file.fbi_number)
    if _codes(history) != [("20050101", ["1201"])]:
        raise CaseFailed(f"the record on file changed: {_codes(history)}")


def _brief(sre: sib.SreMessage) -> str:
    return f"identification {sre.identification!r}, FBI number {sre.fbi_number!r}"


refusal_cases(CJIS, envelope_refusals() + content_refusals())
