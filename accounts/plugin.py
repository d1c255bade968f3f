"""The accounts feature: agents, supervisors and admins, their sessions, and the login,
logout and CSRF checks every page and API of the desktop goes through."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.auth import OnLogout
from accounts.http import install
from accounts.models import User
from accounts.passwords import Passwords
from accounts.services import AccountService
from accounts.sessions import SessionStore
from core.db import sessionmaker
from core.jurisdictions import JurisdictionTree
from core.plugins import Feature
from core.sealing import secret_box
from core.settings import Settings


@dataclass
class Accounts:
    service: AccountService
    sessions: SessionStore
    #: Awaited in order after a user logs out (the desktop signs an agent out of the queues).
    on_logout: list[OnLogout] = field(default_factory=list)

    async def logged_out(self, user: User) -> None:
        for listener in self.on_logout:
            await listener(user)


async def build(*, settings: Settings, db: AsyncEngine, redis: Redis, tree: JurisdictionTree,
                passwords: Passwords | None = None) -> Feature | None:
    # Who logs in is an agent or supervisor of the queues' desktop and wallboard.
    if not (settings.http.enabled and settings.queues.enabled):
        return None
    sessions = SessionStore(redis, settings.redis.prefix, settings.http.session_idle_s)
    # The key file, when there is no key in the settings, is made here: at the start, not at a login.
    box = await asyncio.to_thread(secret_box, settings)
    accounts = Accounts(AccountService(sessionmaker(db), tree, passwords=passwords, session_store=sessions,
                                       box=box), sessions)

    def routes(app: web.Application) -> None:
        install(app, accounts=accounts.service, sessions=sessions, settings=settings, on_logout=accounts.logged_out)

    return Feature(api=accounts, routes=routes)
