"""Snapshots over the HTTP edges: a seeded world with its bookings saved, reset and loaded back
gives the same answers, and a new booking still goes end to end; a document a service cannot
take is refused with 422 naming the problem, and changes nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import grpc
import httpx
import pytest

from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from services.cli.demo import submit_bookings
from services.federation import Agency
from services.runtime.snapshot import FORMAT_VERSION
from services.world.seeding import seed_world
from services.world.world import build_world
from tests.federation import Federation
from tests.integration.test_control import _gallery_sizes, _row_counts
from tests.scenario import scenario_in
from tests.support import final_booking, response_kinds, wait_outboxes_idle

CA = "CA0190000"


async def _ident_info(fed: Federation) -> ident_pb2.InfoResponse:
    async with grpc.aio.insecure_channel(fed.addresses()[Agency.IDENT]) as channel:
        info: ident_pb2.InfoResponse = await ident_pb2_grpc.IdentStub(channel).Info(
            ident_pb2.InfoRequest()
        )
    return info


async def _identify(fed: Federation, tenprint: Any) -> ident_pb2.IdentifyResponse:
    async with grpc.aio.insecure_channel(fed.addresses()[Agency.IDENT]) as channel:
        found: ident_pb2.IdentifyResponse = await ident_pb2_grpc.IdentStub(channel).Identify(
            ident_pb2.IdentifyRequest(tenprint=tenprint, candidate_list_size=3)
        )
    return found


async def _answers(fed: Federation, client: httpx.AsyncClient, tcns: list[str]) -> dict[str, Any]:
    """What the federation says: each booking's status and responses, every service's journal
    counts and rows per table (the audit trail's aside), the biometric galleries' sizes."""
    bookings = {}
    for tcn in tcns:
        view = (await client.get(f"{fed.sib_url}/v1/bookings/{tcn}")).json()
        bookings[tcn] = (view["status"], sorted(response_kinds(view)))
    journals = {
        agency: (await client.get(f"{host.http_url}/v1/journal-counts")).json()
        for agency, host in fed.hosts.items()
    }
    # The audit trail is no part of a snapshot, and grows with every read (test_audit.py).
    rows = {
        agency: {t: n for t, n in (await _row_counts(host)).items() if t != "audit"}
        for agency, host in fed.hosts.items()
    }
    return {
        "bookings": bookings,
        "summary": (await client.get(f"{fed.sib_url}/v1/bookings-summary")).json(),
        "journals": journals,
        "rows": rows,
        "galleries": _gallery_sizes(fed),
        "ident_gallery": (await _ident_info(fed)).gallery_size,
    }


async def test_a_loaded_snapshot_gives_the_same_answers_and_takes_new_bookings(
    federation: Federation,
) -> None:
    world = build_world(3, 12)
    await seed_world(world, federation.addresses())
    async with httpx.AsyncClient(timeout=60) as client:
        sib = httpx.AsyncClient(base_url=federation.sib_url, timeout=60)
        async with sib:
            tcns, refused = await submit_bookings(sib, world, 4, lambda *_: None)
            assert refused == [] and len(tcns) == 12
            for tcn in tcns:
                await final_booking(sib, tcn)
        await wait_outboxes_idle(h.http_url for h in federation.hosts.values())
        before = await _answers(federation, client, tcns)
        # Someone IDENT knows, searched 1:N with a fresh capture.
        person = next(p for p in world.persons if p.immigration is not None)
        found = await _identify(federation, world.enrollment_capture(person))
        assert found.match

        saved = {}
        for agency, host in federation.hosts.items():
            r = await client.get(f"{host.http_url}/v1/admin/snapshot")
            assert r.status_code == 200, r.text
            saved[agency] = r.content
            document = json.loads(r.content)
            assert document["format"] == "scfed-snapshot"
            assert document["version"] == FORMAT_VERSION and document["service"] == agency
        for host in federation.hosts.values():
            assert (await client.post(f"{host.http_url}/v1/admin/reset")).status_code == 200
        assert (await _ident_info(federation)).gallery_size == 0

        for agency, host in federation.hosts.items():
            r = await client.put(f"{host.http_url}/v1/admin/snapshot", content=saved[agency])
            assert r.status_code == 200, r.text
            assert r.json()["service"] == agency
            expected = {t: n for t, n in before["rows"][agency].items() if t != "clock_epoch"}
            assert r.json()["rows"] == expected
        after = await _answers(federation, client, tcns)
        assert after == before
        again = await _identify(federation, world.enrollment_capture(person))
        assert again.match and again.candidates[0].fin == found.candidates[0].fin

    # The loaded federation carries on: a new person is booked end to end.
    async with scenario_in(federation) as s:
        subject = s.subject()
        await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
        view = await s.final(await s.book(subject, CA))
    assert view["status"] == "answered"
    assert "IDR/IAR" in response_kinds(view)


def _broken(document: dict[str, Any], how: str) -> dict[str, Any] | bytes:
    """The document spoiled one way."""
    spoiled = copy.deepcopy(document)
    tables = spoiled["tables"]
    if how == "version":
        spoiled["version"] = FORMAT_VERSION + 1
    elif how == "service":
        spoiled["service"] = "lesc"
    elif how == "table":
        tables["clock_epoch"] = {"columns": [], "rows": []}
    elif how == "column":
        tables["identities"]["columns"].append("race")
    elif how == "row-length":
        tables["identities"]["rows"][0].append("X")
    elif how == "base64":
        column = tables["biometric_changes"]["columns"].index("tenprint")
        tables["biometric_changes"]["rows"][0][column] = "not base64!"
    elif how == "time":
        column = tables["journal"]["columns"].index("at")
        tables["journal"]["rows"][0][column] = "yesterday"
    elif how == "type":
        column = tables["journal"]["columns"].index("id")
        tables["journal"]["rows"][0][column] = "seven"
    elif how == "duplicate":
        tables["identities"]["rows"].append(tables["identities"]["rows"][0])
    elif how == "json":
        return b"{,"
    return spoiled


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("json", "JSON document"),
        ("version", "format version 2 is not supported"),
        ("service", "of service 'lesc', not 'ident'"),
        ("table", "unknown table 'clock_epoch'"),
        ("column", "unknown column identities.race"),
        ("row-length", "identities: row 0"),
        ("base64", "biometric_changes.tenprint: expected base64"),
        ("time", "journal.at: expected an ISO 8601 time"),
        ("type", "journal.id: expected an integer"),
        ("duplicate", "identities: the rows do not load"),
    ],
)
async def test_a_snapshot_ident_cannot_take_is_refused_with_422_and_changes_nothing(
    federation: Federation, how: str, reason: str
) -> None:
    async with scenario_in(federation) as s:
        subject = s.subject()
        await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
        await s.final(await s.book(subject, CA))
        await s.quiet()
    host = federation.hosts[Agency.IDENT]
    url = f"{host.http_url}/v1/admin/snapshot"
    async with httpx.AsyncClient(timeout=60) as client:
        document = (await client.get(url)).json()
        rows, gallery = await _row_counts(host), (await _ident_info(federation)).gallery_size
        spoiled = _broken(document, how)
        body = spoiled if isinstance(spoiled, bytes) else json.dumps(spoiled).encode()
        r = await client.put(url, content=body)
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert await _row_counts(host) == rows
    assert (await _ident_info(federation)).gallery_size == gallery
