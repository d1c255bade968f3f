"""The stand-in's switch: channels and bridges, with Asterisk 22's rules and event order.

The REST views (:mod:`devtools.pbx_sim.rest`) and the scripted callers
(:mod:`devtools.pbx_sim.callers`) drive this class; it raises :class:`SimError` with the
status and message Asterisk answers with, and emits events in the order a real
Asterisk 22 was seen to (FIELD-NOTES, docs/asterisk-behaviour.md, and the conformance
suite in tests/conformance that runs the same scenarios on both).

Who hears what is Asterisk's subscription model: an application hears a channel's events
while it is subscribed to the channel's topic — by having it in Stasis (until StasisEnd),
by having originated it over ARI (until it is destroyed), or by subscribing explicitly —
and once more through every subscription to the channel's PJSIP endpoint. So a caller
who hangs up is heard up to its ``StasisEnd`` and no further, unless the application asked
for more. Bridge events go to the applications following the bridge; ``StasisStart`` and
``StasisEnd`` to the channel's Stasis application, once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import uuid
from pathlib import Path
from typing import Any, TypedDict

from core.tasks import cancel_and_wait
from devtools.pbx_sim.apps import Applications
from devtools.pbx_sim.dialplan import Dialplan
from devtools.pbx_sim.playbacks import Player, Recorder, SoundLibrary
from devtools.pbx_sim.state import Ids, SimBridge, SimChannel, SimError, SimPlayback, SimRecording, sip_call_id

log = logging.getLogger(__name__)

#: Q.850 causes and the texts Asterisk gives them.
CAUSES: dict[int, str] = {
    0: "Unknown", 1: "Unallocated (unassigned) number", 16: "Normal Clearing", 17: "User busy",
    18: "No user responding", 19: "User alerting, no answer", 20: "Subscriber absent",
    21: "Call Rejected", 26: "Answered elsewhere", 28: "Invalid number format (addr incomplete)",
    31: "Normal, unspecified", 34: "Circuit/channel congestion", 38: "Network out of order",
    58: "Bearer capability not available", 127: "Interworking, unspecified",
}
#: Asterisk's hang-up cause -> the SIP status chan_pjsip gives it (hangup_cause2sip); a
#: PJSIP channel ending with one of these reports it as ``tech_cause``.
SIP_STATUS: dict[int, int] = {
    1: 404, 2: 404, 3: 404, 17: 486, 18: 408, 19: 480, 20: 480, 21: 403, 22: 410, 23: 302, 28: 484,
    29: 501, 31: 480, 34: 503, 38: 500, 42: 503, 58: 488, 66: 503, 127: 500,
}
#: Soft hang-up flags (AST_SOFTHANGUP_*), which ``ChannelHangupRequest`` reports as its
#: ``cause`` when ``soft`` is true: not Q.850 causes. EXPLICIT: a hang-up asked for over ARI;
#: APPUNLOAD: the channel's dialplan ended (Stasis() returned into a hung-up channel).
SOFTHANGUP_EXPLICIT = 32
SOFTHANGUP_APPUNLOAD = 16
#: The media statistics chan_pjsip sets on a channel that had media, as it hangs up.
RTP_STATS = ("RTPAUDIOQOS", "RTPAUDIOQOSJITTER", "RTPAUDIOQOSLOSS", "RTPAUDIOQOSRTT", "RTPAUDIOQOSMES")
#: ``DELETE /channels/{id}?reason=`` -> cause code.
HANGUP_REASONS: dict[str, int] = {
    "normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 19, "rejected": 21,
    "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28, "codec_mismatch": 58,
    "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}


class TechCause(TypedDict, total=False):
    """A PJSIP channel's SIP status of its end, in an event only once it has one."""

    tech_cause: int


