"""How a service logs: plain lines for a terminal, JSON lines for a collector, and the fields
of the message being handled (tcn, message_id, ...) on every line logged while it is.

Every module keeps logging through its own `logging.getLogger(__name__)`; this module only
sets up the one handler a service process has (`configure_logging`). Fields come two ways:
a call's `extra=` (the per-message lines of delivery.py), and `log_context`, a context
variable that a filter on the handler reads, so code that knows a field late (a trace id) can
attach it without touching the formatter or the lines logged inside its block.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["auto", "json", "text"]

# The fields every JSON line starts with, in this order; the others follow.
_LEADING = ("time", "level", "service", "logger", "message")

_fields: ContextVar[Mapping[str, object]] = ContextVar(
    "scfed_log_fields", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Attaches `fields` to every line logged inside the block, by this task and the tasks it
    starts there (a field given None is left out); an inner block adds to an outer one."""
    given = {name: value for name, value in fields.items() if value is not None}
    token = _fields.set(MappingProxyType({**_fields.get(), **given}))
    try:
        yield
    finally:
        _fields.reset(token)


def context_fields() -> Mapping[str, object]:
    """The fields `log_context` attaches here and now."""
    return _fields.get()


class ContextFilter(logging.Filter):
    """Puts the service's name and the `log_context` fields on each record its handler
    emits; a field the call passed in `extra` wins."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Adds the fields the record lacks; never drops a record."""
        for name, value in {"service": self._service, **_fields.get()}.items():
            if name not in record.__dict__:
                setattr(record, name, value)
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line: time (ISO 8601, UTC), level, service, logger, message, then
    the record's other fields; a traceback is one string field, `exc_info`."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            # Uvicorn's coloured copy of its own message is not a field.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            json_ensure_ascii=False,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """The leading fields first, so a line reads in the same order whatever it carries."""
        leading = {name: log_data.pop(name) for name in _LEADING if name in log_data}
        return {**leading, **log_data}


def text_formatter(service: str) -> logging.Formatter:
    """The plain line: time, service, level, logger and message."""
    return logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")


def resolved_format(form: LogFormat, stream: TextIO) -> Literal["json", "text"]:
    """`form`, with "auto" decided by the stream: text for a terminal, JSON otherwise."""
    if form != "auto":
        return form
    return "text" if stream.isatty() else "json"


def log_handler(service: str, form: LogFormat, stream: TextIO) -> logging.Handler:
    """A handler writing `service`'s lines to `stream` in `form`, with the context fields."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter(service))
    if resolved_format(form, stream) == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(text_formatter(service))
    return handler


def configure_logging(
    service: str, *, level: str, form: LogFormat, stream: TextIO | None = None
) -> None:
    """Sends every logger's lines at `level` and above to `stream` (stderr) in `form`: the
    setup of a service process, done once in its entry point."""
    handler = log_handler(service, form, stream or sys.stderr)
    logging.basicConfig(level=level, handlers=[handler])
