"""Every bad input the contracts document, with the status (and our words) it must get.

One table serves the conformance kit, which checks the status code and that a reason is given,
and our own edge tests, which also check our services' words. Each refusal is made against a
target that knows only what the suites register (the LEA `CA`, nothing booked).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import grpc
from google.protobuf.message import Message

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.ident.v1 import ident_pb2 as ident
from scfed.sib.v1 import sib_pb2 as sib

from ..biometrics.params import TEMPLATE_DIM
from ..federation import Agency
from .messages import (
    AMPUTATED_PRINT,
    CA,
    NAM,
    UNKNOWN_TCR,
    car,
    charge,
    cpi,
    envelope,
    iaq,
    iar,
    removal_notice,
    search,
    tenprint,
)

INVALID: Final = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND: Final = grpc.StatusCode.NOT_FOUND
FAILED: Final = grpc.StatusCode.FAILED_PRECONDITION
EXISTS: Final = grpc.StatusCode.ALREADY_EXISTS


@dataclass(frozen=True)
class Refusal:
    """One bad request and the status and words the RPC must answer it with."""

    name: str
    service: str
    method: str
    request: Message
    code: grpc.StatusCode
    words: str


def enveloped() -> list[tuple[str, str, Message]]:
    """One well-formed message for every RPC that takes an envelope."""
    return [
        (
            Agency.SIB,
            "DeliverSre",
            sib.SreMessage(envelope=envelope("SRE"), identification="I", fbi_number="1234567AB"),
        ),
        (
            Agency.SIB,
            "DeliverErrt",
            sib.ErrtMessage(
                envelope=envelope("ERRT"),
                errt=common.Errt(refused_tcn=UNKNOWN_TCR, code="X", reason="refused"),
            ),
        ),
        (
            Agency.SIB,
            "DeliverInteroperabilityResponse",
            sib.InteroperabilityResponse(
                envelope=envelope("NO-MATCH-IDR"), no_match=sib.NoMatchIdr(idr=common.Idr())
            ),
        ),
        (
            Agency.SIB,
            "DeliverDetainer",
            sib.DetainerMessage(
                envelope=envelope("I-247"),
                detainer=common.I247Detainer(
                    detainer_id="I247-EDGE", lea_ori=CA, booking_tcn=UNKNOWN_TCR
                ),
            ),
        ),
        (Agency.CJIS_IAFIS, "SubmitCar", car()),
        (Agency.CJIS_IAFIS, "SubmitCpi", cpi()),
        (
            Agency.CJIS_IAFIS,
            "DeliverIdr",
            cjis.IdrMessage(envelope=envelope("IDR"), idr=common.Idr(match=False)),
        ),
        (
            Agency.CJIS_IAFIS,
            "AcknowledgeIaq",
            cjis.IaqAcknowledgement(envelope=envelope("IAQ-ACK"), case_id="LESCEDGE0001"),
        ),
        (Agency.CJIS_IAFIS, "DeliverIar", cjis.IarMessage(envelope=envelope("IAR"), iar=iar())),
        (Agency.IDENT, "Search", search()),
        (Agency.IDENT, "RecordEncounter", removal_notice()),
        (Agency.LESC, "SubmitIaq", iaq()),
        (
            Agency.ICE_FIELD,
            "NotifyRelease",
            ice.ReleaseNotice(envelope=envelope("RELEASE"), detainer_id="I247-EDGE"),
        ),
        (
            Agency.ICE_FIELD,
            "DeliverIar",
            ice.IarCopy(envelope=envelope("IAR-COPY"), iar=iar(), nam="DOE,JOHN"),
        ),
    ]


# (what is wrong, how the envelope is spoilt, words of the reason)
BAD_ENVELOPES: list[tuple[str, Callable[[common.Envelope], None] | None, str]] = [
    ("missing envelope", None, "envelope is required"),
    ("empty message_id", lambda e: setattr(e, "message_id", ""), "envelope.message_id"),
    ("message_id over 36", lambda e: setattr(e, "message_id", "m" * 37), "at most 36"),
    ("bad ORI", lambda e: setattr(e, "ori", "ca019"), "envelope.ori must be nine characters"),
    ("pry 10", lambda e: setattr(e, "pry", 10), "envelope.pry must be 1..9"),
]


# The CAR and CPI open a transaction under their own TCN; every other message names it as TCR.
OPENING = frozenset({(Agency.CJIS_IAFIS, "SubmitCar"), (Agency.CJIS_IAFIS, "SubmitCpi")})


def _no_tcr(envelope: common.Envelope) -> None:
    """Spoils a follow-on envelope: its booking is no longer named."""
    envelope.ClearField("tcr")


def _no_tcn_nor_tcr(envelope: common.Envelope) -> None:
    """Spoils an opening envelope: it names no transaction at all."""
    envelope.ClearField("tcn")
    envelope.ClearField("tcr")


def envelope_refusals() -> list[Refusal]:
    """Every enveloped RPC, refusing every kind of bad envelope with INVALID_ARGUMENT."""
    refusals = []
    for service, method, good in enveloped():
        booking_unnamed = (
            ("no tcn nor tcr", _no_tcn_nor_tcr, "envelope.tcn or envelope.tcr is required")
            if (service, method) in OPENING
            else ("follow-on without tcr", _no_tcr, "envelope.tcr (the TCN of the booking)")
        )
        for problem, spoil, words in [*BAD_ENVELOPES, booking_unnamed]:
            bad = copy.deepcopy(good)
            if spoil is None:
                bad.ClearField("envelope")
            else:
                spoil(bad.envelope)  # type: ignore[attr-defined]
            refusals.append(Refusal(problem, service, method, bad, INVALID, words))
    return refusals


def content_refusals() -> list[Refusal]:
    """Bad content behind a good envelope, and bad configuration and look-ups."""
    sib_, cjis_, ident_, lesc_, ice_ = (
        Agency.SIB,
        Agency.CJIS_IAFIS,
        Agency.IDENT,
        Agency.LESC,
        Agency.ICE_FIELD,
    )
    nan = [float("nan")] * TEMPLATE_DIM
    inf = [float("inf")] + [0.5] * (TEMPLATE_DIM - 1)
    no_status = common.Encounter(encounter_type="BORDER-APPREHENSION")
    return [
        # SIB: responses for a booking, and configuration.
        Refusal(
            "SRE for an unknown TCR",
            sib_,
            "DeliverSre",
            sib.SreMessage(envelope=envelope("SRE"), identification="I", fbi_number="1234567AB"),
            NOT_FOUND,
            UNKNOWN_TCR,
        ),
        Refusal(
            "SRE identification X",
            sib_,
            "DeliverSre",
            sib.SreMessage(envelope=envelope("SRE"), identification="X", fbi_number="1234567AB"),
            INVALID,
            "identification must be 'I' or 'N'",
        ),
        Refusal(
            "SRE without FBI number",
            sib_,
            "DeliverSre",
            sib.SreMessage(envelope=envelope("SRE"), identification="N"),
            INVALID,
            "fbi_number is required",
        ),
        Refusal(
            "ERRT without reason",
            sib_,
            "DeliverErrt",
            sib.ErrtMessage(envelope=envelope("ERRT"), errt=common.Errt(code="X")),
            INVALID,
            "errt.reason is required",
        ),
        Refusal(
            "ERRT for an unknown TCR",
            sib_,
            "DeliverErrt",
            sib.ErrtMessage(envelope=envelope("ERRT"), errt=common.Errt(reason="refused")),
            NOT_FOUND,
            UNKNOWN_TCR,
        ),
        Refusal(
            "interoperability response without response",
            sib_,
            "DeliverInteroperabilityResponse",
            sib.InteroperabilityResponse(envelope=envelope("IDR/IAR")),
            INVALID,
            "no_match or joint",
        ),
        Refusal(
            "IDR/IAR for an unknown TCR",
            sib_,
            "DeliverInteroperabilityResponse",
            sib.InteroperabilityResponse(
                envelope=envelope("IDR/IAR"),
                joint=sib.JointIdrIar(idr=common.Idr(match=True, fin="F1"), iar=iar()),
            ),
            NOT_FOUND,
            UNKNOWN_TCR,
        ),
        Refusal(
            "detainer without id",
            sib_,
            "DeliverDetainer",
            sib.DetainerMessage(
                envelope=envelope("I-247"), detainer=common.I247Detainer(lea_ori=CA)
            ),
            INVALID,
            "detainer.detainer_id is required",
        ),
        Refusal(
            "detainer with a bad LEA ORI",
            sib_,
            "DeliverDetainer",
            sib.DetainerMessage(
                envelope=envelope("I-247"),
                detainer=common.I247Detainer(detainer_id="I247-EDGE", lea_ori="CA19"),
            ),
            INVALID,
            "detainer.lea_ori must be nine characters",
        ),
        Refusal(
            "detainer for an unregistered LEA",
            sib_,
            "DeliverDetainer",
            sib.DetainerMessage(
                envelope=envelope("I-247"),
                detainer=common.I247Detainer(detainer_id="I247-EDGE", lea_ori="WY0010000"),
            ),
            NOT_FOUND,
            "WY0010000",
        ),
        Refusal(
            "detainer for an unknown booking",
            sib_,
            "DeliverDetainer",
            sib.DetainerMessage(
                envelope=envelope("I-247"),
                detainer=common.I247Detainer(
                    detainer_id="I247-EDGE", lea_ori=CA, booking_tcn=UNKNOWN_TCR
                ),
            ),
            NOT_FOUND,
            UNKNOWN_TCR,
        ),
        Refusal(
            "state code not two letters",
            sib_,
            "RegisterState",
            sib.State(code="Texas", moa_status=sib.MOA_STATUS_ACTIVE),
            INVALID,
            "two letters A-Z",
        ),
        Refusal(
            "state code in lower case",
            sib_,
            "RegisterState",
            sib.State(code="or", moa_status=sib.MOA_STATUS_ACTIVE),
            INVALID,
            "two letters A-Z",
        ),
        Refusal(
            "state with unspecified MOA status",
            sib_,
            "RegisterState",
            sib.State(code="OR"),
            INVALID,
            "moa_status is required",
        ),
        Refusal(
            "state with a bad SIB ORI",
            sib_,
            "RegisterState",
            sib.State(code="OR", moa_status=sib.MOA_STATUS_ACTIVE, sib_ori="ORSIB"),
            INVALID,
            "sib_ori must be nine characters",
        ),
        Refusal(
            "agency with a bad ORI",
            sib_,
            "RegisterAgency",
            sib.Agency(ori="CA-019"),
            INVALID,
            "ori must be nine characters",
        ),
        Refusal(
            "agency activated from a day that is not YYYYMMDD",
            sib_,
            "RegisterAgency",
            sib.Agency(ori="CA0190000", activated=True, activated_on="2010-03-01"),
            INVALID,
            "activated_on must be a date YYYYMMDD",
        ),
        Refusal(
            "agency with a criminal alien share over 1",
            sib_,
            "RegisterAgency",
            sib.Agency(ori="CA0190000", activated=True, criminal_alien_share=1.5),
            INVALID,
            "criminal_alien_share must be between 0 and 1",
        ),
        Refusal(
            "agency of an unregistered state",
            sib_,
            "RegisterAgency",
            sib.Agency(ori="WY0010000"),
            FAILED,
            "state WY is not registered",
        ),
        Refusal(
            "MOA status TERMINATED",
            sib_,
            "SetMoaStatus",
            sib.SetMoaStatusRequest(state="CA", status=sib.MOA_STATUS_TERMINATED),
            INVALID,
            "30 days after notice",
        ),
        Refusal(
            "MOA status unspecified",
            sib_,
            "SetMoaStatus",
            sib.SetMoaStatusRequest(state="CA"),
            INVALID,
            "status must be ACTIVE, SUSPENDED or TERMINATION_NOTICED",
        ),
        Refusal(
            "MOA status of an unknown state",
            sib_,
            "SetMoaStatus",
            sib.SetMoaStatusRequest(state="WY", status=sib.MOA_STATUS_SUSPENDED),
            NOT_FOUND,
            "WY",
        ),
        Refusal(
            "jurisdiction suspension without its party",
            sib_,
            "SuspendJurisdiction",
            sib.SuspendJurisdictionRequest(ori="CA0190000", reason="profiling"),
            INVALID,
            "by must be",
        ),
        Refusal(
            "jurisdiction suspension without a reason",
            sib_,
            "SuspendJurisdiction",
            sib.SuspendJurisdictionRequest(ori="CA0190000", by=sib.SUSPENDING_PARTY_ICE),
            INVALID,
            "reason is required",
        ),
        Refusal(
            "jurisdiction suspension with a malformed ORI",
            sib_,
            "SuspendJurisdiction",
            sib.SuspendJurisdictionRequest(ori="CA01", by=sib.SUSPENDING_PARTY_SIB, reason="x"),
            INVALID,
            "must be nine characters",
        ),
        Refusal(
            "jurisdiction suspension of an unknown ORI",
            sib_,
            "SuspendJurisdiction",
            sib.SuspendJurisdictionRequest(
                ori="WY0000000", by=sib.SUSPENDING_PARTY_ICE, reason="profiling"
            ),
            NOT_FOUND,
            "WY0000000",
        ),
        Refusal(
            "jurisdiction resumed without its party",
            sib_,
            "ResumeJurisdiction",
            sib.ResumeJurisdictionRequest(ori="CA0190000"),
            INVALID,
            "by must be",
        ),
        Refusal(
            "jurisdiction resumed of an unknown ORI",
            sib_,
            "ResumeJurisdiction",
            sib.ResumeJurisdictionRequest(ori="WY0000000", by=sib.SUSPENDING_PARTY_ICE),
            NOT_FOUND,
            "WY0000000",
        ),
        Refusal(
            "LEA credential for a malformed ORI",
            sib_,
            "IssueLeaCredential",
            sib.IssueLeaCredentialRequest(ori="CA01"),
            INVALID,
            "must be nine characters",
        ),
        Refusal(
            "LEA credential for an unknown ORI",
            sib_,
            "IssueLeaCredential",
            sib.IssueLeaCredentialRequest(ori="WY0000000"),
            NOT_FOUND,
            "WY0000000",
        ),
        # CJIS: submissions, responses for a transaction, records and look-ups.
        Refusal(
            "CAR with a NaN template",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(template=nan)),
            INVALID,
            "NaN or infinite",
        ),
        Refusal(
            "CAR with an infinite value",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(template=inf)),
            INVALID,
            "NaN or infinite",
        ),
        Refusal(
            "CAR with a template of the wrong dimension",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(template=[0.5] * (TEMPLATE_DIM + 1))),
            INVALID,
            f"template must have {TEMPLATE_DIM} values, got {TEMPLATE_DIM + 1}",
        ),
        Refusal(
            "CAR with an all-zero template",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(template=[0.0] * TEMPLATE_DIM)),
            INVALID,
            "all zeros",
        ),
        Refusal(
            "CAR with a repeated position",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(position=2)),
            INVALID,
            "appears more than once",
        ),
        Refusal(
            "CAR with finger position 0",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(position=0)),
            INVALID,
            "position must be 1..10",
        ),
        Refusal(
            "CAR with finger position 11",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(position=11)),
            INVALID,
            "position must be 1..10",
        ),
        Refusal(
            "CAR with quality 101",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(quality=101)),
            INVALID,
            "quality must be 0..100",
        ),
        Refusal(
            "CAR with a finger without status",
            cjis_,
            "SubmitCar",
            car(tenprint=tenprint(status=common.FINGER_STATUS_UNSPECIFIED)),
            INVALID,
            "finger status is required",
        ),
        Refusal(
            "CAR with no usable finger",
            cjis_,
            "SubmitCar",
            car(tenprint=AMPUTATED_PRINT),
            INVALID,
            "no usable finger",
        ),
        Refusal(
            "CAR without tenprint",
            cjis_,
            "SubmitCar",
            car(tenprint=None),
            INVALID,
            "tenprint is required",
        ),
        Refusal(
            "CAR with NCIC code 12A4",
            cjis_,
            "SubmitCar",
            car(charges=[charge("12A4")]),
            INVALID,
            "charges[0].ncic_code must be four digits",
        ),
        Refusal(
            "CAR without charges",
            cjis_,
            "SubmitCar",
            car(charges=[]),
            INVALID,
            "at least one charge",
        ),
        Refusal(
            "CAR without booking number",
            cjis_,
            "SubmitCar",
            car(booking_number=""),
            INVALID,
            "booking_number is required",
        ),
        Refusal(
            "CAR with a bad date of arrest",
            cjis_,
            "SubmitCar",
            car(doa="20090230"),
            INVALID,
            "doa is not a calendar date",
        ),
        Refusal(
            "CAR whose jurisdiction activation day is not a calendar date",
            cjis_,
            "SubmitCar",
            car(
                interoperability=cjis.Interoperability(
                    moa_active=True, jurisdiction_activated_on="20100230"
                )
            ),
            INVALID,
            "interoperability.jurisdiction_activated_on is not a calendar date",
        ),
        Refusal(
            "CPI whose jurisdiction activation day is not YYYYMMDD",
            cjis_,
            "SubmitCpi",
            cpi(interoperability=cjis.Interoperability(jurisdiction_activated_on="2010-03-01")),
            INVALID,
            "interoperability.jurisdiction_activated_on must be a date YYYYMMDD",
        ),
        Refusal(
            "CAR without its own TCN",
            cjis_,
            "SubmitCar",
            car(envelope=envelope("CAR", tcn="")),
            INVALID,
            "envelope.tcn is required",
        ),
        Refusal(
            "CPI without FBI number",
            cjis_,
            "SubmitCpi",
            cpi(fbi_number=""),
            INVALID,
            "fbi_number is required",
        ),
        Refusal(
            "CPI with NCIC code 12A4",
            cjis_,
            "SubmitCpi",
            cpi(charges=[charge("12A4")]),
            INVALID,
            "ncic_code must be four digits",
        ),
        Refusal(
            "CPI without charges",
            cjis_,
            "SubmitCpi",
            cpi(charges=[]),
            INVALID,
            "at least one charge",
        ),
        Refusal(
            "IDR for an unknown TCR",
            cjis_,
            "DeliverIdr",
            cjis.IdrMessage(envelope=envelope("IDR"), idr=common.Idr(match=False)),
            NOT_FOUND,
            UNKNOWN_TCR,
        ),
        Refusal(
            "matching IDR without FIN",
            cjis_,
            "DeliverIdr",
            cjis.IdrMessage(envelope=envelope("IDR"), idr=common.Idr(match=True)),
            INVALID,
            "must carry the FIN",
        ),
        Refusal(
            "IDR message without IDR",
            cjis_,
            "DeliverIdr",
            cjis.IdrMessage(envelope=envelope("IDR")),
            INVALID,
            "idr is required",
        ),
        Refusal(
            "IAQ acknowledgement without case id",
            cjis_,
            "AcknowledgeIaq",
            cjis.IaqAcknowledgement(envelope=envelope("IAQ-ACK")),
            INVALID,
            "case_id is required",
        ),
        Refusal(
            "IAQ acknowledgement for an unknown TCR",
            cjis_,
            "AcknowledgeIaq",
            cjis.IaqAcknowledgement(envelope=envelope("IAQ-ACK"), case_id="LESC1"),
            NOT_FOUND,
            UNKNOWN_TCR,
        ),
        Refusal(
            "IAR message without IAR",
            cjis_,
            "DeliverIar",
            cjis.IarMessage(envelope=envelope("IAR")),
            INVALID,
            "iar is required",
        ),
        Refusal(
            "IAR for an unknown TCR",
            cjis_,
            "DeliverIar",
            cjis.IarMessage(envelope=envelope("IAR"), iar=iar()),
            NOT_FOUND,
            UNKNOWN_TCR,
        ),
        Refusal(
            "criminal record with no usable finger",
            cjis_,
            "EnrollCriminalRecords",
            cjis.EnrollCriminalRecordsRequest(
                records=[cjis.CriminalRecord(descriptors=NAM, tenprint=AMPUTATED_PRINT)]
            ),
            INVALID,
            "records[0].tenprint: no usable finger",
        ),
        Refusal(
            "criminal record with NCIC code 12A4",
            cjis_,
            "EnrollCriminalRecords",
            cjis.EnrollCriminalRecordsRequest(
                records=[
                    cjis.CriminalRecord(
                        descriptors=NAM,
                        tenprint=tenprint(),
                        cycles=[common.ArrestCycle(ori=CA, doa="20050101", charges=[charge("1")])],
                    )
                ]
            ),
            INVALID,
            "records[0].cycles[0].charges[0].ncic_code",
        ),
        Refusal(
            "criminal history without FBI number",
            cjis_,
            "GetCriminalHistory",
            cjis.GetCriminalHistoryRequest(),
            INVALID,
            "fbi_number is required",
        ),
        Refusal(
            "criminal history of an unknown FBI number",
            cjis_,
            "GetCriminalHistory",
            cjis.GetCriminalHistoryRequest(fbi_number="0000000ZZ"),
            NOT_FOUND,
            "0000000ZZ",
        ),
        # IDENT: searches, enrolment, look-ups.
        Refusal(
            "search without tenprint",
            ident_,
            "Search",
            search(tenprint=None),
            INVALID,
            "tenprint is required",
        ),
        Refusal(
            "search with a NaN template",
            ident_,
            "Search",
            search(tenprint=tenprint(template=nan)),
            INVALID,
            "NaN or infinite",
        ),
        Refusal(
            "search with a template of the wrong dimension",
            ident_,
            "Search",
            search(tenprint=tenprint(template=[0.5] * 3)),
            INVALID,
            f"template must have {TEMPLATE_DIM} values",
        ),
        Refusal(
            "search with a repeated position",
            ident_,
            "Search",
            search(tenprint=tenprint(position=2)),
            INVALID,
            "appears more than once",
        ),
        Refusal(
            "search with quality 101",
            ident_,
            "Search",
            search(tenprint=tenprint(quality=101)),
            INVALID,
            "quality must be 0..100",
        ),
        Refusal(
            "search with no usable finger",
            ident_,
            "Search",
            search(tenprint=AMPUTATED_PRINT),
            INVALID,
            "no usable finger",
        ),
        Refusal(
            "encounter notice without a FIN",
            ident_,
            "RecordEncounter",
            removal_notice(fin=""),
            INVALID,
            "fin is required",
        ),
        Refusal(
            "encounter notice without an encounter id",
            ident_,
            "RecordEncounter",
            removal_notice(encounter_id=""),
            INVALID,
            "encounter.encounter_id is required",
        ),
        Refusal(
            "encounter notice without a status",
            ident_,
            "RecordEncounter",
            removal_notice(status=common.IMMIGRATION_STATUS_UNSPECIFIED),
            INVALID,
            "encounter.status is required",
        ),
        Refusal(
            "encounter notice for an unknown FIN",
            ident_,
            "RecordEncounter",
            removal_notice(),
            NOT_FOUND,
            "no identity with FIN",
        ),
        Refusal(
            "encounter without status",
            ident_,
            "EnrollEncounters",
            ident.EnrollEncountersRequest(
                encounters=[
                    ident.NewEncounter(descriptors=NAM, tenprint=tenprint(), encounter=no_status)
                ]
            ),
            INVALID,
            "encounters[0].encounter.status is required",
        ),
        Refusal(
            "identity without FIN",
            ident_,
            "GetIdentity",
            ident.GetIdentityRequest(),
            INVALID,
            "fin is required",
        ),
        Refusal(
            "identity of an unknown FIN",
            ident_,
            "GetIdentity",
            ident.GetIdentityRequest(fin="FIN000000000000"),
            NOT_FOUND,
            "FIN000000000000",
        ),
        # LESC.
        Refusal(
            "IAQ with a non-matching IDR",
            lesc_,
            "SubmitIaq",
            iaq(idr=common.Idr(match=False)),
            INVALID,
            "must carry a matching IDR",
        ),
        Refusal(
            "IAQ without IDR",
            lesc_,
            "SubmitIaq",
            iaq(idr=None),
            INVALID,
            "must carry a matching IDR",
        ),
        Refusal(
            "IAQ whose IDR has no FIN",
            lesc_,
            "SubmitIaq",
            iaq(idr=common.Idr(match=True)),
            INVALID,
            "idr.fin is required",
        ),
        Refusal(
            "IAQ with NCIC code 12A4",
            lesc_,
            "SubmitIaq",
            iaq(off=[charge("12A4")]),
            INVALID,
            "off[0].ncic_code must be four digits",
        ),
        Refusal(
            "IAQ with a bad NCIC code in the history",
            lesc_,
            "SubmitIaq",
            iaq(
                history=common.CriminalHistory(
                    cycles=[common.ArrestCycle(ori=CA, doa="20050101", charges=[charge("AB12")])]
                )
            ),
            INVALID,
            "history.cycles[0].charges[0].ncic_code",
        ),
        # ICE field offices.
        Refusal(
            "IAR copy without IAR",
            ice_,
            "DeliverIar",
            ice.IarCopy(envelope=envelope("IAR-COPY")),
            INVALID,
            "iar is required",
        ),
        Refusal(
            "IAR copy for a state no office covers",
            ice_,
            "DeliverIar",
            ice.IarCopy(envelope=envelope("IAR-COPY", ori="WY0010000"), iar=iar()),
            FAILED,
            "no field office covers state WY",
        ),
        Refusal(
            "release notice without detainer id",
            ice_,
            "NotifyRelease",
            ice.ReleaseNotice(envelope=envelope("RELEASE")),
            INVALID,
            "detainer_id is required",
        ),
        Refusal(
            "release notice for an unknown detainer",
            ice_,
            "NotifyRelease",
            ice.ReleaseNotice(envelope=envelope("RELEASE"), detainer_id="I247-UNKNOWN"),
            NOT_FOUND,
            "I247-UNKNOWN",
        ),
        Refusal(
            "field office with no states",
            ice_,
            "RegisterFieldOffice",
            ice.FieldOffice(ori="ORICE0100", name="Portland"),
            INVALID,
            "at least one state",
        ),
        Refusal(
            "field office with a bad state code",
            ice_,
            "RegisterFieldOffice",
            ice.FieldOffice(ori="ORICE0100", states=["Oregon"]),
            INVALID,
            "two letters A-Z",
        ),
        Refusal(
            "field office with a bad ORI",
            ice_,
            "RegisterFieldOffice",
            ice.FieldOffice(ori="ORICE", states=["OR"]),
            INVALID,
            "ori must be nine characters",
        ),
        Refusal(
            "detainer look-up without id",
            ice_,
            "GetDetainer",
            ice.GetDetainerRequest(),
            INVALID,
            "detainer_id is required",
        ),
        Refusal(
            "detainer look-up of an unknown id",
            ice_,
            "GetDetainer",
            ice.GetDetainerRequest(detainer_id="I247-UNKNOWN"),
            NOT_FOUND,
            "I247-UNKNOWN",
        ),
        Refusal(
            "case step without state",
            ice_,
            "AdvanceCase",
            ice.AdvanceCaseRequest(detainer_id="I247-UNKNOWN"),
            INVALID,
            "to_state are required",
        ),
        Refusal(
            "case step of an unknown detainer",
            ice_,
            "AdvanceCase",
            ice.AdvanceCaseRequest(detainer_id="I247-UNKNOWN", to_state="in_custody"),
            NOT_FOUND,
            "I247-UNKNOWN",
        ),
    ]
