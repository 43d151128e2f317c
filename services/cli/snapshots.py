"""`scfed snapshot save|load|list`: a running federation's whole state, service by service,
in files DIR/NAME/<service>.json (DIR: --dir, else SCFED_SNAPSHOT_DIR, else .scfed/snapshots
in the current directory), over each service's HTTP edge (GET and PUT /v1/admin/snapshot).

A service that does not answer, or has no snapshot route (an external agency's own service),
is named and skipped, as `scfed reset` does, and the command exits 1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .control import AsJson, Outcome, Services, Urls, call_each, edge_urls, selected_urls
from .endpoints import operator_headers

DEFAULT_DIR = Path(".scfed") / "snapshots"
# A snapshot's name is a folder name: no separators, no leading dot.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
# Loading a large world's snapshot rebuilds its biometric indexes: give it time.
SNAPSHOT_TIMEOUT_S = 900.0

snapshot_app = typer.Typer(
    help="Snapshots of a running federation: save every service's state, load it back.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The snapshot's name (a folder under --dir).")]
Directory = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        envvar="SCFED_SNAPSHOT_DIR",
        help="Where snapshots are kept (default: .scfed/snapshots in the current directory).",
    ),
]


def _folder(directory: Path | None, name: str) -> Path:
    """DIR/NAME, once NAME is a plain folder name."""
    if not NAME_PATTERN.fullmatch(name):
        raise typer.BadParameter(
            f"a snapshot name is letters, digits, '_', '.' and '-' (not first), got {name!r}",
            param_hint="NAME",
        )
    return (directory or DEFAULT_DIR) / name


def _print(outcome: Outcome, as_json: bool, verb: str, extra: dict[str, Any]) -> None:
    """Prints what each service answered, as lines or one JSON object."""
    from .main import err, out

    if as_json:
        sys.stdout.write(json.dumps({**outcome.as_dict(), **extra}) + "\n")
        return
    for name, view in sorted(outcome.done.items()):
        rows = sum(view["rows"].values())
        out().print(f"{name}: {verb} {rows} rows in {view['seconds']:.3f}s")
    for name, reason in sorted(outcome.refused.items()):
        err().print(f"[yellow]{name}: refused[/yellow] {reason}")
    for name, reason in sorted(outcome.unreachable.items()):
        err().print(f"[red]{name}: unreachable[/red] {reason}")
    for name, reason in sorted(extra.get("missing", {}).items()):
        err().print(f"[yellow]{name}: skipped[/yellow] {reason}")
    out().print(f"snapshot {extra['name']} {verb} in {extra['seconds']:.3f}s: {extra['path']}")


@snapshot_app.command("save")
def save(
    name: Name,
    directory: Directory = None,
    service: Services = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Save every service's state to DIR/NAME/<service>.json (a service's earlier file in that
    snapshot is replaced). Exit 1 when a service does not answer or refuses; the others are
    saved."""
    folder = _folder(directory, name)
    urls = selected_urls(edge_urls(url), service or [])
    folder.mkdir(parents=True, exist_ok=True)

    def keep(agency: str, response: Any) -> dict[str, Any]:
        path = folder / f"{agency}.json"
        partial = path.with_suffix(".json.tmp")
        partial.write_bytes(response.content)
        os.replace(partial, path)
        document = json.loads(response.content)
        return {
            "rows": {t: len(v["rows"]) for t, v in document["tables"].items()},
            "bytes": len(response.content),
            "seconds": response.elapsed.total_seconds(),
        }

    started = time.perf_counter()
    outcome = asyncio.run(
        call_each(
            urls,
            lambda client, _agency, base: client.get(f"{base}/v1/admin/snapshot"),
            keep,
            timeout=SNAPSHOT_TIMEOUT_S,
            headers=operator_headers(),
        )
    )
    extra = {"name": name, "path": str(folder), "seconds": round(time.perf_counter() - started, 4)}
    _print(outcome, as_json, "saved", extra)
    if outcome.unreachable or outcome.refused:
        raise typer.Exit(1)


@snapshot_app.command("load")
def load(
    name: Name,
    directory: Directory = None,
    service: Services = None,
    url: Urls = None,
    as_json: AsJson = False,
) -> None:
    """Load DIR/NAME/<service>.json into each running service, replacing its state. A service
    without a file in the snapshot is named and left alone; exit 1 then, or when a service does
    not answer or refuses the file (it keeps its state)."""
    folder = _folder(directory, name)
    if not folder.is_dir():
        raise typer.BadParameter(f"no snapshot {name!r} in {folder.parent}", param_hint="NAME")
    urls = selected_urls(edge_urls(url), service or [])
    missing = {a: f"no {a}.json in {folder}" for a in urls if not (folder / f"{a}.json").is_file()}
    present = {a: u for a, u in urls.items() if a not in missing}

    def put(client: Any, agency: str, base: str) -> Any:
        content = (folder / f"{agency}.json").read_bytes()
        headers = {"content-type": "application/json"}
        return client.put(f"{base}/v1/admin/snapshot", content=content, headers=headers)

    started = time.perf_counter()
    outcome = asyncio.run(
        call_each(present, put, timeout=SNAPSHOT_TIMEOUT_S, headers=operator_headers())
    )
    extra: dict[str, Any] = {
        "name": name,
        "path": str(folder),
        "seconds": round(time.perf_counter() - started, 4),
        "missing": missing,
    }
    _print(outcome, as_json, "loaded", extra)
    if outcome.unreachable or outcome.refused or missing:
        raise typer.Exit(1)


def _describe(folder: Path) -> dict[str, Any]:
    """A saved snapshot: its services, size and when it was last written."""
    files = sorted(folder.glob("*.json"))
    return {
        "name": folder.name,
        "services": [f.stem for f in files],
        "bytes": sum(f.stat().st_size for f in files),
        "saved_at": datetime.fromtimestamp(
            max((f.stat().st_mtime for f in files), default=folder.stat().st_mtime), UTC
        ).isoformat(timespec="seconds"),
    }


@snapshot_app.command("list")
def list_snapshots(directory: Directory = None, as_json: AsJson = False) -> None:
    """List the snapshots saved in DIR, newest first."""
    from .main import out

    root = directory or DEFAULT_DIR
    found = [_describe(f) for f in root.iterdir() if f.is_dir()] if root.is_dir() else []
    found.sort(key=lambda s: s["saved_at"], reverse=True)
    if as_json:
        sys.stdout.write(json.dumps({"dir": str(root), "snapshots": found}) + "\n")
        return
    if not found:
        out().print(f"no snapshots in {root}")
    for s in found:
        size = s["bytes"] / 1024**2
        out().print(
            f"{s['name']}: {', '.join(s['services'])} ({size:.1f} MiB, saved {s['saved_at']})"
        )
