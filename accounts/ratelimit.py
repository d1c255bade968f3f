"""Failed logins slow down the guesser, never lock out the user: delays in Redis.

Three counters, each checked before a password is (during a wait even the right password
gets 429 with ``Retry-After``):

* **per username and address** (the pair): after ``attempts`` failures, each further failure
  makes that pair wait ``delay_s``, doubling, up to ``delay_max_s``. Someone guessing an
  agent's password slows down that agent at that address only, and only for a while: the
  others behind the same NAT log in as usual, the agent from anywhere else too, and even
  at the guesser's address the agent gets in once the wait is over;
* **per username, from addresses it never logged in from** (guessing one account from many
  addresses): after ``user_attempts`` such failures, those unknown addresses wait likewise.
  The addresses the user logged in from in the last ``KNOWN_FOR_S`` are not slowed by it, so
  this cannot be turned against the user at their desk;
* **per address, whatever the username** (one password tried on many accounts): a coarse
  ceiling of ``address_failures`` within ``address_window_s``, high enough that a centre of
  hundreds logging in behind one NAT never reaches it by mistyping.

A success clears its pair and makes its address known for the user; never the address's
ceiling (one account an attacker owns must not buy fresh tries on others).

Keys hold hashes (``<prefix>:login:pair:<sha256>``...), not usernames or addresses, so that
a key listing shows no personal data; the pairs and users being slowed keep the username and
address as values, for the operators' ``hotline users lockouts`` and ``unlock``. IPv6
addresses count per /64, what one subscriber usually gets. Time is Redis's (``TIME``), so
that every process of a deployment agrees.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from core.settings import HttpSettings

#: An address is known for a user this long after the user's last login from it.
KNOWN_FOR_S = 30 * 24 * 3600

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_CHECK = _NOW + """
-- KEYS: pair, user, address, known set of the user; ARGV: address digest, address ceiling
-- Returns the ms to wait (0: go ahead).
local wait = 0
local function until_of(key)
  local u = tonumber(redis.call('HGET', key, 'until') or '0')
  if u - now > wait then wait = u - now end
end
until_of(KEYS[1])
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then until_of(KEYS[2]) end
if tonumber(redis.call('HGET', KEYS[3], 'fails') or '0') >= tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[3])
  if left > wait then wait = left end
end
return wait
"""

_FAILED = _NOW + """
-- KEYS: pair, user, address, known set; ARGV: address digest, username, address shown,
--   attempts, user attempts, delay ms, delay max ms, window ms, address window ms
local function slow(key, free)
  local fails = redis.call('HINCRBY', key, 'fails', 1)
  redis.call('HSET', key, 'username', ARGV[2], 'address', ARGV[3], 'last', now)
  local wait = 0
  if fails >= free then
    wait = math.floor(math.min(tonumber(ARGV[7]), tonumber(ARGV[6]) * 2 ^ (fails - free)))
    redis.call('HSET', key, 'until', now + wait)
  end
  redis.call('PEXPIRE', key, math.floor(wait + tonumber(ARGV[8])))
end
slow(KEYS[1], tonumber(ARGV[4]))
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then slow(KEYS[2], tonumber(ARGV[5])) end
if redis.call('HINCRBY', KEYS[3], 'fails', 1) == 1 then
  redis.call('HSET', KEYS[3], 'address', ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[9])
end
return 1
"""

_SUCCEEDED = """
-- KEYS: pair, known set; ARGV: address digest, known for ms
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class Lockout:
    """A username (at an address, or from unknown addresses) or an address being slowed."""

    kind: str  # "user at address", "user from unknown addresses", "address"
    username: str | None
    address: str | None
    failures: int
    wait_s: float


