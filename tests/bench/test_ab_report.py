"""What the simultaneous A/B on the real switch reports (bench/ab.py): its steps paired, the
application's difference pair by pair and how often B cost less."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ab import StepCpu, checkout, parse_args, read_steps, report

ROOT = Path(__file__).resolve().parents[2]


def step(app: float, *, failed: int = 0, left: int = 0) -> StepCpu:
    return StepCpu(calls=60, app=app, redis=1.8, asterisk=85.0, failed=failed, left=left)


def test_a_sides_output_gives_its_steps_and_skips_what_is_not_a_step() -> None:
    lines = [json.dumps({"ready": True, "work": "/tmp/x"}), "side_by_side: starting Asterisk...",
             json.dumps({"calls": 60, "app": 8.0, "redis": 1.83, "asterisk": 91.2, "failed": 0, "left": 0})]
    assert read_steps("\n".join(lines)) == [StepCpu(60, 8.0, 1.83, 91.2, 0, 0)]


def test_the_report_pairs_the_steps_and_says_how_often_b_cost_less() -> None:
    text = report([step(8.67), step(7.33), step(8.0)], [step(7.5), step(6.0), step(8.17, left=1)], ("a", "b"))
    assert "| 1    | 60         | 8.67          | 7.50          | -1.17 |" in text
    assert "| 3    | 60         | 8.00          | 8.17          | +0.17 |" in text and text.count("| no ") == 1
    assert ("A = a, B = b: the application 8.00 against 7.22 ms a call (B - A -0.78, pairs -1.33 to +0.17); "
            "B cost less in 2 of 3 pairs") in text


def test_the_other_checkout_must_be_one_of_this_project() -> None:
    assert checkout(str(ROOT)) == ROOT
    with pytest.raises(Exception, match="not a checkout of this project"):
        checkout(str(ROOT / "docs"))
    with pytest.raises(SystemExit):
        parse_args([str(ROOT), "--steps", "0"])
