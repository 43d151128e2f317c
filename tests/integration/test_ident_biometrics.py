"""IDENT's biometric contract on a real server: enrol, identify, delete, refuse bad templates,
and keep the index across restarts (loaded, or rebuilt from the database when its saved copy
is missing or damaged). Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from scfed.common.v1 import common_pb2 as common
from scfed.ident.v1 import ident_pb2 as ident
from scfed.ident.v1 import ident_pb2_grpc as ident_grpc
from services.biometrics.calibration import ImpostorTail
from services.biometrics.engine import INDEX_FILE
from services.biometrics.params import (
    DEFAULT_FPIR,
    LONE_FINGER_MAX,
    REFERENCE_IMPOSTOR_TAIL,
    TEMPLATE_DIM,
)
from services.biometrics.store import MANIFEST_FILE
from services.federation import Agency
from services.ident.provider import IdentProvider
from services.runtime.server import ServiceHost
from services.world.tenprints import SyntheticFingerprints
from tests.federation import DatabaseChoice, make_host

NAM = common.Descriptors(nam="DOE,JOHN", sex="M", dob="19800101")
PEOPLE = 6
Fingers = np.ndarray[Any, np.dtype[np.float64]]


class Ident:
    """One IDENT host with a saved index, restartable, and a stub to it."""

    def __init__(self, db: DatabaseChoice, index_dir: Path, stack: AsyncExitStack) -> None:
        self.db = db
        self.index_dir = index_dir
        self.stack = stack
        self.host: ServiceHost | None = None
        self.stub: Any = None
        # Further settings of the next start (index parameters).
        self.settings: dict[str, Any] = {}

    async def start(self) -> None:
        """Starts (or restarts) the host and connects."""
        self.host = make_host(
            Agency.IDENT, self.db, index_dir=self.index_dir, index_save_every=2, **self.settings
        )
        await self.host.start()
        channel = grpc.aio.insecure_channel(self.host.grpc_address)
        self.stack.push_async_callback(channel.close)
        self.stub = ident_grpc.IdentStub(channel)

    async def stop(self) -> None:
        """Stops the host (it saves its index)."""
        assert self.host is not None
        await self.host.stop()
        self.host = None

    @property
    def last_start(self) -> str:
        """How the running host got its index."""
        assert self.host is not None
        provider = self.host.provider
        assert isinstance(provider, IdentProvider) and provider.gallery is not None
        return provider.gallery.store.last_start


@pytest.fixture
async def ident_host(db: DatabaseChoice, tmp_path: Path) -> AsyncIterator[Ident]:
    """A started IDENT with its index saved under the test's directory."""
    async with AsyncExitStack() as stack:
        host = Ident(db, tmp_path / "ident-index", stack)
        await host.start()

        async def stop() -> None:
            if host.host is not None:
                await host.stop()

        stack.push_async_callback(stop)
        yield host


@pytest.fixture(scope="module")
def model() -> SyntheticFingerprints:
    """The synthetic fingerprint model."""
    return SyntheticFingerprints()


def _capture(
    model: SyntheticFingerprints, fingers: Fingers, seed: int, missing: frozenset[int] = frozenset()
) -> common.Tenprint:
    return model.capture(
        fingers, np.random.default_rng(seed), missing=missing, quality=85, unprintable_rate=0.0
    )


def _encounter(tenprint: common.Tenprint) -> ident.NewEncounter:
    return ident.NewEncounter(
        descriptors=NAM,
        tenprint=tenprint,
        encounter=common.Encounter(
            encounter_type="BORDER", status=common.IMMIGRATION_STATUS_VISA_OVERSTAY
        ),
    )


async def _enrol_people(
    host: Ident, model: SyntheticFingerprints
) -> tuple[list[Fingers], list[str]]:
    people = list(model.new_people(PEOPLE, np.random.default_rng(3)))
    fins = []
    for i, fingers in enumerate(people):
        enrollment = await host.stub.Enroll(
            ident.EnrollRequest(encounter=_encounter(_capture(model, fingers, 100 + i)))
        )
        assert enrollment.new_identity
        fins.append(enrollment.fin)
    return people, fins


async def test_a_new_capture_is_found_a_stranger_is_not_and_a_missing_finger_breaks_nothing(
    ident_host: Ident, model: SyntheticFingerprints
) -> None:
    people, fins = await _enrol_people(ident_host, model)
    found = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, people[0], 7), candidate_list_size=3)
    )
    assert found.match and found.candidates[0].fin == fins[0] and found.candidates[0].match
    assert len(found.candidates) == 3
    assert [c.score for c in found.candidates] == sorted(
        (c.score for c in found.candidates), reverse=True
    )
    assert not any(c.match for c in found.candidates[1:])
    (stranger,) = model.new_people(1, np.random.default_rng(999))
    none = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, stranger, 8), target_fpir=0.001)
    )
    assert not none.match and not any(c.match for c in none.candidates)
    # Two missing fingers: the others still identify; a lone finger cannot match anyone.
    partial = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, people[1], 9, frozenset({2, 7})))
    )
    assert partial.match and partial.candidates[0].fin == fins[1]
    lone = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, people[1], 10, frozenset(range(2, 11))))
    )
    assert not lone.match


