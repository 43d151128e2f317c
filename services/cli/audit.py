"""`scfed audit`: the audit trail of a running federation (every biometric search and record
read, with who asked, why and what came of it), read from each service's `GET /v1/audit`."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

from .control import AsJson, Outcome, Services, Urls, call_each, edge_urls, selected_urls


def audit(
    tcn: Annotated[str | None, typer.Option(help="Only the records of this TCN.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only records at or after this ISO 8601 time (UTC without an offset)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="At most this many records per service.")
    ] = 100,
    service: Services = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Read the audit trail of a running federation: searches, record reads, refusals and
    resets, oldest first, from every service (or those named). Exit 1 when a service refuses
    the query or does not answer."""
    params: dict[str, Any] = {"limit": limit}
    if tcn is not None:
        params["tcn"] = tcn
    if since is not None:
        params["since"] = since
    urls = selected_urls(edge_urls(url), service or [])
    outcome = asyncio.run(
        call_each(urls, lambda client, _name, base: client.get(f"{base}/v1/audit", params=params))
    )
    records = sorted(
        (record for answer in outcome.done.values() for record in answer),
        key=lambda r: (r["at"], r["service"], r["id"]),
    )
    _report(records, outcome, as_json)
    if outcome.refused or outcome.unreachable:
        raise typer.Exit(1)


def _report(records: list[dict[str, Any]], outcome: Outcome, as_json: bool) -> None:
    """Prints the records and what went wrong, as a table or one JSON object."""
    from rich.table import Table

    from .main import err, out

    if as_json:
        document = {
            "records": records,
            "refused": outcome.refused,
            "unreachable": outcome.unreachable,
        }
        sys.stdout.write(json.dumps(document) + "\n")
        return
    table = Table("at", "service", "who", "rpc", "tcn", "purpose", "outcome", "candidates")
    for r in records:
        table.add_row(
            r["at"],
            r["service"],
            r["who"],
            r["rpc"],
            r["tcn"],
            r["purpose"],
            r["outcome"],
            str(r["candidates"]),
        )
    out().print(table)
    out().print(f"{len(records)} audit record(s) from {len(outcome.done)} service(s)")
    for name, reason in sorted(outcome.refused.items()):
        err().print(f"[yellow]{name}: refused[/yellow] {reason}")
    for name, reason in sorted(outcome.unreachable.items()):
        err().print(f"[red]{name}: unreachable[/red] {reason}")
