"""Compose's one-shot `certs` service: the federation's certificates, made once, handed out one
agency at a time.

Usage: ``python issue_certs.py --authority DIR --out DIR [--owner UID:GID] [--new-authority]``.

The authority directory (a volume only this service mounts) keeps what ``scfed certs init``
makes: the CA with its key, every agency's certificate and the operator's. It is made when it
holds no CA yet, or anew with ``--new-authority`` (rotation). Then each agency's directory,
``OUT/<service>`` (the Compose service name, ``cjis-iafis``), gets exactly what that agency
reads with TLS on: ``ca.pem``, ``<agency>.pem``, ``<agency>.key`` and the operator token's
SHA-256; nothing else is left there, so no agency ever holds the CA's key, another agency's key
or the operator's token. ``OUT/operator`` gets the operator's pair and token the same way, for
Compose's `operator` tools service. Files are replaced by a
rename, so a service never reads half a file, and given to ``--owner`` (the image's user), as
the agencies run as that user and the keys are readable by their owner only.

Run at every ``docker compose up``: it copies again, so a rotated authority reaches the agencies
the next time they are (re)created.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from scfed.services.federation import Agency
from scfed.services.runtime import tls


def service_name(agency: str) -> str:
    """The Compose (and Kubernetes) service name of an agency: ``cjis-iafis``."""
    return agency.replace("_", "-")


def handed_out(identity: str) -> dict[str, int]:
    """The files an agency (or the operator) gets, with their modes: the CA's certificate, its
    own pair, and the operator's token for the operator, its SHA-256 for an agency (what the
    HTTP operator routes check)."""
    token = tls.OPERATOR_TOKEN if identity == tls.OPERATOR else tls.OPERATOR_TOKEN_HASH
    return {
        tls.certificate_path(Path(), tls.CA_NAME).name: 0o644,
        tls.certificate_path(Path(), identity).name: 0o644,
        tls.key_path(Path(), identity).name: 0o600,
        token: 0o600 if identity == tls.OPERATOR else 0o644,
    }


def _replace(source: Path, target: Path, mode: int, owner: tuple[int, int] | None) -> None:
    """Copies `source` over `target` atomically, with `mode` and `owner` set before the rename."""
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(source.read_bytes())
        os.chmod(temporary, mode)
        if owner is not None:
            os.chown(temporary, *owner)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def issue(
    authority: Path,
    out: Path,
    *,
    owner: tuple[int, int] | None = None,
    new_authority: bool = False,
) -> list[Path]:
    """Makes the authority when missing (or anew), then fills each agency's directory and the
    operator's under `out`; returns the files handed out."""
    if new_authority or not tls.certificate_path(authority, tls.CA_NAME).exists():
        tls.init_certificates(authority, force=True)
    elif not (authority / tls.OPERATOR_TOKEN).exists():
        tls.write_operator_token(authority)  # an authority made before operator tokens
    written = []
    for identity in (*Agency, tls.OPERATOR):
        directory = out / service_name(identity)
        directory.mkdir(parents=True, exist_ok=True)
        files = handed_out(identity)
        for name, mode in files.items():
            _replace(authority / name, directory / name, mode, owner)
            written.append(directory / name)
        for stale in directory.iterdir():
            if stale.name not in files:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return written


def _owner(value: str) -> tuple[int, int]:
    uid, _, gid = value.partition(":")
    return int(uid), int(gid or uid)


def main(argv: list[str]) -> int:
    """Issues the certificates; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authority", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--owner", type=_owner, default=None, help="UID:GID of the files")
    parser.add_argument("--new-authority", action="store_true", help="rotate: a new CA")
    args = parser.parse_args(argv)
    written = issue(args.authority, args.out, owner=args.owner, new_authority=args.new_authority)
    print(
        f"issue_certs: {len(written)} files for {len(Agency)} agencies and the operator "
        f"under {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
