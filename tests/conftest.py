from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
async def service(workspace_dir: Path) -> AsyncIterator[object]:
    from core.service import Service

    svc = await Service.start(workspace_dir)
    try:
        yield svc
    finally:
        await svc.stop()
