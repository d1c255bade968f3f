"""Load shedding on a real Asterisk 22: a new caller beyond ``[overload] max_calls`` is answered,
hears the busy message from the dialplan (``[hotline-shed]``, sent there by
``POST /channels/{id}/continue``), is hung up, and gets a call record (outcome ``shed``)
imported from Asterisk's CDR; the call in progress goes on; no channel is left (the fixture)."""

from __future__ import annotations

import pytest

from core.settings import CallRecordSettings, OverloadSettings, Settings
from devtools import audio
from devtools.asterisk import AsteriskInstance
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.fixtures.real_asterisk import dial, phones, prompt_sounds
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.slow


async def new_channel(instance: AsteriskInstance, known: set[str]) -> str:
    async def appeared() -> str | None:
        fresh = [c["id"] for c in instance.channels() if c["id"] not in known]
        return fresh[0] if fresh else None

    return str(await eventually(appeared, timeout=10))


def shedding_settings(settings: Settings, instance: AsteriskInstance) -> Settings:
    """One call at most, and the application following Asterisk's CDR file (the shed call's record)."""
    cdr = CallRecordSettings(cdr_file=instance.workdir / "log" / "cdr-custom" / "hotline-cdr.csv",
                             cdr_poll_s=0.2, cdr_settle_s=0.5)
    return settings.model_copy(update={"callrecords": cdr, "overload": OverloadSettings(max_calls=1)})


async def test_a_caller_beyond_max_calls_hears_the_busy_message_is_hung_up_and_recorded_as_shed(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, prompts: PromptCatalogue
) -> None:
    busy = prompt_sounds(prompts, "lines_busy")["lines_busy"]
    settings = shedding_settings(on_real_asterisk, real_asterisk)
    async with running(settings) as app, phones(real_asterisk) as (carrier, _):
        known = {c["id"] for c in real_asterisk.channels()}
        first = await dial(carrier, "12315", caller="13900139007")
        in_progress = await new_channel(real_asterisk, known)

        async def taken() -> bool:
            return in_progress in app.ivr.flows

        await eventually(taken)
        turned = await dial(carrier, "057112365", caller="13900139008")  # answered by the dialplan
        shed = await new_channel(real_asterisk, known | {in_progress})
        await turned.wait_ended(15)  # Asterisk hangs up after the message
        heard = audio.pcm(turned.rtp.pcm())
        assert audio.find(busy, heard) is not None, "the turned-away caller did not hear the busy message"
        assert shed not in app.ivr.flows and await app.ivr.svc.store.load(shed) is None
        # The call in progress was not touched.
        assert in_progress in app.ivr.flows and not first.ended.is_set()
        assert app.metrics.value("hotline_calls_shed_total", reason="max_calls") == 1

        async def recorded():  # type: ignore[no-untyped-def]
            record = await app.call_records.by_channel(shed)
            return record if record is not None and record.ended_at is not None else None

        record = await eventually(recorded, timeout=10)
        await first.hang_up()
    assert record.outcome == "shed"
    assert (record.hotline_number, record.business_line, record.area_code) == ("12365", "quality", "0571")
    assert record.caller_phone == "13900139008" and record.agent_id is None
