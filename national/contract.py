"""The national 12315 platform's rules for what we deliver, in one place.

Everything here mirrors ``../shared/national-platform/openapi.yaml`` (schemas ``Case``,
``Progress``, ``CallRecord``, ``HandlingOrg``, ``RegionCode``). The same functions serve our
own API, the agent desktop's live validation, the delivery workers and the platform
stand-in, so that "valid here" and "accepted there" can never drift apart.

Each validator returns *every* problem it finds (never stops at the first), each with the
field's JSON path (``respondent.credit_code``, ``menu_path[3]``), a machine code and a message
in Chinese and English. Codes used:

``required``, ``bad_type``, ``too_long``, ``too_short``, ``too_many``, ``out_of_range``,
``not_allowed`` (a value outside an enumeration, or a field that must be absent),
``bad_format``, ``bad_check_digit``, ``unknown_region``, ``mismatch``, ``in_future``,
``out_of_order``, ``past_deadline``.

The contract's version is :data:`CONTRACT_VERSION`; what each version changed is in the
contract's "Changes" section, and the rules below follow the newest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from typing import Any, Final, Literal, overload

from core.problems import Problem
from core.vocabulary import BUSINESS_LINE_OF_NUMBER, BUSINESS_LINES, CHINA_TZ, HANDLING_LEVELS, HOTLINE_NUMBERS

#: The version of ``openapi.yaml`` these rules implement.
CONTRACT_VERSION = "1.1.0"

# --------------------------------------------------------------------------- enumerations

CASE_TYPES = ("complaint", "report", "consultation")
#: ``gov_hotline`` (1.1.0): a case handed over by the local government service hotline (12345).
CHANNELS = ("hotline", "web", "wechat", "app", "letter", "visit", "gov_hotline")
SUBJECT_KINDS = ("goods", "service")
DEMANDS = ("refund", "exchange", "repair", "compensation", "apology", "investigate",
           "information", "other")
PROGRESS_STEPS = ("accepted", "rejected", "transferred", "closed")
CLOSE_OUTCOMES = ("mediated", "not_mediated", "referred_to_enforcement", "answered", "withdrawn")
RECOGNIZERS = ("speech", "dtmf", "none")
#: ``transferred_out`` and ``self_service`` (1.1.0): a call handed over elsewhere, and one
#: answered by self-service without an agent.
CALL_OUTCOMES = ("answered", "abandoned_in_menu", "abandoned_in_queue", "callback_requested",
                 "after_hours", "overflowed", "failed", "transferred_out", "self_service")

#: Province-level prefixes of GB/T 2260 region codes the platform knows.
PROVINCE_PREFIXES = frozenset(
    [str(n) for n in range(11, 16)] + [str(n) for n in range(21, 24)]
    + [str(n) for n in range(31, 38)] + [str(n) for n in range(41, 47)]
    + [str(n) for n in range(50, 55)] + [str(n) for n in range(61, 66)]
    + ["71", "81", "82"]
)
NATIONAL_REGION = "000000"

#: How far ``received_at`` may lie ahead of the platform's clock.
MAX_FUTURE_SKEW = timedelta(minutes=5)

# --------------------------------------------------------------------------- patterns
# [0-9] rather than \d: \d would also accept non-ASCII digits such as "１２３".

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CC = "0-9A-HJ-NPQRTUWXY"
CREDIT_CODE_RE = re.compile(rf"[{_CC}]{{2}}[0-9]{{6}}[{_CC}]{{10}}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PHONE_RE = re.compile(r"\+?[0-9]{5,20}")
REGION_RE = re.compile(r"[1-9][0-9]{5}")
HANDLING_REGION_RE = re.compile(r"[0-9]{6}")
STATION_RE = re.compile(r"[0-9]{3}")
MONEY_RE = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


# --------------------------------------------------------------------------- the result


# --------------------------------------------------------------------------- small parsers


#: The instants a date-time may name: those whose every view at an offset under a day (China
#: time, UTC, the sender's) is a ``datetime``, so that comparing and converting never overflow
#: (``0001-01-01T00:00:00+08:00`` is in year 0 in UTC; ``9999-12-31T20:00:00Z`` in year 10000
#: in China).
_EARLIEST_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
_LATEST_INSTANT = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def parse_datetime(value: str) -> datetime | None:
    """An RFC 3339 date-time with an explicit offset (``Z`` or ``±hh:mm``) naming an instant
    from 0001-01-02 to 9999-12-30 UTC, else ``None``; never raises."""
    m = DATETIME_RE.fullmatch(value) if isinstance(value, str) else None
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zulu, sign, off_h, off_m = m.group(7), m.group(8), m.group(9), m.group(10), m.group(11)
    leap = second == 60  # RFC 3339 allows a leap second; datetime does not.
    if leap:
        second = 59
    try:
        if zulu:
            tz = UTC
        else:
            if int(off_h) > 23 or int(off_m) > 59:
                return None
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        parsed = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        if leap:
            parsed += timedelta(seconds=1)
        instant = parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # no such day or time; before year 1 or after 9999
        return None
    return parsed if _EARLIEST_INSTANT <= instant <= _LATEST_INSTANT else None


#: Each document's date-time fields (all at its top level), in the order the contract lists them.
CASE_TIMES = ("received_at",)
PROGRESS_TIMES = ("at",)
CALL_RECORD_TIMES = ("started_at", "queued_at", "answered_at", "ended_at")


def with_instants(doc: Any, times: Sequence[str]) -> Any:
    """``doc`` (a JSON object) with each of its ``times`` that reads as an RFC 3339 time
    rewritten as the instant it names, in UTC.

    Idempotency compares documents with this: a sender's retry may write the same
    ``received_at`` in another offset (``10:15:00+08:00`` and ``02:15:00Z`` are one instant),
    and that is the same document, not a different one. A value that is not a time is
    left as it is, so it still differs from anything else. ``doc`` is not changed.
    """
    if not isinstance(doc, Mapping):
        return doc
    result = dict(doc)
    for key in times:
        value = result.get(key)
        moment = parse_datetime(value) if isinstance(value, str) else None
        if moment is not None:
            result[key] = moment.astimezone(UTC).isoformat()
    return result


def parse_date(value: str) -> date | None:
    """A ``YYYY-MM-DD`` calendar date, else ``None``; never raises."""
    m = DATE_RE.fullmatch(value) if isinstance(value, str) else None
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def format_datetime(moment: datetime) -> str:
    """The platform's time format: RFC 3339 to the second with an explicit offset."""
    if moment.tzinfo is None:
        raise ValueError("a time without an offset cannot be sent to the platform")
    return moment.isoformat(timespec="seconds")


