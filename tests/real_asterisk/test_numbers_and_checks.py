"""On a real Asterisk 22 (a source build: no stock sounds at all): numbers are said from the
files ``hotline asterisk install`` builds, and the application checks at every connect that
Asterisk has every sound it plays and music in its class, and says so loudly when not."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from ari.dispatcher import Dispatcher
from ari.events import EventStream
from ari.models import Event, PlaybackFinished, StasisStart
from ari.rest import AriRest
from core.settings import Settings, load_settings
from core.tasks import cancel_and_wait
from devtools import audio
from devtools.asterisk import AsteriskInstance, make_instance
from hotline.app import Application
from ivr.media_checks import CHANNEL_PREFIX, MediaChecks, lookup_languages
from ivr.prompts.build import build_numbers, build_prompts
from ivr.prompts.catalogue import PromptCatalogue, asterisk_language
from queues.engine import Agent
from tests.fixtures.app import running
from tests.fixtures.real_asterisk import (
    AGENT_PHONES,
    SOUNDS_CACHE,
    dial,
    phones,
    prompt_sounds,
    real_settings,
)
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.slow

HANGZHOU = "330100"


def number_sounds(locale: str) -> dict[str, np.ndarray]:
    """Every number file of ``locale`` as built into the instances' sounds directory."""
    folder = SOUNDS_CACHE / asterisk_language(locale) / "digits"
    return {name: audio.read_wav(folder / f"{name}.wav") for name in PromptCatalogue.load(locale).numbers}


@asynccontextmanager
async def stasis_app(instance: AsteriskInstance) -> AsyncIterator[tuple[AriRest, asyncio.Queue[Event]]]:
    """Our own ARI client as the application ``hotline`` (no IVR): the REST client, and the
    events Asterisk sends, in a queue."""
    events: asyncio.Queue[Event] = asyncio.Queue()

    async def sink(_key: str, event: Event) -> None:
        events.put_nowait(event)

    async def nothing_to_resync() -> None:
        return None

    ari_settings = instance.settings.ari
    password = ari_settings.password.get_secret_value()
    dispatcher = Dispatcher(sink)
    stream = EventStream(instance.ari_url, "hotline", ari_settings.username, password, dispatcher,
                         on_connect=nothing_to_resync, initial_backoff_s=0.05, max_backoff_s=0.3)
    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(stream.run(), name="test-ari-events")
        try:
            await asyncio.wait_for(stream.connected.wait(), 5)
            async with AriRest(http, instance.ari_url, ari_settings.username, password) as rest:
                yield rest, events
        finally:
            await cancel_and_wait([task])
            await dispatcher.close()