class LoginLimiter:
    def __init__(self, redis: Redis, prefix: str, *, attempts: int = 5, delay_s: float = 1.0,
                 delay_max_s: float = 900.0, window_s: float = 900.0, user_attempts: int = 20,
                 address_failures: int = 1000, address_window_s: float = 600.0) -> None:
        if min(attempts, user_attempts, address_failures) < 1:
            raise ValueError("attempts, user_attempts and address_failures must be 1 or more")
        if min(delay_s, window_s, address_window_s) <= 0 or delay_max_s < delay_s:
            raise ValueError("delays and windows must be positive, delay_max_s at least delay_s")
        self.redis = redis
        self.attempts, self.user_attempts, self.address_failures = attempts, user_attempts, address_failures
        self._ms = [max(1, round(v * 1000)) for v in (delay_s, delay_max_s, window_s, address_window_s)]
        self._prefix = f"{prefix}:login"
        self._check = redis.register_script(_CHECK)
        self._failed = redis.register_script(_FAILED)
        self._succeeded = redis.register_script(_SUCCEEDED)

    @classmethod
    def from_settings(cls, redis: Redis, prefix: str, http: HttpSettings) -> LoginLimiter:
        return cls(redis, prefix, attempts=http.login_attempts, delay_s=http.login_delay_s,
                   delay_max_s=http.login_delay_max_s, window_s=http.login_window_s,
                   user_attempts=http.login_user_attempts, address_failures=http.login_address_failures,
                   address_window_s=http.login_address_window_s)

    async def retry_after(self, username: str, address: str | None) -> float | None:
        """Seconds until a login for ``username`` from ``address`` may be tried, or None: now."""
        keys, group = self._keys(username, address)
        wait_ms = int(await self._check(keys=keys, args=[_digest(group), self.address_failures]))
        return wait_ms / 1000 if wait_ms > 0 else None

    async def failed(self, username: str, address: str | None) -> None:
        """Count one failed login."""
        keys, group = self._keys(username, address)
        delay, delay_max, window, address_window = self._ms
        await self._failed(keys=keys, args=[_digest(group), _name(username), group, self.attempts,
                                            self.user_attempts, delay, delay_max, window, address_window])

    async def succeeded(self, username: str, address: str | None = None) -> None:
        """Forget the pair's failures and know the address for the user (see the module's note)."""
        keys, group = self._keys(username, address)
        await self._succeeded(keys=[keys[0], keys[3]], args=[_digest(group), KNOWN_FOR_S * 1000])

    # ------------------------------------------------------------------ for the operators

    async def lockouts(self) -> list[Lockout]:
        """Every pair and username now made to wait, and every address at its ceiling."""
        now_s, now_us = await self.redis.time()
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        found: list[Lockout] = []
        for kind, pattern in (("user at address", "pair"), ("user from unknown addresses", "user")):
            async for key in self.redis.scan_iter(match=f"{self._prefix}:{pattern}:*", count=500):
                row = _text(await self.redis.hgetall(key))
                left = int(row.get("until", "0")) - now_ms
                if left > 0:
                    found.append(Lockout(kind, row.get("username"), row.get("address") if pattern == "pair" else None,
                                         int(row.get("fails", "0")), left / 1000))
        async for key in self.redis.scan_iter(match=f"{self._prefix}:addr:*", count=500):
            row = _text(await self.redis.hgetall(key))
            count = int(row.get("fails", "0"))
            if count >= self.address_failures:
                found.append(Lockout("address", None, row.get("address"), count,
                                     max(0, await self.redis.pttl(key)) / 1000))
        return sorted(found, key=lambda lock: (lock.username or "", lock.address or ""))

    async def unlock(self, username: str) -> int:
        """Forget the failed logins of ``username`` (at every address, and from unknown ones), so
        that no wait is left; how many counters there were."""
        name = _name(username)
        ended = 0
        async for key in self.redis.scan_iter(match=f"{self._prefix}:pair:*", count=500):
            if _text_one(await self.redis.hget(key, "username") or b"") == name:
                ended += int(await self.redis.delete(key))
        ended += int(await self.redis.delete(self._user_key(name)))
        return ended

    async def unlock_address(self, address: str) -> int:
        """Reset the ceiling of ``address`` (its /64 for IPv6)."""
        return int(await self.redis.delete(self._address_key(address_group(address))))

    # ------------------------------------------------------------------ keys

    def _keys(self, username: str, address: str | None) -> tuple[list[str], str]:
        name = _name(username)
        group = address_group(address) if address else "unknown"
        return [f"{self._prefix}:pair:{_digest(f'{name} {group}')}", self._user_key(name),
                self._address_key(group), f"{self._prefix}:known:{_digest(name)}"], group

    def _user_key(self, name: str) -> str:
        return f"{self._prefix}:user:{_digest(name)}"

    def _address_key(self, group: str) -> str:
        return f"{self._prefix}:addr:{_digest(group)}"


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, rounded up, at least 1 (what ``Retry-After`` carries)."""
    return str(max(1, math.ceil(wait_s)))


def address_group(address: str) -> str:
    """What one client's address counts as: itself (IPv4), its /64 (IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a Unix socket's peer): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _name(username: str) -> str:
    # Usernames are case-insensitive: Zhang and zhang share one counter.
    return username.strip().lower()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def _text_one(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _text(row: dict[Any, Any]) -> dict[str, str]:
    return {_text_one(k): _text_one(v) for k, v in row.items()}
