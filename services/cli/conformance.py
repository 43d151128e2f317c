"""`scfed conformance`: one agency's contract suite against any server of its proto."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..federation import Agency, parse_agency
from .endpoints import agency_item, is_host_port

if TYPE_CHECKING:
    from ..conformance.kit import CaseResult

MARKS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def _agency(value: str) -> Agency:
    try:
        return parse_agency(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _host_port(value: str, option: str) -> str:
    if not is_host_port(value):
        raise typer.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=option)
    return value


def _peers(given: list[str]) -> dict[Agency, str]:
    try:
        return dict(agency_item(item, "NAME=HOST:PORT", is_host_port) for item in given)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--peer") from None


def conformance(
    service: Annotated[
        str, typer.Argument(help=f"The agency under test: {', '.join(Agency)}.", metavar="SERVICE")
    ],
    target: Annotated[
        str | None, typer.Option(help="HOST:PORT of the gRPC server under test (required to run).")
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(help="Base URL of its HTTP edge: adds the edge's cases (else skipped)."),
    ] = None,
    peer: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=HOST:PORT where the fake peer NAME listens (repeat; default: each "
            "agency's default port on 127.0.0.1)."
        ),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML to this file.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of lines.")
    ] = False,
    pattern: Annotated[
        list[str] | None,
        typer.Option(
            "-k",
            help='Run the cases whose name contains this (or matches this glob); "not X" '
            "leaves them out. Repeat to widen.",
        ),
    ] = None,
    deadline: Annotated[
        float, typer.Option(min=0.1, help="Seconds the target has for each follow-on message.")
    ] = 10.0,
    quiet: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds a case waits to be sure a message is not sent."),
    ] = 1.5,
    connect_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for the target to answer at all.")
    ] = 10.0,
    strict: Annotated[
        bool, typer.Option(help="Also require scfed's own words in each refusal's reason.")
    ] = False,
    list_cases: Annotated[
        bool, typer.Option("--list", help="List the suite's cases and exit.")
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(
            envvar="SCFED_TLS",
            help="Mutual TLS: each call presents the certificate of the identity it comes "
            "from, each fake peer serves its agency's; --no-tls for a plaintext target.",
        ),
    ] = True,
    tls_dir: Annotated[
        Path | None,
        typer.Option(
            help="The certificates (`scfed certs init --dir D`); default SCFED_TLS_DIR, else "
            "<SCFED_DATA_DIR>/certs, as the services find them.",
        ),
    ] = None,
) -> None:
    """Run the contract suite of one agency against a server that implements its proto.

    The kit serves fake peers on the other agencies' addresses and checks the follow-on
    messages the target sends them. One line per case; exit 1 if any case fails.
    """
    from ..conformance.kit import Outcome, PortUnavailable, TargetUnreachable, run, select, suite
    from ..runtime.config import ServiceSettings
    from ..runtime.tls import CertificateMissing

    agency = _agency(service)
    if list_cases:
        for one in select(suite(agency).cases, pattern or []):
            typer.echo(f"{one.name}\n    {one.summary}")
        return
    if target is None:
        raise typer.BadParameter("the server under test is required", param_hint="--target")
    _host_port(target, "--target")
    peers = _peers(peer or [])
    certificates = (tls_dir or ServiceSettings(tls="on").resolved_tls_dir()) if tls else None

    def show(result: CaseResult) -> None:
        if not as_json:
            line = f"{MARKS[result.outcome]} {result.name}"
            if result.detail:
                line += f"\n     {result.detail}"
            typer.echo(line)

    try:
        report = asyncio.run(
            run(
                agency,
                target,
                http_url=http,
                peers=peers,
                patterns=pattern or [],
                deadline=deadline,
                quiet=quiet,
                strict=strict,
                on_result=show,
                connect_timeout=connect_timeout,
                tls_dir=certificates,
            )
        )
    except (TargetUnreachable, PortUnavailable, CertificateMissing) as exc:
        typer.echo(f"conformance: {exc}", err=True)
        raise typer.Exit(2) from None
    if junit is not None:
        junit.write_bytes(report.to_junit())
    if as_json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
    else:
        typer.echo(
            f"{agency} at {target}: {report.count(Outcome.PASSED)} passed, "
            f"{report.count(Outcome.FAILED)} failed, {report.count(Outcome.SKIPPED)} skipped"
        )
    if not report.ok:
        raise typer.Exit(1)
    if not report.results:
        typer.echo("conformance: no case matched", err=True)
        raise typer.Exit(2)


__all__ = ["conformance"]
