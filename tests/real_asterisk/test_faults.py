"""Faults, on a real Asterisk 22: the application killed and restarted, its events WebSocket
cut (kept out, or broken silently), Asterisk itself stopped or crashed, callers who vanish
without a BYE, the application down (the dialplan's fallback queue, and its call record
imported from Asterisk's CDRs afterwards), and one ARI step failing (409, or a real time-out)
while an agent is connected.

Each test checks what the callers and the agents experience (their phones' audio and SIP),
and that nothing is left behind: channels (the fixture checks), bridges, agents stuck
ringing or on break, queue entries, open call records.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr
from redis.asyncio import Redis
from sqlalchemy import select

from callrecords.models import CallRecord
from callrecords.services import CallRecordRepository
from calls.store import CallState, CallStateStore
from core.db import make_engine, sessionmaker
from core.settings import CallRecordSettings, Settings
from delivery.models import OutboxRow
from devtools import audio
from devtools.asterisk import AsteriskInstance
from devtools.sip_phone import Call, SipPhone, linear_to_ulaw, ulaw_to_linear
from devtools.tcp_proxy import TcpProxy, ari_events
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from queues.engine import Agent, AgentState, QueueEngine
from queues.kept_bridges import bridge_name
from tests.fixtures.app import running
from tests.fixtures.real_asterisk import dial, phones, prompt_sounds
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.slow

HANGZHOU = "330100"
#: Dialled with Hangzhou's area code: the call is queued for Hangzhou at once (no city question).
HANGZHOU_12315 = "057112315"


# --- helpers -------------------------------------------------------------------------------------


async def one_talking_one_waiting(carrier: SipPhone, desk: SipPhone, instance: AsteriskInstance,
                                  store: CallStateStore) -> tuple[Call, str, Call, Call, str]:
    """With one agent available on ``desk``: a first caller who talks to them and a second who
    waits for them. (caller, its channel, the agent's call, the waiting caller, its channel)"""
    talking, talking_channel = await call_in(carrier, instance, "13800138001")
    agent_call = await asyncio.wait_for(desk.incoming.get(), 15)
    await agent_call.wait_answered()
    await eventually_call_state(store, talking_channel, "connected")
    waiting, waiting_channel = await call_in(carrier, instance, "13800138002")
    await eventually_call_state(store, waiting_channel, "in_queue")
    return talking, talking_channel, agent_call, waiting, waiting_channel


async def hear_each_other(caller: Call, agent: Call) -> None:
    """A tone from each side reaches the other: the two are really talking through Asterisk."""
    for speaker, listener in ((agent, caller), (caller, agent)):
        start = len(listener.rtp.received)
        speaker.rtp.play(linear_to_ulaw(audio.tone(1000, 1.0)))
        await asyncio.sleep(1.4)
        heard = audio.pcm(ulaw_to_linear(bytes(listener.rtp.received[start:])))
        assert audio.loud_seconds(heard) > 0.6, "the two parties do not hear each other"


def agent(agent_id: str) -> Agent:
    return Agent(agent_id, HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}), f"PJSIP/{agent_id}")


def engine_of(settings: Settings, redis: Redis) -> QueueEngine:
    """The application's queue engine, seen from the test (its state is all in Redis)."""
    return QueueEngine(redis, f"{settings.redis.prefix}:queues", wrap_up_s=settings.queues.wrap_up_s)


async def agent_state(engine: QueueEngine, agent_id: str) -> tuple[AgentState, str | None]:
    now = await engine.agent(agent_id)
    assert now is not None, f"agent {agent_id} is not logged in"
    return now["state"], now["reason"]


async def eventually_agent(engine: QueueEngine, agent_id: str, state: AgentState, timeout: float = 10) -> None:
    async def there() -> bool:
        return (await agent_state(engine, agent_id))[0] == state

    there.__name__ = f"agent {agent_id} {state}"
    await eventually(there, timeout=timeout)


