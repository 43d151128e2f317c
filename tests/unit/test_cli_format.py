"""`scfed format iaq|iar` on files: a message's protobuf JSON to Nlets text and back, and every
bad input refused with exit code 2 and a message, never a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson
from typer.testing import CliRunner

from services.cli.main import app
from services.formats import nlets
from tests.unit.test_nlets import _iaq, _iar


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["format", *args], input=stdin)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.stdout, " ".join(result.stderr.replace("│", " ").split())


def test_a_message_file_as_protobuf_json_renders_as_nlets_text(tmp_path: Path) -> None:
    path = tmp_path / "iaq.json"
    path.write_text(MessageToJson(_iaq()))
    code, out, err = _run("iaq", "--message", str(path))
    assert code == 0, err
    assert out == nlets.render_iaq(_iaq())


def test_nlets_text_parses_to_protobuf_json_with_the_proto_field_names(tmp_path: Path) -> None:
    path = tmp_path / "iar.txt"
    path.write_text(nlets.render_iar(_iar()))
    code, out, err = _run("iar", "--parse", str(path))
    assert code == 0, err
    assert json.loads(out) == json.loads(MessageToJson(_iar(), preserving_proto_field_name=True))


def test_a_dash_reads_standard_input() -> None:
    code, out, err = _run("iar", "--parse", "-", stdin=nlets.render_iar(_iar()))
    assert code == 0, err
    assert json.loads(out)["iar"]["case_id"] == "LESC0123456789AB"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "text", "expected"),
    [
        (("iaq",), None, "one of --tcn, --message or --parse"),
        (("iaq", "--tcn", ""), None, "--tcn is empty"),
        (("iaq", "--tcn", "T", "--parse", "F"), None, "one of --tcn, --message or --parse"),
        (("iaq", "--parse", "{missing}"), None, "cannot read"),
        (("iaq", "--parse", "{file}"), "IAQ.A.B.C.TXT\nNAM DOE\n", "line 2: expected a field"),
        (("iar", "--parse", "{file}"), nlets.render_iaq(_iaq()), "line 1: expected the header"),
        (("iaq", "--message", "{file}"), "{not json", "not the protobuf JSON of an IAQ"),
        (("iaq", "--message", "{file}"), '{"nosuch": 1}', "not the protobuf JSON of an IAQ"),
        (("iaq", "--message", "{file}"), "{}", "an IAQ carries an envelope"),
        (("iaq", "--tcn", "T", "--url", "lesc=nope"), None, "--url"),
        (("iar", "--parse", "{file}"), b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, args: tuple[str, ...], text: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "input"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    filled = [a.format(file=path, missing=tmp_path / "missing") for a in args]
    code, _out, err = _run(*filled)
    assert code == 2, err
    assert expected in err
    assert "Traceback" not in err


def test_a_lesc_that_does_not_answer_exits_1_naming_it() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    code, _out, err = _run("iaq", "--tcn", "CA0000000000000000", "--url", f"lesc={url}")
    assert code == 1
    assert url in err and "does not answer" in err
