"""LESC's edge answers a booking's IAQ and IAR as Nlets text, and `scfed format` renders and
parses them: through a running federation, the text reads back to what travelled over gRPC."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import MessageToJson

from scfed.common.v1 import common_pb2
from services.federation import Agency
from services.formats import nlets
from services.runtime.clock import ManualClock
from services.runtime.proto_json import from_json
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.integration.test_control_cli import _scfed
from tests.scenario import Scenario, scenario_in
from tests.support import eventually

CA = "CA0190000"


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered in a fresh federation."""
    async with scenario_in(federation) as s:
        yield s


def _lesc(s: Scenario) -> str:
    return s.fed.hosts[Agency.LESC].http_url


async def _answered_booking(s: Scenario) -> tuple[str, dict[str, Any]]:
    """A removable subject booked for robbery, answered: its TCN and its final view."""
    subject = s.subject()
    await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    tcn = await s.book(subject, CA, ("1201",))
    view = await s.final(tcn)
    await s.quiet()
    return tcn, view


def _relayed_iar(view: dict[str, Any]) -> common_pb2.Iar:
    """The IAR the SIB received from CJIS (in the joint IDR/IAR), as LESC sent it."""
    joint = next(r for r in view["responses"] if r["kind"] == "IDR/IAR")
    return from_json(joint["body"]["joint"]["iar"], common_pb2.Iar)


async def _text(s: Scenario, tcn: str, kind: str) -> str:
    """LESC's answer to GET /v1/cases/{tcn}/{kind}, which must be Nlets text."""
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{_lesc(s)}/v1/cases/{tcn}/{kind}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_lesc_answers_a_bookings_iaq_as_nlets_text_that_parses_to_the_query(
    scenario: Scenario,
) -> None:
    tcn, _ = await _answered_booking(scenario)
    text = await _text(scenario, tcn, "iaq")
    assert text.startswith(f"IAQ.{CA}.{Agency.LESC.ori}.")
    iaq = nlets.parse_iaq(text)
    assert iaq.envelope.tcr == tcn and iaq.envelope.sender == Agency.CJIS_IAFIS
    assert [c.ncic_code for c in iaq.off] == ["1201"]
    assert iaq.idr.match and iaq.idr.fin
    assert iaq.descriptors.nam.startswith("TESTER,NUMBER")


async def test_lesc_answers_a_bookings_iar_as_nlets_text_that_parses_to_what_grpc_carried(
    scenario: Scenario,
) -> None:
    tcn, view = await _answered_booking(scenario)
    text = await _text(scenario, tcn, "iar")
    assert "IMMIGRATION STATUS: ENTRY WITHOUT INSPECTION" in text
    message = nlets.parse_iar(text)
    assert message.envelope.tcr == tcn and message.envelope.tot == "IAR"
    assert message.iar == _relayed_iar(view)


async def test_an_unknown_tcn_is_404_and_a_malformed_one_422(scenario: Scenario) -> None:
    async with httpx.AsyncClient() as client:
        for kind in ("iaq", "iar"):
            r = await client.get(f"{_lesc(scenario)}/v1/cases/CA0000000000000000/{kind}")
            assert r.status_code == 404, r.text
            assert "CA0000000000000000" in r.json()["detail"]
            r = await client.get(f"{_lesc(scenario)}/v1/cases/{'X' * 41}/{kind}")
            assert r.status_code == 422, r.text
        paths = (await client.get(f"{_lesc(scenario)}/openapi.json")).json()["paths"]
    for kind in ("iaq", "iar"):
        answers = paths[f"/v1/cases/{{tcn}}/{kind}"]["get"]["responses"]
        assert set(answers["200"]["content"]) == {"text/plain"}
        assert (
            set(answers["404"]["content"]) == set(answers["422"]["content"]) == {"application/json"}
        )


async def test_a_case_not_yet_answered_has_its_iaq_and_no_iar(db: DatabaseChoice) -> None:
    # One analyst who takes 20 minutes on a clock that does not move: the case stays in work.
    lesc = {"clock": ManualClock(datetime(2009, 10, 1, 12, tzinfo=UTC)), "analyst_minutes": 20}
    async with (
        running_federation(db, instant_analysts=False, lesc=lesc) as fed,
        scenario_in(fed) as s,
    ):
        subject = s.subject()
        await s.in_ident(subject, "LAWFUL_PERMANENT_RESIDENT")
        tcn = await s.book(subject, CA)
        async with httpx.AsyncClient() as client:

            async def opened() -> bool:
                r = await client.get(f"{_lesc(s)}/v1/cases", params={"tcn": tcn})
                return bool(r.json())

            await eventually(opened, what=f"the LESC case of {tcn}")
            assert (await client.get(f"{_lesc(s)}/v1/cases/{tcn}/iaq")).status_code == 200
            r = await client.get(f"{_lesc(s)}/v1/cases/{tcn}/iar")
        assert r.status_code == 404
        assert "not answered yet" in r.json()["detail"]


async def test_scfed_format_reads_renders_and_parses(scenario: Scenario, tmp_path: Path) -> None:
    tcn, view = await _answered_booking(scenario)
    url = ["--url", f"lesc={_lesc(scenario)}"]

    code, text, err = await _scfed("format", "iar", "--tcn", tcn, *url)
    assert code == 0, err
    assert nlets.parse_iar(text).iar == _relayed_iar(view)

    # Text to protobuf JSON, and that JSON back to the same text.
    (tmp_path / "iar.txt").write_text(text)
    code, out, err = await _scfed("format", "iar", "--parse", str(tmp_path / "iar.txt"))
    assert code == 0, err
    assert json.loads(out) == json.loads(
        MessageToJson(nlets.parse_iar(text), preserving_proto_field_name=True)
    )
    (tmp_path / "iar.json").write_text(out)
    code, again, err = await _scfed("format", "iar", "--message", str(tmp_path / "iar.json"))
    assert code == 0, err
    assert again == text

    code, text, err = await _scfed("format", "iaq", "--tcn", tcn, *url)
    assert code == 0, err
    assert nlets.parse_iaq(text).envelope.tcr == tcn


async def test_scfed_format_names_an_unknown_tcn_with_exit_code_2(scenario: Scenario) -> None:
    url = ["--url", f"lesc={_lesc(scenario)}"]
    code, out, err = await _scfed("format", "iaq", "--tcn", "CA0000000000000000", *url)
    assert code == 2 and out == ""
    assert "CA0000000000000000" in err and "Traceback" not in err
