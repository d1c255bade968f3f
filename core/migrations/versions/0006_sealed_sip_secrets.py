"""Agents' SIP secrets sealed at rest: ``users.sip_password`` (clear) becomes
``users.sip_password_sealed`` (AES-GCM under the settings' key, core/sealing.py), every
existing secret sealed on the way.

The key comes from the settings that :mod:`core.migrate` is given (``config.attributes
["secret_box"]``, a callable, so that no key file is made for a database with nothing to
seal). A database holding clear secrets and migrated without settings stops here, changing
nothing, and says how to run it with them.

Revision ID: 0006_sealed_sip_secrets
Revises: 0005_cdr_imports
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

from core.sealing import SecretBox

revision = "0006_sealed_sip_secrets"
down_revision = "0005_cdr_imports"
branch_labels = None
depends_on = None

#: What the sealed values are bound to (the same purpose the account service uses).
PURPOSE = "users.sip_password"

_users = sa.table("users", sa.column("id", sa.Integer), sa.column("sip_password", sa.String),
                  sa.column("sip_password_sealed", sa.String))


def _box() -> SecretBox:
    make: Callable[[], SecretBox] | None = context.config.attributes.get("secret_box")
    if make is None:
        raise RuntimeError("the users table holds SIP secrets to encrypt, and this migration was run without "
                           "the settings that hold the key: run `hotline db upgrade` (or `hotline serve`) "
                           "with the deployment's settings; nothing was changed")
    return make()


def _copy(source: str, target: str, change: Callable[[SecretBox, str], str]) -> None:
    """Each user's ``source`` into ``target`` through ``change``; the key is asked for only
    when there is a secret to change (an empty table needs none)."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_users.c.id, _users.c[source]).where(_users.c[source].is_not(None))).all()
    if rows:
        box = _box()
        for user_id, value in rows:
            bind.execute(_users.update().where(_users.c.id == user_id).values({target: change(box, value)}))


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("sip_password_sealed", sa.String(255)))
    _copy("sip_password", "sip_password_sealed", lambda box, plain: box.seal(plain, PURPOSE))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("sip_password")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("sip_password", sa.String(128)))
    _copy("sip_password_sealed", "sip_password", lambda box, sealed: box.open(sealed, PURPOSE))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("sip_password_sealed")
