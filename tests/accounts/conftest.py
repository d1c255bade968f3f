"""The accounts fixtures: a jurisdiction tree with two stations, sessions and login limits on
the test redis-server, an account service on the ``engine`` fixture (SQLite and PostgreSQL in
turn) with cheap argon2 parameters so that tests stay fast and a key for SIP secrets, and a
:class:`Users` factory."""

from __future__ import annotations

import secrets

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.ratelimit import LoginLimiter
from accounts.services import AccountService
from accounts.sessions import SessionStore
from core.db import sessionmaker
from core.jurisdictions import JurisdictionTree
from core.sealing import SecretBox
from tests.support.accounts import Users, cheap_passwords
from tests.support.jurisdictions import stations_file


@pytest.fixture(scope="session")
def jurisdiction_tree(tmp_path_factory: pytest.TempPathFactory) -> JurisdictionTree:
    return JurisdictionTree.load(stations_file(tmp_path_factory.mktemp("stations")))


@pytest.fixture
def session_store(redis: Redis, redis_prefix: str) -> SessionStore:
    return SessionStore(redis, redis_prefix, idle_s=3600)


@pytest.fixture
def login_limiter(redis: Redis, redis_prefix: str) -> LoginLimiter:
    return LoginLimiter(redis, redis_prefix, attempts=5, delay_s=60, delay_max_s=900, window_s=900)


@pytest.fixture(scope="session")
def secret_box() -> SecretBox:
    return SecretBox(secrets.token_bytes(32))


@pytest.fixture
def account_service(engine: AsyncEngine, jurisdiction_tree: JurisdictionTree,
                    session_store: SessionStore, secret_box: SecretBox) -> AccountService:
    return AccountService(sessionmaker(engine), jurisdiction_tree, passwords=cheap_passwords(),
                          session_store=session_store, box=secret_box)


@pytest.fixture
def users(account_service: AccountService) -> Users:
    return Users(account_service)
