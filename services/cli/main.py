"""The `scfed` command line.

Each command imports what it needs when it runs: gRPC, SQLAlchemy, FastAPI and numpy cost
about a second of CPU to import, and `scfed --help` or `scfed classify` need none of them
(`scfed bench startup` measures it; a test keeps them out of the module's imports).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ..federation import Agency
from ..lesc.offense_levels import DEFAULT_TABLE, TABLE_NAMES, load_table
from . import endpoints
from .audit import audit
from .certs import certs_app
from .conformance import conformance
from .control import clock_app, reset
from .endpoints import agency_item, is_host_port, is_http_url
from .faults import faults_app
from .nlets import format_message
from .snapshots import snapshot_app

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..console.server import ConsoleServer
    from ..runtime.tls import ChannelFactory
    from ..world.seeding import SeedCounts
    from .demo import Progress as DemoProgress
    from .launcher import LocalFederation
    from .remote import RemoteDemoOptions

app = typer.Typer(
    name="scfed",
    help="An emulated Secure Communities IDENT/IAFIS interoperability federation.",
    no_args_is_help=True,
    add_completion=False,
)


# Consoles are made on each use, never cached: a console fixes its width (COLUMNS) when it is
# made, and one command after another in a process (a test, a notebook) may run at other widths.
# Rich is imported on first use: importing its console is a tenth of `classify --json`.
def err() -> Console:
    """The console for errors and progress (stderr). A line is never wrapped at the console's
    width (80 columns when not a terminal), so a path or a key stays whole for a script."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def out() -> Console:
    """The console for results (stdout); lines unwrapped, as on `err`."""
    from rich.console import Console

    return Console(soft_wrap=True)


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SCFED_DATABASE_URL",
        help="PostgreSQL URL (postgresql+asyncpg://...); each service gets its own schema. "
        "Default: one SQLite file per service.",
    ),
]


def _check_database_url(url: str | None) -> str | None:
    from pydantic import ValidationError

    from ..runtime.config import ServiceSettings

    if url is None:
        return None
    try:
        return ServiceSettings(database_url=url).database_url
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]) for e in exc.errors())
        raise typer.BadParameter(reason, param_hint="--database-url") from exc


# The launcher's DEFAULT_READY_TIMEOUT_S is the default of every command that takes it.
Rollout = Annotated[
    bool,
    typer.Option(
        "--rollout/--no-rollout",
        help="The world under the national rollout plan (Strategic Plan Appendix B: phases to "
        "30, 60 and 95 % coverage, FY2009-FY2011): a booking dated before its jurisdiction's "
        "activation gets criminal-history processing only. --no-rollout: every jurisdiction "
        "as its fixed flag says.",
    ),
]
Tls = Annotated[
    bool,
    typer.Option(
        "--tls/--no-tls",
        envvar="SCFED_TLS",
        help="Mutual TLS between the services, with certificates under DATA_DIR/certs (made "
        "when missing; --tls-dir elsewhere).",
    ),
]
TlsDir = Annotated[
    Path | None,
    typer.Option(envvar="SCFED_TLS_DIR", help="The certificates (default: DATA_DIR/certs)."),
]
ConsolePort = Annotated[
    int,
    typer.Option(
        "--console-port",
        envvar="SCFED_CONSOLE_PORT",
        min=0,
        max=65535,
        help="The web console's port on 127.0.0.1 (0: none).",
    ),
]


ReadyTimeout = Annotated[
    float,
    typer.Option(
        "--ready-timeout",
        envvar="SCFED_READY_TIMEOUT",
        min=0.1,
        help="Seconds to wait for every service to answer /readyz before giving up.",
    ),
]
SibUrl = Annotated[
    str | None,
    typer.Option(
        "--sib-url",
        help="Drive a running federation (compose, Kubernetes) through this SIB agency edge, "
        "e.g. http://127.0.0.1:8081, instead of starting one.",
    ),
]
Urls = Annotated[
    list[str] | None,
    typer.Option(
        help="With --sib-url: NAME=URL of another service's HTTP edge, for its counters and "
        "journal (default 127.0.0.1:8082..8085)."
    ),
]


def _check_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise typer.BadParameter(
            f"expected http://host:port, got {value!r}", param_hint="--sib-url"
        )
    return value.rstrip("/")


def _parse_addresses(given: list[str]) -> dict[str, str]:
    """gRPC addresses: NAME=HOST:PORT options over the environment's and the defaults."""
    addresses = _addresses()
    for item in given:
        agency, address = _agency_option(item, "NAME=HOST:PORT", "--addr", is_host_port)
        addresses[agency] = address
    return addresses


def _agency_option(
    item: str, form: str, param_hint: str, valid: Callable[[str], bool]
) -> tuple[Agency, str]:
    """An option's NAME=VALUE, NAME an agency and VALUE valid; BadParameter otherwise."""
    try:
        return agency_item(item, form, valid)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from exc


# Where `scfed up --seed`, `scfed seed` and `scfed reset --seed` save the LEAs' API keys,
# under the data directory.
LEA_KEYS_FILE = "lea-keys.json"
MESSAGE_COUNTS = (
    "car",
    "cpi",
    "sre",
    "ident_searches",
    "ident_matches",
    "no_match_idr",
    "iaq",
    "iar",
    "joint_idr_iar",
    "relayed_to_lea",
    "not_relayed",
)
STAGES = {
    "seed": "seeding world",
    "submit": "bookings submitted",
    "answer": "bookings answered",
    "release": "release notices",
    "cases": "removal cases closed",
    "solo": "bookings alone",
    "echo": "raw gRPC echo",
}
T = TypeVar("T")


