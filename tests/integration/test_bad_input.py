"""Bad input at every edge gets a clear error with the reason and changes nothing stored."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.cjis_iafis.v1 import cjis_iafis_pb2_grpc as cjis_grpc
from scfed.common.v1 import common_pb2 as common
from scfed.common.v1 import common_pb2_grpc as common_grpc
from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.ice_field.v1 import ice_field_pb2_grpc as ice_grpc
from scfed.ident.v1 import ident_pb2 as ident
from scfed.ident.v1 import ident_pb2_grpc as ident_grpc
from scfed.lesc.v1 import lesc_pb2 as lesc
from scfed.lesc.v1 import lesc_pb2_grpc as lesc_grpc
from scfed.sib.v1 import sib_pb2 as sib
from scfed.sib.v1 import sib_pb2_grpc as sib_grpc
from services.runtime.biometrics import TEMPLATE_DIM
from tests.federation import Federation
from tests.scenario import Scenario

CA = "CA0190000"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered in a fresh federation."""
    async with httpx.AsyncClient(base_url=federation.sib_url, timeout=30) as client:
        s = Scenario(federation, client)
        await s.setup()
        yield s


def _booking(s: Scenario) -> dict[str, Any]:
    subject = s.subject()
    return {
        "ori": CA,
        "booking_number": "B-100",
        "doa": "20091015",
        "descriptors": {"nam": subject.name, "sex": "M", "dob": "19800101"},
        "fingers": subject.fingers_json(),
        "charges": [{"ncic_code": "2399", "literal": "THEFT"}],
    }


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = body
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


_DELETE = object()

BAD_BOOKINGS: list[tuple[str, str, Any, str]] = [
    ("bad ORI", "ori", "ca019", "ori"),
    ("unknown ORI", "ori", "ZZ0010000", "no agency with ORI ZZ0010000"),
    ("booking number with spaces", "booking_number", "B 1", "booking_number"),
    ("bad date of arrest", "doa", "2009-10-15", "doa"),
    ("impossible date of arrest", "doa", "20091345", "not a calendar date"),
    ("no name", "descriptors.nam", "", "nam"),
    ("finger position 0", "fingers.0.position", 0, "position"),
    ("finger position 11", "fingers.0.position", 11, "position"),
    ("duplicate finger position", "fingers.1.position", 1, "more than once"),
    ("template of the wrong dimension", "fingers.0.template", [0.1] * 5, f"{TEMPLATE_DIM}"),
    ("all-zero template", "fingers.0.template", [0.0] * TEMPLATE_DIM, "all zeros"),
    ("quality over 100", "fingers.0.quality", 101, "quality"),
    ("bad NCIC code", "charges.0.ncic_code", "12A4", "ncic_code"),
    ("no charges", "charges", [], "charges"),
    ("unknown field", "shoe_size", 11, "shoe_size"),
    ("race", "descriptors.rac", "W", "race and ethnicity are not accepted"),
    ("ethnicity", "descriptors.eth", "H", "race and ethnicity are not accepted"),
    ("no descriptors", "descriptors", _DELETE, "descriptors"),
]


async def _stored(s: Scenario) -> tuple[Any, Any]:
    bookings = (await s.client.get("/v1/bookings")).json()
    outbox = (await s.client.get("/v1/outbox")).json()
    return bookings, outbox["pending"] + outbox["inflight"] + outbox["delivered"]


async def test_bad_bookings_get_422_with_the_reason_and_store_nothing(scenario: Scenario) -> None:
    good = _booking(scenario)
    tcn = (await scenario.client.post("/v1/bookings", json=good)).json()["tcn"]
    await scenario.final(tcn)
    await scenario.quiet()
    before = await _stored(scenario)
    for name, path, value, words in BAD_BOOKINGS:
        body = _set(good, path, value)
        body["booking_number"] = "B-200" if path != "booking_number" else value
        r = await scenario.client.post("/v1/bookings", json=body)
        assert r.status_code == 422, f"{name}: {r.status_code} {r.text}"
        assert words in r.text, f"{name}: {r.text}"
    amputee = copy.deepcopy(good)
    amputee["booking_number"] = "B-201"
    amputee["fingers"] = [{"position": i, "status": "amputated"} for i in range(1, 11)]
    r = await scenario.client.post("/v1/bookings", json=amputee)
    assert r.status_code == 422 and "no usable finger" in r.text
    assert await _stored(scenario) == before


