"""Scripted callers: a simulated phone on the carrier trunk, and the dialplan host of its channel.

A test (or the demo) places a call, waits for prompts, keys DTMF, speaks a WAV file
(sent as RTP to any externalMedia channel that hears this caller) and hangs up at any
point. The same object runs our real ``extensions.conf`` for its channel through
:mod:`devtools.pbx_sim.dialplan`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import wave
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from devtools.pbx_sim.dialplan import ChannelHungUp, Continue
from devtools.pbx_sim.playbacks import SoundLibrary
from devtools.pbx_sim.state import SimBridge, SimChannel, SimError

log = logging.getLogger(__name__)

#: 20 ms of 16 kHz mono audio: the frame the stand-in's media clock moves by.
FRAME_SAMPLES_16K = 320


class Switch(Protocol):
    """What a caller needs of the switch its channel is on (``engine.Engine``).

    The engine tells callers what they hear through ``SimChannel.call``; declaring the way
    back here keeps the callers below the engine instead of the two importing each other.
    """

    @property
    def bridges(self) -> Mapping[str, SimBridge]: ...
    @property
    def channels(self) -> Mapping[str, SimChannel]: ...
    @property
    def sounds(self) -> SoundLibrary: ...

    def moh_heard(self, moh_class: str | None) -> str | None: ...
    def emit_channel(self, ch: SimChannel, event_type: str, *, key: str = "channel", **extra: Any) -> None: ...
    def set_state(self, ch: SimChannel, state: str) -> None: ...
    def enter_stasis(self, ch: SimChannel, app: str, args: list[str]) -> None: ...
    def hangup(self, ch: SimChannel, cause: int = 16) -> None: ...
    def dialplan_hangup(self, ch: SimChannel, cause: int) -> None: ...
    def phone_hangs_up(self, ch: SimChannel, q850_cause: int | None) -> None: ...
    def phone_hold(self, ch: SimChannel, on: bool) -> None: ...


class SimCall:
    def __init__(self, switch: Switch, channel: SimChannel, dialled: str) -> None:
        self._switch = switch
        self.channel = channel
        self.dialled = dialled
        channel.call = self
        #: Media URIs the caller heard start, in order (``sound:hotline/main-menu``), and
        #: ``moh:<class>`` when music on hold started that they hear (not for a class
        #: Asterisk does not have: then they hear silence, see :attr:`on_hold_in_silence`).
        self.played: list[str] = []
        #: Media URIs whose playback finished (or was stopped).
        self.finished: list[str] = []
        #: Media the application stopped before their end (the caller barged in).
        self.interrupted: list[str] = []
        #: DTMF the application sent towards the caller.
        self.dtmf_heard: list[str] = []
        self.stasis_status: str | None = None
        self.hangup_cause: int | None = None
        #: How far wait_for_playback(_finished) have read ``played`` / ``finished``.
        self._cursors = {"started": 0, "finished": 0}
        self._changed = asyncio.Event()
        self._speech = bytearray()  # 16 kHz little-endian PCM still to be "spoken"
        self._frame_tick = -1
        self._frame = b""

    # --- what tests read --------------------------------------------------------------

    @property
    def channel_id(self) -> str:
        return self.channel.id

    @property
    def caller_number(self) -> str:
        return self.channel.caller_number

    @property
    def ended(self) -> bool:
        return self.channel.destroyed

    @property
    def on_hold_music(self) -> bool:
        """Music on hold is on for this caller, and they hear it."""
        return any(self._switch.moh_heard(c) for c in self._moh_requested())

    @property
    def on_hold_in_silence(self) -> bool:
        """Music on hold was started for this caller in a class Asterisk does not have."""
        return bool(self._moh_requested()) and not self.on_hold_music

    def _moh_requested(self) -> list[str]:
        bridge = self._switch.bridges.get(self.channel.bridge_id or "")
        return [c for c in (self.channel.moh_class, bridge.moh_class if bridge else None) if c is not None]

    @property
    def talking_to(self) -> str | None:
        """The agent's phone (``PJSIP/1001``) this caller is bridged with, or None.

        What a person on the line knows: someone picked up and they are through. The
        application joins the caller to the answered channel it dialled to a phone, so an
        answered, originated channel sharing the caller's bridge is that agent; a snoop or
        an external media channel in the bridge is no one to talk to.
        """
        bridge = self._switch.bridges.get(self.channel.bridge_id or "")
        if bridge is None:
            return None
        for channel_id in bridge.channels:
            other = self._switch.channels.get(channel_id)
            if other is not None and other.kind == "originated" and other.state == "Up" and other.endpoint:
                return other.endpoint
        return None

    async def wait_answered(self, timeout: float) -> str | None:
        """Wait until an agent is on the line (:attr:`talking_to`) and return their phone;
        None when ``timeout`` passes first or the call ends unanswered (a caller giving up
        after their patience is the caller's business, not a failure: hence no exception)."""
        with contextlib.suppress(AssertionError):
            await self._until(lambda: self.talking_to or self.ended, timeout, "an agent to answer")
        return self.talking_to

    def _notify(self) -> None:
        self._changed.set()

    async def _until(self, check: Callable[[], object], timeout: float, what: str) -> object:
        async def loop() -> object:
            while True:
                result = check()
                if result is not None and result is not False:
                    return result
                self._changed.clear()
                # Also look again now and then: a condition may depend on things outside
                # this call (RTP received by the test, the application's state).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"call {self.channel_id} ({self.dialled}): timed out after {timeout}s waiting for {what}; "
                f"heard so far: {self.played}"
            ) from None

    async def wait_for_playback(self, prefix: str, timeout: float = 5.0) -> str:
        """Wait until a media starting with ``prefix`` starts playing to this caller.

        Consumes what it found: the next wait looks only at what was heard after it.
        """
        return await self._wait_consuming(self.played, "started", prefix, timeout)

    async def wait_for_playback_finished(self, prefix: str, timeout: float = 5.0) -> str:
        """Like :meth:`wait_for_playback`, for the end of a media (finished or stopped)."""
        return await self._wait_consuming(self.finished, "finished", prefix, timeout)

    async def _wait_consuming(self, media: list[str], cursor: str, prefix: str, timeout: float) -> str:
        def find() -> str | None:
            for i in range(self._cursors[cursor], len(media)):
                if media[i].startswith(prefix):
                    self._cursors[cursor] = i + 1
                    return media[i]
            return None

        return str(await self._until(find, timeout, f"{prefix!r} to have {cursor}"))

    async def wait_ended(self, timeout: float = 5.0) -> None:
        await self._until(lambda: self.ended, timeout, "the call to end")

    async def wait_for(self, check: Callable[[], object], timeout: float = 5.0, what: str = "a condition") -> object:
        return await self._until(check, timeout, what)

    # --- what the caller does ---------------------------------------------------------

    def send_dtmf(self, digits: str, duration_ms: int = 120) -> None:
        """Key digits (RFC 2833): each becomes a ``ChannelDtmfReceived`` while in Stasis."""
        for digit in digits:
            if digit not in "0123456789*#ABCD":
                raise ValueError(f"{digit!r} is not a DTMF digit")
            if self.channel.stasis_app is not None and not self.channel.hangup_requested:
                self._switch.emit_channel(self.channel, "ChannelDtmfReceived", digit=digit, duration_ms=duration_ms)

    def say(self, audio: Path | bytes) -> float:
        """Queue speech: a WAV file (8 or 16 kHz mono 16-bit) or raw 16 kHz LE PCM. Returns seconds."""
        pcm = audio if isinstance(audio, bytes) else read_wav_16k(audio)
        self._speech.extend(pcm)
        return len(pcm) / 2 / 16000

    @property
    def speaking(self) -> bool:
        return bool(self._speech)

    def frame(self, tick: int) -> bytes:
        """This caller's 20 ms of voice at media tick ``tick`` (silence when not speaking).

        Cached per tick, so several listeners (a bridge and a snoop) hear the same audio.
        """
        if tick != self._frame_tick:
            self._frame_tick = tick
            chunk = bytes(self._speech[: FRAME_SAMPLES_16K * 2])
            del self._speech[: FRAME_SAMPLES_16K * 2]
            self._frame = chunk.ljust(FRAME_SAMPLES_16K * 2, b"\0")
        return self._frame

    async def hangup(self, q850_cause: int | None = None) -> None:
        """The caller hangs up: a BYE, with ``Reason: Q.850;cause=<q850_cause>`` when given
        (a carrier often says why), and the events Asterisk sends for one."""
        if not self.channel.hangup_requested:
            self._switch.phone_hangs_up(self.channel, q850_cause)

    def hold(self, on: bool) -> None:
        """The caller's phone puts the call on hold (a re-INVITE ``a=sendonly``) or resumes it."""
        if not self.channel.hangup_requested:
            self._switch.phone_hold(self.channel, on)

    @property
    def dialplan_host(self) -> DialplanSide:
        """What the dialplan interpreter runs this call's channel through."""
        return DialplanSide(self)

    # --- called by the engine ---------------------------------------------------------

    def heard(self, media: str) -> None:
        self.played.append(media)
        self._notify()

    def playback_finished(self, media: list[str], *, stopped: bool = False) -> None:
        self.finished.extend(media)
        if stopped:
            self.interrupted.append(media[-1])
        self._notify()

    def on_destroyed(self, cause: int) -> None:
        self.hangup_cause = cause
        self._notify()

    # --- the dialplan host (see devtools.pbx_sim.dialplan.DialplanHost) ----------------

    async def switch_hangup(self, cause: int, *, by_app: bool = False) -> None:
        """The dialplan hangs the channel up with ``cause``: its Hangup() (``by_app``), or
        nowhere left to go."""
        if self.channel.hangup_requested:
            return
        if by_app:
            self._switch.dialplan_hangup(self.channel, cause)
        else:
            self._switch.hangup(self.channel, cause)

    def dialplan_step(self, context: str, exten: str, priority: int, app: str, data: str) -> None:
        """The dialplan runs ``app(data)`` here: the channel shows it, and whoever follows the
        channel's endpoint hears ``ChannelDialplan`` (and a ``ChannelVarset`` for a ``Set``)."""
        ch = self.channel
        ch.context, ch.exten, ch.priority, ch.app_name, ch.app_data = context, exten, priority, app, data
        self._switch.emit_channel(ch, "ChannelDialplan", dialplan_app=app, dialplan_app_data=data)

    def _check_alive(self) -> None:
        if self.channel.hangup_requested:
            raise ChannelHungUp

    async def answer(self) -> None:
        self._check_alive()
        self._switch.set_state(self.channel, "Up")

    async def stasis(self, app: str, args: list[str], *, context: str, exten: str, priority: int,
                     app_data: str) -> str | Continue:
        self._check_alive()
        ch = self.channel
        ch.context, ch.exten, ch.priority, ch.app_name, ch.app_data = context, exten, priority, "Stasis", app_data
        try:
            self._switch.enter_stasis(ch, app, args)
        except SimError:
            # The application is not connected: Stasis() fails at once (FIELD-NOTES).
            self.stasis_status = "FAILED"
            ch.app_name = ch.app_data = ""
            self._notify()
            return "FAILED"
        assert ch.stasis_exit is not None
        how = await ch.stasis_exit
        ch.app_name = ch.app_data = ""
        if how == "hangup":
            self.stasis_status = "KILLED"
            raise ChannelHungUp
        self.stasis_status = "SUCCESS"
        where, ch.continue_at = ch.continue_at, None
        return Continue(*where) if where is not None else "SUCCESS"

    async def playback(self, sound: str) -> None:
        self._check_alive()
        media = f"sound:{sound}"
        seconds = self._switch.sounds.duration(media, self.channel.language)
        if seconds is None:
            log.warning("dialplan Playback(%s): file not found", sound)
            return
        self.heard(media)
        ended = asyncio.ensure_future(self.channel.ended.wait())
        try:
            await asyncio.wait([ended], timeout=seconds)
        finally:
            ended.cancel()
        self._check_alive()
        self.playback_finished([media])

    async def set_variable(self, name: str, value: str) -> None:
        if name.strip().upper() == "CHANNEL(LANGUAGE)":
            self.channel.language = value
            return
        self.channel.variables[name] = value
        if "(" not in name:
            # A variable is announced; a function written (CDR(...)) is not.
            self._switch.emit_channel(self.channel, "ChannelVarset", variable=name, value=value)

    async def other_app(self, name: str, data: str) -> None:
        self._check_alive()
        app = name.lower()
        if app == "queue":
            # The stand-in has no registered phones, so every queue member is unavailable:
            # with joinempty=unavailable (queues.conf) the caller cannot join.
            self.channel.variables["QUEUESTATUS"] = "JOINEMPTY"
        elif app in ("wait", "musiconhold", "echo", "dial"):
            await asyncio.sleep(0)
        else:
            log.info("dialplan application %s(%s) is not simulated: skipped", name, data)


