"""Whatever the bytes of a gRPC request, every service answers with a status that says what is
wrong: control characters in strings and undecodable bytes are INVALID_ARGUMENT naming the
problem, a huge refused value is quoted by a short prefix, and a request over the message size
limit is RESOURCE_EXHAUSTED. Each runs on SQLite: the refusals happen before any database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from scfed.admin.v1 import admin_pb2 as admin
from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.ident.v1 import ident_pb2 as ident
from scfed.sib.v1 import sib_pb2 as sib
from services.conformance.messages import CA, envelope, iar
from services.federation import Agency
from services.runtime.edge import MAX_DETAILS
from tests.federation import DatabaseChoice, Federation, make_host, running_federation
from tests.grpc_fuzz import service_descriptors

INVALID = grpc.StatusCode.INVALID_ARGUMENT
JOURNAL = "/scfed.common.v1.Journal/GetJournal"


@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    """The five services on SQLite."""
    async with running_federation(DatabaseChoice(kind="sqlite", tmp=tmp_path)) as federation:
        yield federation


async def _status(address: str, method: str, request: Message | bytes) -> tuple[str, str]:
    """The status name and details a raw call of `method` with `request` ends with."""
    data = request if isinstance(request, bytes) else request.SerializeToString()
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await channel.unary_unary(method)(data, timeout=10)
        except grpc.aio.AioRpcError as err:
            return err.code().name, err.details() or ""
    return "OK", ""


def _service_methods(fed: Federation) -> list[tuple[str, str]]:
    """(address, full method path) of every unary RPC every running service registers."""
    return [
        (fed.hosts[name].grpc_address, f"/{service.full_name}/{method.name}")
        for name in fed.hosts
        for service in service_descriptors(name)
        for method in service.methods
        if not method.client_streaming and not method.server_streaming
    ]


# (service, method, request with a NUL, the field path the refusal names)
NUL_REQUESTS: list[tuple[str, str, Message, str]] = [
    (
        Agency.IDENT,
        "/scfed.ident.v1.Ident/GetIdentity",
        ident.GetIdentityRequest(fin="F\x00"),
        "fin",
    ),
    (
        Agency.IDENT,
        "/scfed.ident.v1.Ident/DeleteIdentity",
        ident.DeleteIdentityRequest(fin="\x00"),
        "fin",
    ),
    (
        Agency.CJIS_IAFIS,
        "/scfed.cjis_iafis.v1.CjisIafis/GetCriminalHistory",
        cjis.GetCriminalHistoryRequest(fbi_number="1234567\x00B"),
        "fbi_number",
    ),
    (
        Agency.SIB,
        "/scfed.sib.v1.StateIdentificationBureau/RegisterAgency",
        sib.Agency(ori=CA, name="Sacramento\x00"),
        "name",
    ),
    (
        Agency.CJIS_IAFIS,
        "/scfed.cjis_iafis.v1.CjisIafis/DeliverIar",
        cjis.IarMessage(envelope=envelope("IAR", tcr="TCR\x00"), iar=iar()),
        "envelope.tcr",
    ),
    (
        Agency.ICE_FIELD,
        "/scfed.ice_field.v1.IceField/RegisterFieldOffice",
        ice.FieldOffice(ori="ORICE0100", name="Portland", states=["OR", "W\x00"]),
        "states[1]",
    ),
    (Agency.LESC, JOURNAL, common.JournalQuery(tcn="T\x00"), "tcn"),
    (
        Agency.SIB,
        "/scfed.admin.v1.AdminService/SetClock",
        admin.SetClockRequest(spec="real\x00"),
        "spec",
    ),
]


async def test_a_nul_in_any_string_field_is_invalid_argument_naming_the_field(
    fed: Federation,
) -> None:
    failures = []
    for service, method, request, path in NUL_REQUESTS:
        code, details = await _status(fed.hosts[service].grpc_address, method, request)
        if code != "INVALID_ARGUMENT" or f"{path} must not contain control characters" not in (
            details
        ):
            failures.append(f"{service} {method}: {code} {details!r}")
    assert failures == []


async def test_undecodable_bytes_on_streaming_methods_are_invalid_argument(
    fed: Federation,
) -> None:
    address = fed.hosts[Agency.LESC].grpc_address
    async with grpc.aio.insecure_channel(address) as channel:
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch")(b"\xff\xff", timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in watch:
                pass
        assert caught.value.code() == INVALID, caught.value

        async def garbage() -> AsyncIterator[bytes]:
            yield b"\xff\xff"

        reflect = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        info = channel.stream_stream(reflect)(garbage(), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in info:
                pass
        assert caught.value.code() == INVALID, caught.value
        assert "not a valid message" in (caught.value.details() or "")


async def test_a_timestamp_out_of_range_is_invalid_argument_not_unknown(
    fed: Federation,
) -> None:
    # Found by the fuzzer: nanos out of range made the domain's ToDatetime raise ValueError.
    notice = ice.ReleaseNotice(envelope=envelope("RELEASE"), detainer_id="I247-EDGE")
    notice.release_at.nanos = -1
    code, details = await _status(
        fed.hosts[Agency.ICE_FIELD].grpc_address,
        "/scfed.ice_field.v1.IceField/NotifyRelease",
        notice,
    )
    assert code == "INVALID_ARGUMENT", details
    assert "release_at is not a valid timestamp" in details
    encounter = ident.NewEncounter(encounter=common.Encounter())
    encounter.encounter.encountered_at.nanos = -1_383_298_786
    code, details = await _status(
        fed.hosts[Agency.IDENT].grpc_address,
        "/scfed.ident.v1.Ident/Enroll",
        ident.EnrollRequest(encounter=encounter),
    )
    assert code == "INVALID_ARGUMENT", details
    assert "encounter.encounter.encountered_at is not a valid timestamp" in details


async def test_a_string_of_bad_utf8_is_invalid_argument(fed: Federation) -> None:
    code, details = await _status(
        fed.hosts[Agency.IDENT].grpc_address,
        "/scfed.ident.v1.Ident/GetIdentity",
        b"\x0a\x03\xff\xfe\xfd",
    )
    assert code == "INVALID_ARGUMENT" and "bad UTF-8" in details, details


async def test_control_characters_are_refused_in_identifiers_and_tab_passes_in_text(
    fed: Federation,
) -> None:
    address = fed.hosts[Agency.IDENT].grpc_address
    code, details = await _status(
        address, "/scfed.ident.v1.Ident/GetIdentity", ident.GetIdentityRequest(fin="F\n")
    )
    assert (code, "U+000A") == ("INVALID_ARGUMENT", details[details.index("U+") :][:6])
    code, details = await _status(
        fed.hosts[Agency.SIB].grpc_address,
        "/scfed.sib.v1.StateIdentificationBureau/RegisterAgency",
        sib.Agency(ori=CA, name="Sacramento\tCounty"),
    )
    # The tab passes; the request is then refused for what the SIB checks itself.
    assert code != "INVALID_ARGUMENT" or "control characters" not in details, details


async def test_undecodable_request_bytes_are_invalid_argument_on_every_method(
    fed: Federation,
) -> None:
    failures = []
    methods = _service_methods(fed)
    assert len(methods) > 30
    for address, method in methods:
        # A truncated varint, and a field 1 that says five bytes and has two.
        for data in (b"\xff\xff\xff", b"\x0a\x05ab"):
            code, details = await _status(address, method, data)
            if code != "INVALID_ARGUMENT" or "not a valid message" not in details:
                failures.append(f"{method} {data!r}: {code} {details!r}")
    assert failures == []


async def test_a_huge_refused_value_is_quoted_by_a_prefix_within_the_details_limit(
    fed: Federation,
) -> None:
    huge = "X" * (3 * 2**20)
    for service, method, request in (
        (Agency.IDENT, "/scfed.ident.v1.Ident/GetIdentity", ident.GetIdentityRequest(fin=huge)),
        (
            Agency.CJIS_IAFIS,
            "/scfed.cjis_iafis.v1.CjisIafis/GetCriminalHistory",
            cjis.GetCriminalHistoryRequest(fbi_number=huge),
        ),
        (Agency.SIB, "/scfed.admin.v1.AdminService/SetClock", admin.SetClockRequest(spec=huge)),
        (
            Agency.SIB,
            "/scfed.sib.v1.StateIdentificationBureau/RegisterAgency",
            sib.Agency(ori=huge, name="N"),
        ),
        (
            Agency.IDENT,
            "/scfed.ident.v1.Ident/GetIdentity",
            ident.GetIdentityRequest(fin=huge + "\0"),
        ),
    ):
        code, details = await _status(fed.hosts[service].grpc_address, method, request)
        assert code in {"NOT_FOUND", "INVALID_ARGUMENT", "FAILED_PRECONDITION"}, (
            f"{method}: {code} {details[:200]!r}"
        )
        assert 0 < len(details) <= MAX_DETAILS, f"{method}: {len(details)} characters"
        assert "XXXX" in details and "characters)" in details, details


async def test_a_request_over_the_message_size_limit_is_resource_exhausted(
    tmp_path: Path,
) -> None:
    host = make_host(
        Agency.IDENT, DatabaseChoice(kind="sqlite", tmp=tmp_path), grpc_max_message_mb=4
    )
    await host.start()
    try:
        method = "/scfed.ident.v1.Ident/GetIdentity"
        code, details = await _status(
            host.grpc_address, method, ident.GetIdentityRequest(fin="F" * (4 * 2**20 + 1))
        )
        assert code == "RESOURCE_EXHAUSTED"
        assert "larger than max" in details, details
        # Just under the limit, the request is read and answered.
        code, _ = await _status(
            host.grpc_address, method, ident.GetIdentityRequest(fin="F" * (4 * 2**20 - 64))
        )
        assert code == "NOT_FOUND"
    finally:
        await host.stop()