def format_money(amount: Decimal | int | str) -> str:
    """Yuan as the platform writes them: ``Decimal("199")`` -> ``"199.00"``."""
    try:
        value = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"{amount!r} is not an amount of money") from exc
    if value.is_zero():
        value = abs(value)  # "-0.004" rounds to -0.00, which the platform's pattern refuses
    text = f"{value:f}"
    if not MONEY_RE.fullmatch(text):
        raise ValueError(f"{amount!r} cannot be written as platform money (0 to 12 digits, 2 decimals)")
    return text


def credit_code_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a credit code.

    Values 0..30 follow ``CREDIT_CODE_ALPHABET``; check value = (31 - Σ value·weight mod 31) mod 31.
    """
    if len(first17) != 17:
        raise ValueError(f"need the first 17 characters, got {len(first17)}")
    try:
        total = sum(CREDIT_CODE_ALPHABET.index(ch) * w for ch, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    except ValueError as exc:
        raise ValueError(f"{first17!r} has a character outside {CREDIT_CODE_ALPHABET}") from exc
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def region_is_known(code: str) -> bool:
    """True when a 6-digit region code starts with a listed province prefix."""
    return code[:2] in PROVINCE_PREFIXES


# --------------------------------------------------------------------------- the machinery


_TYPE_WORDS = {
    "string": ("字符串", "a string"),
    "object": ("对象", "an object"),
    "array": ("数组", "an array"),
    "boolean": ("布尔值（true 或 false）", "a boolean (true or false)"),
    "number": ("数字", "a number"),
    "integer": ("整数", "an integer"),
}

#: Format name -> (Chinese, English) description of the expected shape.
_FORMATS = {
    "uuid": ("应为 UUID（8-4-4-4-12 位十六进制）", "must be a UUID (8-4-4-4-12 hex digits)"),
    "date-time": ("应为带时区偏移的 RFC 3339 时间，如 2026-11-23T10:15:00+08:00",
                  "must be an RFC 3339 time with an explicit offset, e.g. 2026-11-23T10:15:00+08:00"),
    "date": ("应为有效日期 YYYY-MM-DD", "must be a valid date YYYY-MM-DD"),
    "phone": ("应为 5 到 20 位数字，可带前导 +", "must be 5 to 20 digits, optionally with a leading +"),
    "region": ("应为 6 位行政区划代码（首位非 0）", "must be a 6-digit region code not starting with 0"),
    "handling_region": ("应为 6 位行政区划代码（全国为 000000）",
                        "must be a 6-digit region code (000000 for the national level)"),
    "station": ("应为 3 位数字的基层站所编号", "must be a 3-digit station number"),
    "money": ("应为以元为单位的金额字符串，最多两位小数，如 \"199.00\"",
              "must be a decimal string in yuan with at most 2 decimals, e.g. \"199.00\""),
    "sha256": ("应为 64 位小写十六进制 SHA-256", "must be a SHA-256 in 64 lowercase hex digits"),
    "credit_code": ("应为 18 位统一社会信用代码（不含 I、O、S、V、Z）",
                    "must be an 18-character unified social credit code (no I, O, S, V, Z)"),
}

_PATTERNS = {
    "phone": PHONE_RE, "region": REGION_RE, "handling_region": HANDLING_REGION_RE,
    "station": STATION_RE, "money": MONEY_RE, "sha256": SHA256_RE, "credit_code": CREDIT_CODE_RE,
    "uuid": UUID_RE,
}


class _Missing(Enum):
    """An absent or unusable field (not ``None``: JSON ``null`` is a value, and a wrong one)."""

    MISSING = "missing"


_MISSING: Final = _Missing.MISSING


class _Report:
    """Collects problems for one document."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field: str, code: str, zh: str, en: str) -> None:
        self.problems.append(Problem(field, code, zh, en))


