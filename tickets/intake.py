"""Omni-channel intake: complaints, reports and consultations that our web site, WeChat
account and app send in whole, each as one completed ticket on its way to the platform.

A channel is known by its API key alone, so the body is the platform's ``Case`` minus what
we decide ourselves: ``case_id`` (the client's ``Idempotency-Key``), ``channel`` (the key's)
and ``deadlines`` (computed on completion). Fields that only a hotline call has (the number
dialled, the call, the agent, the menu transcript, the recording) are refused too: an online
channel cannot know them, and accepting them would let it pose as a call.

Retries are safe: the ``Idempotency-Key`` becomes the ticket's id, so the database's primary
key makes "one key, one ticket" atomic, and a request whose key exists is answered from the
ticket it created when it carries the same case (:meth:`tickets.services.Origin.made_from`,
after :func:`times_as_first_written`: ``received_at`` written in another offset on a retry
is still the same case, as the national platform treats it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.problems import Problem
from national.contract import CHANNELS, parse_datetime
from tickets.fields import BY_PATH, FIELDS, GROUPS
from tickets.models import Ticket
from tickets.services import Origin, TicketExists, TicketInvalid, TicketNotFound, TicketService

log = logging.getLogger(__name__)

#: Channels that may hold an intake API key: every channel of the platform but the hotline,
#: whose tickets agents write, and the government service hotline (12345), whose hand-overs
#: are not a channel sending its own cases (and not something we take in yet).
INTAKE_CHANNELS = tuple(c for c in CHANNELS if c not in ("hotline", "gov_hotline"))

#: Case fields a channel may not send, with why (in English and Chinese).
NOT_FOR_CHANNELS: dict[str, tuple[str, str]] = {
    "case_id": ("is set by us: the case id is your Idempotency-Key", "由本系统设定：案件编号即 Idempotency-Key"),
    "channel": ("is set by us: the channel is the one your API key belongs to", "由本系统设定：渠道由 API 密钥确定"),
    "deadlines": ("are computed by us when the case is registered", "由本系统在登记时按工作日计算"),
    **{path: ("is only for cases taken on the hotline", "仅适用于热线电话受理的案件")
       for path in ("hotline_number", "call_id", "agent_id", "ivr_transcript", "recording")},
}

#: Where a channel's tickets are recorded as coming from (history and audit ``by``).
_ACTOR_PREFIX = "intake:"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def actor(channel: str) -> str:
    """Who an intake channel's changes are recorded as: ``intake:wechat``."""
    return _ACTOR_PREFIX + channel


# --------------------------------------------------------------------------- API keys


class ApiKeys:
    """Which channel an API key belongs to. Keys are configured as SHA-256 hex digests
    (``[intake] api_key_sha256``), so the settings hold nothing that opens the API."""

    def __init__(self, digests: Mapping[str, str]) -> None:
        self._digests: list[tuple[str, bytes]] = []
        seen: dict[str, str] = {}
        for channel, digest in digests.items():
            if channel not in INTAKE_CHANNELS:
                raise ValueError(f"[intake] api_key_sha256: {channel!r} is not an intake channel; "
                                 f"use one of {', '.join(INTAKE_CHANNELS)}")
            normal = str(digest).strip().lower()
            if not _SHA256_HEX.fullmatch(normal):
                raise ValueError(f"[intake] api_key_sha256.{channel} must be the key's SHA-256 "
                                 "as 64 hex digits (sha256sum of the key)")
            if normal in seen:
                raise ValueError(f"[intake] api_key_sha256: {seen[normal]} and {channel} have the same key")
            seen[normal] = channel
            self._digests.append((channel, normal.encode("ascii")))

    def channel_of(self, key: str | None) -> str | None:
        """The channel ``key`` belongs to, or ``None``."""
        if not key:
            return None
        offered = hashlib.sha256(key.encode("utf-8")).hexdigest().encode("ascii")
        found = None
        # Every digest is compared, in constant time each: how long this takes says nothing
        # about which channels exist or how close a guess came.
        for channel, digest in self._digests:
            if hmac.compare_digest(offered, digest):
                found = channel
        return found


# --------------------------------------------------------------------------- cases


