"""The conformance kit against our own services: each started alone passes every case, and each
deliberately broken variant fails the case that names the rule it breaks (the kit can fail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.conformance.cases import trust
from services.conformance.kit import Outcome, Report, suite
from services.federation import Agency
from services.runtime.authorization import AuthorizationInterceptor
from services.runtime.tls import init_certificates
from tests.conformance.broken import VARIANTS
from tests.conformance.harness import Broken, alone, in_process
from tests.federation import DatabaseChoice


def _failures(report: Report) -> list[str]:
    return [f"{r.name}: {r.detail}" for r in report.results if r.outcome == Outcome.FAILED]


def _authorization_cases(agency: Agency) -> set[str]:
    return {c.name for c in suite(agency).cases if c.check.__module__ == trust.__name__}


@pytest.mark.parametrize("agency", list(Agency))
async def test_our_service_started_alone_passes_every_case(agency: Agency, tmp_path: Path) -> None:
    async with alone(agency, tmp_path) as target:
        report = await target.check()
    assert _failures(report) == []
    skipped = {r.name for r in report.results if r.outcome == Outcome.SKIPPED}
    assert skipped == _authorization_cases(agency), report.to_json()
    assert all("mutual TLS" in r.detail for r in report.results if r.name in skipped)
    assert len(report.results) == len(suite(agency).cases)


@pytest.mark.parametrize("agency", [Agency.SIB, Agency.CJIS_IAFIS, Agency.IDENT])
async def test_our_service_with_mutual_tls_passes_every_case_and_the_authorization_ones(
    agency: Agency, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    init_certificates(certs, days=1)
    async with alone(agency, tmp_path / "data", tls_dir=certs) as target:
        report = await target.check()
    assert _failures(report) == []
    assert report.count(Outcome.SKIPPED) == 0, report.to_json()
    passed = {r.name for r in report.results if r.outcome == Outcome.PASSED}
    assert passed >= _authorization_cases(agency) and len(_authorization_cases(agency)) == 4


def test_every_agency_has_at_least_three_broken_variants() -> None:
    per_agency = {agency: [v for v in VARIANTS if v.agency == agency] for agency in Agency}
    assert {agency: len(v) >= 3 for agency, v in per_agency.items()} == dict.fromkeys(Agency, True)
    names = {case.name for agency in Agency for case in suite(agency).cases}
    assert [v.caught_by for v in VARIANTS if v.caught_by not in names] == []


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
async def test_a_broken_variant_fails_the_case_that_names_its_rule(
    variant: Broken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variant.apply(monkeypatch)
    async with in_process(variant.agency, DatabaseChoice("sqlite", tmp_path)) as target:
        report = await target.check(variant.caught_by, deadline=3.0)
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes[variant.caught_by] == Outcome.FAILED, _failures(report)


async def test_a_server_that_authorizes_nobody_fails_the_authorization_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mutual TLS without the table: any certificate of the federation may call anything.
    monkeypatch.setattr(AuthorizationInterceptor, "wrap", lambda _self, _method, _inner: None)
    certs = tmp_path / "certs"
    init_certificates(certs, days=1)
    db = DatabaseChoice("sqlite", tmp_path)
    async with in_process(Agency.IDENT, db, tls_dir=certs) as target:
        report = await target.check("Authorization:", deadline=3.0)
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {
        "Authorization: a call without a client certificate cannot proceed": Outcome.PASSED,
        "Authorization: every RPC answers each certificate as the table says": Outcome.FAILED,
        "Authorization: a delivery from an agency that does not send it changes nothing": (
            Outcome.FAILED
        ),
        "Authorization: health answers any federation certificate": Outcome.PASSED,
    }, _failures(report)