async def eventually_call_state(store: CallStateStore, channel_id: str, *states: str,
                                timeout: float = 15) -> CallState:
    async def there() -> CallState | None:
        state = await store.load(channel_id)
        return state if state is not None and state.state in states else None

    there.__name__ = f"call {channel_id} in {states}"
    return await eventually(there, timeout=timeout)


async def new_channel(instance: AsteriskInstance, known: set[str], timeout: float = 10) -> str:
    """The id of the caller's channel that appears now (not one of ``known``, not an agent leg)."""
    async def appeared() -> str | None:
        fresh = [c["id"] for c in instance.channels() if c["id"] not in known and "-agent-" not in c["id"]]
        return fresh[0] if fresh else None

    return str(await eventually(appeared, timeout=timeout))


async def call_in(carrier: SipPhone, instance: AsteriskInstance, caller: str, *, number: str = HANGZHOU_12315,
                  key: str | None = "1") -> tuple[Call, str]:
    """A caller dials, is answered by the IVR, keys ``key`` during the welcome; their phone's
    call and their channel's id."""
    known = {c["id"] for c in instance.channels()}
    call = await dial(carrier, number, caller=caller)
    channel = await new_channel(instance, known)
    if key is not None:
        await asyncio.sleep(0.8)  # the welcome has begun: a key now is a caller who knows the menu
        call.dtmf(key)
    return call, channel


async def nothing_left(instance: AsteriskInstance, engine: QueueEngine, records: CallRecordRepository,
                       *agents: str, timeout: float = 10) -> None:
    """No bridge, no queued call, no open call record, every agent available again."""
    async def clean() -> bool:
        if instance.left_bridges() or await engine.live_calls() or await records.open_records():
            return False
        states = [(await agent_state(engine, a))[0] for a in agents]
        return all(state == AgentState.AVAILABLE for state in states)

    try:
        await eventually(clean, timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"left behind: bridges {[b['id'] for b in instance.left_bridges()]}, queued {await engine.live_calls()}, "
            f"open records {[r.channel_id for r in await records.open_records()]}, "
            f"agents {[await agent_state(engine, a) for a in agents]}") from None


@asynccontextmanager
async def records_of(settings: Settings) -> AsyncIterator[CallRecordRepository]:
    """The call records the application writes, read from the test (a process of its own may write them)."""
    engine = make_engine(settings.database.url)
    try:
        yield CallRecordRepository(sessionmaker(engine))
    finally:
        await engine.dispose()


async def record_of(records: CallRecordRepository, channel_id: str, timeout: float = 10) -> CallRecord:
    async def ended() -> CallRecord | None:
        record = await records.by_channel(channel_id)
        return record if record is not None and record.ended_at is not None else None

    ended.__name__ = f"the record of {channel_id} to end"
    return await eventually(ended, timeout=timeout)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --- 5. the application down: Asterisk's own fallback queue ----------------------------------------


def cdr_settings(settings: Settings, instance: AsteriskInstance) -> Settings:
    """The application following the session Asterisk's CDR file (dialplans/cdr_custom.conf)."""
    cdr = CallRecordSettings(cdr_file=instance.workdir / "log" / "cdr-custom" / "hotline-cdr.csv",
                             cdr_poll_s=0.2, cdr_settle_s=0.5)
    return settings.model_copy(update={"callrecords": cdr})


