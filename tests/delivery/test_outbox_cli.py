"""``hotline outbox``: an operator sees what is owed, why a row died, and sends it again."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import make_engine
from core.migrate import create_schema
from core.settings import Settings, load_settings
from delivery.cli import main
from delivery.models import State
from delivery.outbox import Outbox, Settled
from tests.support.documents import case_document


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return load_settings(profile="test", database={"url": sqlite_url})


def a_refused_and_a_waiting_case(url: str) -> None:
    async def setup() -> None:
        engine = make_engine(url)
        await create_schema(engine)
        outbox = Outbox(engine)
        async with AsyncSession(engine) as session, session.begin():
            for n in (1, 2):
                doc = case_document(n)
                await outbox.enqueue(session, kind="case", key=doc["case_id"], body=doc, ticket_id=doc["case_id"])
        [first] = await outbox.claim("w", 1, 60)
        problems = [{"field": "respondent.credit_code", "code": "bad_check_digit", "message": "wrong check character"}]
        await outbox.settle("w", [Settled(first, State.DEAD, 422, "invalid", problems=problems)])
        await engine.dispose()

    asyncio.run(setup())


def run(settings: Settings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(settings, list(argv), out)
    return code, out.getvalue()


def test_stats_count_rows_per_kind_and_state(settings: Settings) -> None:
    a_refused_and_a_waiting_case(settings.database.url)
    code, text = run(settings, "stats")
    assert code == 0
    assert "case" in text and " 1 " in text and "oldest waiting" in text


def test_listing_dead_rows_shows_why_and_show_gives_the_platforms_problems(settings: Settings) -> None:
    a_refused_and_a_waiting_case(settings.database.url)
    code, text = run(settings, "list", "--state", "dead")
    assert code == 0 and "invalid" in text and text.count("\n") == 2  # header + one row
    row_id = text.splitlines()[1].split()[0]
    code, text = run(settings, "show", row_id)
    shown = json.loads(text)
    assert shown["problems"][0]["field"] == "respondent.credit_code" and shown["last_status"] == 422
    assert shown["body"]["case_type"] == "complaint"


def test_retrying_a_dead_row_queues_it_again(settings: Settings) -> None:
    a_refused_and_a_waiting_case(settings.database.url)
    assert run(settings, "retry", "--all-dead") == (0, "1 dead row(s) queued again\n")
    assert "(no rows)" in run(settings, "list", "--state", "dead")[1]


def test_bad_input_gets_a_clear_error(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(settings, "replay", "--since", "yesterday")
    assert "not a time like 2026-11-24T08:00:00+08:00" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(settings, "show", "0")
    assert "must be at least 1, got 0" in capsys.readouterr().err
    assert run(settings, "retry")[0] == 2
    assert run(settings, "show", "999")[0] == 1
