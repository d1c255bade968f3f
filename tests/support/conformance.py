"""The two switches the conformance scenarios (``tests/conformance/``) run on, behind one
interface, and what several scenarios share: an answered call, the RTP statistics of a hang-up.

A scenario talks raw ARI (:class:`AriSession`: requests and the events WebSocket as app
``hotline``, exactly as they cross the wire) and drives the *caller side* through a
:class:`Switch`: place a call, key DTMF, hang up, put the call on hold, register or
unregister an agent's desk phone. On the real Asterisk those are SIP phones
(``devtools.sip_phone``); on the stand-in they are its own control API (``/sim/...``), so
both switches are driven from the outside, the way a test or the demo drives them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import wave
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from devtools import audio
from devtools.asterisk import TRUNK_HOST, AsteriskInstance
from devtools.pbx_sim.server import PbxSim
from devtools.sip_phone import Call, SipPhone
from tests.fixtures.ari_contract import TrafficChecker
from tests.support.transcript import Transcript

#: Every scenario's caller, and the number it dials (12315: the general line).
CALLER = "13800138000"
NUMBER = "12315"
#: Desk phones answer after this long, on both switches (a real phone rings a little first).
ANSWER_AFTER_S = 0.3

#: What a SIP channel's hang-up always carries first: the statistics of its media.
RTP_STATS = [f"ChannelVarset channel=caller:Up value=<rtp stats> variable='RTPAUDIOQOS{kind}'"
             for kind in ("", "JITTER", "LOSS", "RTT", "MES")]


@dataclass
class Reply:
    """One ARI answer: status, body (parsed JSON, raw bytes, or None) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class AriSession:
    """ARI as it is, with no client smarts: requests, answers and the ordered event stream.

    ``checker`` sees every request, answer and event, as the stand-in's ``on_traffic`` hook
    would, so that the real Asterisk's traffic is held to the same declarations.
    """

    def __init__(self, base_url: str, username: str, password: str, checker: TrafficChecker | None = None) -> None:
        self.base_url, self._credentials = base_url, (username, password)
        self.checker = checker
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._last_event_at = time.monotonic()
        self.http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def auth(self) -> dict[str, str]:
        user, password = self._credentials
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    async def open(self, app: str = "hotline") -> None:
        self.http = aiohttp.ClientSession()
        self._ws = await self.http.ws_connect(f"{self.base_url}/ari/events?app={app}", headers=self.auth)
        self._reader = asyncio.create_task(self._read(), name="conformance-events")
        # Every event, whatever an application of the same name (ours, in an earlier test on
        # this Asterisk) left as its filter: Asterisk keeps it with the application.
        cleared = await self.request("PUT", f"/applications/{app}/eventFilter", body={})
        assert cleared.status == 200, cleared

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            if self.checker is not None:
                self.checker("event", event)
            self.events.append(event)
            self._last_event_at = time.monotonic()
            self._changed.set()

    async def request(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
                      *, body: dict[str, Any] | None = None, **params: str) -> Reply:
        """One ARI request; ``query`` for parameters given more than once, in that order;
        ``body`` as JSON."""
        assert self.http is not None
        pairs = query if query is not None else list(params.items())
        if self.checker is not None:
            self.checker("request", {"method": method, "path": f"/ari{path}", "query": pairs, "body": body})
        async with self.http.request(method, f"{self.base_url}/ari{path}", params=pairs, json=body,
                                     headers=self.auth) as resp:
            raw = await resp.read()
            body: Any = json.loads(raw) if raw and resp.content_type == "application/json" else (raw or None)
            reply = Reply(resp.status, body, dict(resp.headers))
        if self.checker is not None:
            self.checker("response", {"method": method, "path": f"/ari{path}", "status": reply.status,
                                      "body": reply.body})
        return reply

    async def wait_event(self, kind: str, where: Callable[[dict[str, Any]], bool] = lambda e: True,
                         *, after: int = 0, timeout: float = 5.0) -> dict[str, Any]:
        """The first event of ``kind`` (from index ``after``) that ``where`` accepts."""
        async def find() -> dict[str, Any]:
            while True:
                for event in self.events[after:]:
                    if event["type"] == kind and where(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            seen = [e["type"] for e in self.events[after:]]
            raise AssertionError(f"no {kind} within {timeout} s; events since: {seen}") from None

    async def quiet(self, quiet_s: float = 0.25, timeout: float = 5.0) -> None:
        """Wait until no event has come for ``quiet_s``: what a step causes has all arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self._last_event_at + quiet_s - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(left)  # until the quiet spell would be over; an event meanwhile extends it

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.http is not None:
            await self.http.close()


def channel_of(channel_id: str) -> Callable[[dict[str, Any]], bool]:
    """An event filter: events about the channel ``channel_id``."""
    return lambda e: (e.get("channel") or e.get("peer") or {}).get("id") == channel_id


def write_media(path: Path, seconds: float, freq: float = 400.0) -> None:
    """A short 8 kHz tone as a WAV file: media both switches can play (``recording:<name>``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(audio.tone(freq, seconds))


# --- the caller's side --------------------------------------------------------------------------


class Leg(ABC):
    """The caller's phone on one call that reached Stasis."""

    channel_id: str

    @abstractmethod
    async def answered(self) -> None:
        """Wait until the phone knows the call is answered (after ``POST .../answer``)."""

    @abstractmethod
    async def dtmf(self, digits: str, duration_ms: int = 160) -> None:
        """Key digits (RFC 4733 on a real phone)."""

    @abstractmethod
    async def hang_up(self, q850_cause: int | None = None) -> None:
        """A BYE, with ``Reason: Q.850;cause=<n>`` when a cause is given."""

    @abstractmethod
    async def hold(self, on: bool) -> None:
        """A re-INVITE with ``a=sendonly`` (hold) or ``a=sendrecv`` (resume)."""

    @abstractmethod
    async def hears_music(self, listen_s: float = 0.6) -> bool:
        """Whether the caller hears anything now (music on hold), listening ``listen_s``."""


class Switch(ABC):
    """One switch and its caller side; ``ari`` is connected as the application ``hotline``."""

    name: str
    ari: AriSession
    #: The calls placed, by their channel's id.
    legs: dict[str, Leg]

    @abstractmethod
    async def call(self, number: str = NUMBER, caller: str = CALLER) -> Leg:
        """Place a call from the carrier trunk; returns once its channel's StasisStart came."""

    @abstractmethod
    async def register(self, agent: str) -> None:
        """The agent's desk phone registers (it answers after ``ANSWER_AFTER_S``)."""

    @abstractmethod
    async def unregister(self, agent: str) -> None:
        """The agent's desk phone unregisters: no contact left."""

    @abstractmethod
    async def never_answer(self, agent: str) -> None:
        """The agent's registered phone rings without being answered."""

    @abstractmethod
    def put_media(self, name: str, seconds: float) -> None:
        """A WAV in the switch's recordings spool, playable as ``recording:<name>``."""

    @abstractmethod
    def stored_file(self, name: str) -> Path:
        """Where the switch keeps the stored recording ``name`` (a WAV)."""

    @abstractmethod
    async def close(self) -> None:
        """Hang up what is left, close phones and sockets; fail if the switch was left dirty."""

    async def _new_stasis_channel(self, mark: int, timeout: float = 10.0) -> str:
        start = await self.ari.wait_event("StasisStart", after=mark, timeout=timeout)
        return str(start["channel"]["id"])


# --- the stand-in, driven through its control API -----------------------------------------------


class StandInLeg(Leg):
    def __init__(self, switch: StandInSwitch, channel_id: str) -> None:
        self._switch, self.channel_id = switch, channel_id

    async def answered(self) -> None:
        return None  # the stand-in's caller knows at once

    async def dtmf(self, digits: str, duration_ms: int = 160) -> None:
        await self._switch.control("POST", f"/sim/calls/{self.channel_id}/dtmf", digits=digits,
                                   duration_ms=str(duration_ms))

    async def hang_up(self, q850_cause: int | None = None) -> None:
        params = {"cause": str(q850_cause)} if q850_cause is not None else {}
        await self._switch.control("DELETE", f"/sim/calls/{self.channel_id}", **params)

    async def hold(self, on: bool) -> None:
        await self._switch.control("POST" if on else "DELETE", f"/sim/channels/{self.channel_id}/hold")

    async def hears_music(self, listen_s: float = 0.6) -> bool:
        # The stand-in streams no audio to its callers; it says what the caller hears instead.
        calls = await self._switch.control("GET", "/sim/calls")
        return bool(next(c for c in calls if c["channel_id"] == self.channel_id)["on_hold_music"])


class StandInSwitch(Switch):
    name = "stand-in"

    def __init__(self, sim: PbxSim, checker: TrafficChecker) -> None:
        self.sim = sim
        self.ari = AriSession(sim.url, "hotline", "hotline")  # the stand-in checks its traffic itself
        self.checker = checker
        self.legs = {}

    async def open(self) -> None:
        await self.ari.open()
        # A real Asterisk starts with no phone registered; the stand-in's scripted phones are
        # registered to begin with (for the demo), so start both from the same place.
        for agent in ("1001", "1002"):
            await self.unregister(agent)
            await self.control("PUT", f"/sim/endpoints/PJSIP/{agent}", mode="answer",
                               answer_after_s=str(ANSWER_AFTER_S))

    async def control(self, method: str, path: str, **params: str) -> Any:
        assert self.ari.http is not None
        async with self.ari.http.request(method, f"{self.sim.url}{path}", params=params,
                                         headers=self.ari.auth) as resp:
            assert resp.status < 300, f"stand-in control {method} {path}: {resp.status} {await resp.text()}"
            return await resp.json() if resp.content_type == "application/json" else None

    async def call(self, number: str = NUMBER, caller: str = CALLER) -> Leg:
        mark = len(self.ari.events)
        placed = await self.control("POST", "/sim/calls", number=number, caller_id=caller)
        channel_id = await self._new_stasis_channel(mark)
        assert channel_id == placed["channel_id"]
        leg = self.legs[channel_id] = StandInLeg(self, channel_id)
        return leg

    async def register(self, agent: str) -> None:
        await self.control("PUT", f"/sim/endpoints/PJSIP/{agent}", mode="answer", answer_after_s=str(ANSWER_AFTER_S))
        await self.control("PUT", f"/sim/endpoints/PJSIP/{agent}/contact")

    async def unregister(self, agent: str) -> None:
        await self.control("DELETE", f"/sim/endpoints/PJSIP/{agent}/contact")

    async def never_answer(self, agent: str) -> None:
        await self.control("PUT", f"/sim/endpoints/PJSIP/{agent}", mode="no_answer")

    def put_media(self, name: str, seconds: float) -> None:
        write_media(self.sim.engine.recorder.dir / f"{name}.wav", seconds)

    def stored_file(self, name: str) -> Path:
        return self.sim.engine.recorder.dir / f"{name}.wav"

    async def close(self) -> None:
        await self.ari.close()
        await self.sim.wait_idle()


# --- the real Asterisk, driven by SIP phones ---------------------------------------------------------


class AsteriskLeg(Leg):
    def __init__(self, call: Call, channel_id: str) -> None:
        self.sip, self.channel_id = call, channel_id

    async def answered(self) -> None:
        await self.sip.wait_answered(5)

    async def dtmf(self, digits: str, duration_ms: int = 160) -> None:
        for digit in digits:
            self.sip.rtp.send_dtmf(digit, duration_ms)

    async def hang_up(self, q850_cause: int | None = None) -> None:
        await self.sip.hang_up(q850_cause=q850_cause)

    async def hold(self, on: bool) -> None:
        await self.sip.set_hold(on)

    async def hears_music(self, listen_s: float = 0.6) -> bool:
        start = len(self.sip.rtp.received)
        await asyncio.sleep(listen_s)
        heard = np.frombuffer(audio_bytes(self.sip, start), dtype="<i2").astype(np.float64)
        # Music is loud most of the time; Asterisk sends no RTP at all for a class it lacks.
        return audio.loud_seconds(heard) > listen_s / 2


def audio_bytes(call: Call, start: int) -> bytes:
    from devtools.sip_phone import ulaw_to_linear

    return ulaw_to_linear(bytes(call.rtp.received[start:]))


class AsteriskSwitch(Switch):
    name = "asterisk"

    def __init__(self, instance: AsteriskInstance, checker: TrafficChecker) -> None:
        self.instance = instance
        ari = instance.settings.ari
        self.ari = AriSession(instance.ari_url, ari.username, ari.password.get_secret_value(), checker)
        self.checker = checker
        self._carrier: SipPhone | None = None
        self.desk: dict[str, SipPhone] = {}
        self.legs = {}

    @property
    def _server(self) -> tuple[str, int]:
        return ("127.0.0.1", self.instance.sip_port)

    async def open(self) -> None:
        await self.ari.open()

    async def call(self, number: str = NUMBER, caller: str = CALLER) -> Leg:
        if self._carrier is None:
            self._carrier = await SipPhone(TRUNK_HOST, self._server, user="carrier").start(
                self.instance.settings.asterisk.trunk_port)
        mark = len(self.ari.events)
        sip = await self._carrier.call(number, caller=caller)
        leg = AsteriskLeg(sip, await self._new_stasis_channel(mark))
        self.legs[leg.channel_id] = leg
        return leg

    async def _phone(self, agent: str) -> SipPhone:
        if agent not in self.desk:
            from tests.fixtures.real_asterisk import AGENT_PHONES

            secret = next(a.secret for a in AGENT_PHONES if a.endpoint == agent)
            self.desk[agent] = await SipPhone("127.0.0.1", self._server, user=agent, password=secret,
                                              answer_after_s=ANSWER_AFTER_S).start()
        return self.desk[agent]

    async def register(self, agent: str) -> None:
        phone = await self._phone(agent)
        phone.answer_after_s = ANSWER_AFTER_S
        assert await phone.register() == 200, f"desk phone {agent} could not register"

    async def unregister(self, agent: str) -> None:
        assert await (await self._phone(agent)).unregister() == 200

    async def never_answer(self, agent: str) -> None:
        (await self._phone(agent)).answer_after_s = None

    def put_media(self, name: str, seconds: float) -> None:
        write_media(self.stored_file(name), seconds)

    def stored_file(self, name: str) -> Path:
        return self.instance.spool / "recording" / f"{name}.wav"

    async def close(self) -> None:
        """Leave the session's Asterisk as the next test expects it: nothing up, nothing
        registered, no subscription left (Asterisk keeps an application's subscriptions
        after its WebSocket closes, and counts them)."""
        problems = []
        try:
            app = await self.ari.request("GET", "/applications/hotline")
            for source in app.body.get("endpoint_ids", []) if app.status == 200 else []:
                while (await self.ari.request("DELETE", "/applications/hotline/subscription",
                                              eventSource=f"endpoint:{source}")).status == 200:
                    pass
            for bridge in (await self.ari.request("GET", "/bridges")).body:
                await self.ari.request("DELETE", f"/bridges/{bridge['id']}")
                problems.append(f"bridge {bridge['id']} left")
        finally:
            for phone in [p for p in (self._carrier,) if p is not None]:
                for call in list(phone.calls.values()):
                    if call.answered.is_set() and not call.ended.is_set():
                        await asyncio.wait_for(call.hang_up(), 3)
                phone.close()
            for phone in self.desk.values():
                if phone.registered:
                    await asyncio.wait_for(phone.unregister(), 3)
                phone.close()
            await self.ari.close()
        for _ in range(50):  # Asterisk gets up to 5 s to finish hanging up
            left = self.instance.channels()
            if not left:
                break
            await asyncio.sleep(0.1)
        for ch in left:
            self.instance.ari("DELETE", f"/channels/{ch['id']}")
            problems.append(f"channel {ch['name']} left")
        assert self.instance.proc is not None and self.instance.proc.poll() is None, \
            f"the real Asterisk died:\n{self.instance.console_tail()}"
        assert not problems, f"the scenario left the real Asterisk dirty: {problems}"


async def answered_call(switch: Switch) -> tuple[str, Transcript]:
    """A call placed and answered over ARI; the caller's channel id and its transcript."""
    leg = await switch.call()
    assert (await switch.ari.request("POST", f"/channels/{leg.channel_id}/answer")).status == 204
    await leg.answered()
    return leg.channel_id, Transcript(switch.ari.events, caller=leg.channel_id)
