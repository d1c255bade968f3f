"""A whole call through the stand-in and the application, its call record kept in PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from core.db import make_engine
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import app_settings, running
from tests.fixtures.waiting import eventually
from tests.support.calls import ended_record


@pytest.fixture
async def app_on_postgres(  # type: ignore[no-untyped-def]
    pbx_sim, redis_server, redis_prefix: str, postgres_url: str
) -> AsyncIterator[Application]:
    async with running(app_settings(pbx_sim.url, redis_server.url, redis_prefix, postgres_url)) as app:
        yield app


async def test_a_caller_who_hangs_up_in_the_queue_leaves_an_abandoned_complaint_in_postgresql(
    pbx_sim, app_on_postgres: Application, postgres_url: str, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("12331", caller_id="13800138000")
    await call.wait_for_playback(prefix=prompts.media("main_menu"))
    call.send_dtmf("1")
    await call.wait_for_playback(prefix=prompts.media("queued"))
    await call.hangup()
    await call.wait_ended()
    # The app has closed the call (its hang-up events reach it after the stand-in's channel is
    # gone), and the record is written.
    await eventually(lambda: ended_record(app_on_postgres, call))

    # Read it back with plain SQL on a connection of our own: what PostgreSQL itself holds.
    engine = make_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                text("SELECT business_line, choice, outcome, ended_at FROM call_records WHERE channel_id = :c"),
                {"c": call.channel_id},
            )).all()
    finally:
        await engine.dispose()
    assert len(rows) == 1
    business_line, choice, outcome, ended_at = rows[0]
    assert (business_line, choice, outcome) == ("food_drug", "complaint", "abandoned_in_queue")
    assert ended_at is not None and ended_at.tzinfo is not None
