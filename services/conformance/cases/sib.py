"""The SIB suite: the agency edge's bookings, the CAR or CPI they become, and the responses that
flow back to the LEAs (MOA IV and VIII), against a SIB that knows the LEA `CA`.

A booking made on the HTTP edge goes to CJIS as a CAR with its prints, or, for a subsequent
arrest in an NFF state, as a CPI naming the FBI number without prints; the CAR or CPI says
whether the state's MOA is in effect and the jurisdiction activated, as only then does CJIS
search IDENT. Responses from CJIS and ICE reach the LEA's inbox, except the IDR or IDR/IAR of a
state whose SIB cannot relay them; an I-247 detainer always does.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import grpc

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.sib.v1 import sib_pb2 as sib
from scfed.sib.v1 import sib_pb2_grpc

from ...federation import Agency
from ...sib.lea_client import issue_lea_keys
from ..kit import CaseFailed, Probe, case, method_path, refusal_cases, setup
from ..messages import CA, Person, envelope, new_tcn
from ..peers import Match, Received
from ..refusals import content_refusals, envelope_refusals

SIB = Agency.SIB
CJIS = Agency.CJIS_IAFIS

# States the cases register (create or replace) for themselves: none is used by another case.
NFF_STATE = "TX"
NO_RELAY_STATE = "OR"
SUSPENDED_STATE = "NV"
NOTICED_STATE = "AZ"
MOA_STATE = "NM"

_FINGER_STATUS = {
    common.FINGER_STATUS_PRESENT: "present",
    common.FINGER_STATUS_AMPUTATED: "amputated",
    common.FINGER_STATUS_UNPRINTABLE: "unprintable",
}


@setup(SIB)
async def register_california(probe: Probe) -> None:
    """California (MOA active, relay-capable, not NFF) and its activated LEA `CA`."""
    await probe.call(
        "RegisterState",
        sib.State(
            code=CA[:2],
            name="California",
            nff=False,
            relay_capable=True,
            moa_status=sib.MOA_STATUS_ACTIVE,
            sib_ori="CASIB0000",
        ),
    )
    await probe.call("RegisterAgency", sib.Agency(ori=CA, name="Sacramento", activated=True))
    await _lea_key(probe, CA)


# --- helpers ---------------------------------------------------------------------------------


async def _lea_key(probe: Probe, ori: str) -> None:
    """Issues the LEA's API key (as the operator) for the kit's HTTP client to send, so the
    cases pass against a SIB that requires one; a SIB that issues none (UNIMPLEMENTED) is
    called without."""
    operator = probe.dialer.for_method(method_path(SIB, "IssueLeaCredential"))
    try:
        keys = await issue_lea_keys(sib_pb2_grpc.StateIdentificationBureauStub(operator), [ori])
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNIMPLEMENTED:
            return
        raise CaseFailed(
            f"IssueLeaCredential for {ori}: {err.code().name} {err.details()!r}"
        ) from None
    probe.lea_keys.keys.update(keys)


def fresh_ori(state: str) -> str:
    """A nine-character ORI in `state` that no case used before."""
    return state + uuid.uuid4().hex[:7].upper()


async def _state(
    probe: Probe,
    code: str,
    *,
    nff: bool = False,
    relay_capable: bool = True,
    moa: int = sib.MOA_STATUS_ACTIVE,
) -> sib.State:
    """Registers (or replaces) the state `code`; returns what the SIB answered."""
    state = sib.State(
        code=code,
        name=f"Conformance {code}",
        nff=nff,
        relay_capable=relay_capable,
        moa_status=moa,  # type: ignore[arg-type]
        sib_ori=f"{code}SIB0000",
    )
    reply: sib.State = await probe.call("RegisterState", state)
    return reply


async def _agency(probe: Probe, state: str, *, activated: bool = True) -> str:
    """Registers a fresh LEA in `state` (already registered); returns its ORI."""
    ori = fresh_ori(state)
    await probe.call("RegisterAgency", sib.Agency(ori=ori, name="Conformance", activated=activated))
    await _lea_key(probe, ori)
    return ori


def booking_body(person: Person, ori: str, booking_number: str = "") -> dict[str, Any]:
    """The JSON an LEA posts to `POST /v1/bookings`: a fresh capture of the person's prints."""
    fingers: list[dict[str, Any]] = []
    for finger in person.capture().fingers:
        entry: dict[str, Any] = {
            "position": finger.position,
            "status": _FINGER_STATUS[finger.status],
            "quality": finger.quality,
        }
        if finger.status == common.FINGER_STATUS_PRESENT:
            entry["template"] = list(finger.template)
        fingers.append(entry)
    return {
        "ori": ori,
        "booking_number": booking_number or new_tcn("BK-"),
        "doa": "20091015",
        "descriptors": {"nam": person.name, "dob": "19800101", "sex": "M"},
        "fingers": fingers,
        "charges": [{"ncic_code": "2399", "literal": "THEFT", "disposition": "charged"}],
    }


