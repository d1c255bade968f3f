"""Schema migrations (Alembic, configured here in code: there is no alembic.ini).

:func:`upgrade` brings a database to the newest revision. It is safe to call at every start
and from several processes at once: the whole upgrade runs in one transaction that first
takes a lock, a transaction-level advisory lock on PostgreSQL and ``BEGIN IMMEDIATE`` (the
write lock) on SQLite, so the second process waits, then finds the schema current and does
nothing. A failed upgrade rolls back whole (PostgreSQL and SQLite both have transactional DDL).

A database made by the old ``create_schema`` (tables, no ``alembic_version``) is adopted:
its tables are checked against revision ``0001_initial``, the tables of that revision it
lacks are created, it is stamped at ``0001_initial`` and then upgraded as any other.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.arguments import action
from core.arguments import command as command_parser
from core.db import Base, make_engine
from core.sealing import secret_box
from core.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The revision a database made by the old ``create_schema`` is adopted at.
ADOPTED_REVISION = "0001_initial"
#: PostgreSQL advisory lock key of schema changes (the bytes of "hotline" as one bigint).
LOCK_KEY = int.from_bytes(b"hotline", "big")


class SchemaMismatch(RuntimeError):
    """A database without migration history whose tables are not the ones we would adopt."""


def target_metadata() -> MetaData:
    """The metadata of the models imported so far (the features' ``models`` modules register
    their tables on :class:`Base` when imported): what autogenerate compares against."""
    return Base.metadata


def alembic_config(connection: Connection | None = None, settings: Settings | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    if settings is not None:
        # Called only by a revision that has something to seal: no key file for nothing.
        config.attributes["secret_box"] = lambda: secret_box(settings)
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


async def upgrade(engine: AsyncEngine, settings: Settings | None = None) -> None:
    """Bring the database to the newest revision (adopting an unversioned one first).
    ``settings`` give the key of the secrets a revision seals (see 0006); without them, a
    database with secrets to seal is refused."""
    _quiet_alembic()
    async with engine.connect() as conn:
        await _lock(conn)
        before, after = await conn.run_sync(_upgrade, settings)
        await conn.commit()
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "nothing", after)


async def create_schema(engine: AsyncEngine, settings: Settings | None = None) -> None:
    """What every process calls at start (the name is kept from before migrations)."""
    await upgrade(engine, settings)


async def current(engine: AsyncEngine) -> str | None:
    """The database's revision, ``None`` when it has none (empty or never migrated)."""
    _quiet_alembic()
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def _quiet_alembic() -> None:
    # Alembic says "Context impl ..." at INFO on every start; upgrade() logs what changed.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        # Released by the commit or rollback that ends the transaction, also if we die.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        # The driver would begin only at the first INSERT, after the version was read:
        # begin now, taking the write lock, so that the version read is the one we change.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, settings: Settings | None) -> tuple[str | None, str | None]:
    config = alembic_config(connection, settings)
    if not inspect(connection).has_table("alembic_version"):
        _adopt(connection, config)
    before = _current(connection)
    command.upgrade(config, "head")
    return before, _current(connection)


def _adopt(connection: Connection, config: Config) -> None:
    """Stamp a database made by the old ``create_schema``; a fresh one is left alone."""
    frozen = ScriptDirectory.from_config(config).get_revision(ADOPTED_REVISION).module.schema()
    existing = set(inspect(connection).get_table_names())
    ours = existing & set(frozen.tables)
    if not ours:
        return
    differences = _differences(connection, frozen, ours)
    if differences:
        listed = "; ".join(differences)
        raise SchemaMismatch(f"the database has tables but no migration history, and they differ from "
                             f"revision {ADOPTED_REVISION}: {listed}. Fix them by hand (or start from an "
                             f"empty database); nothing was changed")
    for table in frozen.sorted_tables:
        if table.name not in existing:
            table.create(connection)
    command.stamp(config, ADOPTED_REVISION)
    log.info("adopted a database made before migrations (tables %s) at revision %s",
             ", ".join(sorted(ours)), ADOPTED_REVISION)


def _differences(connection: Connection, metadata: MetaData, tables: set[str]) -> list[str]:
    """What differs between ``metadata`` and the database, for the tables named."""

    def include(_obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        return type_ != "table" or name in tables

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
    return [_describe(diff) for diff in _flatten(compare_metadata(context, metadata))]


def _flatten(diffs: list[Any]) -> list[Any]:
    # Column changes come as a list of tuples per column; the rest as one tuple each.
    out: list[Any] = []
    for diff in diffs:
        out.extend(diff if isinstance(diff, list) else [diff])
    return out


def _describe(diff: tuple[Any, ...]) -> str:
    kind = diff[0]
    if kind in ("add_column", "remove_column"):
        return f"{kind.replace('_', ' ')} {diff[2]}.{diff[3].name}"
    if kind.startswith("modify_"):
        return f"{kind.replace('_', ' ')} {diff[2]}.{diff[3]}: {diff[5]!r} in the database, {diff[6]!r} expected"
    target = diff[1]
    return f"{kind.replace('_', ' ')} {getattr(target, 'name', target)}"


# --------------------------------------------------------------------------- the command


def main(settings: Settings, argv: list[str]) -> int:
    """``hotline db upgrade|current|history``."""
    parser = command_parser(
        "hotline db",
        "The database schema, as Alembic migrations ([database] url, HOTLINE_DATABASE__URL).\n"
        "Every start of the application upgrades it too; this is for doing it beforehand or looking.",
        "hotline db upgrade", "hotline db current",
        "HOTLINE_DATABASE__URL=postgresql+asyncpg://hotline:...@db/hotline hotline db upgrade")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, summary, description in (
        ("upgrade", "bring the database to the newest revision",
         "Apply the migrations the database lacks, then print its revision."),
        ("current", "print the database's revision", "Print the database's URL (password hidden) and revision."),
        ("history", "list the revisions, newest first", "List the migrations, newest first; needs no database."),
    ):
        action(sub, name, summary, description, f"hotline db {name}")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.action == "history":
        return _history()
    try:
        return asyncio.run(_run(settings, args.action))
    except SchemaMismatch as exc:
        print(f"hotline db: {exc}", file=sys.stderr)
        return 1


async def _run(settings: Settings, action: str) -> int:
    engine = make_engine(settings.database.url)
    try:
        if action == "upgrade":
            await upgrade(engine, settings)
        revision = await current(engine)
    finally:
        await engine.dispose()
    print(f"{engine.url.render_as_string(hide_password=True)}: {revision or 'no revision (empty database)'}"
          f"{' (head)' if revision == scripts().get_current_head() else ''}")
    return 0


def _history() -> int:
    for script in scripts().walk_revisions():
        head = " (head)" if script.is_head else ""
        print(f"{script.down_revision or '<base>'} -> {script.revision}{head}: {script.doc}")
    return 0
