"""ARI event handlers of the IVR, in one table named after the events.

Handlers are thin: they pick the fields out of the typed event and call the call core
(:class:`calls.services.CallService`), which runs each call's flow.
``key`` is the route key the dispatcher ordered the event under (the caller's
channel id for everything about one call).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ari import models as ari
from ari.dispatcher import Resynchronized, TimerFired
from ari.errors import CALL_GONE, AriError, AriUnavailable
from calls.overload import OverloadGuard
from calls.services import CallService, HangupCause
from calls.stasis_args import InboundArgs
from core.privacy import mask_phone

if TYPE_CHECKING:
    from ivr.speech.listener import SpeechDetected

log = logging.getLogger(__name__)

#: The record's cause when the caller's own phone hung up and Asterisk gave no Q.850 cause.
CALLER_HUNG_UP = "caller hung up"
#: The dialplan context a call turned away under overload continues in (extensions.conf): a busy
#: message, a CDR marked ``shed``, a hang-up. bench/side_by_side.py counts its callers by it.
SHED_CONTEXT = "hotline-shed"

Handler = Callable[[str, Any], Awaitable[None]]


class IvrStasis:
    """``guard``: decides whether a new call is taken (None: every call is)."""

    def __init__(self, calls: CallService, guard: OverloadGuard | None = None) -> None:
        self._calls = calls
        self._guard = guard

    def table(self) -> dict[str, Handler]:
        return {
            "StasisStart": self.on_stasis_start,
            "ChannelDtmfReceived": self.on_channel_dtmf_received,
            "PlaybackFinished": self.on_playback_finished,
            "TimerFired": self.on_timer_fired,
            "ChannelHangupRequest": self.on_channel_hangup_request,
            "ChannelHold": self.on_channel_hold,
            "ChannelUnhold": self.on_channel_unhold,
            "StasisEnd": self.on_stasis_end,
            "ChannelDestroyed": self.on_channel_destroyed,
            "Resynchronized": self.on_resynchronized,
            "SpeechDetected": self.on_speech_detected,
        }

    async def on_stasis_start(self, key: str, event: ari.StasisStart) -> None:
        if event.channel.id != key:
            # A channel we made for this call (aliased to it): its listener's media legs.
            await self._calls.helper_entered(key, event.channel.id)
            return
        if key in self._calls.flows:
            # A channel we placed for a call of ours (a callback) answered and entered Stasis.
            await self._calls.helper_entered(key, key)
            return
        try:
            args = InboundArgs.parse(list(event.args))
        except ValueError as exc:
            # Not an inbound hotline call; other features register their own Stasis args.
            log.debug("StasisStart on %s not for the IVR: %s", event.channel.id, exc)
            return
        if self._guard is not None:
            reason = self._guard.admit(event.timestamp)
            if reason is not None:
                await self._shed(event.channel, args, reason)
                return
        await self._calls.start_call(event.channel, args)

    async def _shed(self, channel: ari.Channel, args: InboundArgs, reason: str) -> None:
        """Turn a new call away under overload: one request, and the dialplan does the rest (busy
        message, CDR, hang-up). No flow, nothing stored: the call costs us nothing more."""
        log.debug("call from %s on %s turned away (%s)", mask_phone(channel.caller_number), args.hotline_number,
                  reason)
        ari_ = self._calls.svc.ari
        for _attempt in range(2):
            try:
                await ari_.continue_in_dialplan(channel.id, context=SHED_CONTEXT, extension=args.hotline_number,
                                                priority=1)
                return
            except CALL_GONE:
                return  # the caller hung up meanwhile, or a first try that timed out went through
            except AriUnavailable as exc:  # timed out (overloaded, after all): once more
                problem: AriError = exc
            except AriError as exc:
                problem = exc
                break
        # Left in Stasis with no flow, the caller would wait in silence: hung up busy instead.
        log.debug("turning away channel %s failed (%s): hanging it up", channel.id, problem)
        if self._guard is not None:
            self._guard.not_turned_away()
        try:
            await ari_.hangup(channel.id, reason="busy")
        except AriError:
            pass  # gone already; or Asterisk is unreachable, and the next resync finds the channel

    async def on_channel_dtmf_received(self, key: str, event: ari.ChannelDtmfReceived) -> None:
        await self._calls.dtmf(key, event.digit)

    async def on_playback_finished(self, key: str, event: ari.PlaybackFinished) -> None:
        await self._calls.playback_finished(key, event.playback.id)

    async def on_timer_fired(self, key: str, event: TimerFired) -> None:
        await self._calls.timer(key, event.name, event.token)

    async def on_channel_hold(self, key: str, event: ari.ChannelHold) -> None:
        # The channel's own phone holds: the agent's leg (aliased to the caller) or the caller.
        await self._calls.hold(key, event.channel.id, held=True, music_class=event.musicclass)

    async def on_channel_unhold(self, key: str, event: ari.ChannelUnhold) -> None:
        await self._calls.hold(key, event.channel.id, held=False, music_class=None)

    async def on_channel_hangup_request(self, key: str, event: ari.ChannelHangupRequest) -> None:
        if event.channel.id != key:
            return
        # The call ends at the first request (the agent is released at once), but a real
        # Asterisk's first request for a caller's BYE has no cause (FIELD-NOTES): the cause
        # comes with the next request or ChannelDestroyed, which end_call records then.
        # A soft request's "cause" is a flag (32: an ARI DELETE, 16: the dialplan ended), not a
        # Q.850 cause; a hard one without a cause is the caller's phone hanging up (a BYE with
        # no Reason header), after which Asterisk's final cause is only 0, "Unknown"
        # (docs/asterisk-behaviour.md).
        if event.soft:
            cause = None
        elif event.cause is None:
            cause = CALLER_HUNG_UP
        else:
            cause = f"hangup request (cause {event.cause})"
        await self._calls.end_call(key, cause, rank=HangupCause.REQUEST)

    async def on_stasis_end(self, key: str, event: ari.StasisEnd) -> None:
        if event.channel.id == key:
            await self._calls.end_call(key, "left the application", rank=HangupCause.LEFT)

    async def on_channel_destroyed(self, key: str, event: ari.ChannelDestroyed) -> None:
        if event.channel.id != key:
            await self._calls.helper_gone(key, event.channel.id, event.cause)
            return
        if event.channel.id == key:
            log.debug("channel of %s destroyed: %s", mask_phone(event.channel.caller_number), event.cause_txt)
            # Cause 0 says nothing ("Unknown"): what an earlier event said stays.
            cause = None if not event.cause else f"{event.cause_txt or 'destroyed'} ({event.cause})"
            await self._calls.end_call(key, cause, rank=HangupCause.DESTROYED)

    async def on_speech_detected(self, key: str, event: SpeechDetected) -> None:
        await self._calls.speech(key, event.detected)

    async def on_resynchronized(self, key: str, event: Resynchronized) -> None:
        flow = self._calls.flows.get(event.channel.id)
        if flow is not None:
            # Live here through a reconnect of the events: what it missed meanwhile is not replayed.
            await flow.resync()
            return
        await self._calls.resume_call(event.channel)
