"""Recording calls in Asterisk: start when caller and agent are bridged, a new segment after a
transfer, stop at the hang-up; Asterisk's recording events hand finished files to storage.

The call path waits only for the ARI command (``POST /bridges/{id}/record``): the index row,
the call record's recording state and storing the file run behind it, in tasks of their own.
A recording Asterisk refuses (an ARI error) or fails (``RecordingFailed``) is logged and
marked ``failed`` on its row and on the call record: never a silent gap.

Segments are numbered per call in Redis (``INCR``), so a restarted process, or another one,
continues the numbering; the recording's name is ``<call_id>-<segment>``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis

from ari.errors import AriError, AriNotFound
from ari.rest import AriRest
from calls.store import CallState
from core.settings import RecordingSettings
from core.tasks import BackgroundTasks
from recordings.index import RecordingIndex, recording_name
from recordings.models import Recording, RecordingState
from recordings.storage import RecordingStore

log = logging.getLogger(__name__)

#: Our recordings' names; others in the same Asterisk are not ours to take.
NAME_RE = re.compile(r"(?P<call_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                     r"-(?P<segment>[1-9][0-9]{0,3})")
#: How long a call's segment counter is kept (longer than any call).
SEGMENT_TTL_S = 2 * 24 * 3600
#: Files stored at once (each is read, hashed and written in a thread).
STORE_CONCURRENCY = 4
#: On shutdown, stores under way get this long to finish before they are cancelled (they
#: are idempotent: a cancelled one is finished by the next start's recovery).
STOP_GRACE_S = 10.0
#: After a segment is stopped: how long Asterisk may take to finish it (polled every
#: FINISH_POLL_S), then how long its RecordingFinished has to arrive before we keep the file
#: ourselves (see CallRecorder.stop).
FINISH_WAIT_S = 10.0
FINISH_POLL_S = 0.1
EVENT_GRACE_S = 0.5



class CallRecorder:
    def __init__(self, ari: AriRest, index: RecordingIndex, store: RecordingStore, redis: Redis, prefix: str,
                 settings: RecordingSettings) -> None:
        self._ari, self._index, self._store, self._redis = ari, index, store, redis
        self._prefix, self._format = prefix, settings.format
        self._tasks = BackgroundTasks("the recordings")
        #: Rows being written, by recording name: storing waits for its row.
        self._rows: dict[str, asyncio.Task[Recording]] = {}
        self._storing = asyncio.Semaphore(STORE_CONCURRENCY)
        #: Recordings being kept now, so that the event and the check after a stop never
        #: store the same file at once.
        self._keeping: set[str] = set()

    def _segment_key(self, call_id: str) -> str:
        return f"{self._prefix}:recordings:segment:{call_id}"

    # ----------------------------------------------------------------- on the call path

    async def start(self, data: CallState, bridge_id: str) -> None:
        """Record the conversation bridge of ``data``'s call as its next segment."""
        key = self._segment_key(data.call_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, SEGMENT_TTL_S)
            segment, _ = await pipe.execute()
        name = recording_name(data.call_id, int(segment))
        error = None
        try:
            await self._ari.record_bridge(bridge_id, name, self._format, beep=False)
        except AriError as exc:
            error = f"Asterisk refused to record: {exc}"
            log.error("call %s: recording %s could not start: %s", data.call_id, name, exc)
        else:
            log.info("call %s: recording %s started", data.call_id, name)
        row = self._spawn(self._index.begin(call_id=data.call_id, segment=int(segment), agent_id=data.agent_id,
                                            jurisdiction=data.jurisdiction or "000000", fmt=self._format,
                                            error=error), f"recording-row:{name}")
        self._rows[name] = row
        row.add_done_callback(lambda _t: self._rows.pop(name, None))
        self._spawn(self._after(row, self._store.show_call_state(data.call_id)), f"recording-state:{name}")

    async def stop(self, call_id: str) -> bool:
        """The call is over: stop its current segment (Asterisk then finishes the file). False
        if Asterisk may still be recording it (the bridge must then not be used again)."""
        segment = await self._redis.get(self._segment_key(call_id))
        if segment is None:
            return True
        name = recording_name(call_id, int(segment))
        stopped = True
        try:
            await self._ari.stop_recording(name)
        except AriNotFound:
            pass  # it ended with its bridge, or never started
        except AriError as exc:
            log.warning("call %s: stopping recording %s failed: %s", call_id, name, exc)
            stopped = False
        # A real Asterisk sends a bridge recording's RecordingFinished through the bridge's
        # topic, after the recorder has finished; when the bridge is destroyed first (a
        # transfer, a hang-up: stopping is asynchronous) the application is no longer
        # subscribed to it and the event is lost. So the end of the segment is checked here.
        self._spawn(self._settle(name), f"recording-settle:{name}")
        return stopped

    async def _settle(self, name: str) -> None:
        """Once Asterisk no longer records ``name``, keep it unless its event did (or does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FINISH_WAIT_S
        while True:
            try:
                await self._ari.live_recording(name)
            except AriNotFound:
                break
            except AriError as exc:
                log.warning("recording %s: cannot tell whether it has finished (%s); left to the event or the "
                            "recovery at the next start", name, exc)
                return
            if loop.time() > deadline:
                log.warning("recording %s still live %.0f s after it was stopped; left to its event", name,
                            FINISH_WAIT_S)
                return
            await asyncio.sleep(FINISH_POLL_S)
        await asyncio.sleep(EVENT_GRACE_S)  # its RecordingFinished, when it comes, keeps it
        await self._row_written(name)
        row = await self._index.by_name(name)
        if row is None or row.state != RecordingState.RECORDING or name in self._keeping:
            return
        log.info("recording %s finished without its RecordingFinished (its bridge went first): storing it", name)
        await self._keep(name)

    # ----------------------------------------------------------------- what Asterisk reports

    def finished(self, name: str, *, cancelled: bool) -> None:
        """Asterisk finished the segment ``name`` (one of ours): stored behind the call path."""
        if cancelled:
            # Asterisk deleted the file: nothing will come of this segment.
            self._spawn(self._fail(name, "the recording was cancelled in Asterisk"), f"recording-failed:{name}")
            return
        self._spawn(self._keep(name), f"recording-store:{name}")

    def failed(self, name: str, cause: str) -> None:
        log.error("recording %s failed in Asterisk: %s", name, cause)
        self._spawn(self._fail(name, f"Asterisk failed the recording: {cause}"), f"recording-failed:{name}")

    # ----------------------------------------------------------------- behind the call path

    async def _keep(self, name: str) -> None:
        if name in self._keeping:
            return  # the event and the check after a stop both saw it finish: one keeps it
        self._keeping.add(name)
        try:
            await self._row_written(name)
            async with self._storing:
                row = await self._store.store(name)
        finally:
            self._keeping.discard(name)
        if row is not None and row.state == RecordingState.FAILED:
            log.error("recording %s of call %s is missing: %s", name, row.call_id, row.error)

    async def _fail(self, name: str, reason: str) -> None:
        await self._row_written(name)
        row = await self._index.failed(name, reason)
        if row is not None:
            await self._store.show_call_state(row.call_id)
            await self._store.settle_tickets(row.call_id)  # a case held for it goes without it

    async def _row_written(self, name: str) -> None:
        row = self._rows.get(name)
        if row is not None:
            with suppress(Exception):  # its failure is logged by the task itself
                await asyncio.shield(row)

    async def recover(self) -> None:
        """After a start: segments left ``recording`` whose end we missed (we were down when
        Asterisk finished them, and events are not replayed) are stored now; those Asterisk
        has neither live nor stored are marked failed."""
        for row in await self._index.in_state(RecordingState.RECORDING):
            try:
                await self._ari.live_recording(row.name)
                continue  # still recording: its RecordingFinished will come
            except AriNotFound:
                pass
            try:
                await self._ari.stored_recording(row.name)
            except AriNotFound:
                await self._fail(row.name, "lost: Asterisk has the recording neither live nor stored")
                continue
            log.info("recording %s finished while we were away: storing it now", row.name)
            await self._keep(row.name)

    def start_recovery(self) -> None:
        self._spawn(self._recover_logged(), "recordings-recovery")

    async def _recover_logged(self) -> None:
        try:
            await self.recover()
        except Exception:
            log.exception("recovering unfinished recordings failed")

    # ----------------------------------------------------------------- tasks

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name)

    @staticmethod
    async def _after(first: asyncio.Task[Any], then: Coroutine[Any, Any, Any]) -> None:
        try:
            await first
        except Exception:  # noqa: BLE001 - logged by the first task's callback
            then.close()
            return
        await then

    async def drain(self, timeout: float = STOP_GRACE_S) -> None:
        """Wait for the work under way (tests, and a graceful stop)."""
        await self._tasks.drain(timeout)

    async def close(self) -> None:
        await self._tasks.close(grace_s=STOP_GRACE_S)
