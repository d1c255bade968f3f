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
import math
import re
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
    # backslashreplace: a lone surrogate that reached an answer anyway (stored before bodies
    # were checked, a header quoted back) becomes its JSON escape "\ud800" instead of a 500.
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")
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
#
# Limits every JSON body gets, whatever its endpoint, because each of these once reached a 500
# (and a client that retries 5xx retries those for ever): arrays and objects nested past
# Python's recursion limit, integers too long for int(), text that UTF-8 cannot encode, and
# text that PostgreSQL cannot store. Each is a 400 naming where in the body it is.

#: How deep arrays and objects may nest (the body itself is level 1). Our documents nest three
#: or four levels; 32 leaves room for any client and stays far below the recursion limit of
#: everything that walks a document afterwards (the json module, validators, SQL drivers).
MAX_DEPTH = 32
#: The largest integer magnitude taken: I-JSON's (RFC 7493) 2**53 - 1, beyond which a
#: JavaScript client silently rounds, and well inside the 64-bit columns of both databases.
MAX_SAFE_INTEGER = 2**53 - 1
#: A path in a refusal shows at most this many characters of one key.
_KEY_SHOWN = 40
#: A refusal lists at most this many places; the message says how many there were.
_PLACES_LISTED = 20

# A lone surrogate (JSON allows "\ud800"; UTF-8 cannot encode it, so saving it fails) or NUL
# (valid JSON and Unicode, but PostgreSQL's text cannot hold it).
_BAD_CHARACTER = re.compile(r"[\ud800-\udfff\x00]")
# A JSON string, a bracket, a colon or a comma: strings are read whole, so what they hold never counts.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]', re.DOTALL)


async def read_json_object(request: web.Request, *, limit: int) -> dict[str, Any]:
    """The request's body as a JSON object, or an :class:`ApiError` saying exactly what is
    wrong (400 for the type, the encoding, the syntax and the limits above, 413 above
    ``limit`` bytes). Every string, key and number of the document it returns is safe to
    store and to send back."""
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
    doc = parse_json(raw)
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


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON within the limits every body gets, or the 400 :class:`ApiError`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed", f"the body is not UTF-8 (byte {exc.start})",
                       f"请求体不是 UTF-8 编码（第 {exc.start} 字节）") from None
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                         parse_int=_integer, parse_float=_fraction)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed",
                       f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       f"请求体不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列有误") from None
    except _BadJson as exc:
        raise ApiError(400, "malformed", f"the body is not valid JSON: {exc.en}",
                       f"请求体不是有效的 JSON：{exc.zh}") from None
    except RecursionError:
        # Far deeper than MAX_DEPTH (the json module gave up): find where the limit was passed.
        raise _refusal([_LimitBroken(_too_deep_path(text), "too_deep")]) from None
    broken = _limits_broken(doc)
    if broken:
        raise _refusal(broken)
    return doc


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


class _TooLarge:
    """A number outside the limits, kept in place by the parser so that the walk over the
    document can say where it is (the json module's hooks do not know)."""

    __slots__ = ()


_TOO_LARGE = _TooLarge()


def _integer(digits: str) -> Any:
    # Length first: int() of thousands of digits is slow, and past 4300 a ValueError.
    if len(digits) > 20:
        return _TOO_LARGE
    value = int(digits)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _TOO_LARGE


def _fraction(text: str) -> Any:
    value = float(text)  # 1e400 reads as inf, which no JSON text can say back
    return value if math.isfinite(value) else _TOO_LARGE


class _LimitBroken:
    """Where a body passes one of the limits, and what to say about it."""

    __slots__ = ("code", "path", "where_en", "where_zh")

    def __init__(self, path: str, code: str, where_en: str = "", where_zh: str = "") -> None:
        self.path, self.code = path, code
        self.where_en = where_en or (f"at {path}" if path else "in the body itself")
        self.where_zh = where_zh or (f"位于 {path}" if path else "位于请求体本身")