def read_wav_16k(path: Path) -> bytes:
    """A mono 16-bit WAV as 16 kHz little-endian PCM (8 kHz files are upsampled)."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM, got {w.getnchannels()} ch, {w.getsampwidth() * 8} bit")
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    if rate == 16000:
        return frames
    if rate == 8000:
        from ivr.speech.codec import pcm_from_bytes, pcm_to_bytes, upsample_8k_to_16k

        return pcm_to_bytes(upsample_8k_to_16k(pcm_from_bytes(frames)))
    raise ValueError(f"{path}: sample rate {rate} Hz; use 8000 or 16000")


class DialplanSide:
    """The call as the dialplan interpreter sees it (:class:`~devtools.pbx_sim.dialplan.DialplanHost`).

    Its ``hangup(cause)`` is the dialplan hanging the channel up, which is not the caller's
    BYE (:meth:`SimCall.hangup`); everything else is the call's own.
    """

    def __init__(self, call: SimCall) -> None:
        self._call = call
        self.answer, self.stasis, self.playback = call.answer, call.stasis, call.playback
        self.set_variable, self.other_app, self.dialplan_step = call.set_variable, call.other_app, call.dialplan_step

    @property
    def caller_number(self) -> str:
        return self._call.caller_number

    async def hangup(self, cause: int = 16) -> None:
        await self._call.switch_hangup(cause)

    async def hangup_app(self, cause: int = 16) -> None:
        await self._call.switch_hangup(cause, by_app=True)
