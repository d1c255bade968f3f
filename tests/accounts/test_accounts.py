"""The account service on SQLite and PostgreSQL: users added with every field checked,
logging in (wrong password, unknown user, disabled user), disabling, new passwords."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from accounts.passwords import Passwords
from accounts.services import AccountError, AccountService, UnknownUser
from accounts.sessions import SessionStore
from core.db import sessionmaker
from core.jurisdictions import JurisdictionTree
from tests.support.accounts import PASSWORD, Users

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_an_agent_is_added_and_logs_in_with_their_password(account_service: AccountService,
                                                                  users: Users) -> None:
    added = await users.agent("Zhang.Wei", agent_id="1001", lines=["general", "price"], language="en-US")
    assert added.username == "zhang.wei" and added.role == "agent" and added.jurisdiction == "330106"
    assert added.sip_endpoint == "PJSIP/1001" and added.lines == ["general", "price"]
    assert added.password_hash.startswith("$argon2id$") and added.last_login_at is None

    user = await account_service.authenticate("ZHANG.WEI", PASSWORD)  # usernames ignore case
    assert user is not None and user.id == added.id and user.last_login_at is not None
    assert (await account_service.by_agent_id("1001")).id == added.id  # type: ignore[union-attr]
    assert (await account_service.get(added.id)).language == "en-US"  # type: ignore[union-attr]


async def test_a_wrong_password_an_unknown_user_and_a_disabled_user_are_all_just_refused(
        account_service: AccountService, users: Users) -> None:
    await users.agent("liu")
    await users.supervisor("chen")
    await account_service.disable("chen")
    assert await account_service.authenticate("liu", "wrong password!") is None
    assert await account_service.authenticate("nobody", PASSWORD) is None
    assert await account_service.authenticate("chen", PASSWORD) is None
    assert await account_service.authenticate("not a valid name!", PASSWORD) is None
    assert await account_service.authenticate("liu", "x" * 10_000) is None
    await account_service.enable("chen")
    assert await account_service.authenticate("chen", PASSWORD) is not None


async def test_a_username_or_agent_id_is_taken_only_once(users: Users) -> None:
    await users.agent("wang", agent_id="1001")
    with pytest.raises(AccountError, match="username: 'wang' is already taken") as caught:
        await users.agent("WANG", agent_id="1002")
    assert caught.value.field == "username"
    with pytest.raises(AccountError, match="agent_id: '1001' already belongs to another user"):
        await users.agent("wang2", agent_id="1001")


@sqlite_only
@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"role": "boss"}, "role", "must be one of agent, supervisor, admin (got 'boss')"),
    ({"jurisdiction": "999999"}, "jurisdiction", "unknown jurisdiction code '999999'"),
    ({"jurisdiction": "330106-09"}, "jurisdiction", "unknown jurisdiction code '330106-09'"),
    ({"username": "a"}, "username", "must be 2 to 64 of a-z"),
    ({"username": "张伟"}, "username", "must be 2 to 64 of a-z"),
    ({"display_name": "  "}, "display_name", "must not be empty"),
    ({"agent_id": None}, "agent_id", "an agent needs the queue engine's agent id"),
    ({"agent_id": "10 01"}, "agent_id", "must be 1 to 32 of"),
    ({"sip_endpoint": None}, "sip_endpoint", "an agent needs the phone the queue rings"),
    ({"sip_endpoint": "SIP/1001"}, "sip_endpoint", "must look like PJSIP/1001 (got 'SIP/1001')"),
    ({"sip_password": "has space"}, "sip_password", "printable characters without spaces"),
    ({"lines": ["general", "gas"]}, "lines", "unknown business line(s) 'gas'; the lines are general, quality"),
    ({"lines": []}, "lines", "must name at least one of"),
    ({"lines": "general"}, "lines", "must be a list of business lines"),
    ({"language": "fr-FR"}, "language", "must be one of zh-CN, en-US (got 'fr-FR')"),
    ({"password": "too short"}, "password", "must be at least 10 characters long (got 9)"),
])
async def test_a_bad_field_is_refused_naming_it(account_service: AccountService, fields: dict[str, Any],
                                                field: str, message: str) -> None:
    agent: dict[str, Any] = {"username": "zhao", "password": PASSWORD, "role": "agent", "jurisdiction": "330106",
                             "display_name": "赵", "agent_id": "1001", "sip_endpoint": "PJSIP/1001"}
    with pytest.raises(AccountError) as caught:
        await account_service.add_user(**{**agent, **fields})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and message in str(caught.value)
    assert await account_service.list() == []


@sqlite_only
async def test_only_agents_have_an_agent_id_and_supervisors_may_have_a_phone(users: Users) -> None:
    with pytest.raises(AccountError, match="agent_id: only agents have an agent id"):
        await users.supervisor(agent_id="2001")
    supervisor = await users.supervisor(sip_endpoint="PJSIP/9001", jurisdiction="330106-01")
    assert supervisor.agent_id is None and supervisor.sip_endpoint == "PJSIP/9001"
    assert supervisor.jurisdiction == "330106-01"
    assert supervisor.lines == ["general", "quality", "food_drug", "price", "intellectual_property"]


@sqlite_only
async def test_users_are_listed_by_username_and_by_role(account_service: AccountService, users: Users) -> None:
    await users.agent("b-agent")
    await users.agent("a-agent")
    await users.admin()
    await account_service.disable("a-agent")
    assert [u.username for u in await account_service.list()] == ["a-agent", "admin", "b-agent"]
    assert [u.username for u in await account_service.list(role="agent", include_disabled=False)] == ["b-agent"]


async def test_disabling_or_changing_the_password_ends_every_session_of_the_user(
        account_service: AccountService, session_store: SessionStore, users: Users) -> None:
    agent = await users.agent()
    other = await users.supervisor()
    tokens = [(await session_store.create(agent.id))[0] for _ in range(2)]
    other_token, _ = await session_store.create(other.id)

    await account_service.set_password(agent.username, "a new passphrase")
    assert [await session_store.get(t) for t in tokens] == [None, None]
    assert await account_service.authenticate(agent.username, PASSWORD) is None
    assert await account_service.authenticate(agent.username, "a new passphrase") is not None

    token, _ = await session_store.create(agent.id)
    await account_service.disable(agent.id)
    assert await session_store.get(token) is None
    assert await session_store.get(other_token) is not None  # nobody else's


@sqlite_only
async def test_changing_an_unknown_user_or_to_a_short_password_is_refused(account_service: AccountService,
                                                                        users: Users) -> None:
    await users.agent("sun")
    with pytest.raises(UnknownUser):
        await account_service.disable("nobody")
    with pytest.raises(AccountError, match="password: must be at least 10"):
        await account_service.set_password("sun", "short")


@sqlite_only
async def test_a_hash_made_with_older_parameters_is_replaced_at_the_next_login(
        engine: AsyncEngine, jurisdiction_tree: JurisdictionTree, users: Users) -> None:
    agent = await users.agent()  # hashed with the cheap parameters
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    accounts = AccountService(sessionmaker(engine), jurisdiction_tree, passwords=stronger)
    assert stronger.needs_rehash(agent.password_hash)

    assert await accounts.authenticate(agent.username, "wrong password!") is None
    assert (await accounts.get(agent.id)).password_hash == agent.password_hash  # type: ignore[union-attr]
    user = await accounts.authenticate(agent.username, PASSWORD)
    assert user is not None and not stronger.needs_rehash(user.password_hash)
    assert (await accounts.get(agent.id)).password_hash == user.password_hash  # type: ignore[union-attr]
    assert await accounts.authenticate(agent.username, PASSWORD) is not None


@sqlite_only
def test_the_service_wants_sessions_that_keep_what_they_loaded(engine: AsyncEngine,
                                                                jurisdiction_tree: JurisdictionTree) -> None:
    with pytest.raises(ValueError, match="expire_on_commit=False"):
        AccountService(async_sessionmaker(engine), jurisdiction_tree)


@sqlite_only
def test_a_users_repr_holds_no_secret_and_no_name(users: Users) -> None:
    from accounts.models import User

    user = User(id=7, username="li", role="agent", jurisdiction="330106", display_name="李四",
                sip_password_sealed="v1:sealed", password_hash="$argon2id$...", disabled=False)
    user.opened("sip-secret")
    assert repr(user) == "<User 7 li agent@330106>"
