"""The initial schema: call records (as the old ``create_schema`` made them) and tickets.

The schema of this revision is written out here as plain SQLAlchemy tables, frozen: the
models will change in later revisions, this must not. :func:`schema` is also what
:mod:`core.migrate` checks a database made by the old ``create_schema`` against before
adopting it (stamping it at this revision).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def schema() -> sa.MetaData:
    """Every table of this revision."""
    md = sa.MetaData()
    _call_records(md)
    _tickets(md)
    _ticket_status_changes(md)
    _ticket_audit(md)
    return md


def _call_records(md: sa.MetaData) -> None:
    sa.Table(
        "call_records", md,
        sa.Column("call_id", sa.String(36), primary_key=True),
        sa.Column("channel_id", sa.String(64), nullable=False, index=True),
        sa.Column("hotline_number", sa.String(8), nullable=False),
        sa.Column("business_line", sa.String(32), nullable=False),
        sa.Column("area_code", sa.String(8)),
        sa.Column("caller_phone", sa.String(32)),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("queued_at", _TIME),
        sa.Column("answered_at", _TIME),
        sa.Column("ended_at", _TIME, index=True),
        sa.Column("menu_path", sa.JSON, nullable=False),
        sa.Column("choice", sa.String(32)),
        sa.Column("recognized_by", sa.String(8), nullable=False),
        sa.Column("transcript", sa.String(2000)),
        sa.Column("confidence", sa.Float),
        sa.Column("outcome", sa.String(32)),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(32)),
        sa.Column("jurisdiction", sa.String(16), index=True),
        sa.Column("hangup_cause", sa.String(64)),
        sa.Index("ix_call_records_started", "started_at"),
    )


def _tickets(md: sa.MetaData) -> None:
    sa.Table(
        "tickets", md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_type", sa.String(16)),
        sa.Column("channel", sa.String(16)),
        sa.Column("business_line", sa.String(32)),
        sa.Column("hotline_number", sa.String(16)),
        sa.Column("call_id", sa.String(36), index=True),
        sa.Column("related_to", sa.String(36), sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True),
        sa.Column("caller_phone", sa.String(32)),
        sa.Column("caller_name", sa.Text),
        sa.Column("caller_region", sa.String(16)),
        sa.Column("caller_anonymous", sa.Boolean, nullable=False),
        sa.Column("respondent_name", sa.Text),
        sa.Column("respondent_credit_code", sa.String(32)),
        sa.Column("respondent_region", sa.String(16)),
        sa.Column("respondent_address", sa.Text),
        sa.Column("subject_kind", sa.String(16)),
        sa.Column("subject_category", sa.Text),
        sa.Column("subject_amount", sa.Numeric(14, 2)),
        sa.Column("subject_purchased_on", sa.Date),
        sa.Column("summary", sa.Text),
        sa.Column("demand", sa.String(32)),
        sa.Column("ivr_transcript", sa.Text),
        sa.Column("recording_id", sa.String(64)),
        sa.Column("recording_sha256", sa.String(64)),
        sa.Column("recording_duration_s", sa.Float),
        sa.Column("handling_region", sa.String(16)),
        sa.Column("handling_level", sa.String(16)),
        sa.Column("handling_station", sa.String(16)),
        sa.Column("agent_id", sa.String(64), index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("delivery_state", sa.String(16), nullable=False),
        sa.Column("delivery_problems", sa.JSON),
        sa.Column("platform_case_no", sa.String(64), index=True),
        sa.Column("accept_by", sa.Date),
        sa.Column("finish_by", sa.Date),
        sa.Column("verify_by", sa.Date),
        sa.Column("deadline_note", sa.Text),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Index("ix_tickets_received", "received_at"),
    )


def _ticket_status_changes(md: sa.MetaData) -> None:
    sa.Table(
        "ticket_status_changes", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("step_id", sa.String(36), unique=True),
        sa.Column("to_region", sa.String(16)),
        sa.Column("to_level", sa.String(16)),
        sa.Column("to_station", sa.String(16)),
        sa.Column("outcome", sa.String(32)),
        sa.Index("ix_ticket_status_changes_ticket", "ticket_id", "id"),
    )


def _ticket_audit(md: sa.MetaData) -> None:
    sa.Table(
        "ticket_audit", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(36), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Index("ix_ticket_audit_ticket", "ticket_id", "id"),
    )


def upgrade() -> None:
    bind = op.get_bind()
    for table in schema().sorted_tables:
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(schema().sorted_tables):
        table.drop(bind)
