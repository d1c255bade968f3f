"""The stand-in's switch: channels and bridges, with Asterisk 22's rules and event order.

The REST views (:mod:`hotline.pbx_sim.rest`) and the scripted callers
(:mod:`hotline.pbx_sim.callers`) drive this class; it raises :class:`SimError` with the
status and message Asterisk answers with, and emits events in the order a real
Asterisk 22 was seen to (FIELD-NOTES): a hang-up gives ``ChannelHangupRequest``,
``StasisEnd``, ``ChannelDestroyed``; an externalMedia channel enters Stasis with its
own ``StasisStart`` *after* it is created, and cannot join a bridge before that (422).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

from hotline.pbx_sim.apps import Applications
from hotline.pbx_sim.playbacks import Player, Recorder, SoundLibrary
from hotline.pbx_sim.state import Ids, SimBridge, SimChannel, SimError, SimPlayback, SimRecording
from hotline.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: Q.850 causes and the texts Asterisk gives them.
CAUSES: dict[int, str] = {
    0: "Unknown", 1: "Unallocated (unassigned) number", 16: "Normal Clearing", 17: "User busy",
    18: "No user responding", 19: "User alerting, no answer", 20: "Subscriber absent",
    21: "Call Rejected", 26: "Answered elsewhere", 28: "Invalid number format (addr incomplete)",
    31: "Normal, unspecified", 34: "Circuit/channel congestion", 38: "Network out of order",
    58: "Bearer capability not available", 127: "Interworking, unspecified",
}
#: ``DELETE /channels/{id}?reason=`` -> cause code.
HANGUP_REASONS: dict[str, int] = {
    "normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 19, "rejected": 21,
    "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28, "codec_mismatch": 58,
    "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}


class Endpoint:
    """How a device answers when the application originates a call to it.

    ``manual`` is a phone with a person at it: it rings until someone picks it up, which in
    the stand-in is ``POST /channels/{id}/answer`` on the ringing channel (the agent
    desktop's simulated phone does that). A real Asterisk refuses that request with 409,
    since an outgoing channel is not in Stasis before the far end answers; there the
    agent's own SIP phone answers.
    """

    MODES = ("answer", "busy", "no_answer", "unavailable", "manual")

    def __init__(self, answer_after_s: float = 0.0, mode: str = "answer", *, registered: bool = True) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown endpoint mode {mode!r}; one of {', '.join(self.MODES)}")
        self.answer_after_s = answer_after_s
        self.mode = mode
        #: The phone has a registered contact. Without one, Asterisk cannot even create the
        #: channel: ``POST /channels`` answers 500 ``{"error": "Allocation failed"}``
        #: (FIELD-NOTES) and ``GET /endpoints/...`` says ``offline``.
        self.registered = registered

    @property
    def state(self) -> str:
        return "online" if self.registered else "offline"


class Engine:
    def __init__(
        self,
        apps: Applications,
        *,
        sounds_dir: Path | None,
        recordings_dir: Path,
        default_playback_s: float,
        time_scale: float,
        configured_endpoints: list[str] | None = None,
        moh_classes: set[str] | None = None,
    ) -> None:
        self.apps = apps
        self.ids = Ids()
        self.channels: dict[str, SimChannel] = {}
        self.bridges: dict[str, SimBridge] = {}
        #: Scripted phones (``PJSIP/1001``): how they answer, whether they are registered.
        self.endpoints: dict[str, Endpoint] = {}
        #: Endpoints of pjsip.conf (``PJSIP/carrier``, ``PJSIP/1001``): listed by
        #: ``GET /endpoints`` like the scripted ones. Any other ``PJSIP/<name>`` exists too,
        #: as a registered phone, because tests and the demo make up agents' phones freely.
        self.configured_endpoints = list(configured_endpoints or [])
        #: Music-on-hold classes of musiconhold.conf. Music of any other class is silence.
        self.moh_classes = set(moh_classes or ())
        self.sounds = SoundLibrary(sounds_dir, recordings_dir, default_s=default_playback_s, time_scale=time_scale)
        self.player = Player(self.sounds, self._emit_playback, self._heard)
        self.recorder = Recorder(recordings_dir, self._emit_recording)
        #: How long an externalMedia channel takes to enter Stasis after it is created.
        self.media_setup_s = 0.02
        #: externalMedia channels, which the RTP streamer feeds every 20 ms.
        self.media_channel_ids: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lookups ----------------------------------------------------------------------

    def channel(self, channel_id: str) -> SimChannel:
        ch = self.channels.get(channel_id)
        if ch is None:
            raise SimError(404, "Channel not found")
        return ch

    def stasis_channel(self, channel_id: str) -> SimChannel:
        """A channel that the application may control: it must be in Stasis (else 409)."""
        ch = self.channel(channel_id)
        if ch.stasis_app is None:
            raise SimError(409, "Channel not in Stasis application")
        return ch

    def device(self, name: str) -> Endpoint:
        """How ``PJSIP/1001`` behaves: as scripted, else a registered phone that answers."""
        return self.endpoints.get(name) or Endpoint()

    def bridge(self, bridge_id: str) -> SimBridge:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise SimError(404, "Bridge not found")
        return bridge

    def spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- events -----------------------------------------------------------------------

    def emit_channel(self, ch: SimChannel, event_type: str, **extra: Any) -> None:
        self.apps.emit(ch.subscribed_app, event_type, channel=ch.to_json(), **extra)

    def _emit_playback(self, event_type: str, playback: SimPlayback) -> None:
        self.apps.emit(self._target_app(playback.target_uri), event_type, playback=playback.to_json())
        if event_type == "PlaybackFinished" and playback.target_uri.startswith("channel:"):
            ch = self.channels.get(playback.target_uri[len("channel:"):])
            if ch is not None and ch.call is not None:
                ch.call.playback_finished(playback.media[: playback.index + 1], stopped=playback.stopped)

    def _emit_recording(self, event_type: str, recording: SimRecording) -> None:
        self.apps.emit(self._target_app(recording.target_uri), event_type, recording=recording.to_json())

    def _target_app(self, target_uri: str) -> str | None:
        kind, _, ident = target_uri.partition(":")
        if kind == "channel":
            ch = self.channels.get(ident)
            return ch.subscribed_app if ch else None
        bridge = self.bridges.get(ident)
        return bridge.app if bridge else None

    def _heard(self, playback: SimPlayback, media: str) -> None:
        kind, _, ident = playback.target_uri.partition(":")
        ids = [ident] if kind == "channel" else list(self.bridges[ident].channels) if ident in self.bridges else []
        for channel_id in ids:
            ch = self.channels.get(channel_id)
            if ch is not None and ch.call is not None:
                ch.call.heard(media)

    # --- channels: creation and Stasis -----------------------------------------------

    def new_channel(self, name: str, **fields: Any) -> SimChannel:
        ch = SimChannel(id=fields.pop("channel_id", None) or self.ids.channel_id(), name=name, **fields)
        if ch.id in self.channels:
            raise SimError(409, "Channel with given unique ID already exists")
        self.channels[ch.id] = ch
        return ch

    def enter_stasis(self, ch: SimChannel, app: str, args: list[str]) -> None:
        """Put a channel into ``app`` and announce it; ``SimError(409)`` if the app is absent."""
        if not self.apps.connected(app):
            raise SimError(409, f"Stasis application {app} is not registered")
        ch.stasis_app = ch.subscribed_app = app
        if ch.call is None:
            # Channels made over ARI sit in Stasis() like dialled ones (the resync reads this).
            ch.app_name, ch.app_data = "Stasis", ",".join([app, *args])
        ch.stasis_exit = asyncio.get_running_loop().create_future()
        self.emit_channel(ch, "StasisStart", args=list(args))

    def _leave_stasis(self, ch: SimChannel, how: str) -> None:
        if ch.stasis_app is None:
            return
        if ch.bridge_id is not None:
            self._remove_from_bridge(ch)
        self.player.stop_target(f"channel:{ch.id}")
        self.emit_channel(ch, "StasisEnd")
        ch.stasis_app = None
        if ch.stasis_exit is not None and not ch.stasis_exit.done():
            ch.stasis_exit.set_result(how)

    def set_state(self, ch: SimChannel, state: str) -> None:
        if ch.state != state:
            ch.state = state
            self.emit_channel(ch, "ChannelStateChange")

    def answer(self, channel_id: str) -> None:
        ch = self.channel(channel_id)
        if ch.pickup is not None and ch.stasis_app is None and not ch.hangup_requested:
            ch.pickup.set()  # a "manual" phone ringing: the person at it picks up
            return
        ch = self.stasis_channel(channel_id)
        if ch.hangup_requested:
            raise SimError(412, "Channel in invalid state")
        self.set_state(ch, "Up")

    def hold(self, channel_id: str, on: bool) -> None:
        """Asterisk indicates hold to the channel and announces it (ChannelHold/ChannelUnhold)."""
        ch = self.stasis_channel(channel_id)
        if ch.hangup_requested:
            raise SimError(412, "Channel in invalid state")
        ch.held = on
        self.emit_channel(ch, "ChannelHold" if on else "ChannelUnhold")

    def mute(self, channel_id: str, direction: str, on: bool) -> None:
        """Mute or unmute audio from (``in``) or to (``out``) the channel; no event, as in Asterisk."""
        ch = self.stasis_channel(channel_id)
        if ch.hangup_requested:
            raise SimError(412, "Channel in invalid state")
        directions = {"in", "out"} if direction == "both" else {direction}
        if on:
            ch.muted |= directions
        else:
            ch.muted -= directions

    def continue_in_dialplan(self, channel_id: str) -> None:
        ch = self.stasis_channel(channel_id)
        self._leave_stasis(ch, "continue")
        ch.subscribed_app = None
        if ch.call is None:
            # Originated and helper channels have no dialplan to go back to.
            self.spawn(self._hangup_later(ch), f"continue-hangup:{ch.id}")

    async def _hangup_later(self, ch: SimChannel) -> None:
        await asyncio.sleep(0)
        self.hangup(ch, 16)

    # --- hang-up ----------------------------------------------------------------------

    def hangup(self, ch: SimChannel, cause: int = 16, *, by_far_end: bool = False) -> None:
        """Hang a channel up, from either side, with Asterisk's event order.

        ``by_far_end``: the phone sent a BYE. Asterisk then announces the hang-up twice
        (FIELD-NOTES): first as queued by the channel driver, without a cause, then as
        the soft hang-up that takes the channel out of Stasis, with the cause and
        ``soft: true``.
        """
        if ch.hangup_requested:
            return
        ch.hangup_requested = True
        if by_far_end:
            self.emit_channel(ch, "ChannelHangupRequest")
            self.emit_channel(ch, "ChannelHangupRequest", cause=cause, soft=True)
        else:
            self.emit_channel(ch, "ChannelHangupRequest", cause=cause)
        self.recorder.stop_target(f"channel:{ch.id}")
        self._leave_stasis(ch, "hangup")
        self.player.stop_target(f"channel:{ch.id}")
        if ch.bridge_id is not None:
            self._remove_from_bridge(ch)
        for spy in [c for c in self.channels.values() if c.snoop_target == ch.id]:
            self.hangup(spy, cause)
        self.emit_channel(ch, "ChannelDestroyed", cause=cause, cause_txt=CAUSES.get(cause, "Unknown"))
        ch.destroyed = True
        ch.state = "Down"
        self.channels.pop(ch.id, None)
        self.media_channel_ids.discard(ch.id)
        if ch.stasis_exit is not None and not ch.stasis_exit.done():
            ch.stasis_exit.set_result("hangup")
        ch.ended.set()
        if ch.call is not None:
            ch.call.on_destroyed(cause)

    def hangup_by_id(self, channel_id: str, reason_code: str | None, reason: str | None) -> None:
        ch = self.channel(channel_id)
        if reason_code is not None and reason is not None:
            raise SimError(400, "Only one of reason_code or reason may be given")
        if reason_code is not None:
            if not reason_code.isdigit():
                raise SimError(400, "Invalid reason_code")
            cause = int(reason_code)
        else:
            cause = HANGUP_REASONS.get(reason or "normal", 16)
        self.hangup(ch, cause)

    # --- endpoints ----------------------------------------------------------------------

    def endpoint_names(self, technology: str | None = None) -> list[str]:
        names = dict.fromkeys([*self.configured_endpoints, *self.endpoints])
        return [n for n in names if technology is None or n.partition("/")[0] == technology]

    def endpoint_json(self, name: str) -> dict[str, Any]:
        """The ``Endpoint`` model; ``SimError(404)`` for a technology the stand-in has no phones on."""
        technology, _, resource = name.partition("/")
        if technology != "PJSIP" or not resource:
            raise SimError(404, "Endpoint not found")
        prefix = f"{name}-"
        return {
            "technology": technology,
            "resource": resource,
            "state": self.device(name).state,
            "channel_ids": [c.id for c in self.channels.values() if c.name.startswith(prefix)],
        }

    def set_registered(self, name: str, registered: bool) -> Endpoint:
        """A phone registers or loses its contact; subscribed applications hear of the change."""
        self.endpoint_json(name)  # only PJSIP phones register
        device = self.endpoints.setdefault(name, Endpoint())
        if device.registered != registered:
            device.registered = registered
            technology, _, resource = name.partition("/")
            self.apps.emit_endpoint(technology, resource, "EndpointStateChange", endpoint=self.endpoint_json(name))
        return device

    def subscribe(self, app: str, sources: list[str], on: bool) -> None:
        """``POST``/``DELETE /applications/{app}/subscription``, endpoints only.

        Asterisk checks every source before it changes anything: a bad scheme is 400, an
        event source that does not exist 422, unsubscribing from one not subscribed 409.
        """
        if not self.apps.connected(app):
            raise SimError(404, "Application does not exist.")
        if not sources:
            raise SimError(400, "eventSource: Missing required field")
        subscribed = self.apps.subscriptions(app)
        for source in sources:
            scheme, _, what = source.partition(":")
            if scheme not in ("channel", "bridge", "endpoint", "deviceState"):
                raise SimError(400, "Invalid event source URI scheme")
            if scheme != "endpoint":
                raise SimError(501, "The stand-in subscribes applications to endpoints only")
            technology, _, resource = what.partition("/")
            if technology != "PJSIP":
                raise SimError(422, "Event source does not exist")
            if not on and source not in subscribed:
                raise SimError(409, "Application not subscribed to event source")
        for source in sources:
            if on:
                subscribed.add(source)
            else:
                subscribed.discard(source)

    # --- originate, external media, snoop ---------------------------------------------

    def originate(self, endpoint: str, app: str, args: list[str], caller_id: str, timeout_s: int,
                  channel_id: str | None) -> SimChannel:
        tech, _, resource = endpoint.partition("/")
        if not tech or not resource:
            raise SimError(400, "Endpoint must be in the form TECH/resource")
        device = self.device(endpoint)
        if not device.registered:
            # PJSIP cannot make a channel to a phone with no contact (FIELD-NOTES).
            raise SimError(500, "Allocation failed", key="error")
        ch = self.new_channel(f"{endpoint}-{self.ids.suffix()}", channel_id=channel_id, state="Down",
                              caller_number=caller_id, kind="originated", exten="s", context="default")
        ch.subscribed_app = app
        self.spawn(self._ring(ch, device, app, args, timeout_s), f"originate:{ch.id}")
        return ch

    async def _ring(self, ch: SimChannel, device: Endpoint, app: str, args: list[str], timeout_s: int) -> None:
        if device.mode == "unavailable":
            # The call cannot be placed at all: Asterisk's dialler announces no Dial.
            await asyncio.sleep(0)
            return self.hangup(ch, 20)
        await asyncio.sleep(0)
        self._dial(ch, "")  # the call is placed
        self.set_state(ch, "Ringing")
        if device.mode == "busy":
            await asyncio.sleep(min(device.answer_after_s, timeout_s))
            return self._dial_failed(ch, "BUSY", 17)
        if device.mode == "no_answer" or device.answer_after_s > timeout_s:
            await asyncio.sleep(timeout_s)
            return self._dial_failed(ch, "NOANSWER", 19)
        if device.mode == "manual":
            ch.pickup = asyncio.Event()
            try:
                await asyncio.wait_for(ch.pickup.wait(), timeout_s)
            except TimeoutError:
                return self._dial_failed(ch, "NOANSWER", 19)
        await asyncio.sleep(device.answer_after_s)
        if ch.hangup_requested:
            return
        self.set_state(ch, "Up")
        self._dial(ch, "ANSWER")
        try:
            self.enter_stasis(ch, app, args)
        except SimError:
            self.hangup(ch, 16)

    def _dial(self, ch: SimChannel, status: str) -> None:
        """``Dial`` for an originated channel (the peer; ARI's originate has no caller):
        ``""`` when the call is placed, then how it ended (FIELD-NOTES)."""
        # The dial string is what follows the technology ("1001" of PJSIP/1001), as ast_dial has it.
        resource = ch.name.rsplit("-", 1)[0].partition("/")[2]
        self.apps.emit(ch.subscribed_app, "Dial", peer=ch.to_json(), dialstring=resource, dialstatus=status)

    def _dial_failed(self, ch: SimChannel, status: str, cause: int) -> None:
        if not ch.hangup_requested:  # hung up over ARI meanwhile: that was the end of it
            self._dial(ch, status)
            self.hangup(ch, cause)

    def external_media(self, app: str, external_host: str | None, fmt: str, transport: str,
                       encapsulation: str, channel_id: str | None) -> SimChannel:
        if not self.apps.connected(app):
            raise SimError(400, f"Stasis application {app} is not registered")
        if transport != "udp" or encapsulation != "rtp":
            raise SimError(501, "Only transport=udp with encapsulation=rtp is supported by this stand-in")
        host, sep, port = (external_host or "").rpartition(":")
        if not sep or not host or not port.isdigit():
            raise SimError(400, "external_host is required and must be host:port")
        if fmt not in ("slin16", "ulaw"):
            raise SimError(400, f"Unsupported format {fmt!r} (the stand-in sends slin16 or ulaw)")
        ch = self.new_channel(f"UnicastRTP/{external_host}-0x{uuid.uuid4().hex[:12]}", channel_id=channel_id,
                              state="Up", kind="external_media", exten="s", context="default")
        ch.external_host, ch.media_format = (host, int(port)), fmt
        self.media_channel_ids.add(ch.id)
        ch.variables.update({"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "0"})
        # Its StasisStart comes after the answer to this request, once the media path is
        # set up (FIELD-NOTES): until then the channel cannot join a bridge (422).
        asyncio.get_running_loop().call_later(self.media_setup_s, self._media_enters_stasis, ch, app)
        return ch

    def _media_enters_stasis(self, ch: SimChannel, app: str) -> None:
        if ch.hangup_requested:
            return
        try:
            self.enter_stasis(ch, app, [])
        except SimError:
            self.hangup(ch, 16)

    def snoop(self, channel_id: str, app: str, spy: str, whisper: str, args: list[str], snoop_id: str | None) -> SimChannel:
        if spy == "none" and whisper == "none":
            raise SimError(400, "Direction must be specified for at least spy or whisper")
        target = self.channel(channel_id)
        if not self.apps.connected(app):
            raise SimError(400, f"Stasis application {app} is not registered")
        ch = self.new_channel(f"Snoop/{target.id}-{self.ids.suffix()}", channel_id=snoop_id, state="Up",
                              kind="snoop", exten="s", context="default")
        ch.snoop_target, ch.snoop_spy, ch.snoop_whisper = target.id, spy, whisper
        asyncio.get_running_loop().call_soon(self._snoop_enters_stasis, ch, app, args)
        return ch

    def _snoop_enters_stasis(self, ch: SimChannel, app: str, args: list[str]) -> None:
        if not ch.hangup_requested:
            self.enter_stasis(ch, app, args)

    # --- playbacks and moh on channels -------------------------------------------------

    def play(self, target_uri: str, media: list[str], lang: str | None, playback_id: str | None,
             default_lang: str) -> SimPlayback:
        playback = SimPlayback(id=playback_id or str(uuid.uuid4()), media=media, target_uri=target_uri,
                               language=lang or default_lang)
        self.player.start(playback)
        return playback

    def moh_heard(self, moh_class: str | None) -> str | None:
        """The class whose music a caller hears when ``moh_class`` is asked for, or ``None``.

        As res_musiconhold: a class that does not exist falls back to ``default``; with no
        ``default`` either, Asterisk only logs "Music on Hold class ... not found" and the
        caller hears nothing at all (FIELD-NOTES), though the request answered 204.
        """
        if moh_class is None:
            return None
        for name in (moh_class, "default"):
            if name in self.moh_classes:
                return name
        return None

    def start_moh(self, channel_id: str, moh_class: str) -> None:
        ch = self.stasis_channel(channel_id)
        ch.moh_class = moh_class
        self._music_starts(ch, moh_class)

    def stop_moh(self, channel_id: str) -> None:
        self.stasis_channel(channel_id).moh_class = None

    def start_bridge_moh(self, bridge_id: str, moh_class: str) -> None:
        bridge = self.bridge(bridge_id)
        bridge.moh_class = moh_class
        for channel_id in bridge.channels:
            self._music_starts(self.channels[channel_id], moh_class)

    def stop_bridge_moh(self, bridge_id: str) -> None:
        self.bridge(bridge_id).moh_class = None

    def _music_starts(self, ch: SimChannel, moh_class: str) -> None:
        heard = self.moh_heard(moh_class)
        if heard is None:
            log.info("Music on Hold class '%s' not found: channel %s hears silence", moh_class, ch.id)
        elif ch.call is not None:
            ch.call.heard(f"moh:{heard}")

    # --- bridges ------------------------------------------------------------------------

    def create_bridge(self, bridge_type: str, bridge_id: str | None, name: str) -> SimBridge:
        types = [t.strip() for t in bridge_type.split(",") if t.strip()] or ["mixing"]
        main = "holding" if "holding" in types else "mixing"
        bridge_id = bridge_id or str(uuid.uuid4())
        if bridge_id in self.bridges:
            raise SimError(409, "Bridge with given id already exists")
        # Like Asterisk, a bridge made over REST belongs to no application until one of
        # its channels joins: then that channel's application is subscribed to it.
        bridge = SimBridge(id=bridge_id, name=name, bridge_type=main)
        self.bridges[bridge.id] = bridge
        return bridge

    def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        bridge = self.bridge(bridge_id)
        chans = []
        for channel_id in channel_ids:
            ch = self.channels.get(channel_id)
            if ch is None:
                raise SimError(400, "Channel not found")
            if ch.stasis_app is None:
                raise SimError(422, "Channel not in Stasis application")
            chans.append(ch)
        for ch in chans:
            if ch.bridge_id == bridge.id:
                continue
            if ch.bridge_id is not None:
                self._remove_from_bridge(ch)
            ch.bridge_id = bridge.id
            bridge.channels.append(ch.id)
            bridge.app = bridge.app or ch.subscribed_app
            self.apps.emit(bridge.app or ch.subscribed_app, "ChannelEnteredBridge",
                           bridge=bridge.to_json(), channel=ch.to_json())
            if bridge.moh_class is not None:
                self._music_starts(ch, bridge.moh_class)

    def remove_from_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        bridge = self.bridge(bridge_id)
        for channel_id in channel_ids:
            ch = self.channels.get(channel_id)
            if ch is None:
                raise SimError(400, "Channel not found")
            if ch.bridge_id != bridge.id:
                raise SimError(422, "Channel not in this bridge")
        for channel_id in channel_ids:
            self._remove_from_bridge(self.channels[channel_id])

    def _remove_from_bridge(self, ch: SimChannel) -> None:
        bridge = self.bridges.get(ch.bridge_id or "")
        ch.bridge_id = None
        if bridge is None or ch.id not in bridge.channels:
            return
        bridge.channels.remove(ch.id)
        self.apps.emit(bridge.app or ch.subscribed_app, "ChannelLeftBridge",
                       bridge=bridge.to_json(), channel=ch.to_json())

    def destroy_bridge(self, bridge_id: str) -> None:
        bridge = self.bridge(bridge_id)
        self.player.stop_target(f"bridge:{bridge.id}")
        self.recorder.stop_target(f"bridge:{bridge.id}")
        for channel_id in list(bridge.channels):
            self._remove_from_bridge(self.channels[channel_id])
        del self.bridges[bridge.id]
        self.apps.emit(bridge.app, "BridgeDestroyed", bridge=bridge.to_json())

    # --- shutdown -----------------------------------------------------------------------

    async def close(self) -> None:
        for ch in list(self.channels.values()):
            self.hangup(ch, 16)
        await cancel_and_wait(list(self._tasks), what="the stand-in's tasks")
