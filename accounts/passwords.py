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
from collections.abc import Sequence

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


#: zxcvbn's score (0 to 4) a new password set by an administrator must reach: 3 is "safely
#: unguessable" (about 10^8 guesses and more), what an account that reads complaints needs.
MIN_SCORE = 3
#: zxcvbn's matching grows fast with the length; the first characters say all we need.
_ESTIMATED_CHARS = 100


def strength_problem(password: str, *, personal: Sequence[str] = ()) -> str | None:
    """Why ``password`` is too easy to guess, in one line with zxcvbn's advice; None if it is not.

    zxcvbn (Dropbox's estimator) knows the common passwords, names and words of its frequency
    lists, keyboard walks, repeats, sequences and dates, so "aaaaaaaaaa" and "1234567890" fail
    however long. ``personal`` (the username, the display name) counts as known to an attacker,
    and a password containing one of them is refused outright."""
    lowered = password.lower()
    for word in personal:
        # Two characters of a Chinese name are a name; two Latin letters are not.
        if len(word) >= (3 if word.isascii() else 2) and word.lower() in lowered:
            return f"contains {'the username' if word == personal[0] else 'a name of the user'} ({word}); " \
                   f"choose one that does not"
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:_ESTIMATED_CHARS], user_inputs=[w for w in personal if w])
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    warning = str(feedback.get("warning") or "").rstrip(".")
    advice = " ".join(str(s) for s in feedback.get("suggestions") or []) or \
        "Add another word or two. Uncommon words are better."
    return f"too easy to guess (strength {result['score']} of 4, {MIN_SCORE} needed)" + \
        (f": {warning}" if warning else "") + f". {advice}"


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