class HangupCauses(TechCause, total=False):
    """A hang-up request's causes, each only when the channel has it (Asterisk leaves them out)."""

    cause: int


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
        endpoint_options: dict[str, dict[str, str]] | None = None,
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
        #: pjsip.conf's options of those endpoints (``PJSIP/1001`` -> ``context``, ``callerid``,
        #: ``moh_suggest`` ...): what Asterisk fills an agent leg's channel with.
        self.endpoint_options = dict(endpoint_options or {})
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
        #: The dialplan the calls run (the server sets it): continue finds its labels there.
        self.dialplan: Dialplan | None = None

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

    def channel_audience(self, ch: SimChannel) -> dict[str, int]:
        """Application -> how many copies of an event on ``ch``'s topic it gets: one for its
        subscription to the channel, one more per subscription to the channel's endpoint."""
        audience = {app: 1 for app, count in ch.subscriptions.items() if count > 0}
        if ch.endpoint is not None:
            for app, copies in self.apps.endpoint_audience(ch.endpoint).items():
                audience[app] = audience.get(app, 0) + copies
        return audience

    def emit_channel(self, ch: SimChannel, event_type: str, *, key: str = "channel", **extra: Any) -> None:
        """An event on the channel's topic, to everyone subscribed to it (``key``: ``peer`` for Dial)."""
        snapshot = ch.to_json()
        for app, copies in self.channel_audience(ch).items():
            self.apps.emit(app, event_type, copies, **{key: snapshot}, **extra)

    def emit_bridge(self, bridge: SimBridge, event_type: str, **extra: Any) -> None:
        """An event on the bridge's topic, once to each application following the bridge."""
        snapshot = bridge.to_json()
        for app, count in list(bridge.subscribers.items()):
            if count > 0:
                self.apps.emit(app, event_type, bridge=snapshot, **extra)

    def _emit_playback(self, event_type: str, playback: SimPlayback) -> None:
        self._emit_on_target(playback.target_uri, event_type, playback=playback.to_json())
        if event_type == "PlaybackFinished" and playback.target_uri.startswith("channel:"):
            ch = self.channels.get(playback.target_uri[len("channel:"):])
            if ch is not None and ch.call is not None:
                ch.call.playback_finished(playback.media[: playback.index + 1], stopped=playback.stopped)

    def _emit_recording(self, event_type: str, recording: SimRecording) -> None:
        self._emit_on_target(recording.target_uri, event_type, recording=recording.to_json())

    def _emit_on_target(self, target_uri: str, event_type: str, **payload: Any) -> None:
        """Playbacks and recordings publish on their target's topic (``channel:`` or ``bridge:``)."""
        kind, _, ident = target_uri.partition(":")
        if kind == "channel":
            ch = self.channels.get(ident)
            audience = self.channel_audience(ch) if ch is not None else {}
        else:
            bridge = self.bridges.get(ident)
            audience = {a: 1 for a, n in bridge.subscribers.items() if n > 0} if bridge is not None else {}
        for app, copies in audience.items():
            self.apps.emit(app, event_type, copies, **payload)

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
        if name.startswith("PJSIP/"):
            ch.endpoint = name.rsplit("-", 1)[0]
            ch.protocol_id = sip_call_id()
        self.channels[ch.id] = ch
        if ch.endpoint is not None:
            # Who follows the endpoint sees its channel list change, then the channel.
            self._endpoint_changed(ch.endpoint)
            self.emit_channel(ch, "ChannelCreated")
        return ch

    def _endpoint_changed(self, endpoint: str) -> None:
        technology, _, resource = endpoint.partition("/")
        self.apps.emit_endpoint(technology, resource, "EndpointStateChange", endpoint=self.endpoint_json(endpoint))

    def endpoint_option(self, endpoint: str | None, option: str, default: str = "") -> str:
        return self.endpoint_options.get(endpoint or "", {}).get(option, default)

    def subscribe_channel(self, ch: SimChannel, app: str) -> None:
        ch.subscriptions[app] += 1

    def unsubscribe_channel(self, ch: SimChannel, app: str) -> None:
        if ch.subscriptions[app] > 0:
            ch.subscriptions[app] -= 1

    def enter_stasis(self, ch: SimChannel, app: str, args: list[str]) -> None:
        """Put a channel into ``app`` and announce it; ``SimError(409)`` if the app is absent."""
        if not self.apps.connected(app):
            raise SimError(409, f"Stasis application {app} is not registered")
        ch.stasis_app = ch.subscribed_app = app
        self.subscribe_channel(ch, app)
        if ch.call is None:
            # Channels made over ARI sit in Stasis() like dialled ones (the resync reads this).
            ch.app_name, ch.app_data = "Stasis", ",".join([app, *args])
        ch.stasis_exit = asyncio.get_running_loop().create_future()
        # StasisStart and StasisEnd come from the application itself: once, whatever else it follows.
        self.apps.emit(app, "StasisStart", args=list(args), channel=ch.to_json())

    def _leave_stasis(self, ch: SimChannel, how: str) -> None:
        app = ch.stasis_app
        if app is None:
            return
        if ch.bridge_id is not None:
            self._remove_from_bridge(ch, hung_up=how == "hangup")
        self.player.stop_target(f"channel:{ch.id}")
        self.apps.emit(app, "StasisEnd", channel=ch.to_json())
        self.unsubscribe_channel(ch, app)
        ch.stasis_app = None
        if ch.kind in ("originated", "external_media"):
            # Back in the dialler that made it, as Asterisk shows it from then on.
            ch.app_name, ch.app_data = "AppDial2", "(Outgoing Line)"
        if ch.stasis_exit is not None and not ch.stasis_exit.done():
            ch.stasis_exit.set_result(how)

    def set_state(self, ch: SimChannel, state: str) -> None:
        if ch.state != state:
            ch.state = state
            if state == "Up" and ch.endpoint is not None:
                ch.had_media = True
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
        """``POST``/``DELETE /channels/{id}/hold``: Asterisk indicates hold towards the channel
        and announces nothing (``ChannelHold`` is for a hold that comes *from* the phone)."""
        ch = self.stasis_channel(channel_id)
        if ch.hangup_requested:
            raise SimError(412, "Channel in invalid state")
        ch.held = on

    def phone_hold(self, ch: SimChannel, on: bool, music_class: str | None = None) -> None:
        """The phone on ``ch`` holds its call (a re-INVITE ``a=sendonly``) or resumes it:
        ``ChannelHold`` with the class its endpoint suggests (``moh_suggest``, else
        ``default``), or ``ChannelUnhold``; nothing else happens (FIELD-NOTES)."""
        if on:
            suggested = music_class or self.endpoint_option(ch.endpoint, "moh_suggest", "default")
            self.emit_channel(ch, "ChannelHold", musicclass=suggested)
        else:
            self.emit_channel(ch, "ChannelUnhold")

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

    def continue_in_dialplan(self, channel_id: str, *, context: str = "", extension: str = "",
                             priority: int | None = None, label: str = "") -> None:
        """Back into the dialplan, as Asterisk's ``POST /channels/{id}/continue`` does
        (res/ari/resource_channels.c): nothing given, at the next priority; else at ``context``
        (default: the channel's, and then the extension defaults to the channel's; with a context
        given, to ``s``), at ``label`` (a number is a priority; one that is not there is 404, 0 is
        400), else ``priority``, else 1. A place that does not exist is not checked: the dialplan
        then ends the call, as Asterisk's pbx does."""
        ch = self.stasis_channel(channel_id)
        if context or extension or priority or label:
            where = (context, extension or "s") if context else (ch.context, extension or ch.exten)
            if label:
                number = re.match(r"\s*[+-]?\d+", label)
                if number is not None:
                    priority = int(number.group())
                else:
                    found = self.dialplan.find_extension(*where) if self.dialplan is not None else None
                    if found is None or label not in found.labels:
                        raise SimError(404, "Requested label can not be found")
                    priority = found.labels[label]
                if priority == 0:
                    raise SimError(400, "Requested priority is illegal")
            ch.continue_at = (*where, priority or 1)
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
        """Hang a channel up with ``cause`` from inside the switch (a dial that failed, the
        dialplan's ``Hangup(cause)``, shutting down): ``ChannelHangupRequest`` with that cause.

        ``by_far_end`` is the phone's BYE: see :meth:`phone_hangs_up`.
        """
        if by_far_end:
            self.phone_hangs_up(ch, None)
            return
        if ch.hangup_requested:
            return
        ch.hangup_requested = True
        self._set_cause(ch, cause)
        self._media_statistics(ch)
        self.emit_channel(ch, "ChannelHangupRequest", **self._causes(ch))
        self._end(ch)

    def dialplan_hangup(self, ch: SimChannel, cause: int) -> None:
        """The dialplan's ``Hangup(cause)`` (app_hangup in pbx.c): the cause is set, the dialplan
        ends, a soft hang-up (APPUNLOAD) without the SIP status yet, then chan_pjsip ends the
        session (media statistics) and the channel is destroyed with the cause and its status
        (seen on Asterisk 22.10.1: tests/conformance/test_continue.py)."""
        if ch.hangup_requested:
            return
        ch.hangup_requested = True
        self._set_cause(ch, cause, force=True)
        self.emit_channel(ch, "ChannelHangupRequest", cause=SOFTHANGUP_APPUNLOAD, soft=True)
        self._media_statistics(ch)
        self._end(ch, dialplan_ended=True)

    def phone_hangs_up(self, ch: SimChannel, q850_cause: int | None) -> None:
        """The phone sent a BYE, with ``Reason: Q.850;cause=<n>`` when ``q850_cause`` is given.

        chan_pjsip queues the hang-up with the cause the channel has: the Reason header's, or
        16 if it has been in a bridge (leaving one sets it), or none at all — then the
        request carries no cause and the channel is destroyed with cause 0 "Unknown".
        """
        if ch.hangup_requested:
            return
        ch.hangup_requested = True
        if q850_cause is not None:
            self._set_cause(ch, q850_cause, force=True)
        self._media_statistics(ch)
        self.emit_channel(ch, "ChannelHangupRequest", **self._causes(ch))
        self._end(ch)

    def hangup_by_id(self, channel_id: str, reason_code: str | None, reason: str | None) -> None:
        """``DELETE /channels/{id}``: the cause is set, then a soft hang-up (flag 32, EXPLICIT)."""
        ch = self.channel(channel_id)
        if reason_code is not None and reason is not None:
            raise SimError(400, "Only one of reason_code or reason may be given")
        if reason_code is not None:
            if not reason_code.isdigit():
                raise SimError(400, "Invalid reason_code")
            cause = int(reason_code)
        else:
            cause = HANGUP_REASONS.get(reason or "normal", 16)
        if ch.hangup_requested:
            return
        ch.hangup_requested = True
        ch.hangup_cause = cause
        self._media_statistics(ch)
        self.emit_channel(ch, "ChannelHangupRequest", cause=SOFTHANGUP_EXPLICIT, soft=True)
        # chan_pjsip sends the BYE with the cause's SIP status, and remembers it: only the
        # channel's destruction tells it (see _end).
        self._end(ch)

    def _set_cause(self, ch: SimChannel, cause: int, *, force: bool = False) -> None:
        if force or not ch.hangup_cause:
            ch.hangup_cause = cause
            if ch.endpoint is not None:
                ch.tech_cause = SIP_STATUS.get(cause, 0)

    def _causes(self, ch: SimChannel) -> HangupCauses:
        """A hang-up request's causes: the channel's, if it has one, and its SIP status."""
        causes: HangupCauses = {"cause": ch.hangup_cause} if ch.hangup_cause else {}
        if ch.tech_cause:
            causes["tech_cause"] = ch.tech_cause
        return causes

    def _media_statistics(self, ch: SimChannel) -> None:
        """As chan_pjsip ends a session that had media: ``RTPAUDIOQOS*`` on the channel and, on
        a bridged SIP peer, the same ``...BRIDGED``, one after the other."""
        if not ch.had_media:
            return
        bridge = self.bridges.get(ch.bridge_id or "")
        peers = [self.channels[c] for c in bridge.channels if c != ch.id] if bridge else []
        peer = peers[0] if len(peers) == 1 and peers[0].had_media else None
        for name in RTP_STATS:
            self.emit_channel(ch, "ChannelVarset", variable=name, value=_rtp_stats(name))
            if peer is not None:
                self.emit_channel(peer, "ChannelVarset", variable=f"{name}BRIDGED", value=_rtp_stats(name))

    def _end(self, ch: SimChannel, *, dialplan_ended: bool = False) -> None:
        """What follows a hang-up request: out of playbacks, recordings, bridges and Stasis;
        the end of its dialplan (unless it has ended, ``dialplan_ended``); its destruction; for
        a dial in progress, its end."""
        self.recorder.stop_target(f"channel:{ch.id}")
        self._leave_stasis(ch, "hangup")
        self.player.stop_target(f"channel:{ch.id}")
        if ch.bridge_id is not None:
            self._remove_from_bridge(ch, hung_up=True)
        for spy in [c for c in self.channels.values() if c.snoop_target == ch.id]:
            self.hangup(spy, ch.hangup_cause or 16)
        if ch.kind == "caller" and not dialplan_ended:
            # Stasis() returns into a hung-up channel and its dialplan ends (pbx.c): the
            # APPUNLOAD soft hang-up, heard by whoever still follows the channel.
            self.emit_channel(ch, "ChannelHangupRequest", cause=SOFTHANGUP_APPUNLOAD, soft=True,
                              **_tech_cause(ch))
        elif ch.dialling:
            # A channel hung up while it was being dialled: the dial ends unanswered.
            self._dial(ch, "NOANSWER")
        final = ch.hangup_cause
        if ch.endpoint is not None and not ch.tech_cause:
            ch.tech_cause = SIP_STATUS.get(final, 0)
        self.emit_channel(ch, "ChannelDestroyed", cause=final, cause_txt=CAUSES.get(final, "Unknown"),
                          **_tech_cause(ch))
        ch.destroyed = True
        ch.state = "Down"
        ch.subscriptions.clear()
        self.channels.pop(ch.id, None)
        self.media_channel_ids.discard(ch.id)
        if ch.endpoint is not None:
            self._endpoint_changed(ch.endpoint)
        if ch.stasis_exit is not None and not ch.stasis_exit.done():
            ch.stasis_exit.set_result("hangup")
        ch.ended.set()
        if ch.call is not None:
            ch.call.on_destroyed(final)

    # --- endpoints ----------------------------------------------------------------------

    def endpoint_names(self, technology: str | None = None) -> list[str]:
        """Every endpoint, sorted by name as Asterisk lists them."""
        names = set(self.configured_endpoints) | set(self.endpoints)
        return sorted(n for n in names if technology is None or n.partition("/")[0] == technology)

    def endpoint_json(self, name: str) -> dict[str, Any]:
        """The ``Endpoint`` model; ``SimError(404)`` for a technology the stand-in has no phones on."""
        technology, _, resource = name.partition("/")
        if technology != "PJSIP" or not resource:
            raise SimError(404, "Endpoint not found")
        return {
            "technology": technology,
            "resource": resource,
            "state": self.device(name).state,
            "channel_ids": [c.id for c in self.channels.values() if c.endpoint == name],
        }

    def set_registered(self, name: str, registered: bool) -> Endpoint:
        """A phone registers or loses its contact; subscribed applications hear of the change:
        ``ContactStatusChange``, ``EndpointStateChange`` and ``PeerStatusChange`` as res_pjsip
        announces them (docs/asterisk-behaviour.md)."""
        self.endpoint_json(name)  # only PJSIP phones register
        device = self.endpoints.setdefault(name, Endpoint())
        if device.registered == registered:
            return device
        technology, _, resource = name.partition("/")

        def emit(kind: str, **extra: Any) -> None:
            self.apps.emit_endpoint(technology, resource, kind, endpoint=self.endpoint_json(name), **extra)

        contact = {"uri": f"sip:{resource}@127.0.0.1:5060", "aor": resource}
        if registered:
            # The contact is added before the endpoint counts as online, then qualified.
            emit("ContactStatusChange", contact_info={**contact, "contact_status": "NonQualified",
                                                      "roundtrip_usec": "0"})
            device.registered = True
            emit("EndpointStateChange")
            emit("PeerStatusChange", peer={"peer_status": "Reachable"})
            emit("ContactStatusChange", contact_info={**contact, "contact_status": "Reachable",
                                                      "roundtrip_usec": str(random.randint(300, 2000))})
        else:
            device.registered = False
            emit("EndpointStateChange")
            emit("PeerStatusChange", peer={"peer_status": "Unreachable"})
            emit("ContactStatusChange", contact_info={**contact, "contact_status": "Removed", "roundtrip_usec": "0"})
        return device

    def subscribe(self, app: str, sources: list[str], on: bool) -> None:
        """``POST``/``DELETE /applications/{app}/subscription``.

        Asterisk checks every source before it changes anything: a bad scheme is 400, an event
        source that does not exist 422, unsubscribing from one not subscribed 422 too.
        Subscriptions are counted: each subscribe needs its unsubscribe.
        """
        if not self.apps.known(app):
            raise SimError(404, "Application not found")
        if not sources:
            raise SimError(400, "Missing parameter eventSource")
        targets: list[tuple[str, Any]] = []
        for source in sources:
            scheme, _, what = source.partition(":")
            if scheme not in ("channel", "bridge", "endpoint", "deviceState"):
                raise SimError(400, "Invalid event source URI scheme")
            if scheme == "deviceState":
                raise SimError(501, "The stand-in has no device states to subscribe to")
            target: Any
            if scheme == "channel":
                target = self.channels.get(what)
                known = target is not None and target.subscriptions[app] > 0
            elif scheme == "bridge":
                target = self.bridges.get(what)
                known = target is not None and target.subscribers[app] > 0
            else:
                technology, _, resource = what.partition("/")
                target = what if technology == "PJSIP" else None
                known = self.apps.endpoint_sources(app)[what] > 0
            if target is None:
                raise SimError(422, "Event source does not exist")
            if not on and not known:
                raise SimError(422, "Event source was not subscribed to")
            targets.append((scheme, target))
        for scheme, target in targets:
            step = 1 if on else -1
            if scheme == "channel":
                target.subscriptions[app] += step
            elif scheme == "bridge":
                target.subscribers[app] += step
            else:
                self.apps.endpoint_sources(app)[target] += step

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
        # The agent leg is the endpoint's: its context and caller name are pjsip.conf's, its
        # number the callerId given (which is also what it is connected to).
        name, number = _caller_id(self.endpoint_option(endpoint, "callerid"))
        ch = self.new_channel(f"{endpoint}-{self.ids.suffix()}", channel_id=channel_id, state="Down",
                              caller_name=name, caller_number=caller_id or number, connected_number=caller_id,
                              kind="originated", exten="s", priority=1,
                              context=self.endpoint_option(endpoint, "context", "default"),
                              app_name="AppDial2", app_data="(Outgoing Line)")
        # Before the application subscribes, only those who follow the endpoint see the dialler
        # set the channel up.
        self.emit_channel(ch, "ChannelDialplan", dialplan_app="AppDial2", dialplan_app_data="(Outgoing Line)")
        self.emit_channel(ch, "ChannelCallerId", caller_presentation=0,
                          caller_presentation_txt="Presentation Allowed, Not Screened")
        self.emit_channel(ch, "ChannelConnectedLine")
        ch.dialstring = resource
        ch.subscribed_app = app
        self.subscribe_channel(ch, app)
        ch.dialling = True
        self.spawn(self._ring(ch, device, app, args, timeout_s), f"originate:{ch.id}")
        return ch

    async def _ring(self, ch: SimChannel, device: Endpoint, app: str, args: list[str], timeout_s: int) -> None:
        if device.mode == "unavailable":
            # The call cannot be placed at all: Asterisk's dialler announces no Dial.
            await asyncio.sleep(0)
            ch.dialling = False
            return self.hangup(ch, 20)
        await asyncio.sleep(0)
        self._dial(ch, "")  # the call is placed
        self.set_state(ch, "Ringing")
        self._dial(ch, "RINGING")
        if device.mode == "busy":
            await asyncio.sleep(min(device.answer_after_s, timeout_s))
            return self._dial_failed(ch, "BUSY", 17)
        if device.mode == "no_answer" or device.answer_after_s > timeout_s:
            await asyncio.sleep(timeout_s)
            return self._rang_out(ch)
        if device.mode == "manual":
            ch.pickup = asyncio.Event()
            try:
                await asyncio.wait_for(ch.pickup.wait(), timeout_s)
            except TimeoutError:
                return self._rang_out(ch)
        await asyncio.sleep(device.answer_after_s)
        if ch.hangup_requested:
            return
        ch.dialling = False
        self.set_state(ch, "Up")
        self._dial(ch, "ANSWER")
        try:
            self.enter_stasis(ch, app, args)
        except SimError:
            self.hangup(ch, 16)

    def _dial(self, ch: SimChannel, status: str) -> None:
        """``Dial`` for an originated channel (the peer; ARI's originate has no caller):
        ``""`` when the call is placed, ``RINGING``, then how it ended (FIELD-NOTES)."""
        self.emit_channel(ch, "Dial", key="peer", dialstring=ch.dialstring, dialstatus=status, forward="")

    def _rang_out(self, ch: SimChannel) -> None:
        """The originate's ``timeout`` ran out: Asterisk's dialler drops the channel there and
        then — no ``Dial NOANSWER``, no hang-up request — and it is destroyed with cause 19
        (480 for SIP)."""
        if not ch.hangup_requested:
            ch.dialling = False
            ch.hangup_requested = True
            self._set_cause(ch, 19)
            self._end(ch)

    def _dial_failed(self, ch: SimChannel, status: str, cause: int) -> None:
        if not ch.hangup_requested:  # hung up over ARI meanwhile: that was the end of it
            ch.dialling = False
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
        # chan_rtp's channel, dialled like a phone: Down until the dial answers it.
        ch = self.new_channel(f"UnicastRTP/{external_host}-0x{uuid.uuid4().hex[:12]}", channel_id=channel_id,
                              state="Down", kind="external_media", exten="s", context="default",
                              app_name="AppDial2", app_data="(Outgoing Line)")
        ch.external_host, ch.media_format = (host, int(port)), fmt
        ch.dialstring = f"{external_host}/c({fmt})"
        ch.subscribed_app = app
        self.subscribe_channel(ch, app)
        self.media_channel_ids.add(ch.id)
        ch.variables.update({"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1",
                             "UNICASTRTP_LOCAL_PORT": str(random.randrange(10000, 20000, 2))})
        # Its dial and StasisStart come after the answer to this request, once the media path
        # is set up (FIELD-NOTES): until then the channel cannot join a bridge (422).
        asyncio.get_running_loop().call_later(self.media_setup_s, self._media_enters_stasis, ch, app)
        return ch

    def _media_enters_stasis(self, ch: SimChannel, app: str) -> None:
        if ch.hangup_requested:
            return
        self._dial(ch, "")
        self.set_state(ch, "Up")
        self._dial(ch, "ANSWER")
        try:
            self.enter_stasis(ch, app, [])
        except SimError:
            self.hangup(ch, 16)

    def snoop(self, channel_id: str, app: str, spy: str, whisper: str, args: list[str],
              snoop_id: str | None) -> SimChannel:
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
            raise SimError(409, f"Bridge with id '{bridge_id}' already exists")
        # Like Asterisk, a bridge made over REST belongs to no application until one of
        # its channels joins: then that channel's application follows it.
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
            if ch.bridge_id is not None:
                # Even from this very bridge: Asterisk takes it out and puts it back in.
                self._remove_from_bridge(ch)
            ch.bridge_id = bridge.id
            bridge.channels.append(ch.id)
            app = ch.stasis_app or ch.subscribed_app
            bridge.app = bridge.app or app
            if app is not None:
                bridge.subscribers[app] += 1
            self.emit_bridge(bridge, "ChannelEnteredBridge", channel=ch.to_json())
            self._exchange_connected_lines(bridge)
            if bridge.moh_class is not None:
                self._music_starts(ch, bridge.moh_class)

    def _exchange_connected_lines(self, bridge: SimBridge) -> None:
        """Two parties in a bridge are each other's connected line: each channel whose
        connected line changes announces it (``ChannelConnectedLine``), the newest first."""
        if len(bridge.channels) != 2:
            return
        newer, older = (self.channels[c] for c in reversed(bridge.channels))
        for ch, other in ((newer, older), (older, newer)):
            line = (other.caller_name, other.caller_number)
            if (ch.connected_name, ch.connected_number) != line:
                ch.connected_name, ch.connected_number = line
                self.emit_channel(ch, "ChannelConnectedLine")

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

    def _remove_from_bridge(self, ch: SimChannel, *, hung_up: bool = False, announce: bool = True) -> None:
        """Take ``ch`` out of its bridge. Leaving a bridge sets its hang-up cause (16) if it has
        none. Its application stops following the bridge, unless it hung up in it: then
        Asterisk keeps following it (until the bridge is destroyed)."""
        bridge = self.bridges.get(ch.bridge_id or "")
        ch.bridge_id = None
        if bridge is None or ch.id not in bridge.channels:
            return
        bridge.channels.remove(ch.id)
        self._set_cause(ch, 16)
        if announce:
            self.emit_bridge(bridge, "ChannelLeftBridge", channel=ch.to_json())
        app = ch.stasis_app or ch.subscribed_app
        if not hung_up and app is not None and bridge.subscribers[app] > 0:
            bridge.subscribers[app] -= 1

    def destroy_bridge(self, bridge_id: str) -> None:
        bridge = self.bridge(bridge_id)
        self.player.stop_target(f"bridge:{bridge.id}")
        self.recorder.stop_target(f"bridge:{bridge.id}")
        members = [self.channels[c] for c in bridge.channels]
        for ch in members:
            self._remove_from_bridge(ch)
        del self.bridges[bridge.id]
        self.emit_bridge(bridge, "BridgeDestroyed")

    # --- shutdown -----------------------------------------------------------------------

    async def close(self) -> None:
        for ch in list(self.channels.values()):
            self.hangup(ch, 16)
        await cancel_and_wait(list(self._tasks), what="the stand-in's tasks")


def _tech_cause(ch: SimChannel) -> TechCause:
    return {"tech_cause": ch.tech_cause} if ch.tech_cause else {}


def _caller_id(text: str) -> tuple[str, str]:
    """pjsip.conf's ``callerid="Agent 1001" <1001>`` -> ``("Agent 1001", "1001")``."""
    name, _, rest = text.partition("<")
    return name.strip().strip('"'), rest.rstrip(">").strip()


def _rtp_stats(name: str) -> str:
    """A plausible value of an ``RTPAUDIOQOS*`` variable (the stand-in measures no media)."""
    if name == "RTPAUDIOQOS":
        return "ssrc=1;themssrc=2;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;txcount=0;rlp=0;rtt=0.000000"
    return "minrxjitter=000.000000;maxrxjitter=000.000000;avgrxjitter=000.000000;"