class _Object:
    """Typed, rule-checked access to one JSON object at a JSON path.

    Each accessor reports what is wrong with the field and returns its value only when the
    value is usable by cross-field rules (right type, right shape); otherwise ``None``.
    """

    def __init__(self, report: _Report, data: Mapping[str, Any], prefix: str = "") -> None:
        self.report, self.data, self.prefix = report, data, prefix

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def has(self, key: str) -> bool:
        return key in self.data

    # One signature per JSON kind: the value comes back only when _is_type found it of that kind.
    @overload
    def _get(self, key: str, required: bool, kind: Literal["string"]) -> str | _Missing: ...
    @overload
    def _get(self, key: str, required: bool, kind: Literal["object"]) -> dict[str, Any] | _Missing: ...
    @overload
    def _get(self, key: str, required: bool, kind: Literal["array"]) -> list[Any] | _Missing: ...
    @overload
    def _get(self, key: str, required: bool, kind: Literal["boolean"]) -> bool | _Missing: ...
    @overload
    def _get(self, key: str, required: bool, kind: Literal["number", "integer"]) -> float | _Missing: ...

    def _get(self, key: str, required: bool, kind: str) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.report.add(self.path(key), "required", "必填", "is required")
            return _MISSING
        if not _is_type(value, kind):
            zh, en = _TYPE_WORDS[kind]
            got = "null" if value is None else type(value).__name__
            self.report.add(self.path(key), "bad_type", f"应为{zh}", f"must be {en}, not {got}")
            return _MISSING
        return value

    def string(self, key: str, *, required: bool = False, min_len: int | None = None,
               max_len: int | None = None, enum: Sequence[str] | None = None,
               fmt: str | None = None) -> str | None:
        value = self._get(key, required, "string")
        if value is _MISSING:
            return None
        path, ok = self.path(key), True
        if enum is not None and value not in enum:
            allowed = ", ".join(enum)
            self.report.add(path, "not_allowed", f"取值必须是以下之一：{allowed}", f"must be one of: {allowed}")
            return None
        if max_len is not None and len(value) > max_len:
            self.report.add(path, "too_long", f"不能超过 {max_len} 个字符（现为 {len(value)}）",
                            f"must be at most {max_len} characters (has {len(value)})")
            ok = False
        if min_len is not None and len(value) < min_len:
            self.report.add(path, "too_short", f"至少需要 {min_len} 个字符（现为 {len(value)}）",
                            f"must be at least {min_len} characters (has {len(value)})")
            ok = False
        if fmt is not None and not _PATTERNS[fmt].fullmatch(value):
            self._bad_format(path, fmt)
            ok = False
        return value if ok else None

    def _bad_format(self, path: str, fmt: str) -> None:
        zh, en = _FORMATS[fmt]
        self.report.add(path, "bad_format", zh, en)

    def uuid(self, key: str, *, required: bool = False) -> str | None:
        return self.string(key, required=required, fmt="uuid")

    def datetime(self, key: str, *, required: bool = False) -> datetime | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            self._bad_format(self.path(key), "date-time")
        return parsed

    def date(self, key: str, *, required: bool = False) -> date | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        parsed = parse_date(value)
        if parsed is None:
            self._bad_format(self.path(key), "date")
        return parsed

    def region(self, key: str, *, required: bool = False) -> str | None:
        """A ``RegionCode``: 6 digits, first not 0, a listed province prefix."""
        value = self.string(key, required=required, fmt="region")
        if value is not None and not region_is_known(value):
            _unknown_region(self.report, self.path(key), value[:2])
        return value

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        value = self._get(key, required, "boolean")
        return None if value is _MISSING else value

    def number(self, key: str, *, required: bool = False, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False) -> float | None:
        value = self._get(key, required, "integer" if integer else "number")
        if value is _MISSING:
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            lo = "-∞" if minimum is None else _num(minimum)
            hi = "∞" if maximum is None else _num(maximum)
            self.report.add(self.path(key), "out_of_range", f"应在 {lo} 到 {hi} 之间",
                            f"must be between {lo} and {hi}")
            return None
        return value

    def obj(self, key: str, *, required: bool = False) -> _Object | None:
        value = self._get(key, required, "object")
        return None if value is _MISSING else _Object(self.report, value, self.path(key))

    def array(self, key: str, *, max_items: int | None = None) -> list[Any] | None:
        value = self._get(key, False, "array")
        if value is _MISSING:
            return None
        if max_items is not None and len(value) > max_items:
            self.report.add(self.path(key), "too_many", f"最多 {max_items} 项（现为 {len(value)}）",
                            f"must have at most {max_items} items (has {len(value)})")
        return value


