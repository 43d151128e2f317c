"""The deployment files, offline: the image (Dockerfile, build context, health check), Compose,
and the Kubernetes manifests of every kustomize overlay, validated against the Kubernetes
schemas of a pinned version and held to the federation's rules."""

from __future__ import annotations

import base64
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from cryptography import x509

from services import federation
from services.cli.launcher import LocalFederation
from services.runtime import server, tls
from services.runtime.config import ServiceSettings
from tests.deploy.compose import compose_env, interpolate, load_compose, merge_compose

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.32"
OVERLAYS = ("dev", "production")
# Where the dev overlay's secretGenerator reads the certificates from, inside deploy/.
DEV_CERTS = Path("overlays") / "dev" / "certs"
# Where every agency's mutual-TLS files are mounted, in Compose and in Kubernetes.
TLS_DIR = "/run/scfed/tls"

Obj = dict[str, Any]


@dataclass(frozen=True)
class Agency:
    """One agency as deployed: its module and default ports."""

    module: str
    grpc_port: int
    http_port: int


# Keyed by the deployed name (cjis-iafis); module and ports come from the federation's registry.
AGENCIES = {
    agency.replace("_", "-"): Agency(agency, agency.profile.grpc_port, agency.profile.http_port)
    for agency in federation.Agency
}
# Each keeps an in-memory biometric index of its own: exactly one replica, never autoscaled.
SINGLE_REPLICA = {"sib", "cjis-iafis", "ident"}
SCALABLE = {"lesc", "ice-field"}
ANYWHERE = "anywhere"
# (from, to, port name): every message between agencies, on the receiver's gRPC port, and the
# LEAs on the SIB's HTTP agency edge.
MOA_FLOWS = {
    ("sib", "cjis-iafis", "grpc"),  # CAR, CPI
    ("sib", "ice-field", "grpc"),  # release notices
    ("cjis-iafis", "sib", "grpc"),  # SRE, ERRT, no-match IDR, joint IDR/IAR
    ("cjis-iafis", "ident", "grpc"),  # IDENT search
    ("cjis-iafis", "lesc", "grpc"),  # IAQ
    ("ident", "cjis-iafis", "grpc"),  # IDR
    ("lesc", "cjis-iafis", "grpc"),  # IAQ acknowledgement, IAR
    ("lesc", "ice-field", "grpc"),  # IAR copy
    ("ice-field", "sib", "grpc"),  # I-247 detainer
    ("ice-field", "ident", "grpc"),  # removal encounters
    (ANYWHERE, "sib", "http"),  # LEAs: bookings, inboxes, release notices
}
# The web console's workload and port (deploy/base/console.yaml, compose.yaml).
CONSOLE = "console"
CONSOLE_PORT = 8090
# A cluster's Prometheus, in any namespace, by the label its usual installers give its pods.
PROMETHEUS = "prometheus (any namespace)"
PROMETHEUS_PEER = {
    "namespaceSelector": {},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
# Besides the MOA flows: the console and a Prometheus on every agency's HTTP edge.
OBSERVABILITY_FLOWS = {(CONSOLE, name, "http") for name in AGENCIES} | {
    (PROMETHEUS, name, "http") for name in AGENCIES
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
# Compose's profile "observability": third-party images, started only when asked for.
OBSERVABILITY_PROFILE = {"prometheus", "jaeger"}


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deploy_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/ with the dev overlay's certificates made as its README says (`scfed
    certs init --dir deploy/overlays/dev/certs`): they are git-ignored, never in the checkout."""
    tree = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(ROOT / "deploy", tree, ignore=shutil.ignore_patterns("certs"))
    tls.init_certificates(tree / DEV_CERTS)
    return tree


def render(tree: Path, overlay: str) -> list[Obj]:
    """The objects `kubectl kustomize` makes of an overlay of the deploy folder `tree`."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the Kubernetes manifests cannot be rendered")
    result = subprocess.run(
        [kubectl, "kustomize", str(tree / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, deploy_tree: Path) -> tuple[str, list[Obj]]:
    """Each overlay's name and rendered objects."""
    name: str = request.param
    return name, render(deploy_tree, name)


def of_kind(objects: list[Obj], *kinds: str) -> list[Obj]:
    """The objects of the given kinds."""
    return [obj for obj in objects if obj["kind"] in kinds]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    """The one object of that kind and name."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def generated(objects: list[Obj], kind: str, name: str) -> Obj:
    """A generated ConfigMap or Secret, whose name carries a content hash."""
    found = [
        o
        for o in objects
        if o["kind"] == kind and re.fullmatch(rf"{name}-[a-z0-9]{{10}}", o["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one generated {kind} {name}, found {len(found)}"
    return found[0]


def workloads(objects: list[Obj]) -> dict[str, Obj]:
    """Deployments and StatefulSets by name."""
    return {o["metadata"]["name"]: o for o in of_kind(objects, *WORKLOAD_KINDS)}


def agency_workloads(objects: list[Obj]) -> dict[str, Obj]:
    """The five agencies' workloads by name."""
    found = {name: w for name, w in workloads(objects).items() if name in AGENCIES}
    assert set(found) == set(AGENCIES)
    return found


def pod_labels(workload: Obj) -> dict[str, str]:
    """The labels of a workload's pods."""
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels only, as these manifests use) matches labels."""
    assert "matchExpressions" not in selector, "these checks read matchLabels only"
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return all(labels.get(key) == value for key, value in wanted.items())


def selected_workloads(selector: Obj, objects: list[Obj]) -> set[str]:
    """The names of the workloads whose pods a selector matches."""
    return {name for name, w in workloads(objects).items() if selects(selector, pod_labels(w))}


def container_port(workload: Obj, port: int | str) -> tuple[str, int]:
    """(name, number) of a workload's container port given by name or number."""
    for container in workload["spec"]["template"]["spec"]["containers"]:
        for declared in container.get("ports", []):
            if port in (declared.get("name"), declared["containerPort"]):
                return declared["name"], declared["containerPort"]
    raise AssertionError(f"{workload['metadata']['name']} has no container port {port!r}")


def allowed_flows(objects: list[Obj]) -> set[tuple[str, str, str]]:
    """Every (from, to, port name) that the NetworkPolicies allow into the workloads' pods."""
    flows: set[tuple[str, str, str]] = set()
    by_name = workloads(objects)
    for policy in of_kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        targets = selected_workloads(spec["podSelector"], objects)
        for rule in spec.get("ingress", []):
            sources: set[str] = set()
            for peer in rule.get("from", [{}]):
                if not peer:
                    sources.add(ANYWHERE)
                    continue
                if peer == PROMETHEUS_PEER:
                    sources.add(PROMETHEUS)
                    continue
                assert set(peer) == {"podSelector"}, (
                    f"{policy['metadata']['name']}: only same-namespace pod selectors expected, "
                    f"got {peer}"
                )
                sources |= selected_workloads(peer["podSelector"], objects)
            assert "ports" in rule, f"{policy['metadata']['name']}: a rule opens every port"
            for target in targets:
                for port in rule["ports"]:
                    assert port.get("protocol", "TCP") == "TCP"
                    port_name, _ = container_port(by_name[target], port["port"])
                    flows |= {(source, target, port_name) for source in sources}
    return flows


def containers(workload: Obj) -> list[Obj]:
    """A workload's containers and init containers."""
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def effective_security(workload: Obj, container: Obj) -> Obj:
    """The container's security context over the pod's (the container's fields win)."""
    pod: Obj = workload["spec"]["template"]["spec"].get("securityContext", {})
    inherited = {
        k: pod[k] for k in ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile") if k in pod
    }
    return {**inherited, **container.get("securityContext", {})}


# --- Kubernetes: schemas ------------------------------------------------------------------------


def test_every_object_of_every_overlay_is_valid_for_the_pinned_kubernetes(
    overlay: tuple[str, list[Obj]],
) -> None:
    name, objects = overlay
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']} {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    assert not errors, f"overlay {name}:\n" + "\n".join(errors)


def test_the_base_renders_on_its_own() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the Kubernetes manifests cannot be rendered")
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "base")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert "Namespace" not in kinds, "the namespace belongs to the overlays"


# --- Kubernetes: workloads ----------------------------------------------------------------------


def test_every_agency_runs_its_own_module_with_http_probes_on_its_edge(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    for name, workload in agency_workloads(objects).items():
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        agency = AGENCIES[name]
        assert container["args"] == [f"scfed.services.{agency.module}"]
        assert container_port(workload, "grpc") == ("grpc", agency.grpc_port)
        assert container_port(workload, "http") == ("http", agency.http_port)
        # The gRPC port wants a client certificate, which the kubelet cannot present; liveness
        # asks the route that a database outage leaves answering 200.
        expected = {
            "startupProbe": {"path": "/readyz", "port": "http"},
            "readinessProbe": {"path": "/readyz", "port": "http"},
            "livenessProbe": {"path": "/healthz", "port": "http"},
        }
        for probe, http_probe in expected.items():
            assert probe in container, f"{name} has no {probe}"
            assert container[probe].get("httpGet") == http_probe, (
                f"{name}: {probe} is not the HTTP probe {http_probe}"
            )
            # The edge answers these while the service starts or its database is out.
            assert http_probe["path"] in server._ALWAYS_ANSWERING


def test_no_probe_asks_the_mutual_tls_grpc_port(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert "grpc" not in container.get(probe, {}), f"{name}: {probe} uses gRPC"


def test_every_container_is_hardened(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            security = effective_security(workload, container)
            where = f"{name}/{container['name']}"
            assert security.get("runAsNonRoot") is True, where
            assert security.get("runAsUser", 0) > 0, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert security.get("capabilities", {}).get("add") is None, where
            assert security.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: the read-only root needs a writable /tmp"
        pod = workload["spec"]["template"]["spec"]
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name


def test_agencies_run_as_the_image_user_with_writable_tmp_and_data(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    for name, workload in agency_workloads(objects).items():
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert effective_security(workload, container)["runAsUser"] == 10001, name
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
        if name == "ident":
            claims = {c["metadata"]["name"] for c in workload["spec"]["volumeClaimTemplates"]}
            assert mounts["/data"] in claims
        else:
            assert "emptyDir" in volumes[mounts["/data"]], name


def test_every_container_has_cpu_and_memory_requests_and_limits(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert set(resources.get(bound, {})) >= {"cpu", "memory"}, (
                    f"{name}/{container['name']} lacks {bound}"
                )


def test_every_workload_has_a_service_account_of_its_own_without_a_token(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    accounts = {a["metadata"]["name"]: a for a in of_kind(objects, "ServiceAccount")}
    used: dict[str, str] = {}
    for name, workload in workloads(objects).items():
        pod = workload["spec"]["template"]["spec"]
        account = pod.get("serviceAccountName")
        assert account in accounts, f"{name} uses no ServiceAccount of the federation"
        assert account not in used, f"{name} shares ServiceAccount {account} with {used[account]}"
        used[account] = name
        assert accounts[account].get("automountServiceAccountToken") is False, account
        assert pod.get("automountServiceAccountToken") is False, name


def test_every_workload_has_a_disruption_budget_selecting_it(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    covered: dict[str, list[str]] = {}
    for budget in of_kind(objects, "PodDisruptionBudget"):
        for name in selected_workloads(budget["spec"]["selector"], objects):
            covered.setdefault(name, []).append(budget["metadata"]["name"])
    for name, workload in workloads(objects).items():
        assert covered.get(name) == [name], f"{name} is covered by {covered.get(name)}"
        selector = workload["spec"]["selector"]
        assert selects(selector, pod_labels(workload)), f"{name} does not select its own pods"


def test_only_the_agencies_without_an_in_memory_index_scale(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    autoscalers = {h["metadata"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")}
    assert set(autoscalers) == SCALABLE
    agencies = agency_workloads(objects)
    for name in SCALABLE:
        target = autoscalers[name]["spec"]["scaleTargetRef"]
        assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert agencies[name]["kind"] == "Deployment"
        assert "replicas" not in agencies[name]["spec"], f"{name}: the autoscaler owns replicas"
        metrics = autoscalers[name]["spec"]["metrics"]
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    for name in SINGLE_REPLICA:
        assert agencies[name]["spec"]["replicas"] == 1, name
        if agencies[name]["kind"] == "Deployment":
            # A rolling update would briefly run two pods, two diverging indexes.
            assert agencies[name]["spec"]["strategy"]["type"] == "Recreate", name


def test_ident_is_a_stateful_set_keeping_data_on_a_volume_claim(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    ident = named(objects, "StatefulSet", "ident")
    (claim,) = ident["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "storage" in claim["spec"]["resources"]["requests"]
    (container,) = ident["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    governing = named(objects, "Service", ident["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"


def test_every_agency_has_a_service_with_named_grpc_and_http_ports(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    for name, agency in AGENCIES.items():
        service = named(objects, "Service", name)
        selector = {"matchLabels": service["spec"]["selector"]}
        assert selected_workloads(selector, objects) == {name}
        ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
        assert ports == {"grpc": (agency.grpc_port, "grpc"), "http": (agency.http_port, "http")}


def test_every_object_is_labelled_as_part_of_scfed(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "scfed", obj["metadata"]["name"]
        if obj["kind"] != "Namespace":
            assert "app.kubernetes.io/name" in labels, obj["metadata"]["name"]
    for name, workload in agency_workloads(objects).items():
        assert workload["metadata"]["labels"]["app.kubernetes.io/name"] == name
        assert pod_labels(workload)["app.kubernetes.io/name"] == name


# --- Kubernetes: configuration ------------------------------------------------------------------


def config_of(objects: list[Obj], workload: Obj) -> tuple[dict[str, str], dict[str, str]]:
    """The ConfigMap and the Secret (decoded) a workload's container takes its environment from."""
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    config = named(objects, "ConfigMap", refs["configMapRef"])["data"]
    secret = named(objects, "Secret", refs["secretRef"])
    decoded = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return config, {**decoded, **secret.get("stringData", {})}


def test_every_agency_knows_its_peers_listens_everywhere_and_has_a_database(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    generated(objects, "ConfigMap", "scfed-federation")
    generated(objects, "Secret", "scfed-database")
    for workload in agency_workloads(objects).values():
        config, secret = config_of(objects, workload)
        for peer, agency in AGENCIES.items():
            assert config[f"SCFED_{agency.module.upper()}_ADDR"] == f"{peer}:{agency.grpc_port}"
        assert config["SCFED_GRPC_HOST"] == config["SCFED_HTTP_HOST"] == "0.0.0.0"
        assert config["SCFED_DATA_DIR"] == "/data"
        assert secret["SCFED_DATABASE_URL"].startswith("postgresql+asyncpg://")


def database_host(objects: list[Obj]) -> str:
    """host:port of the agencies' database URL."""
    _, secret = config_of(objects, agency_workloads(objects)["sib"])
    match = re.fullmatch(r"postgresql\+asyncpg://[^@/]+@([^/]+)/\w+", secret["SCFED_DATABASE_URL"])
    assert match, secret["SCFED_DATABASE_URL"]
    return match.group(1)


def test_dev_runs_its_database_in_the_cluster_reachable_by_the_agencies_only(
    deploy_tree: Path,
) -> None:
    objects = render(deploy_tree, "dev")
    postgres = named(objects, "StatefulSet", "postgres")
    service = named(objects, "Service", "postgres")
    assert database_host(objects) == f"postgres:{service['spec']['ports'][0]['port']}"
    assert postgres["spec"]["volumeClaimTemplates"], "the database keeps its data on a claim"
    (container,) = postgres["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("postgres:15")
    into_postgres = {(src, port) for src, dst, port in allowed_flows(objects) if dst == "postgres"}
    assert into_postgres == {(name, "postgres") for name in AGENCIES}


def test_production_points_at_an_external_database_and_scales_out(deploy_tree: Path) -> None:
    objects = render(deploy_tree, "production")
    in_cluster = [w for w in workloads(objects) if w not in {*AGENCIES, CONSOLE}]
    assert not in_cluster, "no database in the cluster"
    host = database_host(objects)
    assert not host.startswith(("postgres:", "127.", "localhost")), host
    for autoscaler in of_kind(objects, "HorizontalPodAutoscaler"):
        assert autoscaler["spec"]["minReplicas"] >= 2
        assert autoscaler["spec"]["maxReplicas"] > autoscaler["spec"]["minReplicas"]
    images = {c["image"] for w in workloads(objects).values() for c in containers(w)}
    assert len(images) == 1 and images != {"scfed:local"}, "the overlay sets the image"


def test_dev_runs_the_locally_built_image(deploy_tree: Path) -> None:
    objects = render(deploy_tree, "dev")
    images = {c["image"] for w in agency_workloads(objects).values() for c in containers(w)}
    assert images == {"scfed:local"}


# --- Agency time: as `scfed up` runs it -------------------------------------------------------

# What `scfed up` runs LESC's analysts and the field offices on: an hour of agency time per wall
# second, so a matched booking is answered in seconds; the other agencies on the real clock.
SCFED_UP_CLOCKS = {
    agency.replace("_", "-"): "accelerated:3600" if agency.profile.works_on_agency_time else "real"
    for agency in federation.Agency
}


def settings_of(name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """An agency's settings as read from exactly this environment."""
    for key in [k for k in os.environ if k.startswith("SCFED_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings: ServiceSettings = federation.Agency(AGENCIES[name].module).profile.settings_class()()
    return settings


def clock_of(name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The clock an agency's settings read from exactly this environment."""
    return settings_of(name, env, monkeypatch).clock


def test_scfed_up_runs_the_agencies_on_these_clocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = LocalFederation(data_dir=tmp_path)
    launched = {
        name: clock_of(name, fed.environment(agency.module), monkeypatch)
        for name, agency in AGENCIES.items()
    }
    assert launched == SCFED_UP_CLOCKS


def test_kubernetes_runs_agency_time_as_scfed_up_does(
    overlay: tuple[str, list[Obj]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, objects = overlay
    clocks = {}
    for name, workload in agency_workloads(objects).items():
        config, secret = config_of(objects, workload)
        clocks[name] = clock_of(name, {**config, **secret}, monkeypatch)
    assert clocks == SCFED_UP_CLOCKS


# --- Kubernetes: mutual TLS -------------------------------------------------------------------


def tls_files(module: str) -> set[str]:
    """The files a service with TLS on reads from its certificate directory."""
    directory = Path(TLS_DIR)
    return {
        str(tls.certificate_path(directory, tls.CA_NAME)),
        str(tls.certificate_path(directory, module)),
        str(tls.key_path(directory, module)),
    }


def test_every_agency_mounts_only_its_own_tls_secret_where_its_settings_look(
    overlay: tuple[str, list[Obj]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, objects = overlay
    for name, workload in agency_workloads(objects).items():
        module = AGENCIES[name].module
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        secrets = [v for v in pod["volumes"] if "secret" in v]
        assert len(secrets) == 1, f"{name} mounts {len(secrets)} Secrets"
        (volume,) = secrets
        secret_name = volume["secret"]["secretName"]
        assert re.fullmatch(rf"scfed-tls-{name}(-[a-z0-9]{{10}})?", secret_name), secret_name
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True, name
        paths = {item["key"]: item["path"] for item in volume["secret"]["items"]}
        assert paths == {"ca.crt": "ca.pem", "tls.crt": f"{module}.pem", "tls.key": f"{module}.key"}
        # Group-readable only: the pod's fsGroup is the image's group.
        assert volume["secret"]["defaultMode"] == 0o440, name
        assert pod["securityContext"]["fsGroup"] == 10001, name
        assert {f"{mount['mountPath']}/{path}" for path in paths.values()} == tls_files(module)
        config, secret = config_of(objects, workload)
        settings = settings_of(name, {**config, **secret}, monkeypatch)
        assert settings.tls == "on", name
        assert str(settings.resolved_tls_dir()) == mount["mountPath"] == TLS_DIR, name


def cert_identity(pem: bytes) -> str:
    """The SPIFFE ID a certificate names its holder by."""
    cert = x509.load_pem_x509_certificate(pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    (uri,) = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uri


def test_dev_makes_each_agency_secret_of_its_own_pair_and_never_the_ca_key(
    deploy_tree: Path,
) -> None:
    objects = render(deploy_tree, "dev")
    certs = deploy_tree / DEV_CERTS
    ca = tls.certificate_path(certs, tls.CA_NAME).read_bytes()
    secret_bytes = [
        base64.b64decode(value)
        for secret in of_kind(objects, "Secret")
        for value in secret.get("data", {}).values()
    ]
    for withheld in (tls.CA_NAME, tls.OPERATOR):
        assert tls.key_path(certs, withheld).read_bytes() not in secret_bytes, withheld
    for name, agency in AGENCIES.items():
        secret = generated(objects, "Secret", f"scfed-tls-{name}")
        assert secret["type"] == "kubernetes.io/tls"
        data = {key: base64.b64decode(value) for key, value in secret["data"].items()}
        assert set(data) == {"ca.crt", "tls.crt", "tls.key"}
        assert data["ca.crt"] == ca
        assert data["tls.key"] == tls.key_path(certs, agency.module).read_bytes()
        assert cert_identity(data["tls.crt"]) == tls.spiffe_id(agency.module)


def test_dev_gives_every_agency_the_operator_token_hash_and_never_the_token(
    deploy_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(deploy_tree, "dev")
    certs = deploy_tree / DEV_CERTS
    token = tls.operator_token(certs)
    rendered = yaml.safe_dump_all(objects)
    assert token not in rendered
    for name, workload in agency_workloads(objects).items():
        config, secret = config_of(objects, workload)
        settings = settings_of(name, {**config, **secret}, monkeypatch)
        assert settings.operator_token_sha256 == tls.token_hash(token), name


def test_production_expects_each_agency_secret_made_out_of_band(deploy_tree: Path) -> None:
    objects = render(deploy_tree, "production")
    generated_tls = [
        s for s in of_kind(objects, "Secret") if s["metadata"]["name"].startswith("scfed-tls-")
    ]
    assert not generated_tls, "production keeps keys out of the repository"
    for name, workload in agency_workloads(objects).items():
        (volume,) = [v for v in workload["spec"]["template"]["spec"]["volumes"] if "secret" in v]
        assert volume["secret"]["secretName"] == f"scfed-tls-{name}"


def test_overlay_certificates_are_never_committed() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", str(DEV_CERTS / "sib.key")],
        cwd=ROOT / "deploy",
        check=False,
    )
    assert ignored.returncode == 0, f"deploy/{DEV_CERTS} is not git-ignored"


# --- Kubernetes: network policies ---------------------------------------------------------------


def test_every_pod_is_isolated_by_a_default_deny(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    deny = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["spec"].get("policyTypes") == ["Ingress"] and not p["spec"].get("ingress")
    ]
    assert len(deny) == 1
    assert selected_workloads(deny[0]["spec"]["podSelector"], objects) == set(workloads(objects))


def test_network_policies_allow_exactly_the_moa_flows(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    between_agencies = {
        flow for flow in allowed_flows(objects) if flow[1] in AGENCIES and flow[0] != "postgres"
    }
    expected = MOA_FLOWS | OBSERVABILITY_FLOWS
    missing, extra = expected - between_agencies, between_agencies - expected
    assert not missing and not extra, f"missing {sorted(missing)}, extra {sorted(extra)}"


def test_the_moa_flows_are_the_peers_the_services_send_to() -> None:
    configured = set()
    for name, agency in AGENCIES.items():
        module = importlib.import_module(f"services.{agency.module}.config")
        (settings,) = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value is not ServiceSettings
        ]
        for field in settings.model_fields:
            if field.endswith("_addr"):
                configured.add((name, field.removesuffix("_addr").replace("_", "-"), "grpc"))
    assert configured == {flow for flow in MOA_FLOWS if flow[0] != ANYWHERE}


# --- Kubernetes: the console and metrics --------------------------------------------------------


def console_urls(service_or_container: Obj) -> dict[str, str]:
    """The agency edges a `scfed console` command line names (--url=NAME=URL), as the CLI reads
    them (an unknown NAME or a bad URL raises)."""
    from services.cli.main import _http_urls

    words = service_or_container.get("command", []) + service_or_container.get("args", [])
    given = [w.removeprefix("--url=") for w in words if w.startswith("--url=")]
    assert len(given) == len(AGENCIES), words
    return {str(name): url for name, url in _http_urls(given).items()}


def test_the_console_serves_every_agency_edge_by_service_name_with_a_health_probe(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    console = named(objects, "Deployment", CONSOLE)
    (container,) = console["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["scfed"] and container["args"][0] == "console"
    assert "--host=0.0.0.0" in container["args"]
    assert f"--port={CONSOLE_PORT}" in container["args"]
    assert container_port(console, "http") == ("http", CONSOLE_PORT)
    # Each URL is the agency's Service and its http port.
    urls = console_urls(container)
    for name, agency in AGENCIES.items():
        service = named(objects, "Service", name)
        ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        assert urls[agency.module] == f"http://{name}:{ports['http']}"
    # The app's own liveness route: it asks no agency, so an outage does not restart it.
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    from services.console.app import create_app
    from services.console.sources import ConsoleConfig

    routes = {getattr(r, "path", None) for r in create_app(ConsoleConfig(urls={})).routes}
    assert "/healthz" in routes
    # Reachable as the SIB's edge is: a ClusterIP Service on a named http port.
    service = named(objects, "Service", CONSOLE)
    assert service["spec"]["type"] == "ClusterIP"
    assert selected_workloads({"matchLabels": service["spec"]["selector"]}, objects) == {CONSOLE}
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", CONSOLE_PORT, "http")
    ]


def test_the_console_holds_no_database_and_at_most_the_operator_token(
    overlay: tuple[str, list[Obj]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, objects = overlay
    console = named(objects, "Deployment", CONSOLE)
    (container,) = console["spec"]["template"]["spec"]["containers"]
    assert [next(iter(ref)) for ref in container["envFrom"]] == ["configMapRef"]
    volumes = {v["name"]: v for v in console["spec"]["template"]["spec"]["volumes"]}
    secrets = {name: v["secret"] for name, v in volumes.items() if "secret" in v}
    # The token stays out of the cluster unless an operator creates this Secret: optional.
    assert list(secrets.values()) == [
        {
            "secretName": "scfed-console-operator",
            "optional": True,
            "defaultMode": 0o440,
            "items": [{"key": tls.OPERATOR_TOKEN, "path": tls.OPERATOR_TOKEN}],
        }
    ]
    (secret_volume,) = secrets
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts[secret_volume]["readOnly"] is True
    # Mounted where the console's operator_headers() looks, with the federation's settings.
    config = named(objects, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])["data"]
    for key in [k for k in os.environ if k.startswith("SCFED_")]:
        monkeypatch.delenv(key)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = ServiceSettings()
    assert settings.tls == "on"
    assert str(settings.resolved_tls_dir()) == mounts[secret_volume]["mountPath"]


def egress_of(objects: list[Obj], workload: str) -> list[Obj]:
    """The egress rules of the NetworkPolicies selecting a workload that restrict its egress."""
    rules: list[Obj] = []
    for policy in of_kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        if "Egress" in spec.get("policyTypes", []) and workload in selected_workloads(
            spec["podSelector"], objects
        ):
            rules += spec.get("egress", [])
    return rules


def test_the_console_reaches_the_five_agency_edges_and_nothing_else(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    # Into the console: its http port, from anywhere (as the SIB's agency edge).
    into_console = {flow for flow in allowed_flows(objects) if flow[1] == CONSOLE}
    assert into_console == {(ANYWHERE, CONSOLE, "http")}
    # Out of it: every agency's http port, and DNS to resolve their Service names.
    rules = egress_of(objects, CONSOLE)
    assert rules, "the console's egress is not restricted"
    reached: set[tuple[str, str]] = set()
    for rule in rules:
        ports = rule["ports"]
        if "to" not in rule:
            assert sorted((p["port"], p["protocol"]) for p in ports) == [(53, "TCP"), (53, "UDP")]
            continue
        for peer in rule["to"]:
            assert set(peer) == {"podSelector"}, peer
            for target in selected_workloads(peer["podSelector"], objects):
                by_name = workloads(objects)[target]
                reached |= {(target, container_port(by_name, p["port"])[0]) for p in ports}
    assert reached == {(name, "http") for name in AGENCIES}
    # No other workload's egress is restricted (the agencies need their database and peers).
    for name in workloads(objects).keys() - {CONSOLE}:
        assert egress_of(objects, name) == [], name


def test_every_agency_pod_is_annotated_for_prometheus_on_its_metrics_route(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    for name, workload in agency_workloads(objects).items():
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == str(container_port(workload, "http")[1])
        assert annotations.get("prometheus.io/path") == "/metrics", name
        # ... and a Prometheus's pods may reach that port (test above: OBSERVABILITY_FLOWS).
        assert (PROMETHEUS, name, "http") in allowed_flows(objects)
    console = named(objects, "Deployment", CONSOLE)
    assert "annotations" not in console["spec"]["template"]["metadata"], "no /metrics there"


# --- Compose ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Obj:
    """compose.yaml."""
    return load_compose("compose.yaml")


def test_compose_runs_every_agency_from_one_image_next_to_postgres(compose: Obj) -> None:
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "certs",
        "operator",
        CONSOLE,
        *AGENCIES,
        *OBSERVABILITY_PROFILE,
    }
    for name, agency in AGENCIES.items():
        service = services[name]
        assert service["image"] == "scfed:local"
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert service["command"] == [f"scfed.services.{agency.module}"]
    assert services["postgres"]["image"] == "postgres:15"


def test_compose_agencies_wait_only_for_a_healthy_database_and_their_certificates(
    compose: Obj,
) -> None:
    services = compose["services"]
    postgres_check = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(postgres_check)
    for name in AGENCIES:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "certs": {"condition": "service_completed_successfully"},
        }


def test_compose_agencies_report_readiness_with_python(compose: Obj) -> None:
    for name, agency in AGENCIES.items():
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert "urllib.request" in test[3]
        assert f"http://127.0.0.1:{agency.http_port}/readyz" in test[3]


def test_compose_wires_peers_database_and_listen_addresses(compose: Obj) -> None:
    services = compose["services"]
    for name, agency in AGENCIES.items():
        env = compose_env(services[name])
        assert env["SCFED_DATABASE_URL"].startswith("postgresql+asyncpg://postgres:")
        assert env["SCFED_DATABASE_URL"].endswith(f"@postgres:5432/scfed_{agency.module}")
        assert env["SCFED_GRPC_HOST"] == env["SCFED_HTTP_HOST"] == "0.0.0.0"
        assert env["SCFED_DATA_DIR"] == "/data"
        for peer, agency in AGENCIES.items():
            assert env[f"SCFED_{agency.module.upper()}_ADDR"] == f"{peer}:{agency.grpc_port}"
    password = compose_env(services["postgres"])["POSTGRES_PASSWORD"]
    assert f"postgres:{password}@" in compose_env(services["sib"])["SCFED_DATABASE_URL"]


def test_compose_keeps_the_database_and_ident_data_in_named_volumes(compose: Obj) -> None:
    services = compose["services"]
    certificates = {"certs-authority", "certs-operator", *(f"certs-{name}" for name in AGENCIES)}
    assert set(compose["volumes"]) == {
        "postgres-data",
        "ident-index",
        "prometheus-data",
        *certificates,
    }
    assert services["postgres"]["volumes"][0] == "postgres-data:/var/lib/postgresql/data"
    assert services["ident"]["volumes"][0] == "ident-index:/data"
    for name in AGENCIES.keys() - {"ident"}:
        assert not any(v.split(":")[1] == "/data" for v in services[name]["volumes"]), name
        assert "/data" in services[name]["tmpfs"]


def volume_mounts(service: Obj) -> dict[str, tuple[str, str]]:
    """A service's volumes by mount path: (source, mode)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode[0] if mode else "rw")
    return mounts


def test_compose_gives_each_agency_only_its_own_certificates_where_its_settings_look(
    compose: Obj, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    for name in AGENCIES:
        env = compose_env(services[name])
        settings = settings_of(name, env, monkeypatch)
        assert settings.tls == "on", name
        tls_dir = str(settings.resolved_tls_dir())
        assert tls_dir == TLS_DIR
        mounts = volume_mounts(services[name])
        assert mounts[tls_dir] == (f"certs-{name}", "ro"), name
        certificate_volumes = [s for s, _ in mounts.values() if s.startswith("certs-")]
        assert certificate_volumes == [f"certs-{name}"], f"{name} mounts {certificate_volumes}"
    # Only the one-shot issuer holds the authority (the CA's key) and writes the agencies'.
    holders = {
        name
        for name, service in services.items()
        if any(s == "certs-authority" for s, _ in volume_mounts(service).values())
    }
    assert holders == {"certs"}


def test_compose_operator_tools_hold_the_operator_certificate_only_and_reach_every_edge(
    compose: Obj, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = compose["services"]["operator"]
    assert operator["profiles"] == ["tools"], "started only when asked for"
    assert operator["entrypoint"] == ["scfed"]
    env = compose_env(operator)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = ServiceSettings()
    assert settings.tls == "on" and str(settings.resolved_tls_dir()) == TLS_DIR
    mounts = volume_mounts(operator)
    assert [s for s, _ in mounts.values() if s.startswith("certs-")] == ["certs-operator"]
    assert mounts[TLS_DIR] == ("certs-operator", "ro")
    # The CLI's endpoints resolve to the agencies' names on the Compose network.
    from services.cli.endpoints import grpc_addresses, http_urls

    for name, agency in AGENCIES.items():
        assert http_urls()[agency.module] == f"http://{name}:{agency.http_port}"
        assert grpc_addresses()[agency.module] == f"{name}:{agency.grpc_port}"


def test_compose_certs_service_issues_into_each_agency_volume_without_network_or_privilege(
    compose: Obj,
) -> None:
    certs = compose["services"]["certs"]
    assert certs["image"] == "scfed:local"
    program, script, *arguments = certs["entrypoint"]
    assert [program, script] == ["python", "/opt/scfed/issue_certs.py"]
    # Rotation (`docker compose run --rm certs --new-authority`) replaces the command only.
    assert certs["command"] == []
    options = dict(argument.removeprefix("--").split("=", 1) for argument in arguments)
    authority, out = options["authority"], options["out"]
    assert options["owner"] == "10001:10001"
    mounts = volume_mounts(certs)
    assert mounts[authority] == ("certs-authority", "rw")
    for name in [*AGENCIES, "operator"]:
        assert mounts[f"{out}/{name}"] == (f"certs-{name}", "rw")
    assert certs["network_mode"] == "none"
    assert certs["read_only"] is True
    assert certs["cap_drop"] == ["ALL"] and certs["cap_add"] == ["CHOWN"]
    assert "restart" not in certs, "a one-shot service"


def load_docker_script(name: str) -> Any:
    """deploy/docker/<name>.py (a script of the image, not a package module) as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / "docker" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_issue_certs() -> Any:
    """deploy/docker/issue_certs.py as a module."""
    return load_docker_script("issue_certs")


def test_issued_certificates_are_each_agency_own_files_and_serve_mutual_tls(
    tmp_path: Path,
) -> None:
    issue_certs = load_issue_certs()
    authority, out = tmp_path / "authority", tmp_path / "issued"
    (out / "sib").mkdir(parents=True)
    (out / "sib" / "ca.key").write_text("left from an older layout")
    issue_certs.issue(authority, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*AGENCIES, "operator"])
    operator = {p.name for p in (out / "operator").iterdir()}
    assert operator == {"ca.pem", "operator.pem", "operator.key", tls.OPERATOR_TOKEN}
    tls.channel_credentials(out / "operator", tls.OPERATOR)
    token = tls.operator_token(out / "operator")
    ca = tls.certificate_path(authority, tls.CA_NAME).read_bytes()
    for name, agency in AGENCIES.items():
        directory = out / name
        expected = {tls_file.rsplit("/", 1)[1] for tls_file in tls_files(agency.module)}
        # The operator token's hash, never the token: what the HTTP operator routes check.
        expected.add(tls.OPERATOR_TOKEN_HASH)
        assert {p.name for p in directory.iterdir()} == expected, name
        assert tls.operator_token_hash(directory) == tls.token_hash(token)
        assert tls.key_path(directory, agency.module).stat().st_mode & 0o777 == 0o600
        assert tls.certificate_path(directory, tls.CA_NAME).read_bytes() == ca
        pem = tls.certificate_path(directory, agency.module).read_bytes()
        assert cert_identity(pem) == tls.spiffe_id(agency.module)
        # What the service builds at start from its directory alone.
        tls.server_credentials(directory, agency.module)
        tls.channel_credentials(directory, agency.module)


def test_issuing_again_keeps_the_authority_unless_told_to_rotate(tmp_path: Path) -> None:
    issue_certs = load_issue_certs()
    authority, out = tmp_path / "authority", tmp_path / "issued"
    issue_certs.issue(authority, out)
    first = (out / "lesc" / "ca.pem").read_bytes()
    issue_certs.issue(authority, out)
    assert (out / "lesc" / "ca.pem").read_bytes() == first
    issue_certs.issue(authority, out, new_authority=True)
    rotated = (out / "lesc" / "ca.pem").read_bytes()
    assert rotated != first
    assert rotated == tls.certificate_path(authority, tls.CA_NAME).read_bytes()


def test_compose_gives_every_agency_its_own_database(compose: Obj) -> None:
    init = compose["services"]["postgres"]["volumes"][1]
    source, target, mode = init.split(":")
    assert target.startswith("/docker-entrypoint-initdb.d/") and target.endswith(".sql")
    assert mode == "ro"
    created = set(re.findall(r"CREATE DATABASE (\w+);", (ROOT / source).read_text()))
    urls = {compose_env(compose["services"][name])["SCFED_DATABASE_URL"] for name in AGENCIES}
    assert {url.rsplit("/", 1)[1] for url in urls} == created
    assert len(created) == len(AGENCIES)


def test_compose_publishes_only_the_sib_edge_the_console_and_the_profile_uis_on_loopback(
    compose: Obj,
) -> None:
    published = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    # The other agencies' edges (and so their /metrics) stay inside the network: Prometheus
    # scrapes them there.
    assert published == {
        "sib": ["127.0.0.1:8081:8081"],
        CONSOLE: [f"127.0.0.1:{CONSOLE_PORT}:{CONSOLE_PORT}"],
        "prometheus": ["127.0.0.1:9090:9090"],
        "jaeger": ["127.0.0.1:4317:4317", "127.0.0.1:4318:4318", "127.0.0.1:16686:16686"],
    }


def scrape_targets(service: Obj) -> dict[str, str]:
    """The agencies' /metrics targets of the Prometheus config a compose service mounts."""
    mounts = volume_mounts(service)
    source, mode = mounts["/etc/prometheus/prometheus.yml"]
    assert mode == "ro"
    config = yaml.safe_load((ROOT / source).read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    return {
        group["labels"]["service"]: target
        for group in job["static_configs"]
        for target in group["targets"]
    }


def test_compose_console_is_hardened_on_loopback_with_the_operator_token_only(
    compose: Obj, monkeypatch: pytest.MonkeyPatch
) -> None:
    console = compose["services"][CONSOLE]
    assert "profiles" not in console, "started with the federation"
    assert console["image"] == "scfed:local"
    assert console["entrypoint"] == ["scfed"] and console["command"][0] == "console"
    assert "--host=0.0.0.0" in console["command"]
    assert f"--port={CONSOLE_PORT}" in console["command"]
    assert console_urls(console) == {
        a.module: f"http://{name}:{a.http_port}" for name, a in AGENCIES.items()
    }
    assert console["ports"] == [f"127.0.0.1:{CONSOLE_PORT}:{CONSOLE_PORT}"]
    assert console["read_only"] is True and console["tmpfs"] == ["/tmp"]
    assert console["cap_drop"] == ["ALL"] and "cap_add" not in console
    assert console["security_opt"] == ["no-new-privileges:true"]
    assert "user" not in console, "the image's user"
    # Waits for its token only; an agency that is not up is shown as not answering.
    assert console["depends_on"] == {"certs": {"condition": "service_completed_successfully"}}
    test = console["healthcheck"]["test"]
    assert f"http://127.0.0.1:{CONSOLE_PORT}/healthz" in test[3]
    # The operator's volume, where operator_headers() reads the token with TLS on; no
    # agency's certificates, no database.
    mounts = volume_mounts(console)
    assert mounts == {TLS_DIR: ("certs-operator", "ro")}
    env = compose_env(console)
    assert not any(k.endswith("DATABASE_URL") for k in env)
    for key in [k for k in os.environ if k.startswith("SCFED_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = ServiceSettings()
    assert settings.tls == "on" and str(settings.resolved_tls_dir()) == TLS_DIR


def test_compose_agencies_trace_only_when_an_otlp_endpoint_is_given(compose: Obj) -> None:
    from services.runtime.tracing import otlp_protocol, tracing_on

    jaeger = "http://jaeger:4318"
    for name in AGENCIES:
        service = compose["services"][name]
        default = compose_env(service)
        # Empty means unset: "auto" makes no spans and exports nothing.
        assert default["SCFED_TRACING"] == "auto", name
        assert default["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", name
        assert not tracing_on("auto", default), name
        asked = compose_env(service, {"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger})
        assert asked["OTEL_EXPORTER_OTLP_ENDPOINT"] == jaeger
        assert tracing_on("auto", asked), name
        # OTLP over HTTP (the default protocol), which the profile's Jaeger receives on 4318.
        assert otlp_protocol(asked) == "http/protobuf"
    receivers = compose["services"]["jaeger"]["command"]
    assert "--set=receivers.otlp.protocols.http.endpoint=0.0.0.0:4318" in receivers


def test_compose_profile_observability_scrapes_every_agency_by_service_name(
    compose: Obj,
) -> None:
    services = compose["services"]
    for name in OBSERVABILITY_PROFILE:
        service = services[name]
        assert service["profiles"] == ["observability"], name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        # Third-party images, pinned, and named by a variable for a team's own tag.
        assert re.fullmatch(r"\$\{SCFED_[A-Z]+_IMAGE:-[a-z/]+:v?[0-9.]+\}", service["image"])
    assert interpolate(services["prometheus"]["image"]).startswith("prom/prometheus:")
    assert interpolate(services["jaeger"]["image"]).startswith("jaegertracing/jaeger:")
    assert scrape_targets(services["prometheus"]) == {
        a.module: f"{name}:{a.http_port}" for name, a in AGENCIES.items()
    }
    assert volume_mounts(services["prometheus"])["/prometheus"] == ("prometheus-data", "rw")


def test_compose_host_network_override_keeps_everything_on_loopback(compose: Obj) -> None:
    merged = merge_compose(compose, load_compose("compose.hostnet.yaml"))
    services = merged["services"]
    assert set(services) == {
        "postgres",
        "certs",
        "operator",
        CONSOLE,
        *AGENCIES,
        *OBSERVABILITY_PROFILE,
    }
    for name, service in services.items():
        if name == "jaeger":
            # On compose's network, published on the host's loopback: the agencies on the host
            # network send to 127.0.0.1:4318.
            assert "network_mode" not in service
            assert all(p.startswith("127.0.0.1:") for p in service["ports"])
            continue
        assert service["network_mode"] == ("none" if name == "certs" else "host"), name
        assert "ports" not in service, name
    assert "--web.listen-address=127.0.0.1:9090" in services["prometheus"]["command"]
    assert "--host=127.0.0.1" in services[CONSOLE]["command"]
    assert console_urls(services[CONSOLE]) == {
        a.module: f"http://127.0.0.1:{a.http_port}" for a in AGENCIES.values()
    }
    assert scrape_targets(services["prometheus"]) == {
        a.module: f"127.0.0.1:{a.http_port}" for a in AGENCIES.values()
    }
    assert "listen_addresses=127.0.0.1" in services["postgres"]["command"]
    operator = compose_env(services["operator"])
    assert (
        operator.items()
        >= {
            **{
                f"SCFED_{a.module.upper()}_ADDR": f"127.0.0.1:{a.grpc_port}"
                for a in AGENCIES.values()
            },
            **{f"SCFED_{a.module.upper()}_HTTP_HOST": "127.0.0.1" for a in AGENCIES.values()},
        }.items()
    )
    for name in AGENCIES:
        env = compose_env(services[name])
        assert env["SCFED_GRPC_HOST"] == env["SCFED_HTTP_HOST"] == "127.0.0.1"
        assert env["SCFED_DATABASE_URL"].endswith(f"@127.0.0.1:5432/scfed_{AGENCIES[name].module}")
        for agency in AGENCIES.values():
            addr = env[f"SCFED_{agency.module.upper()}_ADDR"]
            assert addr == f"127.0.0.1:{agency.grpc_port}"


def test_compose_runs_agency_time_as_scfed_up_does_unless_told_real(
    compose: Obj, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostnet = merge_compose(compose, load_compose("compose.hostnet.yaml"))
    for services in (compose["services"], hostnet["services"]):
        clocks = {
            name: clock_of(name, compose_env(services[name]), monkeypatch) for name in AGENCIES
        }
        assert clocks == SCFED_UP_CLOCKS
        real = {"SCFED_AGENCY_CLOCK": "real"}
        clocks = {
            name: clock_of(name, compose_env(services[name], real), monkeypatch)
            for name in AGENCIES
        }
        assert set(clocks.values()) == {"real"}


# --- The image ----------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (INSTRUCTION, arguments), per stage; stage 0 is what
    precedes the first FROM."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), " ".join(arguments.split())))
    return stages


def test_dockerfile_builds_in_two_stages_from_an_overridable_base() -> None:
    preamble, builder, final = dockerfile_stages()
    assert preamble == [("ARG", "BASE_IMAGE=python:3.11-slim")]
    assert builder[0] == ("FROM", "${BASE_IMAGE} AS builder")
    assert final[0] == ("FROM", "${BASE_IMAGE}")
    builder_runs = " ".join(args for op, args in builder if op == "RUN")
    assert "python3 -m venv /opt/venv" in builder_runs
    assert "pip install ." in builder_runs and "[dev]" not in builder_runs


def test_dockerfile_installs_from_a_wheelhouse_alone_when_given_one() -> None:
    _, builder, _ = dockerfile_stages()
    assert ("ARG", "WHEELHOUSE=") in builder
    assert ("COPY", "${WHEELHOUSE:-pyproject.toml} /wheels/") in builder
    pip_runs = [args for op, args in builder if op == "RUN" and "pip install" in args]
    assert len(pip_runs) == 2
    for run in pip_runs:
        assert run.startswith(
            'if [ -n "$WHEELHOUSE" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels; fi'
        )
    compiler = next(args for op, args in builder if op == "RUN" and "build-essential" in args)
    assert compiler.startswith('if [ -z "$WHEELHOUSE" ]')


def test_dockerfile_final_stage_runs_a_service_as_a_non_root_user_without_build_tools() -> None:
    *_, final = dockerfile_stages()
    instructions = dict(final)
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final
    assert instructions["USER"] == "10001:10001"
    assert instructions["ENTRYPOINT"] == '["python", "-m"]'
    assert instructions["CMD"] == '["scfed.services.sib"]'
    env = " ".join(args for op, args in final if op == "ENV")
    for setting in ("SCFED_DATA_DIR=/data", "SCFED_GRPC_HOST=0.0.0.0", "SCFED_HTTP_HOST=0.0.0.0"):
        assert setting in env
    assert "python /opt/scfed/healthcheck.py" in instructions["HEALTHCHECK"].replace('", "', " ")
    runs = " ".join(args for op, args in final if op == "RUN")
    for tool in ("apt-get", "g++", "gcc", "build-essential", "pip install", "curl"):
        assert tool not in runs, f"the final stage installs {tool}"


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore leaves `path` out of the build context (Docker's rules: the last
    matching pattern wins, and a pattern matching a parent directory matches its content)."""
    rules: list[tuple[re.Pattern[str], bool]] = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            pattern = line.removeprefix("!").strip("/")
            regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
            regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
            regex = re.sub(r"\\\[(.*?)\\\]", r"[\1]", regex)
            rules.append((re.compile(regex), negated))
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for compiled, negated in rules:
        if any(compiled.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_local() -> None:
    sources = [
        args.split()[0]
        for stage in dockerfile_stages()
        for op, args in stage
        if op == "COPY" and not args.startswith("--from")
    ]
    assert sources
    for source in (interpolate(s) for s in sources):
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source), f"{source} is copied but ignored"
    for left_out in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        ".scfed-data/sib.db",
        "services/sib/__pycache__/api.cpython-311.pyc",
        "services/sib/api.pyc",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/CACHEDIR.TAG",
        "scfed.egg-info/PKG-INFO",
        ".env",
    ):
        assert dockerignore_excludes(left_out), f"{left_out} would reach the build context"
    assert not dockerignore_excludes("services/lesc/data/appendix_a_moa.toml")
    assert not dockerignore_excludes("wheelhouse/hnswlib-0.8.0-cp311-cp311-linux_x86_64.whl")


@pytest.fixture
def readyz_server() -> Iterator[tuple[int, list[int]]]:
    """An HTTP server on loopback whose /readyz answers the status in the returned list."""
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's health check script, run as the HEALTHCHECK runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCFED_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "docker" / "healthcheck.py"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_image_healthcheck_follows_the_service_readiness(
    readyz_server: tuple[int, list[int]],
) -> None:
    port, status = readyz_server
    env = {"SCFED_LESC_HTTP_PORT": str(port), "SCFED_HTTP_HOST": "0.0.0.0"}
    assert run_healthcheck("scfed.services.lesc", env=env).returncode == 0
    status[0] = 503
    answer = run_healthcheck("lesc", env=env)
    assert answer.returncode == 1
    assert "503" in answer.stderr


def test_image_healthcheck_uses_the_federation_wide_port_and_fails_on_unknown_services(
    readyz_server: tuple[int, list[int]],
) -> None:
    port, _ = readyz_server
    assert run_healthcheck("ident", env={"SCFED_HTTP_PORT": str(port)}).returncode == 0
    assert run_healthcheck("nobody", env={"SCFED_HTTP_PORT": str(port)}).returncode == 1


def test_image_healthcheck_finds_the_service_on_the_container_command_line() -> None:
    find = load_docker_script("healthcheck").service_from_cmdline
    assert find(b"python\0-m\0scfed.services.ice_field\0") == "ice_field"
    assert find(b"/sbin/docker-init\0--\0python\0-m\0scfed.services.sib\0") == "sib"
    assert find(b"python\0-m\0services.lesc\0") == "lesc"
    assert find(b"python\0-m\0scfed.services.cli\0") is None
    assert find(b"sh\0") is None
