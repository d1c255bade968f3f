"""Agents' display names for the wallboard, from the accounts."""

from __future__ import annotations

import time
from collections.abc import Collection

from accounts.services import AccountService


class AccountsDirectory:
    """Agents' display names from the accounts, re-read at most every ``ttl_s`` seconds (names
    change rarely; the wallboard asks twice a second)."""

    #: An agent id not among the names is looked for again after this long at the soonest.
    UNKNOWN_RETRY_S = 2.0

    def __init__(self, accounts: AccountService, *, ttl_s: float = 30.0) -> None:
        self._accounts, self._ttl_s = accounts, ttl_s
        self._names: dict[str, str] = {}
        self._read_at = float("-inf")

    async def display_names(self, agent_ids: Collection[str]) -> dict[str, str]:
        age = time.monotonic() - self._read_at
        unknown = any(a not in self._names for a in agent_ids)
        if age > self._ttl_s or (unknown and age > self.UNKNOWN_RETRY_S):
            users = await self._accounts.list(role="agent")
            self._names = {u.agent_id: u.display_name for u in users if u.agent_id}
            self._read_at = time.monotonic()
        return {a: self._names[a] for a in agent_ids if a in self._names}
