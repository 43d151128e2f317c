"""A small Compose driver for the smoke test (the Compose v2 CLI is not on this machine).

It reads compose.yaml with an override (compose.hostnet.yaml), merges them as `docker compose -f
... -f ...` does for what these files use, interpolates `${VAR:-default}`, and starts the
services with the Docker SDK in `depends_on` order, each one only once those it depends on are
healthy (`service_healthy`) or started. Services listed in `external` are not started: the
smoke test uses the host's PostgreSQL instead of the compose postgres container.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml
from docker.errors import NotFound
from docker.models.containers import Container

ROOT = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


class Reset:
    """Compose's `!reset` tag: the override removes the value."""


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags."""


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    return Reset()


ComposeLoader.add_constructor("!reset", _reset)


def load_compose(name: str) -> Obj:
    """A Compose file as data (YAML anchors and merge keys resolved by the loader)."""
    data: Obj = yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)
    return data


def merge_compose(base: Obj, override: Obj) -> Obj:
    """`docker compose -f base -f override`, for what these files use: mappings merge, other
    values are replaced, `!reset` removes."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_compose(merged[key], value)
        else:
            merged[key] = value
    return merged


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR:-default}`: the variable when set and not empty, else the default."""
    env = {} if env is None else env
    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], value)


def compose_env(service: Obj, env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment, interpolated."""
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment is written as a mapping"
    return {key: interpolate(str(value), env) for key, value in environment.items()}


def start_order(services: Obj) -> list[str]:
    """The services in an order where each comes after everything it depends on."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"depends_on cycle through {name}")
        visiting.add(name)
        for dep in services[name].get("depends_on", {}):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in services:
        visit(name)
    return order


def _seconds(value: str) -> int:
    """Compose durations ("10s", "1m30s") in nanoseconds, as the engine wants them."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return int(total * 1_000_000_000)


@dataclass
class ComposeProject:
    """The federation from compose files, run in one engine."""

    client: docker.DockerClient
    files: tuple[str, ...] = ("compose.yaml", "compose.hostnet.yaml")
    project: str = "scfed-smoke"
    external: frozenset[str] = frozenset()
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    # One-shot services (`service_completed_successfully`) that have exited with status 0.
    completed: set[str] = field(default_factory=set)

    def config(self) -> Obj:
        """The merged compose model."""
        merged: Obj = {}
        for name in self.files:
            merged = merge_compose(merged, load_compose(name))
        return merged

    def up(self, *, timeout_s: float = 180) -> dict[str, float]:
        """Starts every service outside a profile in dependency order, each after its
        dependencies are healthy; returns seconds from start to healthy per service."""
        services = self.config()["services"]
        healthy_at: dict[str, float] = {}
        started = time.monotonic()
        for name in start_order(services):
            service = services[name]
            # As `docker compose up` without --profile: a service with profiles stays down.
            if name in self.external or service.get("profiles"):
                continue
            for dep, rule in service.get("depends_on", {}).items():
                if dep in self.external:
                    continue
                if rule.get("condition") == "service_healthy":
                    self.wait_healthy([dep], timeout_s=timeout_s)
                elif rule.get("condition") == "service_completed_successfully":
                    self.wait_completed(dep, timeout_s=timeout_s)
            self.containers[name] = self._run(name, service)
        long_running = [name for name in self.containers if name not in self.completed]
        self.wait_healthy(long_running, timeout_s=timeout_s)
        for name in long_running:
            healthy_at[name] = time.monotonic() - started
        return healthy_at

    def _run(self, name: str, service: Obj) -> Container:
        env = compose_env(service, dict(os.environ))
        env.update(self.env_overrides.get(name, {}))
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                self.client.volumes.create(f"{self.project}_{source}")
        volumes = {}
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            if source.startswith((".", "/")):
                source = str((ROOT / source).resolve())
            else:
                source = f"{self.project}_{source}"
            volumes[source] = {"bind": target, "mode": mode[0] if mode else "rw"}
        check = service.get("healthcheck")
        healthcheck = None
        if check:
            healthcheck = {
                "test": check["test"],
                "interval": _seconds(check.get("interval", "30s")),
                "timeout": _seconds(check.get("timeout", "30s")),
                "retries": int(check.get("retries", 3)),
                "start_period": _seconds(check.get("start_period", "0s")),
            }
        container_name = f"{self.project}-{name}"
        with contextlib.suppress(NotFound):
            self.client.containers.get(container_name).remove(force=True)
        return self.client.containers.run(
            image=service["image"],
            command=service.get("command"),
            entrypoint=service.get("entrypoint"),
            user=service.get("user", ""),
            name=container_name,
            detach=True,
            environment=env,
            network_mode=service.get("network_mode"),
            read_only=bool(service.get("read_only", False)),
            tmpfs={path: "" for path in service.get("tmpfs", [])},
            cap_drop=service.get("cap_drop"),
            cap_add=service.get("cap_add"),
            security_opt=service.get("security_opt"),
            stop_signal="SIGTERM",
            volumes=volumes,
            healthcheck=healthcheck,
            labels={"com.docker.compose.project": self.project, "scfed.service": name},
        )

    def wait_completed(self, name: str, *, timeout_s: float) -> None:
        """Waits until a one-shot container has exited with status 0."""
        if name in self.completed:
            return
        container = self.containers[name]
        status = container.wait(timeout=timeout_s)
        if status.get("StatusCode") != 0:
            raise RuntimeError(
                f"{name} exited ({status.get('StatusCode')}): "
                f"{container.logs(tail=40).decode(errors='replace')}"
            )
        self.completed.add(name)

    def wait_healthy(self, names: list[str], *, timeout_s: float) -> None:
        """Waits until every named container's health check passes."""
        deadline = time.monotonic() + timeout_s
        waiting = list(names)
        while waiting:
            for name in list(waiting):
                container = self.containers[name]
                container.reload()
                state = container.attrs["State"]
                if state["Status"] in ("exited", "dead"):
                    raise RuntimeError(
                        f"{name} exited ({state.get('ExitCode')}): "
                        f"{container.logs(tail=40).decode(errors='replace')}"
                    )
                health = state.get("Health", {}).get("Status", "healthy")
                if health == "healthy":
                    waiting.remove(name)
            if not waiting:
                return
            if time.monotonic() > deadline:
                logs = {
                    n: self.containers[n].logs(tail=20).decode(errors="replace") for n in waiting
                }
                raise TimeoutError(f"not healthy after {timeout_s:g}s: {logs}")
            time.sleep(0.5)

    def copy_out(self, service: str, files: list[str], destination: Path) -> None:
        """Copies files out of a service's container (running or exited) into `destination`,
        as `docker compose cp` does."""
        destination.mkdir(parents=True, exist_ok=True)
        for path in files:
            chunks, _ = self.containers[service].get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
                member = tar.getmember(Path(path).name)
                extracted = tar.extractfile(member)
                assert extracted is not None, f"{service}:{path} is not a file"
                target = destination / member.name
                target.write_bytes(extracted.read())
                target.chmod(0o600)

    def logs(self) -> dict[str, str]:
        """Each container's last log lines."""
        return {n: c.logs(tail=60).decode(errors="replace") for n, c in self.containers.items()}

    def down(self) -> None:
        """Stops and removes the containers and the project's volumes."""
        for container in self.containers.values():
            try:
                container.stop(timeout=10)
                container.remove(force=True)
            except NotFound:
                pass
        self.containers.clear()
        self.completed.clear()
        for volume in self.client.volumes.list():
            if volume.name.startswith(f"{self.project}_"):
                volume.remove(force=True)