async def test_with_the_application_down_a_caller_hears_the_apology_a_duty_agent_answers_and_the_call_is_recorded_once(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, prompts: PromptCatalogue
) -> None:
    # No application connected: Stasis() fails at once and the dialplan serves the call itself.
    apology = prompt_sounds(prompts, "fallback_unavailable")["fallback_unavailable"]
    async with phones(real_asterisk, "1001") as (carrier, desk):
        known = {c["id"] for c in real_asterisk.channels()}
        call = await dial(carrier, HANGZHOU_12315, caller="13900139005")
        uniqueid = await new_channel(real_asterisk, known)
        # The apology (8.5 s) is played before the queue rings the duty agent's desk phone.
        agent_call = await asyncio.wait_for(desk["1001"].incoming.get(), 20)
        await agent_call.wait_answered()
        # At once: within the first seconds of what the caller's phone received.
        heard = audio.pcm(call.rtp.pcm())[: len(apology) + 2 * audio.RATE]
        assert audio.find(apology, heard) is not None, "the caller did not hear the fallback apology at once"
        await hear_each_other(call, agent_call)
        await call.hang_up()
        hung_up = time.time()
        await agent_call.wait_ended(10)  # Asterisk's queue releases the agent with the caller
    assert not real_asterisk.left_bridges()

    # The application comes back and imports the call from Asterisk's CDRs: one record, once,
    # also after another restart reads the file again.
    settings = cdr_settings(on_real_asterisk, real_asterisk)
    for _ in range(2):
        async with running(settings) as app, records_of(settings) as records:
            record = await record_of(records, uniqueid, timeout=10)
            await asyncio.sleep(1.0)  # several looks at the file meanwhile (every 0.2 s)
            assert [r.channel_id for r in await records.all()].count(uniqueid) == 1
            async with sessionmaker(app.engine)() as db:
                owed = (await db.scalars(select(OutboxRow).where(OutboxRow.kind == "call_record",
                                                                 OutboxRow.key == record.call_id))).all()
            assert len(owed) == 1, "the fallback call's record is not owed to the platform exactly once"
    assert record.outcome == "answered" and record.agent_id == "1001"
    assert (record.hotline_number, record.business_line, record.area_code) == ("12315", "general", "0571")
    assert record.caller_phone == "13900139005"
    assert record.started_at < record.answered_at < record.ended_at
    assert utc(hung_up - 2.0) < record.ended_at < utc(hung_up + 2.0), (record.ended_at, utc(hung_up))


# --- 6. one ARI step failing while an agent is connected ---------------------------------------------


async def spoil_by_destroying_the_agents_bridge(instance: AsteriskInstance, caller: str, leg: str) -> None:
    """The agent's bridge, made when they logged in (queues.kept_bridges), destroyed behind the
    application's back (an operator, a module reload): putting the call through in it answers 404."""
    [bridge] = [b for b in instance.bridges() if b["name"] == bridge_name("1001")]
    instance.ari("DELETE", f"/bridges/{bridge['id']}")


async def spoil_by_a_prompt_the_app_does_not_know(instance: AsteriskInstance, caller: str, leg: str) -> None:
    """A prompt playing on the caller that the application did not start (so does not stop):
    Asterisk adds the caller to the bridge only after it, so adding them gets no answer within
    the ARI request time-out (5 s) -- a real time-out, with the command still pending in Asterisk."""
    instance.ari("POST", f"/channels/{caller}/play", media="sound:hotline/welcome-price", lang="zh_CN")


@pytest.mark.parametrize("spoil", [spoil_by_destroying_the_agents_bridge, spoil_by_a_prompt_the_app_does_not_know],
                         ids=["404", "timeout"])
