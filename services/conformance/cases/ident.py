"""The IDENT suite: identification, enrolment and the IDR that answers every search.

IDENT answers an interoperability search (MOA IV.A, steps 3 and 4) with an IDR to CJIS: a match
names the identity's FIN, no match says so; either carries the booking's TCN as its TCR.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.ident.v1 import ident_pb2 as ident

from ...biometrics.params import TEMPLATE_DIM
from ...federation import Agency
from ..kit import CaseFailed, Probe, case, check_follow_on, for_booking, refusal_cases
from ..messages import Person, envelope, new_tcn, removal_notice, search, tenprint
from ..refusals import INVALID, NOT_FOUND, content_refusals, envelope_refusals

IDENT = Agency.IDENT
CJIS = Agency.CJIS_IAFIS


async def _enrolled(probe: Probe, person: Person) -> str:
    """Enrols the person; returns the FIN."""
    enrollment = await probe.call("Enroll", ident.EnrollRequest(encounter=person.encounter()))
    if not enrollment.fin:
        raise CaseFailed(f"Enroll answered no FIN: {enrollment}")
    return str(enrollment.fin)


async def _idr_for(probe: Probe, request: ident.IdentSearch) -> cjis.IdrMessage:
    """Sends the search and waits for IDENT's IDR to CJIS about its booking."""
    await probe.deliver("Search", request)
    received = await probe.expect(
        CJIS, "DeliverIdr", for_booking(request.envelope.tcr), what="IDR for the search"
    )
    idr: cjis.IdrMessage = received.message
    return idr


def _search_for(tenprint: common.Tenprint) -> ident.IdentSearch:
    """An interoperability search for a fresh booking, as CJIS sends it."""
    return search(envelope=envelope("IDENT-SEARCH", tcr=new_tcn("BOOK")), tenprint=tenprint)


@case(IDENT, "Info describes the template layout")
async def info(probe: Probe) -> None:
    """Info names the template dimension and ten fingers per tenprint."""
    reply = await probe.call("Info", ident.InfoRequest())
    if (reply.template_dimension, reply.fingers) != (TEMPLATE_DIM, 10):
        raise CaseFailed(
            f"expected template_dimension {TEMPLATE_DIM} and 10 fingers, got "
            f"{reply.template_dimension} and {reply.fingers}"
        )


@case(IDENT, "Search of someone unknown is answered with a no-match IDR to CJIS")
async def search_no_match(probe: Probe) -> None:
    """A search is acknowledged at once; the IDR (no match) goes to CJIS's DeliverIdr with the
    booking's TCN as TCR, in a new message of its own."""
    request = _search_for(Person().capture())
    idr = await _idr_for(probe, request)
    if idr.idr.match:
        raise CaseFailed(f"nobody was enrolled with these prints, yet the IDR matched: {idr.idr}")
    check_follow_on(idr.envelope, request.envelope, what="IDR")


@case(IDENT, "Search of an enrolled person is answered with a match IDR naming the FIN")
async def search_match(probe: Probe) -> None:
    """After Enroll, a search with another impression of the same fingers is a match whose IDR
    names the enrolled FIN."""
    person = Person()
    fin = await _enrolled(probe, person)
    request = _search_for(person.capture())
    idr = await _idr_for(probe, request)
    if not idr.idr.match or idr.idr.fin != fin:
        raise CaseFailed(f"expected a match with FIN {fin}, got {idr.idr}")
    check_follow_on(idr.envelope, request.envelope, what="IDR")


@case(IDENT, "A repeated Search message id is acknowledged as a duplicate and answered once")
async def search_twice(probe: Probe) -> None:
    """The same search delivered twice (a retry after a lost Ack) gets `duplicate` the second
    time, and CJIS gets one IDR."""
    request = _search_for(Person().capture())
    await probe.deliver_twice("Search", request)
    await probe.expect(CJIS, "DeliverIdr", for_booking(request.envelope.tcr))
    idrs = await probe.count(CJIS, "DeliverIdr", for_booking(request.envelope.tcr))
    if len(idrs) != 1:
        raise CaseFailed(f"one search, {len(idrs)} IDRs: it was processed twice")


@case(IDENT, "A refused search sends no IDR")
async def refused_search(probe: Probe) -> None:
    """A search with a bad template is refused with INVALID_ARGUMENT and nothing is sent."""
    request = _search_for(tenprint(template=[0.5] * (TEMPLATE_DIM + 1)))
    await probe.refused_with("Search", request, INVALID)
    await probe.expect_none(CJIS, "DeliverIdr", for_booking(request.envelope.tcr), what="an IDR")


@case(IDENT, "Enroll attaches a second encounter of the same person to the same FIN")
async def enroll_twice(probe: Probe) -> None:
    """The first enrolment makes a new identity; the second (other impression) joins it."""
    person = Person()
    first = await probe.call("Enroll", ident.EnrollRequest(encounter=person.encounter()))
    second = await probe.call("Enroll", ident.EnrollRequest(encounter=person.encounter()))
    if not first.new_identity or second.new_identity or second.fin != first.fin:
        raise CaseFailed(f"expected one identity for both encounters, got {first} and {second}")