async def test_resubmission_is_idempotent_and_a_conflicting_one_is_refused(
    scenario: Scenario,
) -> None:
    body = _booking(scenario)
    first = await scenario.client.post("/v1/bookings", json=body)
    again = await scenario.client.post("/v1/bookings", json=body)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["tcn"] == first.json()["tcn"] and again.json()["duplicate"] is True
    changed = _set(body, "charges.0.ncic_code", "1201")
    conflict = await scenario.client.post("/v1/bookings", json=changed)
    assert conflict.status_code == 409 and first.json()["tcn"] in conflict.text
    assert len((await scenario.client.get("/v1/bookings")).json()) == 1


async def test_unknown_resources_are_404(scenario: Scenario) -> None:
    assert (await scenario.client.get("/v1/bookings/NOPE")).status_code == 404
    r = await scenario.client.get("/v1/agencies/XX9999999/messages")
    assert r.status_code == 404 and "XX9999999" in r.text
    r = await scenario.client.post(
        "/v1/release-notices", json={"ori": CA, "detainer_id": "I247-NOPE"}
    )
    assert r.status_code == 404 and "I247-NOPE" in r.text


def _env(**fields: Any) -> common.Envelope:
    values: dict[str, Any] = {"message_id": "m-1", "tcn": "T1", "tcr": "T1", "ori": CA}
    values.update(fields)
    return common.Envelope(**values)


def _tenprint(**finger: Any) -> common.Tenprint:
    values: dict[str, Any] = {
        "position": 1,
        "status": common.FINGER_STATUS_PRESENT,
        "template": [0.5] * TEMPLATE_DIM,
        "quality": 80,
    }
    values.update(finger)
    second = common.FingerCapture(
        position=2, status=common.FINGER_STATUS_PRESENT, template=[0.3] * TEMPLATE_DIM, quality=80
    )
    return common.Tenprint(fingers=[common.FingerCapture(**values), second])


def _car(**overrides: Any) -> cjis.Car:
    values: dict[str, Any] = {
        "envelope": _env(tot="CAR"),
        "descriptors": common.Descriptors(nam="DOE,JOHN"),
        "tenprint": _tenprint(),
        "charges": [common.Charge(ncic_code="2399", disposition=common.DISPOSITION_CHARGED)],
        "booking_number": "B1",
        "doa": "20091015",
    }
    values.update(overrides)
    return cjis.Car(**values)