def _with_progress(run: Callable[[DemoProgress], Coroutine[Any, Any, T]], as_json: bool) -> T:
    """Runs a demo with a progress bar per stage on stderr (gone afterwards with --json)."""
    import asyncio

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
        transient=as_json,
    ) as bars:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGES[stage], total=total)
            bars.update(tasks[stage], completed=done, total=total)

        return asyncio.run(run(progress))


def _counts_table(title: str, result: dict[str, Any], keys: tuple[str, ...]) -> Table:
    """A demo's counts, detainers by level, latency and rate as a table."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in keys:
        table.add_row(key, "n/a" if result[key] is None else str(result[key]))
    for level, n in result["detainers"].items():
        table.add_row(f"detainers {level}", str(n))
    table.add_row(
        "latency p50 / p99 (ms)", f"{result['latency_ms']['p50']} / {result['latency_ms']['p99']}"
    )
    table.add_row("bookings per second", str(result["bookings_per_s"]))
    return table


def _remote_demo(options: RemoteDemoOptions, *, as_json: bool) -> None:
    import grpc

    from .remote import run_remote_demo
    from .rpc_errors import rpc_failure

    try:
        result = _with_progress(lambda progress: run_remote_demo(options, progress), as_json)
    except grpc.aio.AioRpcError as exc:
        err().print(f"[red]demo failed:[/red] {rpc_failure(exc)}")
        raise typer.Exit(1) from exc
    except (RuntimeError, TimeoutError, ValueError) as exc:
        err().print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        keys = ("bookings", "answered", "refused", "unanswered", *MESSAGE_COUNTS)
        title = f"scfed demo against {options.sib_url}: this run's counts"
        table = _counts_table(title, result, (*keys, "dead_letters", "errors"))
        if "ebts_answers" in result:
            files = ", ".join(f"{tot} {n}" for tot, n in result["ebts_answers"].items())
            table.add_row("EBTS answer files read", files or "none")
        out().print(table)
        out().print(f"removal cases: {result['removals']}")
        out().print(f"LEA API keys: {result['lea_keys']}")
        if result["unreachable"]:
            out().print(f"not counted (edge not reached): {', '.join(result['unreachable'])}")
        if result["external"]:
            out().print(f"not counted (external, no edge read): {', '.join(result['external'])}")
        for check in result["unchecked"]:
            out().print(f"not checked: {check}")
        for name, reason in result["not_seeded"].items():
            out().print(f"not seeded: {name} ({reason})")
        if result["sample_tcn"]:
            out().print(
                f"trace a booking: scfed trace {result['sample_tcn']} --sib-url {options.sib_url}"
            )
    if result["problems"]:
        err().print("[red]inconsistent:[/red] " + "; ".join(result["problems"]))
    if result["problems"] or result["unanswered"]:
        raise typer.Exit(1)


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="Where the SQLite files and logs live.")] = Path(
        ".scfed-data"
    ),
    database_url: DatabaseUrl = None,
    clock: Annotated[str, typer.Option(help="real, accelerated:<factor> or manual")] = "real",
    agency_speed: Annotated[
        float,
        typer.Option(min=1, help="How much faster LESC and the field offices work (1 = real)."),
    ] = 3600.0,
    port_offset: Annotated[
        int, typer.Option(min=0, max=1000, help="Added to every default port (50051.., 8081..).")
    ] = 0,
    seed: Annotated[
        int | None, typer.Option(help="Seed a synthetic world once the services are ready.")
    ] = None,
    world_size: Annotated[int, typer.Option(min=0, help="Bookings the seeded world plans.")] = 100,
    rollout: Rollout = True,
    external: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=HOST:PORT of an agency someone else runs (repeat the option): it is not "
            "started and the others are pointed at it. A federation-wide SCFED_<SERVICE>_ADDR "
            "does the same."
        ),
    ] = None,
    ready_timeout: ReadyTimeout = 60.0,
    max_fast_failures: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="SCFED_UP_MAX_FAST_FAILURES",
            help="Give up on a service after this many failures within --restart-window.",
        ),
    ] = 5,
    restart_window: Annotated[
        float,
        typer.Option(
            min=1,
            envvar="SCFED_UP_RESTART_WINDOW_S",
            help="Seconds within which failures count towards giving up.",
        ),
    ] = 60.0,
    max_restart_delay: Annotated[
        float,
        typer.Option(
            min=0,
            envvar="SCFED_UP_MAX_RESTART_DELAY_S",
            help="The longest backoff before a restart (from 1 s, doubling).",
        ),
    ] = 30.0,
    tls: Tls = True,
    tls_dir: TlsDir = None,
    console_port: ConsolePort = 8090,
) -> None:
    """Run the five services (less any external ones) as separate processes on loopback until
    interrupted, restarting any that ends; the web console beside them."""
    import asyncio

    import grpc
    from rich.markup import escape
    from rich.table import Table

    from ..world.seeding import seed_world
    from ..world.world import build_world
    from .launcher import LocalFederation, RestartPolicy, external_agencies, external_health

    url = _check_database_url(database_url)
    try:
        externals = external_agencies(os.environ, external or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--external") from exc
    fed = LocalFederation(
        data_dir=data_dir,
        database_url=url,
        clock=clock,
        agency_speed=agency_speed,
        fixed_ports=True,
        port_offset=port_offset,
        external=externals,
        ready_timeout=ready_timeout,
        tls=tls,
        tls_dir=tls_dir,
    )
    stopping = False
    console_server: ConsoleServer | None = None

    def _stop(_sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    # Installed before anything starts, so an interrupt at any point still stops the children.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if fed.ensure_certificates():
            err().print(f"made the federation's certificates in {fed.certificate_dir}")
    except FileExistsError as exc:
        err().print(f"[red]federation did not start:[/red] {exc}")
        raise typer.Exit(1) from exc
    fed.start()
    try:
        try:
            asyncio.run(fed.wait_ready())
            # A warning, not an error: the others' outboxes hold its messages until it answers.
            health = external_health(externals, channels=fed.operator_channels())
            for name, problem in asyncio.run(health).items():
                warning = f"external {name} does not answer gRPC health"
                err().print(f"[yellow]{warning}:[/yellow] {problem}")
            if seed is not None and not stopping:
                from ..world.rollout import PLAN_PHASES

                world = build_world(seed, world_size, rollout=PLAN_PHASES if rollout else None)
                channels = fed.operator_channels()
                seeded = seed_world(world, fed.all_addresses(), channels=channels)
                _print_seeded(seed, asyncio.run(seeded), fed.data_dir)
        except grpc.aio.AioRpcError as exc:
            from .rpc_errors import rpc_failure

            err().print(f"[red]federation did not start:[/red] {rpc_failure(exc)}")
            raise typer.Exit(1) from exc
        except (RuntimeError, TimeoutError) as exc:
            err().print(f"[red]federation did not start:[/red] {exc}")
            raise typer.Exit(1) from exc
        table = Table(title="scfed federation")
        for column in ("service", "gRPC", "HTTP", "log"):
            table.add_column(column)
        for name, svc in fed.services.items():
            table.add_row(name, svc.grpc_address, svc.http_url, str(svc.log_path))
        for name, address in externals.items():
            table.add_row(name, address, "(external)", "(external)")
        out().print(table)
        if console_port:
            console_server = _start_console(fed, console_port + port_offset)
        out().print("LEA edge: POST /v1/bookings on the sib HTTP address. Ctrl-C stops.")
        # A service that dies is restarted with backoff; one that keeps dying is given up on
        # while the others keep running.
        policy = RestartPolicy(
            max_fast_failures=max_fast_failures,
            window_s=restart_window,
            base_delay_s=min(1.0, max_restart_delay),
            max_delay_s=max_restart_delay,
        )
        while not stopping:
            for line in fed.supervise(policy, time.monotonic()):
                err().print(f"[yellow]supervisor:[/yellow] {escape(line)}", highlight=False)
            if fed.all_given_up():
                err().print("[red]every service was given up on[/red]")
                raise typer.Exit(1)
            time.sleep(0.5)
    finally:
        if console_server is not None:
            console_server.stop()
        fed.stop()
    out().print("federation stopped")


def _start_console(fed: LocalFederation, port: int) -> ConsoleServer | None:
    """The web console over `fed`'s edges, in a thread; None, with a warning, when its port is
    taken (the federation runs on without it)."""
    from ..console.app import create_app
    from ..console.server import ConsoleServer, bind
    from ..console.sources import ConsoleConfig

    urls = {name: svc.http_url for name, svc in fed.services.items()}
    config = ConsoleConfig(urls=urls, operator_headers=fed.operator_headers())
    try:
        server = ConsoleServer(create_app(config), bind("127.0.0.1", port))
        server.start_in_thread()
    except (OSError, RuntimeError) as exc:
        err().print(f"[yellow]console not started:[/yellow] {exc}")
        return None
    out().print(f"console: {server.url}", highlight=False)
    return server


@app.command()
def seed(
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic world.")] = 1,
    world_size: Annotated[int, typer.Option(min=0, help="Bookings the world plans.")] = 100,
    rollout: Rollout = True,
) -> None:
    """Seed a running federation (SCFED_<SERVICE>_ADDR, else the default ports; with TLS on,
    the default, with the operator's certificate from SCFED_TLS_DIR). Every LEA's API key is
    issued afresh and saved in SCFED_DATA_DIR/lea-keys.json."""
    import asyncio

    import grpc

    from ..runtime.config import ServiceSettings
    from ..world.rollout import PLAN_PHASES
    from ..world.seeding import seed_world
    from ..world.world import build_world

    try:
        world = build_world(seed, world_size, rollout=PLAN_PHASES if rollout else None)
        seeding = seed_world(world, _addresses(), channels=_operator_channels())
        counts = asyncio.run(seeding)
    except grpc.aio.AioRpcError as exc:
        from .rpc_errors import rpc_failure

        err().print(f"[red]seeding failed:[/red] {rpc_failure(exc)}")
        raise typer.Exit(1) from exc
    _print_seeded(seed, counts, ServiceSettings().data_dir)


def _print_seeded(seed: int, counts: SeedCounts, data_dir: Path) -> None:
    """What seeding loaded, each agency it could not seed with the reason, and where the LEAs'
    API keys were saved."""
    out().print(f"seeded world {seed}: {counts.counts()}")
    for name, reason in counts.not_seeded.items():
        err().print(f"[yellow]not seeded:[/yellow] {name} ({reason})")
    if counts.lea_keys:
        saved = save_lea_keys(counts.lea_keys, data_dir)
        out().print(f"LEA API keys (ORI -> key, for Authorization: Bearer): {saved}")


def save_lea_keys(keys: dict[str, str], data_dir: Path) -> Path:
    """Writes the LEAs' API keys as JSON (ORI -> key) to DATA_DIR/lea-keys.json, readable by
    the owner only; returns the file."""
    from ..runtime.tls import write_file

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LEA_KEYS_FILE
    # Written whole, then renamed into place: a reader never sees half a file.
    partial = path.with_name(f".{LEA_KEYS_FILE}.partial")
    write_file(partial, json.dumps(keys, indent=2).encode() + b"\n", 0o600)
    partial.replace(path)
    return path


@app.command("lea-key")
def lea_key(
    ori: Annotated[str, typer.Argument(help="The LEA's ORI, as registered at the SIB.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Issue an LEA's API key at the SIB (revoking its previous one) and print it: the key the
    LEA sends as Authorization: Bearer to the agency edge. Shown once; the SIB keeps its hash."""
    import asyncio

    import grpc

    from scfed.sib.v1 import sib_pb2_grpc

    from ..sib.lea_client import issue_lea_keys

    async def issue() -> dict[str, str]:
        async with _operator_channels()(Agency.SIB, _addresses()[Agency.SIB]) as channel:
            return await issue_lea_keys(sib_pb2_grpc.StateIdentificationBureauStub(channel), [ori])

    try:
        keys = asyncio.run(issue())
    except grpc.aio.AioRpcError as exc:
        err().print(f"[red]no key issued:[/red] {exc.code().name}: {exc.details()}")
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps({"ori": ori, "api_key": keys[ori]}))
    else:
        print(keys[ori])


