"""The entry point end to end: its own loop, a real client, a window, a clean exit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from core.client import open_client
from core.errors import ExitCode
from core.workspace import Workspace
from gui.app import main
from gui.resources import app_icon, icon_path
from tests.gui.tier2 import add_folder_target, back_up

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


def test_main_saves_the_restore_dialog_for_the_docs(qapp, imported_ws: Path, tmp_path) -> None:
    async def prepare() -> None:
        await add_folder_target(imported_ws, tmp_path / "disk")
        client = await open_client(imported_ws)
        try:
            await back_up(client, [])  # every session
        finally:
            await client.close()

    asyncio.run(prepare())
    png = tmp_path / "restore.png"
    argv = ["--workspace", str(imported_ws), "--screenshot", str(png), "--dialog", "restore"]
    assert main(argv) == ExitCode.OK
    image = QImage(str(png))
    assert not image.isNull()
    assert image.width() < 900  # the dialog alone, not the window


def test_a_dark_scheme_on_request_darkens_the_window_and_its_own_colours(
    qapp, imported_ws: Path, tmp_path: Path
) -> None:
    from PySide6.QtGui import QPalette

    from gui.perf_plots import is_dark
    from gui.theme import apply_scheme

    before = qapp.palette()
    png = tmp_path / "dark.png"
    try:
        code = main(["--workspace", str(imported_ws), "--screenshot", str(png),
                     "--page", "dashboard", "--color-scheme", "dark"])  # fmt: skip
        assert code == ExitCode.OK
        assert is_dark(qapp.palette())
        image = QImage(str(png))
        corner = image.pixelColor(image.width() - 5, image.height() // 2)
        assert corner.lightness() < 80  # the window itself was drawn dark
        apply_scheme(qapp, "light")
        assert not is_dark(qapp.palette())
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 180
    finally:
        qapp.setPalette(before)
    with pytest.raises(ValueError, match="colour scheme"):
        apply_scheme(qapp, "sepia")
