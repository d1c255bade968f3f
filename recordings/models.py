"""The recordings index and the access audit.

One ``recordings`` row per segment of a call (a transfer starts a new segment). The row is
written when Asterisk is asked to record, so that a recording that never arrives is a row
in state ``recording`` or ``failed``, never a silent gap. Files are named by the row, never
by anything a user sends: ``path`` is relative to the recordings root.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime


class RecordingState(StrEnum):
    #: Asterisk was asked to record; the file is not ours yet.
    RECORDING = "recording"
    #: Fetched, written, verified (hash and duration), deleted from Asterisk.
    STORED = "stored"
    #: Asterisk refused or failed it, or the file could not be fetched or verified (see ``error``).
    FAILED = "failed"
    #: Deleted by the retention policy; the row (hash, duration) stays as evidence it existed.
    PURGED = "purged"


class Access(StrEnum):
    PLAY = "play"
    DOWNLOAD = "download"
    DENIED = "denied"


class Recording(Base):
    __tablename__ = "recordings"

    #: A UUID: the only handle users ever give us.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(36))
    segment: Mapped[int] = mapped_column(Integer)
    #: Asterisk's name of the recording (``<call_id>-<segment>``).
    name: Mapped[str] = mapped_column(String(64))
    #: The queue engine's id of the agent in this segment.
    agent_id: Mapped[str | None] = mapped_column(String(32))
    #: GB/T 2260 code (or station) the call was answered for: who may listen.
    jurisdiction: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(12))
    format: Mapped[str] = mapped_column(String(8))
    duration_s: Mapped[float | None] = mapped_column(Float)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    #: Relative to the recordings root, ``YYYY/MM/DD/<jurisdiction>/<call_id>-<segment>.wav``.
    path: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stored_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("name", name="uq_recordings_name"),
        Index("ix_recordings_call", "call_id", "segment"),
        Index("ix_recordings_state_created", "state", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<Recording {self.id} {self.name} {self.state}>"


class RecordingAccess(Base):
    """One request for a recording's audio, allowed or refused: who, which, when, from where."""

    __tablename__ = "recording_access"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    #: The id asked for, as asked (it may name nothing); cut to the column's length.
    recording_id: Mapped[str] = mapped_column(String(64))
    #: The recording's jurisdiction when the id named one: supervisors read their scope's entries.
    jurisdiction: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(12))
    #: Why it was refused (``forbidden``, ``not_found``, ...); the byte range of a play.
    detail: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_recording_access_at", "at"),
        Index("ix_recording_access_jurisdiction", "jurisdiction", "at"),
    )