def _print_summary(result: dict[str, Any]) -> None:
    """A local demo's counts, cases and database as a table, and how to trace a booking."""
    title = f"scfed demo: {result['bookings']} bookings, seed {result['seed']}"
    table = _counts_table(title, result, ("bookings", *MESSAGE_COUNTS, "errors", "unanswered"))
    table.add_row("release notices", str(result["releases"]))
    for state, n in sorted(result["cases"]["by_state"].items()):
        table.add_row(f"cases {state}", str(n))
    table.add_row("database", result["database"])
    if "ebts_answers" in result:
        files = ", ".join(f"{tot} {n}" for tot, n in result["ebts_answers"].items())
        table.add_row("EBTS answer files read", files or "none")
    out().print(table)
    if result["problems"]:
        err().print("[red]inconsistent:[/red] " + "; ".join(result["problems"]))
    if result["data_dir"] and result["sample_tcn"]:
        out().print(
            f"trace a booking: scfed trace {result['sample_tcn']} --data-dir {result['data_dir']}"
        )


@app.command()
def demo(
    bookings: Annotated[int, typer.Option(min=1, help="How many bookings to drive.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic world.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object.")] = False,
    database_url: DatabaseUrl = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the services' data here (default: a temp dir).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 16,
    rate: Annotated[
        float | None,
        typer.Option(min=0.1, help="Bookings per second to offer (default: as fast as possible)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every answer.")] = 600.0,
    removals: Annotated[
        bool,
        typer.Option(
            help="Then notice every detainer subject's release and run the cases to removal."
        ),
    ] = True,
    sib_url: SibUrl = None,
    url: Urls = None,
    addr: Annotated[
        list[str] | None,
        typer.Option(
            help="With --sib-url: NAME=HOST:PORT of a service's gRPC edge, for seeding "
            "(default SCFED_<SERVICE>_ADDR, else 127.0.0.1:50051..50055)."
        ),
    ] = None,
    seed_world_first: Annotated[
        bool,
        typer.Option(
            "--seed-world/--no-seed-world",
            help="With --sib-url: seed the world through the services' gRPC edges first.",
        ),
    ] = True,
    external: Annotated[
        list[str] | None,
        typer.Option(
            help="With --sib-url: NAME=HOST:PORT of an agency someone else runs: seeded there "
            "where it implements the seeding RPCs, its counters not read (repeat the option).",
        ),
    ] = None,
    ready_timeout: ReadyTimeout = 60.0,
    tls: Tls = True,
    booking_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="json: bookings to POST /v1/bookings; ebts: CAR files to POST "
            "/v1/transactions, and every answer read back as an EBTS file.",
        ),
    ] = "json",
    rollout: Rollout = True,
) -> None:
    """Start the federation, seed a synthetic world, drive bookings, run the removal cases,
    print a summary and the Strategic Plan's measures. With --sib-url, drive a federation
    that already runs instead (no removal cases)."""
    from .demo import BookingFormat, DemoOptions, run_demo
    from .remote import RemoteDemoOptions

    if booking_format not in set(BookingFormat):
        err().print(f"[red]--format is json or ebts[/red], not {booking_format!r}")
        raise typer.Exit(2)
    if sib_url is not None:
        externals: dict[str, str] = dict(
            _agency_option(item, "NAME=HOST:PORT", "--external", is_host_port)
            for item in external or []
        )
        remote = RemoteDemoOptions(
            sib_url=_check_http_url(sib_url),
            urls={k: v for k, v in _http_urls(url or []).items() if k != Agency.SIB},
            addresses={**_parse_addresses(addr or []), **externals},
            external=frozenset(externals),
            bookings=bookings,
            seed=seed,
            seed_world=seed_world_first,
            channels=_operator_channels(),
            concurrency=concurrency,
            rate=rate,
            timeout_s=timeout,
            rollout=rollout,
            format=BookingFormat(booking_format),
        )
        _remote_demo(remote, as_json=as_json)
        return
    url_ = _check_database_url(database_url)
    options = DemoOptions(
        bookings=bookings,
        seed=seed,
        database_url=url_,
        data_dir=data_dir,
        concurrency=concurrency,
        rate=rate,
        timeout_s=timeout,
        removals=removals,
        ready_timeout_s=ready_timeout,
        tls=tls,
        format=BookingFormat(booking_format),
        rollout=rollout,
    )
    try:
        result = _with_progress(lambda progress: run_demo(options, progress), as_json)
    except (RuntimeError, TimeoutError, ValueError) as exc:
        err().print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        _print_summary(result)
        print_report(result["measures"])
        print_rollout(result.get("rollout", []))
    if result["problems"] or result["unanswered"]:
        raise typer.Exit(1)


