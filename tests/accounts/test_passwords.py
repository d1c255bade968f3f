"""Passwords are argon2id hashes, made and checked in threads, refused when too short."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from accounts.passwords import MIN_LENGTH, Passwords, WeakPassword, check_password
from tests.support.accounts import cheap_passwords
from tests.support.loop import loop_ticks


async def test_a_hash_is_argon2id_and_only_the_right_password_matches_it() -> None:
    passwords = cheap_passwords()
    hashed = await passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$") and "correct" not in hashed
    assert await passwords.verify(hashed, "correct horse battery")
    assert not await passwords.verify(hashed, "correct horse batterY")


async def test_two_hashes_of_one_password_differ_by_their_salt() -> None:
    passwords = cheap_passwords()
    assert await passwords.hash("correct horse battery") != await passwords.hash("correct horse battery")


async def test_a_malformed_hash_is_a_mismatch_not_an_error() -> None:
    assert not await cheap_passwords().verify("not-a-hash", "correct horse battery")


@pytest.mark.parametrize(("password", "message"), [
    ("short", f"password: must be at least {MIN_LENGTH} characters long (got 5)"),
    ("x" * 257, "password: must be at most 256 characters long (got 257)"),
    (" " * 12, "password: must not be only spaces"),
])
async def test_an_unacceptable_password_is_refused_saying_why(password: str, message: str) -> None:
    with pytest.raises(WeakPassword, match=message.replace("(", r"\(").replace(")", r"\)")):
        await cheap_passwords().hash(password)
    assert check_password("ten chars!") == "ten chars!"


async def test_a_hash_made_with_other_parameters_needs_rehashing() -> None:
    old = await cheap_passwords().hash("correct horse battery")
    current = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert current.needs_rehash(old)
    assert not current.needs_rehash(await current.hash("correct horse battery"))
    assert await current.verify(old, "correct horse battery")  # still verifies until replaced


async def test_hashing_with_the_production_parameters_leaves_the_event_loop_running() -> None:
    passwords = Passwords()  # 64 MiB, three passes: about a tenth of a second of one core
    async with loop_ticks(0.005) as ticks:
        hashed = await passwords.hash("correct horse battery")
        assert await passwords.verify(hashed, "correct horse battery")
    assert ticks.count >= 5, "the loop stood still while hashing"
