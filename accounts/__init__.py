"""Accounts of the people who use the desktop and the wallboard: agents, supervisors and
administrators, their passwords, their logged-in sessions and what each may see.

* :mod:`accounts.models` — the ``users`` table;
* :mod:`accounts.passwords` — argon2id hashing, off the event loop;
* :mod:`accounts.services` — :class:`~accounts.services.AccountService` (add, authenticate, disable…);
* :mod:`accounts.sessions` — server-side sessions in Redis;
* :mod:`accounts.ratelimit` — failed-login counters;
* :mod:`accounts.http` — ``/api/session``, the CSRF check and the access helpers other features use;
* :mod:`accounts.cli` — ``hotline users``.
"""