@app.command()
def trace(
    tcn: Annotated[str, typer.Argument(help="The booking's TCN.")],
    data_dir: Annotated[
        Path | None, typer.Option(help="Read the journals from this data dir instead.")
    ] = None,
    database_url: DatabaseUrl = None,
    schema_prefix: Annotated[
        str, typer.Option(help="With --database-url: schema prefix.")
    ] = "scfed",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    sib_url: SibUrl = None,
    url: Urls = None,
) -> None:
    """Show one booking's messages in order across all services (with --sib-url, from the
    HTTP edges of a running federation)."""
    import asyncio

    from rich.table import Table

    from .offline import OfflineDatabases
    from .remote import trace_http
    from .trace import trace_ids, trace_offline, trace_online

    try:
        if sib_url is not None:
            urls = {**_http_urls(url or []), Agency.SIB: _check_http_url(sib_url)}
            entries, unreachable = asyncio.run(trace_http(tcn, urls))
            if unreachable:
                err().print(f"not reached (left out of the trace): {', '.join(unreachable)}")
        elif data_dir is not None or database_url:
            databases = OfflineDatabases(data_dir, _check_database_url(database_url), schema_prefix)
            entries = asyncio.run(trace_offline(tcn, databases))
        else:
            online = trace_online(tcn, _addresses(), channels=endpoints.operator_channels())
            entries, left_out = asyncio.run(online)
            for name, why in left_out.items():
                err().print(f"left out of the trace: {name} ({why})")
    except (RuntimeError, FileNotFoundError) as exc:
        err().print(f"[red]trace failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if not entries:
        err().print(f"no journal entry mentions TCN {tcn}")
        raise typer.Exit(1)
    if as_json:
        sys.stdout.write(json.dumps(entries) + "\n")
        return
    ids = trace_ids(entries)
    table = Table(
        title=f"trace {tcn}",
        caption=f"trace id {', '.join(ids)}" if ids else "no trace id (tracing off)",
    )
    for column in ("at", "service", "dir", "TOT", "peer", "outcome", "detail"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e["at"][11:23],
            e["service"],
            e["direction"],
            e["tot"],
            e["peer"],
            e["outcome"],
            e["detail"],
        )
    out().print(table)


def _addresses() -> dict[str, str]:
    """gRPC addresses of a running federation (endpoints.grpc_addresses)."""
    return endpoints.grpc_addresses()


def _operator_channels() -> ChannelFactory:
    """How the operator's commands dial gRPC (endpoints.operator_channels); exit 1 with the
    file's name when TLS is on and a certificate is missing."""
    try:
        return endpoints.operator_channels()
    except FileNotFoundError as exc:
        err().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def _http_urls(given: list[str]) -> dict[str, str]:
    """HTTP edges of a running federation: NAME=URL options, else each service's own
    SCFED_<SERVICE>_HTTP_HOST and SCFED_<SERVICE>_HTTP_PORT (default 8081..8085)."""
    urls = endpoints.http_urls()
    for item in given:
        agency, url = _agency_option(item, "NAME=http://host:port", "--url", is_http_url)
        urls[agency] = url
    return urls


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"expected an ISO 8601 time such as 2026-11-01T00:00:00Z, got {value!r}",
            param_hint="--since",
        ) from exc
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since