@case(IDENT, "EnrollEncounters is all or nothing")
async def enroll_batch(probe: Probe) -> None:
    """A batch with one encounter lacking a status is refused whole: the good one is not kept
    (enrolled alone afterwards, it makes a new identity)."""
    good = Person().encounter()
    bad = ident.NewEncounter(
        descriptors=good.descriptors, tenprint=tenprint(), encounter=common.Encounter()
    )
    before = (await probe.call("Info", ident.InfoRequest())).gallery_size
    await probe.refused_with(
        "EnrollEncounters", ident.EnrollEncountersRequest(encounters=[good, bad]), INVALID
    )
    after = (await probe.call("Info", ident.InfoRequest())).gallery_size
    if after != before:
        raise CaseFailed(f"the gallery went from {before} to {after} identities")
    alone = await probe.call("EnrollEncounters", ident.EnrollEncountersRequest(encounters=[good]))
    if len(alone.enrollments) != 1 or not alone.enrollments[0].new_identity:
        raise CaseFailed(f"the refused batch's good encounter was kept: {alone}")


@case(IDENT, "GetIdentity returns the enrolled identity and its encounter")
async def get_identity(probe: Probe) -> None:
    """The identity read back has the FIN, the name and the encounter's status."""
    person = Person()
    fin = await _enrolled(probe, person)
    identity = await probe.call("GetIdentity", ident.GetIdentityRequest(fin=fin))
    statuses = [e.status for e in identity.encounters]
    if identity.fin != fin or identity.descriptors.nam != person.name:
        raise CaseFailed(f"expected FIN {fin} named {person.name}, got {identity}")
    if statuses != [common.IMMIGRATION_STATUS_VISA_OVERSTAY]:
        raise CaseFailed(f"expected one VISA_OVERSTAY encounter, got statuses {statuses}")


@case(IDENT, "A removal recorded by the field office is carried by the next IDR, once")
async def removal_in_next_idr(probe: Probe) -> None:
    """RecordEncounter stores the field office's removal of a known identity (delivered twice
    under two message ids, it is one encounter); the next match IDR lists it."""
    person = Person()
    fin = await _enrolled(probe, person)
    notice = removal_notice(fin=fin)
    await probe.deliver("RecordEncounter", notice)
    again = copy.deepcopy(notice)
    again.envelope.message_id = str(uuid.uuid4())
    await probe.deliver("RecordEncounter", again)
    idr = await _idr_for(probe, _search_for(person.capture()))
    removals = [e for e in idr.idr.encounters if e.encounter_type == "REMOVAL"]
    if not idr.idr.match or idr.idr.fin != fin:
        raise CaseFailed(f"expected a match with FIN {fin}, got {idr.idr}")
    if [(e.encounter_id, e.status) for e in removals] != [
        (notice.encounter.encounter_id, common.IMMIGRATION_STATUS_PREVIOUSLY_REMOVED)
    ]:
        raise CaseFailed(f"expected the one removal {notice.encounter}, got {removals}")


@case(IDENT, "Identify returns the enrolled person as the best candidate")
async def identify(probe: Probe) -> None:
    """1:N identification of another impression: the best candidate is the FIN, a match."""
    person = Person()
    fin = await _enrolled(probe, person)
    reply = await probe.call(
        "Identify", ident.IdentifyRequest(tenprint=person.capture(), candidate_list_size=5)
    )
    if not reply.candidates or reply.candidates[0].fin != fin or not reply.match:
        raise CaseFailed(f"expected FIN {fin} first and a match, got {_brief(reply)}")
    if len(reply.candidates) > 5:
        raise CaseFailed(f"asked for 5 candidates, got {len(reply.candidates)}")


@case(IDENT, "DeleteIdentity removes the identity from look-ups and searches")
async def delete_identity(probe: Probe) -> None:
    """After DeleteIdentity, GetIdentity is NOT_FOUND and a search no longer matches it."""
    person = Person()
    fin = await _enrolled(probe, person)
    deleted = await probe.call("DeleteIdentity", ident.DeleteIdentityRequest(fin=fin))
    if deleted.fin != fin:
        raise CaseFailed(f"DeleteIdentity answered {deleted}")
    await probe.refused_with("GetIdentity", ident.GetIdentityRequest(fin=fin), NOT_FOUND)
    idr = await _idr_for(probe, _search_for(person.capture()))
    if idr.idr.match and idr.idr.fin == fin:
        raise CaseFailed(f"the deleted FIN {fin} still matches")


def _brief(reply: Any) -> str:
    return ", ".join(f"{c.fin} {c.score:.3f}" for c in reply.candidates[:3]) or "no candidates"


refusal_cases(IDENT, envelope_refusals() + content_refusals())
