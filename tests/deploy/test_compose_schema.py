"""compose.yaml (alone and with compose.hostnet.yaml) against the Compose specification's JSON
schema, offline once cached.

The schema is `compose_spec.json` as Debian's docker-compose package ships it: the .deb is
fetched once with `apt-get download docker-compose` into ~/.cache/scfed-smoke and the schema
extracted from it with dpkg-deb, so nothing is vendored here. Without the cache and without apt
the test is skipped (in CI, where apt works, it runs).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.compose import Reset, load_compose, merge_compose

CACHE = Path(os.environ.get("SCFED_SMOKE_CACHE", Path.home() / ".cache" / "scfed-smoke"))
SCHEMA_IN_DEB = "usr/lib/python3/dist-packages/compose/config/compose_spec.json"


@pytest.fixture(scope="module")
def compose_spec() -> dict[str, Any]:
    """The Compose specification schema from Debian's docker-compose package."""
    schema = CACHE / "compose_spec.json"
    if not schema.exists():
        if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
            pytest.skip("no cached compose_spec.json and no apt-get/dpkg-deb to fetch it")
        debs = CACHE / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            ["apt-get", "download", "docker-compose"],
            cwd=debs,
            capture_output=True,
            text=True,
            timeout=300,
        )
        found = sorted(debs.glob("docker-compose_*.deb"))
        if not found:
            pytest.skip(f"apt-get download docker-compose failed: {fetched.stderr[-500:]}")
        extracted = CACHE / "docker-compose-deb"
        subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(extracted)], check=True)
        shutil.copyfile(extracted / SCHEMA_IN_DEB, schema)
    data: dict[str, Any] = json.loads(schema.read_text())
    return data


def _errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    # The schema names draft 2019-09; validate with that draft.
    validator = jsonschema.Draft201909Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def _without_resets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_resets(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [_without_resets(v) for v in value]
    return value


def test_compose_yaml_follows_the_compose_specification(compose_spec: dict[str, Any]) -> None:
    assert _errors(compose_spec, load_compose("compose.yaml")) == []


def test_compose_with_the_host_network_override_follows_the_specification(
    compose_spec: dict[str, Any],
) -> None:
    merged = merge_compose(load_compose("compose.yaml"), load_compose("compose.hostnet.yaml"))
    assert _errors(compose_spec, _without_resets(merged)) == []
    # The override file is itself a valid (partial) Compose file, `!reset` aside.
    assert _errors(compose_spec, _without_resets(load_compose("compose.hostnet.yaml"))) == []


def test_the_schema_check_refuses_what_compose_would_refuse(
    compose_spec: dict[str, Any],
) -> None:
    broken = copy.deepcopy(load_compose("compose.yaml"))
    broken["services"]["sib"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["lesc"]["restartt"] = "always"
    errors = _errors(compose_spec, broken)
    assert any("service_ready" in e for e in errors)
    assert any("restartt" in e for e in errors)


def _named_volumes(document: dict[str, Any]) -> set[str]:
    """The named volumes (not host paths) the services mount."""
    return {
        volume.split(":", 1)[0]
        for service in document["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }


def test_every_named_volume_a_service_mounts_is_declared() -> None:
    # The schema cannot see it; Compose refuses a service that "refers to undefined volume".
    for document in (
        load_compose("compose.yaml"),
        merge_compose(load_compose("compose.yaml"), load_compose("compose.hostnet.yaml")),
    ):
        assert _named_volumes(document) <= set(document["volumes"])


def _started_by_default(document: dict[str, Any]) -> set[str]:
    """The services `docker compose up` starts without --profile."""
    return {name for name, service in document["services"].items() if not service.get("profiles")}


def test_the_observability_profile_adds_prometheus_and_jaeger_and_nothing_by_default() -> None:
    for document in (
        load_compose("compose.yaml"),
        merge_compose(load_compose("compose.yaml"), load_compose("compose.hostnet.yaml")),
    ):
        profiles = {
            name: service["profiles"]
            for name, service in document["services"].items()
            if service.get("profiles")
        }
        assert profiles == {
            "operator": ["tools"],
            "prometheus": ["observability"],
            "jaeger": ["observability"],
        }
        # The federation, its certificates and the console; nothing third-party but postgres.
        default = _started_by_default(document)
        assert default == {
            "postgres",
            "certs",
            "console",
            "sib",
            "cjis-iafis",
            "ident",
            "lesc",
            "ice-field",
        }
        # Compose would start a profile's service for a default one that depends on it.
        for name in default:
            assert set(document["services"][name].get("depends_on", {})) <= default, name


def test_every_published_port_is_on_the_host_loopback() -> None:
    for name, service in load_compose("compose.yaml")["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
