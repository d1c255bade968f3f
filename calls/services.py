"""The call core's logic: start, drive, resume and end call flows.

The handlers in :mod:`ivr.stasis` call into :class:`CallService`; every method runs
inside the caller's event FIFO (see :mod:`ari.dispatcher`), so no two of them
ever run at once for the same call. Features hand their own inputs to a call with
:meth:`CallService.deliver`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from enum import IntEnum

from ari.dispatcher import Dispatcher, Resynchronized
from ari.errors import AriError
from ari.models import Channel
from calls.call import Call, CallServices
from calls.flow import CallFlow, Ended, Reaction, State
from calls.registry import StateRegistry
from calls.speech import SpeechEvent
from calls.stasis_args import InboundArgs, is_helper_id
from calls.store import CallState
from core.privacy import mask_phone
from core.vocabulary import utcnow

log = logging.getLogger(__name__)

#: Hang-up cause of a call whose channel was gone when we (re)connected: it ended while we were
#: not listening (ARI replays nothing), after the ``ended_at`` it is given (see resync).
GONE_AT_RESYNC = "found gone at resync"


class HangupCause(IntEnum):
    """How much an event that ends a call knows of why: the call record keeps the cause of
    the most knowing one. ``ChannelDestroyed`` has Asterisk's final cause and text; a hang-up
    request may or may not carry a cause (a caller's BYE gives one without, then one with,
    FIELD-NOTES); ``StasisEnd`` only says that the channel left us."""

    NONE = 0
    LEFT = 1
    REQUEST = 2
    DESTROYED = 3


#: Ended calls whose ChannelDestroyed has not come yet, kept for their final cause (it follows
#: within milliseconds; a lost one is dropped at the next resync, or the oldest beyond this).
MAX_ENDING = 10_000


class CallService:
    """Starts, drives, resumes and ends the flows of the calls in our application.

    ``states``: the features' states by name (a stored call resumes in its own) and the one
    new inbound calls begin in.
    """

    def __init__(self, services: CallServices, states: StateRegistry, dispatcher: Dispatcher, app_name: str) -> None:
        self.svc = services
        self._states = states
        self._dispatcher = dispatcher
        self._app = app_name
        self.flows: dict[str, CallFlow] = {}
        #: Calls ended before their ChannelDestroyed: the state (for its record) and how much
        #: its hang-up cause is known (see HangupCause), by channel id.
        self._ending: dict[str, tuple[CallState, HangupCause]] = {}
        self.calls_started = 0

    # --- new and resumed calls ---------------------------------------------------

    async def start_call(self, channel: Channel, args: InboundArgs) -> None:
        if channel.id in self.flows:
            return  # a duplicate StasisStart (e.g. after a resync raced the event)
        state = CallState(
            call_id=str(uuid.uuid4()),
            channel_id=channel.id,
            hotline_number=args.hotline_number,
            business_line=args.business_line,
            area_code=args.area_code,
            caller_phone=channel.caller_number,
            language=self.svc.language,
            started_at=utcnow(),
        )
        call = Call(state, self.svc)
        call.answered = channel.state == "Up"
        flow = CallFlow(call, self._states.first())
        self.flows[channel.id] = flow
        self.calls_started += 1
        log.info(
            "call %s from %s on %s (%s)",
            state.call_id,
            mask_phone(channel.caller_number),
            args.hotline_number,
            args.business_line,
        )
        # Answer (unless the dialplan has) and first prompt go out before any storage round
        # trip (latency target); begin() persists the new call after them.
        await flow.begin()
        await self._follow(channel)

    async def _follow(self, channel: Channel) -> None:
        """Ask Asterisk for the caller's channel events until it is destroyed. An application
        hears of a channel only while it is in Stasis: without this, a caller's hang-up ends
        with StasisEnd and the final cause (ChannelDestroyed) never comes
        (docs/asterisk-behaviour.md). After the first prompt: off the caller's latency path.
        Nothing else brings them: the desktops' phones follow only the agents' own endpoints,
        not the callers' trunk (``endpoint:PJSIP`` would send every event of the call twice)."""
        channel_id = channel.id
        try:
            await self.svc.ari.subscribe(self._app, f"channel:{channel_id}")
        except AriError as exc:  # gone already: its events say so; anything else costs only the cause
            log.debug("following channel %s failed: %s", channel_id, exc)

    async def adopt(self, state: CallState, first: State) -> None:
        """Start a flow for a call we place ourselves (a callback): its channel's id is chosen
        by us, so its events come to this flow's own FIFO."""
        flow = CallFlow(Call(state, self.svc), first)
        self.flows[state.channel_id] = flow
        await flow.begin()

    async def resume_call(self, channel: Channel) -> None:
        """A channel ARI says is in our application, but no flow in memory: after a restart."""
        if channel.id in self.flows:
            return
        stored = await self.svc.store.load(channel.id)
        if stored is None:
            # Its StasisStart was lost (we died just after Asterisk sent it): start afresh.
            try:
                args = InboundArgs.parse(channel.stasis_args())
            except ValueError:
                return  # not an inbound hotline call (a media or agent leg): not ours here
            log.info("resync: picking up call on channel %s that we never saw start", channel.id)
            await self.start_call(channel, args)
            return
        if stored.ended_at is not None:
            return  # ended (its channel goes too): the resync writes its record once it is gone
        call = Call(stored, self.svc)
        call.music_on = None  # whatever the process before us started is still playing
        flow = CallFlow(call, self._states.restore(stored))
        self.flows[channel.id] = flow
        log.info("resync: resuming call %s in state %s", stored.call_id, stored.state)
        await flow.resume()

    # --- inputs -------------------------------------------------------------------

    async def dtmf(self, channel_id: str, digit: str) -> None:
        flow = self.flows.get(channel_id)
        if flow is not None:
            await flow.dtmf(digit)

    async def playback_finished(self, channel_id: str, playback_id: str) -> None:
        flow = self.flows.get(channel_id)
        if flow is not None:
            await flow.playback_finished(playback_id)

    async def timer(self, channel_id: str, name: str, token: int) -> None:
        flow = self.flows.get(channel_id)
        if flow is not None:
            await flow.timer(name, token)

    async def speech(self, channel_id: str, event: SpeechEvent) -> None:
        flow = self.flows.get(channel_id)
        if flow is not None:
            await flow.speech(event)

    async def helper_entered(self, channel_id: str, helper_id: str) -> None:
        """A channel we made for a call (its listener) entered Stasis."""
        flow = self.flows.get(channel_id)
        if flow is None:
            # The call ended while Asterisk was making the channel: drop it.
            await self._hangup_quietly(helper_id)
            return
        listener = flow.call.listener
        if listener is not None and not listener.closed and helper_id in listener.helper_ids:
            await listener.helper_entered(helper_id)
            return
        await flow.react(lambda state, call: state.on_helper_entered(call, helper_id))

    async def helper_gone(self, channel_id: str, helper_id: str, cause: int) -> None:
        flow = self.flows.get(channel_id)
        if flow is not None:
            await flow.react(lambda state, call: state.on_helper_gone(call, helper_id, cause))

    async def hold(self, channel_id: str, holder_id: str, *, held: bool, music_class: str | None) -> None:
        """``holder_id`` (the caller's channel, or one made for the call such as the agent's leg)
        put the call on hold from its phone, or took it back."""
        flow = self.flows.get(channel_id)
        if flow is not None:
            await flow.react(lambda state, call: state.on_hold(call, holder_id, held, music_class))

    async def deliver(self, channel_id: str, reaction: Reaction) -> bool:
        """Hand a feature's input to the call's flow; False when no such call lives here."""
        flow = self.flows.get(channel_id)
        if flow is None:
            return False
        await flow.react(reaction)
        return True

    async def _hangup_quietly(self, channel_id: str) -> None:
        try:
            await self.svc.ari.hangup(channel_id)
        except AriError:
            pass  # already gone

    # --- the end of a call --------------------------------------------------------

    async def end_call(self, channel_id: str, cause: str | None, *, rank: HangupCause = HangupCause.LEFT) -> None:
        """The caller's channel left us (hang-up, StasisEnd or destroyed): close the record.

        The first of these events ends the call; ``cause`` (None: the event does not say) goes
        on the record, and a later event of the same channel that knows more (``rank``)
        replaces it: Asterisk's final cause in ChannelDestroyed wins.
        """
        flow = self.flows.pop(channel_id, None)
        self.svc.timers.cancel_all(channel_id)
        if flow is None:
            self._later_cause(channel_id, cause, rank)
            return
        await flow.call.close_listener()
        if self.svc.listeners is not None:
            self.svc.listeners.forget(channel_id)
        data = flow.call.data
        outcome = flow.state.outcome_on_hangup
        # The call's end is known before the state lets go of what it holds: a queue's script
        # that ends the agent's part stores the ended call with its own change (issue 15).
        self._close(data, outcome=data.outcome or outcome, cause=cause)
        try:
            await flow.state.on_caller_gone(flow.call)
        except Exception:
            # Whatever the state held, the call record must still be closed below.
            log.exception("call %s: releasing %s after the hang-up failed", flow.call.data.call_id, flow.state.name)
        await self._finish(data, outcome=data.outcome or outcome, cause=cause)
        flow.state = Ended()
        # The agent legs and bridges the call had routed to its FIFO: else one entry each a call
        # for the life of the process.
        self._dispatcher.release(channel_id)
        if rank < HangupCause.DESTROYED:  # more may come: the channel's last event is its destruction
            if len(self._ending) >= MAX_ENDING:
                self._ending.pop(next(iter(self._ending)))
            self._ending[channel_id] = (data, rank if cause is not None else HangupCause.NONE)

    def _later_cause(self, channel_id: str, cause: str | None, rank: HangupCause) -> None:
        """An event of a call that has ended already: its cause replaces a less knowing one."""
        ending = self._ending.get(channel_id)
        if ending is None:
            return
        data, known = ending
        final = rank >= HangupCause.DESTROYED
        if final:
            del self._ending[channel_id]
        if cause is None or rank <= known:
            return
        if not final:
            self._ending[channel_id] = (data, rank)
        data.hangup_cause = cause
        self.svc.records.save(data.to_record())
        log.debug("call %s: hang-up cause %s", data.call_id, cause)

    @staticmethod
    def _close(data: CallState, *, outcome: str, cause: str | None) -> None:
        data.ended_at = data.ended_at or utcnow()
        data.outcome = outcome
        data.hangup_cause = data.hangup_cause or cause
        data.state = Ended.name

    async def _finish(self, data: CallState, *, outcome: str, cause: str | None) -> None:
        self._close(data, outcome=outcome, cause=cause)
        # The end goes to Redis (where the live state was) until the record holding it is
        # committed, then the state is deleted: the record waits up to the writer's pause in
        # memory, and a crash meanwhile left nothing to end it by (or the call's last live
        # state, ended at the resync as "found gone"). Now the next resync writes it again.
        await self.svc.store.tell(data)
        self.svc.records.save(data.to_record())
        channel_id = data.channel_id
        self.svc.records.when_written(data.call_id, lambda: self.svc.store.forget_soon(channel_id))
        log.info("call %s ended: %s (%s), path %s", data.call_id, outcome, cause or "cause not given yet",
                 data.menu_path)

    # --- resynchronization ----------------------------------------------------------

    async def resync(self, gone_since: datetime | None = None) -> set[str]:
        """After every (re)connect: reconcile our calls with what ARI says is live; returns
        the ids of the live channels, for other features to reconcile with.

        ``gone_since``: the last moment we knew our calls alive (the connection was lost then,
        or a process that died last wrote its heartbeat then; see :mod:`calls.liveness`). Calls
        found gone end then, not now: they may have been gone for hours."""
        channels = await self.svc.ari.list_channels()
        await self._sweep_helpers(channels)
        ours = {c.id: c for c in channels if c.in_stasis_app(self._app) and not is_helper_id(c.id)}
        live_ids = {c.id for c in channels}
        # Flows in memory whose channel vanished while we were not listening.
        for channel_id in [cid for cid in self.flows if cid not in live_ids]:
            self._ended_while_away(self.flows[channel_id].call.data, gone_since)
            await self.end_call(channel_id, GONE_AT_RESYNC)
        # Ended calls whose ChannelDestroyed was lost with the connection: their cause stays.
        for channel_id in [cid for cid in self._ending if cid not in live_ids]:
            del self._ending[channel_id]
        # Calls stored in Redis whose channel is gone (we were down when they hung up).
        for channel_id in await self.svc.store.live_channel_ids() - live_ids:
            stored = await self.svc.store.load(channel_id)
            if stored is None:
                await self.svc.store.delete(channel_id)
                continue
            if stored.ended_at is not None:  # ended, its record not yet committed when we died
                await self._finish(stored, outcome=stored.outcome or Ended.name, cause=stored.hangup_cause)
                continue
            outcome = self._states.restore(stored).outcome_on_hangup
            self._ended_while_away(stored, gone_since)
            await self._finish(stored, outcome=outcome, cause=GONE_AT_RESYNC)
        # Live channels: resume each in its own FIFO, in order with its later events.
        for channel in ours.values():
            self._dispatcher.post(
                Resynchronized(type="Resynchronized", application=self._app, timestamp="", channel=channel)
            )
        log.info("resync: %d channel(s) in %s, %d flow(s) live", len(ours), self._app, len(self.flows))
        return live_ids

    @staticmethod
    def _ended_while_away(data: CallState, gone_since: datetime | None) -> None:
        """A call found gone ended at ``gone_since`` (without it: now, in _finish), never before
        a moment the call itself recorded (it may have started after the last heartbeat)."""
        if gone_since is None or data.ended_at is not None:
            return
        known = [t for t in (data.started_at, data.queued_at, data.answered_at) if t is not None]
        data.ended_at = max([gone_since, *known])

    async def _sweep_helpers(self, channels: list[Channel]) -> None:
        """Hang up listener channels and bridges that no live call owns (left by a dead process)."""
        owned = self.svc.listeners.owned_ids() if self.svc.listeners is not None else set()
        stale = [c.id for c in channels if is_helper_id(c.id) and c.id not in owned]
        for channel_id in stale:
            await self._hangup_quietly(channel_id)
        for bridge in await self.svc.ari.list_bridges():
            if is_helper_id(bridge.id) and bridge.id not in owned:
                try:
                    await self.svc.ari.destroy_bridge(bridge.id)
                except AriError:
                    pass
        if stale:
            log.info("resync: hung up %d listener channel(s) no call owns any more", len(stale))

    async def close(self) -> None:
        self.flows.clear()
        self._ending.clear()