async def test_a_failed_step_while_connecting_an_agent_puts_the_caller_through_to_the_next_agent_and_blames_nobody(
    real_asterisk: AsteriskInstance, real_app: Application, on_real_asterisk: Settings, redis: Redis,
    spoil: Callable[[AsteriskInstance, str, str], Awaitable[None]]
) -> None:
    engine = engine_of(on_real_asterisk, redis)
    async with phones(real_asterisk, "1001", "1002") as (carrier, desk), records_of(on_real_asterisk) as records:
        # 1001 answers late, so that the test can spoil the attempt before it connects.
        desk["1001"].answer_after_s = 2.0
        for agent_id in ("1001", "1002"):  # 1001 idle longest: offered first
            await real_app.queues.login(agent(agent_id))
            await real_app.queues.available(agent_id)
        call, channel = await call_in(carrier, real_asterisk, "13800138001")

        async def ringing_leg() -> str | None:
            legs = [c["id"] for c in real_asterisk.channels() if c["id"].startswith(f"{channel}-agent-")]
            return legs[0] if legs else None

        leg = str(await eventually(ringing_leg, timeout=15))
        await spoil(real_asterisk, channel, leg)
        first = await asyncio.wait_for(desk["1001"].incoming.get(), 5)
        await first.wait_answered()
        await first.wait_ended(10)  # 1001's phone answered, and the failed attempt hung it up

        second = await asyncio.wait_for(desk["1002"].incoming.get(), 15)
        await second.wait_answered()
        state = await eventually_call_state(real_app.ivr.svc.store, channel, "connected")
        assert state.agent_id == "1002"
        await hear_each_other(call, second)
        # 1001 is not on break for "no answer": they answered. A short pause, then available.
        now, reason = await agent_state(engine, "1001")
        assert (now, reason) in ((AgentState.WRAP_UP, "connect_failed"), (AgentState.AVAILABLE, None)), (now, reason)
        await eventually_agent(engine, "1001", AgentState.AVAILABLE, timeout=10)
        assert (await agent_state(engine, "1002"))[0] == AgentState.ON_CALL
        assert desk["1001"].incoming.empty(), "1001 was rung again for a call now talking to 1002"

        await call.hang_up()
        await second.wait_ended(10)
        record = await record_of(records, channel)
        assert record.outcome == "answered" and record.agent_id == "1002"
        await nothing_left(real_asterisk, engine, records, "1001", "1002")


# --- 4. callers who vanish without a BYE ----------------------------------------------------------------


async def test_callers_who_vanish_without_a_bye_are_hung_up_by_the_media_timeout_and_their_agent_is_released(
    real_asterisk: AsteriskInstance, real_app: Application, on_real_asterisk: Settings, redis: Redis
) -> None:
    engine = engine_of(on_real_asterisk, redis)
    store = real_app.ivr.svc.store
    async with phones(real_asterisk, "1001") as (carrier, desk), records_of(on_real_asterisk) as records:
        await real_app.queues.login(agent("1001"))
        await real_app.queues.available("1001")
        talking, talking_channel, agent_call, waiting, waiting_channel = await one_talking_one_waiting(
            carrier, desk["1001"], real_asterisk, store)
        await hear_each_other(talking, agent_call)

        # The carrier's side vanishes: no more RTP, no BYE, and its SIP socket is gone too
        # (Asterisk's BYE at the time-out then reaches nobody).
        vanished = time.time()
        carrier.close()
        # rtp_timeout (4 s here) hangs both channels up; the agent's phone gets a BYE.
        await agent_call.wait_ended(15)
        ended_after = time.time() - vanished
        assert 3.0 < ended_after < 12.0, f"the agent's leg ended {ended_after:.1f} s after the caller vanished"

        talked = await record_of(records, talking_channel)
        assert talked.outcome == "answered" and talked.agent_id == "1001"
        assert utc(vanished + 3.0) < talked.ended_at < utc(vanished + 12.0), talked.ended_at
        waited = await record_of(records, waiting_channel)
        assert waited.outcome == "abandoned_in_queue" and waited.answered_at is None
        assert utc(vanished + 3.0) < waited.ended_at < utc(vanished + 12.0), waited.ended_at
        # Both time-outs fire within about a second of each other, and the agent's wrap-up is
        # short here: in between, Asterisk still has the waiting caller, so the agent may be
        # offered them and rung. Then that ring ends with the caller, and nothing is kept of it.
        if waited.agent_id is not None:
            assert waited.agent_id == "1001"
            if not desk["1001"].incoming.empty():  # the INVITE may not have gone out yet
                await desk["1001"].incoming.get_nowait().wait_ended(10)
        # The agent: a wrap-up after the call, then available again; no other ring.
        await nothing_left(real_asterisk, engine, records, "1001")
        assert desk["1001"].incoming.empty(), "the agent's phone rang for a caller who is gone"


