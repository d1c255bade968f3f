"""The contract's four operations, as the national platform answers them.

Every request to the contract's paths goes through one pipeline, in this order:

1. the gateway: latency, outage (``503`` or a dropped connection), rate limit (``429``),
   random failures and drops (see :mod:`devtools.platform_sim.faults` for why before authentication);
2. the body: at most 256 KiB (``413``);
3. authentication (``401``), through :func:`national.signing.verify_request`, over the
   operation's path relative to the server URL (the base path taken off);
4. the operation: ``Idempotency-Key`` (``400``), content type and JSON object (``400``),
   replay (``200``) or conflict (``409``), the contract's rules (``422``, through
   :mod:`national.contract`), then storing (``201``).

A missing or malformed ``Idempotency-Key`` is a ``400 malformed``: the contract declares it
a required header parameter, and a request without one cannot be processed safely at all,
which is what 400 says; 422 is kept for the body's rules, 409 for disagreements with what
was stored.

Each operation runs without awaiting between "is this key known?" and "store it", so two
concurrent deliveries of one case can never both be stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from core.problems import Problem, problems_to_json
from devtools.platform_sim.faults import FaultInjector, FaultKind, Strike, retry_after_header
from devtools.platform_sim.ratelimit import TokenBucket
from devtools.platform_sim.stats import SimStats
from devtools.platform_sim.store import PlatformStore, StoredCase, same_document
from national.contract import (
    CALL_RECORD_TIMES,
    CASE_TIMES,
    PROGRESS_TIMES,
    UUID_RE,
    check_step_order,
    parse_date,
    validate_call_record,
    validate_case,
    validate_progress,
)
from national.signing import AuthError, NonceCache, operation_path, verify_request

log = logging.getLogger(__name__)

#: The largest body the platform reads (the contract's 413).
MAX_BODY_BYTES = 256 * 1024
IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


@dataclass(frozen=True)
class Exchange:
    """One request to the contract's paths and what the stand-in answered (``status`` is
    ``None`` when the connection was dropped instead). ``request_body`` is ``None`` when the
    stand-in answered without reading it (a fault at the gateway)."""

    method: str
    path: str
    request_headers: Mapping[str, str]
    request_body: bytes | None
    status: int | None
    response_headers: Mapping[str, str]
    response_body: bytes


Observer = Callable[[Exchange], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Answer(Exception):
    """Stops the pipeline with this answer."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


class _Drop(Exception):
    """Stops the pipeline by closing the connection without an answer."""


