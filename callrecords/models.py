"""The call record table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime


class CallRecord(Base):
    __tablename__ = "call_records"

    #: Our own id of the call (a UUID), also the platform's ``call_id``.
    call_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    hotline_number: Mapped[str] = mapped_column(String(8))
    business_line: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str | None] = mapped_column(String(8))
    #: Personal data: stored for the platform and callbacks, never logged unmasked.
    caller_phone: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    menu_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The branch the IVR chose: complaint / report / consultation / operator.
    choice: Mapped[str | None] = mapped_column(String(32))
    recognized_by: Mapped[str] = mapped_column(String(8), default="none")
    transcript: Mapped[str | None] = mapped_column(String(2000))
    confidence: Mapped[float | None] = mapped_column(Float)
    #: Platform outcome once ended (answered, abandoned_in_menu, ...); the flow state while live.
    outcome: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[str | None] = mapped_column(String(32))
    #: GB/T 2260 code of the jurisdiction the call was queued for.
    jurisdiction: Mapped[str | None] = mapped_column(String(16), index=True)
    hangup_cause: Mapped[str | None] = mapped_column(String(64))
    #: none / recording / recorded / failed, kept by the recordings feature (recordings/index.py),
    #: not by the IVR's snapshots: they leave it out (``info``) so that they never overwrite it.
    recording_state: Mapped[str] = mapped_column(String(12), default="none", server_default="none",
                                                 info={"snapshot": False})

    __table_args__ = (Index("ix_call_records_started", "started_at"),)

    def as_dict(self) -> dict[str, Any]:
        """The columns the IVR's snapshots write (what the platform's call record is made of)."""
        return {c.name: getattr(self, c.name) for c in snapshot_columns()}


def snapshot_columns() -> list[Any]:
    """The columns a call-record snapshot writes: all but those kept by other features."""
    return [c for c in CallRecord.__table__.columns if c.info.get("snapshot", True)]


class CdrImportState(Base):
    """How far Asterisk's CDR file (dialplans/cdr_custom.conf) has been imported.

    Updated in the transaction that writes the call records of the lines it covers, so that
    a crash never skips a line nor imports one twice (the records are also unique by
    Asterisk's uniqueid: a line read again is skipped)."""

    __tablename__ = "cdr_imports"

    #: The file as configured (``[callrecords] cdr_file``).
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    #: SHA-256 of the file's first line: which file the offset is in. After a rotation the
    #: configured path names a new file, and the old one is found again by its first line.
    first_line: Mapped[str] = mapped_column(String(64))
    #: Bytes of that file imported (whole lines only).
    byte_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
