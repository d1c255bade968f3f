"""Accounts: adding users with every field checked, logging them in, disabling them.

Every refusal is an :class:`AccountError` (a ``ValueError``) whose ``field`` names what is
wrong and whose message says what would be right, so that the CLI and any admin page can
show it as it is.

The users handed out are detached ORM rows (the session is closed): read their attributes,
do not change them; changes go through this service.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.models import LANGUAGES, LINES, Role, User
from accounts.passwords import MAX_LENGTH, Passwords, WeakPassword, check_password
from accounts.sessions import SessionStore
from core.jurisdictions import JurisdictionTree, UnknownJurisdiction
from core.sealing import SealingError, SecretBox

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_ENDPOINT = re.compile(r"PJSIP/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: What sealed SIP secrets are bound to (core.sealing; the same in migration 0006).
SIP_PURPOSE = "users.sip_password"


class AccountError(ValueError):
    """A change refused: ``field`` is the offending field, the message starts with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownUser(LookupError):
    def __init__(self, who: int | str) -> None:
        super().__init__(f"no user {who!r}")
        self.who = who


def normalize_username(username: str) -> str:
    """The stored form of a username (lower case), or :class:`AccountError`."""
    if not isinstance(username, str):
        raise AccountError("username", "must be a string")
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AccountError("username", f"must be 2 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter "
                                       f"or digit (got {username!r})")
    return name