def json_response(status: int, doc: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {**_JSON_HEADERS, **headers} if headers else dict(_JSON_HEADERS)
    return web.Response(status=status, body=body, headers=all_headers)


def problem(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None,
            headers: Mapping[str, str] | None = None) -> web.Response:
    """The contract's ``Problem``: always ``code`` and ``message``, ``errors`` when useful."""
    doc: dict[str, Any] = {"code": code, "message": message}
    if errors:
        doc["errors"] = errors
    return json_response(status, doc, headers)


def _refuse(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None,
            headers: Mapping[str, str] | None = None) -> _Answer:
    return _Answer(problem(status, code, message, errors, headers))


def _one_error(field: str, code: str, message: str) -> list[dict[str, Any]]:
    """A single ``errors`` item; for a header the field is the header's name, not a JSON path."""
    return [{"field": field, "code": code, "message": message}]


#: The failures a random fault answers with, as the platform's gateway would word them.
_FAILURES = {
    500: ("internal_error", "the platform failed to process the request; try again"),
    502: ("bad_gateway", "the platform's gateway got no valid answer from its backend; try again"),
    503: ("unavailable", "the platform is overloaded; try again after Retry-After seconds"),
    429: ("rate_limited", "too many requests; try again after Retry-After seconds"),
    408: ("request_timeout", "the request took too long to arrive; try again"),
}


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON.
    raise ValueError(f"{name} is not a JSON value")


class ContractApi:
    """The handlers of ``/v1/...``; :class:`devtools.platform_sim.server.PlatformSim` wires them."""

    def __init__(self, *, orgs: Mapping[str, bytes], store: PlatformStore, stats: SimStats,
                 injector: FaultInjector, clock: Callable[[], float], limiter: TokenBucket | None,
                 base_path: str = "", observer: Observer | None = None) -> None:
        self._orgs = orgs
        #: Where the contract's paths start on this server; not part of any signed PATH.
        self._base_path = base_path
        self._store = store
        self._stats = stats
        self._injector = injector
        self._clock = clock
        self._limiter = limiter
        self._observer = observer
        self._nonces = NonceCache()

    def routes(self) -> list[tuple[str, str, Handler]]:
        """Each path under the base path with its method, and every other method of it
        answered ``405``."""
        table = [
            ("POST", "/v1/cases", self.submit_case),
            ("GET", "/v1/cases/{no}", self.get_case),
            ("POST", "/v1/cases/{no}/progress", self.report_progress),
            ("POST", "/v1/call-records", self.submit_call_record),
        ]
        routes: list[tuple[str, str, Handler]] = []
        for method, path, handler in table:
            routes.append((method, self._base_path + path, handler))
            routes.append(("*", self._base_path + path, _method_not_allowed(method)))
        return routes

    # ----------------------------------------------------------------- operations

    async def submit_case(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._submit_case)

    async def report_progress(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._report_progress)

    async def get_case(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._get_case)

    async def submit_call_record(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._submit_call_record)

    def _submit_case(self, request: web.Request, org: str, body: bytes, now: float) -> web.Response:
        key = _idempotency_key(request)
        doc = _json_object(request, body)
        stored = self._store.case_by_key(org, key)
        if stored is not None:
            return self._replay_or_conflict(stored.case, doc, stored.receipt, "case", CASE_TIMES)
        problems = validate_case(doc, now=datetime.fromtimestamp(now, UTC), idempotency_key=key)
        if problems:
            raise self._invalid(problems, "case")
        stored = self._store.add_case(org, key, doc, now)
        self._stats.stored += 1
        # Counted by the case's own id (which validation made equal to the key): what a
        # test asks is "was this case stored once", whatever the sender used as a key.
        self._stats.count_stored("case", org, doc["case_id"])
        return json_response(201, stored.receipt)

    def _submit_call_record(self, request: web.Request, org: str, body: bytes, now: float) -> web.Response:
        key = _idempotency_key(request)
        doc = _json_object(request, body)
        stored = self._store.call_record_by_key(org, key)
        if stored is not None:
            return self._replay_or_conflict(stored.record, doc, stored.answer, "call record",
                                            CALL_RECORD_TIMES)
        problems = validate_call_record(doc, idempotency_key=key)
        if problems:
            raise self._invalid(problems, "call record")
        stored = self._store.add_call_record(org, key, doc, now)
        self._stats.call_records_stored += 1
        self._stats.count_stored("call_record", org, doc["call_id"])
        return json_response(201, stored.answer)

    def _report_progress(self, request: web.Request, org: str, body: bytes, now: float) -> web.Response:
        stored = self._case_of(request, org)
        doc = _json_object(request, body)
        step_id = doc.get("step_id")
        prior = stored.steps.get(step_id.lower()) if isinstance(step_id, str) else None
        if prior is not None:
            return self._replay_or_conflict(prior.doc, doc, prior.answer, "step", PROGRESS_TIMES)
        deadlines = stored.case.get("deadlines") or {}
        accept_by = deadlines.get("accept_by")
        problems = validate_progress(doc, accept_by=parse_date(accept_by) if accept_by else None)
        if problems:
            raise self._invalid(problems, "step")
        out_of_order = check_step_order(stored.step_names(), doc["step"])
        if out_of_order is not None:
            self._stats.conflicts += 1
            raise _refuse(409, "conflict", f"step {doc['step']} is out of order: {out_of_order.message_en}",
                          [out_of_order.to_dict()])
        answer = self._store.add_step(stored, doc, now)
        self._stats.progress_recorded += 1
        return json_response(201, answer)

    def _get_case(self, request: web.Request, org: str, body: bytes, now: float) -> web.Response:
        return json_response(200, self._case_of(request, org).view())

    # ----------------------------------------------------------------- shared steps

    def _case_of(self, request: web.Request, org: str) -> StoredCase:
        number = request.match_info["no"]
        stored = self._store.case_by_no(org, number)
        if stored is None:
            self._stats.rejected_404 += 1
            raise _refuse(404, "not_found", f"organisation {org} has no case {number}")
        return stored

    def _replay_or_conflict(self, before: Any, now_doc: Any, answer: dict[str, Any], what: str,
                            times: Sequence[str]) -> web.Response:
        # Times are compared as instants: a retry that writes the same moment in another
        # offset is the same delivery, not a different one under a used key.
        if same_document(before, now_doc, times):
            self._stats.replayed += 1
            return json_response(200, answer, {REPLAYED: "true"})
        self._stats.conflicts += 1
        key = "step_id" if what == "step" else IDEMPOTENCY_KEY
        message = f"this {key} was already used for a different {what}; nothing was changed"
        raise _refuse(409, "conflict", message, _one_error(key, "conflict", message))

    def _invalid(self, problems: list[Problem], what: str) -> _Answer:
        self._stats.rejected_422 += 1
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        return _refuse(422, "invalid", f"the {what} breaks the contract's rules ({count}); nothing was stored",
                       problems_to_json(problems))

    # ----------------------------------------------------------------- the pipeline

    async def _serve(self, request: web.Request,
                     operation: Callable[[web.Request, str, bytes, float], web.Response]) -> web.StreamResponse:
        self._stats.requests += 1
        # Before any fault's latency: when the request reached the platform, as a sender's
        # back-pressure is judged.
        arrived = self._clock()
        body: bytes | None = None
        strike: Strike | None = None
        try:
            strike = await self._gateway()
            body = await self._read_body(request)
            now = self._clock()
            org = self._authenticate(request, body, now)
            response = operation(request, org, body, now)
        except _Answer as answer:
            response = answer.response
            if response.status == 400:
                self._stats.rejected_400 += 1
        except _Drop:
            self._stats.note_arrival(arrived, None, None)
            return self._drop(request, body)
        if strike is not None and strike.kind is FaultKind.DROP_AFTER:
            self._stats.note_arrival(arrived, None, None)
            return self._drop(request, body)
        self._stats.note_arrival(arrived, response.status, response.headers.get("Retry-After"))
        if self._observer is not None:
            self._observe(request, body, response)
        return response

    async def _gateway(self) -> Strike | None:
        """Faults and the rate limit; returns a drop that is due after processing."""
        injector, faults_injected = self._injector, self._stats.faults_injected
        latency = injector.latency_real_s()
        if latency > 0:
            faults_injected[FaultKind.LATENCY.value] += 1
            await asyncio.sleep(latency)
        strike = injector.decide()
        if strike is not None and strike.kind is FaultKind.OUTAGE:
            faults_injected[FaultKind.OUTAGE.value] += 1
            if strike.status is None:
                raise _Drop()
            raise _refuse(503, "maintenance", "the platform is in maintenance; try again after Retry-After seconds",
                          headers={"Retry-After": retry_after_header(strike.retry_after_real_s or 0.0)})
        if self._limiter is not None:
            wait = self._limiter.take()
            if wait > 0:
                self._stats.rate_limited += 1
                raise _refuse(429, "rate_limited", "too many requests; try again after Retry-After seconds",
                              headers={"Retry-After": retry_after_header(wait)})
        if strike is None:
            return None
        if strike.kind is FaultKind.ERROR:
            assert strike.status is not None
            faults_injected[f"error_{strike.status}"] += 1
            code, message = _FAILURES[strike.status]
            headers = ({"Retry-After": retry_after_header(strike.retry_after_real_s)}
                       if strike.retry_after_real_s is not None else None)
            raise _refuse(strike.status, code, message, headers=headers)
        faults_injected[strike.kind.value] += 1
        if strike.kind is FaultKind.DROP_BEFORE:
            raise _Drop()
        return strike

    async def _read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        try:
            if length is not None and length > MAX_BODY_BYTES:
                raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, length)
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._stats.rejected_413 += 1
            # Unread bytes would be taken for the next request: close the connection after.
            raise _refuse(413, "too_large", f"the body is larger than {MAX_BODY_BYTES // 1024} KiB",
                          headers={"Connection": "close"}) from None

    def _authenticate(self, request: web.Request, body: bytes, now: float) -> str:
        try:
            # The signature covers the operation's path relative to the server URL (contract
            # 1.0.1): a request signed over base path and all is refused like any other forgery.
            path = operation_path(request.rel_url.raw_path, self._base_path)
            return verify_request(method=request.method, path=path,
                                  headers=request.headers, body=body, secret_of=self._orgs.get,
                                  now=now, nonces=self._nonces)
        except AuthError as exc:
            self._stats.unauthorized += 1
            raise _refuse(401, "unauthorized", exc.message, _one_error(exc.field, exc.code, exc.message),
                          headers={"WWW-Authenticate": 'HMAC-SHA256 realm="12315"'}) from None

    def _drop(self, request: web.Request, body: bytes | None) -> web.StreamResponse:
        # Closing the transport under aiohttp's feet: the response below is never written.
        request.protocol.force_close()
        if self._observer is not None:
            self._observer(Exchange(request.method, request.rel_url.raw_path, dict(request.headers), body,
                                    None, {}, b""))
        return web.Response(status=500)

    def _observe(self, request: web.Request, body: bytes | None, response: web.Response) -> None:
        assert self._observer is not None
        raw = response.body if isinstance(response.body, bytes) else b""
        self._observer(Exchange(request.method, request.rel_url.raw_path, dict(request.headers), body,
                                response.status, dict(response.headers), raw))


