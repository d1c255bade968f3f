"""Recordings: the index of recorded calls, the access audit, and the call record's recording
state (recordings/models.py, callrecords/models.py).

Revision ID: 0004_recordings
Revises: 0003_accounts
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_recordings"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("segment", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(32)),
        sa.Column("jurisdiction", sa.String(16), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("path", sa.String(255)),
        sa.Column("error", sa.Text),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("stored_at", _TIME),
        sa.Column("purged_at", _TIME),
        sa.UniqueConstraint("name", name="uq_recordings_name"),
    )
    op.create_index("ix_recordings_call", "recordings", ["call_id", "segment"])
    op.create_index("ix_recordings_state_created", "recordings", ["state", "created_at"])
    op.create_table(
        "recording_access",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("recording_id", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(16)),
        sa.Column("user_id", sa.Integer),
        sa.Column("username", sa.String(64)),
        sa.Column("role", sa.String(16)),
        sa.Column("action", sa.String(12), nullable=False),
        sa.Column("detail", sa.String(200)),
        sa.Column("client", sa.String(64)),
        sa.Column("at", _TIME, nullable=False),
    )
    op.create_index("ix_recording_access_at", "recording_access", ["at"])
    op.create_index("ix_recording_access_jurisdiction", "recording_access", ["jurisdiction", "at"])
    # Calls recorded before this revision existed were not recorded: "none" is the truth.
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("recording_state", sa.String(12), nullable=False, server_default="none"))


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("recording_state")
    op.drop_table("recording_access")
    op.drop_table("recordings")
