"""The dialplan interpreter follows Asterisk's rules for what our dialplan uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.pbx_sim.dialplan import ChannelHungUp, Dialplan, DialplanError, Pattern, evaluate, substring
from tests.support.dialplans import RecordingHost


def plan(text: str) -> Dialplan:
    return Dialplan.parse(text, source="test.conf")


async def run(dialplan: Dialplan, exten: str, context: str = "in", **host_args: object) -> RecordingHost:
    host = RecordingHost(**host_args)  # type: ignore[arg-type]
    await dialplan.run(context, exten, host)
    return host


# --- patterns -------------------------------------------------------------------------------

PATTERNS = plan("""
[in]
exten => 12315,1,NoOp(exact)
exten => _123XX,1,NoOp(five digits)
exten => _1[2-5]3XX,1,NoOp(range)
exten => _X.,1,NoOp(anything)
exten => _NXXX,1,NoOp(N)
exten => _ZXXX,1,NoOp(Z)
exten => _0XX.,1,NoOp(zero)
exten => _0[3-9]XX123XX,1,NoOp(four-digit area code)
exten => _9!,1,NoOp(bang)
exten => _55-5X,1,NoOp(dash)
exten => s,1,NoOp(s)
""")


@pytest.mark.parametrize(("exten", "expected"), [
    ("12315", "12315"),              # an exact name beats every pattern
    ("12399", "_123XX"),             # at position 2 '3' (one char) beats [2-5] (four)
    ("14399", "_1[2-5]3XX"),
    ("2345", "_NXXX"),               # N (8 chars) is narrower than Z (9)
    ("1345", "_ZXXX"),
    ("057112315", "_0[3-9]XX123XX"),  # [3-9] beats X at position 1 of _0XX.
    ("01012315", "_0XX."),
    ("9", "_9!"),                    # ! matches nothing too
    ("98", "_9!"),                   # a literal beats X at the first position
    ("5556", "_55-5X"),              # dashes in patterns are ignored
    ("s", "s"),
    ("7", None),                     # _X. needs at least two characters
    ("", None),
])
def test_the_best_pattern_wins_as_in_asterisk(exten: str, expected: str | None) -> None:
    assert PATTERNS.match("in", exten) == expected


def test_patterns_sort_in_the_order_asterisklint_models_from_asterisks_ext_cmp() -> None:
    # asterisklint is an independent model of Asterisk's ordering: both must agree.
    from asterisklint.pattern import Pattern as LintPattern

    names = ["_X.", "_X!", "_9!", "_9", "_123XX", "_1[2-5]3XX", "_NXXX", "_ZXXX", "_0XX.", "_0[3-9]XX123XX",
             "_010123XX", "_02X123XX", "_[13579]X", "_[02468]X", "12315", "s", "_55-5X", "_1X", "_1X."]
    ours = sorted(names, key=lambda n: Pattern.compile(n, "test").sort_key())
    theirs = sorted(names, key=lambda n: LintPattern(n, None))
    assert ours == theirs


def test_a_pattern_that_ends_sorts_after_one_that_goes_on_with_a_wildcard() -> None:
    dialplan = plan("[in]\nexten => _9,1,NoOp()\nexten => _9!,1,NoOp()\n")
    assert dialplan.match("in", "9") == "_9!"


def test_pattern_letters_are_case_insensitive_and_ranges_expand() -> None:
    dialplan = plan("[in]\nexten => _1x[0-2]z,1,NoOp()\n")
    assert dialplan.match("in", "1901") == "_1x[0-2]z"
    assert dialplan.match("in", "1931") is None
    assert dialplan.match("in", "1900") is None


def test_a_contexts_own_patterns_come_before_its_includes_in_order() -> None:
    dialplan = plan("""
[in]
exten => _1XX,1,NoOp(own)
include => first
include => second
[first]
exten => 123,1,NoOp(first)
exten => 456,1,NoOp(first)
[second]
exten => 456,1,NoOp(second)
exten => 789,1,NoOp(second)
""")
    assert dialplan.match("in", "123") == "_1XX"
    assert dialplan.match("in", "456") == "456"
    assert dialplan.find_extension("in", "456").steps[1].data == "first"
    assert dialplan.find_extension("in", "789").steps[1].data == "second"
    assert dialplan.match("nowhere", "123") is None


# --- variables --------------------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "expected"), [
    ("${EXTEN}", "057112315"),
    ("${EXTEN:0:4}", "0571"),
    ("${EXTEN:4}", "12315"),
    ("${EXTEN:-5}", "12315"),
    ("${EXTEN:-5:2}", "12"),
    ("${EXTEN:0:-5}", "0571"),
    ("${EXTEN:2:-5}", "71"),
    ("${EXTEN:20}", ""),
    ("${EXTEN:-20}", "057112315"),
    ("${LEN(${EXTEN})}", "9"),
    ("${LEN()}", "0"),
    ("${CALLERID(num)}", "13800138000"),
    ("${CONTEXT}/${PRIORITY}", "in/2"),
    ("${GREETING}", "hello"),          # a global
    ("${LINE_${NUMBER}}", "quality"),   # nested: the inner variable first
    ("${UNSET}", ""),
    ("$[${LEN(${EXTEN})} > 5]", "1"),
])
async def test_variables_substrings_and_functions_expand_as_in_asterisk(expr: str, expected: str) -> None:
    dialplan = plan(f"""
