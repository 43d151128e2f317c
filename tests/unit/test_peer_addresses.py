"""A peer's `*_ADDR` may list several replicas; the outbox sends to them in turn."""

from __future__ import annotations

import pytest

from services.cli.endpoints import http_urls
from services.runtime.db import Database
from services.runtime.delivery import Outbox, RetryPolicy, peer_addresses


def test_an_address_lists_one_or_several_replicas() -> None:
    assert peer_addresses("lesc:50054") == ["lesc:50054"]
    assert peer_addresses("10.0.0.1:50054, 10.0.0.2:50054,") == [
        "10.0.0.1:50054",
        "10.0.0.2:50054",
    ]
    assert peer_addresses("") == []


async def test_the_outbox_sends_to_each_listed_replica_in_turn() -> None:
    outbox = Outbox(
        Database("sqlite+aiosqlite:///:memory:"),
        service="cjis_iafis",
        peers={"lesc": "127.0.0.1:1,127.0.0.1:2", "ident": "127.0.0.1:3"},
        policy=RetryPolicy(),
    )
    try:
        lesc = [outbox._channel("lesc") for _ in range(4)]
        assert lesc[0] is lesc[2] and lesc[1] is lesc[3] and lesc[0] is not lesc[1]
        assert outbox._channel("ident") is outbox._channel("ident")
        assert outbox._channel("sib") is None
    finally:
        await outbox.stop()


def test_a_running_federations_http_edges_follow_each_services_http_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCFED_SIB_HTTP_HOST", "127.0.0.2")
    monkeypatch.setenv("SCFED_SIB_GRPC_HOST", "127.0.0.3")
    monkeypatch.setenv("SCFED_LESC_HTTP_HOST", "0.0.0.0")
    urls = http_urls()
    assert urls["sib"] == "http://127.0.0.2:8081"
    assert urls["lesc"] == "http://127.0.0.1:8084"
