"""The image's HEALTHCHECK: GET /readyz on the running service's HTTP edge (standard library only).

Usage: ``python healthcheck.py [SERVICE]``. Without SERVICE, the service is read from the
container's command line (``python -m services.<name>``, PID 1). The port follows the services'
own settings: ``SCFED_<SERVICE>_HTTP_PORT``, else ``SCFED_HTTP_PORT``, else the default.
Exit status 0 when ready, 1 otherwise (the reason on stderr).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_HTTP_PORTS = {
    "sib": 8081,
    "cjis_iafis": 8082,
    "ident": 8083,
    "lesc": 8084,
    "ice_field": 8085,
}
ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def service_from_cmdline(cmdline: bytes) -> str | None:
    """The service named by a ``scfed.services.<name>`` argument of a NUL-separated command line."""
    for arg in cmdline.decode(errors="replace").split("\0"):
        name = service_module_name(arg)
        if name in DEFAULT_HTTP_PORTS:
            return name
    return None


def service_module_name(arg: str) -> str:
    """``lesc`` from ``scfed.services.lesc`` (the installed package) or ``services.lesc`` (a
    checkout); anything else unchanged."""
    for prefix in ("scfed.services.", "services."):
        if arg.startswith(prefix):
            return arg.removeprefix(prefix)
    return arg


def readyz_url(service: str, env: dict[str, str]) -> str:
    """Where the service's readiness answers, from the same variables the service reads."""
    prefix = f"SCFED_{service.upper()}_"
    port = env.get(prefix + "HTTP_PORT") or env.get("SCFED_HTTP_PORT")
    host = env.get(prefix + "HTTP_HOST") or env.get("SCFED_HTTP_HOST") or ""
    if host in ANY_ADDRESS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port or DEFAULT_HTTP_PORTS[service]}/readyz"


def main(argv: list[str]) -> int:
    """Checks readiness once; returns the exit status."""
    if argv:
        service: str | None = service_module_name(argv[0])
    else:
        try:
            service = service_from_cmdline(Path("/proc/1/cmdline").read_bytes())
        except OSError:
            service = None
    if service not in DEFAULT_HTTP_PORTS:
        print(f"healthcheck: cannot tell which service runs (got {service!r})", file=sys.stderr)
        return 1
    url = readyz_url(service, dict(os.environ))
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as error:
        print(f"healthcheck: {url} answered {error.code}", file=sys.stderr)
    except OSError as error:
        print(f"healthcheck: {url} unreachable: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
