"""The application wired as ``hotline serve`` wires it, with recording on, on the stand-in, a
real redis-server and SQLite (the ``desk`` of ``tests/fixtures/desktop.py``, with this directory's
settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import RecordingSettings, Settings


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def desk_settings(settings: Settings, store_root: Path) -> Settings:
    return settings.model_copy(update={
        "queues": settings.queues.model_copy(update={
            "ring_timeout_s": 10, "wrap_up_s": 0.5, "overflow_after_s": [60.0], "announce_every_s": 60.0}),
        "recordings": RecordingSettings(enabled=True, root=store_root),
    })