# --- 1. the application killed (SIGKILL) and started again ------------------------------------------------


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``HOTLINE_<SECTION>__<FIELD>`` variables, for ``hotline serve`` in a process
    of its own (the environment wins over everything else, so nothing of the test's is lost)."""
    def text(value: Any) -> str:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, BaseModel):
            return value.model_dump_json()
        if isinstance(value, (list, dict)):
            return json.dumps(value, default=str)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    env: dict[str, str] = {}
    for name, value in settings:
        if isinstance(value, BaseModel):
            env.update({f"HOTLINE_{name.upper()}__{field.upper()}": text(v) for field, v in value if v is not None})
        elif value is not None:
            env[f"HOTLINE_{name.upper()}"] = text(value)
    return env


class Served:
    """``hotline serve`` as operators run it, in a process of its own; each start logs to a file of its own."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = {**os.environ, **settings_env(settings)}
        self.env.pop("HOTLINE_CONFIG", None)
        self.logs = logs
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.logs / f"serve-{self.starts}.log"

    def _spawn(self) -> None:
        """``hotline serve`` started, its output appended to the log (Popen returns at once)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "serve"], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    async def start(self) -> None:
        self.starts += 1
        # The log is kept across starts: only what this start writes counts.
        offset = self.log.stat().st_size if self.log.exists() else 0
        self._spawn()

        async def resynced() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            with self.log.open("rb") as f:
                f.seek(offset)
                return b"resync: " in f.read()

        await eventually(resynced, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def serve_logs(directory: Path) -> str:
    """Everything every start of ``hotline serve`` wrote."""
    return "".join(p.read_text(errors="replace") for p in sorted(directory.glob("serve-*.log")))


async def test_the_application_killed_and_restarted_keeps_its_talking_and_waiting_callers(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, redis: Redis, tmp_path: Path
) -> None:
    engine = engine_of(on_real_asterisk, redis)
    store = CallStateStore(redis, on_real_asterisk.redis.prefix)
    app = Served(on_real_asterisk, tmp_path)
    await app.start()
    try:
        async with phones(real_asterisk, "1001") as (carrier, desk), records_of(on_real_asterisk) as records:
            # One agent: the first caller talks to them, the second waits for them.
            await engine.login(agent("1001"))
            assert await engine.set_available("1001") is None
            talking, talking_channel, agent_call, waiting, waiting_channel = await one_talking_one_waiting(
                carrier, desk["1001"], real_asterisk, store)
            await asyncio.sleep(1.0)

            heard_from = len(waiting.rtp.received)
            app.kill()
            # Nobody notices: Asterisk keeps the calls, the two parties keep talking.
            await hear_each_other(talking, agent_call)
            await app.start()
            async def resumed() -> bool:
                return app.log.read_text(errors="replace").count("resuming call") >= 2

            await eventually(resumed, timeout=10)
            await hear_each_other(talking, agent_call)
            assert not waiting.ended.is_set() and not talking.ended.is_set()
            # The waiting caller heard music all along, not silence.
            through = audio.pcm(ulaw_to_linear(bytes(waiting.rtp.received[heard_from:])))
            assert audio.loud_seconds(through) > 0.6 * len(through) / audio.RATE

            await talking.hang_up()
            hung_up = time.time()
            await agent_call.wait_ended(10)  # the restarted app releases the agent with the caller
            talked = await record_of(records, talking_channel)
            assert talked.outcome == "answered" and talked.agent_id == "1001"
            assert utc(hung_up - 0.5) < talked.ended_at < utc(hung_up + 3.0), (talked.ended_at, utc(hung_up))

            # After a short wrap-up the agent takes the caller who waited through the restart.
            second = await asyncio.wait_for(desk["1001"].incoming.get(), 15)
            await second.wait_answered()
            state = await eventually_call_state(store, waiting_channel, "connected")
            assert state.agent_id == "1001"
            await hear_each_other(waiting, second)
            await waiting.hang_up()
            await second.wait_ended(10)
            waited = await record_of(records, waiting_channel)
            assert waited.outcome == "answered" and waited.agent_id == "1001"
            await nothing_left(real_asterisk, engine, records, "1001")
    finally:
        app.stop()
    assert "Traceback" not in serve_logs(tmp_path)


# --- 2. the ARI events WebSocket cut -------------------------------------------------------------------


@asynccontextmanager
async def app_behind(settings: Settings, proxy: TcpProxy) -> AsyncIterator[Application]:
    """The application reaching ARI through ``proxy`` (so that the test can cut its connections)."""
    through = settings.model_copy(update={"ari": settings.ari.model_copy(update={"url": proxy.url})})
    async with running(through) as app:
        yield app


async def test_calls_go_on_when_the_events_websocket_is_cut_while_they_are_in_menus_queues_and_ringing(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, redis: Redis, prompts: PromptCatalogue
) -> None:
    engine = engine_of(on_real_asterisk, redis)
    sounds = prompt_sounds(prompts, "welcome_general", "recording_notice", "main_menu", "no_input")
    menu = sounds["main_menu"]
    # Without speech the welcome, the recording notice and the menu are one playback.
    first_prompt_s = sum(len(sounds[k]) for k in ("welcome_general", "recording_notice", "main_menu")) / audio.RATE
    reprompt_s = (len(sounds["no_input"]) + len(menu)) / audio.RATE
    proxy = await TcpProxy("127.0.0.1", real_asterisk.http_port).start()
    try:
        async with app_behind(on_real_asterisk, proxy) as app, phones(real_asterisk, "1001") as (carrier, desk), \
                records_of(on_real_asterisk) as records:
            store = app.ivr.svc.store
            # Logged in, on a break: the caller who chose waits in Hangzhou's queue.
            await app.queues.login(agent("1001"))
            await app.queue_engine.set_break("1001", "meeting")
            in_menu, menu_channel = await call_in(carrier, real_asterisk, "13800138001", number="12315", key=None)
            menu_answered = time.monotonic()
            queued, queued_channel = await call_in(carrier, real_asterisk, "13800138002")
            await eventually_call_state(store, queued_channel, "in_queue")
            assert (await store.load(menu_channel)).state == "main_menu"  # type: ignore[union-attr]

            # The events connection drops and stays out while the first prompt (welcome and menu,
            # 17 s) ends, while the waiting caller's "you are queued" (6.8 s, from about 2 s) ends,
            # and while an agent's phone rings and answers: ARI tells nobody of these, and replays
            # nothing when the application is back.
            await asyncio.sleep(max(0.0, menu_answered + 7.0 - time.monotonic()))
            proxy.refuse_for(max(0.0, menu_answered + first_prompt_s + 1.0 - time.monotonic()), ari_events)
            assert proxy.cut(ari_events) == 1
            await asyncio.sleep(1.0)
            assert not app.events.connected.is_set()
            await app.queues.available("1001")  # the agent is back from their meeting
            ring = await asyncio.wait_for(desk["1001"].incoming.get(), 10)
            await ring.wait_answered()
            await eventually(lambda: _connected_again(app, proxy), timeout=15)
            back = len(in_menu.rtp.received)
            assert proxy.refused, "the application did not try to reconnect during the outage"

            # The caller in the menu, whose prompt ended unseen, is asked again ("no input", the
            # menu) once the silence after it runs out, with no key pressed.
            await eventually_call_state(store, menu_channel, "main_menu", timeout=5)
            await asyncio.sleep(on_real_asterisk.ivr.no_input_timeout_s + reprompt_s + 1.0)
            after = audio.pcm(ulaw_to_linear(bytes(in_menu.rtp.received[back:])))
            assert audio.find(menu, after) is not None, "the caller in the menu heard no menu after the outage"

            # The waiting caller reaches the agent whose phone answered while nobody was listening
            # (or, the attempt given up, on a new ring of the same agent's phone).
            state = await eventually_call_state(store, queued_channel, "connected", timeout=15)
            assert state.agent_id == "1001"
            talking_agent = ring if not ring.ended.is_set() else await asyncio.wait_for(
                desk["1001"].incoming.get(), 5)
            await talking_agent.wait_answered()
            await hear_each_other(queued, talking_agent)

            await queued.hang_up()
            await talking_agent.wait_ended(10)
            await in_menu.hang_up()
            assert (await record_of(records, queued_channel)).outcome == "answered"
            assert (await record_of(records, menu_channel)).outcome == "abandoned_in_menu"
            await nothing_left(real_asterisk, engine, records, "1001")
    finally:
        await proxy.close()


async def _connected_again(app: Application, proxy: TcpProxy) -> bool:
    return app.events.connected.is_set() and app.events.connections >= 2 and not proxy.refusing()


async def test_calls_go_on_when_events_are_lost_on_a_silently_broken_connection_and_after_an_agent_hangs_up_unseen(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings, redis: Redis
) -> None:
    engine = engine_of(on_real_asterisk, redis)
    proxy = await TcpProxy("127.0.0.1", real_asterisk.http_port).start()
    try:
        async with app_behind(on_real_asterisk, proxy) as app, phones(real_asterisk, "1001") as (carrier, desk), \
                records_of(on_real_asterisk) as records:
            store = app.ivr.svc.store
            await app.queues.login(agent("1001"))
            await app.queue_engine.set_break("1001", "meeting")
            queued, queued_channel = await call_in(carrier, real_asterisk, "13800138002")
            await eventually_call_state(store, queued_channel, "in_queue")

            # The path breaks silently: Asterisk still believes it delivers our events, so calls
            # still enter Stasis, and an agent's answered leg too; we hear nothing of it.
            assert proxy.mute(ari_events) == 1
            known = {c["id"] for c in real_asterisk.channels()}
            newcomer = await carrier.call("12315", caller="13800138003")
            new_channel_id = await new_channel(real_asterisk, known)
            await app.queues.available("1001")
            ring = await asyncio.wait_for(desk["1001"].incoming.get(), 10)
            await ring.wait_answered()
            await asyncio.sleep(1.0)
            # Our dialplan answers before Stasis(), but a call we never heard of is not in our store.
            assert await store.load(new_channel_id) is None
            # Until the connection is found dead (here: it drops; else the WebSocket's ping times out).
            assert proxy.cut(ari_events) == 1
            await eventually(lambda: _connected_again(app, proxy), timeout=10)

            # The call we never saw start is picked up: welcomed.
            await newcomer.wait_answered(5)
            await eventually_call_state(store, new_channel_id, "welcome", "main_menu", timeout=5)
            # The agent who answered unseen is put through on that same answer, not rung again.
            state = await eventually_call_state(store, queued_channel, "connected", timeout=5)
            assert state.agent_id == "1001" and desk["1001"].incoming.empty()
            await hear_each_other(queued, ring)

            # Now the connection drops and stays out while the agent hangs up: the caller, left
            # alone in the bridge, is released when we are back.
            proxy.refuse_for(3.0, ari_events)
            assert proxy.cut(ari_events) == 1
            await ring.hang_up()
            await eventually(lambda: _connected_again(app, proxy), timeout=10)
            await queued.wait_ended(5)
            await newcomer.hang_up()
            talked = await record_of(records, queued_channel)
            assert talked.outcome == "answered" and talked.agent_id == "1001"
            assert (await record_of(records, new_channel_id)).outcome == "abandoned_in_menu"
            await nothing_left(real_asterisk, engine, records, "1001")
    finally:
        await proxy.close()


# --- found on the way: an agent who answers while the caller hears a prompt ---------------------------------


async def test_an_agent_who_answers_while_the_caller_hears_you_are_queued_is_put_through_at_once(
    real_asterisk: AsteriskInstance, real_app: Application, on_real_asterisk: Settings, redis: Redis,
    prompts: PromptCatalogue
) -> None:
    # Asterisk plays a channel's prompts one after another, and adds a channel to a bridge only
    # after its prompts: a prompt left playing under "connecting you" keeps the agent who
    # answered in silence (and a connect that waits longer than an ARI request fails).
    queued = prompt_sounds(prompts, "queued")["queued"]
    engine = engine_of(on_real_asterisk, redis)
    async with phones(real_asterisk, "1001") as (carrier, desk), records_of(on_real_asterisk) as records:
        await real_app.queues.login(agent("1001"))
        await real_app.queue_engine.set_break("1001", "meeting")
        call, channel = await call_in(carrier, real_asterisk, "13800138001")
        await eventually_call_state(real_app.ivr.svc.store, channel, "in_queue")  # "you are queued" begins
        prompt_start = len(call.rtp.received)  # μ-law: one byte a sample
        await real_app.queues.available("1001")
        ring = await asyncio.wait_for(desk["1001"].incoming.get(), 10)
        await ring.wait_answered()
        await eventually_call_state(real_app.ivr.svc.store, channel, "connected", timeout=10)
        # Had the prompt been left playing, Asterisk would have bridged the caller only after it: by
        # "connected" the caller would have received all of it. It was stopped for the agent: they
        # received a part of it only (a second short at least, for the start missed above).
        heard = len(call.rtp.received) - prompt_start
        assert 0 < heard < len(queued) - audio.RATE, (
            f"the agent waited in silence for the caller's prompt to end ({heard / audio.RATE:.1f} s of it heard)")
        await hear_each_other(call, ring)
        await call.hang_up()
        await ring.wait_ended(10)
        assert (await record_of(records, channel)).outcome == "answered"
        await nothing_left(real_asterisk, engine, records, "1001")


# --- 3. Asterisk itself restarted ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["restart", "crash"])
async def test_after_asterisk_restarts_under_its_calls_their_records_are_closed_agents_freed_and_new_calls_work(
    real_asterisk: AsteriskInstance, real_app: Application, on_real_asterisk: Settings, redis: Redis, how: str
) -> None:
    engine = engine_of(on_real_asterisk, redis)
    store = real_app.ivr.svc.store
    async with phones(real_asterisk, "1001") as (carrier, desk), records_of(on_real_asterisk) as records:
        await real_app.queues.login(agent("1001"))
        await real_app.queues.available("1001")
        talking, talking_channel, agent_call, waiting, waiting_channel = await one_talking_one_waiting(
            carrier, desk["1001"], real_asterisk, store)

        # The session's Asterisk, stopped ("core stop now": it hangs its calls up, and tells us)
        # or killed (a crash: nobody is told anything), then started on the same ports and files.
        connections = real_app.events.connections
        stopped = time.time()
        await asyncio.to_thread(real_asterisk.restart if how == "restart" else real_asterisk.kill)
        if how == "crash":
            await asyncio.to_thread(real_asterisk.start)
        restarted = time.time()

        async def reconnected() -> bool:
            return real_app.events.connected.is_set() and real_app.events.connections > connections

        await eventually(reconnected, timeout=15)
        live = {c["id"] for c in real_asterisk.channels()}
        assert talking_channel not in live and waiting_channel not in live
        # Asterisk took its calls with it. Stopped, it said goodbye (a BYE) to every phone; crashed,
        # the phones hear silence and hang up on their own.
        for call in (talking, waiting, agent_call):
            assert call.ended.is_set() == (how == "restart")
            call._end()

        # Their records are closed, at the time Asterisk went away, not at our reconnect.
        talked = await record_of(records, talking_channel)
        waited = await record_of(records, waiting_channel)
        assert talked.outcome == "answered" and talked.agent_id == "1001"
        assert waited.outcome == "abandoned_in_queue"
        for record in (talked, waited):
            assert utc(stopped - 1.0) < record.ended_at < utc(restarted + 1.0), (record.ended_at, stopped, restarted)
        # The agent is freed (after the short wrap-up), and nobody is left in the queues.
        await nothing_left(real_asterisk, engine, records, "1001")

        # A new call afterwards goes all the way to the agent.
        again, again_channel = await call_in(carrier, real_asterisk, "13800138003")
        ring = await asyncio.wait_for(desk["1001"].incoming.get(), 15)
        await ring.wait_answered()
        state = await eventually_call_state(store, again_channel, "connected")
        assert state.agent_id == "1001"
        await hear_each_other(again, ring)
        await again.hang_up()
        await ring.wait_ended(10)
        assert (await record_of(records, again_channel)).outcome == "answered"
        await nothing_left(real_asterisk, engine, records, "1001")
