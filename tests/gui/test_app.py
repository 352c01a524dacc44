"""The entry point end to end: its own loop, a real client, a window, a clean exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from core.errors import ExitCode
from core.workspace import Workspace
from gui.app import main
from gui.resources import app_icon, icon_path

pytestmark = pytest.mark.gui


def test_app_icon_is_bundled(qapp) -> None:
    assert icon_path("tierkeeper").is_file()
    assert not app_icon().isNull()
    assert not app_icon().pixmap(16, 16).isNull()


def test_main_opens_the_window_and_saves_a_screenshot(qapp, imported_ws: Path, tmp_path) -> None:
    png = tmp_path / "shot.png"
    code = main(["--workspace", str(imported_ws), "--screenshot", str(png), "--page", "sessions"])
    assert code == ExitCode.OK
    image = QImage(str(png))
    assert not image.isNull()
    assert image.width() >= 800 and image.height() >= 500


def test_main_on_a_workspace_in_use_exits_with_the_reason(
    qapp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace.at(tmp_path / "ws")
    ws.init()
    with ws.lock():  # as another Tierkeeper holding it would
        code = main(["--workspace", str(ws.root), "--screenshot", str(tmp_path / "x.png")])
    assert code == ExitCode.FAILED
    assert "in use" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
