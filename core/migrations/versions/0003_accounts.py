"""Accounts: the people who log in to the agent desktop and the wallboard (accounts/models.py).

Revision ID: 0003_accounts
Revises: 0002_outbox
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_accounts"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("jurisdiction", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(32)),
        sa.Column("sip_endpoint", sa.String(80)),
        sa.Column("sip_password", sa.String(128)),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_login_at", _TIME),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("agent_id", name="uq_users_agent_id"),
    )
    op.create_index("ix_users_jurisdiction", "users", ["jurisdiction"])


def downgrade() -> None:
    op.drop_table("users")
