"""Failed-login counters in Redis, per username and per client address (fixed windows).

After ``attempts`` failures within ``window_s`` (the window starts at the first failure), a
username, or an address, is refused for the rest of the window, whatever the password: 429
with ``Retry-After``. Counting per username stops guessing one account's password from many
addresses; counting per address stops trying one password on many accounts.

A successful login clears its username's counter but not its address's: one account an
attacker owns must not buy them fresh attempts on others from the same address.

Keys hold hashes (``<prefix>:login-failures:user:<sha256>``, ``...:addr:<sha256>``), not the
username or address, which are personal data. IPv6 addresses count per /64, which is what
one subscriber usually gets: counting single addresses there counts nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math

from redis.asyncio import Redis

_FAILED = """
-- KEYS: the username's and the address's counters; ARGV[1] window ms
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1
"""

_STATUS = """
-- KEYS: counters; returns for each: failures, ms left of its window
local out = {}
for _, key in ipairs(KEYS) do
  table.insert(out, tonumber(redis.call('GET', key) or '0'))
  table.insert(out, redis.call('PTTL', key))
end
return out
"""


class LoginLimiter:
    def __init__(self, redis: Redis, prefix: str, *, attempts: int, window_s: float) -> None:
        if attempts < 1 or window_s <= 0:
            raise ValueError(f"attempts must be 1 or more and window_s positive, got {attempts}, {window_s}")
        self.redis = redis
        self.attempts = attempts
        self.window_ms = max(1, round(window_s * 1000))
        self._prefix = f"{prefix}:login-failures"
        self._failed = redis.register_script(_FAILED)
        self._status = redis.register_script(_STATUS)

    async def retry_after(self, username: str, address: str | None) -> int | None:
        """Seconds until a login for ``username`` from ``address`` may be tried again, or
        None when it may be tried now."""
        found = await self._status(keys=self._keys(username, address))
        waits = [math.ceil(int(left) / 1000) for count, left in zip(found[::2], found[1::2], strict=True)
                 if int(count) >= self.attempts and int(left) > 0]
        return max(waits) if waits else None

    async def failed(self, username: str, address: str | None) -> None:
        """Count one failed login."""
        await self._failed(keys=self._keys(username, address), args=[self.window_ms])

    async def succeeded(self, username: str) -> None:
        """Forget the username's failures (not the address's, see the module's note)."""
        await self.redis.delete(self._user_key(username))

    def _keys(self, username: str, address: str | None) -> list[str]:
        keys = [self._user_key(username)]
        if address:
            keys.append(f"{self._prefix}:addr:{_digest(address_group(address))}")
        return keys

    def _user_key(self, username: str) -> str:
        # Usernames are case-insensitive: Zhang and zhang share one counter.
        return f"{self._prefix}:user:{_digest(username.strip().lower())}"


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


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
