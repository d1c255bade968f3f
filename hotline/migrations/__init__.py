"""Alembic migrations of the database schema; run them with ``hotline db upgrade`` or
:func:`hotline.migrate.upgrade` (the application does at every start)."""
