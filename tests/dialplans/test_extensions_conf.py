"""Our real extensions.conf, run through the interpreter: what each caller gets."""

from __future__ import annotations

import re

import pytest

from calls.stasis_args import InboundArgs
from core.settings import AriSettings, IvrSettings
from core.vocabulary import LINE_OF_NUMBER
from devtools.pbx_sim.dialplan import Dialplan, split_args
from ivr.prompts.catalogue import PromptCatalogue, asterisk_language, sound_name
from tests.support.dialplans import DIALPLANS, EXTENSIONS_CONF, RENDERED, RecordingHost, section

AREA_CODES = ["", "010", "021", "029", "0571", "0755", "0931"]


@pytest.fixture(scope="module")
def dialplan() -> Dialplan:
    return Dialplan.load(EXTENSIONS_CONF)


async def call(dialplan: Dialplan, dialled: str, *, status: str = "SUCCESS",
               context: str = "from-pstn") -> RecordingHost:
    host = RecordingHost(stasis_status=status)
    await dialplan.run(context, dialled, host)
    return host


# --- into the application ---------------------------------------------------------------


@pytest.mark.parametrize("area", AREA_CODES)
@pytest.mark.parametrize("number", sorted(LINE_OF_NUMBER))
async def test_each_hotline_number_with_or_without_area_code_enters_our_app_with_args_the_app_parses(
    dialplan: Dialplan, number: str, area: str
) -> None:
    host = await call(dialplan, area + number)

    assert len(host.stasis_calls) == 1
    stasis = host.stasis_calls[0]
    app = AriSettings().app
    assert stasis["app"] == app
    assert InboundArgs.parse(stasis["args"]) == InboundArgs(number, LINE_OF_NUMBER[number], area or None)
    assert stasis["app_data"] == ",".join([app, *stasis["args"]])
    assert stasis["language"] == asterisk_language(IvrSettings().language)
    # The dialplan answers (the caller's 200 OK does not wait for the application), the
    # application prompts; the dialplan adds nothing else before or after.
    assert host.actions() == [("answer",), ("stasis", app, *stasis["args"]), ("hangup", "16")]


def test_every_stasis_in_the_file_names_the_configured_application(dialplan: Dialplan) -> None:
    stasis = [step for ctx in dialplan.contexts.values() for ext in ctx.extensions.values()
              for step in ext.steps.values() if step.app.lower() == "stasis"]
    assert stasis, "no Stasis() in the dialplan"
    for step in stasis:
        assert split_args(step.data)[0] == AriSettings().app, step.where
        assert len(split_args(step.data)) == 1 + 3, step.where  # app + the three contract fields


def test_the_number_to_business_line_table_of_the_dialplan_is_the_one_in_python(dialplan: Dialplan) -> None:
    numbers = dialplan.contexts["hotline-numbers"].extensions
    assert {name for name in numbers if not name.startswith("_")} == set(LINE_OF_NUMBER)


async def test_a_trunk_that_sends_no_called_number_reaches_the_main_number(dialplan: Dialplan) -> None:
    host = await call(dialplan, "s")
    assert InboundArgs.parse(host.stasis_calls[0]["args"]) == InboundArgs("12315", "general", None)


async def test_the_caller_number_does_not_change_where_the_call_goes(dialplan: Dialplan) -> None:
    host = RecordingHost(caller_number="057187654321")
    await dialplan.run("from-pstn", "075512358", host)
    assert host.stasis_calls[0]["args"] == ["12358", "price", "0755"]


# --- the application is down ------------------------------------------------------------


@pytest.mark.parametrize("dialled", ["12315", "01012365", "057112331", "02112358", "075512330"])
async def test_when_the_app_is_down_the_caller_hears_an_apology_waits_for_an_agent_then_goodbye(
    dialplan: Dialplan, dialled: str
) -> None:
    host = await call(dialplan, dialled, status="FAILED")

    actions = host.actions()
    assert actions[0] == ("answer",) and actions[1][0] == "stasis"
    assert actions[2:] == [
        ("playback", "hotline/fallback-unavailable"),
        ("app", "Queue", "hotline-fallback,,,,600,,hotline-fallback-answered"),
        ("playback", "hotline/goodbye"),
        ("hangup", "16"),
    ]


def test_the_fallback_queue_exists_and_has_agents_to_ring() -> None:
    queue = section(RENDERED / "queues.conf", "hotline-fallback")
    assert queue["member"], "no agent would ever answer"
    for member in queue["member"]:
        agent = member.split(",")[0].removeprefix("PJSIP/")
        section(RENDERED / "pjsip.conf", agent, "endpoint")
    # With no agent registered the caller is not left on music for ever.
    assert "unavailable" in queue["joinempty"][0] and "unavailable" in queue["leavewhenempty"][0]


async def test_a_caller_who_hung_up_inside_the_app_gets_no_fallback(dialplan: Dialplan) -> None:
    host = await call(dialplan, "12315", status="KILLED")
    assert host.played == [] and host.hangup_cause == 16


# --- numbers that are not ours ----------------------------------------------------------


@pytest.mark.parametrize("dialled", ["12345", "12300", "057112345", "01012399", "110", "0571", "13800138000"])
async def test_a_number_that_is_not_a_hotline_is_told_so_and_hung_up(dialplan: Dialplan, dialled: str) -> None:
    host = await call(dialplan, dialled)
    assert host.stasis_calls == []
    assert host.actions() == [
        ("answer",),
        ("playback", "hotline/invalid-number"),
        ("playback", "hotline/goodbye"),
        ("hangup", "1"),
    ]
    assert host.variables["CHANNEL(language)"] == asterisk_language(IvrSettings().language)


# --- agents' phones -----------------------------------------------------------------------


async def test_an_agent_can_call_another_agent(dialplan: Dialplan) -> None:
    host = await call(dialplan, "1002", context="from-agents")
    assert host.actions() == [("app", "Dial", "PJSIP/1002,30"), ("hangup", "16")]


async def test_an_agent_dialling_a_hotline_number_reaches_the_ivr_like_a_caller(dialplan: Dialplan) -> None:
    host = await call(dialplan, "12331", context="from-agents")
    assert host.stasis_calls[0]["args"] == ["12331", "food_drug", ""]


# --- names shared with the application ------------------------------------------------------


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_hotline_sound_asterisk_plays_is_a_prompt_of_the_catalogue(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    names = {sound_name(key) for key in catalogue.keys()}
    used = re.findall(r"\bhotline/([\w-]+)", EXTENSIONS_CONF.read_text(encoding="utf-8"))
    announced = section(DIALPLANS / "queues.conf", "hotline-fallback")["periodic-announce"]
    used += [v.removeprefix("hotline/") for v in announced]
    assert used and set(used) <= names
    assert {"fallback-unavailable", "invalid-number", "goodbye"} <= set(used)


def test_the_dialplan_language_is_the_one_the_application_plays_its_prompts_in(dialplan: Dialplan) -> None:
    assert dialplan.globals["HOTLINE_LANGUAGE"] == asterisk_language(IvrSettings().language)