def _is_type(value: Any, kind: str) -> bool:
    # bool is an int in Python but never a JSON number; an integral float (3.0) is a JSON
    # Schema integer.
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False  # NaN and Infinity are not JSON numbers (Python's json reads them anyway)
    return kind == "number" or isinstance(value, int) or value.is_integer()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _unknown_region(report: _Report, path: str, prefix: str) -> None:
    report.add(path, "unknown_region", f"行政区划代码的省级前缀 {prefix} 不存在",
               f"region code has no province with prefix {prefix}")


def _root(data: Any) -> tuple[_Report, _Object | None]:
    report = _Report()
    if not isinstance(data, dict):
        report.add("", "bad_type", "请求体应为 JSON 对象", "the body must be a JSON object")
        return report, None
    return report, _Object(report, data)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


# --------------------------------------------------------------------------- shared parts


def _handling_org(parent: _Object, key: str, *, required: bool) -> None:
    """``HandlingOrg``: region, level, station, and the level/region agreement rule."""
    org = parent.obj(key, required=required)
    if org is None:
        return
    region = org.string("region", required=True, fmt="handling_region")
    if region is not None and region != NATIONAL_REGION and not region_is_known(region):
        _unknown_region(org.report, org.path("region"), region[:2])
    level = org.string("level", required=True, enum=HANDLING_LEVELS)
    org.string("station", fmt="station")
    if level == "station" and not org.has("station"):
        org.report.add(org.path("station"), "required", "基层站所级别必须填写站所编号",
                       "is required when level is station")
    if region is not None and level is not None:
        expected = _level_of_region(region)
        fits = level == expected or (level == "station" and expected == "county")
        if not fits:
            org.report.add(
                org.path("region"), "mismatch",
                f"区划代码 {region} 属于{_LEVEL_ZH[expected]}级，与级别 {level} 不符",
                f"region {region} is a {expected}-level code, which does not fit level {level}",
            )


_LEVEL_ZH = {"national": "全国", "province": "省", "city": "市", "county": "县"}


def _level_of_region(region: str) -> str:
    if region == NATIONAL_REGION:
        return "national"
    if region.endswith("0000"):
        return "province"
    if region.endswith("00"):
        return "city"
    return "county"


def _credit_code(report: _Report, obj: _Object) -> None:
    """The shape and the check character, nothing more. Characters 3..8 are the registering
    authority's division code, or ``100000`` for a business registered at national level
    (1.0.1); the contract says the platform refuses no case for these six characters, so
    neither do we (their shape, six digits, is the pattern's)."""
    code = obj.string("credit_code", fmt="credit_code")
    if code is None:
        return
    if credit_code_check_char(code[:17]) != code[17]:
        report.add(obj.path("credit_code"), "bad_check_digit", "统一社会信用代码校验位不正确，请核对每一位",
                   "the check character does not match; a character is probably mistyped")