def _method_not_allowed(allowed: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return problem(405, "method_not_allowed", f"{request.path} accepts {allowed} only",
                       headers={"Allow": allowed})
    return handler


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get(IDEMPOTENCY_KEY)
    if not key:
        raise _refuse(400, "malformed", f"header {IDEMPOTENCY_KEY} is required: the sender's UUID of this delivery",
                      _one_error(IDEMPOTENCY_KEY, "required", "is required"))
    if not UUID_RE.fullmatch(key):
        raise _refuse(400, "malformed", f"header {IDEMPOTENCY_KEY} must be a UUID",
                      _one_error(IDEMPOTENCY_KEY, "bad_format", "must be a UUID (8-4-4-4-12 hex digits)"))
    return key.lower()


def _json_object(request: web.Request, body: bytes) -> dict[str, Any]:
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type")
        raise _refuse(400, "malformed", "Content-Type must be application/json; charset=utf-8",
                      _one_error("Content-Type", "bad_format" if given else "required",
                                    f"is {given}" if given else "is missing"))
    charset = request.charset
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise _refuse(400, "malformed", f"the body must be UTF-8, not {charset}",
                      _one_error("Content-Type", "bad_format", f"charset is {charset}"))
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise _refuse(400, "malformed", f"the body is not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise _refuse(400, "malformed", f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise _refuse(400, "malformed", "the body is not JSON the platform can read: nested too deeply") from None
    if not isinstance(doc, dict):
        raise _refuse(400, "malformed", f"the body must be a JSON object, not {_json_kind(doc)}")
    return doc


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