[globals]
GREETING=hello
LINE_12365=quality
[in]
exten => _X.,1,Set(NUMBER=12365)
 same => n,Set(RESULT={expr})
""")
    host = await run(dialplan, "057112315")
    assert host.variables["RESULT"] == expected


def test_substring_rules() -> None:
    assert substring("abcdef", 1, 2) == "bc"
    assert substring("abcdef", -2, None) == "ef"
    assert substring("abcdef", 0, -10) == ""
    assert substring("", 3, 1) == ""


async def test_channel_variables_shadow_globals_and_functions_remember_what_set_wrote() -> None:
    dialplan = plan("""
[globals]
LANG=en
[in]
exten => 1,1,Set(LANG=zh)
 same => n,Set(CHANNEL(language)=${LANG}_CN)
 same => n,Set(SEEN=${LANG}/${CHANNEL(language)})
""")
    host = await run(dialplan, "1")
    assert host.variables["SEEN"] == "zh/zh_CN"
    assert host.variables["CHANNEL(language)"] == "zh_CN"


# --- expressions and GotoIf ------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "expected"), [
    ('"FAILED" = "FAILED"', "1"),
    ('"" = "FAILED"', "0"),
    ('"SUCCESS" != "FAILED"', "1"),
    ("10 > 9", "1"),            # numbers compare as numbers
    ("abc < abd", "1"),         # anything else as strings
    ("3 >= 3 & 2 <= 1", "0"),
    ("3 >= 3 | 2 <= 1", "1"),
    ("!0", "1"),
    ("!(1 = 1)", "0"),
    ("(1 = 1) & (2 == 2)", "1"),
    ("word", "word"),
])
def test_expressions(expr: str, expected: str) -> None:
    assert evaluate(expr) == expected


@pytest.mark.parametrize("bad", ["= 1", "1 =", "(1 = 1", "1 = 1)"])
def test_a_malformed_expression_is_a_clear_error(bad: str) -> None:
    with pytest.raises(DialplanError, match=r"\$\["):
        evaluate(bad, "x.conf:3")


GOTOIF = plan("""
[in]
exten => _X,1,GotoIf($[${EXTEN} = 1]?one:other)
 same => n(back),Playback(after)
 same => n,Hangup()
 same => n(one),Playback(one)
 same => n,Goto(back)
 same => n(other),GotoIf($[${EXTEN} = 2]?elsewhere,s,1)
 same => n,GotoIf($[${EXTEN} = 3]?:three)
 same => n,Playback(not-three)
 same => n,Hangup(17)
 same => n(three),Playback(three)
 same => n,Hangup()
[elsewhere]
exten => s,1,Playback(elsewhere)
""")


@pytest.mark.parametrize(("exten", "played", "cause"), [
    ("1", ["one", "after"], "16"),               # true branch, label, Goto back to a label
    ("2", ["elsewhere"], "16"),                  # context,exten,priority; then falls off the end
    ("3", ["not-three"], "17"),                  # empty true branch: go on with the next priority
    ("4", ["three"], "16"),                      # false branch only
])
async def test_gotoif_takes_the_branch_its_condition_picks(exten: str, played: list[str], cause: str) -> None:
    host = await run(GOTOIF, exten)
    assert host.played == played
    assert host.events[-1] == ("hangup", cause)


async def test_n_priorities_follow_the_previous_one_and_labels_name_them() -> None:
    dialplan = plan("""
[in]
exten => 1,1,Playback(a)
exten => 1,n(second),Playback(b)
exten => 2,5,Playback(c)
 same => n,Goto(1,second)
""")
    assert dialplan.find_extension("in", "1").labels == {"second": 2}
    assert sorted(dialplan.find_extension("in", "2").steps) == [5, 6]
    host = await run(dialplan, "2")
    assert host.played == []  # 2 has no priority 1: like Asterisk, nothing runs
    host = await run(dialplan, "1")
    assert host.played == ["a", "b"]


# --- applications ------------------------------------------------------------------------------


async def test_applications_reach_the_host_with_their_arguments() -> None:
    dialplan = plan("""