def print_report(rows: list[dict[str, Any]], *, title: str = "Strategic Plan measures") -> None:
    """The measures as a table, each with its definition."""
    from rich.table import Table

    from .report import format_value

    table = Table(title=title, show_lines=True)
    table.add_column("goal")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("definition")
    for row in rows:
        table.add_row(row["goal"], row["measure"], format_value(row), row["definition"])
    out().print(table)


def print_programs(rows: list[dict[str, Any]], *, console: Any = None) -> None:
    """Goal 3.3's review: each program's priority figure against its target."""
    from rich.table import Table

    if not rows:
        return
    table = Table(
        title="Programs in the integrated performance review (Goal 3.3)",
        caption="met: the program's Level 1 figure reached its target; - where it had no Level 1 "
        "work in the period",
    )
    for column in ("program", "priority target", "figure", "target", "met"):
        table.add_column(column, justify="right" if column in ("figure", "target") else "left")
    for row in rows:
        figure = "-" if row["value_pct"] is None else f"{row['value_pct']:.1f}%"
        met = {None: "-", True: "yes", False: "no"}[row["met"]]
        table.add_row(
            row["program"],
            row["priority_target"],
            f"{figure} ({row['numerator']}/{row['denominator']})",
            f"{row['target_pct']:g}%",
            met,
        )
    (console or out()).print(table)


