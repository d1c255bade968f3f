"""Password hashing: argon2id (``argon2-cffi``), run in threads.

Hashing is deliberately slow and memory-hard (the library's RFC 9106 low-memory profile:
64 MiB, three passes), so it never runs on the event loop: one login would stall every call
in the process for a tenth of a second. A semaphore bounds how many run at once, so that a
burst of logins costs a bounded amount of memory and leaves cores for the calls.

Hashes are PHC strings that carry their own parameters; when the parameters we hash with
change, a user's hash is replaced at their next successful login (:meth:`Passwords.needs_rehash`).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
#: Far above any passphrase; stops a megabyte "password" from costing a megabyte of hashing.
MAX_LENGTH = 256


class WeakPassword(ValueError):
    """A password we refuse to set; the message says why."""

    field = "password"


def check_password(password: str) -> str:
    """``password`` if it is acceptable, else :class:`WeakPassword` saying what is wrong."""
    if not isinstance(password, str):
        raise WeakPassword("password: must be a string")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password: must be at least {MIN_LENGTH} characters long (got {len(password)})")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password: must be at most {MAX_LENGTH} characters long (got {len(password)})")
    if not password.strip():
        raise WeakPassword("password: must not be only spaces")
    return password


class Passwords:
    """Hash and verify passwords without blocking the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None, *, max_concurrent: int = 2) -> None:
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory parameters
        self._slots = asyncio.Semaphore(max_concurrent)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """The argon2id hash of an acceptable password (see :func:`check_password`)."""
        check_password(password)
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; a malformed hash is a mismatch, never an exception."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_unknown(self, password: str) -> None:
        """Spend the time a verification takes, for a user who does not exist: an unknown
        username must not answer faster than a wrong password (which would reveal who exists)."""
        if self._dummy is None:
            async with self._slots:
                self._dummy = await asyncio.to_thread(self._hasher.hash, "not the password of anyone")
        await self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than ours."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
