"""Agents' SIP secrets are sealed at rest (AES-GCM under the settings' key), on SQLite and
PostgreSQL: the database never holds them in clear, the users handed out carry them opened,
and the migration seals the secrets of a database from before."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.services import AccountError, AccountService
from core import migrate
from core.db import make_engine, sessionmaker
from core.jurisdictions import JurisdictionTree
from core.sealing import KEY_FILE, SealingError, SecretBox, parse_key, secret_key
from core.settings import load_settings
from tests.support.accounts import Users, cheap_passwords


async def stored_secrets(engine: AsyncEngine) -> list[str | None]:
    async with engine.connect() as conn:
        return [row[0] for row in await conn.execute(text("SELECT sip_password_sealed FROM users ORDER BY id"))]


async def test_the_database_holds_the_sip_secret_sealed_and_users_come_out_with_it_opened(
        engine: AsyncEngine, users: Users, account_service: AccountService,
        jurisdiction_tree: JurisdictionTree, caplog: pytest.LogCaptureFixture) -> None:
    added = await users.agent("wu", sip_password="wu-sip-secret")
    assert added.sip_password == "wu-sip-secret"
    [sealed] = await stored_secrets(engine)
    assert sealed is not None and sealed.startswith("v1:") and "wu-sip-secret" not in sealed
    for found in (await account_service.get(added.id), await account_service.by_username("wu"),
                  await account_service.by_agent_id(added.agent_id or ""), *(await account_service.list())):
        assert found is not None and found.sip_password == "wu-sip-secret"
    assert (await account_service.disable("wu")).sip_password == "wu-sip-secret"

    # Without the key, no secret comes out and none goes in; with another key, none comes out.
    keyless = AccountService(sessionmaker(engine), jurisdiction_tree, passwords=cheap_passwords())
    assert (await keyless.get(added.id)).sip_password is None  # type: ignore[union-attr]
    with pytest.raises(AccountError, match="sip_password: cannot be stored"):
        await Users(keyless).agent("zheng", agent_id="1099", sip_password="x-secret")
    other = AccountService(sessionmaker(engine), jurisdiction_tree, box=SecretBox(secrets.token_bytes(32)))
    with caplog.at_level(logging.ERROR):
        assert (await other.get(added.id)).sip_password is None  # type: ignore[union-attr]
    assert "does not open with this key" in caplog.text and "wu-sip-secret" not in caplog.text


def test_a_sealed_value_opens_only_with_its_key_and_for_its_purpose() -> None:
    box = SecretBox(secrets.token_bytes(32))
    sealed = box.seal("秘密 secret", "users.sip_password")
    assert box.seal("秘密 secret", "users.sip_password") != sealed  # a fresh nonce each time
    assert box.open(sealed, "users.sip_password") == "秘密 secret"
    for wrong in (lambda: box.open(sealed, "another.column"),
                  lambda: SecretBox(secrets.token_bytes(32)).open(sealed, "users.sip_password"),
                  lambda: box.open(sealed[:-4] + "AAAA", "users.sip_password"),
                  lambda: box.open("plain", "users.sip_password")):
        with pytest.raises(SealingError):
            wrong()


def test_without_a_key_in_the_settings_one_is_made_once_in_var_dir_readable_by_us_only(tmp_path: Path) -> None:
    settings = load_settings(var_dir=str(tmp_path / "var"))
    key = secret_key(settings)
    path = tmp_path / "var" / KEY_FILE
    assert len(key) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_key(settings) == key  # read back, not made again
    given = load_settings(var_dir=str(tmp_path / "other"), accounts={"secret_key": path.read_text().strip()})
    assert secret_key(given) == key and not (tmp_path / "other" / KEY_FILE).exists()
    with pytest.raises(SealingError, match="32 bytes"):
        parse_key("c2hvcnQ=")


async def test_the_migration_seals_the_secrets_of_a_database_from_before_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    settings = load_settings(profile="test", database={"url": database_url})

    async def to(revision: str, *, with_settings: bool, down: bool = False) -> None:
        async with engine.connect() as conn:
            await conn.run_sync(lambda c: (command.downgrade if down else command.upgrade)(
                migrate.alembic_config(c, settings if with_settings else None), revision))
            await conn.commit()

    try:
        await to("0005_cdr_imports", with_settings=False)
        async with engine.begin() as conn:
            for n, secret in ((1, "old-secret-1"), (2, None)):
                await conn.execute(text(
                    "INSERT INTO users (id, username, display_name, role, jurisdiction, agent_id, sip_endpoint, "
                    "sip_password, lines, language, password_hash, disabled, created_at) VALUES (:id, :u, 'x', "
                    "'agent', '330106', :a, :e, :s, '[]', 'zh-CN', 'h', false, '2026-12-01 00:00:00+00')"),
                    {"id": n, "u": f"old{n}", "a": f"10{n}", "e": f"PJSIP/10{n}", "s": secret})

        # Without the key, the migration refuses and changes nothing.
        with pytest.raises(RuntimeError, match="without the settings that hold the key"):
            await migrate.upgrade(engine)
        assert await migrate.current(engine) == "0005_cdr_imports"

        await migrate.upgrade(engine, settings)
        [sealed, none] = await stored_secrets(engine)
        assert none is None and sealed is not None and "old-secret-1" not in sealed
        accounts = AccountService(sessionmaker(engine), JurisdictionTree.load(),
                                  box=SecretBox(secret_key(settings)))
        assert (await accounts.get(1)).sip_password == "old-secret-1"  # type: ignore[union-attr]

        await to("0005_cdr_imports", with_settings=True, down=True)
        async with engine.connect() as conn:
            clear = [r[0] for r in await conn.execute(text("SELECT sip_password FROM users ORDER BY id"))]
        assert clear == ["old-secret-1", None]
    finally:
        await engine.dispose()
