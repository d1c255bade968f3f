"""The speech tests' callers and model: espeak-ng speech through a telephone line, and the real
Korean Vosk model (``tests/support/speech.py``), each made once per session."""

from __future__ import annotations

import pytest
import vosk

from tests.support.speech import PhoneLine, load_korean_model, seed_the_dither


@pytest.fixture(autouse=True)
def same_dither_every_run() -> None:
    seed_the_dither()


@pytest.fixture(scope="session")
def korean_model() -> vosk.Model:
    return load_korean_model()


@pytest.fixture(scope="session")
def phone_line(tmp_path_factory: pytest.TempPathFactory) -> PhoneLine:
    # Synthesized speech is cached for the session: the same text always gives the same audio.
    cache = tmp_path_factory.getbasetemp() / "phone-line"
    cache.mkdir(exist_ok=True)
    return PhoneLine(cache)