def print_rollout(rows: list[dict[str, Any]], *, console: Any = None) -> None:
    """Coverage by rollout phase as a table (nothing when no rollout plan is registered)."""
    from rich.table import Table

    if not rows:
        return
    table = Table(
        title="Coverage by rollout phase (Strategic Plan Appendix B)",
        caption="share: of the criminal alien population, as the rollout plan weighed each "
        "jurisdiction; bookings: taken at the phase's jurisdictions, with or without the IDENT "
        "search (before activation, or without an active MOA, only criminal history)",
    )
    for column in ("phase", "target", "jurisdictions", "share", "cumulative", "activated"):
        table.add_column(column, justify="left" if column in ("phase", "activated") else "right")
    table.add_column("bookings with IDENT search", justify="right")
    table.add_column("without", justify="right")
    for row in rows:
        if row["phase"]:
            phase = f"{row['phase']} ({row['fiscal_year'] or 'beyond the Plan'})"
            target = "-" if row["target_pct"] is None else f"{row['target_pct']:g}%"
            cumulative = f"{row['cumulative_share_pct']:.1f}%" + (
                "" if row["target_met"] is not False else " (below target)"
            )
        else:
            phase, target, cumulative = "not in the plan", "-", "-"
        days = [d for d in (row["first_activation"], row["last_activation"]) if d]
        activated = " .. ".join(dict.fromkeys(days)) or "-"
        table.add_row(
            phase,
            target,
            str(row["jurisdictions"]),
            f"{row['share_pct']:.1f}%",
            cumulative,
            activated,
            str(row["bookings_with_ident_search"]),
            str(row["bookings_without_ident_search"]),
        )
    (console or out()).print(table)


@app.command()
def report(
    since: Annotated[
        str | None,
        typer.Option(help="Only records at or after this ISO 8601 time (each service's clock)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Read a stopped federation's SQLite files from here.")
    ] = None,
    database_url: DatabaseUrl = None,
    schema_prefix: Annotated[
        str, typer.Option(help="With --database-url: schema prefix.")
    ] = "scfed",
    url: Annotated[
        list[str] | None,
        typer.Option(help="NAME=URL of a running service's HTTP edge (sib, lesc, ice_field)."),
    ] = None,
) -> None:
    """The Strategic Plan's measures (goals 1.1 to 3.3) from the federation's own records, the
    programs Goal 3.3 reviews, and coverage by rollout phase where a rollout plan is registered."""
    import asyncio

    from .offline import OfflineDatabases
    from .report import compute, counts_offline, counts_online, review_programs, rollout_by_phase

    when = _parse_since(since)
    try:
        if data_dir is not None or database_url:
            databases = OfflineDatabases(data_dir, _check_database_url(database_url), schema_prefix)
            counts = asyncio.run(counts_offline(databases, when))
            unreadable: dict[str, str] = {}
        else:
            counts, unreadable = asyncio.run(counts_online(_http_urls(url or []), when))
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        err().print(f"[red]report failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    rows = compute(counts, unreadable)
    phases = rollout_by_phase(counts)
    programs = review_programs(counts)
    if as_json:
        since_ = when.isoformat() if when else None
        document = {
            "since": since_,
            "measures": rows,
            "programs": programs,
            "rollout": phases,
            "unreadable": unreadable,
        }
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        print_report(rows)
        print_programs(programs)
        print_rollout(phases)
        for name, why in unreadable.items():
            err().print(f"not read (its measures left out): {name} ({why})")


@app.command()
def console(
    port: Annotated[
        int,
        typer.Option(min=0, max=65535, envvar="SCFED_CONSOLE_PORT", help="0 picks a free port."),
    ] = 8090,
    host: Annotated[
        str,
        typer.Option(
            help="Where to listen. The console requeues dead letters with the operator's token: "
            "keep it on loopback unless others may do that."
        ),
    ] = "127.0.0.1",
    url: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=URL of a service's HTTP edge (default: each service's "
            "SCFED_<SERVICE>_HTTP_HOST/_HTTP_PORT, else 127.0.0.1:8081..8085)."
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the console in the default browser.")
    ] = False,
) -> None:
    """Serve the web console over a running federation's HTTP edges until interrupted."""
    import asyncio
    import webbrowser

    from ..console.app import create_app
    from ..console.server import ConsoleServer, bind
    from ..console.sources import ConsoleConfig

    config = ConsoleConfig(
        urls=_http_urls(url or []), operator_headers=endpoints.operator_headers()
    )
    try:
        sock = bind(host, port)
    except OSError as exc:
        err().print(f"[red]console did not start:[/red] {exc}")
        raise typer.Exit(3) from exc
    server = ConsoleServer(create_app(config), sock)
    out().print(f"console: {server.url}", highlight=False)
    for name, edge in config.urls.items():
        err().print(f"  {name}: {edge}", highlight=False)
    if open_browser:
        webbrowser.open(server.url)
    asyncio.run(server.serve())


