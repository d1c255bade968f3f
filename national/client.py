"""Our side of the national 12315 platform: signed requests and classified outcomes.

The client never raises for what the network or the platform does; it answers with a
:class:`DeliveryResult` whose ``outcome`` tells the delivery worker what to do next:

- ``delivered`` (201) and ``replayed`` (200, ``Idempotent-Replayed: true``): done;
- ``retry``: timeouts, connection errors, 408, 429 and 5xx (and a 2xx whose body cannot be
  read, since a resend is a harmless replay) — with ``retry_after_s`` when the platform said;
- ``rejected``: any other 4xx, with the platform's ``errors`` list; never resend as is.

Only programming errors raise (a body that is not JSON-serializable, a closed session).
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from core.problems import Problem
from national.signing import ORG_CODE_RE, signed_headers

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
#: The longest ``Retry-After`` taken literally (a day); beyond it the number is nonsense.
MAX_RETRY_AFTER_S = 86_400
_DELTA_SECONDS_RE = re.compile(r"[0-9]+")


class Outcome(StrEnum):
    DELIVERED = "delivered"
    REPLAYED = "replayed"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one request. ``status`` is ``None`` when no answer came back."""

    outcome: Outcome
    status: int | None = None
    body: Any = None
    retry_after_s: float | None = None
    #: The platform's ``errors`` list (``field``, ``code``, ...) of a rejection.
    errors: tuple[Mapping[str, Any], ...] = ()
    #: A short reason for logs and operators: the platform's message or the network error.
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.DELIVERED, Outcome.REPLAYED)

    @property
    def platform_case_no(self) -> str | None:
        case_no = self.body.get("platform_case_no") if isinstance(self.body, dict) else None
        return case_no if isinstance(case_no, str) else None

    @property
    def problems(self) -> list[Problem]:
        return [Problem.from_dict(e) for e in self.errors]


class LookupOutcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class CaseLookup:
    """The answer to :meth:`PlatformClient.get_case`: the stored case with its progress."""

    outcome: LookupOutcome
    status: int | None = None
    case: dict[str, Any] | None = None
    retry_after_s: float | None = None
    errors: tuple[Mapping[str, Any], ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class _Answer:
    status: int | None
    headers: Mapping[str, str]
    body: Any
    readable: bool
    reason: str


class PlatformClient:
    """Signed client of the national platform for one organisation."""

    def __init__(self, base_url: str, org_code: str, secret: str, session: aiohttp.ClientSession, *,
                 timeout_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"platform base URL must be http(s)://host[/path], got {base_url!r}")
        if url.query_string or url.fragment:
            raise ValueError(f"platform base URL may not have a query or fragment: {base_url!r}")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._base_url = url
        self._base_path = url.raw_path.rstrip("/")
        self._org_code, self._secret, self._session = org_code, secret, session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        if not ORG_CODE_RE.fullmatch(org_code):
            raise ValueError(f"organisation code {org_code!r} must be 6 to 32 of [0-9A-Z]")
        if not secret:
            raise ValueError("the shared secret is empty")

    # ----------------------------------------------------------------- operations

    async def submit_case(self, case: Mapping[str, Any], idempotency_key: str | None = None) -> DeliveryResult:
        """``POST /v1/cases``. The key defaults to ``case_id``, which it must equal anyway."""
        key = idempotency_key or _id_of(case, "case_id")
        answer = await self._send("POST", "/v1/cases", _encode(case), {"Idempotency-Key": key})
        result = _classify_post(answer, self._clock)
        log.info("case %s: %s (%s)", key, result.outcome, result.status or result.reason)
        return result

    async def submit_call_record(self, record: Mapping[str, Any],
                                 idempotency_key: str | None = None) -> DeliveryResult:
        """``POST /v1/call-records``. The key defaults to ``call_id``."""
        key = idempotency_key or _id_of(record, "call_id")
        answer = await self._send("POST", "/v1/call-records", _encode(record), {"Idempotency-Key": key})
        result = _classify_post(answer, self._clock)
        log.info("call record %s: %s (%s)", key, result.outcome, result.status or result.reason)
        return result

    async def report_progress(self, platform_case_no: str, step: Mapping[str, Any]) -> DeliveryResult:
        """``POST /v1/cases/{no}/progress``; the step's ``step_id`` makes resending safe."""
        path = f"/v1/cases/{_segment(platform_case_no)}/progress"
        answer = await self._send("POST", path, _encode(step), {})
        result = _classify_post(answer, self._clock)
        log.info("case %s step %s: %s (%s)", platform_case_no, step.get("step"), result.outcome,
                 result.status or result.reason)
        return result

    async def get_case(self, platform_case_no: str) -> CaseLookup:
        """``GET /v1/cases/{no}``: the case as the platform stored it, with its progress."""
        answer = await self._send("GET", f"/v1/cases/{_segment(platform_case_no)}", b"", {})
        return _classify_get(answer, self._clock)

    # ----------------------------------------------------------------- transport

    async def _send(self, method: str, op_path: str, body: bytes, extra: Mapping[str, str]) -> _Answer:
        url = self._base_url.with_path(self._base_path + op_path, encoded=True)
        # The signed PATH is relative to the server URL (contract 1.0.1): the operation's path
        # as the request line carries it after our base path, never the base path itself.
        headers = signed_headers(self._org_code, self._secret, method, op_path, body, now=self._clock())
        headers.update(extra)
        if method != "GET":
            headers["Content-Type"] = JSON_CONTENT_TYPE
        try:
            async with self._session.request(method, url, data=body if method != "GET" else None,
                                             headers=headers, timeout=self._timeout,
                                             allow_redirects=False) as resp:
                raw = await resp.read()
                body_json, readable = _decode(raw)
                return _Answer(resp.status, CIMultiDict(resp.headers), body_json, readable, resp.reason or "")
        except TimeoutError:
            return _Answer(None, {}, None, False, "timeout")
        except aiohttp.ClientError as exc:
            return _Answer(None, {}, None, False, f"connection error: {type(exc).__name__}: {exc}")
        except OSError as exc:  # a reset socket that aiohttp did not wrap
            return _Answer(None, {}, None, False, f"connection error: {type(exc).__name__}: {exc}")


def _id_of(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"no idempotency key given and the body has no {key}")
    return value


def _segment(value: str) -> str:
    if not value:
        raise ValueError("platform case number is empty")
    return quote(value, safe="")


def _encode(doc: Mapping[str, Any]) -> bytes:
    # Compact, UTF-8 (not \u escapes), and NaN refused: what is signed is exactly this.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _decode(raw: bytes) -> tuple[Any, bool]:
    if not raw:
        return None, True
    try:
        return json.loads(raw.decode("utf-8")), True
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, False


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS_RE.fullmatch(value):
        # ASCII digits only (str.isdigit would take "²"); an absurd number is capped, not an error.
        return float(min(int(value), MAX_RETRY_AFTER_S))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, when.timestamp() - now), float(MAX_RETRY_AFTER_S))