def _key_matches(report: _Report, field: str, value: str | None, key: str | None) -> None:
    if key is not None and value is not None and value.lower() != key.strip().lower():
        report.add(field, "mismatch", f"必须与 Idempotency-Key（{key}）一致",
                   f"must equal the Idempotency-Key ({key})")


# --------------------------------------------------------------------------- Case


def validate_case(data: Any, *, now: datetime, idempotency_key: str | None = None) -> list[Problem]:
    """Every problem of a ``Case`` (schema and cross-field rules).

    ``now`` is the clock that ``received_at`` is checked against (5 minutes of skew allowed);
    ``idempotency_key``, when given, must equal ``case_id``.
    """
    _require_aware(now)
    report, case = _root(data)
    if case is None:
        return report.problems
    case_id = case.uuid("case_id", required=True)
    _key_matches(report, "case_id", case_id, idempotency_key)
    case_type = case.string("case_type", required=True, enum=CASE_TYPES)
    channel = case.string("channel", required=True, enum=CHANNELS)
    number = case.string("hotline_number", enum=HOTLINE_NUMBERS)
    line = case.string("business_line", enum=BUSINESS_LINES)
    case.uuid("call_id")
    received_at = case.datetime("received_at", required=True)
    _handling_org(case, "handling", required=True)
    case.string("agent_id", max_len=32)
    _caller(case, case_type)
    respondent = case.obj("respondent")
    if respondent is not None:
        respondent.string("name", required=True, min_len=1, max_len=200)
        _credit_code(report, respondent)
        respondent.region("region", required=True)
        respondent.string("address", max_len=300)
    _subject(case)
    case.string("summary", required=True, min_len=5, max_len=2000)
    case.string("demand", enum=DEMANDS)
    case.string("ivr_transcript", max_len=2000)
    _recording(case)
    deadlines = case.obj("deadlines")
    if deadlines is not None:
        deadlines.date("accept_by")
        deadlines.date("finish_by")

    # Cross-field rules.
    if case_type in ("complaint", "report") and not case.has("respondent"):
        report.add("respondent", "required", "投诉和举报必须填写被投诉（举报）对象",
                   f"is required for a {case_type}")
    if channel == "hotline":
        for key in ("hotline_number", "call_id"):
            if not case.has(key):
                report.add(key, "required", "热线渠道必须填写", "is required when channel is hotline")
    expected_line = BUSINESS_LINE_OF_NUMBER.get(number or "")
    if expected_line is not None and line is not None and line != expected_line:
        report.add("business_line", "mismatch",
                   f"拨打 {number} 的业务条线应为 {expected_line}",
                   f"must be {expected_line} for calls to {number}")
    if received_at is not None and received_at > now + MAX_FUTURE_SKEW:
        report.add("received_at", "in_future", "受理时间不能晚于当前时间 5 分钟以上",
                   "must not be more than 5 minutes in the future")
    return report.problems


def _caller(case: _Object, case_type: str | None) -> None:
    caller = case.obj("caller")
    if caller is None:
        return
    caller.string("phone", fmt="phone")
    caller.string("name", max_len=50)
    caller.region("region")
    anonymous = caller.boolean("anonymous")
    if anonymous is True:
        if case_type is not None and case_type != "report":
            caller.report.add(caller.path("anonymous"), "not_allowed", "只有举报可以匿名",
                              "only a report may be anonymous")
        for key in ("phone", "name"):
            if caller.has(key):
                caller.report.add(caller.path(key), "not_allowed", "匿名时不得填写",
                                  "must be absent when the caller is anonymous")


def _subject(case: _Object) -> None:
    subject = case.obj("subject")
    if subject is None:
        return
    subject.string("kind", enum=SUBJECT_KINDS)
    subject.string("category", max_len=100)
    subject.string("amount", fmt="money")
    subject.date("purchased_on")


def _recording(case: _Object) -> None:
    recording = case.obj("recording")
    if recording is None:
        return
    recording.string("recording_id", required=True)
    recording.string("sha256", required=True, fmt="sha256")
    recording.number("duration_s", required=True, minimum=0)


# --------------------------------------------------------------------------- Progress


