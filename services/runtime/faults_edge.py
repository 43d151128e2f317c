"""The fault rules' edges on every service: `/v1/faults` on the HTTP edge and the gRPC service
scfed.common.v1.Faults. Both read a rule into one FaultSpec (faults.py holds the rules) and
refuse a malformed one naming the field: 422 / INVALID_ARGUMENT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Path, params
from google.protobuf import json_format
from pydantic import BaseModel, ValidationError

from scfed.common.v1 import common_pb2 as pb
from scfed.common.v1 import common_pb2_grpc as pb_grpc

from .edge import grpc_edge
from .errors import InvalidArgument, NotFound
from .faults import FaultRules, FaultSpec, FaultView
from .http_edge import error_responses, validation_body

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Faults"].full_name
# The FaultRule fields a client writes (the others are the service's to fill in).
_OUTPUT_FIELDS = frozenset({"id", "injected", "created_at", "expires_at"})


class FaultList(BaseModel):
    """The rules in force, oldest first."""

    rules: list[FaultView]


class Cleared(BaseModel):
    """How many rules a clear removed."""

    cleared: int


def clear(rules: FaultRules, rule_id: str | None) -> Cleared:
    """Clears one rule (NotFound when none in force has the id) or, without an id, all."""
    if rule_id is None:
        return Cleared(cleared=rules.clear())
    if not rules.remove(rule_id):
        raise NotFound(f"no fault rule {rule_id!r} is in force (see GET /v1/faults)")
    return Cleared(cleared=1)


def faults_router(rules: FaultRules, dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    """`/v1/faults`: add a rule, list them, clear one or all, each running `dependencies`
    first (the operator's check)."""
    router = APIRouter(tags=["faults"], dependencies=dependencies, responses=error_responses(401))

    @router.post("/v1/faults", status_code=201, responses=error_responses(413, 422, 429))
    async def add_fault(spec: FaultSpec) -> FaultView:
        """Puts a fault rule in force; 422 names a malformed field, 429 when the service
        already holds 1000 rules."""
        return rules.add(spec).view()

    @router.get("/v1/faults")
    async def list_faults() -> FaultList:
        """The fault rules in force (expired and used-up rules are gone)."""
        return FaultList(rules=[rule.view() for rule in rules.list()])

    @router.delete("/v1/faults")
    async def clear_faults() -> Cleared:
        """Clears every fault rule."""
        return clear(rules, None)

    @router.delete("/v1/faults/{rule_id}", responses=error_responses(404, 422))
    async def clear_fault(rule_id: Annotated[str, Path(max_length=32)]) -> Cleared:
        """Clears one fault rule; 404 when no rule in force has the id."""
        return clear(rules, rule_id)

    return router


def spec_from_proto(rule: pb.FaultRule) -> FaultSpec:
    """The FaultSpec a gRPC FaultRule describes: empty strings and unset optionals take their
    defaults, output fields are ignored. InvalidArgument names a malformed field."""
    given: dict[str, Any] = {
        name: value
        for name, value in json_format.MessageToDict(rule, preserving_proto_field_name=True).items()
        if name not in _OUTPUT_FIELDS and value != ""
    }
    try:
        return FaultSpec.model_validate(given)
    except ValidationError as exc:
        raise InvalidArgument(f"rule: {validation_body(exc.errors()).detail}") from None


def view_to_proto(view: FaultView) -> pb.FaultRule:
    """A rule as the gRPC service answers it."""
    rule = pb.FaultRule(
        id=view.id,
        action=view.action,
        side=view.side,
        method=view.method,
        message_type=view.message_type,
        peer=view.peer or "",
        tcn=view.tcn,
        code=view.code,
        details=view.details,
        latency_ms=view.latency_ms,
        latency_spread_ms=view.latency_spread_ms,
        latency_distribution=view.latency_distribution,
        probability=view.probability,
        injected=view.injected,
    )
    if view.count is not None:
        rule.count = view.count
    if view.expires_in_s is not None:
        rule.expires_in_s = view.expires_in_s
    rule.created_at.FromDatetime(view.created_at)
    if view.expires_at is not None:
        rule.expires_at.FromDatetime(view.expires_at)
    return rule


class FaultsServicer(pb_grpc.FaultsServicer):
    """scfed.common.v1.Faults: the fault rules of one service over gRPC."""

    def __init__(self, rules: FaultRules) -> None:
        self.rules = rules

    @grpc_edge
    async def AddFault(
        self, request: pb.AddFaultRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddFaultResponse:
        """Puts a rule in force."""
        if not request.HasField("rule"):
            raise InvalidArgument("rule is required")
        view = self.rules.add(spec_from_proto(request.rule)).view()
        return pb.AddFaultResponse(rule=view_to_proto(view))

    @grpc_edge
    async def ListFaults(
        self, request: pb.ListFaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFaultsResponse:
        """The rules in force, oldest first."""
        return pb.ListFaultsResponse(
            rules=[view_to_proto(rule.view()) for rule in self.rules.list()]
        )

    @grpc_edge
    async def ClearFaults(
        self, request: pb.ClearFaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClearFaultsResponse:
        """Clears one rule or all."""
        done = clear(self.rules, request.id or None)
        return pb.ClearFaultsResponse(cleared=done.cleared)
