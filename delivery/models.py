"""The outbox table: one row per document owed to the national platform.

A row is written in the same transaction as the change it reports (a completed ticket, a
progress step, an ended call), so a document is never lost between "saved" and "queued".
Its body is frozen as the exact JSON text to send: every attempt sends the same bytes, so a
re-send after a timeout is a harmless replay on the platform and never a ``409`` conflict.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime


class Kind(StrEnum):
    CASE = "case"
    PROGRESS = "progress"
    CALL_RECORD = "call_record"


class State(StrEnum):
    #: Waiting for its turn (or leased by a worker that is sending it right now).
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Given up: refused by the platform (4xx) or out of attempts. An operator decides.
    DEAD = "dead"
    #: Not sent yet, on purpose: a hotline case waits for its call's recording to be stored,
    #: so that the recording's hash and duration go with it (the platform cannot amend a case).
    HELD = "held"


class OutboxRow(Base):
    __tablename__ = "outbox"

    # BIGINT on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: The platform's Idempotency-Key (case_id, call_id) or the progress step's step_id.
    key: Mapped[str] = mapped_column(String(36))
    #: The ticket a case or progress row belongs to: its rows are sent in order.
    ticket_id: Mapped[str | None] = mapped_column(String(36))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default=State.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The platform's 422 ``errors`` (field, code, messages) of a refused document.
    problems: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    #: What the platform answered on delivery (``platform_case_no``, ``received_at``).
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_outbox_kind_key"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_ticket", "ticket_id", "id"),
    )
