"""Runs the five services as separate processes on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ..federation import Agency, parse_agency
from ..runtime.ports import free_port

if TYPE_CHECKING:
    from ..runtime.tls import ChannelFactory


def external_agencies(environ: Mapping[str, str], given: Iterable[str] = ()) -> dict[Agency, str]:
    """Agencies served by someone else: each federation-wide ``SCFED_<SERVICE>_ADDR`` set in
    `environ`, then each NAME=HOST:PORT in `given` (which wins). Raises ValueError on a
    malformed item or an unknown agency."""
    external = {
        agency: environ[agency.profile.address_variable]
        for agency in Agency
        if environ.get(agency.profile.address_variable)
    }
    for item in given:
        name, sep, address = item.partition("=")
        host, colon, port = address.rpartition(":")
        if not (sep and host and colon and port.isdigit()):
            raise ValueError(f"expected NAME=HOST:PORT, got {item!r}")
        external[parse_agency(name)] = address
    return external


# How long `scfed up` and `scfed demo` wait for every service to be ready, unless told
# otherwise (--ready-timeout or SCFED_READY_TIMEOUT, the CLI's ReadyTimeout).
DEFAULT_READY_TIMEOUT_S = 60.0


@dataclass
class ServiceProcess:
    """One running service."""

    name: str
    grpc_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    replica: int = 1
    # Supervision by `scfed up`: when a restart is due (monotonic seconds), or given up.
    restart_at: float | None = None
    given_up: bool = False

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of this process's log."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def grpc_address(self) -> str:
        """host:port of its gRPC server."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """Base URL of its HTTP edge."""
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class LocalFederation:
    """The federation as five child processes (`python -m services.<name>`)."""

    data_dir: Path
    database_url: str | None = None
    schema_prefix: str = "scfed"
    clock: str = "real"
    # LESC's analysts and the field offices' cases run this many times faster than the wall
    # clock (1 = real time), so a demo sees IARs and removals in seconds, not hours.
    agency_speed: float = 3600.0
    # Per-service speed instead of agency_speed (for example a faster clock for ice_field).
    speeds: dict[Agency, float] = field(default_factory=dict)
    fixed_ports: bool = False
    port_offset: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    # Processes per service (default 1). More than one needs PostgreSQL: the replicas share
    # the service's schema, and each peer's outbox sends to them in turn.
    replicas: dict[Agency, int] = field(default_factory=dict)
    # Agencies someone else runs (NAME -> its `*_ADDR` value): not started, and every started
    # service is pointed at them. By default those the environment names federation-wide.
    external: dict[Agency, str] = field(default_factory=lambda: external_agencies(os.environ))
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    # Every process of every service; services[name] is the first of replicas_of[name].
    replicas_of: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    # Seconds wait_ready gives every service to answer /readyz.
    ready_timeout: float = DEFAULT_READY_TIMEOUT_S
    # Mutual TLS between the services, with the certificates in tls_dir (default
    # data_dir/certs), made at start when the directory has none.
    tls: bool = True
    tls_dir: Path | None = None

    def __post_init__(self) -> None:
        if any(n > 1 for n in self.replicas.values()) and not self.database_url:
            raise ValueError("more than one replica of a service needs a PostgreSQL database")
        if any(n > 1 for n in self.replicas.values()) and self.fixed_ports:
            raise ValueError("replicas need free ports, not the fixed default ports")
        for name in Agency:
            if name in self.external:
                continue
            processes = []
            for replica in range(1, self.replicas.get(name, 1) + 1):
                if self.fixed_ports:
                    grpc_port = name.profile.grpc_port + self.port_offset
                    http_port = name.profile.http_port + self.port_offset
                else:
                    grpc_port, http_port = free_port(), free_port()
                processes.append(ServiceProcess(name, grpc_port, http_port, replica=replica))
            self.replicas_of[name] = processes
            self.services[name] = processes[0]

    def processes(self) -> list[ServiceProcess]:
        """Every process of the federation."""
        return [p for processes in self.replicas_of.values() for p in processes]

    def addresses(self) -> dict[str, str]:
        """gRPC address of every service (its first replica)."""
        return {name: svc.grpc_address for name, svc in self.services.items()}

    def all_addresses(self) -> dict[str, str]:
        """gRPC address of every agency: the external ones' and our services' first replicas."""
        return {**{str(a): v for a, v in self.external.items()}, **self.addresses()}

    def peer_addresses(self) -> dict[str, str]:
        """Every agency's `*_ADDR` value: its replicas comma-separated, or its external address."""
        return {
            **{str(a): v for a, v in self.external.items()},
            **{
                name: ",".join(p.grpc_address for p in processes)
                for name, processes in self.replicas_of.items()
            },
        }

    @property
    def certificate_dir(self) -> Path:
        """Where the services' certificates are."""
        return self.tls_dir or self.data_dir / "certs"

    def ensure_certificates(self) -> bool:
        """Makes the federation's certificates when TLS is on and the directory has no CA yet
        (and the operator's token when a directory made before tokens lacks it); returns
        whether it made the certificates (an incomplete directory is refused, not replaced)."""
        from ..runtime.tls import (
            CA_NAME,
            OPERATOR_TOKEN,
            certificate_path,
            init_certificates,
            write_operator_token,
        )

        if not self.tls:
            return False
        if certificate_path(self.certificate_dir, CA_NAME).exists():
            if not (self.certificate_dir / OPERATOR_TOKEN).exists():
                write_operator_token(self.certificate_dir)
            return False
        init_certificates(self.certificate_dir)
        return True

    def operator_channels(self) -> ChannelFactory:
        """How the operator's tools (seeding) dial the services: with the operator's
        certificate when TLS is on, plaintext otherwise."""
        from ..runtime.tls import OPERATOR, SecureChannels, insecure_channels

        if not self.tls:
            return insecure_channels
        return SecureChannels.of(self.certificate_dir, OPERATOR)

    def operator_headers(self) -> dict[str, str]:
        """What the operator's tools send to the HTTP edges' operator routes: the operator's
        token when TLS is on."""
        from .endpoints import tls_operator_headers

        return tls_operator_headers(self.certificate_dir if self.tls else None)

    def environment(self, name: str, replica: int = 1) -> dict[str, str]:
        """The environment one service (one of its replicas) is started with."""
        svc = self.replicas_of[name][replica - 1]
        agency = Agency(name)
        profile = agency.profile
        prefix = profile.env_prefix
        env = {
            **os.environ,
            "SCFED_DATA_DIR": str(self.data_dir),
            "SCFED_CLOCK": self.clock,
            f"{prefix}GRPC_PORT": str(svc.grpc_port),
            f"{prefix}HTTP_PORT": str(svc.http_port),
            "PYTHONUNBUFFERED": "1",
            "SCFED_TLS": "on" if self.tls else "off",
            "SCFED_TLS_DIR": str(self.certificate_dir),
            **{
                Agency(peer).profile.address_variable: a
                for peer, a in self.peer_addresses().items()
            },
            **self.extra_env,
        }
        speed = self.speeds.get(agency, self.agency_speed)
        if speed != 1 and profile.works_on_agency_time:
            env[f"{prefix}CLOCK"] = f"accelerated:{speed:g}"
        if self.database_url:
            env["SCFED_DATABASE_URL"] = self.database_url
            env[f"{prefix}DB_SCHEMA"] = f"{self.schema_prefix}_{name}"
        return env

    def start(self) -> None:
        """Starts every service (making the certificates first when TLS is on and there are
        none); each writes its log under data_dir/logs."""
        self.ensure_certificates()
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for svc in self.processes():
            name = svc.name
            suffix = f"-{svc.replica}" if len(self.replicas_of[name]) > 1 else ""
            svc.log_path = logs / f"{name}{suffix}.log"
            self._spawn(svc)

    def _spawn(self, svc: ServiceProcess) -> None:
        """Starts (or restarts) one service process, appending to its log."""
        assert svc.log_path is not None
        with svc.log_path.open("ab") as log:
            svc.process = subprocess.Popen(
                [sys.executable, "-m", Agency(svc.name).profile.module],
                env=self.environment(svc.name, svc.replica),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def restart(self, name: str, timeout: float = 10.0) -> int:
        """Starts service `name` (its first replica) again once its process has ended, for
        instance after a SIGKILL; waits at most `timeout` seconds for the end. Returns the
        new process id."""
        svc = self.services[name]
        if svc.process is not None:
            svc.process.wait(timeout=timeout)
        self._spawn(svc)
        assert svc.process is not None
        return svc.process.pid

    def label(self, svc: ServiceProcess) -> str:
        """The service's name, with its replica number when it has several."""
        return svc.name if len(self.replicas_of[svc.name]) == 1 else f"{svc.name}#{svc.replica}"

    def supervise(self, policy: RestartPolicy, now: float) -> list[str]:
        """One round of supervision: notices processes that ended, restarts those due, gives
        up on those that failed too often too fast. Returns a line for each thing it did."""
        lines = []
        for svc in self.processes():
            if svc.given_up:
                continue
            label = self.label(svc)
            if svc.restart_at is not None:
                if now >= svc.restart_at:
                    svc.restart_at = None
                    self._spawn(svc)
                    pid = svc.process.pid if svc.process is not None else 0
                    lines.append(f"{label} restarted (pid {pid})")
                continue
            if svc.process is None or svc.process.poll() is None:
                continue
            why = exit_reason(svc.process.returncode, svc.log_tail(1))
            delay = policy.after_exit(label, now)
            if delay is None:
                svc.given_up = True
                lines.append(
                    f"{label} {why}; {policy.max_fast_failures} failures within "
                    f"{policy.window_s:g}s: giving up on it (the rest keep running); "
                    f"see {svc.log_path}"
                )
            else:
                svc.restart_at = now + delay
                lines.append(f"{label} {why}; restarting it in {delay:g}s")
        return lines

    def all_given_up(self) -> bool:
        """True when supervision gave up on every process."""
        return all(svc.given_up for svc in self.processes())

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Waits until every service's /readyz answers 200 (at most `timeout`, default
        `ready_timeout`, seconds); fails if one exits, or names those not ready and why."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        pending = {(svc.name, svc.replica): svc for svc in self.processes()}
        why: dict[tuple[str, int], str] = {}
        async with httpx.AsyncClient(timeout=2.0) as client:
            while pending:
                for key, svc in sorted(pending.items()):
                    name = svc.name
                    if svc.process is not None and svc.process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with code {svc.process.returncode} at start; "
                            f"see {svc.log_path}:\n{self.log_tail(name)}"
                        )
                    try:
                        r = await client.get(f"{svc.http_url}/readyz")
                    except httpx.HTTPError:
                        why[key] = f"no answer at {svc.http_url}/readyz"
                        continue
                    if r.status_code == 200:
                        del pending[key]
                    else:
                        why[key] = f"/readyz {r.status_code}: {r.text[:200]}"
                if pending and time.monotonic() > deadline:
                    names = "; ".join(f"{n}#{r} ({why[n, r]})" for n, r in sorted(pending))
                    raise TimeoutError(
                        f"not ready after {timeout:g}s: {names}; "
                        "allow longer with --ready-timeout or SCFED_READY_TIMEOUT"
                    )
                if pending:
                    await asyncio.sleep(0.1)

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines of one service's log (its first replica's)."""
        return self.services[name].log_tail(lines)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to every service, then SIGKILL to any that has not exited in time."""
        running = [s.process for s in self.processes() if s.process is not None]
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def exited(self) -> list[str]:
        """Services whose process has ended."""
        return [
            svc.name if len(self.replicas_of[svc.name]) == 1 else f"{svc.name}#{svc.replica}"
            for svc in self.processes()
            if svc.process is not None and svc.process.poll() is not None
        ]

    def check_running(self, during: str) -> None:
        """Raises with each ended process's exit code and the end of its log, if any has ended."""
        ended = [
            s for s in self.processes() if s.process is not None and s.process.poll() is not None
        ]
        if not ended:
            return
        details = [
            f"{svc.name}#{svc.replica} exited with code {svc.process.returncode}; "
            f"see {svc.log_path}:\n{svc.log_tail()}"
            for svc in ended
            if svc.process is not None
        ]
        raise RuntimeError(
            f"services exited {during}: {', '.join(self.exited())}\n" + "\n".join(details)
        )