@dataclass(frozen=True)
class Booked:
    """A booking the target accepted: what was posted and the receipt."""

    body: dict[str, Any]
    tcn: str
    sid: str
    transaction: str
    status: str


async def _book(probe: Probe, body: dict[str, Any]) -> Booked:
    """Posts the booking; fails the case unless it is accepted (202) with a TCN."""
    http = probe.http_edge()
    response = await http.post("/v1/bookings", json=body)
    if response.status_code != 202:
        raise CaseFailed(f"a good booking got {response.status_code}: {response.text[:300]}")
    receipt = response.json()
    if not receipt.get("tcn") or receipt.get("duplicate"):
        raise CaseFailed(f"the receipt must name a new TCN: {receipt}")
    return Booked(
        body,
        str(receipt["tcn"]),
        str(receipt.get("sid", "")),
        str(receipt.get("transaction")),
        str(receipt.get("status")),
    )


def by_tcn(tcn: str) -> Match:
    """Accepts a message whose envelope opens the transaction `tcn` (a CAR or CPI)."""
    return lambda r: r.envelope is not None and r.envelope.tcn == tcn


async def _car(probe: Probe, booked: Booked) -> cjis.Car:
    """The CAR the target sends CJIS for the booking, within the deadline."""
    received = await probe.expect(CJIS, "SubmitCar", by_tcn(booked.tcn), what="CAR")
    car: cjis.Car = received.message
    return car


async def _inbox(probe: Probe, ori: str) -> list[dict[str, Any]]:
    """Every message in the LEA's inbox, oldest first."""
    http = probe.http_edge()
    messages: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await http.get(
            f"/v1/agencies/{ori}/messages", params={"after": after, "limit": 1000}
        )
        if response.status_code != 200:
            raise CaseFailed(f"the inbox of {ori}: {response.status_code} {response.text[:300]}")
        page: list[dict[str, Any]] = response.json()
        if not page:
            return messages
        messages.extend(page)
        after = int(page[-1]["id"])


async def _in_inbox(probe: Probe, ori: str, tcn: str, kind: str) -> list[dict[str, Any]]:
    """The LEA's inbox messages of this kind about the booking `tcn`."""
    return [m for m in await _inbox(probe, ori) if m["tcn"] == tcn and m["kind"] == kind]


async def _booking(probe: Probe, tcn: str) -> dict[str, Any]:
    """The booking's status and responses, from `GET /v1/bookings/{tcn}`."""
    response = await probe.http_edge().get(f"/v1/bookings/{tcn}")
    if response.status_code != 200:
        raise CaseFailed(f"booking {tcn}: {response.status_code} {response.text[:300]}")
    view: dict[str, Any] = response.json()
    return view


async def _status(probe: Probe, tcn: str) -> str:
    """The booking's status as `GET /v1/bookings/{tcn}` reports it."""
    return str((await _booking(probe, tcn)).get("status"))


def sre(booked: Booked, ori: str, fbi_number: str = "") -> sib.SreMessage:
    """CJIS's SRE for the booking: a new record with this FBI number (a fresh one if none)."""
    fbi_number = fbi_number or uuid.uuid4().hex[:9].upper()
    return sib.SreMessage(
        envelope=envelope("SRE", tcr=booked.tcn, ori=ori),
        identification="N",
        fbi_number=fbi_number,
        sid=booked.sid,
        history=common.CriminalHistory(fbi_number=fbi_number),
    )


def no_match(booked: Booked, ori: str) -> sib.InteroperabilityResponse:
    """CJIS's no-match IDR for the booking."""
    return sib.InteroperabilityResponse(
        envelope=envelope("NO-MATCH-IDR", tcr=booked.tcn, ori=ori),
        no_match=sib.NoMatchIdr(idr=common.Idr(match=False)),
    )


def joint(booked: Booked, ori: str) -> sib.InteroperabilityResponse:
    """CJIS's joint IDR/IAR for the booking: a match, removable, Level 1."""
    return sib.InteroperabilityResponse(
        envelope=envelope("IDR/IAR", tcr=booked.tcn, ori=ori),
        joint=sib.JointIdrIar(
            idr=common.Idr(match=True, fin="FINCONF00001"),
            iar=common.Iar(
                case_id="LESCCONF0001",
                fin="FINCONF00001",
                status=common.IMMIGRATION_STATUS_ENTRY_WITHOUT_INSPECTION,
                removable=True,
                current_charge_level=common.OFFENSE_LEVEL_1,
                prior_conviction_level=common.OFFENSE_LEVEL_NONE,
            ),
        ),
    )