async def next_event(events: asyncio.Queue[Event], kind: type, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while True:
            event = await events.get()
            if isinstance(event, kind):
                return event


def then_silence(heard: np.ndarray) -> np.ndarray:
    """What the phone heard, and the silence after it: Asterisk sends nothing once a playback
    ends, and drops a file's last part-frame (under 20 ms of its trailing silence), so the
    last sound would otherwise end a few samples short of its file. A whisper of noise rather
    than digital zero: the matching divides by the energy of what it compares with."""
    return np.concatenate([heard, np.random.default_rng(0).normal(0.0, 2.0, audio.RATE // 2)])


# --- Task 1: the numbers callers hear ------------------------------------------------------------


@pytest.mark.parametrize(("locale", "number", "files"), [
    ("zh-CN", 12, ["10", "2"]),                    # 十二: Asterisk's Chinese rules
    ("zh-CN", 105, ["1", "hundred", "0", "5"]),    # 一百零五: the zero inside is said
    ("en-US", 42, ["40", "2"]),                    # forty-two: the English rules
    ("ko-KR", 21, ["20", "1"]),                    # 이십 일: no Korean rules, the English ones
])
async def test_a_caller_hears_a_number_said_from_the_installed_number_files(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, locale: str, number: int, files: list[str]
) -> None:
    # The session's Asterisk was installed for zh-CN; the other locales' number files go beside
    # them (built once per machine, like the prompts), as 'hotline asterisk install' would for
    # an Asterisk serving that locale.
    build_numbers(locale, SOUNDS_CACHE)
    language = asterisk_language(locale)
    warnings_before = len(real_asterisk.log_lines("WARNING"))
    async with stasis_app(real_asterisk) as (ari, events), phones(real_asterisk) as (carrier, _):
        call = await carrier.call("12315")
        started = await next_event(events, StasisStart)
        await ari.answer(started.channel.id)
        await call.wait_answered(10)
        playback = await ari.play(started.channel.id, [f"number:{number}"], playback_id=f"say-{secrets.token_hex(4)}",
                                  lang=language)
        finished = await next_event(events, PlaybackFinished)
        await asyncio.sleep(0.3)  # the last packets on their way to the phone
        await call.hang_up()
    assert finished.playback.id == playback.id
    assert finished.playback.state == "done", finished.playback.raw
    received = audio.pcm(call.rtp.pcm())
    sounds = number_sounds(locale)
    heard = audio.heard_in_order({name: sounds[name] for name in files}, then_silence(received))
    assert [h.name for h in heard] == files, heard
    # ... and nothing else: what arrived is those files end to end (short syllables of one
    # file can match inside another, 십 in 이십, so the other files are not searched for).
    expected_s = sum(len(sounds[name]) for name in files) / audio.RATE
    assert abs(len(received) / audio.RATE - expected_s) < 0.1, (len(received) / audio.RATE, expected_s)
    # Asterisk found every file (a missing one is "Unable to play" or "File does not exist").
    new_warnings = real_asterisk.log_lines("WARNING")[warnings_before:]
    assert not [w for w in new_warnings if "digits/" in w], new_warnings


async def test_a_waiting_caller_hears_how_many_callers_are_ahead_as_a_number(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, prompts: PromptCatalogue
) -> None:
    """Through the application: the second caller in the queue is told one caller is ahead."""
    settings = on_real_asterisk.model_copy(update={
        "queues": on_real_asterisk.queues.model_copy(update={"announce_every_s": 2.0}),
    })
    async with running(settings) as app, phones(real_asterisk) as (carrier, _):
        # An agent logged in but on a break: the level is staffed, the callers wait there.
        await app.queues.login(Agent("1002", HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}), "PJSIP/1002"))
        await app.queue_engine.set_break("1002", "meeting")
        first = await dial(carrier, "057112315", caller="13800138001")
        await asyncio.sleep(0.5)
        first.dtmf("1")
        await eventually(lambda: _in_queue(app, 1), timeout=20)
        second = await dial(carrier, "057112315", caller="13800138002")
        await asyncio.sleep(0.5)
        second.dtmf("1")
        await eventually(lambda: _in_queue(app, 2), timeout=20)
        sounds = {**prompt_sounds(prompts, "callers_ahead_before", "callers_ahead_after"),
                  "one": number_sounds("zh-CN")["1"]}
        start = len(second.rtp.received)

        async def announced() -> bool:
            heard = audio.pcm(_since(second, start))
            return start_of(sounds["callers_ahead_after"], heard) is not None  # all of it

        await eventually(announced, timeout=25)
        await second.hang_up()
        await first.hang_up()
    heard = audio.pcm(_since(second, start))
    before, after = (start_of(sounds[name], heard) for name in ("callers_ahead_before", "callers_ahead_after"))
    assert before is not None and after is not None and before < after, (before, after)
    # Between "您前面还有" and "位来电者正在等候": the number, 一, and nothing else.
    # (With 50 ms to spare each side: Asterisk may drop a file's last part-frame.)
    end_of_before = before + len(sounds["callers_ahead_before"])
    slack = audio.RATE // 20
    assert audio.find(sounds["one"], heard[end_of_before - slack:after + slack]) is not None, "no number said"
    assert abs(after - end_of_before - len(sounds["one"])) / audio.RATE < 0.1, (after - end_of_before) / audio.RATE


def start_of(sound: np.ndarray, heard: np.ndarray) -> int | None:
    """Where ``sound`` starts in ``heard`` (the whole sound matched, not its loudest part)."""
    return audio.find(sound, then_silence(heard), seconds=len(sound) / audio.RATE)


async def _in_queue(app: Application, count: int) -> bool:
    states = [await app.ivr.svc.store.load(channel) for channel in list(app.ivr.flows)]
    return sum(1 for s in states if s is not None and s.state == "in_queue") >= count


def _since(call, start: int) -> bytes:  # type: ignore[no-untyped-def]
    from devtools.sip_phone import ulaw_to_linear

    return ulaw_to_linear(bytes(call.rtp.received[start:]))


# --- Task 2: checked at every connect ---------------------------------------------------------------


def test_a_sound_counts_in_the_languages_asterisk_tries_for_the_channel_language() -> None:
    # main/file.c fileexists_core: the language, without its dialect, (none), then "en".
    assert lookup_languages("zh_CN") == ["zh_CN", "zh", "en"]
    assert lookup_languages("en_US") == ["en_US", "en"]
    assert lookup_languages("ko_KR") == ["ko_KR", "ko", "en"]


def media_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "ivr.media_checks" and r.levelno >= logging.ERROR]


async def test_with_everything_installed_the_check_at_connect_finds_all_sounds_and_music_and_logs_no_error(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.media_checks")
    settings = on_real_asterisk.model_copy(update={
        "ivr": on_real_asterisk.ivr.model_copy(update={"check_media": True}),
    })
    async with running(settings) as app:
        assert app.media_checks is not None
        report = await asyncio.wait_for(app.media_checks.wait_checked(), 20)
        assert report is not None
        assert report.healthy and report.complete, report.problems
        assert report.missing_sounds == () and report.fallback_sounds == ()
        assert report.moh_audible is True, report.moh_detail
        assert len(app.media_checks.sounds) == len(PromptCatalogue.load("zh-CN").sounds())
        # Its channel is gone again: only the check's own, never left behind.
        assert not [c for c in real_asterisk.channels() if c["id"].startswith(CHANNEL_PREFIX)]
    assert media_errors(caplog) == []
    assert any("music on hold class 'hotline' plays music" in r.getMessage() for r in caplog.records)


async def test_a_sound_asterisk_does_not_have_and_a_class_without_music_are_named_as_errors(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The checks themselves, against the session's Asterisk: a prompt nobody installed and a
    music class musiconhold.conf does not have."""
    ari_settings = real_asterisk.settings.ari
    catalogue = PromptCatalogue.load("zh-CN")
    password = ari_settings.password.get_secret_value()
    async with stasis_app(real_asterisk) as (_ari, _events), aiohttp.ClientSession() as http, \
            AriRest(http, real_asterisk.ari_url, ari_settings.username, password) as ari:
        checks = MediaChecks(ari, app="hotline", language="zh_CN",
                             sounds=[*catalogue.sounds(), "hotline/no-such-prompt"],
                             moh_class="no-such-class", rtp_bind_host="127.0.0.1",
                             asterisk_data_dir=Path("/var/lib/asterisk"))
        report = await asyncio.wait_for(checks.check(), 20)
    assert report.missing_sounds == ("hotline/no-such-prompt",)
    assert report.moh_audible is False
    errors = media_errors(caplog)
    assert len(errors) == 2, errors
    checked = len(catalogue.sounds()) + 1
    assert f"1 of the {checked} sounds the IVR plays are not in Asterisk for language zh_CN: hotline/no-such-prompt" \
        in errors[0]
    assert "Run 'hotline asterisk install'" in errors[0] and "/var/lib/asterisk/sounds/zh_CN" in errors[0]
    assert errors[1].startswith("music on hold class 'no-such-class' plays nothing: no audio at all in 4 s")
    assert "Set [ivr] moh_class (HOTLINE_IVR__MOH_CLASS) to 'hotline' ('hotline asterisk install' writes the " \
        "class 'hotline' into musiconhold.conf and its music into /var/lib/asterisk/moh/hotline; then " \
        "asterisk -rx 'moh reload'), or give musiconhold.conf a class 'no-such-class' with music." in errors[1]
    assert not report.healthy and len(report.problems) == 2


@pytest.fixture
def broken_asterisk(tmp_path: Path) -> AsteriskInstance:
    """A private Asterisk installed as operators install it, then missing a prompt, a number
    file and the music of class 'hotline' (the session's shared instance is left alone)."""
    settings = load_settings(profile="test", ari={"password": secrets.token_hex(12)})
    instance = make_instance(tmp_path / "asterisk", settings, AGENT_PHONES)
    sounds = tmp_path / "asterisk" / "data" / "sounds"
    # A throwaway copy of the built sounds, so that installing finds them made already.
    build_prompts("zh-CN", SOUNDS_CACHE)
    shutil.copytree(SOUNDS_CACHE / "zh_CN", sounds / "zh_CN", symlinks=False)
    instance.configure()
    (sounds / "zh_CN" / "hotline" / "goodbye.wav").unlink()
    (sounds / "zh_CN" / "digits" / "7.wav").unlink()
    for music in (tmp_path / "asterisk" / "data" / "moh" / "hotline").iterdir():
        music.unlink()
    instance.start()
    yield instance  # type: ignore[misc]
    instance.stop()


async def test_the_application_names_missing_sounds_and_music_at_every_connect(
    broken_asterisk: AsteriskInstance, redis_server, redis_prefix: str,  # type: ignore[no-untyped-def]
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    base = real_settings(broken_asterisk, redis_server.url, redis_prefix, sqlite_url, tmp_path)
    settings = base.model_copy(update={
        "ivr": base.ivr.model_copy(update={"check_media": True}),
    })
    async with running(settings) as app:
        assert app.media_checks is not None
        report = await asyncio.wait_for(app.media_checks.wait_checked(1), 20)
        assert report is not None
        assert report.missing_sounds == ("hotline/goodbye", "digits/7")
        assert report.moh_audible is False
        first = media_errors(caplog)
        assert len(first) == 2, first
        assert "hotline/goodbye, digits/7" in first[0] and "hotline asterisk install" in first[0]
        assert first[1].startswith("music on hold class 'hotline' plays nothing: no audio at all in 4 s")
        assert first[1].endswith("Run 'hotline asterisk install' (it writes the class 'hotline' into musiconhold.conf "
                                 "and its music into /var/lib/asterisk/moh/hotline), then asterisk -rx 'moh reload'.")

        # Every reconnect checks again (an operator may have fixed it, or broken it, meanwhile).
        await app.events.disconnect()
        again = await asyncio.wait_for(app.media_checks.wait_checked(2), 20)
        assert again is not None and again.missing_sounds == ("hotline/goodbye", "digits/7")
        assert len(media_errors(caplog)) == 4
    assert broken_asterisk.wait_idle() == []
