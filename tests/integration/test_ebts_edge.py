"""EBTS files at the SIB's agency edge (POST /v1/transactions, GET /v1/transactions/{tcn}/
responses[/{n}]): a CAR file is booked exactly as the same booking in JSON, and its answers are
EBTS files a third-party reader parses; a bad file gets a 4xx naming the record and field and
nothing is stored; a file over the body limit is refused before it is read; the LEA credentials
of the JSON routes hold here too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import grpc
import httpx
import nistitl
import pytest

from scfed.sib.v1 import sib_pb2 as sib
from scfed.sib.v1 import sib_pb2_grpc
from services.cli.demo import BookingFormat, read_answer_files, submit_bookings
from services.federation import Agency
from services.formats.ansi_nist import TaggedRecord, Transaction, decode, encode, text
from services.sib.api import BookingIn
from services.sib.transactions import ANSI_NIST_TYPE, car_file
from services.world.seeding import register_jurisdictions, seed_world
from services.world.world import AGENCIES, STATES, build_world
from tests.federation import DatabaseChoice, Federation, make_host, running_federation
from tests.scenario import Scenario, scenario_in
from tests.support import final_booking, wait_outboxes_idle

CA = "CA0190000"
FILE = {"content-type": ANSI_NIST_TYPE}


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered in a fresh federation, with an HTTP client for the SIB."""
    async with scenario_in(federation) as s:
        yield s


def _booking(s: Scenario, number: str, codes: tuple[str, ...] = ("2399",)) -> dict[str, Any]:
    return s.subject().booking_body(CA, number, codes)


def _file(body: dict[str, Any], tcn: str = "LEA-0001") -> bytes:
    return car_file(BookingIn.model_validate(body), tcn=tcn, dai="CASIB0000", dat="20261203")


def _parsed(data: bytes) -> Any:
    message = nistitl.Message()
    message.parse(data)
    return message


async def _stored(s: Scenario) -> list[str]:
    r = await s.client.get("/v1/bookings")
    assert r.status_code == 200, r.text
    return [b["booking_number"] for b in r.json()]


async def test_a_car_file_is_booked_like_json_and_its_answers_are_ebts_files(
    scenario: Scenario,
) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    await scenario.in_iafis(subject, [("1201", 1825)])
    body = subject.booking_body(CA, "BK-EBTS-1", ("2399",))
    r = await scenario.client.post("/v1/transactions", content=_file(body), headers=FILE)
    assert r.status_code == 202, r.text
    receipt = r.json()
    tcn = receipt["tcn"]
    assert receipt["transaction"] == "CAR" and receipt["lea_tcn"] == "LEA-0001"
    assert receipt["ignored"] == [] and receipt["duplicate"] is False

    # The same file again, and the same booking in JSON: one booking.
    again = await scenario.client.post(
        "/v1/transactions",
        content=_file(body, tcn="LEA-0002"),
        headers={"content-type": "application/octet-stream"},
    )
    assert again.status_code == 200 and again.json()["tcn"] == tcn and again.json()["duplicate"]
    as_json = await scenario.client.post("/v1/bookings", json=body)
    assert as_json.status_code == 200 and as_json.json()["tcn"] == tcn

    view = await scenario.final(tcn)
    assert view["status"] == "answered"
    detainer = (await scenario.detainers_for(tcn, CA, expect=1))[0]["body"]["detainer"]
    listing = (await scenario.client.get(f"/v1/transactions/{tcn}/responses")).json()
    # Numbered in the order the SIB received them (an I-247 may overtake the IDR/IAR).
    assert [f["n"] for f in listing] == [1, 2, 3]
    assert sorted((f["kind"], f["tot"]) for f in listing) == [
        ("I-247", "I247"),
        ("IDR/IAR", "IAR"),
        ("SRE", "SRE"),
    ]
    files = {}
    for entry in listing:
        got = await scenario.client.get(entry["href"])
        assert got.status_code == 200 and got.headers["content-type"] == "application/octet-stream"
        assert got.headers["content-disposition"].endswith(
            f'{tcn}-{entry["n"]}-{entry["tot"]}.eft"'
        )
        message = _parsed(got.content)
        assert entry["tot"] == message.TOT and message[0][10].value == tcn
        assert message[0][7].value == CA
        files[entry["tot"]] = decode(got.content).records[0]
    sre, iar, i247 = files["SRE"], files["IAR"], files["I247"]
    assert isinstance(sre, TaggedRecord) and isinstance(iar, TaggedRecord)
    assert isinstance(i247, TaggedRecord)
    assert sre.first(59) == "I" and sre.first(14) == subject.fbi_number
    assert sre.first(9) == "BK-EBTS-1"
    assert iar.first(910) == "Y" and iar.first(913) == subject.fin and iar.first(922) == "Y"
    assert iar.first(921) == "ENTRY_WITHOUT_INSPECTION" and iar.first(925) == "1"
    assert i247.first(940) == detainer["detainer_id"] and i247.first(941) == "CAICE0100"
    assert (await scenario.client.get(f"/v1/transactions/{tcn}/responses/4")).status_code == 404


