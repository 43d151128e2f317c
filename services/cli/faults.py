"""`scfed faults`: fault rules on a running federation, over its services' HTTP edges
(`/v1/faults`; runtime/faults.py says what each action does)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..federation import parse_agency
from .control import AsJson, Outcome, Services, Urls, call_each, edge_urls, selected_urls
from .endpoints import operator_headers

faults_app = typer.Typer(
    help="Fault rules on a running federation: refuse, slow, drop or cut off calls on demand.",
    no_args_is_help=True,
)

_SPAN = re.compile(r"(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|s|m)?")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, None: 1.0}


def milliseconds(text: str, option: str) -> float:
    """A span given as "250ms", "1.5s", "2m" or a bare number of milliseconds."""
    found = _SPAN.fullmatch(text.strip().lower())
    if found is None:
        raise typer.BadParameter(
            f"expected a span such as 250ms, 1.5s or 2m, got {text!r}", param_hint=option
        )
    return float(found["value"]) * _UNIT_MS[found["unit"]]


def seconds(text: str | None) -> float | None:
    """The seconds of an --expires span ("30s", "5m", "PT1H"), None when not given."""
    from ..runtime.clock import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from exc


def _services(names: list[str], urls: dict[str, str]) -> dict[str, str]:
    """The edges of the SERVICE arguments ("all": every service)."""
    if names == ["all"]:
        return urls
    return selected_urls(urls, names)


def _print(outcome: Outcome, as_json: bool, describe: Any) -> None:
    from .main import err, out

    if as_json:
        sys.stdout.write(json.dumps(outcome.as_dict()) + "\n")
        return
    for name, view in sorted(outcome.done.items()):
        for line in describe(name, view):
            out().print(escape(line))
    for name, reason in sorted(outcome.refused.items()):
        err().print(f"[yellow]{name}: refused[/yellow] {reason}")
    for name, reason in sorted(outcome.unreachable.items()):
        err().print(f"[red]{name}: unreachable[/red] {reason}")


def rule_line(service: str, rule: dict[str, Any]) -> str:
    """One rule in a line: where, what it matches and does, and how often it has."""
    matched = [
        f"{key}={rule[key]}"
        for key, default in (
            ("method", "*"),
            ("message_type", ""),
            ("peer", None),
            ("tcn", "*"),
        )
        if rule.get(key) not in (default, None)
    ]
    effect = rule["action"]
    if effect == "status":
        effect = f"status {rule['code']}"
    elif effect in ("latency", "slow_db", "drop") and rule.get("latency_ms"):
        spread = f"±{rule['latency_spread_ms']:g}" if rule.get("latency_spread_ms") else ""
        effect += f" {rule['latency_ms']:g}{spread} ms {rule['latency_distribution']}"
    limits = []
    if rule.get("probability", 1) < 1:
        limits.append(f"p={rule['probability']:g}")
    if rule.get("remaining") is not None:
        limits.append(f"{rule['remaining']} left")
    if rule.get("expires_at"):
        limits.append(f"until {rule['expires_at']}")
    words = [
        f"{service} {rule['id']}: {effect} on {rule['side']}",
        f"[{' '.join(matched) or 'every call'}]",
        *limits,
        f"(injected {rule['injected']})",
    ]
    return " ".join(words)


def _exit_on(outcome: Outcome) -> None:
    if outcome.refused or outcome.unreachable or not outcome.done:
        raise typer.Exit(1)


@faults_app.command("add")
def add(
    action: Annotated[
        str,
        typer.Option(help="status, latency, drop, drop_ack, partition or slow_db."),
    ],
    services: Annotated[
        list[str] | None,
        typer.Argument(help='Services to add the rule to ("all": every service).'),
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option("--service", help="A service to add the rule to (repeatable), as SERVICES."),
    ] = None,
    side: Annotated[str, typer.Option(help="receive, send or both.")] = "receive",
    method: Annotated[str, typer.Option(help="Glob over the RPC's name or path.")] = "*",
    message_type: Annotated[str, typer.Option("--type", help="The message's TOT.")] = "",
    peer: Annotated[str, typer.Option(help="The agency at the other end.")] = "",
    tcn: Annotated[str, typer.Option(help="Glob over the booking's TCN.")] = "*",
    code: Annotated[str, typer.Option(help="status: the gRPC status.")] = "UNAVAILABLE",
    details: Annotated[str, typer.Option(help="status: the details.")] = "",
    latency: Annotated[
        str | None, typer.Option(help="latency, slow_db, drop: e.g. 250ms, 1.5s.")
    ] = None,
    spread: Annotated[str | None, typer.Option(help="The latency's spread, e.g. 50ms.")] = None,
    distribution: Annotated[
        str, typer.Option(help="fixed, uniform, normal or exponential.")
    ] = "fixed",
    probability: Annotated[float, typer.Option(help="Chance the rule fires, 0 to 1.")] = 1.0,
    count: Annotated[int | None, typer.Option(help="At most this many injections.")] = None,
    expires: Annotated[
        str | None, typer.Option(help='Gone after this long ("30s", "5m", "PT1H").')
    ] = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Put a fault rule in force on services of a running federation. Exit 1 when a service
    refuses the rule (the reason names the field) or does not answer."""
    body: dict[str, Any] = {
        "action": action,
        "side": side,
        "method": method,
        "message_type": message_type,
        "peer": peer,
        "tcn": tcn,
        "code": code,
        "details": details,
        "latency_distribution": distribution,
        "probability": probability,
        "count": count,
        "expires_in_s": seconds(expires),
    }
    if latency is not None:
        body["latency_ms"] = milliseconds(latency, "--latency")
    if spread is not None:
        body["latency_spread_ms"] = milliseconds(spread, "--spread")
    names = [*(services or []), *(service or [])]
    if not names:
        raise typer.BadParameter('name the services (or "all")', param_hint="SERVICES")
    urls = _services(names, edge_urls(url))
    outcome = asyncio.run(
        call_each(
            urls,
            lambda client, _name, base: client.post(f"{base}/v1/faults", json=body),
            answer=lambda _name, r: r.json(),
            ok=(201,),
            headers=operator_headers(),
        )
    )
    _print(outcome, as_json, lambda name, rule: [rule_line(name, rule)])
    _exit_on(outcome)


