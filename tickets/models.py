"""Tickets: one matter (complaint, report or consultation) each, its status history and its
field-by-field audit trail.

A ticket is what the platform calls a ``Case`` (``../shared/national-platform/openapi.yaml``);
its id is the platform's ``case_id``. The columns are flat (``caller_phone`` rather than a
nested ``caller`` object) so that each can be indexed, audited and changed on its own; the
nested shape the platform wants is built by :mod:`tickets.payload`.

Columns that hold free text or codes typed by a person are wider than the platform allows:
a draft may hold a wrong value while the caller is still on the line, and the agent then sees
the platform's own problem (``too_long``, ``bad_format``) instead of a database error.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime


class Status(StrEnum):
    """Where a ticket is in its life: ``draft → completed → (accepted | rejected)
    → transferred* → closed``; a case the platform refuses goes back to ``draft``."""

    DRAFT = "draft"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TRANSFERRED = "transferred"
    CLOSED = "closed"


class DeliveryState(StrEnum):
    """Where the ticket's ``Case`` is on its way to the national platform."""

    NOT_SENT = "not_sent"
    #: Completed and queued in the outbox, not yet acknowledged.
    PENDING = "pending"
    DELIVERED = "delivered"
    #: The platform answered 422; ``delivery_problems`` says what to fix.
    REFUSED = "refused"


class Ticket(Base):
    __tablename__ = "tickets"

    #: A UUID of our own, sent as the platform's ``case_id`` (and Idempotency-Key).
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_type: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    business_line: Mapped[str | None] = mapped_column(String(32))
    hotline_number: Mapped[str | None] = mapped_column(String(16))
    #: The call this ticket came from. No foreign key to ``call_records``: call records are
    #: written behind the call path, in batches, often after the agent has already created the
    #: ticket during the call; a foreign key would make ticket writes wait for (or fail
    #: without) the call record, and tie their retention together.
    call_id: Mapped[str | None] = mapped_column(String(36), index=True)
    #: One matter per ticket: a call about two shops gives two tickets sharing ``call_id``,
    #: the later ones pointing at the first.
    related_to: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tickets.id", ondelete="SET NULL"), index=True)

    # The caller. Personal data: never logged unmasked, masked in the audit's display.
    caller_phone: Mapped[str | None] = mapped_column(String(32))
    caller_name: Mapped[str | None] = mapped_column(Text)
    caller_region: Mapped[str | None] = mapped_column(String(16))
    caller_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)

    # The business complained about or reported.
    respondent_name: Mapped[str | None] = mapped_column(Text)
    respondent_credit_code: Mapped[str | None] = mapped_column(String(32))
    respondent_region: Mapped[str | None] = mapped_column(String(16))
    respondent_address: Mapped[str | None] = mapped_column(Text)

    # What was bought.
    subject_kind: Mapped[str | None] = mapped_column(String(16))
    subject_category: Mapped[str | None] = mapped_column(Text)
    #: Yuan; exact decimals, never a float.
    subject_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    subject_purchased_on: Mapped[date | None] = mapped_column(Date)

    summary: Mapped[str | None] = mapped_column(Text)
    demand: Mapped[str | None] = mapped_column(String(32))
    ivr_transcript: Mapped[str | None] = mapped_column(Text)

    recording_id: Mapped[str | None] = mapped_column(String(64))
    recording_sha256: Mapped[str | None] = mapped_column(String(64))
    recording_duration_s: Mapped[float | None] = mapped_column(Float)

    # The organisation that received the case (``HandlingOrg``).
    handling_region: Mapped[str | None] = mapped_column(String(16))
    handling_level: Mapped[str | None] = mapped_column(String(16))
    handling_station: Mapped[str | None] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)

    status: Mapped[str] = mapped_column(String(16), default=Status.DRAFT.value, index=True)
    delivery_state: Mapped[str] = mapped_column(String(16), default=DeliveryState.NOT_SENT.value)
    #: The platform's 422 ``errors`` (field path, code, both messages) of a refused case.
    delivery_problems: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    platform_case_no: Mapped[str | None] = mapped_column(String(64), index=True)

    # Deadlines (dates of the Chinese calendar, see tickets/deadlines.py).
    accept_by: Mapped[date | None] = mapped_column(Date)
    finish_by: Mapped[date | None] = mapped_column(Date)
    verify_by: Mapped[date | None] = mapped_column(Date)
    #: Why a deadline is unset (the calendar has no data for its year yet).
    deadline_note: Mapped[str | None] = mapped_column(Text)

    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: Optimistic concurrency: every UPDATE checks and bumps it (``WHERE version = :seen``),
    #: so of two agents saving the same ticket the second is told, never silently overwrites.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_tickets_received", "received_at"),)

    def __repr__(self) -> str:
        # No personal data here: reprs end up in logs and tracebacks.
        return f"<Ticket {self.id} {self.case_type} {self.status}/{self.delivery_state} v{self.version}>"


class TicketStatusChange(Base):
    """One step of a ticket's status history; platform progress steps carry a ``step_id``."""

    __tablename__ = "ticket_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    #: The platform ``Progress.step_id`` (a UUID) when this change is a progress step.
    step_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    #: ``Progress.to`` of a transfer.
    to_region: Mapped[str | None] = mapped_column(String(16))
    to_level: Mapped[str | None] = mapped_column(String(16))
    to_station: Mapped[str | None] = mapped_column(String(16))
    #: ``Progress.outcome`` of a close.
    outcome: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_ticket_status_changes_ticket", "ticket_id", "id"),)

    def __repr__(self) -> str:
        return f"<TicketStatusChange {self.ticket_id} {self.from_status}->{self.to_status}>"


class TicketAudit(Base):
    """Who changed which field of a ticket, from what to what, and when.

    Values are stored as they were (JSON text), personal data included, so that an authorised
    auditor can see them; :class:`tickets.services.AuditEntry` masks them for everyone else.
    """

    __tablename__ = "ticket_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"))
    #: The field's path in the platform's ``Case`` shape (``caller.phone``).
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_ticket_audit_ticket", "ticket_id", "id"),)

    def __repr__(self) -> str:
        return f"<TicketAudit {self.ticket_id} {self.field}>"
