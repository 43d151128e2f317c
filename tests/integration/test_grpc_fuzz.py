"""The gRPC fuzzer (tests/grpc_fuzz.py) over every RPC of every service, on a federation of
its own: no input, whatever its bytes, may end in UNKNOWN, INTERNAL, a dropped connection or a
hang. Bounded (a fixed seed, a fixed count per method); SCFED_FUZZ_SEED and
SCFED_FUZZ_PER_METHOD change them."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import grpc
from google.protobuf.message import Message

from scfed.admin.v1 import admin_pb2 as admin
from scfed.common.v1 import common_pb2 as common
from scfed.ident.v1 import ident_pb2 as ident
from services.conformance.messages import NAM, tenprint
from services.conformance.refusals import content_refusals, enveloped
from tests.federation import DatabaseChoice, running_federation
from tests.grpc_fuzz import Fuzzer, cases, service_descriptors

SEED = int(os.environ.get("SCFED_FUZZ_SEED", "20261203"))
PER_METHOD = int(os.environ.get("SCFED_FUZZ_PER_METHOD", "150"))
# A call that takes longer than this is a hang.
DEADLINE_S = 10.0
# A call slower than this is listed (not failed) after the run.
SLOW_S = 2.0
VERBOSE = bool(os.environ.get("SCFED_FUZZ_VERBOSE"))
# What no input may get.
BROKEN = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
}


def _valid_requests() -> dict[str, list[Message]]:
    """Well-formed requests by RPC method name (conformance's messages and refusals)."""
    valid: dict[str, list[Message]] = {}
    for _service, method, message in enveloped():
        valid.setdefault(method, []).append(message)
    for refusal in content_refusals():
        valid.setdefault(refusal.method, []).append(refusal.request)
    encounter = ident.NewEncounter(
        descriptors=NAM,
        tenprint=tenprint(),
        encounter=common.Encounter(status=common.IMMIGRATION_STATUS_VISA_OVERSTAY),
    )
    for method, message in (
        ("Enroll", ident.EnrollRequest(encounter=encounter)),
        ("Identify", ident.IdentifyRequest(tenprint=tenprint(), candidate_list_size=5)),
        ("DeleteIdentity", ident.DeleteIdentityRequest(fin="FIN0000000001")),
        ("GetJournal", common.JournalQuery(tcn="CA0190000TCN")),
        ("AdvanceClock", admin.AdvanceClockRequest(duration="P1D")),
        ("SetClock", admin.SetClockRequest(spec="accelerated:60")),
        ("AddFault", common.AddFaultRequest(rule=common.FaultRule(action="latency", latency_ms=1))),
        ("ClearFaults", common.ClearFaultsRequest(id="f1")),
    ):
        valid.setdefault(method, []).append(message)
    return valid


async def test_no_generated_mutated_or_garbage_request_gets_unknown_internal_or_hangs(
    tmp_path: Path,
) -> None:
    fuzzer = Fuzzer(SEED)
    valid = _valid_requests()
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    slow: list[str] = []
    started = time.monotonic()
    async with running_federation(DatabaseChoice(kind="sqlite", tmp=tmp_path)) as fed:
        for name, host in fed.hosts.items():
            async with grpc.aio.insecure_channel(host.grpc_address) as channel:
                for service in service_descriptors(name):
                    for method in service.methods:
                        if method.client_streaming or method.server_streaming:
                            continue  # Health.Watch: its garbage is test_grpc_edge_input's
                        path = f"/{service.full_name}/{method.name}"
                        # Only requests of this method's own type seed its mutations.
                        seeds = [
                            m
                            for m in valid.get(method.name, [])
                            if m.DESCRIPTOR is method.input_type
                        ]
                        call = channel.unary_unary(path)
                        method_started = time.monotonic()
                        for kind, data in cases(fuzzer, method.input_type, seeds, PER_METHOD):
                            call_started = time.monotonic()
                            try:
                                await asyncio.wait_for(
                                    call(data, timeout=DEADLINE_S), DEADLINE_S + 5
                                )
                                code = grpc.StatusCode.OK
                                details = ""
                            except grpc.aio.AioRpcError as err:
                                code, details = err.code(), err.details() or ""
                            except TimeoutError:
                                code, details = grpc.StatusCode.DEADLINE_EXCEEDED, "no answer"
                            outcomes[code.name] += 1
                            if time.monotonic() - call_started > SLOW_S:
                                slow.append(
                                    f"{name} {path} {kind} {code.name} "
                                    f"{time.monotonic() - call_started:.1f}s "
                                    f"request={data[:200].hex()}"
                                )
                            if code in BROKEN:
                                failures.append(
                                    f"{name} {path} {kind} {code.name} {details[:300]!r} "
                                    f"request={data[:200].hex()}{'...' if len(data) > 200 else ''}"
                                )
                            # A rule a fuzzed AddFault put in force would answer every later
                            # call with its status: each call meets the service without one.
                            host.runtime.faults.clear()
                        if VERBOSE:
                            print(f"{name} {path}: {time.monotonic() - method_started:.1f}s")
    elapsed = time.monotonic() - started
    print(
        f"gRPC fuzz: seed {SEED}, {sum(outcomes.values())} calls "
        f"({PER_METHOD} per method) in {elapsed:.1f}s: {dict(outcomes)}"
    )
    if slow:
        print("slow calls:\n" + "\n".join(slow[:20]))
    assert failures == [], "\n".join(failures[:40])
