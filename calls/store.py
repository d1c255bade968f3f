"""Live call state in Redis: what must survive an application restart.

One JSON value per call (keyed by the caller's channel id) plus a set of the live
channel ids, written on every state transition. After a restart the resync reads
these back for the channels that ARI says are still in our application.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.lean_redis import riding

log = logging.getLogger(__name__)

#: Length of the call record's transcript column.
TRANSCRIPT_MAX = 2000


@dataclass(slots=True)
class CallState:
    call_id: str
    channel_id: str
    hotline_number: str
    business_line: str
    area_code: str | None
    caller_phone: str
    language: str
    started_at: datetime
    state: str = "answering"
    attempt: int = 1
    menu_path: list[str] = field(default_factory=list)
    choice: str | None = None
    recognized_by: str = "none"
    transcript: str | None = None
    confidence: float | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    agent_id: str | None = None
    #: Where the call is answered (GB/T 2260 code) and how that was decided.
    jurisdiction: str | None = None
    jurisdiction_source: str | None = None
    #: The agent's leg and the bridge of the conversation, once an agent is called.
    agent_channel: str | None = None
    call_bridge: str | None = None
    hangup_cause: str | None = None

    _TIMES = ("started_at", "queued_at", "answered_at", "ended_at")

    def to_json(self) -> str:
        # Written at every transition of every call: the fields read one by one (``asdict``
        # deep-copies each value first, a third of the cost), the list copied by json itself.
        data = {name: getattr(self, name) for name in _FIELDS}
        for key in self._TIMES:
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return orjson.dumps(data).decode()  # UTF-8 as it is, like ensure_ascii=False

    @classmethod
    def from_json(cls, text: str | bytes) -> CallState:
        data: dict[str, Any] = orjson.loads(text)
        data = {k: v for k, v in data.items() if k in _FIELDS}
        for key in cls._TIMES:
            if data.get(key):
                data[key] = datetime.fromisoformat(data[key])
        return cls(**data)

    def to_record(self) -> dict[str, Any]:
        """The call-record row for this state (see :mod:`callrecords.models`)."""
        return {
            "call_id": self.call_id,
            "channel_id": self.channel_id,
            "hotline_number": self.hotline_number,
            "business_line": self.business_line,
            "area_code": self.area_code,
            "caller_phone": self.caller_phone or None,
            "started_at": self.started_at,
            "queued_at": self.queued_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "menu_path": list(self.menu_path),
            "choice": self.choice,
            "recognized_by": self.recognized_by,
            # The column holds 2,000 characters; a caller who talks for minutes must not
            # make the database refuse the whole record.
            "transcript": self.transcript[:TRANSCRIPT_MAX] if self.transcript else self.transcript,
            "confidence": self.confidence,
            "outcome": self.outcome,
            "state": self.state,
            "agent_id": self.agent_id,
            "jurisdiction": self.jurisdiction,
            "hangup_cause": self.hangup_cause,
        }


#: How long an ended call's deletion may wait for a command to go with (core/lean_redis.py).
FORGET_WITHIN_S = 1.0
#: How long a state saved ahead of the next command (:meth:`CallStateStore.save_ahead`) may
#: wait for it before it goes alone.
SAVE_AHEAD_S = 0.05

#: The stored fields, in their order (read once: ``fields()`` builds a tuple at every call).
_FIELDS = tuple(f.name for f in fields(CallState))


class CallStateStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        # The keys keep the names they had when the IVR owned them: calls stored by an older
        # process are still found and resumed after an upgrade.
        self._live = f"{prefix}:ivr:live"
        self._prefix = f"{prefix}:ivr:call:"
        #: Deletions under way where the client cannot send them along (see forget_soon).
        self._forgetting: set[asyncio.Task[None]] = set()
        #: Key -> the state a queue's script stored with its own change (:meth:`stored_by_script`),
        #: until the next save of that call: the same state is then not written again.
        self._by_script: dict[str, str] = {}

    def write(self, state: CallState) -> tuple[str, str, str]:
        """``state``'s save as a write for a queue's script to make with its own change
        (``queues.engine.Write``: the call's state and the queue's move in one write to Redis,
        and the state saved only if the move is made). Once made, say so (:meth:`stored_by_script`)."""
        return ("SET", self._prefix + state.channel_id, state.to_json())

    def stored_by_script(self, write: tuple[str, str, str]) -> None:
        """A script made ``write`` (from :meth:`write`): the call's next save, if of that same
        state (as the flow's save after the script's transition is), is not written again."""
        self._by_script[write[1]] = write[2]

    def _unsaved(self, state: CallState) -> str | None:
        """``state`` as stored text, None when a script stored exactly that already."""
        text = state.to_json()
        return None if self._by_script.pop(self._prefix + state.channel_id, None) == text else text

    async def save(self, state: CallState, *, new: bool = True) -> None:
        """Store the call's state. ``new``: it may not be in the set of live calls yet (its
        first save, or a caller that does not know); a call saved before is only overwritten,
        one command instead of four (MULTI, SET, SADD, EXEC) at every transition."""
        text = self._unsaved(state)
        if text is None:
            return
        if not new:
            await self._redis.set(self._prefix + state.channel_id, text)
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._prefix + state.channel_id, text)
            pipe.sadd(self._live, state.channel_id)
            await pipe.execute()

    async def tell(self, state: CallState, *, new: bool = True) -> None:
        """Store the call's state in a write of its own now, without Redis's reply (see
        ``LeanRedis.tell``): applied before anything this process sends after it, as an awaited
        save is, with no wake-up for the answer (issue 15: four a whole call). A save Redis
        refuses goes unheard; the call's next script or read fails with the same cause. Without
        the shared connection: saved as :meth:`save`."""
        rider = riding(self._redis)
        if rider is None:
            await self.save(state, new=new)
            return
        writes = self._writes(state, new=new)
        if writes:
            await rider.tell(*writes)

    async def save_ahead(self, state: CallState, *, new: bool = True) -> None:
        """Store the call's state in the same write as, and ahead of, the next command this
        process sends to Redis, without a round trip of its own; alone within SAVE_AHEAD_S.
        For a save whose next act is a Redis command (a queue's script): Redis applies the two
        in the order written, so the act is never done without the state stored, and the
        save's reply is read with the act's instead of waking the process by itself (a wake-up
        costs more than the command, issue 15). What a crash before that write loses, nothing
        has acted on yet. Without the shared connection: saved now, as :meth:`save`."""
        rider = riding(self._redis)
        if rider is None:
            await self.save(state, new=new)
            return
        for command in self._writes(state, new=new):
            rider.send_soon(*command, within_s=SAVE_AHEAD_S)

    def _writes(self, state: CallState, *, new: bool) -> list[tuple[str, ...]]:
        """The commands that store ``state`` outside a transaction (:meth:`tell`, :meth:`save_ahead`);
        none when a script stored it already."""
        text = self._unsaved(state)
        if text is None:
            return []
        writes: list[tuple[str, ...]] = [("SET", self._prefix + state.channel_id, text)]
        if new:  # a set's member: re-adding is no change, so no transaction is needed for it
            writes.append(("SADD", self._live, state.channel_id))
        return writes

    async def load(self, channel_id: str) -> CallState | None:
        raw = await self._redis.get(self._prefix + channel_id)
        return CallState.from_json(raw) if raw else None

    async def delete(self, channel_id: str) -> None:
        self._by_script.pop(self._prefix + channel_id, None)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._prefix + channel_id)
            pipe.srem(self._live, channel_id)
            await pipe.execute()

    def forget_soon(self, channel_id: str) -> None:
        """Delete an ended call's state without waiting: with the next command this process
        sends (or alone within a second). Nothing needs it gone at once: a resync ends a stored
        ended call again the same way, and a state missing from the set is no call."""
        self._by_script.pop(self._prefix + channel_id, None)
        rider = riding(self._redis)
        if rider is not None:
            rider.send_soon("DEL", self._prefix + channel_id, within_s=FORGET_WITHIN_S)
            rider.send_soon("SREM", self._live, channel_id, within_s=FORGET_WITHIN_S)
            return
        task = asyncio.get_running_loop().create_task(self._forget(channel_id), name=f"forget-{channel_id}")
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    async def _forget(self, channel_id: str) -> None:
        try:
            await self.delete(channel_id)
        except RedisError as exc:  # left for the next resync, which ends it again the same way
            log.warning("the ended call on %s stays in Redis: %s", channel_id, exc)

    async def live_channel_ids(self) -> set[str]:
        return {m.decode() if isinstance(m, bytes) else m for m in await self._redis.smembers(self._live)}
