"""The product's HTTP application: each feature registers its routes (``add_routes``), and
one middleware makes every error a JSON ``Problem``.

Every error, ours or aiohttp's (unknown path, wrong method), is answered as
``{"code": ..., "message": ..., "errors": [...]}`` in JSON, never as an HTML or text page, so
that clients parse one shape. An unexpected exception is a ``500`` carrying a request id; the
log has the id, the route and the stack, and not the exception's message, which may quote
what a caller said or a database row with their phone number and name.

Messages come in the language the client prefers (``Accept-Language``: ``zh`` or ``en``,
English by default); every ``errors`` item also carries both (``message_en``, ``message_zh``)
whatever the choice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from core.problems import Problem

log = logging.getLogger(__name__)

Language = Literal["en", "zh"]
REQUEST_ID = web.RequestKey("request_id", str)
JSON_TYPE = "application/json"
_SUPPORTED: tuple[Language, ...] = ("en", "zh")


def new_web_app() -> web.Application:
    """An HTTP application whose every refusal is a JSON ``Problem``; features add their routes."""
    return web.Application(middlewares=[json_errors])


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An answer that is a refusal: raised by a view, rendered by :func:`json_errors`."""

    def __init__(self, status: int, code: str, message_en: str, message_zh: str, *,
                 errors: Sequence[Problem] = (), headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message_en)
        self.status, self.code = status, code
        self.message_en, self.message_zh = message_en, message_zh
        self.errors = list(errors)
        self.headers = dict(headers or {})


#: aiohttp's own refusals (the router's 404 and 405, a body over the limit) in our words.
_HTTP_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("malformed", "the request is malformed", "请求格式错误"),
    404: ("not_found", "there is nothing at this path", "该路径不存在"),
    405: ("method_not_allowed", "this method is not allowed here (see the Allow header)",
          "该路径不支持此请求方法（见 Allow 响应头）"),
    413: ("too_large", "the body is too large", "请求体过大"),
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except ApiError as exc:
        response = problem_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem_response(request, _from_http(exc))
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the last line: the client gets JSON, we get the stack
        _log_unexpected(request, request_id, exc)
        response = problem_response(request, ApiError(
            500, "internal_error",
            f"an internal error occurred; quote request id {request_id} when reporting it",
            f"服务器内部错误；反馈时请提供请求编号 {request_id}"))
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response


def _from_http(exc: web.HTTPException) -> ApiError:
    code, en, zh = _HTTP_ERRORS.get(exc.status, (f"http_{exc.status}", exc.reason.lower(), exc.reason))
    # Keep what the client needs from aiohttp's answer (Allow on a 405), not its text body.
    headers = {name: value for name, value in exc.headers.items() if name.lower() in ("allow", "retry-after")}
    return ApiError(exc.status, code, en, zh, headers=headers)


def _log_unexpected(request: web.Request, request_id: str, exc: BaseException) -> None:
    # Types and where only: exception messages (and a database error's parameters) may
    # hold personal data, and so may the source lines a traceback quotes.
    chain: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 5:
        chain.append(type(cause).__qualname__)
        cause = cause.__cause__ or cause.__context__
    stack = "\n".join(f"  {frame.filename}:{frame.lineno} in {frame.name}"
                      for frame in traceback.extract_tb(exc.__traceback__))
    log.error("request %s %s %s failed with %s\n%s", request_id, request.method, request.path,
              " <- ".join(chain), stack)


# --------------------------------------------------------------------------- answers


def json_response(doc: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return web.Response(status=status, body=body, headers={"Content-Type": f"{JSON_TYPE}; charset=utf-8",
                                                           **(headers or {})})


def problem_response(request: web.Request, error: ApiError) -> web.Response:
    lang = language(request)
    doc: dict[str, Any] = {"code": error.code, "message": error.message_zh if lang == "zh" else error.message_en}
    if error.errors:
        doc["errors"] = [problem_item(p, lang) for p in error.errors]
    if error.status >= 500:
        doc["request_id"] = request.get(REQUEST_ID, "")
    return json_response(doc, status=error.status,
                         headers={**error.headers, "Content-Language": lang, "Vary": "Accept-Language"})


def problem_item(problem: Problem, lang: Language) -> dict[str, str]:
    """One ``errors`` item: ``message`` in ``lang``, and both languages besides."""
    return {"field": problem.field, "code": problem.code,
            "message": problem.message_zh if lang == "zh" else problem.message_en,
            "message_en": problem.message_en, "message_zh": problem.message_zh}


def language(request: web.Request) -> Language:
    """The language the client prefers among ours, by ``Accept-Language`` (RFC 9110: the
    highest weight wins, the first listed on a tie, ``*`` means any); English by default."""
    best: Language = "en"
    best_q = 0.0
    for item in request.headers.get("Accept-Language", "").split(","):
        tag, *params = (part.strip() for part in item.split(";"))
        primary = tag.lower().split("-", 1)[0]
        lang: Language | None = "en" if primary == "*" else next((s for s in _SUPPORTED if s == primary), None)
        q = _weight(params)
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best


def _weight(params: Sequence[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


# --------------------------------------------------------------------------- request bodies


async def read_json_object(request: web.Request, *, limit: int) -> dict[str, Any]:
    """The request's body as a JSON object, or an :class:`ApiError` saying exactly what is
    wrong (400 for the type, the encoding or the syntax, 413 above ``limit`` bytes)."""
    if request.content_type != JSON_TYPE:
        shown = request.headers.get("Content-Type") or "none"
        raise ApiError(400, "malformed", f"the body must be JSON sent as Content-Type: {JSON_TYPE} (got {shown})",
                       f"请求体须为 JSON，Content-Type 应为 {JSON_TYPE}（实为 {shown}）")
    charset = (request.charset or "utf-8").lower()
    if charset != "utf-8":
        raise ApiError(400, "malformed", f"JSON is UTF-8; charset {charset} is not accepted",
                       f"JSON 须为 UTF-8 编码，不接受 charset {charset}")
    raw = await _read_limited(request, limit)
    if not raw.strip():
        raise ApiError(400, "malformed", "the body is empty; send a JSON object", "请求体为空，应为 JSON 对象")
    doc = _parse_json(raw)
    if not isinstance(doc, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(doc), "a number or null")
        raise ApiError(400, "malformed", f"the body must be a JSON object, not {kind}", "请求体须为 JSON 对象")
    return doc


async def _read_limited(request: web.Request, limit: int) -> bytes:
    too_large = ApiError(413, "too_large", f"the body is larger than {limit // 1024} KiB",
                         f"请求体超过 {limit // 1024} KiB")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    # A chunked body has no length to check first: stop reading as soon as it passes the limit.
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed", f"the body is not UTF-8 (byte {exc.start})",
                       f"请求体不是 UTF-8 编码（第 {exc.start} 字节）") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed",
                       f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       f"请求体不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列有误") from None
    except _BadJson as exc:
        raise ApiError(400, "malformed", f"the body is not valid JSON: {exc.en}",
                       f"请求体不是有效的 JSON：{exc.zh}") from None


class _BadJson(ValueError):
    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.en, self.zh = en, zh


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins; a client must not depend on ours.
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise _BadJson(f"the key {key!r} appears twice in one object", f"同一对象中键 {key!r} 重复出现")
        doc[key] = value
    return doc


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON.
    raise _BadJson(f"{name} is not a JSON value", f"{name} 不是合法的 JSON 值")