@faults_app.command("partition")
def partition(
    first: Annotated[str, typer.Argument(help="One agency.")],
    second: Annotated[str, typer.Argument(help="The other agency.")],
    expires: Annotated[
        str | None, typer.Option(help='Heal by itself after this long ("30s", "5m").')
    ] = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Cut two agencies off from each other (a partition rule on each, naming the other) until
    `scfed faults clear` or --expires."""
    try:
        a, b = parse_agency(first), parse_agency(second)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if a == b:
        raise typer.BadParameter("name two different agencies")
    expiry = seconds(expires)
    urls = selected_urls(edge_urls(url), [a, b])
    other: dict[str, str] = {a: b, b: a}
    outcome = asyncio.run(
        call_each(
            urls,
            lambda client, name, base: client.post(
                f"{base}/v1/faults",
                json={"action": "partition", "peer": other[name], "expires_in_s": expiry},
            ),
            ok=(201,),
            headers=operator_headers(),
        )
    )
    _print(outcome, as_json, lambda name, rule: [rule_line(name, rule)])
    _exit_on(outcome)


@faults_app.command("list")
def list_rules(service: Services = None, url: Urls = None, as_json: AsJson = False) -> None:
    """List the fault rules in force on each service."""
    urls = selected_urls(edge_urls(url), service or [])
    outcome = asyncio.run(
        call_each(
            urls,
            lambda client, _name, base: client.get(f"{base}/v1/faults"),
            headers=operator_headers(),
        )
    )

    def lines(name: str, view: dict[str, Any]) -> list[str]:
        return [rule_line(name, rule) for rule in view["rules"]] or [f"{name}: no fault rules"]

    _print(outcome, as_json, lines)
    if outcome.unreachable:
        raise typer.Exit(1)


@faults_app.command("clear")
def clear_rules(
    service: Services = None,
    rule_id: Annotated[
        str | None, typer.Option("--id", help="Only this rule (with one --service).")
    ] = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Clear the fault rules of every service (or of those named; --id: one rule)."""
    if rule_id is not None and len(service or []) != 1:
        raise typer.BadParameter("--id needs exactly one --service", param_hint="--id")
    urls = selected_urls(edge_urls(url), service or [])
    path = "/v1/faults" if rule_id is None else f"/v1/faults/{rule_id}"
    outcome = asyncio.run(
        call_each(
            urls,
            lambda client, _name, base: client.delete(f"{base}{path}"),
            headers=operator_headers(),
        )
    )
    _print(outcome, as_json, lambda name, view: [f"{name}: {view['cleared']} rule(s) cleared"])
    _exit_on(outcome)
