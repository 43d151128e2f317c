"""`scfed certs init|show`: the federation's own certificate authority and one certificate per
agency and for the operator, for mutual TLS on the gRPC hops (runtime/tls.py).

DIR is --dir, else SCFED_TLS_DIR, else .scfed-data/certs: where a service run from the same
folder looks for them by default (<data_dir>/certs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_DIR = Path(".scfed-data") / "certs"

certs_app = typer.Typer(
    help="Certificates for mutual TLS between the services: make them, list them.",
    no_args_is_help=True,
)

Directory = Annotated[
    Path,
    typer.Option(
        "--dir",
        envvar="SCFED_TLS_DIR",
        help="The certificate directory (default: .scfed-data/certs, where the services look).",
    ),
]


@certs_app.command("init")
def init(
    directory: Directory = DEFAULT_DIR,
    days: Annotated[
        int, typer.Option("--days", min=1, help="How long the certificates are valid.")
    ] = 365,
    force: Annotated[
        bool, typer.Option("--force", help="Replace certificates already in the directory.")
    ] = False,
) -> None:
    """Make a new CA, a certificate for each agency and one for the operator, in DIR. Exit 1
    when DIR already holds certificates and --force is not given. To rotate: run again with
    --force, then restart every service (they read their certificates at start)."""
    from ..runtime.tls import CertificatesExist, init_certificates
    from .main import err, out

    try:
        written = init_certificates(directory, days=days, force=force)
    except CertificatesExist as exc:
        err().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for path in written:
        out().print(str(path))
    out().print(f"{len(written)} files in {directory}, valid {days} days")


@certs_app.command("show")
def show(
    directory: Directory = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON array.")] = False,
) -> None:
    """List each certificate in DIR: its identity, alternative names and expiry. Exit 1 when
    DIR holds none."""
    from ..runtime.tls import describe_certificates
    from .main import err, out

    found = describe_certificates(directory)
    if not found:
        err().print(f"[red]error:[/red] no certificates in {directory}: run `scfed certs init`")
        raise typer.Exit(1)
    if as_json:
        rows = [
            {
                "name": info.name,
                "identity": info.identity,
                "alternative_names": info.alternative_names,
                "not_after": info.not_after.isoformat(),
            }
            for info in found
        ]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for info in found:
        names = ", ".join(n for n in info.alternative_names if n != info.identity) or "-"
        out().print(
            f"{info.name}: {info.identity} until {info.not_after:%Y-%m-%d %H:%M}Z; SANs {names}"
        )
