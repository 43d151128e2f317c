"""The authorization table: every RPC of every service names who may call it, inter-agency
deliveries only their route's sender, everything else the operator, and the Kubernetes
NetworkPolicies allow exactly the delivery flows on the gRPC ports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.federation import Agency
from services.runtime import message_routes
from services.runtime.authorization import (
    CALLERS,
    OPERATOR,
    allowed_callers,
    delivery_flows,
    may_call,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("method", "callers"),
    [
        ("/scfed.ident.v1.Ident/Search", {"cjis_iafis"}),
        ("/scfed.lesc.v1.Lesc/SubmitIaq", {"cjis_iafis"}),
        ("/scfed.ice_field.v1.IceField/DeliverIar", {"lesc"}),
        ("/scfed.sib.v1.StateIdentificationBureau/DeliverSre", {"cjis_iafis"}),
        ("/scfed.sib.v1.StateIdentificationBureau/DeliverDetainer", {"ice_field"}),
        ("/scfed.cjis_iafis.v1.CjisIafis/SubmitCar", {"sib"}),
        ("/scfed.sib.v1.StateIdentificationBureau/RegisterState", {OPERATOR}),
        ("/scfed.sib.v1.StateIdentificationBureau/SetMoaStatus", {OPERATOR}),
        ("/scfed.sib.v1.StateIdentificationBureau/SuspendJurisdiction", {OPERATOR}),
        ("/scfed.ident.v1.Ident/Identify", {OPERATOR}),
        ("/scfed.ident.v1.Ident/Enroll", {OPERATOR}),
        ("/scfed.admin.v1.AdminService/Reset", {OPERATOR}),
        ("/scfed.common.v1.Faults/AddFault", {OPERATOR}),
        ("/scfed.common.v1.Journal/GetJournal", {OPERATOR}),
    ],
)
def test_each_rpc_names_who_may_call_it(method: str, callers: set[str]) -> None:
    assert allowed_callers(method) == callers


def test_every_delivery_is_its_senders_alone_and_the_rest_is_the_operators() -> None:
    deliveries = {route.path: str(route.sender) for route in message_routes.ROUTES}
    for method, callers in CALLERS.items():
        expected = {deliveries[method]} if method in deliveries else {OPERATOR}
        assert callers == expected, method
    assert len(CALLERS) >= 38


def test_health_and_reflection_answer_anyone_and_unknown_methods_nobody() -> None:
    assert may_call("anyone", "/grpc.health.v1.Health/Check")
    assert may_call("", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert allowed_callers("/scfed.sib.v1.StateIdentificationBureau/Nothing") == frozenset()
    assert not may_call(OPERATOR, "/scfed.sib.v1.StateIdentificationBureau/Nothing")
    assert not may_call("sib", "/scfed.ident.v1.Ident/Search")


def _policy_flows() -> set[tuple[Agency, Agency]]:
    """(sender, receiver) pairs the NetworkPolicies allow on the receivers' gRPC ports."""
    flows = set()
    text = (ROOT / "deploy" / "base" / "networkpolicies.yaml").read_text()
    for policy in yaml.safe_load_all(text):
        receiver = policy["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
        for rule in policy["spec"].get("ingress", []):
            if not any(port.get("port") == "grpc" for port in rule.get("ports", [])):
                continue
            for source in rule.get("from", []):
                sender = source["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                flows.add((Agency(sender.replace("-", "_")), Agency(receiver.replace("-", "_"))))
    return flows


def test_the_network_policies_allow_exactly_the_delivery_flows() -> None:
    assert _policy_flows() == set(delivery_flows())
