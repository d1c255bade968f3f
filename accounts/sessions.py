"""Logged-in sessions, kept server-side in Redis.

The browser holds only a random token (``secrets.token_urlsafe(32)``, in the
``hotline_session`` cookie). Redis holds, under ``<prefix>:session:<sha256 of the token>``, the
user's id and the session's CSRF token, with a sliding expiry (``idle_s`` after the last
request). Keys are the token's hash so that a Redis dump or ``MONITOR`` does not hand out
cookies that still work.

Each user's live session hashes are also in a set (``<prefix>:user-sessions:<id>``), so that
disabling a user or changing their password ends all of their sessions at once. Every change
is one Lua script, so the session and the set never disagree; the set's expiry is pushed to
``idle_s`` whenever one of its sessions is created or touched, so it always outlives them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

_CREATE = """
-- KEYS[1] session, KEYS[2] the user's set; ARGV: user id, csrf, created ms, idle ms, session key prefix
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'csrf', ARGV[2], 'created_ms', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
-- Forget sessions of this user that expired meanwhile, so the set does not grow for ever.
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[5] .. member) == 0 then redis.call('SREM', KEYS[2], member) end
end
redis.call('SADD', KEYS[2], string.sub(KEYS[1], string.len(ARGV[5]) + 1))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""

_TOUCH = """
-- KEYS[1] session; ARGV: idle ms, user-set key prefix
local found = redis.call('HMGET', KEYS[1], 'user_id', 'csrf', 'created_ms')
if not found[1] then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', ARGV[2] .. found[1], ARGV[1])
return found
"""

_DELETE = """
-- KEYS[1] session; ARGV: user-set key prefix, the session's hash
local user_id = redis.call('HGET', KEYS[1], 'user_id')
if not user_id then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. user_id, ARGV[2])
return 1
"""

_DELETE_ALL = """
-- KEYS[1] the user's set; ARGV: session key prefix
local ended = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', ARGV[1] .. member)
end
redis.call('DEL', KEYS[1])
return ended
"""


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    #: Sent back by the browser in ``X-CSRF-Token`` on every change it asks for.
    csrf: str
    created_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    """Create, find, slide and end sessions. ``idle_s`` may be fractional (tests)."""

    def __init__(self, redis: Redis, prefix: str, idle_s: float) -> None:
        if idle_s <= 0:
            raise ValueError(f"idle_s must be positive, got {idle_s}")
        self.redis = redis
        self.prefix = prefix
        self.idle_ms = max(1, round(idle_s * 1000))
        self._session_prefix = f"{prefix}:session:"
        self._user_prefix = f"{prefix}:user-sessions:"
        self._create = redis.register_script(_CREATE)
        self._touch = redis.register_script(_TOUCH)
        self._delete = redis.register_script(_DELETE)
        self._delete_all = redis.register_script(_DELETE_ALL)

    async def create(self, user_id: int) -> tuple[str, Session]:
        """A new session of ``user_id``: the token for the cookie, and the session."""
        token = secrets.token_urlsafe(32)
        created_ms = round(datetime.now(UTC).timestamp() * 1000)
        session = Session(user_id, secrets.token_urlsafe(32), datetime.fromtimestamp(created_ms / 1000, UTC))
        await self._create(keys=[self._key(token), f"{self._user_prefix}{user_id}"],
                           args=[user_id, session.csrf, created_ms, self.idle_ms, self._session_prefix])
        return token, session

    async def get(self, token: str) -> Session | None:
        """The session of ``token``, without counting this as activity."""
        if not _plausible(token):
            return None
        found = await self.redis.hmget(self._key(token), ["user_id", "csrf", "created_ms"])
        return _session(found)

    async def touch(self, token: str) -> Session | None:
        """The session of ``token``, its idle expiry pushed back: what each request does."""
        if not _plausible(token):
            return None
        found = await self._touch(keys=[self._key(token)], args=[self.idle_ms, self._user_prefix])
        return _session(found) if found else None

    async def delete(self, token: str) -> bool:
        """End one session (logout); False when it had already ended."""
        if not _plausible(token):
            return False
        return bool(await self._delete(keys=[self._key(token)], args=[self._user_prefix, token_hash(token)]))

    async def delete_all_for(self, user_id: int) -> int:
        """End every session of ``user_id`` (disabled, password changed); how many there were."""
        return int(await self._delete_all(keys=[f"{self._user_prefix}{user_id}"], args=[self._session_prefix]))

    def _key(self, token: str) -> str:
        return f"{self._session_prefix}{token_hash(token)}"


def _plausible(token: str) -> bool:
    # A cookie is whatever the client sends: no need to ask Redis about an empty or huge one.
    return isinstance(token, str) and 0 < len(token) <= 128


def _session(found: list[bytes | str | None] | None) -> Session | None:
    if not found or found[0] is None or found[1] is None or found[2] is None:
        return None
    user_id, csrf, created_ms = (v.decode() if isinstance(v, bytes) else str(v) for v in found)
    return Session(int(user_id), csrf, datetime.fromtimestamp(int(created_ms) / 1000, UTC))
