"""`scfed clock` and `scfed reset`: control of a running federation over its services' HTTP
edges (step or re-pace agency clocks; empty every service and optionally seed it again)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..federation import parse_agency
from .endpoints import operator_headers

if TYPE_CHECKING:
    import httpx

Urls = Annotated[
    list[str] | None,
    typer.Option(
        "--url",
        help="NAME=URL of a service's HTTP edge (default: each service's own host and port "
        "settings, 127.0.0.1:8081..8085).",
    ),
]
Services = Annotated[
    list[str] | None,
    typer.Option("--service", help="Only this service (repeatable; default: every service)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

clock_app = typer.Typer(
    help="Agency clocks of a running federation: step a manual one, re-pace an accelerated one.",
    no_args_is_help=True,
)


@dataclass
class Outcome:
    """What each service answered to one control call."""

    done: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data."""
        return {"done": self.done, "refused": self.refused, "unreachable": self.unreachable}


async def call_each(
    urls: dict[str, str],
    send: Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]],
    answer: Callable[[str, httpx.Response], Any] = lambda _name, r: r.json(),
    *,
    timeout: float = 60.0,
    ok: tuple[int, ...] = (200,),
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """Calls every service at once (`send` given the client, the name and the base URL), each
    request with `headers` (the operator's token, endpoints.operator_headers); sorts the
    answers by outcome, `answer` making a success (a status in `ok`) into what `done` keeps."""
    import httpx

    outcome = Outcome()

    async def one(client: httpx.AsyncClient, name: str, url: str) -> None:
        try:
            r = await send(client, name, url)
        except httpx.HTTPError as exc:
            outcome.unreachable[name] = f"{url}: {exc.__class__.__name__}: {exc}".rstrip(": ")
            return
        if r.status_code in ok:
            outcome.done[name] = answer(name, r)
        elif r.headers.get("content-type", "").startswith("application/json"):
            outcome.refused[name] = f"{r.status_code}: {r.json().get('detail', r.text)}"
        else:
            outcome.refused[name] = f"{r.status_code}: {r.text[:200]}"

    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        await asyncio.gather(*(one(client, name, url) for name, url in urls.items()))
    return outcome


async def post_each(
    urls: dict[str, str],
    path: str,
    body: dict[str, Any] | None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """POSTs `body` to `path` on every service at once, with `headers`; sorts the answers by
    outcome."""
    return await call_each(
        urls, lambda client, _name, url: client.post(f"{url}{path}", json=body), headers=headers
    )


def selected_urls(urls: dict[str, str], services: list[str]) -> dict[str, str]:
    """The edges of the `--service` names given (BadParameter for an unknown one), else all."""
    chosen: dict[str, str] = {}
    for name in services:
        try:
            agency = parse_agency(name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--service") from exc
        chosen[agency] = urls[agency]
    return chosen or urls


def edge_urls(given: list[str] | None) -> dict[str, str]:
    """Every service's HTTP edge: `--url NAME=URL` options over the environment's defaults."""
    from .main import _http_urls

    return _http_urls(given or [])


def _report(outcome: Outcome, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Prints what every service answered, as a table or one JSON object."""
    from .main import err, out

    if as_json:
        sys.stdout.write(json.dumps({**outcome.as_dict(), **(extra or {})}) + "\n")
        return
    for name, view in sorted(outcome.done.items()):
        if "now" in view:
            out().print(f"{name}: {view['clock']} clock, now {view['now']}")
        else:
            removed = sum(view["deleted"].values())
            out().print(f"{name}: reset, {removed} rows removed in {view['seconds']:.3f}s")
    for name, reason in sorted(outcome.refused.items()):
        err().print(f"[yellow]{name}: refused[/yellow] {reason}")
    for name, reason in sorted(outcome.unreachable.items()):
        err().print(f"[red]{name}: unreachable[/red] {reason}")


@clock_app.command("advance")
def clock_advance(
    duration: Annotated[
        str,
        typer.Argument(help='How far: ISO 8601 ("P2D", "PT48H") or short ("48h", "30d", "1d12h").'),
    ],
    service: Services = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Step the manual clocks of a running federation forward. Services on another clock are
    named and left alone; exit 1 when a named service refuses, when none was stepped, or when
    a service does not answer."""
    from ..runtime.clock import parse_duration

    try:
        span = parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="DURATION") from exc
    urls = selected_urls(edge_urls(url), service or [])
    step = {"seconds": span.total_seconds()}
    outcome = asyncio.run(post_each(urls, "/v1/clock/advance", step, headers=operator_headers()))
    _report(outcome, as_json)
    if outcome.unreachable or not outcome.done or (service and outcome.refused):
        raise typer.Exit(1)


@clock_app.command("set")
def clock_set(
    spec: Annotated[
        str, typer.Argument(help='The clock to run, "accelerated:<factor>", e.g. accelerated:60.')
    ],
    service: Services = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Re-pace the accelerated clocks of a running federation from their current agency time.
    Only the factor of an accelerated clock changes at runtime (the services' parts hold their
    clock); another change is refused, and exits 1 like `clock advance`."""
    urls = selected_urls(edge_urls(url), service or [])
    outcome = asyncio.run(post_each(urls, "/v1/clock", {"spec": spec}, headers=operator_headers()))
    _report(outcome, as_json)
    if outcome.unreachable or not outcome.done or (service and outcome.refused):
        raise typer.Exit(1)


def reset(
    seed: Annotated[
        int | None, typer.Option(min=0, help="Seed a synthetic world again after the reset.")
    ] = None,
    world_size: Annotated[
        int, typer.Option(min=0, help="With --seed: bookings the world plans.")
    ] = 100,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Empty every service of a running federation back to its configuration (records,
    outbox, inbox, journal, biometric indexes; settings and clocks stay), and with --seed seed
    a world again through the gRPC edges (SCFED_<SERVICE>_ADDR, else the default ports)."""
    urls = edge_urls(url)
    started = time.perf_counter()
    outcome = asyncio.run(post_each(urls, "/v1/admin/reset", None, headers=operator_headers()))
    timing: dict[str, Any] = {"reset_seconds": round(time.perf_counter() - started, 4)}
    if outcome.unreachable or outcome.refused:
        _report(outcome, as_json, timing)
        raise typer.Exit(1)
    if seed is not None:
        timing["seeded"] = _reseed(seed, world_size)
        timing["seed_seconds"] = round(time.perf_counter() - started - timing["reset_seconds"], 4)
    _report(outcome, as_json, timing)
    if not as_json:
        from .main import out

        out().print(f"federation reset in {timing['reset_seconds']:.3f}s")
        if seed is not None:
            out().print(f"seeded world {seed} in {timing['seed_seconds']:.3f}s: {timing['seeded']}")


def _reseed(seed: int, world_size: int) -> dict[str, int]:
    """Seeds a world into the federation at its gRPC addresses; exits 1 when seeding fails."""
    import grpc

    from ..runtime.config import ServiceSettings
    from ..world.seeding import seed_world
    from ..world.world import build_world
    from .main import _addresses, _operator_channels, err, save_lea_keys
    from .rpc_errors import rpc_failure

    seeding = seed_world(build_world(seed, world_size), _addresses(), channels=_operator_channels())
    try:
        counts = asyncio.run(seeding)
    except grpc.aio.AioRpcError as exc:
        err().print(f"[red]seeding failed:[/red] {rpc_failure(exc)}")
        raise typer.Exit(1) from exc
    if counts.lea_keys:
        save_lea_keys(counts.lea_keys, ServiceSettings().data_dir)
    return counts.counts()
