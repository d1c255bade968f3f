"""Runtime data follows the configured var directory unless a path is given explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import DEFAULT_VAR_DIR, load_settings


def test_speech_models_live_under_the_configured_var_dir_like_recordings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_PROFILE", raising=False)
    cfg = tmp_path / "hotline.toml"
    cfg.write_text(f'var_dir = "{tmp_path / "srv"}"\n', encoding="utf-8")
    s = load_settings(cfg)
    assert s.speech.models_dir == tmp_path / "srv" / "models"
    assert s.recordings.root == tmp_path / "srv" / "recordings"


def test_the_var_dir_from_the_environment_moves_the_models_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_PROFILE", raising=False)
    monkeypatch.setenv("HOTLINE_VAR_DIR", str(tmp_path))
    assert load_settings().speech.models_dir == tmp_path / "models"


def test_without_a_var_dir_models_stay_in_the_default_one_and_an_explicit_models_dir_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_PROFILE", raising=False)
    assert load_settings().speech.models_dir == DEFAULT_VAR_DIR / "models"
    s = load_settings(var_dir=tmp_path / "srv", speech={"models_dir": tmp_path / "shared-models"})
    assert s.speech.models_dir == tmp_path / "shared-models"
    # Given explicitly, even as the default's own value: it is then not moved.
    s = load_settings(var_dir=tmp_path / "srv", speech={"models_dir": "var/models"})
    assert s.speech.models_dir == Path("var/models")