class AccountService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tree: JurisdictionTree, *,
                 passwords: Passwords | None = None, session_store: SessionStore | None = None,
                 box: SecretBox | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """``sessions`` makes database sessions; ``session_store``, when given, is where the
        logged-in sessions live that :meth:`disable` and :meth:`set_password` end; ``box``
        seals SIP secrets and opens them into the users handed out (without it, users keep
        ``sip_password`` None and a new SIP secret is refused)."""
        if sessions.kw.get("expire_on_commit", True):
            # Users are handed back after their session closed; expired ones could not be read.
            raise ValueError("the account service needs sessions with expire_on_commit=False "
                             "(core.db.sessionmaker makes them)")
        self._db = sessions
        self.tree = tree
        self.passwords = passwords or Passwords()
        self._logins = session_store
        self._box = box
        self._clock = clock

    # ------------------------------------------------------------------ adding

    async def add_user(self, *, username: str, password: str, role: str, jurisdiction: str, display_name: str,
                       agent_id: str | None = None, sip_endpoint: str | None = None,
                       sip_password: str | None = None, lines: Iterable[str] | None = None,
                       language: str = "zh-CN") -> User:
        """A new user, every field checked (:class:`AccountError` names the first bad one)."""
        values = self._checked(username=username, role=role, jurisdiction=jurisdiction,
                               display_name=display_name, agent_id=agent_id, sip_endpoint=sip_endpoint,
                               sip_password=sip_password, lines=lines, language=language)
        try:
            check_password(password)
        except WeakPassword as exc:
            raise AccountError("password", str(exc).removeprefix("password: ")) from None
        await self._check_free(values["username"], values["agent_id"])
        sip_password = values.pop("sip_password")
        values["sip_password_sealed"] = self._seal(sip_password)
        user = User(**values, password_hash=await self.passwords.hash(password), disabled=False,
                    created_at=self._clock(), last_login_at=None)
        try:
            async with self._db.begin() as db:
                db.add(user)
        except IntegrityError:
            # Someone added the same name or agent id between our check and our insert.
            await self._check_free(values["username"], values["agent_id"])
            raise
        log.info("user %s added (%s at %s)", user.username, user.role, user.jurisdiction)
        user.opened(sip_password)
        return user

    def _seal(self, sip_password: str | None) -> str | None:
        if sip_password is None:
            return None
        if self._box is None:
            raise AccountError("sip_password", "cannot be stored: this account service has no secret key "
                                               "to encrypt it with ([accounts] secret_key)")
        return self._box.seal(sip_password, SIP_PURPOSE)

    def _open(self, user: User | None) -> User | None:
        """``user`` with its SIP secret opened (when there is a key to open it with)."""
        if user is not None and user.sip_password_sealed is not None and self._box is not None:
            try:
                user.opened(self._box.open(user.sip_password_sealed, SIP_PURPOSE))
            except SealingError as exc:
                # Another key than the one that sealed it: the phone cannot register, the rest works.
                log.error("user %s: %s", user.username, exc)
        return user

    def _checked(self, *, username: str, role: str, jurisdiction: str, display_name: str,
                 agent_id: str | None, sip_endpoint: str | None, sip_password: str | None,
                 lines: Iterable[str] | None, language: str) -> dict[str, Any]:
        if role not in tuple(Role):
            raise AccountError("role", f"must be one of {', '.join(Role)} (got {role!r})")
        is_agent = role == Role.AGENT
        return {
            "username": normalize_username(username),
            "role": str(role),
            "jurisdiction": self._jurisdiction(jurisdiction),
            "display_name": _display_name(display_name),
            "agent_id": _agent_id(agent_id, is_agent),
            "sip_endpoint": _endpoint(sip_endpoint, is_agent),
            "sip_password": _sip_password(sip_password),
            "lines": _lines(lines),
            "language": _language(language),
        }

    def _jurisdiction(self, code: str) -> str:
        try:
            return self.tree.get(code).code
        except UnknownJurisdiction as exc:
            raise AccountError("jurisdiction", str(exc)) from None

    async def _check_free(self, username: str, agent_id: str | None) -> None:
        async with self._db() as db:
            if await db.scalar(select(User.id).where(User.username == username)) is not None:
                raise AccountError("username", f"{username!r} is already taken")
            if agent_id is not None and await db.scalar(select(User.id).where(User.agent_id == agent_id)) is not None:
                raise AccountError("agent_id", f"{agent_id!r} already belongs to another user")

    # ------------------------------------------------------------------ logging in

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user, when the password is theirs and they are not disabled; else None.

        Every failure takes as long as a wrong password does (an unknown or disabled user is
        verified against a dummy hash), so the time of the answer does not say who exists."""
        if not isinstance(password, str) or len(password) > MAX_LENGTH:
            await self.passwords.verify_unknown("x" * MAX_LENGTH)
            return None
        try:
            name = normalize_username(username)
        except AccountError:
            await self.passwords.verify_unknown(password)
            return None
        user = await self.by_username(name)
        if user is None or user.disabled:
            await self.passwords.verify_unknown(password)
            return None
        if not await self.passwords.verify(user.password_hash, password):
            return None
        changes: dict[str, Any] = {"last_login_at": self._clock()}
        if self.passwords.needs_rehash(user.password_hash):
            # The only moment we hold the plain password: move the hash to today's parameters.
            changes["password_hash"] = await self.passwords.hash(password)
        async with self._db.begin() as db:
            await db.execute(update(User).where(User.id == user.id).values(**changes))
        for name_, value in changes.items():
            setattr(user, name_, value)
        return user

    # ------------------------------------------------------------------ reading

    async def get(self, user_id: int) -> User | None:
        async with self._db() as db:
            return self._open(await db.get(User, user_id))

    async def by_username(self, username: str) -> User | None:
        async with self._db() as db:
            return self._open(await db.scalar(select(User).where(User.username == username.strip().lower())))

    async def by_agent_id(self, agent_id: str) -> User | None:
        async with self._db() as db:
            return self._open(await db.scalar(select(User).where(User.agent_id == agent_id)))

    async def list(self, *, role: str | None = None, include_disabled: bool = True) -> Sequence[User]:
        """Users by username, optionally of one role, optionally only the enabled ones."""
        query = select(User).order_by(User.username)
        if role is not None:
            query = query.where(User.role == role)
        if not include_disabled:
            query = query.where(User.disabled.is_(False))
        async with self._db() as db:
            return [u for u in map(self._open, (await db.scalars(query)).all()) if u is not None]

    # ------------------------------------------------------------------ changing

    async def disable(self, who: int | str) -> User:
        """Stop ``who`` (id or username) from logging in, and end their sessions."""
        user = await self._set(who, disabled=True)
        await self._end_sessions(user)
        log.info("user %s disabled", user.username)
        return user

    async def enable(self, who: int | str) -> User:
        user = await self._set(who, disabled=False)
        log.info("user %s enabled", user.username)
        return user

    async def set_password(self, who: int | str, password: str) -> User:
        """A new password for ``who``; their sessions end (whoever knew the old one is out)."""
        try:
            check_password(password)
        except WeakPassword as exc:
            raise AccountError("password", str(exc).removeprefix("password: ")) from None
        user = await self._set(who, password_hash=await self.passwords.hash(password))
        await self._end_sessions(user)
        log.info("password of user %s changed", user.username)
        return user

    async def _set(self, who: int | str, **values: Any) -> User:
        async with self._db.begin() as db:
            user = await (db.get(User, who) if isinstance(who, int)
                          else db.scalar(select(User).where(User.username == who.strip().lower())))
            if user is None:
                raise UnknownUser(who)
            for name, value in values.items():
                setattr(user, name, value)
        opened = self._open(user)
        assert opened is not None
        return opened

    async def _end_sessions(self, user: User) -> None:
        if self._logins is not None:
            await self._logins.delete_all_for(user.id)


# ---------------------------------------------------------------------- field checks


def _display_name(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AccountError("display_name", "must not be empty")
    if len(value.strip()) > 100:
        raise AccountError("display_name", f"must be at most 100 characters (got {len(value.strip())})")
    return value.strip()


def _agent_id(value: str | None, is_agent: bool) -> str | None:
    if not is_agent:
        if value is not None:
            raise AccountError("agent_id", "only agents have an agent id")
        return None
    if value is None:
        raise AccountError("agent_id", "an agent needs the queue engine's agent id (e.g. 1001)")
    if not isinstance(value, str) or not _AGENT_ID.fullmatch(value):
        raise AccountError("agent_id", f"must be 1 to 32 of A-Z, a-z, 0-9, '_', '.' and '-' (got {value!r})")
    return value


def _endpoint(value: str | None, is_agent: bool) -> str | None:
    if value is None:
        if is_agent:
            raise AccountError("sip_endpoint", "an agent needs the phone the queue rings, e.g. PJSIP/1001")
        return None
    if not isinstance(value, str) or not _ENDPOINT.fullmatch(value):
        raise AccountError("sip_endpoint", f"must look like PJSIP/1001 (got {value!r})")
    return value


def _sip_password(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 128 or not value.isprintable() or " " in value:
        # The value itself is a secret: never echoed.
        raise AccountError("sip_password", "must be 1 to 128 printable characters without spaces")
    return value


def _lines(values: Iterable[str] | None) -> list[str]:
    if values is None:
        return list(LINES)  # everyone serves (or watches) every line unless told otherwise
    if isinstance(values, str):
        raise AccountError("lines", f"must be a list of business lines, not the string {values!r}")
    chosen = list(dict.fromkeys(values))
    unknown = [v for v in chosen if v not in LINES]
    if unknown:
        raise AccountError("lines", f"unknown business line(s) {', '.join(map(repr, unknown))}; "
                                    f"the lines are {', '.join(LINES)}")
    if not chosen:
        raise AccountError("lines", f"must name at least one of {', '.join(LINES)}")
    return chosen


def _language(value: str) -> str:
    if value not in LANGUAGES:
        raise AccountError("language", f"must be one of {', '.join(LANGUAGES)} (got {value!r})")
    return value