#: code -> (what is wrong in English, in Chinese).
_LIMITS: dict[str, tuple[str, str]] = {
    "too_deep": (f"arrays and objects nest deeper than {MAX_DEPTH} levels",
                 f"数组和对象的嵌套超过 {MAX_DEPTH} 层"),
    "number_too_large": (f"a number is too large (integers within ±{MAX_SAFE_INTEGER}, other numbers "
                         "within a double's range)",
                         f"数字过大（整数须在 ±{MAX_SAFE_INTEGER} 之内，其他数字不得超出双精度范围）"),
    "unencodable_text": ("text holds a lone UTF-16 surrogate (such as \\ud800), which is not a character "
                         "and cannot be encoded",
                         "文本含有孤立的 UTF-16 代理项（如 \\ud800），它不是字符，无法编码"),
    "nul_character": ("text holds the NUL character (\\u0000), which cannot be stored",
                      "文本含有 NUL 字符（\\u0000），无法保存"),
}


def _refusal(broken: list[_LimitBroken]) -> ApiError:
    first = broken[0]
    what_en, what_zh = _LIMITS[first.code]
    more = len(broken) - 1
    more_en = f" (and {more} more place(s), see errors)" if more else ""
    more_zh = f"（另有 {more} 处，见 errors）" if more else ""
    problems = [Problem(b.path, b.code, f"{_LIMITS[b.code][1]}，{b.where_zh}", f"{_LIMITS[b.code][0]} {b.where_en}")
                for b in broken[:_PLACES_LISTED]]
    return ApiError(400, first.code, f"{what_en} {first.where_en}{more_en}",
                    f"{what_zh}，{first.where_zh}{more_zh}", errors=problems)


def _limits_broken(doc: Any) -> list[_LimitBroken]:
    """Every place where ``doc`` passes a limit, in document order (iteratively: a walk that
    recursed would meet the very depth it is there to refuse)."""
    broken: list[_LimitBroken] = []
    # (value, its path, its depth, the key it is under); pushed reversed to pop in order.
    stack: list[tuple[Any, str, int, str | None]] = [(doc, "", 1, None)]
    while stack:
        value, path, depth, key = stack.pop()
        if key is not None and (code := _text_problem(key)) is not None:
            broken.append(_LimitBroken(path, code, f"in a key at {path}", f"位于键 {path}"))
        if isinstance(value, dict | list) and depth > MAX_DEPTH:
            broken.append(_LimitBroken(path, "too_deep"))
            continue  # one report for the whole too-deep part
        if isinstance(value, dict):
            stack.extend(reversed([(item, _child_path(path, k), depth + 1, k) for k, item in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(item, f"{path}[{i}]", depth + 1, None) for i, item in enumerate(value)]))
        elif isinstance(value, str):
            if (code := _text_problem(value)) is not None:
                broken.append(_LimitBroken(path, code))
        elif value is _TOO_LARGE:
            broken.append(_LimitBroken(path, "number_too_large"))
    return broken


def _text_problem(text: str) -> str | None:
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return None
    return "nul_character" if found.group() == "\x00" else "unencodable_text"


def _child_path(path: str, key: str) -> str:
    # Shown, not parsed back: long keys cut, and characters the answer could not carry
    # (surrogates, NUL) written as escapes.
    shown = key if len(key) <= _KEY_SHOWN else key[:_KEY_SHOWN] + "…"
    shown = _BAD_CHARACTER.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)
    return f"{path}.{shown}" if path else shown


def _too_deep_path(text: str) -> str:
    """The path of the first array or object at level ``MAX_DEPTH + 1`` of ``text``, read
    token by token (for a document too deep for the json module to build)."""
    # One entry per open container: its kind and where in it we are (key, or index).
    open_: list[tuple[str, list[Any]]] = []
    key = ""
    for token in _TOKEN.finditer(text):
        t = token.group()
        if t in ("[", "{"):
            if len(open_) == MAX_DEPTH:
                path = ""
                for kind, (place,) in open_:
                    path = f"{path}[{place}]" if kind == "[" else _child_path(path, place)
                return path
            open_.append((t, [0 if t == "[" else ""]))
        elif t in ("]", "}"):
            if open_:
                open_.pop()
        elif t == "," and open_ and open_[-1][0] == "[":
            open_[-1][1][0] += 1
        elif t == ":" and open_ and open_[-1][0] == "{":
            open_[-1][1][0] = key
        elif t.startswith('"'):
            key = _unquoted(t)
    return ""


def _unquoted(token: str) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token