async def test_a_known_persons_encounter_attaches_to_their_fin_and_delete_removes_them(
    ident_host: Ident, model: SyntheticFingerprints
) -> None:
    people, fins = await _enrol_people(ident_host, model)
    again = await ident_host.stub.Enroll(
        ident.EnrollRequest(encounter=_encounter(_capture(model, people[2], 55)))
    )
    assert not again.new_identity and again.fin == fins[2] and again.score > 0.464
    identity = await ident_host.stub.GetIdentity(ident.GetIdentityRequest(fin=fins[2]))
    assert len(identity.encounters) == 2
    deleted = await ident_host.stub.DeleteIdentity(ident.DeleteIdentityRequest(fin=fins[2]))
    assert deleted.encounters_deleted == 2
    gone = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, people[2], 56))
    )
    assert not gone.match
    info = await ident_host.stub.Info(ident.InfoRequest())
    assert info.gallery_size == PEOPLE - 1
    assert info.template_dimension == TEMPLATE_DIM and info.fingers == 10
    assert info.index_parameters.library == "hnswlib" and info.index_parameters.m > 0
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ident_host.stub.DeleteIdentity(ident.DeleteIdentityRequest(fin=fins[2]))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def _bad_tenprints(model: SyntheticFingerprints) -> list[tuple[str, common.Tenprint, str]]:
    (fingers,) = model.new_people(1, np.random.default_rng(5))
    good = _capture(model, fingers, 1)

    def edited(change: Callable[[common.Tenprint], None]) -> common.Tenprint:
        copy = common.Tenprint()
        copy.CopyFrom(good)
        change(copy)
        return copy

    def short(t: common.Tenprint) -> None:
        del t.fingers[0].template[1:]

    def nan(t: common.Tenprint) -> None:
        t.fingers[0].template[3] = math.nan

    def inf(t: common.Tenprint) -> None:
        t.fingers[4].template[0] = math.inf

    def all_missing(t: common.Tenprint) -> None:
        for f in t.fingers:
            f.status = common.FINGER_STATUS_AMPUTATED
            del f.template[:]
            f.quality = 0

    def quality(t: common.Tenprint) -> None:
        t.fingers[2].quality = 101

    return [
        ("wrong shape", edited(short), "must have 32 values"),
        ("NaN", edited(nan), "NaN or infinite"),
        ("infinite", edited(inf), "NaN or infinite"),
        ("all fingers missing", edited(all_missing), "no usable finger"),
        ("quality out of range", edited(quality), "quality must be 0..100"),
    ]


async def test_bad_templates_are_refused_with_the_reason_and_nothing_is_stored(
    ident_host: Ident, model: SyntheticFingerprints
) -> None:
    calls: list[Callable[[common.Tenprint], Awaitable[Any]]] = [
        lambda t: ident_host.stub.Enroll(ident.EnrollRequest(encounter=_encounter(t))),
        lambda t: ident_host.stub.Identify(ident.IdentifyRequest(tenprint=t)),
    ]
    for name, tenprint, reason in _bad_tenprints(model):
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(tenprint)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            assert reason in (refused.value.details() or ""), name
    info = await ident_host.stub.Info(ident.InfoRequest())
    assert info.gallery_size == 0
    for request, reason in (
        (ident.IdentifyRequest(candidate_list_size=5), "tenprint is required"),
        (
            ident.IdentifyRequest(tenprint=_bad_tenprints(model)[0][1], target_fpir=1.5),
            "target_fpir",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ident_host.stub.Identify(request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason in (refused.value.details() or "")


async def test_the_index_survives_a_restart_and_is_rebuilt_when_deleted_or_corrupted(
    ident_host: Ident, model: SyntheticFingerprints
) -> None:
    people, fins = await _enrol_people(ident_host, model)

    async def still_identifies() -> None:
        info = await ident_host.stub.Info(ident.InfoRequest())
        assert info.gallery_size == PEOPLE
        for i in (0, PEOPLE - 1):
            answer = await ident_host.stub.Identify(
                ident.IdentifyRequest(tenprint=_capture(model, people[i], 200 + i))
            )
            assert answer.match and answer.candidates[0].fin == fins[i]

    await ident_host.stop()
    await ident_host.start()
    assert ident_host.last_start.startswith("loaded 6")
    await still_identifies()

    await ident_host.stop()
    (ident_host.index_dir / INDEX_FILE).unlink()
    await ident_host.start()
    assert ident_host.last_start.startswith("rebuilt 6 from the database")
    await still_identifies()

    await ident_host.stop()
    index_file = ident_host.index_dir / INDEX_FILE
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index_file.write_bytes(bytes(data))
    await ident_host.start()
    assert "damaged" in ident_host.last_start
    await still_identifies()


async def test_index_parameters_come_from_settings_and_a_new_graph_shape_rebuilds(
    ident_host: Ident, model: SyntheticFingerprints
) -> None:
    await ident_host.stop()
    ident_host.settings = {"index_m": 12, "index_ef": 40, "index_rescore": 20}
    await ident_host.start()
    people, fins = await _enrol_people(ident_host, model)
    p = (await ident_host.stub.Info(ident.InfoRequest())).index_parameters
    assert (p.m, p.ef, p.rescore) == (12, 40, 20)

    # A new search breadth keeps the saved graph; a new M makes it stale.
    await ident_host.stop()
    ident_host.settings = {"index_m": 12, "index_ef": 64, "index_rescore": 20}
    await ident_host.start()
    assert ident_host.last_start.startswith("loaded 6")
    assert (await ident_host.stub.Info(ident.InfoRequest())).index_parameters.ef == 64
    await ident_host.stop()
    ident_host.settings = {"index_m": 16}
    await ident_host.start()
    assert ident_host.last_start.startswith("rebuilt 6") and "stale" in ident_host.last_start
    answer = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, people[1], 301))
    )
    assert answer.match and answer.candidates[0].fin == fins[1]


