"""The dialplan's ``[hotline-shed]``: where the application sends a new call it turns away under
overload. The caller hears the busy message and is hung up with cause 17; the CDR is marked as
the fallback's is, path ``shed``, so the call gets its record (outcome ``shed``, the platform's
``overflowed``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from callrecords.cdr import LAYOUT, SHED, CdrCall, CdrLine
from callrecords.payload import call_record_payload
from core.vocabulary import LINE_OF_NUMBER
from devtools.pbx_sim.dialplan import Continue, Dialplan
from ivr.prompts.catalogue import PromptCatalogue, sound_name
from ivr.stasis import SHED_CONTEXT
from tests.support.dialplans import EXTENSIONS_CONF, RecordingHost


@pytest.fixture(scope="module")
def dialplan() -> Dialplan:
    return Dialplan.load(EXTENSIONS_CONF)


@dataclass
class TurnedAway(RecordingHost):
    """The application, at StasisStart, continues the channel into ``[hotline-shed]``, as
    ivr/stasis.py does: context, the hotline number, priority 1."""

    async def stasis(self, app: str, args: list[str], *, context: str, exten: str, priority: int,
                     app_data: str) -> str | Continue:
        await super().stasis(app, args, context=context, exten=exten, priority=priority, app_data=app_data)
        return Continue(SHED_CONTEXT, args[0], 1)


@pytest.mark.parametrize("dialled", ["12315", "01012365", "057112331", "02112358", "075512330"])
async def test_a_call_turned_away_is_marked_shed_hears_the_busy_message_and_is_hung_up_busy(
        dialplan: Dialplan, dialled: str) -> None:
    host = TurnedAway()
    await dialplan.run("from-pstn", dialled, host)
    number, area = dialled[-5:], dialled[:-5]
    actions = host.actions()
    assert actions[0] == ("answer",) and actions[1][0] == "stasis"
    assert actions[2:] == [("playback", "hotline/lines-busy"), ("hangup", "17")]
    marks = {e[1][4:-1]: e[2] for e in host.events if e[0] == "set" and e[1].startswith("CDR(")}
    assert marks == {"hotline_path": SHED, "hotline_number": number, "hotline_line": LINE_OF_NUMBER[number],
                     "hotline_area": area}
    # Marked before the message: a caller gone during it is a record too.
    kinds = [e[0] if e[0] != "set" else e[1] for e in host.events]
    assert kinds.index("CDR(hotline_area)") < kinds.index("playback")
    # Still in the caller's language, set before Stasis().
    assert host.variables["CHANNEL(language)"] == dialplan.globals["HOTLINE_LANGUAGE"]


@pytest.mark.parametrize("locale", ["zh-CN", "en-US", "ko-KR"])
def test_the_busy_message_is_a_prompt_of_every_locale(locale: str) -> None:
    catalogue = PromptCatalogue.load(locale)
    assert "lines-busy" in {sound_name(key) for key in catalogue.keys()}
    assert catalogue.text("lines_busy")


def shed_line(uniqueid: str = "1796600000.12", number: str = "12315", area: str = "0571") -> CdrLine:
    fields = [LAYOUT, uniqueid, uniqueid, "30", "1796600000.100000", "1796600000.110000", "1796600004.900000",
              "ANSWERED", "13900139006", number, "hotline-shed", "PJSIP/carrier-0000000c", "", "Hangup",
              SHED, number, LINE_OF_NUMBER.get(number, ""), area, "", "", ""]
    return CdrLine.parse(fields)


def test_a_shed_calls_cdr_is_a_call_record_with_outcome_shed_owed_to_the_platform_as_overflowed() -> None:
    call = CdrCall((shed_line(),))
    assert call.deliverable
    record = call.record({})
    assert record["outcome"] == "shed" and record["hangup_cause"].startswith("overload")
    assert (record["hotline_number"], record["business_line"], record["area_code"]) == ("12315", "general", "0571")
    assert record["caller_phone"] == "13900139006" and record["agent_id"] is None
    assert record["queued_at"] is None and record["answered_at"] is None
    assert record["started_at"] < record["ended_at"]
    assert call_record_payload(record)["outcome"] == "overflowed"
