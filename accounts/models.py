"""The ``users`` table: who may log in to the desktop or the wallboard, and as what.

Usernames are stored lower-cased (they are ASCII, see :mod:`accounts.services`), so that the
plain unique constraint makes them unique case-insensitively on every backend without a
functional index.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime
from core.vocabulary import BUSINESS_LINES


class Role(StrEnum):
    #: Answers calls of their home jurisdiction and writes tickets.
    AGENT = "agent"
    #: Watches (and listens to) everything in their jurisdiction's subtree.
    SUPERVISOR = "supervisor"
    #: Everything, everywhere.
    ADMIN = "admin"


#: Where a row keeps its opened SIP secret: an instance attribute the ORM knows nothing of.
_OPENED = "_sip_password_opened"
#: The desktop's languages (its ``i18n`` files).
LANGUAGES = ("zh-CN", "en-US")
#: The business lines an agent may serve (one per old hotline number).
LINES = BUSINESS_LINES


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: Lower-cased ASCII; what people type at the login page.
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    #: An agent's home; a supervisor's scope (the whole subtree); ``000000`` for admins.
    jurisdiction: Mapped[str] = mapped_column(String(16))
    #: The queue engine's id of an agent; agents only.
    agent_id: Mapped[str | None] = mapped_column(String(32))
    #: Where the queue engine rings the agent (``PJSIP/1001``); a supervisor's own phone for monitoring.
    sip_endpoint: Mapped[str | None] = mapped_column(String(80))
    #: The SIP account's secret, which the browser needs to register (so it cannot be a hash):
    #: sealed (AES-GCM, core.sealing) under the settings' key; never logged, never in a repr.
    #: The account service opens it into :attr:`sip_password` when it hands the user out.
    sip_password_sealed: Mapped[str | None] = mapped_column(String(255))
    lines: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8))
    #: argon2id, in the PHC string format (parameters included, so they can change).
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("username", name="uq_users_username"),
        UniqueConstraint("agent_id", name="uq_users_agent_id"),
        Index("ix_users_jurisdiction", "jurisdiction"),
    )

    @property
    def sip_password(self) -> str | None:
        """The SIP secret in clear, when the account service opened it (never stored so)."""
        value = self.__dict__.get(_OPENED)
        return value if isinstance(value, str) else None

    def opened(self, sip_password: str | None) -> None:
        """Keep the opened SIP secret on this (detached) row, outside what the ORM maps."""
        self.__dict__[_OPENED] = sip_password

    def __repr__(self) -> str:
        # Reprs end up in logs and tracebacks: no secrets, no display name (a person's name).
        return f"<User {self.id} {self.username} {self.role}@{self.jurisdiction}{' disabled' if self.disabled else ''}>"
