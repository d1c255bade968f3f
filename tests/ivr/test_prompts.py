"""The prompt catalogue and the sound files built from it with the real espeak-ng and sox."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import wave
from array import array
from pathlib import Path
from types import MappingProxyType

import pytest

from ivr.prompts import catalogue as catalogue_module
from ivr.prompts.build import PromptBuildError, build_prompts, main, speakable
from ivr.prompts.catalogue import (
    PromptCatalogue,
    PromptCatalogueError,
    UnknownPromptError,
    asterisk_language,
    sound_name,
)

REQUIRED_KEYS = {
    "welcome_general", "welcome_quality", "welcome_food_drug", "welcome_price",
    "welcome_intellectual_property", "recording_notice", "main_menu", "no_input", "no_match",
    "too_many_attempts", "transfer_operator", "queued", "goodbye", "fallback_unavailable",
    "invalid_number", "queue_position", "queue_wait", "callback_offer", "after_hours",
    "callers_ahead_before", "callers_ahead_after", "estimated_wait_before", "estimated_wait_after",
    "connecting_agent", "ask_city", "callback_booked",
}
LOCALES = ["zh-CN", "en-US", "ko-KR"]


# --- the catalogue ----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_each_locale_has_every_prompt_the_hotline_needs(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    assert set(catalogue.keys()) == REQUIRED_KEYS
    assert all(catalogue.text(key).strip() for key in REQUIRED_KEYS)


def test_the_main_menu_names_its_four_keys() -> None:
    for locale in LOCALES:
        menu = PromptCatalogue.load(locale).text("main_menu")
        assert all(digit in menu for digit in "1230"), locale


def test_media_uris_and_sound_names_use_hyphens_in_the_hotline_directory() -> None:
    catalogue = PromptCatalogue.load("zh-CN")
    assert catalogue.media("fallback_unavailable") == "sound:hotline/fallback-unavailable"
    assert catalogue.sound_path("main_menu") == "hotline/main-menu"
    assert sound_name("welcome_intellectual_property") == "welcome-intellectual-property"


def test_an_unknown_prompt_key_is_a_clear_error() -> None:
    catalogue = PromptCatalogue.load("zh-CN")
    with pytest.raises(UnknownPromptError, match="no prompt 'welcome' in the zh-CN catalogue; known: welcome_general"):
        catalogue.media("welcome")


@pytest.mark.parametrize("locale", ["fr-FR", "zh_CN", "../zh-CN", ""])
def test_an_unknown_locale_is_a_clear_error_listing_the_ones_there_are(locale: str) -> None:
    with pytest.raises(PromptCatalogueError, match=r"no prompts for locale .*; available: en-US, ko-KR, zh-CN"):
        PromptCatalogue.load(locale)


def test_a_locale_that_misses_a_key_of_zh_cn_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zh-CN.toml").write_text('[meta]\nvoice = "x"\n[prompts]\ngoodbye = "再见"\nqueued = "排队"\n',
                                         encoding="utf-8")
    (tmp_path / "en-GB.toml").write_text('[meta]\nvoice = "en-gb"\n[prompts]\ngoodbye = "Bye"\nqueue = "Hold"\n',
                                         encoding="utf-8")
    monkeypatch.setattr(catalogue_module, "PROMPTS_DIR", tmp_path)
    with pytest.raises(PromptCatalogueError, match="en-GB.toml does not match zh-CN.toml: missing queued; unknown queue"):
        PromptCatalogue.load("en-GB")


@pytest.mark.parametrize(("toml", "message"), [
    ('[prompts]\ngoodbye = "Bye"\n', r"\[meta\] voice is missing"),
    ('[meta]\nvoice = "v"\n', r"the \[prompts\] table is missing"),
    ('[meta]\nvoice = "v"\n[prompts]\ngoodbye = " "\n', "prompt 'goodbye' has no text"),
    ('[meta]\nvoice = "v"\n[prompts]\nGood-Bye = "x"\n', "'Good-Bye' is not a prompt key"),
    ("[meta\n", "is not valid TOML"),
])
def test_a_malformed_catalogue_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    (tmp_path / "zh-CN.toml").write_text(toml, encoding="utf-8")
    monkeypatch.setattr(catalogue_module, "PROMPTS_DIR", tmp_path)
    with pytest.raises(PromptCatalogueError, match=message):
        PromptCatalogue.load("zh-CN")


@pytest.mark.parametrize(("locale", "language"), [("zh-CN", "zh_CN"), ("en-US", "en_US"), ("zh", "zh")])
def test_the_asterisk_language_of_a_locale(locale: str, language: str) -> None:
    assert asterisk_language(locale) == language


def test_a_malformed_locale_has_no_asterisk_language() -> None:
    with pytest.raises(PromptCatalogueError, match="not a locale"):
        asterisk_language("zh/CN")


def test_hotline_and_phone_numbers_are_spoken_digit_by_digit() -> None:
    assert speakable("欢迎致电12315热线，请按1", "zh-CN") == "欢迎致电幺二三幺五热线，请按1"
    assert speakable("the 12315 hotline, press 1", "en-US") == "the 1 2 3 1 5 hotline, press 1"


@pytest.mark.parametrize("locale", LOCALES)
def test_the_voice_speaks_every_prompt_in_its_own_language(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    text = "\n".join(speakable(catalogue.text(key), locale) for key in catalogue.keys())
    phonemes = subprocess.run(["espeak-ng", "-v", catalogue.voice, "-q", "-x", "--stdin"],
                              input=text, capture_output=True, text=True, check=True, timeout=60).stdout
    # espeak-ng marks a switch to another language's rules like "(en)": none may occur.
    assert phonemes.strip() and "(en)" not in phonemes and "(cmn)" not in phonemes


# --- building the sound files -------------------------------------------------------------


def wav_info(path: Path) -> tuple[int, int, int, float, int]:
    with wave.open(str(path)) as w:
        frames = w.readframes(w.getnframes())
        samples = array("h", frames)
        return (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate(),
                max(abs(s) for s in samples))


@pytest.fixture(scope="module")
def built_zh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[tuple[int, int, str, bool]]]:
    out = tmp_path_factory.mktemp("sounds")
    seen: list[tuple[int, int, str, bool]] = []
    made = build_prompts("zh-CN", out, progress=lambda i, n, key, path, fresh: seen.append((i, n, key, fresh)))
    return out, made, seen


def test_every_prompt_becomes_an_8khz_mono_16bit_wav_where_asterisk_looks_for_it(built_zh) -> None:  # type: ignore[no-untyped-def]
    out, made, _seen = built_zh
    catalogue = PromptCatalogue.load("zh-CN")
    expected = {out / "zh_CN" / "hotline" / f"{sound_name(key)}.wav" for key in catalogue.keys()}
    assert set(made) == expected
    for path in expected:
        rate, channels, width, seconds, peak = wav_info(path)
        assert (rate, channels, width) == (8000, 1, 2), path
        assert seconds > 1.0, path       # a spoken sentence, not a click
        assert peak > 3000, path         # audible, normalised near full scale


def test_the_build_reports_its_progress_for_every_prompt(built_zh) -> None:  # type: ignore[no-untyped-def]
    _out, _made, seen = built_zh
    total = len(REQUIRED_KEYS)
    assert [(i, n) for i, n, _k, _f in seen] == [(i, total) for i in range(1, total + 1)]
    assert all(fresh for *_x, fresh in seen)


def test_a_second_build_remakes_only_what_changed(tmp_path: Path) -> None:
    catalogue = PromptCatalogue.load("en-US")
    first = build_prompts("en-US", tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in first}

    assert build_prompts("en-US", tmp_path) == []
    assert {p: p.stat().st_mtime_ns for p in first} == mtimes

    changed = dataclasses.replace(
        catalogue, texts=MappingProxyType({**catalogue.texts, "goodbye": "Thank you. Goodbye for now."})
    )
    goodbye = tmp_path / "en_US" / "hotline" / "goodbye.wav"
    assert build_prompts("en-US", tmp_path, catalogue=changed) == [goodbye]

    other_voice = dataclasses.replace(changed, voice="en-gb")
    assert len(build_prompts("en-US", tmp_path, catalogue=other_voice)) == len(REQUIRED_KEYS)
    assert len(build_prompts("en-US", tmp_path, catalogue=other_voice, force=True)) == len(REQUIRED_KEYS)


def test_a_deleted_file_or_a_damaged_manifest_is_made_again(tmp_path: Path) -> None:
    build_prompts("en-US", tmp_path)
    target = tmp_path / "en_US" / "hotline"
    (target / "queued.wav").unlink()
    assert build_prompts("en-US", tmp_path) == [target / "queued.wav"]
    (target / ".manifest.json").write_text("{not json", encoding="utf-8")
    assert len(build_prompts("en-US", tmp_path)) == len(REQUIRED_KEYS)
    assert set(json.loads((target / ".manifest.json").read_text())["prompts"]) == {
        sound_name(k) for k in REQUIRED_KEYS
    }


def test_the_command_builds_shows_progress_and_says_where_the_files_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--lang", "en-US", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"[ 1/{len(REQUIRED_KEYS)}] made" in out
    assert f"{len(REQUIRED_KEYS)} made, 0 unchanged in {tmp_path / 'en_US' / 'hotline'}" in out
    assert main(["build", "--lang", "en-US", "--out", str(tmp_path)]) == 0
    assert f"0 made, {len(REQUIRED_KEYS)} unchanged" in capsys.readouterr().out


def test_without_espeak_ng_and_sox_the_command_says_which_debian_packages_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH on which neither tool exists
    assert main(["build", "--lang", "zh-CN", "--out", str(tmp_path / "sounds")]) == 1
    err = capsys.readouterr().err
    assert "espeak-ng (Debian package espeak-ng) and sox (Debian package sox) not found" in err
    assert "apt-get install espeak-ng sox" in err
    with pytest.raises(PromptBuildError):
        build_prompts("zh-CN", tmp_path / "sounds")


def test_an_unknown_locale_on_the_command_line_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["build", "--lang", "xx-XX", "--out", str(tmp_path)]) == 1
    assert "no prompts for locale 'xx-XX'" in capsys.readouterr().err