[in]
exten => 5,1,Answer()
 same => n,Stasis(app,${EXTEN},two words,)
 same => n,Set(STATUS=${STASISSTATUS})
 same => n,Playback(first&second,noanswer)
 same => n,Queue(q,,,,30)
 same => n,Wait(1)
""")
    host = await run(dialplan, "5", stasis_status="FAILED")
    assert host.stasis_calls == [{"app": "app", "args": ["5", "two words", ""], "priority": 2,
                                  "app_data": "app,5,two words,", "language": None}]
    assert host.variables["STATUS"] == "FAILED"
    assert host.actions() == [
        ("answer",), ("stasis", "app", "5", "two words", ""), ("playback", "first"), ("playback", "second"),
        ("app", "Queue", "q,,,,30"), ("app", "Wait", "1"), ("hangup", "16"),
    ]


async def test_a_dialled_number_with_no_extension_is_rejected_as_unallocated() -> None:
    host = await run(plan("[in]\nexten => 1,1,NoOp()\n"), "2")
    assert host.actions() == [("hangup", "1")]


async def test_a_host_whose_caller_hung_up_stops_the_dialplan_quietly() -> None:
    class HangsUpDuringPlayback(RecordingHost):
        async def playback(self, sound: str) -> None:
            await super().playback(sound)
            raise ChannelHungUp

    host = HangsUpDuringPlayback()
    await plan("[in]\nexten => 1,1,Playback(a)\n same => n,Playback(b)\n").run("in", "1", host)
    assert host.actions() == [("playback", "a")]


async def test_a_dialplan_that_loops_for_ever_is_stopped_with_an_error() -> None:
    with pytest.raises(DialplanError, match="test.conf:3: .*loops"):
        await run(plan("[in]\nexten => 1,1,NoOp()\n same => n,Goto(1)\n"), "1")


@pytest.mark.parametrize(("line", "message"), [
    ("exten => 1,1,Gosub(sub,s,1)", "test.conf:2: Gosub() is not supported"),
    ("exten => 1,1,Set(X=${FOO(bar)})", "test.conf:2: function FOO() is not supported"),
    ("exten => 1,1,Goto(nowhere,1,1)", "test.conf:2: goto 'nowhere,1,1': no extension '1' in context 'nowhere'"),
    ("exten => 1,1,Goto(1,missing)", "test.conf:2: goto '1,missing': no label 'missing'"),
    ("exten => 1,1,GotoIf(1)", "test.conf:2: GotoIf needs"),
    ("exten => 1,1,Set(=x)", "test.conf:2: Set needs NAME=value"),
])
async def test_what_the_interpreter_cannot_run_is_a_clear_error_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(DialplanError) as err:
        await run(plan(f"[in]\n{line}\n"), "1")
    assert message in str(err.value)


@pytest.mark.parametrize(("text", "message"), [
    ("exten => 1,1,NoOp()\n", "test.conf:1: 'exten => 1,1,NoOp()' before any [context]"),
    ("[in]\nexten => 1,1,NoOp\n same => n,App,old,syntax\n", "test.conf:3: expected App(arguments)"),
    ("[in]\n same => n,NoOp()\n", "test.conf:2: 'same =>' without an 'exten =>'"),
    ("[in]\nexten => 1,1,NoOp()\nexten => 1,1,NoOp()\n", "test.conf:3: priority 1 of '1' defined twice"),
    ("[in]\nexten => 1,x,NoOp()\n", "test.conf:2: bad priority"),
    ("[in]\nswitch => IAX2/host\n", "test.conf:2: unsupported line"),
    ("[in]\ninclude => missing\n", "[in] includes unknown context 'missing'"),
    ("[in]\nexten => 1/100,1,NoOp()\n", "caller-id matching"),
    ("[in]\nexten => _1[2,1,NoOp()\n", "test.conf:2: unclosed '['"),
    ("[t](!)\n", "test.conf:1: context templates"),
    ("#include other.conf\n", "test.conf:1: preprocessor directive"),
    ("[in]\n[in]\n", "test.conf:2: context [in] defined twice"),
])
def test_syntax_the_interpreter_does_not_know_is_a_clear_error_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(DialplanError) as err:
        plan(text)
    assert message in str(err.value)


def test_comments_are_dropped_and_an_escaped_semicolon_is_kept() -> None:
    dialplan = plan("""
;-- a block comment
exten => 1,1,NoOp(not parsed)
--;
[in] ; the context
exten => 1,1,NoOp(a\\;b) ; a comment
""")
    assert dialplan.find_extension("in", "1").steps[1].data == "a;b"


def test_load_reads_a_file_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "extensions.conf"
    path.write_text("[in]\nexten => 1,1,NoOp()\n", encoding="utf-8")
    assert Dialplan.load(path).match("in", "1") == "1"
    with pytest.raises(DialplanError, match="does not exist"):
        Dialplan.load(tmp_path / "missing.conf")