# (service, stub class, method, request, expected status, words in the details)
GRPC_CASES: list[tuple[str, Any, str, Message, grpc.StatusCode, str]] = [
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverSre",
        sib.SreMessage(),
        INVALID,
        "envelope is required",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverSre",
        sib.SreMessage(envelope=_env(message_id=""), identification="I", fbi_number="1"),
        INVALID,
        "message_id",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverSre",
        sib.SreMessage(envelope=_env(ori="bad"), identification="I", fbi_number="1"),
        INVALID,
        "ori",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverSre",
        sib.SreMessage(envelope=_env(), identification="X", fbi_number="1"),
        INVALID,
        "identification",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverSre",
        sib.SreMessage(envelope=_env(tcr="UNKNOWN"), identification="I", fbi_number="1"),
        NOT_FOUND,
        "UNKNOWN",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverErrt",
        sib.ErrtMessage(envelope=_env()),
        INVALID,
        "reason",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverInteroperabilityResponse",
        sib.InteroperabilityResponse(envelope=_env()),
        INVALID,
        "response",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "DeliverDetainer",
        sib.DetainerMessage(envelope=_env()),
        INVALID,
        "detainer_id",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "RegisterState",
        sib.State(code="Texas", moa_status=sib.MOA_STATUS_ACTIVE),
        INVALID,
        "two letters",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "RegisterState",
        sib.State(code="TX"),
        INVALID,
        "moa_status",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "RegisterAgency",
        sib.Agency(ori="WY0010000"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WY",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "SetMoaStatus",
        sib.SetMoaStatusRequest(state="TX", status=sib.MOA_STATUS_TERMINATED),
        INVALID,
        "30 days",
    ),
    (
        "sib",
        sib_grpc.StateIdentificationBureauStub,
        "SetMoaStatus",
        sib.SetMoaStatusRequest(state="WY", status=sib.MOA_STATUS_ACTIVE),
        NOT_FOUND,
        "WY",
    ),
    ("cjis_iafis", cjis_grpc.CjisIafisStub, "SubmitCar", cjis.Car(), INVALID, "envelope"),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "SubmitCar",
        _car(tenprint=_tenprint(template=[float("nan")] * TEMPLATE_DIM)),
        INVALID,
        "NaN",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "SubmitCar",
        _car(tenprint=_tenprint(template=[0.1] * 3)),
        INVALID,
        "values",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "SubmitCar",
        _car(tenprint=_tenprint(position=2)),
        INVALID,
        "more than once",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "SubmitCar",
        _car(
            tenprint=common.Tenprint(
                fingers=[common.FingerCapture(position=1, status=common.FINGER_STATUS_AMPUTATED)]
            )
        ),
        INVALID,
        "no usable finger",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "SubmitCar",
        _car(charges=[common.Charge(ncic_code="12", disposition=common.DISPOSITION_CHARGED)]),
        INVALID,
        "ncic_code",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "SubmitCpi",
        cjis.Cpi(
            envelope=_env(tot="CPI"),
            booking_number="B",
            doa="20091015",
            descriptors=common.Descriptors(nam="X"),
            charges=[common.Charge(ncic_code="2399", disposition=common.DISPOSITION_CHARGED)],
        ),
        INVALID,
        "fbi_number",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "DeliverIdr",
        cjis.IdrMessage(envelope=_env(), idr=common.Idr(match=True)),
        INVALID,
        "FIN",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "DeliverIdr",
        cjis.IdrMessage(envelope=_env(tcr="UNKNOWN"), idr=common.Idr()),
        NOT_FOUND,
        "UNKNOWN",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "AcknowledgeIaq",
        cjis.IaqAcknowledgement(envelope=_env()),
        INVALID,
        "case_id",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "DeliverIar",
        cjis.IarMessage(envelope=_env()),
        INVALID,
        "iar",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "DeliverIar",
        cjis.IarMessage(envelope=_env(tcr="UNKNOWN"), iar=common.Iar()),
        NOT_FOUND,
        "UNKNOWN",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "GetCriminalHistory",
        cjis.GetCriminalHistoryRequest(),
        INVALID,
        "fbi_number",
    ),
    (
        "cjis_iafis",
        cjis_grpc.CjisIafisStub,
        "GetCriminalHistory",
        cjis.GetCriminalHistoryRequest(fbi_number="0000000ZZ"),
        NOT_FOUND,
        "0000000ZZ",
    ),
    (
        "ident",
        ident_grpc.IdentStub,
        "Search",
        ident.IdentSearch(envelope=_env()),
        INVALID,
        "tenprint",
    ),
    (
        "ident",
        ident_grpc.IdentStub,
        "Search",
        ident.IdentSearch(envelope=_env(), tenprint=_tenprint(quality=101)),
        INVALID,
        "quality",
    ),
    ("ident", ident_grpc.IdentStub, "GetIdentity", ident.GetIdentityRequest(), INVALID, "fin"),
    (
        "ident",
        ident_grpc.IdentStub,
        "GetIdentity",
        ident.GetIdentityRequest(fin="FINX"),
        NOT_FOUND,
        "FINX",
    ),
    (
        "ident",
        ident_grpc.IdentStub,
        "EnrollEncounters",
        ident.EnrollEncountersRequest(
            encounters=[
                ident.NewEncounter(descriptors=common.Descriptors(nam="X"), tenprint=_tenprint())
            ]
        ),
        INVALID,
        "status",
    ),
    ("lesc", lesc_grpc.LescStub, "SubmitIaq", lesc.Iaq(), INVALID, "envelope"),
    (
        "lesc",
        lesc_grpc.LescStub,
        "SubmitIaq",
        lesc.Iaq(envelope=_env(), idr=common.Idr()),
        INVALID,
        "matching IDR",
    ),
    (
        "lesc",
        lesc_grpc.LescStub,
        "SubmitIaq",
        lesc.Iaq(
            envelope=_env(),
            idr=common.Idr(match=True, fin="F1"),
            off=[common.Charge(ncic_code="x", disposition=common.DISPOSITION_CHARGED)],
        ),
        INVALID,
        "ncic_code",
    ),
    (
        "ice_field",
        ice_grpc.IceFieldStub,
        "DeliverIar",
        ice.IarCopy(envelope=_env()),
        INVALID,
        "iar",
    ),
    (
        "ice_field",
        ice_grpc.IceFieldStub,
        "DeliverIar",
        ice.IarCopy(envelope=_env(ori="WY0010000"), iar=common.Iar(removable=True)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "no field office covers state WY",
    ),
    (
        "ice_field",
        ice_grpc.IceFieldStub,
        "NotifyRelease",
        ice.ReleaseNotice(envelope=_env()),
        INVALID,
        "detainer_id",
    ),
    (
        "ice_field",
        ice_grpc.IceFieldStub,
        "NotifyRelease",
        ice.ReleaseNotice(envelope=_env(), detainer_id="I247-NOPE"),
        NOT_FOUND,
        "I247-NOPE",
    ),
    (
        "ice_field",
        ice_grpc.IceFieldStub,
        "RegisterFieldOffice",
        ice.FieldOffice(ori="TXICE0100"),
        INVALID,
        "at least one state",
    ),
    (
        "ice_field",
        ice_grpc.IceFieldStub,
        "GetDetainer",
        ice.GetDetainerRequest(),
        INVALID,
        "detainer_id",
    ),
]


