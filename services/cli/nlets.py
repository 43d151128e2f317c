"""`scfed format iaq|iar`: LESC's IAQ and IAR as Nlets text (services/formats/nlets.py), read
from a running federation's LESC, rendered from a message's protobuf JSON, or parsed back."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import quote

import typer

from ..federation import Agency
from .control import Urls, edge_urls

if TYPE_CHECKING:
    from google.protobuf.message import Message


class Kind(StrEnum):
    """The message to format."""

    IAQ = "iaq"
    IAR = "iar"


def _fail(reason: str, code: int = 2) -> NoReturn:
    from .main import err

    err().print(f"[red]error:[/red] {reason}", markup=True, highlight=False)
    raise typer.Exit(code)


def _read(source: str) -> str:
    """The text of a file, or of standard input for "-"; exit 2 when it cannot be read."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {source}: {exc.strerror or exc}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"{source} is not UTF-8 text: {exc.reason} at byte {exc.start}")


def _from_lesc(kind: Kind, tcn: str, base: str) -> str:
    """The booking's message as LESC's edge renders it; exit 2 for a TCN LESC refuses or does
    not know, 1 when it does not answer."""
    import httpx

    url = f"{base.rstrip('/')}/v1/cases/{quote(tcn, safe='')}/{kind}"
    try:
        r = httpx.get(url, timeout=30)
    except httpx.HTTPError as exc:
        _fail(f"LESC at {base} does not answer: {exc}", 1)
    if r.status_code == 200:
        return r.text
    try:
        detail = str(r.json()["detail"])
    except (ValueError, KeyError, TypeError):
        detail = r.text[:200]
    _fail(f"LESC at {base}: {r.status_code} {detail}", 2 if r.status_code in (404, 422) else 1)


def _render(kind: Kind, source: str) -> str:
    """The Nlets text of a message given as protobuf JSON."""
    from google.protobuf.json_format import Parse, ParseError

    from scfed.cjis_iafis.v1 import cjis_iafis_pb2
    from scfed.lesc.v1 import lesc_pb2

    from ..formats import nlets

    text = _read(source)
    message: Message = lesc_pb2.Iaq() if kind == Kind.IAQ else cjis_iafis_pb2.IarMessage()
    try:
        Parse(text, message)
    except ParseError as exc:
        _fail(f"{source} is not the protobuf JSON of an {kind.upper()}: {exc}")
    try:
        if isinstance(message, lesc_pb2.Iaq):
            return nlets.render_iaq(message)
        assert isinstance(message, cjis_iafis_pb2.IarMessage)
        return nlets.render_iar(message)
    except nlets.NletsError as exc:
        _fail(f"{source}: {exc}")


def _parse(kind: Kind, source: str) -> str:
    """The protobuf JSON (proto field names) of a message given as Nlets text."""
    from google.protobuf.json_format import MessageToJson

    from ..formats import nlets

    text = _read(source)
    try:
        message = nlets.parse_iaq(text) if kind == Kind.IAQ else nlets.parse_iar(text)
    except nlets.NletsError as exc:
        _fail(f"{source}: {exc}")
    return MessageToJson(message, preserving_proto_field_name=True) + "\n"


def format_message(
    kind: Annotated[Kind, typer.Argument(help="The message: iaq or iar.")],
    tcn: Annotated[
        str | None,
        typer.Option(help="Print this booking's message from the LESC of a running federation."),
    ] = None,
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            help="Print the Nlets text of the message in this file, as protobuf JSON (an "
            "scfed.lesc.v1.Iaq, or the scfed.cjis_iafis.v1.IarMessage LESC sends); - reads "
            "standard input.",
        ),
    ] = None,
    parse: Annotated[
        str | None,
        typer.Option(
            "--parse",
            help="Print the message whose Nlets text is in this file as protobuf JSON; - reads "
            "standard input.",
        ),
    ] = None,
    url: Urls = None,
) -> None:
    """Write an IAQ or IAR as the Nlets text a terminal shows, or read such text back. Exit 2
    for bad input or a TCN LESC does not know, 1 when LESC does not answer."""
    options = {"--tcn": tcn, "--message": message, "--parse": parse}
    chosen = [name for name, value in options.items() if value is not None]
    if len(chosen) != 1:
        _fail(f"give one of --tcn, --message or --parse (got {', '.join(chosen) or 'none'})")
    if tcn is not None:
        if not tcn:
            _fail("--tcn is empty")
        result = _from_lesc(kind, tcn, edge_urls(url)[Agency.LESC])
    elif message is not None:
        result = _render(kind, message)
    else:
        assert parse is not None
        result = _parse(kind, parse)
    sys.stdout.write(result)
