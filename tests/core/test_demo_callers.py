"""The demo's callers: drawn as a call centre's are (Poisson arrivals, a patience, a talk time),
and living their call as a person does: waiting until their patience runs out, talking once
answered for as long as they meant to."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from devtools.demo import DEMO_AGENTS, DemoOptions, settle, started
from devtools.demo_callers import AREA_CODES, NUMBERS, Caller, CallerModel, draw_callers, play_caller
from queues.services import QueueService
from tests.support.demo import demo_settings

#: Draws enough for a mean to sit within a few per cent of its expectation (the standard error
#: of the mean of 20,000 exponential draws is 0.7 % of it).
DRAWS = 20_000


def _draw(model: CallerModel, seed: int = 7) -> list[Caller]:
    return list(itertools.islice(draw_callers(model, seed), DRAWS))


def test_callers_arrive_as_a_poisson_process_at_the_asked_rate() -> None:
    callers = _draw(CallerModel(rate_per_min=4))

    gaps = [c.gap_s for c in callers]
    assert statistics.fmean(gaps) == pytest.approx(15.0, rel=0.03)  # 60 s / 4 calls a minute
    # Exponential gaps: the spread equals the mean, and a gap shorter than the mean is the
    # more likely (1 - 1/e = 63 %), which a steady trickle of calls would not show.
    assert statistics.stdev(gaps) == pytest.approx(15.0, rel=0.05)
    assert sum(g < 15.0 for g in gaps) / DRAWS == pytest.approx(0.632, abs=0.02)


def test_patience_and_talk_time_have_the_asked_means() -> None:
    callers = _draw(CallerModel(patience_mean_s=90, talk_mean_s=200))

    assert statistics.fmean(c.patience_s for c in callers) == pytest.approx(90, rel=0.03)
    assert statistics.fmean(c.talk_s for c in callers) == pytest.approx(200, rel=0.03)
    # Log-normal talk: skewed, so most calls are shorter than the mean and a few much longer.
    assert statistics.median(c.talk_s for c in callers) < 200 < max(c.talk_s for c in callers) / 3
    # Hardly anyone gives up within two seconds, while a free agent's phone still rings.
    assert sum(c.patience_s < 2 for c in callers) / DRAWS < 0.005


def test_the_same_seed_gives_the_same_callers_and_another_seed_others() -> None:
    model = CallerModel()

    first = list(itertools.islice(draw_callers(model, 1), 50))

    assert first == list(itertools.islice(draw_callers(model, 1), 50))
    assert first != list(itertools.islice(draw_callers(model, 2), 50))


def test_callers_cover_every_behaviour_and_place_and_only_dial_hotline_numbers() -> None:
    callers = _draw(CallerModel())[:500]

    assert {c.behaviour for c in callers} == {"press", "wrong-then-press", "silent", "hang-up-early"}
    assert {c.number[:-5] for c in callers} == {code for code, _ in AREA_CODES}
    assert all(c.number[-5:] in NUMBERS for c in callers)


def test_a_model_without_callers_or_patience_is_refused() -> None:
    with pytest.raises(ValueError, match="rate_per_min must be above 0"):
        CallerModel(rate_per_min=0)
    with pytest.raises(ValueError, match="patience_mean_s must be above 0"):
        CallerModel(patience_mean_s=-5)


def test_the_demo_lists_its_flags_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])

    assert exited.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--rate", "--patience", "--talk", "--duration", "--calls", "--seed", "--time-scale", "--no-browser"):
        assert flag in out
    assert "examples:" in out and "python -m devtools demo --no-browser --duration 600" in out


def test_a_rate_of_zero_is_refused_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["demo", "--rate", "0"])

    assert exited.value.code == 2
    assert "argument --rate: must be above 0, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--config", "{f}", "demo"], ["demo", "--config", "{f}"], ["demo", "--config={f}"]])
def test_the_demo_reads_config_before_or_after_its_name(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from devtools.__main__ import main

    missing = tmp_path / "nowhere.toml"

    code = main([item.replace("{f}", str(missing)) for item in argv])

    assert code == 2
    assert f"settings file {missing} (--config) does not exist" in capsys.readouterr().err


# --- callers on the line (the whole system, at a twentieth of real time) ------------------------

SCALE = 0.05
#: A caller from Hangzhou who keys 1 (complaint): straight into Hangzhou's queue.
HANGZHOU = Caller(number="057112315", caller_id="13800138000", behaviour="press", digit="1", gap_s=0,
                  patience_s=1000, talk_s=40)


@pytest.mark.slow
async def test_an_answered_caller_talks_for_their_time_and_is_not_counted_as_abandoned(
    redis_server, redis_prefix: str, tmp_path: Path
) -> None:
    settings = demo_settings(tmp_path, redis_url=redis_server.url, redis_prefix=redis_prefix)

    async with started(settings, DemoOptions(time_scale=SCALE, open_browser=False)) as demo:
        outcome = await play_caller(demo.sim, demo.prompts, HANGZHOU, time_scale=SCALE)
        await settle(demo.app)
        [record] = await demo.app.call_records.all()

    assert outcome.result == "answered"
    assert outcome.agent in {f"PJSIP/{a}" for a, home, _ in DEMO_AGENTS if home == "330100"}
    assert outcome.talked_s >= HANGZHOU.talk_s
    assert record.outcome == "answered" and record.answered_at is not None and record.ended_at is not None
    assert (record.ended_at - record.answered_at).total_seconds() >= HANGZHOU.talk_s * SCALE


@pytest.mark.slow
async def test_a_caller_whose_patience_runs_out_while_waiting_abandons(
    redis_server, redis_prefix: str, tmp_path: Path
) -> None:
    settings = demo_settings(tmp_path, redis_url=redis_server.url, redis_prefix=redis_prefix)

    async with started(settings, DemoOptions(time_scale=SCALE, open_browser=False)) as demo:
        # Every agent is logged in but on a break: the call waits in Hangzhou's queue.
        assert isinstance(demo.app.queues, QueueService)
        for agent_id, _, _ in DEMO_AGENTS:
            await demo.app.queues.engine.set_break(agent_id, "meeting")
        outcome = await play_caller(demo.sim, demo.prompts, replace(HANGZHOU, patience_s=20), time_scale=SCALE)
        await settle(demo.app)
        [record] = await demo.app.call_records.all()

    assert outcome.result == "gave up waiting" and outcome.agent is None
    assert outcome.waited_s >= 20
    assert record.outcome == "abandoned_in_queue" and record.answered_at is None