def _problem_fields(body: Any) -> tuple[tuple[Mapping[str, Any], ...], str]:
    if not isinstance(body, dict):
        return (), ""
    errors = body.get("errors")
    items = tuple(e for e in errors if isinstance(e, dict)) if isinstance(errors, list) else ()
    reason = " ".join(str(body[k]) for k in ("code", "message") if k in body)
    return items, reason


def _is_retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _classify_post(answer: _Answer, clock: Callable[[], float]) -> DeliveryResult:
    status = answer.status
    if status is None:
        return DeliveryResult(Outcome.RETRY, reason=answer.reason)
    errors, reason = _problem_fields(answer.body)
    if 200 <= status < 300:
        if not answer.readable:
            # The platform has it, but we did not learn the receipt: a resend replays it.
            return DeliveryResult(Outcome.RETRY, status, reason="unreadable answer to a delivery")
        if status == 200:
            return DeliveryResult(Outcome.REPLAYED, status, answer.body)
        return DeliveryResult(Outcome.DELIVERED, status, answer.body)
    if _is_retryable(status):
        retry_after = parse_retry_after(answer.headers.get("Retry-After"), clock())
        return DeliveryResult(Outcome.RETRY, status, answer.body, retry_after, errors,
                              reason or answer.reason)
    return DeliveryResult(Outcome.REJECTED, status, answer.body, None, errors, reason or answer.reason)


def _classify_get(answer: _Answer, clock: Callable[[], float]) -> CaseLookup:
    status = answer.status
    if status is None:
        return CaseLookup(LookupOutcome.RETRY, reason=answer.reason)
    errors, reason = _problem_fields(answer.body)
    if status == 200 and answer.readable and isinstance(answer.body, dict):
        return CaseLookup(LookupOutcome.FOUND, status, answer.body)
    if status == 200:
        return CaseLookup(LookupOutcome.RETRY, status, reason="unreadable case")
    if status == 404:
        return CaseLookup(LookupOutcome.NOT_FOUND, status, errors=errors, reason=reason)
    if _is_retryable(status):
        retry_after = parse_retry_after(answer.headers.get("Retry-After"), clock())
        return CaseLookup(LookupOutcome.RETRY, status, None, retry_after, errors, reason or answer.reason)
    return CaseLookup(LookupOutcome.REJECTED, status, None, None, errors, reason or answer.reason)


@dataclass
class Backoff:
    """Exponential backoff with full jitter; ``Retry-After`` is a floor, never shortened.

    ``delay_s(attempt)`` for attempt 0, 1, 2, ... draws uniformly from
    ``[0, min(cap_s, base_s * 2**attempt)]``, then raises it to ``retry_after_s`` if given.
    """

    base_s: float = 1.0
    cap_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 < base_s <= cap_s")

    def ceiling_s(self, attempt: int) -> float:
        if attempt < 0:
            raise ValueError("attempt counts from 0")
        # Past ~1000 doublings the float overflows; the cap has long been reached by then.
        if attempt > 1000 or self.base_s * 2.0 ** attempt > self.cap_s:
            return self.cap_s
        return self.base_s * 2.0 ** attempt

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        delay = self.rng.uniform(0.0, self.ceiling_s(attempt))
        if retry_after_s is not None and math.isfinite(retry_after_s):
            delay = max(delay, retry_after_s)
        return delay
