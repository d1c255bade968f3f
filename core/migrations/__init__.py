"""Alembic migrations of the database schema; run them with ``hotline db upgrade`` or
:func:`core.migrate.upgrade` (the application does at every start)."""
