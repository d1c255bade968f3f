"""The delivery outbox: one row per document owed to the national platform (delivery/models.py).

Revision ID: 0002_outbox
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_outbox"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        # BIGINT on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(36), nullable=False),
        sa.Column("ticket_id", sa.String(36)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", _TIME),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("problems", sa.JSON),
        sa.Column("receipt", sa.JSON),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("delivered_at", _TIME),
        sa.UniqueConstraint("kind", "key", name="uq_outbox_kind_key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_ticket", "outbox", ["ticket_id", "id"])


def downgrade() -> None:
    op.drop_table("outbox")