def detainer(booked: Booked, ori: str) -> sib.DetainerMessage:
    """An ICE field office's I-247 for the booking."""
    return sib.DetainerMessage(
        envelope=envelope("I-247", tcr=booked.tcn, ori=ori),
        detainer=common.I247Detainer(
            detainer_id=new_tcn("I247-"),
            field_office="CASFO0000",
            lea_ori=ori,
            booking_tcn=booked.tcn,
            booking_number=str(booked.body["booking_number"]),
            fin="FINCONF00001",
            nam=str(booked.body["descriptors"]["nam"]),
            level=common.OFFENSE_LEVEL_1,
            notify_before_release=True,
            max_hold_hours=48,
        ),
    )


def _interop(message: cjis.Car | cjis.Cpi) -> tuple[bool, bool]:
    flags = message.interoperability
    return flags.moa_active, flags.jurisdiction_activated


# --- configuration ---------------------------------------------------------------------------


@case(SIB, "RegisterState answers the state as registered")
async def register_state(probe: Probe) -> None:
    """RegisterState creates or replaces a state and answers it: code, NFF, relay, MOA status."""
    for nff, relay in ((True, False), (False, True)):
        reply = await _state(probe, MOA_STATE, nff=nff, relay_capable=relay)
        got = (reply.code, reply.nff, reply.relay_capable, reply.moa_status)
        if got != (MOA_STATE, nff, relay, sib.MOA_STATUS_ACTIVE):
            raise CaseFailed(f"registered {MOA_STATE} nff={nff} relay={relay}, got {reply}")


@case(SIB, "RegisterAgency answers the agency as registered")
async def register_agency(probe: Probe) -> None:
    """RegisterAgency creates or replaces an LEA of a registered state and answers it."""
    ori = fresh_ori(CA[:2])
    for activated in (False, True):
        agency = sib.Agency(ori=ori, name="Conformance", activated=activated)
        reply = await probe.call("RegisterAgency", agency)
        if (reply.ori, reply.activated) != (ori, activated):
            raise CaseFailed(f"registered {ori} activated={activated}, got {reply}")


@case(SIB, "IssueLeaCredential answers a fresh API key for the LEA at each call")
async def issue_lea_credential(probe: Probe) -> None:
    """IssueLeaCredential answers the LEA's ORI, a key and when it was issued; a second call
    answers another key (the first is revoked: rotation)."""
    ori = await _agency(probe, CA[:2])
    request = sib.IssueLeaCredentialRequest(ori=ori)
    first, second = [await probe.call("IssueLeaCredential", request) for _ in range(2)]
    for reply in (first, second):
        if reply.ori != ori or not reply.api_key or not reply.HasField("issued_at"):
            raise CaseFailed(f"asked for a credential for {ori}, got ori={reply.ori!r}")
    if first.api_key == second.api_key:
        raise CaseFailed("two calls answered the same key: each must issue a fresh one")


@case(SIB, "SetMoaStatus suspends at once, resumes, and gives 30 days' notice of termination")
async def set_moa_status(probe: Probe) -> None:
    """Each change is answered with the state in its new status (MOA VIII); a noticed
    termination names when it takes effect."""
    await _state(probe, MOA_STATE)
    for status in (sib.MOA_STATUS_SUSPENDED, sib.MOA_STATUS_ACTIVE):
        reply = await probe.call(
            "SetMoaStatus", sib.SetMoaStatusRequest(state=MOA_STATE, status=status)
        )
        if reply.code != MOA_STATE or reply.moa_status != status:
            raise CaseFailed(f"asked for {sib.MoaStatus.Name(status)}, got {reply}")
    noticed = await probe.call(
        "SetMoaStatus",
        sib.SetMoaStatusRequest(state=MOA_STATE, status=sib.MOA_STATUS_TERMINATION_NOTICED),
    )
    if noticed.moa_status != sib.MOA_STATUS_TERMINATION_NOTICED:
        raise CaseFailed(f"asked for TERMINATION_NOTICED, got {noticed}")
    if not noticed.HasField("termination_effective_at"):
        raise CaseFailed(f"a noticed termination must say when it takes effect: {noticed}")


# --- bookings and the CAR or CPI -------------------------------------------------------------


@case(SIB, "A booking is submitted to CJIS as a CAR with its prints")
async def booking_car(probe: Probe) -> None:
    """A booking of an activated LEA in a state whose MOA is active goes to CJIS's SubmitCar under
    the booking's TCN, with the prints, SID and booking number, attesting both flags."""
    booked = await _book(probe, booking_body(Person(), CA))
    if booked.transaction != "CAR":
        raise CaseFailed(f"a first arrest is a CAR, the receipt says {booked.transaction}")
    car = await _car(probe, booked)
    problems = []
    if car.envelope.tot != "CAR":
        problems.append(f"tot {car.envelope.tot!r}")
    if car.booking_number != booked.body["booking_number"]:
        problems.append(f"booking_number {car.booking_number!r}")
    if booked.sid and car.sid != booked.sid:
        problems.append(f"sid {car.sid!r}, the receipt said {booked.sid!r}")
    if not _same_prints(car.tenprint, booked.body["fingers"]):
        problems.append("the prints are not the booking's")
    if _interop(car) != (True, True):
        problems.append(f"interoperability {_interop(car)}, expected MOA and jurisdiction")
    if problems:
        raise CaseFailed("the CAR: " + "; ".join(problems))


