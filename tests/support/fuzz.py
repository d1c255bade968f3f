"""Property-based fuzzing of the JSON endpoints: strategies for odd bodies, paths, queries and
headers, a JSON Schema (OpenAPI) reader that makes documents to mutate, and the checks every
fuzz test makes (never a 5xx; every refusal a JSON problem; nothing stored by a refusal).

Why odd *and* nearly valid: a body that is garbage is refused at the first check, so the code
behind it is never reached; a valid document with one leaf replaced by something odd (a lone
surrogate, a 5,000-digit number, a year-1 time, a 40-deep array) goes as far as that leaf.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, assume, event, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from delivery.models import OutboxRow
from tickets.models import Ticket, TicketAudit, TicketStatusChange

#: Bounded so that every fuzz test together stays under a minute on two cores; derandomized
#: (and no example database) so that CI tries the same inputs on every run. The fixtures
#: (a running application) are shared by the examples of one test on purpose: each example
#: counts the stored rows before and after itself.
FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, database=None,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

#: What the toolkit answers with a 400, and the other refusals a fuzzed request may meet.
BODY_CODES = {"malformed", "too_deep", "number_too_large", "unencodable_text", "nul_character"}


# --------------------------------------------------------------------------- JSON text


@dataclass(frozen=True)
class Raw:
    """JSON text written as is: numbers Python's json cannot write (``1`` and 5,000 zeros,
    ``1e400``) and nesting deeper than a recursive writer goes."""

    text: str


def encode(doc: Any) -> bytes:
    """``doc`` as JSON in UTF-8; :class:`Raw` parts verbatim, lone surrogates as ``\\ud800``
    escapes (the only way JSON text can carry them)."""
    return _write(doc).encode("utf-8")


def _write(doc: Any) -> str:
    if isinstance(doc, Raw):
        return doc.text
    if isinstance(doc, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_write(v)}" for k, v in doc.items()) + "}"
    if isinstance(doc, list):
        return "[" + ",".join(_write(v) for v in doc) + "]"
    return json.dumps(doc)  # ensure_ascii: surrogates become escapes, not unencodable text


def deep(levels: int, kind: str = "[") -> Raw:
    """Arrays (or objects under key ``a``) nested ``levels`` deep."""
    if kind == "[":
        return Raw("[" * levels + "]" * levels)
    return Raw('{"a":' * levels + "1" + "}" * levels)


# --------------------------------------------------------------------------- odd values

ODD_TEXT = ["\ud800", "a\udfffb", "\udc00\ud800", "\x00", "a\x00b", "", " ", "\t\n", "𝄞", "\u202eabc",
            "\ufeff", "null", "0", "-1", "'; DROP TABLE tickets; --", "../../etc/passwd", "%00", "x" * 5000,
            "中" * 3000, "\\", '"', "\r\n"]
ODD_NUMBERS = [Raw("1" + "0" * 5000), Raw("-" + "9" * 4400), Raw("9" * 30), Raw("1e400"), Raw("-1e400"),
               Raw("1e-400"), Raw("-0"), Raw("0.0"), Raw("1E+2"), 2**53 - 1, -(2**53 - 1), Raw(str(2**53)),
               Raw(str(2**63)), Raw(str(-(2**63) - 1)), 2**31, -1, 0, 1, 1.5, 1e300, -1e-300]
#: Times and dates at the edges of what datetime holds, with offsets that push them over.
ODD_TIMES = ["0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00-23:59",
             "0001-01-02T00:00:00+23:59", "9999-12-31T23:59:59Z", "9999-12-31T23:59:60Z",
             "9999-12-31T23:59:59-08:00", "9999-12-31T00:00:00+08:00", "9999-12-30T23:59:59Z",
             "2026-09-28T10:00:60+08:00", "2026-02-29T00:00:00Z", "2026-09-28T24:00:00+08:00",
             "2026-09-28T10:00:00+24:00", "2026-09-28T10:00:00.1234567890123+08:00", "2026-09-28 10:00:00",
             "2026-09-28T10:00:00", "0000-00-00T00:00:00Z", "2026-09-28T10:00:00+08:00"]
ODD_DATES = ["0001-01-01", "9999-12-31", "0000-01-01", "2026-02-29", "2024-02-29", "2026-13-01", "2026-9-1",
             "9999-12-30", "0001-01-02"]

_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53 - 1), 2**53 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30), st.sampled_from(ODD_TEXT), st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_TIMES),
    st.sampled_from(ODD_DATES),
)
#: Keys: ordinary and odd (surrogates, NUL, very long, empty).
KEYS = st.one_of(st.text(max_size=12), st.sampled_from(["", "\ud800", "a\x00", "k" * 300, "__proto__", "$ref"]))
#: Any JSON value, odd leaves included, and now and then a nesting past every limit.
JSON = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12,
) | st.sampled_from([deep(33), deep(40, "{"), deep(2000), deep(30_000)])
ODD_VALUES = st.one_of(st.sampled_from(ODD_TEXT), st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_TIMES),
                       st.sampled_from(ODD_DATES), st.sampled_from([deep(33), deep(40, "{"), deep(3000)]), JSON)


def mutated(docs: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Documents of ``docs`` with up to three places changed: a value replaced by an odd one,
    a key dropped, or an odd key added."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        doc = draw(docs)
        for _ in range(draw(st.integers(0, 3))):
            places = _places(doc)
            path = places[draw(st.integers(0, len(places) - 1))]
            action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
            doc = _change(doc, path, action, draw(ODD_VALUES), draw(KEYS))
        return doc

    return build()


def _places(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _places(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _places(value, (*path, i))
    return found


def _change(doc: Any, path: tuple[Any, ...], action: str, value: Any, key: str) -> Any:
    if not path:
        if action == "add" and isinstance(doc, dict):
            return {**doc, key: value}
        return value if action == "replace" else doc
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        copy = dict(doc)
        if not rest and action == "drop":
            copy.pop(head, None)
        else:
            copy[head] = _change(copy[head], rest, action, value, key)
        return copy
    copy_list = list(doc)
    if not rest and action == "drop":
        del copy_list[head]
    else:
        copy_list[head] = _change(copy_list[head], rest, action, value, key)
    return copy_list


def bodies(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Request bodies: mostly mutated ``documents``, then any JSON, then bytes of any kind
    (cut JSON, other encodings, nothing)."""
    spoiled = mutated(documents).map(encode)
    return st.one_of(
        spoiled, spoiled, spoiled, spoiled, spoiled, spoiled, JSON.map(encode), st.binary(max_size=64),
        mutated(documents).map(lambda d: encode(d)[: max(len(encode(d)) // 2, 1)]),
        st.sampled_from([b"", b" ", b"null", b"[]", b"\xff\xfe{}", b'{"a":1,"a":2}', b"NaN",
                         '{"summary":"中文"}'.encode("utf-16"), b'{"\\ud800":1}', b'"\\udfff"']),
    )


# --------------------------------------------------------------------------- documents from a schema


def from_schema(schema: Mapping[str, Any], document: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (the subset of JSON Schema our OpenAPI files use:
    ``$ref`` into ``document``, objects, enums, patterns, formats, lengths), for
    :func:`mutated` to spoil."""
    if "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return from_schema(target, document)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of(*(from_schema({**schema, "type": k}, document) for k in kind))
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, document) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, document) for k, v in properties.items() if k not in required})
    if kind == "string":
        return _string(schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(schema.get("minimum", -1e9), schema.get("maximum", 1e9))
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), document), max_size=schema.get("maxItems", 3))
    return JSON


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date-time":
        return st.one_of(st.sampled_from(ODD_TIMES), st.datetimes().map(lambda d: d.isoformat() + "+08:00"))
    if fmt == "date":
        return st.one_of(st.sampled_from(ODD_DATES), st.dates().map(lambda d: d.isoformat()))
    if fmt == "uuid":
        return st.uuids().map(str)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 60)
    return st.text(min_size=lo, max_size=min(hi, 60) if hi >= lo else lo)


# --------------------------------------------------------------------------- URLs and headers

#: Text for a path segment or a query value, percent-encoded as UTF-8 (lone surrogates as the
#: bytes "surrogatepass" gives, which are no UTF-8 at all). At most 500 characters, so that a
#: URL with one of them stays under :data:`MAX_URL`.
SEGMENTS = st.one_of(st.text(max_size=40), st.sampled_from([t[:500] for t in ODD_TEXT + ODD_TIMES + ODD_DATES]),
                     st.uuids().map(str), st.integers().map(str))
#: Header values a client can send (no line breaks; latin-1, as HTTP carries them).
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                        max_size=60)


#: aiohttp's parser refuses a longer request line itself (a 400 in plain text, before any of
#: our code runs), so longer URLs test nothing of ours.
MAX_URL = 8000


def short_enough(url: str) -> str:
    """``url``, in a hypothesis test, if it is no longer than :data:`MAX_URL`; else the example
    is dropped."""
    assume(len(url) <= MAX_URL)
    return url


def quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="", encoding="utf-8", errors="surrogatepass")


def query(params: Mapping[str, str]) -> str:
    return "&".join(f"{quoted(k)}={quoted(v)}" for k, v in params.items())


# --------------------------------------------------------------------------- checks


def check_answer(status: int, raw: bytes, content_type: str, what: str) -> Any:
    """The body of an answer that is no 5xx; a refusal must be a JSON problem."""
    assert status < 500, f"{what} answered {status}: {raw[:600]!r}"
    if status < 400:
        return json.loads(raw) if content_type == "application/json" and raw else raw
    assert content_type == "application/json", f"{what} answered {status} as {content_type}: {raw[:300]!r}"
    doc = json.loads(raw)
    assert isinstance(doc.get("code"), str) and isinstance(doc.get("message"), str), f"{what}: {doc}"
    if status == 400 and doc.get("errors"):
        assert all({"field", "code", "message_en", "message_zh"} <= set(e) for e in doc["errors"]), doc
    return doc


#: The rows a refused request must never leave behind.
STORED = (Ticket, TicketStatusChange, TicketAudit, OutboxRow)


async def stored_rows(engine: AsyncEngine) -> dict[str, int]:
    """How many tickets, status changes, audit entries and outbox rows there are."""
    async with engine.connect() as conn:
        return {model.__name__: (await conn.execute(select(func.count()).select_from(model))).scalar_one()
                for model in STORED}


async def nothing_stored_if_refused(engine: AsyncEngine, send: Callable[[], Any], what: str) -> tuple[int, Any]:
    """Send one request (``send()`` gives ``(status, body)``) in a hypothesis test; when it
    is refused (4xx), the stored rows must be as they were. Each answer's status and code is
    an event: ``--hypothesis-show-statistics`` shows how far the fuzzing got."""
    before = await stored_rows(engine)
    status, doc = await send()
    event(f"{status} {doc.get('code', '') if isinstance(doc, dict) else ''}".strip())
    if status >= 400:
        after = await stored_rows(engine)
        assert after == before, f"{what} was refused with {status} but stored {before} -> {after}"
    return status, doc


def path_with(template: str, **segments: str) -> str:
    """``template`` with each ``{name}`` replaced by its percent-encoded segment."""
    return re.sub(r"\{(\w+)\}", lambda m: quoted(segments[m.group(1)]), template)