async def test_the_default_decision_holds_its_target_fpir_at_the_gallerys_size(
    ident_host: Ident, model: SyntheticFingerprints
) -> None:
    reference = ImpostorTail(*REFERENCE_IMPOSTOR_TAIL)

    def expected(fpir: float) -> float:
        # Below 10,000 identities the reference tail; never below what one finger can score.
        return max(LONE_FINGER_MAX, reference.threshold_for(fpir, PEOPLE))

    people, _ = await _enrol_people(ident_host, model)
    info = await ident_host.stub.Info(ident.InfoRequest())
    assert info.default_fpir == DEFAULT_FPIR and info.gallery_size == PEOPLE
    assert info.match_threshold == pytest.approx(expected(DEFAULT_FPIR), abs=1e-6)
    answer = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, people[0], 401))
    )
    assert answer.threshold == pytest.approx(info.match_threshold, abs=1e-6)
    looser = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, people[0], 402), target_fpir=0.01)
    )
    assert looser.threshold == pytest.approx(expected(0.01), abs=1e-6)
    assert looser.threshold < answer.threshold
    # Another target, or a fixed threshold, from the settings.
    await ident_host.stop()
    ident_host.settings = {"target_fpir": 0.01}
    await ident_host.start()
    info = await ident_host.stub.Info(ident.InfoRequest())
    assert info.default_fpir == 0.01 and info.match_threshold == pytest.approx(looser.threshold)
    await ident_host.stop()
    ident_host.settings = {"match_threshold": 0.5}
    await ident_host.start()
    assert (await ident_host.stub.Info(ident.InfoRequest())).match_threshold == 0.5


def test_index_settings_out_of_range_are_refused() -> None:
    from pydantic import ValidationError

    from services.ident.config import IdentSettings

    with pytest.raises(ValidationError, match="index_m"):
        IdentSettings(index_m=1)
    settings = IdentSettings(index_ef=8, index_rescore=16)
    # hnswlib searches with at least k, so ef is raised to the proposals rescored.
    assert (settings.index_params().ef, settings.index_params().rescore) == (16, 16)


async def test_changes_after_the_last_save_are_replayed_and_an_index_ahead_is_rebuilt(
    ident_host: Ident, model: SyntheticFingerprints
) -> None:
    await _enrol_people(ident_host, model)
    (late,) = model.new_people(1, np.random.default_rng(77))
    await ident_host.stub.Enroll(
        ident.EnrollRequest(encounter=_encounter(_capture(model, late, 1)))
    )
    # A crash: the service stops without saving, so the saved index lacks the last enrolment.
    assert ident_host.host is not None
    provider = ident_host.host.provider
    assert isinstance(provider, IdentProvider) and provider.gallery is not None

    async def no_save(*args: Any, **kwargs: Any) -> None:
        return None

    provider.gallery.store.save = no_save  # type: ignore[method-assign]
    await ident_host.stop()
    await ident_host.start()
    assert ident_host.last_start == f"loaded {PEOPLE} and replayed 1 changes"
    answer = await ident_host.stub.Identify(
        ident.IdentifyRequest(tenprint=_capture(model, late, 2))
    )
    assert answer.match

    await ident_host.stop()
    manifest_path = ident_host.index_dir / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["watermark"] = 10**9
    manifest_path.write_text(json.dumps(manifest))
    await ident_host.start()
    assert "ahead of the database" in ident_host.last_start
    info = await ident_host.stub.Info(ident.InfoRequest())
    assert info.gallery_size == PEOPLE + 1