def _same_prints(tenprint: common.Tenprint, fingers: list[dict[str, Any]]) -> bool:
    """True when the tenprint carries the posted fingers (templates to float32 precision)."""
    sent = {f["position"]: f.get("template", []) for f in fingers}
    got = {f.position: list(f.template) for f in tenprint.fingers if f.template}
    if sent.keys() != got.keys():
        return False
    return all(
        len(sent[p]) == len(got[p])
        and all(abs(a - b) < 1e-5 for a, b in zip(sent[p], got[p], strict=True))
        for p in sent
    )


@case(SIB, "A subsequent arrest in an NFF state is a CPI with the FBI number, not a CAR")
async def nff_cpi(probe: Probe) -> None:
    """In an NFF state the first arrest sends prints (a CAR); once its SRE gave the person an FBI
    number, the next arrest sends CJIS a CPI naming it, with the same SID, and no CAR."""
    await _state(probe, NFF_STATE, nff=True)
    ori = await _agency(probe, NFF_STATE)
    person = Person()
    first = await _book(probe, booking_body(person, ori))
    first_car = await _car(probe, first)
    fbi_number = uuid.uuid4().hex[:9].upper()
    await probe.deliver("DeliverSre", sre(first, ori, fbi_number))
    second = await _book(probe, booking_body(person, ori))
    received = await probe.expect(CJIS, "SubmitCpi", by_tcn(second.tcn), what="CPI")
    cpi: cjis.Cpi = received.message
    if cpi.fbi_number != fbi_number or cpi.sid != first_car.sid:
        raise CaseFailed(
            f"the CPI must name FBI number {fbi_number} and SID {first_car.sid}, "
            f"got {cpi.fbi_number!r} and {cpi.sid!r}"
        )
    if second.transaction != "CPI":
        raise CaseFailed(f"the receipt of the subsequent arrest says {second.transaction}")
    await probe.expect_none(CJIS, "SubmitCar", by_tcn(second.tcn), what="a CAR")


@case(SIB, "A subsequent NFF arrest before the first SRE waits for the FBI number")
async def nff_cpi_waits(probe: Probe) -> None:
    """When the second arrest comes before the first arrest's SRE, its CPI waits
    (`awaiting_fbi_number`) and goes out, naming the FBI number, once the SRE brings it."""
    await _state(probe, NFF_STATE, nff=True)
    ori = await _agency(probe, NFF_STATE)
    person = Person()
    first = await _book(probe, booking_body(person, ori))
    await _car(probe, first)
    second = await _book(probe, booking_body(person, ori))
    if (second.transaction, second.status) != ("CPI", "awaiting_fbi_number"):
        raise CaseFailed(
            f"expected a CPI awaiting_fbi_number, the receipt says {second.transaction} "
            f"{second.status}"
        )
    await probe.expect_none(CJIS, "SubmitCpi", by_tcn(second.tcn), what="a CPI without FBI number")
    fbi_number = uuid.uuid4().hex[:9].upper()
    await probe.deliver("DeliverSre", sre(first, ori, fbi_number))
    received = await probe.expect(CJIS, "SubmitCpi", by_tcn(second.tcn), what="the waiting CPI")
    if received.message.fbi_number != fbi_number:
        raise CaseFailed(f"the CPI must name {fbi_number}, got {received.message.fbi_number!r}")
    if (status := await _status(probe, second.tcn)) != "submitted":
        raise CaseFailed(f"the CPI went out, yet the booking is {status}")


@case(SIB, "A subsequent arrest outside NFF states is a CAR again")
async def not_nff_car(probe: Probe) -> None:
    """Outside NFF states every arrest sends prints: the second booking of the same person is
    a CAR (under its own TCN, the same SID), never a CPI."""
    person = Person()
    first = await _book(probe, booking_body(person, CA))
    first_car = await _car(probe, first)
    await probe.deliver("DeliverSre", sre(first, CA))
    second = await _book(probe, booking_body(person, CA))
    second_car = await _car(probe, second)
    if second_car.sid != first_car.sid:
        raise CaseFailed(f"the same person got SIDs {first_car.sid} and {second_car.sid}")
    await probe.expect_none(CJIS, "SubmitCpi", by_tcn(second.tcn), what="a CPI")