def _header(t: Transaction, number: int, value: str) -> Transaction:
    return replace(t, header=TaggedRecord(1, {**t.header.fields, number: text(value)}))


def _type2(t: Transaction, number: int, value: str) -> Transaction:
    two = t.records[0]
    assert isinstance(two, TaggedRecord)
    return replace(
        t, records=(TaggedRecord(2, {**two.fields, number: text(value)}), *t.records[1:])
    )


Damage = Callable[[bytes], bytes]


def _via(change: Callable[[Transaction], Transaction]) -> Damage:
    return lambda data: encode(change(decode(data)))


@pytest.mark.parametrize(
    ("damage", "status", "words"),
    [
        (lambda b: b[: len(b) // 2], 400, "not an ANSI/NIST-ITL file: record "),
        (lambda b: b.replace(b"2.001:", b"2.001:9", 1), 400, "field 2.001: truncated: LEN says"),
        (lambda b: b.replace(b"\x1c2.001:", b"\x1d2.001:", 1), 400, "record 1 (Type-1)"),
        (_via(lambda t: _header(t, 4, "XYZ")), 422, "field 1.004: TOT 'XYZ' is not taken here"),
        (_via(lambda t: replace(t, records=t.records[:1])), 422, "a CAR carries the prints"),
        (_via(lambda t: _type2(t, 18, "N" * 51)), 422, "record 2 (Type-2), field 2.018: NAM is"),
        (_via(lambda t: _type2(t, 25, "W")), 422, "field 2.025: RAC: race is not accepted"),
        (_via(lambda t: _header(t, 8, "CA9999999")), 422, "no agency with ORI CA9999999"),
    ],
)
async def test_a_bad_file_gets_a_4xx_naming_record_and_field_and_nothing_is_stored(
    scenario: Scenario, damage: Damage, status: int, words: str
) -> None:
    data = damage(_file(_booking(scenario, "BK-BAD")))
    r = await scenario.client.post("/v1/transactions", content=data, headers=FILE)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"], r.json()
    assert await _stored(scenario) == []


async def test_a_file_sent_as_another_content_type_is_a_415(scenario: Scenario) -> None:
    data = _file(_booking(scenario, "BK-415"))
    for headers in ({"content-type": "application/json"}, {"content-type": "text/plain"}, {}):
        r = await scenario.client.post("/v1/transactions", content=data, headers=headers)
        assert r.status_code == 415, r.text
        assert "application/x-ansi-nist or application/octet-stream" in r.json()["detail"]
    assert await _stored(scenario) == []


async def _upload(url: str, *, chunked: bool, total: int) -> tuple[bytes, int]:
    """Sends the start of a `total`-byte POST /v1/transactions over a raw connection, a chunk
    at a time, stopping as soon as the SIB answers: the answer's status line, and how many body
    bytes had been sent by then."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    reader, writer = await asyncio.open_connection(host, port)
    length = "transfer-encoding: chunked" if chunked else f"content-length: {total}"
    writer.write(
        f"POST /v1/transactions HTTP/1.1\r\nhost: {host}\r\n"
        f"content-type: {ANSI_NIST_TYPE}\r\n{length}\r\n\r\n".encode()
    )
    chunk, sent = b"\x00" * 2**16, 0
    try:
        while sent < total:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
            await writer.drain()
            try:
                status = await asyncio.wait_for(reader.readline(), timeout=0.01)
            except TimeoutError:
                continue
            return status, sent
        return await asyncio.wait_for(reader.readline(), timeout=10), sent
    except ConnectionError:
        return await reader.readline(), sent
    finally:
        writer.close()


async def test_a_50_mb_file_is_refused_with_413_before_it_is_read(scenario: Scenario) -> None:
    total = 50 * 2**20
    # Declared: refused on the header, having read at most the first chunk.
    status, sent = await _upload(scenario.fed.sib_url, chunked=False, total=total)
    assert status.startswith(b"HTTP/1.1 413") and sent < total // 10, (status, sent)
    # Chunked, no length: refused once the count passes the limit.
    status, sent = await _upload(scenario.fed.sib_url, chunked=True, total=total)
    assert status.startswith(b"HTTP/1.1 413") and sent < total // 10, (status, sent)
    assert await _stored(scenario) == []


async def test_a_car_cjis_never_takes_is_answered_with_an_errt_file(db: DatabaseChoice) -> None:
    sib_host = make_host(Agency.SIB, db, outbox_max_attempts=2, cjis_iafis_addr="127.0.0.1:9")
    await sib_host.start()
    try:
        async with httpx.AsyncClient(base_url=sib_host.http_url) as client:
            s = Scenario(Federation(hosts={Agency.SIB: sib_host}), client)
            async with grpc.aio.insecure_channel(sib_host.grpc_address) as channel:
                await register_jurisdictions(
                    sib_pb2_grpc.StateIdentificationBureauStub(channel), STATES, AGENCIES
                )
            data = _file(s.subject().booking_body(CA, "BK-ERRT", ("2399",)))
            r = await client.post("/v1/transactions", content=data, headers=FILE)
            assert r.status_code == 202, r.text
            tcn = r.json()["tcn"]
            assert (await s.final(tcn))["status"] == "refused"
            listing = (await client.get(f"/v1/transactions/{tcn}/responses")).json()
            assert [f["tot"] for f in listing] == ["ERRT"]
            errt = decode((await client.get(listing[0]["href"])).content).records[0]
            assert isinstance(errt, TaggedRecord)
            message = "".join(s[0] for s in errt.fields[60])
            assert message.startswith("DELIVERY_FAILED: CJIS did not accept the CAR")
    finally:
        await sib_host.stop()


async def test_lea_credentials_hold_for_files_and_their_answers(db: DatabaseChoice) -> None:
    async with (
        running_federation(db, sib={"lea_credentials": "required"}) as fed,
        scenario_in(fed) as s,
    ):
        keys = {}
        async with grpc.aio.insecure_channel(fed.addresses()[Agency.SIB]) as channel:
            stub = sib_pb2_grpc.StateIdentificationBureauStub(channel)
            for ori in (CA, "CA0370000"):
                reply = await stub.IssueLeaCredential(sib.IssueLeaCredentialRequest(ori=ori))
                keys[ori] = {"Authorization": f"Bearer {reply.api_key}"}
        data = _file(s.subject().booking_body(CA, "BK-KEY", ("2399",)))
        r = await s.client.post("/v1/transactions", content=b"not a file", headers=FILE)
        assert r.status_code == 401, r.text
        r = await s.client.post(
            "/v1/transactions", content=data, headers={**FILE, **keys["CA0370000"]}
        )
        assert r.status_code == 403, r.text
        r = await s.client.post("/v1/transactions", content=data, headers={**FILE, **keys[CA]})
        assert r.status_code == 202, r.text
        tcn = r.json()["tcn"]
        own = await s.client.get(f"/v1/transactions/{tcn}/responses", headers=keys[CA])
        assert own.status_code == 200
        for path in (f"/v1/transactions/{tcn}/responses", f"/v1/transactions/{tcn}/responses/1"):
            other = await s.client.get(path, headers=keys["CA0370000"])
            assert other.status_code == 404 and "no booking with TCN" in other.json()["detail"]


async def test_the_demo_in_ebts_sends_car_files_and_reads_every_answer_back(
    federation: Federation,
) -> None:
    world = build_world(3, 12)
    await seed_world(world, federation.addresses())
    async with httpx.AsyncClient(base_url=federation.sib_url, timeout=60) as sib_client:
        tcns, refused = await submit_bookings(
            sib_client, world, 4, lambda *_: None, booking_format=BookingFormat.EBTS
        )
        assert refused == [] and len(tcns) == 12
        views = [await final_booking(sib_client, tcn) for tcn in tcns]
        await wait_outboxes_idle(h.http_url for h in federation.hosts.values())
        files, problems = await read_answer_files(sib_client, tcns, 4)
    assert problems == []
    relayed = [r for v in views for r in v["responses"] if r["relayed"]]
    assert sum(files.values()) == len(relayed) and files["SRE"] == 12
    journal = await _sib_journal(federation, tcns[0])
    assert any("EBTS CAR, LEA TCN" in e["detail"] for e in journal)


async def _sib_journal(federation: Federation, tcn: str) -> list[dict[str, Any]]:
    """The SIB's journal of one booking."""
    async with httpx.AsyncClient(base_url=federation.sib_url) as client:
        r = await client.get(f"/v1/journal/{tcn}")
        assert r.status_code == 200, r.text
        return list(r.json())
