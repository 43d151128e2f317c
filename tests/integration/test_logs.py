"""The delivery log of five real services: a booking's CAR leaves the SIB in one line and arrives
at CJIS in one, each with the booking's TCN and the message's id, and both form a JSON line."""

from __future__ import annotations

import json
import logging

import pytest

from services.runtime.logs import JsonLines
from tests.federation import Federation
from tests.scenario import scenario_in

DELIVERY = "services.runtime.delivery"


async def test_a_booking_message_logs_one_received_line_and_one_sent_line(
    federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    async with scenario_in(federation) as scenario:
        with caplog.at_level(logging.INFO, logger=DELIVERY):
            tcn = await scenario.book(scenario.subject(), "CA0190000")
            await scenario.final(tcn)

    def lines(outcomes: set[str]) -> list[logging.LogRecord]:
        """The delivery lines of the booking's CAR with one of `outcomes`."""
        return [
            r
            for r in caplog.records
            if r.name == DELIVERY
            and (vars(r).get("tot"), vars(r).get("tcn")) == ("CAR", tcn)
            and vars(r).get("outcome") in outcomes
        ]

    (received_line,) = lines({"processed", "duplicate", "refused"})
    received = vars(received_line)
    assert (received["peer"], received["outcome"]) == ("sib", "processed")
    assert received_line.levelno == logging.INFO and received["duration_ms"] >= 0
    (sent_line,) = lines({"delivered", "retry", "dead"})
    sent = vars(sent_line)
    assert sent["message_id"] == received["message_id"] != ""
    assert (sent["peer"], sent["attempts"]) == ("cjis_iafis", 1)

    line = json.loads(JsonLines().format(received_line))
    assert line["tcn"] == tcn and line["message_id"] == sent["message_id"]
    assert line["message"].startswith(f"received CAR {line['message_id']} from sib: processed")
