"""`--time-to-window`: the figure the packaging benchmark reads (start to first paint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ExitCode
from gui.app import main

pytestmark = pytest.mark.gui


def test_time_to_window_reports_once_the_window_is_painted_and_quits(
    qapp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--workspace", str(tmp_path / "ws"), "--time-to-window"])
    assert code == ExitCode.OK
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("time-to-window ")]
    assert len(lines) == 1
    words = lines[0].split()
    seconds = float(words[1])
    # counted from the process's creation (this test process), so never zero or negative
    assert seconds > 0
    assert words[2:5] == ["s", "from", "process"]
    assert (tmp_path / "ws" / "config.toml").is_file()  # it opened the workspace like a launch
