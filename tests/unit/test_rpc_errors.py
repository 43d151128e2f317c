"""A failed gRPC call reads as its status and details, with the remedy where there is one."""

from __future__ import annotations

import grpc

from services.cli.rpc_errors import ANOTHER_WORLD, rpc_failure


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def test_a_failure_is_its_status_and_details_not_the_error_object() -> None:
    text = rpc_failure(_error(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    assert text == "UNAVAILABLE: connection refused"


def test_another_worlds_ids_say_how_to_seed_again() -> None:
    text = rpc_failure(_error(grpc.StatusCode.ALREADY_EXISTS, "encounter E1 is on file"))
    assert text.startswith("ALREADY_EXISTS: encounter E1 is on file (")
    assert ANOTHER_WORLD in text and "scfed reset" in text
