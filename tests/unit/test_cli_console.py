"""The command line's consoles follow the width of the run that prints, not the first one's."""

from __future__ import annotations

import pytest

from services.cli.main import err, out


@pytest.mark.parametrize("console", [out, err])
def test_a_console_takes_the_width_of_each_run(
    console: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    make = console
    assert callable(make)
    monkeypatch.setenv("COLUMNS", "61")
    assert make().width == 61
    # A second command in the same process (a test after another) at another width.
    monkeypatch.setenv("COLUMNS", "250")
    assert make().width == 250
