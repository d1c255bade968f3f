"""The intake REST API: thin aiohttp views over :mod:`tickets.intake`.

``POST /api/v1/intake/cases`` registers a channel's case, ``GET /api/v1/intake/cases/{id}``
reads where it is, ``GET /api/openapi.yaml`` serves the description of both
(``tickets/openapi.yaml``, the reference for clients: headers, bodies, every answer).

The order of checks on a submission: the API key (401, before anything is read), the
``Idempotency-Key`` (400), the body (400, 413), then the case (409 for a reused key, 422 for
the platform's rules, else 201, or 200 for a retry).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from core.problems import Problem
from core.settings import IntakeSettings
from core.vocabulary import CHINA_TZ
from core.web import ApiError, Language, json_response, language, problem_item, read_json_object
from national.contract import UUID_RE, format_datetime
from tickets.fields import BadChanges
from tickets.intake import ApiKeys, IdempotencyConflict, Intake
from tickets.models import Ticket
from tickets.services import TicketInvalid, TicketNotFound, TicketService, delivery_problems

log = logging.getLogger(__name__)

#: The largest body read, as the platform's own limit: a case is a few KiB.
MAX_BODY_BYTES = 256 * 1024
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
CASES_PATH = "/api/v1/intake/cases"
_CASE_ROUTE = "intake-case"


def add_routes(app: web.Application, *, tickets: TicketService, intake: IntakeSettings) -> None:
    """Register the intake API and its OpenAPI description on ``app``."""
    # Read once at start-up: the file is part of the release and never changes while serving.
    views = IntakeViews(Intake(tickets), ApiKeys(intake.api_key_sha256), OPENAPI_PATH.read_bytes())
    app.router.add_post(CASES_PATH, views.submit)
    app.router.add_get(CASES_PATH + "/{case_id}", views.read, name=_CASE_ROUTE, allow_head=False)
    app.router.add_get("/api/openapi.yaml", views.openapi, allow_head=False)


class IntakeViews:
    def __init__(self, intake: Intake, keys: ApiKeys, openapi: bytes) -> None:
        self._intake = intake
        self._keys = keys
        self._openapi = openapi

    async def submit(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        key = _idempotency_key(request)
        body = await read_json_object(request, limit=MAX_BODY_BYTES)
        try:
            result = await self._intake.submit(channel, key, body)
        except TicketInvalid as exc:
            raise _invalid(channel, key, exc.problems) from None
        except BadChanges as exc:
            # Not expected once the platform's rules passed; said as clearly all the same.
            raise _invalid(channel, key, [Problem(path, "bad_value", f"取值无法保存：{message}", message)
                                          for path, message in exc.errors]) from None
        except IdempotencyConflict as exc:
            raise ApiError(409, "conflict",
                           f"Idempotency-Key {exc.key} was already used for a different case; "
                           "send a new case with a new key",
                           f"Idempotency-Key {exc.key} 已用于另一案件；新案件请使用新的 Idempotency-Key") from None
        lang = language(request)
        if result.replayed:
            return _answer(case_view(result.ticket, lang), lang, headers={"Idempotent-Replayed": "true"})
        location = request.app.router[_CASE_ROUTE].url_for(case_id=result.ticket.id)
        return _answer(case_view(result.ticket, lang), lang, status=201, headers={"Location": str(location)})

    async def read(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        case_id = request.match_info["case_id"]
        try:
            if not UUID_RE.fullmatch(case_id):
                raise TicketNotFound(case_id)
            ticket = await self._intake.case(channel, case_id)
        except TicketNotFound:
            # The same answer for "no such case" and "another channel's": ids reveal nothing.
            raise ApiError(404, "not_found", f"this channel has no case {case_id}",
                           f"本渠道没有编号为 {case_id} 的案件") from None
        lang = language(request)
        return _answer(case_view(ticket, lang), lang)

    async def openapi(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/yaml", charset="utf-8")

    def _channel(self, request: web.Request) -> str:
        channel = self._keys.channel_of(request.headers.get("X-Api-Key"))
        if channel is None:
            # Never which channels exist, nor whether the key was missing or wrong.
            raise ApiError(401, "unauthorized", "a valid X-Api-Key header is required",
                           "需要有效的 X-Api-Key 请求头")
        return channel


def case_view(ticket: Ticket, lang: Language) -> dict[str, Any]:
    """Where a channel's case is: no personal data, only what the channel needs to follow it."""
    return {
        "case_id": ticket.id,
        "case_type": ticket.case_type,
        "channel": ticket.channel,
        "status": ticket.status,
        "delivery_state": ticket.delivery_state,
        "platform_case_no": ticket.platform_case_no,
        "delivery_problems": [problem_item(p, lang) for p in delivery_problems(ticket)],
        "received_at": format_datetime(ticket.received_at.astimezone(CHINA_TZ)),
        "deadlines": {name: None if day is None else day.isoformat() for name, day in
                      (("accept_by", ticket.accept_by), ("finish_by", ticket.finish_by),
                       ("verify_by", ticket.verify_by))},
    }


def _answer(doc: dict[str, Any], lang: Language, *, status: int = 200,
            headers: dict[str, str] | None = None) -> web.Response:
    # Messages of delivery problems follow Accept-Language, so caches must keep one per language.
    return json_response(doc, status=status, headers={**(headers or {}), "Content-Language": lang,
                                                      "Vary": "Accept-Language"})


def _idempotency_key(request: web.Request) -> str:
    value = request.headers.get("Idempotency-Key")
    if value is None or not value.strip():
        problem = Problem("Idempotency-Key", "required", "必填：每个案件一个 UUID，重试时不变",
                          "is required: one UUID per case, the same on every retry")
    elif not UUID_RE.fullmatch(value.strip()):
        problem = Problem("Idempotency-Key", "bad_format", "应为 UUID（8-4-4-4-12 位十六进制）",
                          "must be a UUID (8-4-4-4-12 hex digits)")
    else:
        return value.strip().lower()
    raise ApiError(400, "malformed", f"the Idempotency-Key header {problem.message_en}",
                   f"Idempotency-Key 请求头{problem.message_zh}", errors=[problem])


def _invalid(channel: str, key: str, problems: list[Problem]) -> ApiError:
    log.info("intake: %s case %s refused: %s", channel, key, ", ".join(f"{p.field} {p.code}" for p in problems))
    return ApiError(422, "invalid",
                    f"the case breaks {len(problems)} rule(s) of the national platform; nothing was stored",
                    f"案件有 {len(problems)} 处不符合全国平台的规则，未予登记", errors=problems)
