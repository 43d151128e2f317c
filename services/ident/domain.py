"""IDENT domain: enrol encounters under FINs, search tenprints 1:N, answer with an IDR."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ident.v1 import ident_pb2 as pb

from ..biometrics.params import COARSE_PER_FINGER, FINGERS, MODEL_VERSION
from ..biometrics.scoring import Candidate, match_score
from ..biometrics.store import StoredGallery
from ..biometrics.template import TenprintTemplate, merge_templates, tenprint_from_proto
from ..federation import Agency
from ..runtime import audit, message_routes
from ..runtime.clock import Clock
from ..runtime.delivery import Outbox
from ..runtime.envelope import MessageType, make_envelope
from ..runtime.errors import AlreadyExists, InvalidArgument, NotFound, shown
from ..runtime.validation import check_descriptors
from .models import EncounterRecord, IdentityRecord, SearchRecord

DEFAULT_CANDIDATES = 10
MAX_CANDIDATES = 100


def new_fin() -> str:
    """A synthetic fingerprint identification number."""
    return "FIN" + uuid.uuid4().hex[:12].upper()


@dataclass(kw_only=True)
class IdentGallery(StoredGallery):
    """IDENT's identities, their encounters and the biometric index over them."""

    gallery_columns = (IdentityRecord.fin, IdentityRecord.tenprint)

    clock: Clock
    outbox: Outbox

    def info(self) -> pb.InfoResponse:
        """Template layout, model, gallery size and index parameters."""
        p = self.engine.params
        return pb.InfoResponse(
            template_dimension=self.engine.dim,
            fingers=FINGERS,
            model_version=MODEL_VERSION,
            gallery_size=len(self.engine),
            match_threshold=self.engine.threshold,
            index=self.engine.describe(),
            index_parameters=pb.IndexParameters(
                library="hnswlib",
                m=p.m,
                ef_construction=p.ef_construction,
                ef=p.ef,
                rescore=p.rescore,
                coarse_per_finger=COARSE_PER_FINGER,
            ),
            default_fpir=self.engine.target_fpir,
            template_layout=(
                f"float32[{FINGERS}][{self.engine.dim}], unit length per present finger; "
                "an absent finger has no template"
            ),
        )

    def identify(self, request: pb.IdentifyRequest) -> pb.IdentifyResponse:
        """1:N identification: a ranked candidate list and threshold decisions."""
        if not request.HasField("tenprint"):
            raise InvalidArgument("tenprint is required")
        size = request.candidate_list_size or DEFAULT_CANDIDATES
        if size > MAX_CANDIDATES:
            raise InvalidArgument(
                f"candidate_list_size must be at most {MAX_CANDIDATES}, got {size}"
            )
        which = request.WhichOneof("decision")
        if which == "target_fpir":
            if not 0 < request.target_fpir < 1:
                raise InvalidArgument(f"target_fpir must be in (0, 1), got {request.target_fpir}")
            threshold = self.engine.threshold_for(request.target_fpir)
        elif which == "threshold":
            if not 0 <= request.threshold <= 1:
                raise InvalidArgument(f"threshold must be in [0, 1], got {request.threshold}")
            threshold = request.threshold
        else:
            threshold = self.engine.threshold
        probe = tenprint_from_proto(request.tenprint, dim=self.engine.dim)
        with self.timed_search("Identify"):
            found = self.engine.search(probe, k=size)
        candidates = [
            pb.Candidate(fin=c.key, score=c.score, match=c.score >= threshold) for c in found
        ]
        return pb.IdentifyResponse(
            candidates=candidates,
            threshold=threshold,
            match=bool(candidates) and candidates[0].match,
        )

    async def delete_identity(self, session: AsyncSession, fin: str) -> pb.DeleteIdentityResponse:
        """Deletes an identity, its encounters and its prints (index updated on commit)."""
        if not fin:
            raise InvalidArgument("fin is required")
        row = await session.get(IdentityRecord, fin)
        if row is None:
            raise NotFound(f"no identity with FIN {shown(fin)}")
        result = await session.execute(delete(EncounterRecord).where(EncounterRecord.fin == fin))
        await session.delete(row)
        await self.store.record_delete(session, fin)
        self.enrollments.stage_delete(self.engine, fin)
        return pb.DeleteIdentityResponse(
            fin=fin, encounters_deleted=int(getattr(result, "rowcount", 0) or 0)
        )

    async def _encounters(self, session: AsyncSession, fin: str) -> list[common_pb2.Encounter]:
        rows = await session.scalars(
            select(EncounterRecord)
            .where(EncounterRecord.fin == fin)
            .order_by(EncounterRecord.encountered_at, EncounterRecord.encounter_id)
        )
        result = []
        for row in rows:
            at = Timestamp()
            at.FromDatetime(row.encountered_at)
            result.append(
                common_pb2.Encounter(
                    encounter_id=row.encounter_id,
                    encounter_type=row.encounter_type,
                    encountered_at=at,
                    status=row.status,  # type: ignore[arg-type]
                )
            )
        return result

    async def identity(self, session: AsyncSession, fin: str) -> pb.Identity:
        """One identity with its encounters."""
        if not fin:
            raise InvalidArgument("fin is required")
        row = await session.get(IdentityRecord, fin)
        if row is None:
            raise NotFound(f"no identity with FIN {shown(fin)}")
        return pb.Identity(
            fin=row.fin,
            a_number=row.a_number,
            fbi_number=row.fbi_number,
            descriptors=common_pb2.Descriptors(nam=row.nam, dob=row.dob, sex=row.sex, pob=row.pob),
            encounters=await self._encounters(session, fin),
        )

    async def enroll(
        self, session: AsyncSession, encounters: Sequence[pb.NewEncounter]
    ) -> list[pb.Enrollment]:
        """Enrols encounters: attached to a matching identity's FIN, or under a new FIN.

        An encounter id already on file is enrolled once: the same encounter again (same type
        and status) answers its stored enrollment, so seeding a world twice changes nothing;
        another encounter under that id is ALREADY_EXISTS, and an id twice in one request is
        INVALID_ARGUMENT."""
        results: list[pb.Enrollment] = []
        ids_in_request: set[str] = set()
        for i, item in enumerate(encounters):
            where = f"encounters[{i}]"
            check_descriptors(item.descriptors, field=f"{where}.descriptors")
            template = tenprint_from_proto(
                item.tenprint, dim=self.engine.dim, field=f"{where}.tenprint"
            )
            if item.encounter.status == common_pb2.IMMIGRATION_STATUS_UNSPECIFIED:
                raise InvalidArgument(f"{where}.encounter.status is required")
            if item.encounter.encounter_id:
                if item.encounter.encounter_id in ids_in_request:
                    raise InvalidArgument(
                        f"{where}.encounter.encounter_id {item.encounter.encounter_id!r} "
                        "repeats an earlier encounter of this request"
                    )
                ids_in_request.add(item.encounter.encounter_id)
                stored = await session.get(EncounterRecord, item.encounter.encounter_id)
                if stored is not None:
                    results.append(_enrolled_before(stored, item.encounter, where))
                    continue
            found = [c for c in (self._staged_mate(template), self.engine.identify(template)) if c]
            mate = max(found, key=lambda c: c.score, default=None)
            fin = mate.key if mate is not None else None
            new_identity = fin is None
            if fin is None:
                fin = new_fin()
                d = item.descriptors
                session.add(
                    IdentityRecord(
                        fin=fin,
                        a_number=item.a_number,
                        nam=d.nam,
                        dob=d.dob,
                        sex=d.sex,
                        pob=d.pob,
                        tenprint=template.to_bytes(),
                        created_at=self.clock.now(),
                    )
                )
                await session.flush()  # the identity row must exist before its encounters
                await self.store.record(session, fin, template)
                self.enrollments.stage(self.engine, fin, template)
            else:
                row = await session.get(IdentityRecord, fin)
                if row is None:
                    raise NotFound(f"index names FIN {fin} but it is not on file")
                if item.a_number and not row.a_number:
                    row.a_number = item.a_number
                # The identity keeps the better impression of each finger.
                merged = merge_templates(
                    TenprintTemplate.from_bytes(row.tenprint, self.engine.dim), template
                )
                row.tenprint = merged.to_bytes()
                await self.store.record(session, fin, merged)
                self.enrollments.stage(self.engine, fin, merged)
            encounter_id = item.encounter.encounter_id or "ENC" + uuid.uuid4().hex[:12].upper()
            at = (
                item.encounter.encountered_at.ToDatetime(tzinfo=self.clock.now().tzinfo)
                if item.encounter.HasField("encountered_at")
                else self.clock.now()
            )
            session.add(
                EncounterRecord(
                    encounter_id=encounter_id,
                    fin=fin,
                    encounter_type=item.encounter.encounter_type or "UNSPECIFIED",
                    status=int(item.encounter.status),
                    encountered_at=at,
                )
            )
            results.append(
                pb.Enrollment(
                    fin=fin,
                    new_identity=new_identity,
                    encounter_id=encounter_id,
                    score=0.0 if mate is None else mate.score,
                )
            )
        return results

    def _staged_mate(self, probe: TenprintTemplate) -> Candidate | None:
        """A mate among identities enrolled earlier in the same, not yet indexed, batch."""
        best = max(
            (
                Candidate(fin, match_score(probe, t))
                for fin, t in self.enrollments.staged(self.engine)
            ),
            key=lambda c: c.score,
            default=None,
        )
        if best is not None and best.score >= self.engine.threshold:
            return best
        return None

    async def record_encounter(self, session: AsyncSession, notice: pb.EncounterNotice) -> str:
        """Records an encounter another agency had with a known identity (a removal), so the
        next IDR of that person carries it; the same encounter id again is stored once."""
        if not notice.fin:
            raise InvalidArgument("fin is required")
        if not notice.HasField("encounter"):
            raise InvalidArgument("encounter is required")
        encounter = notice.encounter
        for name in ("encounter_id", "encounter_type"):
            if not getattr(encounter, name):
                raise InvalidArgument(f"encounter.{name} is required")
        if not encounter.HasField("encountered_at"):
            raise InvalidArgument("encounter.encountered_at is required")
        if encounter.status == common_pb2.IMMIGRATION_STATUS_UNSPECIFIED:
            raise InvalidArgument("encounter.status is required")
        if len(encounter.encounter_id) > 40 or len(encounter.encounter_type) > 40:
            raise InvalidArgument("encounter_id and encounter_type are at most 40 characters")
        if await session.get(IdentityRecord, notice.fin) is None:
            raise NotFound(f"no identity with FIN {shown(notice.fin)}")
        stored = await session.get(EncounterRecord, encounter.encounter_id)
        if stored is not None:
            if stored.fin != notice.fin:
                raise AlreadyExists(
                    f"encounter {encounter.encounter_id!r} is on file for another identity"
                )
            _enrolled_before(stored, encounter, "encounter")
            return f"{encounter.encounter_type} {encounter.encounter_id} already on file"
        session.add(
            EncounterRecord(
                encounter_id=encounter.encounter_id,
                fin=notice.fin,
                encounter_type=encounter.encounter_type,
                status=int(encounter.status),
                encountered_at=encounter.encountered_at.ToDatetime(tzinfo=UTC),
            )
        )
        return f"{encounter.encounter_type} {encounter.encounter_id} recorded for {notice.fin}"

    async def search_counts(self, session: AsyncSession) -> dict[str, int]:
        """How many searches were answered, and how many found a mate."""
        searches = await session.scalar(select(func.count()).select_from(SearchRecord))
        matches = await session.scalar(
            select(func.count()).select_from(SearchRecord).where(SearchRecord.matched_fin != "")
        )
        return {"searches": int(searches or 0), "matches": int(matches or 0)}

    async def search(self, session: AsyncSession, request: pb.IdentSearch, *, who: str) -> str:
        """Interoperability search: the IDR (match or no match) goes back to CJIS; the search
        is audited as `who`'s, for a booking."""
        if not request.HasField("tenprint"):
            raise InvalidArgument("tenprint is required")
        probe = tenprint_from_proto(request.tenprint, dim=self.engine.dim)
        tcr = request.envelope.tcr or request.envelope.tcn
        with self.timed_search("Search"):
            mate = self.engine.identify(probe)
        idr = common_pb2.Idr(match=False)
        if mate is not None:
            row = await session.get(IdentityRecord, mate.key)
            if row is None:
                raise NotFound(f"index names FIN {mate.key} but it is not on file")
            if request.fbi_number and not row.fbi_number:
                row.fbi_number = request.fbi_number
            idr = common_pb2.Idr(
                match=True,
                fin=row.fin,
                a_number=row.a_number,
                descriptors=common_pb2.Descriptors(
                    nam=row.nam, dob=row.dob, sex=row.sex, pob=row.pob
                ),
                encounters=await self._encounters(session, row.fin),
                score=mate.score,
            )
        audit.record(
            session,
            who=who,
            rpc="Search",
            tcn=tcr,
            purpose=audit.Purpose.BOOKING,
            outcome=audit.AuditOutcome.MATCH if idr.match else audit.AuditOutcome.NO_MATCH,
            candidates=int(idr.match),
            detail=f"fin {idr.fin} score {idr.score:.3f}" if idr.match else "",
        )
        existing = await session.get(SearchRecord, tcr)
        if existing is None:
            session.add(
                SearchRecord(
                    tcn=tcr,
                    matched_fin=idr.fin,
                    score=idr.score,
                    searched_at=self.clock.now(),
                )
            )
        message = cjis_iafis_pb2.IdrMessage(
            envelope=make_envelope(
                clock=self.clock,
                sender=Agency.IDENT,
                tot=MessageType.IDR,
                tcr=tcr,
                ori=request.envelope.ori,
                dai=Agency.CJIS_IAFIS.ori,
                tcn_prefix="IDT",
            ),
            idr=idr,
        )
        self.outbox.add(session, route=message_routes.CJIS_DELIVER_IDR, message=message)
        return f"match {idr.fin} score {idr.score:.3f}" if idr.match else "no match"


def _enrolled_before(
    stored: EncounterRecord, encounter: common_pb2.Encounter, where: str
) -> pb.Enrollment:
    """The enrollment of an encounter already on file, when `encounter` is that one again;
    ALREADY_EXISTS naming the id when it is another under the same id."""
    if (stored.encounter_type, stored.status) != (
        encounter.encounter_type or "UNSPECIFIED",
        int(encounter.status),
    ):
        raise AlreadyExists(
            f"{where}.encounter.encounter_id {stored.encounter_id!r} is already on file "
            "as another encounter"
        )
    return pb.Enrollment(
        fin=stored.fin, new_identity=False, encounter_id=stored.encounter_id, score=0.0
    )
