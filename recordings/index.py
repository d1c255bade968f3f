"""The recordings index in SQL: rows per segment, the call record's recording state, the audit.

Every method is one short transaction. The call path never waits for these: capture and
storage run them behind it (:mod:`recordings.capture`, :mod:`recordings.storage`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callrecords.models import CallRecord
from core.db import rows_matched
from core.vocabulary import utcnow
from recordings.models import Recording, RecordingAccess, RecordingState
from tickets.services import RecordingRef


def call_recording_state(states: Sequence[str]) -> str:
    """The call record's summary of its segments' states: a failed segment is a gap, and a
    gap is what the record must show (``failed``) even when other segments were stored."""
    if not states:
        return "none"
    if RecordingState.FAILED in states:
        return "failed"
    if RecordingState.RECORDING in states:
        return "recording"
    return "recorded"


@dataclass(frozen=True, slots=True)
class AccessEntry:
    recording_id: str
    jurisdiction: str | None
    user_id: int | None
    username: str | None
    role: str | None
    action: str
    detail: str | None
    client: str | None


class RecordingIndex:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    # ----------------------------------------------------------------- segments

    async def begin(self, *, call_id: str, segment: int, agent_id: str | None, jurisdiction: str,
                    fmt: str, error: str | None = None) -> Recording:
        """The row of a segment Asterisk was asked to record (``failed`` with ``error`` when it
        refused). Writing it again (a replay after a crash) returns the row already there."""
        name = recording_name(call_id, segment)
        row = Recording(id=str(uuid.uuid4()), call_id=call_id, segment=segment, name=name, agent_id=agent_id,
                        jurisdiction=jurisdiction, format=fmt, created_at=self._clock(), error=error,
                        state=RecordingState.FAILED.value if error else RecordingState.RECORDING.value)
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            existing = await self.by_name(name)
            if existing is None:
                raise
            return existing
        return row

    async def failed(self, name: str, error: str) -> Recording | None:
        """Asterisk failed the recording, or its file could not be fetched or verified."""
        async with self._sessions() as session, session.begin():
            row = await self._by_name(session, name)
            if row is None or row.state in (RecordingState.STORED, RecordingState.PURGED):
                return row
            row.state, row.error = RecordingState.FAILED.value, error[:2000]
        return row

    async def stored(self, name: str, *, path: str, sha256: str, size: int, duration_s: float) -> Recording | None:
        async with self._sessions() as session, session.begin():
            row = await self._by_name(session, name)
            if row is None:
                return None
            row.state, row.path, row.sha256 = RecordingState.STORED.value, path, sha256
            row.size_bytes, row.duration_s, row.error = size, duration_s, None
            row.stored_at = self._clock()
        return row

    async def purged(self, recording_id: str) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(Recording, recording_id)
            if row is not None:
                row.state, row.purged_at = RecordingState.PURGED.value, self._clock()

    async def get(self, recording_id: str) -> Recording | None:
        async with self._sessions() as session:
            return await session.get(Recording, recording_id)

    async def by_name(self, name: str) -> Recording | None:
        async with self._sessions() as session:
            return await self._by_name(session, name)

    @staticmethod
    async def _by_name(session: AsyncSession, name: str) -> Recording | None:
        return await session.scalar(select(Recording).where(Recording.name == name))

    async def for_call(self, call_id: str) -> list[Recording]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Recording).where(Recording.call_id == call_id)
                                         .order_by(Recording.segment))
            return list(rows)

    async def recording_in_progress(self, call_id: str) -> bool:
        """Whether a segment of the call is still being recorded (its cases wait for it)."""
        return any(r.state == RecordingState.RECORDING for r in await self.for_call(call_id))

    async def in_state(self, state: RecordingState) -> list[Recording]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Recording).where(Recording.state == state.value)
                                         .order_by(Recording.created_at, Recording.id))
            return list(rows)

    async def refs_for_call(self, call_id: str) -> list[RecordingRef]:
        """The call's stored segments as tickets carry them (first segment first)."""
        return [RecordingRef(r.id, r.sha256 or "", r.duration_s or 0.0, r.agent_id)
                for r in await self.for_call(call_id) if r.state == RecordingState.STORED and r.sha256]

    # ----------------------------------------------------------------- the call record

    async def call_state(self, call_id: str) -> str:
        """The call record's summary of the call's segments (see :func:`call_recording_state`)."""
        async with self._sessions() as session:
            states = list(await session.scalars(select(Recording.state).where(Recording.call_id == call_id)))
        return call_recording_state(states)

    async def sync_call_state(self, call_id: str) -> bool:
        """Write the call record's ``recording_state`` from its segments, directly (the
        commands' way, where no call is being written); False when there is no call record.
        The application goes through the call records' writer instead (see RecordingStore)."""
        async with self._sessions() as session, session.begin():
            states = list(await session.scalars(select(Recording.state).where(Recording.call_id == call_id)))
            result = await session.execute(update(CallRecord).where(CallRecord.call_id == call_id)
                                           .values(recording_state=call_recording_state(states)))
            return bool(rows_matched(result))

    # ----------------------------------------------------------------- the access audit

    async def audit(self, entry: AccessEntry) -> None:
        async with self._sessions() as session, session.begin():
            session.add(RecordingAccess(
                recording_id=entry.recording_id[:64], jurisdiction=entry.jurisdiction, user_id=entry.user_id,
                username=entry.username, role=entry.role, action=entry.action,
                detail=entry.detail[:200] if entry.detail else None,
                client=entry.client[:64] if entry.client else None, at=self._clock()))

    async def audit_entries(self, *, prefix: str | None, recording_id: str | None, since: datetime | None,
                            limit: int) -> list[RecordingAccess]:
        """Newest first. ``prefix``: only jurisdictions starting with it (a supervisor's subtree,
        narrowed exactly by the caller); ``None``: everything (admins)."""
        query = select(RecordingAccess).order_by(RecordingAccess.at.desc(), RecordingAccess.id.desc()).limit(limit)
        if prefix is not None:
            query = query.where(RecordingAccess.jurisdiction.like(f"{prefix}%"))
        if recording_id is not None:
            query = query.where(RecordingAccess.recording_id == recording_id)
        if since is not None:
            query = query.where(RecordingAccess.at >= since)
        async with self._sessions() as session:
            return list(await session.scalars(query))


def recording_name(call_id: str, segment: int) -> str:
    """Asterisk's name of a segment's recording, also its file's stem in our layout."""
    return f"{call_id}-{segment}"
