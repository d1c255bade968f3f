"""The prompt catalogue and the sound files built from it with the real espeak-ng and sox."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import wave
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType

import pytest

from ivr.prompts import catalogue as catalogue_module
from ivr.prompts.build import PromptBuildError, build_numbers, build_prompts, main, speakable
from ivr.prompts.catalogue import (
    PromptCatalogue,
    PromptCatalogueError,
    UnknownPromptError,
    asterisk_language,
    sound_name,
)
from ivr.prompts.numbers import UnknownNumberRules, number_files, say_rules
from ivr.speech.menus import MAIN_MENU

REQUIRED_KEYS = {
    "welcome_general", "welcome_quality", "welcome_food_drug", "welcome_price",
    "welcome_intellectual_property", "recording_notice", "main_menu", "no_input", "no_match",
    "too_many_attempts", "transfer_operator", "queued", "goodbye", "fallback_unavailable",
    "invalid_number", "queue_position", "queue_wait", "callback_offer", "after_hours",
    "callers_ahead_before", "callers_ahead_after", "estimated_wait_before", "estimated_wait_after",
    "connecting_agent", "ask_city", "callback_booked", "lines_busy",
    # the confirmation of a spoken choice heard by a thin margin, and what follows a "no"
    "confirm_complaint", "confirm_report", "confirm_consultation", "confirm_operator", "choose_again",
}
LOCALES = ["zh-CN", "en-US", "ko-KR"]
#: The digits/ files Asterisk 22's say.c reads to say a number, by its rule set (checked by
#: hand against ast_say_number_full_zh and get_number_str_en).
ZH_NUMBERS = {*map(str, range(10)), *map(str, range(10, 100, 10)), "hundred", "thousand", "wan", "yi", "minus"}
EN_NUMBERS = {*map(str, range(20)), *map(str, range(20, 100, 10)), "hundred", "thousand", "million", "billion",
              "minus"}
NUMBERS = {"zh-CN": ZH_NUMBERS, "en-US": EN_NUMBERS, "ko-KR": EN_NUMBERS}


# --- the catalogue ----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_each_locale_has_every_prompt_the_hotline_needs(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    assert set(catalogue.keys()) == REQUIRED_KEYS
    assert all(catalogue.text(key).strip() for key in REQUIRED_KEYS)


@pytest.mark.parametrize("locale", LOCALES)
def test_each_locale_can_ask_the_caller_to_confirm_every_choice_of_the_main_menu(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    assert all(catalogue.text(f"confirm_{choice}").strip() for choice in MAIN_MENU.values())


@pytest.mark.parametrize("locale", LOCALES)
def test_each_locale_has_the_text_of_every_file_asterisk_says_numbers_with(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    assert set(catalogue.numbers) == NUMBERS[locale]
    assert set(catalogue.number_sounds()) == {f"digits/{n}" for n in NUMBERS[locale]}
    assert all(text.strip() for text in catalogue.numbers.values())


def test_every_sound_of_a_locale_is_its_prompts_then_its_number_files() -> None:
    catalogue = PromptCatalogue.load("zh-CN")
    sounds = catalogue.sounds()
    assert sounds[: len(REQUIRED_KEYS)] == [f"hotline/{sound_name(k)}" for k in catalogue.keys()]
    assert set(sounds[len(REQUIRED_KEYS):]) == {f"digits/{n}" for n in ZH_NUMBERS}


def test_asterisk_says_chinese_by_its_chinese_rules_and_korean_by_its_english_ones() -> None:
    assert [say_rules(lang) for lang in ("zh_CN", "zh_TW", "zh", "en_US", "en", "ko_KR")] == \
        ["zh", "zh", "zh", "en", "en", "en"]
    assert set(number_files("ko_KR")) == EN_NUMBERS
    with pytest.raises(UnknownNumberRules, match="British English"):
        number_files("en_GB")
    with pytest.raises(UnknownNumberRules, match="no number sounds known for language 'de_DE'"):
        number_files("de_DE")


def test_a_locale_that_misses_a_number_file_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = "".join(f'"{n}" = "x"\n' for n in sorted(ZH_NUMBERS - {"wan", "10"})) + '"11" = "y"\n'
    (tmp_path / "zh-CN.toml").write_text(f'[meta]\nvoice = "v"\n[prompts]\ngoodbye = "再见"\n[numbers]\n{numbers}',
                                         encoding="utf-8")
    monkeypatch.setattr(catalogue_module, "PROMPTS_DIR", tmp_path)
    with pytest.raises(PromptCatalogueError, match=r"\[numbers\] must give the text of every file Asterisk "
                                                   r"says numbers with; missing 10, wan; unknown 11"):
        PromptCatalogue.load("zh-CN")


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
    with pytest.raises(PromptCatalogueError,
                       match="en-GB.toml does not match zh-CN.toml: missing queued; unknown queue"):
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
def test_the_voice_speaks_every_prompt_and_number_in_its_own_language(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    text = "\n".join([speakable(catalogue.text(key), locale) for key in catalogue.keys()]
                     + list(catalogue.numbers.values()))
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
    numbers = {out / "zh_CN" / "digits" / f"{name}.wav" for name in ZH_NUMBERS}
    assert set(made) == expected | numbers
    for path in expected:
        rate, channels, width, seconds, peak = wav_info(path)
        assert (rate, channels, width) == (8000, 1, 2), path
        assert seconds > 1.0, path       # a spoken sentence, not a click
        assert peak > 3000, path         # audible, normalised near full scale


def test_every_number_file_is_a_short_8khz_word_without_leading_silence(built_zh) -> None:  # type: ignore[no-untyped-def]
    out, _made, _seen = built_zh
    for name in ZH_NUMBERS:
        path = out / "zh_CN" / "digits" / f"{name}.wav"
        rate, channels, width, seconds, peak = wav_info(path)
        assert (rate, channels, width) == (8000, 1, 2), path
        assert 0.1 < seconds < 1.0, path  # one or two syllables: Asterisk strings them together
        assert peak > 3000, path
        with wave.open(str(path)) as w:
            start = array("h", w.readframes(160))  # the first 20 ms
        assert max(abs(s) for s in start) > 300, f"{path} starts with silence"


def test_the_build_reports_its_progress_for_every_prompt_and_number(built_zh) -> None:  # type: ignore[no-untyped-def]
    _out, _made, seen = built_zh
    total = len(REQUIRED_KEYS) + len(ZH_NUMBERS)
    assert [(i, n) for i, n, _k, _f in seen] == [(i, total) for i in range(1, total + 1)]
    assert all(fresh for *_x, fresh in seen)
    assert {k for _i, _n, k, _f in seen} == REQUIRED_KEYS | {f"digits/{n}" for n in ZH_NUMBERS}


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

    one = dataclasses.replace(changed, numbers=MappingProxyType({**catalogue.numbers, "12": "twelve!"}))
    assert build_prompts("en-US", tmp_path, catalogue=one) == [tmp_path / "en_US" / "digits" / "12.wav"]

    everything = len(REQUIRED_KEYS) + len(EN_NUMBERS)
    other_voice = dataclasses.replace(one, voice="en-gb")
    assert len(build_prompts("en-US", tmp_path, catalogue=other_voice)) == everything
    assert len(build_prompts("en-US", tmp_path, catalogue=other_voice, force=True)) == everything


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
    digits = tmp_path / "en_US" / "digits"
    (digits / "7.wav").unlink()
    assert build_prompts("en-US", tmp_path) == [digits / "7.wav"]
    assert build_numbers("en-US", tmp_path) == []


def test_builds_of_one_directory_at_once_all_succeed_and_leave_one_manifest(tmp_path: Path) -> None:
    """Two benchmarks' switches share one cache of prompts and configure it at the same moment:
    a temporary manifest of a shared name was replaced by one build under the other's feet."""
    build_prompts("en-US", tmp_path)
    catalogue = PromptCatalogue.load("en-US")
    changed = dataclasses.replace(
        catalogue, texts=MappingProxyType({**catalogue.texts, "goodbye": "Thank you. Goodbye for now."})
    )
    goodbye = tmp_path / "en_US" / "hotline" / "goodbye.wav"
    with ThreadPoolExecutor(max_workers=4) as pool:  # each finds the change and writes the manifest
        assert list(pool.map(lambda _: build_prompts("en-US", tmp_path, catalogue=changed), range(4))) == [
            [goodbye]] * 4
    assert build_prompts("en-US", tmp_path, catalogue=changed) == []  # the manifest holds the change
    assert [p.name for p in goodbye.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_the_command_builds_shows_progress_and_says_where_the_files_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total = len(REQUIRED_KEYS) + len(EN_NUMBERS)
    assert main(["build", "--lang", "en-US", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"[ 1/{total}] made" in out
    assert f"[{total}/{total}] made      {tmp_path / 'en_US' / 'digits' / 'minus.wav'}" in out
    assert (f"{total} made, 0 unchanged in {tmp_path / 'en_US'} "
            f"(hotline/: {len(REQUIRED_KEYS)} prompts, digits/: {len(EN_NUMBERS)} number files)") in out
    assert main(["build", "--lang", "en-US", "--out", str(tmp_path)]) == 0
    assert f"0 made, {total} unchanged" in capsys.readouterr().out


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