@case(SIB, "A booking in a state whose MOA is suspended tells CJIS the MOA is not in effect")
async def suspended_moa(probe: Probe) -> None:
    """After SetMoaStatus SUSPENDED (effective at once, MOA VIII) the booking still gets
    criminal-history processing (a CAR), but the CAR says the MOA is not in effect, so CJIS
    does no IDENT search, and the SRE alone answers the booking. The two gates are separate
    facts: the jurisdiction, activated, is still attested as activated."""
    await _state(probe, SUSPENDED_STATE)
    ori = await _agency(probe, SUSPENDED_STATE)
    await probe.call(
        "SetMoaStatus",
        sib.SetMoaStatusRequest(state=SUSPENDED_STATE, status=sib.MOA_STATUS_SUSPENDED),
    )
    booked = await _book(probe, booking_body(Person(), ori))
    car = await _car(probe, booked)
    if car.interoperability.moa_active:
        raise CaseFailed(f"the MOA is suspended, the CAR says {car.interoperability}")
    if not car.interoperability.jurisdiction_activated:
        raise CaseFailed(
            "the jurisdiction is activated, yet the CAR says it is not: the MOA and the "
            f"jurisdiction must be attested separately ({_interop(car)})"
        )
    await _answered_by_sre_alone(probe, booked, ori)


async def _answered_by_sre_alone(probe: Probe, booked: Booked, ori: str) -> None:
    """Without interoperability the SRE is the booking's final response: no IDR is awaited."""
    await probe.deliver("DeliverSre", sre(booked, ori))
    if (status := await _status(probe, booked.tcn)) != "answered":
        raise CaseFailed(f"no IDENT search applies, so the SRE answers the booking; it is {status}")


@case(SIB, "A booking of a jurisdiction not activated tells CJIS so")
async def not_activated(probe: Probe) -> None:
    """An LEA whose jurisdiction is not activated, in a state whose MOA is active: the CAR says
    the jurisdiction is not activated (and the MOA active: a separate fact), so CJIS does no
    IDENT search, and the SRE alone answers the booking."""
    ori = await _agency(probe, CA[:2], activated=False)
    booked = await _book(probe, booking_body(Person(), ori))
    car = await _car(probe, booked)
    if _interop(car) != (True, False):
        raise CaseFailed(
            f"MOA active, jurisdiction not activated; the CAR says {car.interoperability}"
        )
    await _answered_by_sre_alone(probe, booked, ori)


@case(SIB, "A jurisdiction its rollout phase activates on a day is activated from that DOA on")
async def activated_from_a_day(probe: Probe) -> None:
    """RegisterAgency with activated_on: a booking dated (DOA) before that day tells CJIS the
    jurisdiction is not activated, with the day, and the SRE alone answers it; a booking dated
    that day is submitted with both gates open."""
    ori = fresh_ori(CA[:2])
    await probe.call(
        "RegisterAgency",
        sib.Agency(
            ori=ori, name="Conformance", activated=True, activated_on="20100301", rollout_phase=2
        ),
    )
    await _lea_key(probe, ori)
    before = await _book(probe, dict(booking_body(Person(), ori), doa="20100228"))
    car = await _car(probe, before)
    flags = car.interoperability
    if _interop(car) != (True, False) or flags.jurisdiction_activated_on != "20100301":
        raise CaseFailed(f"booked before the activation day 20100301, the CAR says {flags}")
    await _answered_by_sre_alone(probe, before, ori)
    on_the_day = await _car(
        probe, await _book(probe, dict(booking_body(Person(), ori), doa="20100301"))
    )
    if _interop(on_the_day) != (True, True):
        raise CaseFailed(
            f"booked on the activation day, the CAR says {on_the_day.interoperability}"
        )


