"""Service logs: JSON lines with the message's fields, one line whatever the traceback, the plain
text line unchanged, and settings that refuse a format or level no service can log in."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.runtime.logs import (
    LogFormat,
    context_fields,
    log_context,
    log_handler,
    resolved_format,
)
from services.sib.config import SibSettings


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        """Always: this stream stands for one."""
        return True


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of the tests' own at DEBUG, with no handler but the test's."""
    log = logging.getLogger("tests.unit.test_logs")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.handlers.clear()


def _lines(
    logger: logging.Logger, form: LogFormat, stream: io.StringIO | None = None
) -> io.StringIO:
    stream = stream if stream is not None else io.StringIO()
    logger.handlers.clear()
    logger.addHandler(log_handler("sib", form, stream))
    return stream


def _objects(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_holds_the_record_and_its_context_fields(logger: logging.Logger) -> None:
    stream = _lines(logger, "json")
    with log_context(tcn="CA0000000000000001", trace_id="4bf92f3577b34da6", peer=None):
        logger.info("received %s", "CAR", extra={"message_id": "m-1", "tot": "CAR"})

    (line,) = _objects(stream)
    assert list(line)[:5] == ["time", "level", "service", "logger", "message"]
    assert line["level"] == "INFO" and line["service"] == "sib"
    assert line["logger"] == "tests.unit.test_logs" and line["message"] == "received CAR"
    assert line["tcn"] == "CA0000000000000001" and line["trace_id"] == "4bf92f3577b34da6"
    assert line["message_id"] == "m-1" and line["tot"] == "CAR"
    # A field given None is left out, not written as null.
    assert "peer" not in line
    at = datetime.fromisoformat(line["time"])
    assert at.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60


def test_a_field_passed_in_extra_wins_over_the_context(logger: logging.Logger) -> None:
    stream = _lines(logger, "json")
    with log_context(tcn="OUTER", service="ident"):
        logger.info("sent", extra={"tcn": "INNER"})
    (line,) = _objects(stream)
    assert line["tcn"] == "INNER" and line["service"] == "ident"


def test_context_fields_nest_and_end_with_their_block(logger: logging.Logger) -> None:
    stream = _lines(logger, "json")
    with log_context(tcn="T-1"):
        with log_context(message_id="m-2"):
            assert dict(context_fields()) == {"tcn": "T-1", "message_id": "m-2"}
            logger.info("inner")
        logger.info("outer")
    logger.info("after")
    inner, outer, after = _objects(stream)
    assert (inner["tcn"], inner["message_id"]) == ("T-1", "m-2")
    assert outer["tcn"] == "T-1" and "message_id" not in outer
    assert "tcn" not in after and dict(context_fields()) == {}


def test_an_exception_is_one_field_of_one_line(logger: logging.Logger) -> None:
    stream = _lines(logger, "json")
    try:
        raise ValueError("bad envelope\nsecond line")
    except ValueError:
        logger.exception("settling %d messages", 3)

    text = stream.getvalue()
    assert text.count("\n") == 1
    (line,) = _objects(stream)
    assert line["level"] == "ERROR" and line["message"] == "settling 3 messages"
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad envelope\nsecond line" in line["exc_info"]


def test_the_text_line_is_the_plain_one_it_always_was(logger: logging.Logger) -> None:
    stream = _lines(logger, "text")
    with log_context(tcn="T-1"):
        logger.warning("sib: TLS off: gRPC is plaintext", extra={"message_id": "m-1"})
    line = stream.getvalue()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} sib WARNING tests\.unit\.test_logs: "
        r"sib: TLS off: gRPC is plaintext\n",
        line,
    )


def test_auto_is_text_on_a_terminal_and_json_elsewhere(logger: logging.Logger) -> None:
    assert resolved_format("auto", _Terminal()) == "text"
    assert resolved_format("auto", io.StringIO()) == "json"
    assert resolved_format("json", _Terminal()) == "json"
    assert resolved_format("text", io.StringIO()) == "text"
    terminal = _lines(logger, "auto", _Terminal())
    logger.info("hello")
    assert not terminal.getvalue().startswith("{")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SCFED_* variable from the shell that runs the tests leaks into them."""
    for name in list(os.environ):
        if name.upper().startswith("SCFED_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_environment")
def test_the_log_settings_default_to_auto_at_info_and_take_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = SibSettings()
    assert (settings.log_format, settings.log_level) == ("auto", "INFO")
    monkeypatch.setenv("SCFED_LOG_FORMAT", " JSON ")
    monkeypatch.setenv("SCFED_SIB_LOG_LEVEL", "debug")
    settings = SibSettings()
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    monkeypatch.setenv("SCFED_SIB_LOG_LEVEL", "warn")
    assert SibSettings().log_level == "WARNING"


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("SCFED_LOG_FORMAT", "yaml", "'auto', 'json' or 'text'"),
        ("SCFED_SIB_LOG_LEVEL", "verbose", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
    ],
)
def test_a_log_setting_out_of_its_values_is_refused_naming_them(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        SibSettings()
    message = str(refused.value)
    assert variable.removeprefix("SCFED_").removeprefix("SIB_").lower() in message
    assert allowed in message