def validate_progress(data: Any, *, accept_by: date | None = None) -> list[Problem]:
    """Every problem of a ``Progress`` step on its own.

    ``accept_by`` is the case's acceptance deadline (``deadlines.accept_by``), when it has
    one: ``accepted`` and ``rejected`` must happen on or before it (Chinese calendar day).
    Whether the step may follow the case's earlier steps is :func:`check_step_order`.
    """
    report, progress = _root(data)
    if progress is None:
        return report.problems
    progress.uuid("step_id", required=True)
    step = progress.string("step", required=True, enum=PROGRESS_STEPS)
    at = progress.datetime("at", required=True)
    _handling_org(progress, "to", required=False)
    progress.string("outcome", enum=CLOSE_OUTCOMES)
    progress.string("note", max_len=1000)
    if step == "closed" and not progress.has("outcome"):
        report.add("outcome", "required", "结案必须填写办理结果", "is required when the step is closed")
    if step in ("accepted", "rejected") and at is not None and accept_by is not None:
        day = at.astimezone(CHINA_TZ).date()
        if day > accept_by:
            report.add("at", "past_deadline",
                       f"受理（或不予受理）须在受理期限 {accept_by.isoformat()} 之前",
                       f"{step} must happen by the acceptance deadline {accept_by.isoformat()}")
    return report.problems


def next_steps(previous: Sequence[str]) -> tuple[str, ...]:
    """Which steps may follow the ones already recorded (in order).

    The life cycle is ``(accepted | rejected) transferred* closed``.
    """
    if not previous:
        return ("accepted", "rejected")
    if "closed" in previous:
        return ()
    return ("transferred", "closed")


def check_step_order(previous: Sequence[str], step: str) -> Problem | None:
    """``out_of_order`` when ``step`` may not follow ``previous``; else ``None``."""
    allowed = next_steps(previous)
    if step in allowed:
        return None
    last = previous[-1] if previous else "（无）"
    last_en = previous[-1] if previous else "nothing"
    if allowed:
        zh_next, en_next = "、".join(allowed), " or ".join(allowed)
        return Problem("step", "out_of_order", f"在 {last} 之后只能是 {zh_next}",
                       f"after {last_en} only {en_next} may follow")
    return Problem("step", "out_of_order", "案件已结案，不能再报告进展",
                   "the case is closed; no step may follow")


# --------------------------------------------------------------------------- CallRecord


def validate_call_record(data: Any, *, idempotency_key: str | None = None) -> list[Problem]:
    """Every problem of a ``CallRecord``: schema, time order, and what ``answered`` needs.

    The contract's rules name companions for ``answered`` only (``answered_at``,
    ``agent_id``); ``transferred_out`` and ``self_service`` have none, so a record with
    either is checked for its fields' shapes and its time order like any other.
    """
    report, record = _root(data)
    if record is None:
        return report.problems
    call_id = record.uuid("call_id", required=True)
    _key_matches(report, "call_id", call_id, idempotency_key)
    record.string("hotline_number", required=True, enum=HOTLINE_NUMBERS)
    record.string("caller_phone", fmt="phone")
    times = {key: record.datetime(key, required=key in ("started_at", "ended_at"))
             for key in CALL_RECORD_TIMES}
    _handling_org(record, "handling", required=False)
    menu = record.array("menu_path", max_items=20)
    if menu is not None:
        for i, item in enumerate(menu):
            _Object(report, {f"menu_path[{i}]": item}).string(f"menu_path[{i}]", max_len=40)
    record.string("recognized_by", enum=RECOGNIZERS)
    outcome = record.string("outcome", required=True, enum=CALL_OUTCOMES)
    # Where the call was handed over (1.1.0). The contract describes it with transferred_out
    # or after an agent answered, but its rules neither require it with transferred_out nor
    # forbid it elsewhere, so only its own shape is checked here.
    record.string("transferred_to", max_len=40)
    record.string("agent_id", max_len=32)
    record.number("satisfaction", minimum=1, maximum=5, integer=True)

    # ended_at ≥ answered_at ≥ queued_at ≥ started_at where present: each time is compared
    # with the latest earlier one present, so one wrong time is reported once.
    earlier: tuple[str, datetime] | None = None
    for key in CALL_RECORD_TIMES:
        moment = times[key]
        if moment is None:
            continue
        if earlier is not None and moment < earlier[1]:
            report.add(key, "out_of_order", f"不能早于 {earlier[0]}", f"must not be before {earlier[0]}")
        else:
            earlier = (key, moment)
    if outcome == "answered":
        for key in ("answered_at", "agent_id"):
            if not record.has(key):
                report.add(key, "required", "已接听的来电必须填写",
                           "is required when the outcome is answered")
    return report.problems
