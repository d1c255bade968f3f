"""Alembic's environment: runs the migrations on the connection :mod:`core.migrate` hands
over (a synchronous view of our async engine's connection, through ``run_sync``).

That connection is already inside a transaction that holds the migration lock, so Alembic
neither begins nor commits one: all revisions of one upgrade commit together, or none do.
"""

from __future__ import annotations

from alembic import context

from core.migrate import target_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run on a connection given by core.migrate "
                       "(`hotline db upgrade`), not from the alembic command line")

context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    # SQLite cannot ALTER most things: later revisions' op.batch_alter_table copies the table.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