async def test_every_rpc_refuses_bad_input_with_its_documented_status(
    scenario: Scenario,
) -> None:
    addresses = scenario.fed.addresses()
    counts_before = await _journal_counts(scenario)
    failures = []
    for service, stub_cls, method, request, code, words in GRPC_CASES:
        async with grpc.aio.insecure_channel(addresses[service]) as channel:
            call = getattr(stub_cls(channel), method)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(request, timeout=10)
        err = caught.value
        if err.code() != code or words not in (err.details() or ""):
            failures.append(f"{service}.{method}: {err.code().name} {err.details()!r}")
    assert failures == []
    for service in ("sib", "cjis_iafis", "ident", "lesc", "ice_field"):
        async with grpc.aio.insecure_channel(addresses[service]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await common_grpc.JournalStub(channel).GetJournal(common.JournalQuery())
            assert caught.value.code() == INVALID
    after = await _journal_counts(scenario)
    processed = {
        svc: {k: v for k, v in counts.items() if k.endswith(":processed")}
        for svc, counts in after.items()
    }
    assert processed == {
        svc: {k: v for k, v in counts.items() if k.endswith(":processed")}
        for svc, counts in counts_before.items()
    }, "a refused message must not be processed"


async def _journal_counts(s: Scenario) -> dict[str, dict[str, int]]:
    result = {}
    async with httpx.AsyncClient() as client:
        for name, host in s.fed.hosts.items():
            result[name] = (await client.get(f"{host.http_url}/v1/journal-counts")).json()
    return result


async def test_a_refused_message_is_journaled_as_refused(scenario: Scenario) -> None:
    async with grpc.aio.insecure_channel(scenario.fed.addresses()["sib"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await sib_grpc.StateIdentificationBureauStub(channel).DeliverSre(
                sib.SreMessage(envelope=_env(tcr="TCR-404"), identification="I", fbi_number="1")
            )
    entries = (await scenario.client.get("/v1/journal/TCR-404")).json()
    assert [(e["tot"] or "", e["outcome"]) for e in entries] == [("", "refused")]
    assert "NOT_FOUND" in entries[0]["detail"]


async def test_enrolment_batches_are_all_or_nothing(scenario: Scenario) -> None:
    async with grpc.aio.insecure_channel(scenario.fed.addresses()["ident"]) as channel:
        stub = ident_grpc.IdentStub(channel)
        before = (await stub.Info(ident.InfoRequest())).gallery_size
        good = ident.NewEncounter(
            descriptors=common.Descriptors(nam="A,B"),
            tenprint=scenario.subject().capture(),
            encounter=common.Encounter(status=common.IMMIGRATION_STATUS_VISA_OVERSTAY),
        )
        bad = ident.NewEncounter(descriptors=common.Descriptors(nam="C,D"), tenprint=_tenprint())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.EnrollEncounters(ident.EnrollEncountersRequest(encounters=[good, bad]))
        assert caught.value.code() == INVALID and "encounters[1]" in (caught.value.details() or "")
        assert (await stub.Info(ident.InfoRequest())).gallery_size == before
    async with grpc.aio.insecure_channel(scenario.fed.addresses()["cjis_iafis"]) as channel:
        stub2 = cjis_grpc.CjisIafisStub(channel)
        record = cjis.CriminalRecord(
            descriptors=common.Descriptors(nam="E,F"),
            tenprint=scenario.subject().capture(),
            fbi_number="1234567AB",
        )
        await stub2.EnrollCriminalRecords(cjis.EnrollCriminalRecordsRequest(records=[record]))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub2.EnrollCriminalRecords(cjis.EnrollCriminalRecordsRequest(records=[record]))
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        history = await stub2.GetCriminalHistory(
            cjis.GetCriminalHistoryRequest(fbi_number="1234567AB")
        )
        assert history.fbi_number == "1234567AB"


async def test_a_repeated_message_id_is_acknowledged_and_processed_once(
    scenario: Scenario,
) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    tcn = await scenario.book(subject, CA, ("2399",))
    await scenario.final(tcn)
    await scenario.detainers_for(tcn, CA, expect=1)
    iar = common.Iar(case_id="LESC-T", fin=subject.fin, removable=True)
    second_copy = ice.IarCopy(
        envelope=_env(message_id="another-id", tcr=tcn, tcn="X1", tot="IAR-COPY"), iar=iar
    )
    async with grpc.aio.insecure_channel(scenario.fed.addresses()["ice_field"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ice_grpc.IceFieldStub(channel).DeliverIar(second_copy)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert tcn in (caught.value.details() or "")
    # The same message id delivered twice is acknowledged twice and processed once.
    other = scenario.subject()
    await scenario.in_ident(other, "ENTRY_WITHOUT_INSPECTION")
    tcn2 = await scenario.book(other, CA, ("2399",))
    await scenario.final(tcn2)
    await scenario.quiet()
    async with grpc.aio.insecure_channel(scenario.fed.addresses()["sib"]) as channel:
        stub3 = sib_grpc.StateIdentificationBureauStub(channel)
        sre = sib.SreMessage(
            envelope=_env(message_id="dup-2", tcr=tcn2, tot="SRE"),
            identification="I",
            fbi_number="7654321ZZ",
        )
        first = await stub3.DeliverSre(sre)
        second = await stub3.DeliverSre(sre)
    assert first.duplicate is False and second.duplicate is True
    view = (await scenario.client.get(f"/v1/bookings/{tcn2}")).json()
    assert [r["kind"] for r in view["responses"]].count("SRE") == 2