class IdempotencyConflict(Exception):
    """The key already named another case (or another channel's): the client reused it."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"Idempotency-Key {key} was already used for a different case")


@dataclass(frozen=True, slots=True)
class Submitted:
    ticket: Ticket
    #: An earlier request with the same key and case created the ticket.
    replayed: bool


class Intake:
    """What the intake API does, over the ticket service."""

    def __init__(self, tickets: TicketService) -> None:
        self._tickets = tickets

    async def submit(self, channel: str, key: str, body: Mapping[str, Any]) -> Submitted:
        """Register ``body`` (a JSON object) as a completed ticket with id ``key``.

        Raises :class:`TicketInvalid` with every problem (nothing stored) and
        :class:`IdempotencyConflict` when ``key`` names a different case.
        """
        key = key.lower()
        draft, problems = channel_draft(channel, body)
        try:
            return await self._replay(channel, key, draft, refused_fields=bool(problems))
        except TicketNotFound:
            pass
        problems += self._tickets.check_new(draft, ticket_id=key)
        if problems:
            raise TicketInvalid(problems)
        try:
            ticket = await self._tickets.create_completed(draft, by=actor(channel), ticket_id=key)
        except TicketExists:
            # The same request, sent twice at once: the other one won the key.
            return await self._replay(channel, key, draft, refused_fields=False)
        # The service logs the registration ("completed by intake:<channel>").
        return Submitted(ticket, replayed=False)

    async def case(self, channel: str, case_id: str) -> Ticket:
        """One of ``channel``'s own cases; :class:`TicketNotFound` for any other id."""
        case_id = case_id.lower()
        origin = await self._tickets.origin(case_id)
        if origin.by != actor(channel):
            raise TicketNotFound(case_id)
        return await self._tickets.get(case_id)

    async def _replay(self, channel: str, key: str, draft: Mapping[str, Any], *, refused_fields: bool) -> Submitted:
        """The ticket ``key`` created, if this request is a retry of that one (a body with
        fields a channel may not send never is: the first request was stored, so it had none)."""
        origin = await self._tickets.origin(key)
        if origin.by != actor(channel) or refused_fields or not origin.made_from(times_as_first_written(draft, origin)):
            log.info("intake: %s reused Idempotency-Key %s for a different case", channel, key)
            raise IdempotencyConflict(key)
        log.info("intake: %s sent case %s again; answered from the ticket", channel, key)
        return Submitted(await self._tickets.get(key), replayed=True)


#: The case's times (``received_at``): a retry may write each in another offset.
_TIMES = tuple(field.path for field in FIELDS if field.kind == "datetime")


def times_as_first_written(draft: Mapping[str, Any], origin: Origin) -> dict[str, Any]:
    """``draft`` with each time that names the instant its ticket was created with written
    as it was then, so that :meth:`Origin.made_from` finds it unchanged.

    The national platform compares times as instants when a key comes back, and so do we:
    a client's retry may write ``2026-09-28T09:30:00+08:00`` as ``2026-09-28T01:30:00Z``
    (another server, another library), and that is the same case, not a different one.
    A time naming any other instant is left as sent, and still differs.
    """
    same = dict(draft)
    for path in _TIMES:
        group, _, key = path.rpartition(".")
        holder: Any = same.get(group) if group else same
        sent = holder.get(key) if isinstance(holder, Mapping) else None
        then = _first_time(origin, path)
        if not isinstance(sent, str) or then is None:
            continue
        if parse_datetime(sent.strip()) == then[0]:
            if group:
                same[group] = {**holder, key: then[1]}
            else:
                same[key] = then[1]
    return same


def _first_time(origin: Origin, path: str) -> tuple[datetime, str] | None:
    """The time ``path`` was created with (the instant, and its text as first written)."""
    stored = origin.values.get(path)
    text = json.loads(stored) if stored is not None else None
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text), text
    except ValueError:
        return None


def channel_draft(channel: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The ticket draft of ``body`` sent by ``channel``, and a problem for each field a
    channel may not send or that a case does not have (those are left out of the draft, so
    each is reported once)."""
    draft: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in body.items():
        if key in NOT_FOR_CHANNELS:
            en, zh = NOT_FOR_CHANNELS[key]
            problems.append(Problem(key, "not_allowed", zh, en))
        elif key in GROUPS and isinstance(value, Mapping):
            draft[key] = {k: v for k, v in value.items() if f"{key}.{k}" in BY_PATH}
            problems += [_unknown(f"{key}.{k}", f"{key} has {', '.join(GROUPS[key])}") for k in value
                         if f"{key}.{k}" not in BY_PATH]
        elif key in GROUPS or (key in BY_PATH and BY_PATH[key].in_case):
            draft[key] = value  # a group of the wrong type is the platform rules' bad_type
        else:
            problems.append(_unknown(key, "see the IntakeCase schema in /api/openapi.yaml"))
    draft["channel"] = channel
    return draft, problems


def _unknown(path: str, hint: str) -> Problem:
    return Problem(path, "not_allowed", "不是案件的字段", f"is not a field of a case ({hint})")