@case(SIB, "A suspended jurisdiction gets criminal-history processing only, until resumed")
async def suspended_jurisdiction(probe: Probe) -> None:
    """SuspendJurisdiction (MOA VIII: profiling) takes one jurisdiction out of interoperability
    at once, whatever its state's MOA: its CAR does not attest interoperability, and the SRE
    alone answers the booking. Only the suspending party lifts it; after that the next
    booking is submitted with interoperability again."""
    ori = await _agency(probe, CA[:2])
    suspended = await probe.call(
        "SuspendJurisdiction",
        sib.SuspendJurisdictionRequest(
            ori=ori, by=sib.SUSPENDING_PARTY_ICE, reason="racial profiling (MOA VIII)"
        ),
    )
    if not suspended.suspended or suspended.suspended_by != sib.SUSPENDING_PARTY_ICE:
        raise CaseFailed(f"asked ICE to suspend {ori}, got {suspended}")
    booked = await _book(probe, booking_body(Person(), ori))
    if _interop(await _car(probe, booked)) == (True, True):
        raise CaseFailed("the jurisdiction is suspended, yet its CAR attests interoperability")
    await _answered_by_sre_alone(probe, booked, ori)
    await probe.refused_with(
        "ResumeJurisdiction",
        sib.ResumeJurisdictionRequest(ori=ori, by=sib.SUSPENDING_PARTY_SIB),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    resumed = await probe.call(
        "ResumeJurisdiction", sib.ResumeJurisdictionRequest(ori=ori, by=sib.SUSPENDING_PARTY_ICE)
    )
    if resumed.suspended:
        raise CaseFailed(f"ICE lifted the suspension of {ori}, got {resumed}")
    car = await _car(probe, await _book(probe, booking_body(Person(), ori)))
    if _interop(car) != (True, True):
        raise CaseFailed(f"the suspension was lifted, the CAR says {_interop(car)}")


@case(SIB, "A noticed termination leaves the MOA in effect until it takes effect")
async def termination_noticed(probe: Probe) -> None:
    """Termination takes 30 days' notice (MOA VIII): a booking during the notice period is still
    submitted with the MOA in effect."""
    await _state(probe, NOTICED_STATE)
    ori = await _agency(probe, NOTICED_STATE)
    await probe.call(
        "SetMoaStatus",
        sib.SetMoaStatusRequest(state=NOTICED_STATE, status=sib.MOA_STATUS_TERMINATION_NOTICED),
    )
    car = await _car(probe, await _book(probe, booking_body(Person(), ori)))
    if _interop(car) != (True, True):
        raise CaseFailed(f"the MOA is in effect for 30 more days, the CAR says {_interop(car)}")


# --- responses to the LEA --------------------------------------------------------------------


@case(SIB, "DeliverSre is acknowledged and the SRE reaches the LEA's inbox")
async def deliver_sre(probe: Probe) -> None:
    """CJIS's SRE for a booking is acknowledged and put in the booking LEA's inbox."""
    ori = await _agency(probe, CA[:2])
    booked = await _book(probe, booking_body(Person(), ori))
    await probe.deliver("DeliverSre", sre(booked, ori))
    if len(await _in_inbox(probe, ori, booked.tcn, "SRE")) != 1:
        raise CaseFailed(f"the SRE is not in the inbox of {ori}: {await _inbox(probe, ori)}")


@case(SIB, "A booking is answered once its SRE and its IDR are in")
async def answered(probe: Probe) -> None:
    """Where interoperability applies, the SRE alone leaves the booking `submitted`; the
    no-match IDR then answers it, and the LEA's inbox has both."""
    ori = await _agency(probe, CA[:2])
    booked = await _book(probe, booking_body(Person(), ori))
    await probe.deliver("DeliverSre", sre(booked, ori))
    if (status := await _status(probe, booked.tcn)) != "submitted":
        raise CaseFailed(f"the IDR is still awaited, yet the booking is {status}")
    await probe.deliver("DeliverInteroperabilityResponse", no_match(booked, ori))
    if (status := await _status(probe, booked.tcn)) != "answered":
        raise CaseFailed(f"the SRE and the IDR are in, yet the booking is {status}")
    kinds = sorted(m["kind"] for m in await _inbox(probe, ori) if m["tcn"] == booked.tcn)
    if kinds != ["NO-MATCH-IDR", "SRE"]:
        raise CaseFailed(f"the inbox of {ori} has {kinds} for the booking")


@case(SIB, "DeliverErrt is acknowledged, refuses the booking and reaches the LEA's inbox")
async def deliver_errt(probe: Probe) -> None:
    """CJIS's ERRT marks the booking refused with the reason, and the LEA gets it."""
    ori = await _agency(probe, CA[:2])
    booked = await _book(probe, booking_body(Person(), ori))
    reason = "conformance: insufficient prints"
    errt = sib.ErrtMessage(
        envelope=envelope("ERRT", tcr=booked.tcn, ori=ori),
        errt=common.Errt(refused_tcn=booked.tcn, code="INSUFFICIENT_PRINTS", reason=reason),
    )
    await probe.deliver("DeliverErrt", errt)
    view = await _booking(probe, booked.tcn)
    if view.get("status") != "refused" or reason not in str(view.get("error", "")):
        raise CaseFailed(f"the booking must be refused with the reason: {view}")
    if len(await _in_inbox(probe, ori, booked.tcn, "ERRT")) != 1:
        raise CaseFailed(f"the ERRT is not in the inbox of {ori}")


@case(SIB, "An interoperability response is relayed to the LEA where the SIB can relay")
async def relayed(probe: Probe) -> None:
    """In a relay-capable state the no-match IDR and the joint IDR/IAR are acknowledged and
    reach the LEA's inbox."""
    ori = await _agency(probe, CA[:2])
    for kind, build in (("NO-MATCH-IDR", no_match), ("IDR/IAR", joint)):
        booked = await _book(probe, booking_body(Person(), ori))
        await probe.deliver("DeliverInteroperabilityResponse", build(booked, ori))
        if len(await _in_inbox(probe, ori, booked.tcn, kind)) != 1:
            raise CaseFailed(f"the {kind} is not in the inbox of {ori}")


@case(SIB, "An interoperability response is not relayed where the SIB lacks the capability")
async def not_relayed(probe: Probe) -> None:
    """MOA IV.B: in a state whose SIB cannot relay, the no-match IDR and the joint IDR/IAR are
    acknowledged and recorded on the booking as not relayed, and stay out of the LEA's inbox;
    an I-247 detainer for the same booking still reaches it."""
    await _state(probe, NO_RELAY_STATE, relay_capable=False)
    ori = await _agency(probe, NO_RELAY_STATE)
    for kind, build in (("NO-MATCH-IDR", no_match), ("IDR/IAR", joint)):
        booked = await _book(probe, booking_body(Person(), ori))
        await probe.deliver("DeliverInteroperabilityResponse", build(booked, ori))
        if await _in_inbox(probe, ori, booked.tcn, kind):
            raise CaseFailed(f"the {kind} reached the inbox of {ori}, whose SIB cannot relay")
        recorded = [
            r for r in (await _booking(probe, booked.tcn))["responses"] if r["kind"] == kind
        ]
        if len(recorded) != 1 or recorded[0]["relayed"]:
            raise CaseFailed(f"the {kind} must be recorded once as not relayed, got {recorded}")
    await probe.deliver("DeliverDetainer", detainer(booked, ori))
    if len(await _in_inbox(probe, ori, booked.tcn, "I-247")) != 1:
        raise CaseFailed(f"the I-247 must reach the inbox of {ori} whatever the relay capability")


@case(SIB, "DeliverDetainer is acknowledged and the I-247 reaches the LEA's inbox")
async def deliver_detainer(probe: Probe) -> None:
    """An ICE field office's I-247 for a booking is put in the LEA's inbox, naming the detainer."""
    ori = await _agency(probe, CA[:2])
    booked = await _book(probe, booking_body(Person(), ori))
    message = detainer(booked, ori)
    await probe.deliver("DeliverDetainer", message)
    found = await _in_inbox(probe, ori, booked.tcn, "I-247")
    ids = [_detainer_id(m["body"]) for m in found]
    if ids != [message.detainer.detainer_id]:
        raise CaseFailed(f"expected detainer {message.detainer.detainer_id} in the inbox, {ids}")


def _detainer_id(body: dict[str, Any]) -> Any:
    """The detainer id of an I-247 in protobuf JSON (either field-name style)."""
    detainer = body.get("detainer", {})
    return detainer.get("detainer_id", detainer.get("detainerId"))


@case(SIB, "A release notice for a lodged detainer goes to the ICE field office")
async def release_notice(probe: Probe) -> None:
    """An LEA's `POST /v1/release-notices` for a detainer in its inbox answers 202 and reaches the
    field office's NotifyRelease naming the detainer and the booking; one for a detainer never
    lodged answers 404 and sends nothing."""
    ori = await _agency(probe, CA[:2])
    booked = await _book(probe, booking_body(Person(), ori))
    message = detainer(booked, ori)
    await probe.deliver("DeliverDetainer", message)
    detainer_id = message.detainer.detainer_id
    http = probe.http_edge()
    response = await http.post("/v1/release-notices", json={"ori": ori, "detainer_id": detainer_id})
    if response.status_code != 202:
        raise CaseFailed(f"the release notice got {response.status_code}: {response.text[:200]}")

    def about(detainer_id: str) -> Match:
        return lambda r: getattr(r.message, "detainer_id", "") == detainer_id

    received = await probe.expect(
        Agency.ICE_FIELD, "NotifyRelease", about(detainer_id), what="release notice"
    )
    if received.envelope is None or received.envelope.tcr != booked.tcn:
        raise CaseFailed(f"the release notice must name the booking {booked.tcn} as TCR")
    unknown = new_tcn("I247-")
    response = await http.post("/v1/release-notices", json={"ori": ori, "detainer_id": unknown})
    if response.status_code != 404:
        raise CaseFailed(f"a detainer never lodged got {response.status_code}, expected 404")
    await probe.expect_none(
        Agency.ICE_FIELD, "NotifyRelease", about(unknown), what="a notice of no detainer"
    )


# --- idempotency -----------------------------------------------------------------------------


@case(SIB, "A repeated DeliverSre message id is a duplicate and reaches the LEA once")
async def sre_twice(probe: Probe) -> None:
    """The same SRE delivered twice (a retry after a lost Ack) is acknowledged as a duplicate the
    second time, and the LEA's inbox has it once."""
    ori = await _agency(probe, CA[:2])
    booked = await _book(probe, booking_body(Person(), ori))
    await probe.deliver_twice("DeliverSre", sre(booked, ori))
    found = await _in_inbox(probe, ori, booked.tcn, "SRE")
    if len(found) != 1:
        raise CaseFailed(f"one SRE, {len(found)} in the inbox: it was processed twice")


@case(
    SIB, "A repeated interoperability response message id is a duplicate and reaches the LEA once"
)
async def response_twice(probe: Probe) -> None:
    """The same no-match IDR delivered twice gets `duplicate` the second time; the inbox has it
    once."""
    ori = await _agency(probe, CA[:2])
    booked = await _book(probe, booking_body(Person(), ori))
    await probe.deliver_twice("DeliverInteroperabilityResponse", no_match(booked, ori))
    found = await _in_inbox(probe, ori, booked.tcn, "NO-MATCH-IDR")
    if len(found) != 1:
        raise CaseFailed(f"one IDR, {len(found)} in the inbox: it was processed twice")


# --- the HTTP edge ---------------------------------------------------------------------------

# (what is wrong, how the body is spoilt, what the reason must name, our words)
_BAD_BOOKINGS: list[tuple[str, str, Any, str, str]] = [
    ("unregistered ORI", "ori", "ZZ0010000", "ZZ0010000", "no agency with ORI ZZ0010000"),
    ("rac field", "rac", "W", "rac", "race and ethnicity are not accepted"),
    ("eth field", "eth", "H", "eth", "race and ethnicity are not accepted"),
    ("rac descriptor", "descriptors.rac", "W", "rac", "race and ethnicity are not accepted"),
    ("eth descriptor", "descriptors.eth", "H", "eth", "race and ethnicity are not accepted"),
    ("no fingers", "fingers", [], "fingers", "body.fingers"),
]


def _spoilt(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    target[last] = value
    return body


def _reason(response: Any) -> str:
    """The error as a client shows it: each field error as "loc: msg", or the detail."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        return str(response.text)
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', []))}: {error.get('msg', '')}"
            for error in detail
        )
    return str(detail)


@case(SIB, "Bad bookings get 422 naming the problem, race and ethnicity refused")
async def bad_bookings(probe: Probe) -> None:
    """An unknown ORI, a booking without fingers, and race or ethnicity anywhere in it (MOA: no
    racial or ethnic profiling) are refused with 422 naming the problem; none goes to CJIS."""
    http = probe.http_edge()
    good = booking_body(Person(), CA)
    failures = []
    numbers = set()
    for problem, path, value, names, words in _BAD_BOOKINGS:
        body = _spoilt(dict(good, booking_number=new_tcn("BK-")), path, value)
        numbers.add(body["booking_number"])
        # With LEA credentials, CA's key may book for CA alone: another ORI is a 403 first.
        key = probe.lea_keys.keys.get(CA) if path == "ori" else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await http.post("/v1/bookings", json=body, headers=headers)
        reason = _reason(response)
        if key and response.status_code == 403:
            continue
        if response.status_code != 422 or names not in reason:
            failures.append(f"{problem}: {response.status_code} {reason[:200]!r}")
        elif probe.strict and words not in reason:
            failures.append(f"{problem}: {reason[:200]!r} does not say {words!r}")
    if failures:
        raise CaseFailed("; ".join(failures))

    def ours(r: Received) -> bool:
        return getattr(r.message, "booking_number", "") in numbers

    await probe.expect_none(CJIS, "SubmitCar", ours, what="a CAR for a refused booking")


@case(SIB, "A resubmitted identical booking is a duplicate with the same TCN and one CAR")
async def booking_twice(probe: Probe) -> None:
    """Posting the same booking again answers 200, `duplicate`, the first TCN; the same booking
    number with other content answers 409 naming that TCN; CJIS gets one CAR."""
    body = booking_body(Person(), CA)
    booked = await _book(probe, body)
    again = await probe.http_edge().post("/v1/bookings", json=body)
    receipt = again.json() if again.status_code == 200 else {}
    if receipt.get("tcn") != booked.tcn or receipt.get("duplicate") is not True:
        raise CaseFailed(
            f"expected 200 duplicate of {booked.tcn}, got {again.status_code} {again.text}"
        )
    changed = dict(body, doa="20100101")
    conflict = await probe.http_edge().post("/v1/bookings", json=changed)
    if conflict.status_code != 409 or booked.tcn not in _reason(conflict):
        raise CaseFailed(
            f"the same booking number with other content must get 409 naming {booked.tcn}, "
            f"got {conflict.status_code} {conflict.text[:200]}"
        )
    await _car(probe, booked)
    cars = await probe.count(CJIS, "SubmitCar", by_tcn(booked.tcn))
    if len(cars) != 1:
        raise CaseFailed(f"one booking, {len(cars)} CARs")


@case(SIB, "The HTTP edge answers /readyz")
async def readyz(probe: Probe) -> None:
    """The agency edge says it is ready (200) once it can serve."""
    response = await probe.http_edge().get("/readyz")
    if response.status_code != 200:
        raise CaseFailed(f"/readyz answered {response.status_code}: {response.text[:200]}")


refusal_cases(SIB, envelope_refusals() + content_refusals())
