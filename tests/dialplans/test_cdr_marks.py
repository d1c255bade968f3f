"""The calls Asterisk serves without the application are marked in their CDR, and
cdr_custom.conf writes exactly the fields the application's importer reads."""

from __future__ import annotations

import re

import pytest

from callrecords.cdr import CDR_FIELDS, FALLBACK, INVALID, LAYOUT
from core.vocabulary import LINE_OF_NUMBER
from devtools.pbx_sim.dialplan import Dialplan
from tests.support.dialplans import DIALPLANS, EXTENSIONS_CONF, RecordingHost, section

CDR_CUSTOM_CONF = DIALPLANS / "cdr_custom.conf"


@pytest.fixture(scope="module")
def dialplan() -> Dialplan:
    return Dialplan.load(EXTENSIONS_CONF)


async def call(dialplan: Dialplan, dialled: str, status: str = "SUCCESS") -> RecordingHost:
    host = RecordingHost(stasis_status=status)
    await dialplan.run("from-pstn", dialled, host)
    return host


def cdr_marks(host: RecordingHost) -> dict[str, str]:
    return {name[4:-1]: value for e in host.events if e[0] == "set"
            for name, value in [(e[1], e[2])] if name.upper().startswith("CDR(")}


def mapping_fields() -> list[str]:
    """cdr_custom.conf's ``fields=`` as names: literals quoted, qualifiers in parentheses."""
    [fields] = section(CDR_CUSTOM_CONF, "hotline-cdr.csv")["fields"]
    return [f.strip() for f in fields.split(",")]


@pytest.mark.parametrize("dialled", ["12315", "01012365", "057112331", "02112358", "075512330"])
async def test_a_call_served_by_the_fallback_carries_its_number_line_area_and_path_before_anything_can_hang_up(
        dialplan: Dialplan, dialled: str) -> None:
    host = await call(dialplan, dialled, status="FAILED")
    number, area = dialled[-5:], dialled[:-5]
    marks = cdr_marks(host)
    assert marks == {"hotline_path": FALLBACK, "hotline_number": number, "hotline_line": LINE_OF_NUMBER[number],
                     "hotline_area": area, "hotline_queued": "", "hotline_queue_status": ""}
    # The stand-in has no ${EPOCH} nor a QUEUESTATUS here: empty; Asterisk fills them (see the
    # captured file in tests/callrecords/data). What matters here is where they are set.
    kinds = [e[0] if e[0] != "set" else e[1] for e in host.events]
    assert kinds.index("CDR(hotline_path)") < kinds.index("playback")
    assert kinds.index("CDR(hotline_queued)") < kinds.index("app") < kinds.index("CDR(hotline_queue_status)")


@pytest.mark.parametrize("dialled, number, area", [("12345", "12345", ""), ("057112399", "12399", "0571"),
                                                   ("110", "110", ""), ("13800138000", "13800138000", "")])
async def test_a_number_that_is_not_ours_is_marked_invalid_with_what_was_dialled(
        dialplan: Dialplan, dialled: str, number: str, area: str) -> None:
    host = await call(dialplan, dialled)
    assert cdr_marks(host) == {"hotline_path": INVALID, "hotline_number": number, "hotline_area": area}


@pytest.mark.parametrize("status", ["SUCCESS", "KILLED"])
async def test_calls_the_application_took_are_not_marked(dialplan: Dialplan, status: str) -> None:
    # The application records those itself: marking them would record them twice.
    host = await call(dialplan, "057112315", status=status)
    assert cdr_marks(host) == {}


def test_the_fallback_queue_writes_when_an_agent_answered_into_the_callers_cdr(dialplan: Dialplan) -> None:
    queue = next(step for step in dialplan.contexts["hotline-stasis"].extensions["_123XX"].steps.values()
                 if step.app == "Queue")
    gosub = queue.data.split(",")[6]  # Queue(name,options,URL,announce,timeout,AGI,gosub): on the agent's leg
    steps = dialplan.contexts[gosub].extensions["s"].steps
    assert [(s.app, s.data) for s in steps.values()] == [
        ("Set", "MASTER_CHANNEL(CDR(hotline_answered))=${EPOCH}"), ("Return", "")]


def test_cdr_custom_writes_the_importers_layout_with_every_mark_the_dialplan_sets() -> None:
    fields = mapping_fields()
    assert fields[0] == f'"{LAYOUT}"'
    names = [re.sub(r"\(.*\)$", "", f) for f in fields[1:]]
    assert ["layout", *names] == list(CDR_FIELDS)
    # Times as seconds since the epoch: the Asterisk host's time zone never matters.
    assert {"start(double)", "answer(double)", "end(double)"} <= set(fields)
    uservars = {re.sub(r"\(uservar\)$", "", f) for f in fields if f.endswith("(uservar)")}
    set_in_dialplan = set(re.findall(r"CDR\((hotline_\w+)\)", EXTENSIONS_CONF.read_text(encoding="utf-8")))
    assert uservars == set_in_dialplan
    mapping = section(CDR_CUSTOM_CONF, "hotline-cdr.csv")
    assert (mapping["format"], mapping["quoting_method"], mapping["separator_character"]) == (["dsv"], ["all"], [","])


def test_asterisk_loads_the_cdr_backend_and_posts_every_call_at_once() -> None:
    required = set(section(DIALPLANS / "modules.conf", "modules")["require"])
    assert {"cdr_custom.so", "res_cdrel_custom.so", "func_cdr.so", "app_stack.so"} <= required
    general = section(DIALPLANS / "cdr.conf", "general")
    assert general["enable"] == ["yes"] and general["batch"] == ["no"] and general["unanswered"] == ["yes"]


async def test_the_stand_in_serves_the_marked_fallback_like_before(pbx_sim) -> None:  # type: ignore[no-untyped-def]
    # No application connected: Stasis() fails and the dialplan, CDR marks included, runs on.
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await call.wait_ended(timeout=10)
    assert call.played == ["sound:hotline/fallback-unavailable", "sound:hotline/goodbye"]
    assert call.channel.variables["CDR(hotline_path)"] == FALLBACK
