"""The gRPC AdminService every service serves: the same control as the HTTP routes (reset,
clock step and pace, snapshots), each refusal with its documented status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from scfed.admin.v1 import admin_pb2 as pb
from scfed.admin.v1 import admin_pb2_grpc as pb_grpc
from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from services.federation import Agency
from services.runtime.clock import AcceleratedClock, ManualClock
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.scenario import scenario_in

START = datetime(2009, 10, 1, 23, 0, tzinfo=UTC)


@pytest.fixture
async def fed(db: DatabaseChoice) -> AsyncIterator[tuple[Federation, ManualClock]]:
    """LESC on a manual clock, the field office accelerated, the rest on the real clock."""
    clock = ManualClock(START)
    async with running_federation(
        db, lesc={"clock": clock}, ice_field={"clock": AcceleratedClock(10.0)}
    ) as federation:
        yield federation, clock


async def _call(fed: Federation, agency: Agency, method: str, request: object) -> object:
    async with grpc.aio.insecure_channel(fed.addresses()[agency]) as channel:
        return await getattr(pb_grpc.AdminServiceStub(channel), method)(request)


async def _refused(
    fed: Federation, agency: Agency, method: str, request: object
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(fed, agency, method, request)
    return caught.value


async def test_advance_clock_steps_a_manual_clock_by_seconds_or_duration(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, clock = fed
    reply = await _call(federation, Agency.LESC, "AdvanceClock", pb.AdvanceClockRequest(seconds=90))
    assert isinstance(reply, pb.AdvanceClockResponse)
    assert reply.clock == pb.ClockView(
        service="lesc", clock="manual", now=(START + timedelta(seconds=90)).isoformat()
    )
    await _call(federation, Agency.LESC, "AdvanceClock", pb.AdvanceClockRequest(duration="P1D"))
    assert clock.now() == START + timedelta(days=1, seconds=90)


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (pb.AdvanceClockRequest(), "exactly one"),
        (pb.AdvanceClockRequest(seconds=-1), "only moves forward"),
        (pb.AdvanceClockRequest(seconds=1e12), "longer than the most allowed"),
        (pb.AdvanceClockRequest(duration="P1Y"), "years and months"),
        (pb.AdvanceClockRequest(duration="soon"), "bad duration"),
    ],
    ids=["none", "negative", "too-long", "years", "unparsed"],
)
async def test_advance_clock_refuses_a_bad_step_with_invalid_argument(
    fed: tuple[Federation, ManualClock], request_: pb.AdvanceClockRequest, reason: str
) -> None:
    federation, clock = fed
    error = await _refused(federation, Agency.LESC, "AdvanceClock", request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (error.details() or "")
    assert clock.now() == START


async def test_advance_clock_is_a_failed_precondition_on_a_clock_that_is_not_manual(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, _ = fed
    step = pb.AdvanceClockRequest(seconds=1)
    error = await _refused(federation, Agency.SIB, "AdvanceClock", step)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "real clock" in (error.details() or "")
    assert "SCFED_SIB_CLOCK=manual" in (error.details() or "")


async def test_set_clock_repaces_an_accelerated_clock(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, _ = fed
    reply = await _call(
        federation, Agency.ICE_FIELD, "SetClock", pb.SetClockRequest(spec="accelerated:600")
    )
    assert isinstance(reply, pb.SetClockResponse) and reply.clock.clock == "accelerated:600"
    clock = federation.hosts[Agency.ICE_FIELD].runtime.clock
    assert isinstance(clock, AcceleratedClock) and clock.factor == 600


@pytest.mark.parametrize(
    ("agency", "spec", "code", "reason"),
    [
        (Agency.ICE_FIELD, "accelerated:-3", grpc.StatusCode.INVALID_ARGUMENT, "positive"),
        (Agency.ICE_FIELD, "warp:9", grpc.StatusCode.INVALID_ARGUMENT, "bad clock spec"),
        (Agency.ICE_FIELD, "manual", grpc.StatusCode.FAILED_PRECONDITION, "only its factor"),
        (Agency.LESC, "accelerated:60", grpc.StatusCode.FAILED_PRECONDITION, "manual clock"),
    ],
)
async def test_set_clock_refuses_what_cannot_change_at_runtime(
    fed: tuple[Federation, ManualClock],
    agency: Agency,
    spec: str,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    federation, _ = fed
    error = await _refused(federation, agency, "SetClock", pb.SetClockRequest(spec=spec))
    assert error.code() == code
    assert reason in (error.details() or "")


async def _gallery_size(fed: Federation) -> int:
    async with grpc.aio.insecure_channel(fed.addresses()[Agency.IDENT]) as channel:
        info = await ident_pb2_grpc.IdentStub(channel).Info(ident_pb2.InfoRequest())
    return int(info.gallery_size)


async def test_reset_and_snapshots_over_grpc_bring_ident_back(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, _ = fed
    async with scenario_in(federation) as s:
        await s.in_ident(s.subject(), "ENTRY_WITHOUT_INSPECTION")
    size = await _gallery_size(federation)
    assert size > 0

    saved = await _call(federation, Agency.IDENT, "SaveSnapshot", pb.SaveSnapshotRequest())
    assert isinstance(saved, pb.SaveSnapshotResponse)
    assert saved.rows["identities"] == size and saved.seconds >= 0
    document = json.loads(saved.document)
    assert document["service"] == "ident" and "clock_epoch" not in document["tables"]

    reset = await _call(federation, Agency.IDENT, "Reset", pb.ResetRequest())
    assert isinstance(reset, pb.ResetResponse)
    assert reset.service == "ident" and reset.deleted["identities"] == size
    assert await _gallery_size(federation) == 0

    loaded = await _call(
        federation, Agency.IDENT, "LoadSnapshot", pb.LoadSnapshotRequest(document=saved.document)
    )
    assert isinstance(loaded, pb.LoadSnapshotResponse)
    assert loaded.service == "ident" and dict(loaded.rows) == dict(saved.rows)
    assert await _gallery_size(federation) == size


@pytest.mark.parametrize(
    ("agency", "document", "reason"),
    [
        (Agency.LESC, b"{not json", "JSON document"),
        (Agency.LESC, b'{"format": "tarball"}', "not a snapshot"),
        # Over gRPC's default 4 MiB: the service takes it, and reads it.
        (Agency.LESC, b'{"pad": "' + b"x" * 5 * 2**20 + b'"}', "not a snapshot"),
        (Agency.SIB, None, "not 'sib'"),
    ],
    ids=["not-json", "not-a-snapshot", "over-4-mib", "other-service"],
)
async def test_load_snapshot_refuses_a_bad_document_with_invalid_argument(
    fed: tuple[Federation, ManualClock], agency: Agency, document: bytes | None, reason: str
) -> None:
    federation, _ = fed
    if document is None:
        saved = await _call(federation, Agency.LESC, "SaveSnapshot", pb.SaveSnapshotRequest())
        assert isinstance(saved, pb.SaveSnapshotResponse)
        document = saved.document
    error = await _refused(
        federation, agency, "LoadSnapshot", pb.LoadSnapshotRequest(document=document)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (error.details() or "")
