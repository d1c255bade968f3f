"""A call's ears: the caller's voice from Asterisk to the recognizer.

For a call in a listening menu we ask Asterisk for a snoop channel on the caller (``spy=in``:
the caller's voice only, never our own prompts, so a prompt cannot barge itself in) and
an externalMedia channel that sends RTP to a UDP port of ours, and bridge the two. The
caller's own channel stays out of any bridge, so prompts play to it as usual.

Everything is event-driven through the caller's FIFO: we choose the helper channels' ids
and alias them to the caller *before* creating them, so their ``StasisStart`` (which
Asterisk sends after the REST answer — and before which a bridge refuses them with 422)
arrives in order with the call's other events. The RTP pump posts what the recognizer
hears (:class:`SpeechDetected`) into the same FIFO.

Helper ids carry the caller's channel id and a marker (``<caller>-ivr-media-<n>``), so a
restarted application can recognise and sweep the ones a previous process left behind.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ari.dispatcher import Dispatcher
from ari.errors import CALL_GONE, AriError
from ari.models import Event
from ari.rest import AriRest
from calls.speech import Recognized, SpeechEvent
from calls.stasis_args import HELPER_MARK
from ivr.speech.rtp import RtpReceiver

if TYPE_CHECKING:
    from ivr.speech.engine import SpeechEngine, SpeechStream

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class SpeechDetected(Event):
    """The recognizer heard something on a call (posted locally, never sent by Asterisk)."""

    key: str
    detected: SpeechEvent

    def route_key(self) -> str | None:
        return self.key


class Listener:
    """The media pipeline of one call; lives from the first listening menu to the last."""

    def __init__(self, owner: Listeners, key: str, serial: int) -> None:
        self._owner = owner
        self.key = key
        self.snoop_id = f"{key}{HELPER_MARK}snoop-{serial}"
        self.media_id = f"{key}{HELPER_MARK}media-{serial}"
        self.bridge_id = f"{key}{HELPER_MARK}bridge-{serial}"
        self._entered: set[str] = set()
        self._receiver: RtpReceiver | None = None
        self._pump: asyncio.Task[None] | None = None
        self._stream: SpeechStream | None = None
        self.ready = False
        self.closed = False

    @property
    def helper_ids(self) -> tuple[str, str, str]:
        return self.snoop_id, self.media_id, self.bridge_id

    # --- setting up ---------------------------------------------------------------------

    async def start(self) -> bool:
        """Ask Asterisk for the helper channels; False if the caller is gone or ARI refused."""
        o = self._owner
        self._receiver = await RtpReceiver.open(o.format, host=o.bind_host, telephone_band=o.telephone_band)
        for helper in (self.snoop_id, self.media_id):
            o.dispatcher.alias(helper, self.key)
        o.dispatcher.alias(f"bridge:{self.bridge_id}", self.key)
        host = o.advertise_host or self._receiver.address[0]
        try:
            await o.ari.snoop(self.key, app=o.app, spy="in", app_args=["listen"], snoop_id=self.snoop_id)
            await o.ari.external_media(app=o.app, external_host=f"{host}:{self._receiver.address[1]}",
                                       format=o.format, channel_id=self.media_id)
        except AriError as exc:
            if not isinstance(exc, CALL_GONE):
                log.warning("call on %s: cannot listen (%s); DTMF only", self.key, exc)
            await self.close()
            return False
        return True

    async def helper_entered(self, channel_id: str) -> None:
        """A helper's StasisStart: once both are in Stasis, bridge them and start the pump."""
        if self.closed or channel_id not in (self.snoop_id, self.media_id):
            return
        self._entered.add(channel_id)
        if len(self._entered) < 2 or self.ready:
            return
        ari = self._owner.ari
        try:
            await ari.create_bridge(bridge_id=self.bridge_id, name=f"listen {self.key}")
            await ari.add_channel(self.bridge_id, self.snoop_id)
            await ari.add_channel(self.bridge_id, self.media_id)
        except AriError as exc:
            log.warning("call on %s: bridging the listener failed (%s); DTMF only", self.key, exc)
            await self.close()
            return
        self.ready = True
        self._pump = asyncio.get_running_loop().create_task(self._run_pump(), name=f"listen:{self.key}")

    # --- listening ----------------------------------------------------------------------

    def listen(self, menu: str, *, can_ask: bool = False) -> bool:
        """Open a recognizer for ``menu``; False when none is free (the caller keys instead).
        ``can_ask``: see :meth:`SpeechEngine.open`."""
        self.stop_listening()
        if self.closed or menu not in self._owner.engine.grammars:
            return False  # closed, or the locale pack has no phrases for this menu: keys only
        self._stream = self._owner.engine.open(menu, can_ask=can_ask)
        return self._stream is not None

    @property
    def listening(self) -> bool:
        return self._stream is not None

    def stop_listening(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    async def finish(self) -> None:
        """Nothing more will be waited for: decide on what was heard so far (a timer ran out)."""
        stream = self._stream
        if stream is None:
            return
        result = await stream.finish()
        if self._stream is stream:
            self.stop_listening()
            self._post(result)

    async def _run_pump(self) -> None:
        assert self._receiver is not None
        async for frame in self._receiver.frames():
            stream = self._stream
            if stream is None:
                continue  # nobody is listening right now: the audio is not needed
            events = await stream.feed(frame)
            if self._stream is not stream:
                continue  # the menu moved on (DTMF won) while Vosk was busy
            for event in events:
                self._post(event)
                if isinstance(event, Recognized):
                    self.stop_listening()

    def _post(self, event: SpeechEvent) -> None:
        self._owner.dispatcher.post(
            SpeechDetected(type="SpeechDetected", application=self._owner.app, timestamp="", key=self.key,
                           detected=event)
        )

    # --- tearing down ---------------------------------------------------------------------

    async def close(self) -> None:
        """Release everything: recognizer, pump, UDP port, helper channels, bridge. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.stop_listening()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._receiver is not None:
            self._receiver.close()
        ari = self._owner.ari
        for channel_id in (self.media_id, self.snoop_id):
            with suppress(AriError):
                await ari.hangup(channel_id)
        with suppress(AriError):
            await ari.destroy_bridge(self.bridge_id)
        # Aliases stay a moment longer: the helpers' last events (StasisEnd, destroyed) still
        # belong to this call's FIFO; Listeners.forget() drops them when the call ends.


class Listeners:
    """Builds listeners; one per process, from the composition root."""

    def __init__(self, ari: AriRest, dispatcher: Dispatcher, engine: SpeechEngine, app: str, *,
                 fmt: str, bind_host: str, advertise_host: str | None, telephone_band: bool = True) -> None:
        self.ari, self.dispatcher, self.engine, self.app = ari, dispatcher, engine, app
        self.format, self.bind_host, self.advertise_host = fmt, bind_host, advertise_host
        #: slin16 heard as a telephone line (``[speech] telephone_band``, ivr/speech/rtp.py).
        self.telephone_band = telephone_band
        self._serial = itertools.count(1)
        self.live: dict[str, Listener] = {}

    async def open(self, key: str) -> Listener | None:
        listener = Listener(self, key, next(self._serial))
        self.live[key] = listener
        if not await listener.start():
            self.forget(key)
            return None
        return listener

    def get(self, key: str) -> Listener | None:
        return self.live.get(key)

    def forget(self, key: str) -> None:
        listener = self.live.pop(key, None)
        if listener is not None:
            for helper in (listener.snoop_id, listener.media_id):
                self.dispatcher.unalias(helper)
            self.dispatcher.unalias(f"bridge:{listener.bridge_id}")

    def owned_ids(self) -> set[str]:
        return {i for listener in self.live.values() for i in listener.helper_ids}

    async def close(self) -> None:
        for key, listener in list(self.live.items()):
            await listener.close()
            self.forget(key)
