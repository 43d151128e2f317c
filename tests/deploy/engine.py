"""A Docker engine of the smoke test's own: installed from Debian when missing, started with its
data and socket under ~/.cache/scfed-smoke, a base image made locally with debootstrap (no
registry is needed), and the scfed image built from the Dockerfile with wheels made on the host.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import DockerException, ImageNotFound

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SCFED_SMOKE_CACHE", Path.home() / ".cache" / "scfed-smoke"))
BASE_IMAGE = "scfed-base:bookworm"
IMAGE = "scfed:local"
SUITE = "bookworm"
PACKAGES = ("docker.io", "debootstrap")


class EngineUnavailable(Exception):
    """No Docker engine can be started on this machine (the smoke test is skipped)."""


def _run(args: list[str], *, timeout: float = 900, **kwargs: object) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:4])} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout)[-2000:]}"
        )


def ensure_tools() -> None:
    """Installs Debian's docker.io and debootstrap when dockerd or debootstrap is missing."""
    if shutil.which("dockerd") and shutil.which("debootstrap"):
        return
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd or debootstrap is missing and installing them needs root")
    if not shutil.which("apt-get"):
        raise EngineUnavailable("dockerd or debootstrap is missing and there is no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run(["apt-get", "update", "-q"], env=env)
        _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES], env=env)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"apt-get could not install {' '.join(PACKAGES)}: {exc}") from exc
    if not (shutil.which("dockerd") and shutil.which("debootstrap")):
        raise EngineUnavailable("docker.io installed but dockerd is still not on PATH")


@dataclass
class Engine:
    """A dockerd this test started, and a client of it."""

    process: subprocess.Popen[bytes]
    client: docker.DockerClient
    storage_driver: str
    log_path: Path
    timings: dict[str, float] = field(default_factory=dict)

    def stop(self) -> None:
        """Stops dockerd (SIGTERM, then SIGKILL), closes the client, and unmounts what dockerd
        left mounted under its folders (its network namespace file), so the cache can go."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        unmount_under(CACHE / "engine")


def unmount_under(folder: Path) -> None:
    """Lazily unmounts every mount point below `folder`, deepest first."""
    prefix = str(folder.resolve()) + "/"
    points = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(prefix)
    ]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _stop_leftover_dockerd(root: Path) -> None:
    """Stops a dockerd that an earlier, interrupted smoke run left on our folders (found by
    its pid file and its command line naming them); anything else is left alone."""
    pidfile = root / "docker.pid"
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return
    if "dockerd" not in cmdline or str(root) not in cmdline:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    unmount_under(root)


def _start_dockerd(driver: str) -> Engine:
    root = CACHE / "engine"
    socket = root / "docker.sock"
    log_path = root / f"dockerd-{driver}.log"
    root.mkdir(parents=True, exist_ok=True)
    _stop_leftover_dockerd(root)
    socket.unlink(missing_ok=True)
    args = [
        "dockerd",
        f"--data-root={root / ('data-' + driver)}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'docker.pid'}",
        f"--host=unix://{socket}",
        f"--storage-driver={driver}",
        # Host networking only: no bridge, no iptables rules on this machine.
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"dockerd ({driver}) exited with {process.returncode}: "
                f"{log_path.read_text()[-1500:]}"
            )
        if socket.exists():
            try:
                client = docker.DockerClient(base_url=f"unix://{socket}", timeout=600)
                client.ping()
                # overlay2 can start and still fail at the first layer (overlay on overlay):
                # import a one-file image to be sure the driver works here.
                _probe(client)
                return Engine(process, client, driver, log_path)
            except DockerException as exc:
                last = exc
        time.sleep(0.3)
    process.terminate()
    process.wait(timeout=30)
    raise RuntimeError(f"dockerd ({driver}) did not answer: {locals().get('last')}")


def _probe(client: docker.DockerClient) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("probe")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    client.api.import_image_from_data(data.getvalue(), repository="scfed-probe", tag="1")
    client.images.remove("scfed-probe:1", force=True)


def start_engine() -> Engine:
    """Starts dockerd with overlay2, or vfs where overlay2 does not work."""
    ensure_tools()
    if os.geteuid() != 0:
        raise EngineUnavailable("starting dockerd needs root")
    errors = []
    for driver in ("overlay2", "vfs"):
        try:
            return _start_dockerd(driver)
        except (RuntimeError, OSError) as exc:
            errors.append(f"{driver}: {exc}")
    raise EngineUnavailable("dockerd would not start: " + " | ".join(errors))


def _apt_mirror() -> str:
    """The Debian mirror this machine's apt uses, so debootstrap reaches the same one."""
    for source in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if source.exists():
            for line in source.read_text().splitlines():
                line = line.strip()
                if line.startswith("URIs:") and "security" not in line:
                    return line.split()[1]
                if line.startswith("deb ") and "security" not in line:
                    return line.split()[1]
    return "http://deb.debian.org/debian"


def ensure_base_image(engine: Engine) -> float:
    """Imports the locally made Debian base (debootstrap tarball cached); returns seconds."""
    started = time.monotonic()
    try:
        engine.client.images.get(BASE_IMAGE)
        return time.monotonic() - started
    except ImageNotFound:
        pass
    tarball = CACHE / f"{SUITE}-minbase.tar"
    if not tarball.exists():
        rootfs = CACHE / f"{SUITE}-rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                SUITE,
                str(rootfs),
                _apt_mirror(),
            ]
        )
        partial = tarball.with_suffix(".partial")
        _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    repository, tag = BASE_IMAGE.split(":")
    engine.client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    return time.monotonic() - started


def build_wheelhouse() -> Path:
    """Wheels for the project, its runtime dependencies and setuptools, built on the host
    (hnswlib without -march=native, so the image runs on other CPUs)."""
    wheelhouse = CACHE / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    stamp = wheelhouse / ".pyproject.sha"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return wheelhouse
    env = {**os.environ, "HNSWLIB_NO_NATIVE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # The dependencies only (the project's own wheel is built inside the image).
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheelhouse), *deps, *requires],
        env=env,
    )
    stamp.write_text(want)
    return wheelhouse


def build_context(wheelhouse: Path) -> io.BytesIO:
    """The build context as a tar: what .dockerignore lets in, plus the wheelhouse."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name in (
            "Dockerfile",
            "pyproject.toml",
            "README.md",
            "deploy/docker/healthcheck.py",
            "deploy/docker/issue_certs.py",
        ):
            tar.add(ROOT / name, arcname=name)
        for folder in ("scfed", "proto", "services"):
            for path in sorted((ROOT / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    tar.add(path, arcname=str(path.relative_to(ROOT)))
        for wheel in sorted(wheelhouse.glob("*.whl")):
            tar.add(wheel, arcname=f"wheelhouse/{wheel.name}")
    data.seek(0)
    return data


def build_image(engine: Engine, wheelhouse: Path) -> float:
    """Builds scfed:local from the Dockerfile on the local base, from the wheelhouse."""
    started = time.monotonic()
    context = build_context(wheelhouse)
    log: list[str] = []
    for chunk in engine.client.api.build(
        fileobj=context,
        custom_context=True,
        tag=IMAGE,
        buildargs={"BASE_IMAGE": BASE_IMAGE, "WHEELHOUSE": "wheelhouse"},
        network_mode="host",
        rm=True,
        forcerm=True,
        decode=True,
    ):
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            raise RuntimeError(f"image build failed: {chunk['error']}\n{''.join(log)[-4000:]}")
    engine.client.images.get(IMAGE)
    return time.monotonic() - started