def exit_reason(returncode: int, last_log_line: str = "") -> str:
    """How a process ended, in words: the signal that killed it, or its exit code and the last
    line it logged (a service that fails says why in that line)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    why = f"exited with code {returncode}"
    return f"{why} ({last_log_line.strip()[:300]})" if last_log_line.strip() else why


@dataclass
class RestartPolicy:
    """When `scfed up` restarts a service that ended: after a backoff that doubles with each
    recent failure; never again once it failed `max_fast_failures` times within `window_s`."""

    max_fast_failures: int = 5
    window_s: float = 60.0
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    failures: dict[str, list[float]] = field(default_factory=dict)

    def after_exit(self, label: str, now: float) -> float | None:
        """Seconds to wait before restarting `label`, which ended at `now`; None: give up."""
        recent = [t for t in self.failures.get(label, []) if now - t < self.window_s]
        recent.append(now)
        self.failures[label] = recent
        if len(recent) >= self.max_fast_failures:
            return None
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (len(recent) - 1)))


async def external_health(
    external: Mapping[Agency, str],
    timeout: float = 3.0,
    *,
    channels: ChannelFactory | None = None,
) -> dict[str, str]:
    """Why each external agency that does not answer gRPC health SERVING does not (by name).

    Every address of a `*_ADDR` value is asked, through `channels` (the operator's, under
    TLS; plaintext by default); an agency missing from the result answered.
    """
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from ..runtime.tls import insecure_channels

    dial = channels or insecure_channels
    problems: dict[str, str] = {}
    for agency, value in external.items():
        for address in value.split(","):
            async with dial(agency, address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
                except grpc.aio.AioRpcError as exc:
                    problems[agency] = f"{address}: {exc.code().name} {exc.details() or ''}".strip()
                    break
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                problems[agency] = f"{address}: {status}"
                break
    return problems