@app.command()
def classify(
    code: Annotated[str, typer.Argument(help="Four-digit NCIC offense code.")],
    sentence_days: Annotated[
        int | None, typer.Option(min=0, help="Sentence in days (drug offenses depend on it).")
    ] = None,
    table: Annotated[
        str, typer.Option(help=f"Appendix A table: {', '.join(TABLE_NAMES)}")
    ] = DEFAULT_TABLE,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Classify an NCIC code into Level 1/2/3 by Appendix A."""
    try:
        result = load_table(table).classify(code, sentence_days=sentence_days)
    except ValueError as exc:
        err().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    else:
        out().print(f"{result.code}: Level {result.level}, {result.category} ({result.table})")


app.add_typer(clock_app, name="clock")

scenario_app = typer.Typer(
    help="Play scenario files: a described world, its bookings and clock steps, and the "
    "outcome each booking should have.",
    no_args_is_help=True,
)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("run")
def scenario_run(
    files: Annotated[
        list[Path], typer.Argument(help="Scenario files (.toml, .yaml or .yml).", exists=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object.")] = False,
) -> None:
    """Run each scenario on a federation of its own (in this process, SQLite in a temporary
    folder, one manual clock) and report every expectation met or not. Exit 1 when one is not
    met, 2 when a file is malformed."""
    from .scenario import run_files

    code = run_files(files, as_json=as_json)
    if code:
        raise typer.Exit(code)


app.command("reset")(reset)
app.command("format")(format_message)
app.command("audit")(audit)
app.add_typer(faults_app, name="faults")
app.command("conformance")(conformance)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(certs_app, name="certs")

bench_app = typer.Typer(
    help="Benchmarks, run on purpose: they print figures.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


def _emit_report(
    report: dict[str, Any],
    render: Callable[[dict[str, Any]], str],
    *,
    as_json: bool,
    json_out: Path | None,
) -> None:
    """Prints a benchmark report (one JSON object, or its human form); also saves the JSON."""
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write((json.dumps(report) if as_json else render(report)) + "\n")


@bench_app.command("startup")
def bench_startup(
    runs: Annotated[int, typer.Option(min=1, help="Fresh interpreters per command.")] = 10,
    command: Annotated[
        list[str] | None,
        typer.Option(
            help="A command line to time, without 'scfed' (repeat the option; default: "
            "'--help' and 'classify 1313 --json')."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object.")] = False,
) -> None:
    """What commands cost before they do anything: CPU and wall time in fresh interpreters."""
    from .startup_bench import DEFAULT_COMMANDS, render_startup, run_startup_bench

    try:
        report = run_startup_bench(command or DEFAULT_COMMANDS, runs=runs)
    except RuntimeError as exc:
        err().print(f"[red]bench failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _emit_report(report, render_startup, as_json=as_json, json_out=None)


@bench_app.command("biometrics")
def bench_biometrics(
    gallery: Annotated[int, typer.Option(min=1, help="Synthetic identities to enrol.")] = 10_000,
    probes: Annotated[
        int, typer.Option(min=1, help="Mated searches, and as many non-mated ones.")
    ] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic people.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object.")] = False,
    faiss: Annotated[bool, typer.Option(help="Also measure faiss-cpu HNSW when installed.")] = True,
    json_out: Annotated[
        Path | None, typer.Option(help="Also write the JSON report to this file.")
    ] = None,
    m: Annotated[int | None, typer.Option(min=2, help="HNSW M (default: the engine's).")] = None,
    ef_construction: Annotated[
        int | None, typer.Option(min=1, help="HNSW ef_construction.")
    ] = None,
    ef: Annotated[int | None, typer.Option(min=1, help="HNSW ef at search.")] = None,
    rescore: Annotated[int | None, typer.Option(min=1, help="Proposals rescored exactly.")] = None,
) -> None:
    """Tenprint identification: accuracy, latency, throughput, size, beside exact and faiss."""
    from ..biometrics.bench.report import render_text, run_biometrics_bench
    from ..biometrics.params import IndexParams

    base = IndexParams()
    params = IndexParams(
        m=m or base.m, ef_construction=ef_construction or base.ef_construction
    ).searching(ef=ef, rescore=rescore)
    report = run_biometrics_bench(
        gallery=gallery, probes=probes, seed=seed, with_faiss=faiss, params=params
    )
    _emit_report(report, render_text, as_json=as_json, json_out=json_out)


@bench_app.command("sweep")
def bench_sweep(
    gallery: Annotated[int, typer.Option(min=1, help="Synthetic identities to enrol.")] = 100_000,
    probes: Annotated[int, typer.Option(min=1, help="Mated searches at every point.")] = 10_000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic people.")] = 1,
    m: Annotated[
        list[int] | None, typer.Option(min=2, help="HNSW M to build (repeat the option).")
    ] = None,
    ef: Annotated[
        list[int] | None, typer.Option(min=1, help="HNSW ef to search at (repeat the option).")
    ] = None,
    ef_construction: Annotated[
        int | None, typer.Option(min=1, help="HNSW ef_construction (default: the engine's).")
    ] = None,
    rescore: Annotated[
        int | None, typer.Option(min=1, help="Proposals rescored (default: the engine's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object.")] = False,
    json_out: Annotated[
        Path | None, typer.Option(help="Also write the JSON report to this file.")
    ] = None,
) -> None:
    """HNSW parameters by measurement: mates missed and search time for each M and ef."""
    from ..biometrics.bench.sweep import render_sweep, run_index_sweep
    from ..biometrics.params import IndexParams

    base = IndexParams()
    report = run_index_sweep(
        gallery=gallery,
        probes=probes,
        seed=seed,
        ms=m or [32, 48, 64],
        efs=ef or [128, 192, 256, 384, 512],
        ef_construction=ef_construction or base.ef_construction,
        rescore=rescore or base.rescore,
    )
    _emit_report(report, render_sweep, as_json=as_json, json_out=json_out)


@bench_app.command("federation")
def bench_federation(
    bookings: Annotated[int, typer.Option(min=1, help="Bookings in the load phase.")] = 1000,
    database_url: DatabaseUrl = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the world.")] = 1,
    rate: Annotated[
        float | None,
        typer.Option(min=0.1, help="Bookings per second to offer (default: --in-flight at once)."),
    ] = None,
    in_flight: Annotated[
        int, typer.Option(min=1, max=256, help="Bookings in flight at once at most.")
    ] = 16,
    warmup: Annotated[int, typer.Option(min=0, help="Bookings before measuring.")] = 20,
    solo: Annotated[
        int, typer.Option(min=1, help="Bookings sent one at a time on the idle federation.")
    ] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every answer.")] = 600.0,
    ready_timeout: ReadyTimeout = 60.0,
    tls: Tls = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object.")] = False,
    json_out: Annotated[
        Path | None, typer.Option(help="Also write the JSON report to this file.")
    ] = None,
) -> None:
    """Bookings through the whole federation: throughput, machine latency (alone and under
    load), each hop and outbox wait, RPCs, commits and CPU per booking, and the ratio to a raw
    gRPC echo measured in the same run. Exits 1 if a booking went unanswered."""
    from .federation_bench import BenchOptions, render_federation_bench, run_federation_bench

    options = BenchOptions(
        bookings=bookings,
        seed=seed,
        database_url=_check_database_url(database_url),
        rate=rate,
        in_flight=in_flight,
        warmup=warmup,
        solo=solo,
        tls=tls,
        timeout_s=timeout,
        ready_timeout_s=ready_timeout,
    )
    try:
        report = _with_progress(lambda progress: run_federation_bench(options, progress), as_json)
    except (RuntimeError, TimeoutError, ValueError) as exc:
        err().print(f"[red]bench failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _emit_report(report, render_federation_bench, as_json=as_json, json_out=json_out)
    if report["unanswered"] or report["refused_at_edge"] or not report["quiet"]:
        raise typer.Exit(1)


@bench_app.command("chaos")
def bench_chaos(
    bookings: Annotated[int, typer.Option(min=1, help="Bookings to drive.")] = 1000,
    database_url: DatabaseUrl = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the world and the faults.")] = 1,
    in_flight: Annotated[int, typer.Option(min=1, help="Bookings in flight at once.")] = 16,
    drain_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for everything to be answered.")
    ] = 300.0,
    ready_timeout: ReadyTimeout = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object.")] = False,
    json_out: Annotated[
        Path | None, typer.Option(help="Also write the JSON report to this file.")
    ] = None,
) -> None:
    """Bookings while agencies are killed, paused, partitioned and lose acks: anything lost,
    duplicated or dead? Exits 1 if so."""
    import asyncio

    from .chaos import ChaosOptions, failed, render_chaos, run_chaos

    options = ChaosOptions(
        bookings=bookings,
        seed=seed,
        database_url=_check_database_url(database_url),
        in_flight=in_flight,
        drain_timeout_s=drain_timeout,
        ready_timeout_s=ready_timeout,
    )
    try:
        report = asyncio.run(run_chaos(options))
    except (RuntimeError, TimeoutError, ValueError) as exc:
        err().print(f"[red]bench failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _emit_report(report, render_chaos, as_json=as_json, json_out=json_out)
    if failed(report):
        raise typer.Exit(1)


ebts_app = typer.Typer(
    help="EBTS (ANSI/NIST-ITL) files: the example CAR, and reading any file as text.",
    no_args_is_help=True,
)


@ebts_app.command("example")
def ebts_example(
    out: Annotated[Path, typer.Argument(help="Where to write the CAR file.")],
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic world.")] = 1,
    index: Annotated[int, typer.Option(min=0, help="Which booking of the world, from 0.")] = 0,
) -> None:
    """Write the CAR file of one synthetic booking (the world `scfed up --seed` seeds), the
    same bytes on every run; POST it to the SIB's /v1/transactions."""
    from .ebts import write_example

    body = write_example(out, seed, index)
    err().print(f"wrote {out}: booking {body.booking_number} of {body.ori}")


@ebts_app.command("read")
def ebts_read(
    path: Annotated[Path, typer.Argument(help="An EBTS file (a CAR, or an answer).")],
) -> None:
    """Print an EBTS file's records and fields with their mnemonics."""
    from ..formats.ansi_nist import AnsiNistError
    from .ebts import read

    try:
        print(read(path))
    except (OSError, AnsiNistError) as exc:
        err().print(f"[red]not readable:[/red] {exc}")
        raise typer.Exit(1) from exc


app.add_typer(ebts_app, name="ebts")


if __name__ == "__main__":
    app()
