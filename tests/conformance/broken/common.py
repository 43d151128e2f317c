"""Breaks every agency can have: what the shared runtime would do wrong."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scfed.common.v1 import common_pb2
from services.runtime.delivery import Inbox


def forget_message_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inbox files every message under a fresh id: a retried message is processed again
    and acknowledged as new."""
    receive = Inbox.receive

    async def forgetful(self: Inbox, message: Any, **kwargs: Any) -> common_pb2.Ack:
        renamed = type(message)()
        renamed.CopyFrom(message)
        if renamed.HasField("envelope"):
            renamed.envelope.message_id = str(uuid.uuid4())
        await receive(self, renamed, **kwargs)
        return common_pb2.Ack(message_id=message.envelope.message_id, duplicate=False)

    monkeypatch.setattr(Inbox, "receive", forgetful)
