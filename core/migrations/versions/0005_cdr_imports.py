"""CDR import: how far Asterisk's CDR file of the calls the application never sees has been
imported into call records (callrecords/models.py, callrecords/cdr_import.py).

Revision ID: 0005_cdr_imports
Revises: 0004_recordings
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cdr_imports"
down_revision = "0004_recordings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cdr_imports",
        sa.Column("path", sa.String(500), primary_key=True),
        sa.Column("first_line", sa.String(64), nullable=False),
        sa.Column("byte_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cdr_imports")
