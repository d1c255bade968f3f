"""The fields of a ticket that people fill in: one table, read by the service (to check and
apply changes, and to audit them) and by the payload builder (to nest them as the platform's
``Case``).

Changes arrive in the ``Case`` shape, ``{"caller": {"phone": "138..."}, "summary": "..."}``.
Here only *types* are checked (a string where a string belongs, a real date, an amount with at
most two decimals): what the values must be (enumerations, formats, check characters, cross-field
rules) is the platform's business, checked by :func:`national.contract.validate_case`, so that a
draft may be saved half-right while the caller is still talking.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.privacy import mask_name, mask_phone, mask_text
from national.contract import parse_date, parse_datetime

#: Longest free text kept (the platform's own limits are lower; it reports them).
TEXT_LIMIT = 10_000
_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class Field:
    #: Path in the ``Case`` shape, used in changes, errors and the audit.
    path: str
    #: Column of :class:`tickets.models.Ticket`.
    attr: str
    #: ``text``, ``bool``, ``money``, ``date``, ``datetime`` or ``number``.
    kind: str = "text"
    max_len: int = TEXT_LIMIT
    #: How the audit shows the value to someone not authorised to see personal data.
    mask: Callable[[str], str] | None = None
    #: Part of the ``Case`` the platform receives.
    in_case: bool = True


FIELDS: tuple[Field, ...] = (
    Field("case_type", "case_type", max_len=16),
    Field("channel", "channel", max_len=16),
    Field("hotline_number", "hotline_number", max_len=16),
    Field("business_line", "business_line", max_len=32),
    Field("call_id", "call_id", max_len=36),
    Field("related_to", "related_to", max_len=36, in_case=False),
    Field("received_at", "received_at", kind="datetime"),
    Field("agent_id", "agent_id", max_len=64),
    Field("handling.region", "handling_region", max_len=16),
    Field("handling.level", "handling_level", max_len=16),
    Field("handling.station", "handling_station", max_len=16),
    Field("caller.phone", "caller_phone", max_len=32, mask=mask_phone),
    Field("caller.name", "caller_name", max_len=200, mask=mask_name),
    Field("caller.region", "caller_region", max_len=16),
    Field("caller.anonymous", "caller_anonymous", kind="bool"),
    Field("respondent.name", "respondent_name", max_len=1000),
    Field("respondent.credit_code", "respondent_credit_code", max_len=32),
    Field("respondent.region", "respondent_region", max_len=16),
    Field("respondent.address", "respondent_address", max_len=1000, mask=mask_text),
    Field("subject.kind", "subject_kind", max_len=16),
    Field("subject.category", "subject_category", max_len=1000),
    Field("subject.amount", "subject_amount", kind="money"),
    Field("subject.purchased_on", "subject_purchased_on", kind="date"),
    # Free text may hold a phone number the caller dictated: masked like logs are.
    Field("summary", "summary", mask=mask_text),
    Field("demand", "demand", max_len=32),
    Field("ivr_transcript", "ivr_transcript", mask=mask_text),
    Field("recording.recording_id", "recording_id", max_len=64),
    Field("recording.sha256", "recording_sha256", max_len=64),
    Field("recording.duration_s", "recording_duration_s", kind="number"),
)

BY_PATH: dict[str, Field] = {f.path: f for f in FIELDS}


def _groups() -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for field in FIELDS:
        if "." in field.path:
            group, key = field.path.split(".", 1)
            groups.setdefault(group, []).append(key)
    return {group: tuple(keys) for group, keys in groups.items()}


#: Nested objects of the ``Case`` and the keys each may hold.
GROUPS: dict[str, tuple[str, ...]] = _groups()

#: Set by the service, never by a change: named so that the error says where they change.
READ_ONLY = {
    "id": "the id is given once, at creation",
    "case_id": "the case id is the ticket's id, given once at creation",
    "status": "the status changes through complete() and progress()",
    "delivery_state": "delivery is recorded by the delivery worker",
    "platform_case_no": "delivery is recorded by the delivery worker",
    "deadlines": "deadlines are computed when the ticket is completed",
    "version": "give the version you saw as the version argument",
}


class BadChanges(ValueError):
    """Changes that cannot be stored: unknown fields or values of the wrong type.

    ``errors`` holds ``(field path, message)`` for every one found.
    """

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))


def parse_changes(changes: Any) -> dict[Field, Any]:
    """Flatten changes in the ``Case`` shape to ``{field: value}``, each value of its column's
    type (``None`` clears a field); raise :class:`BadChanges` listing every bad one."""
    if not isinstance(changes, Mapping):
        raise BadChanges([("", f"changes must be an object, not {type(changes).__name__}")])
    errors: list[tuple[str, str]] = []
    parsed: dict[Field, Any] = {}
    for key, value in changes.items():
        if key in GROUPS:
            _parse_group(str(key), value, parsed, errors)
        else:
            _parse_one(str(key), value, parsed, errors)
    if errors:
        raise BadChanges(errors)
    return parsed


def _parse_group(group: str, value: Any, parsed: dict[Field, Any], errors: list[tuple[str, str]]) -> None:
    if value is None:
        # ``"recording": null`` clears the whole object.
        for key in GROUPS[group]:
            parsed[BY_PATH[f"{group}.{key}"]] = _empty(BY_PATH[f"{group}.{key}"])
        return
    if not isinstance(value, Mapping):
        errors.append((group, f"must be an object, not {_type_name(value)}"))
        return
    for key, item in value.items():
        _parse_one(f"{group}.{key}", item, parsed, errors)


def _parse_one(path: str, value: Any, parsed: dict[Field, Any], errors: list[tuple[str, str]]) -> None:
    field = BY_PATH.get(path)
    if field is None:
        errors.append((path, _unknown(path)))
        return
    try:
        parsed[field] = _empty(field) if value is None else _COERCE[field.kind](field, value)
    except (TypeError, ValueError) as exc:
        errors.append((path, str(exc)))


def _unknown(path: str) -> str:
    if path in READ_ONLY:
        return f"cannot be changed: {READ_ONLY[path]}"
    group = path.split(".", 1)[0]
    if group in GROUPS and "." in path:
        return f"unknown field; {group} has: {', '.join(GROUPS[group])}"
    return "unknown field"


def _empty(field: Field) -> Any:
    return False if field.kind == "bool" else None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _text(field: Field, value: Any) -> str | None:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {_type_name(value)}")
    # Forms send "" for an empty box: that clears the field.
    value = value.strip()
    if len(value) > field.max_len:
        raise ValueError(f"at most {field.max_len} characters can be kept (has {len(value)})")
    return value or None


def _bool(_field: Field, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, not {_type_name(value)}")
    return value


def _money(_field: Field, value: Any) -> Decimal:
    # A float cannot hold 0.1 exactly: money comes as a string (as the platform writes it).
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise TypeError(f'must be an amount in yuan as a string such as "199.00", not {_type_name(value)}')
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f'{value!r} is not an amount in yuan such as "199.00"') from None
    if not amount.is_finite() or amount < 0 or amount >= _MAX_AMOUNT:
        raise ValueError(f"{value!r} is not an amount from 0 to 999999999999.99 yuan")
    if amount != amount.quantize(_CENT):
        raise ValueError(f"{value!r} has more than 2 decimals")
    return amount.quantize(_CENT)


def _date(_field: Field, value: Any) -> date:
    if isinstance(value, datetime) or not isinstance(value, (date, str)):
        raise TypeError(f"must be a date YYYY-MM-DD, not {_type_name(value)}")
    parsed = value if isinstance(value, date) else parse_date(value.strip())
    if parsed is None:
        raise ValueError(f"{value!r} is not a valid date YYYY-MM-DD")
    return parsed


def _datetime(_field: Field, value: Any) -> datetime:
    if not isinstance(value, (datetime, str)):
        raise TypeError(f"must be a time such as 2026-11-23T10:15:00+08:00, not {_type_name(value)}")
    parsed = value if isinstance(value, datetime) else parse_datetime(value.strip())
    if parsed is None:
        raise ValueError(f"{value!r} is not an RFC 3339 time with an offset, e.g. 2026-11-23T10:15:00+08:00")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("a time needs its offset (a naive time is ambiguous)")
    return parsed


def _number(_field: Field, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise TypeError(f"must be a number, not {_type_name(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


_COERCE: dict[str, Callable[[Field, Any], Any]] = {
    "text": _text, "bool": _bool, "money": _money, "date": _date, "datetime": _datetime, "number": _number,
}


def to_json(value: Any) -> Any:
    """A column value as JSON: money as ``"199.00"``, dates and times in ISO form."""
    if isinstance(value, Decimal):
        return f"{value.quantize(_CENT):f}"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def audit_text(value: Any) -> str | None:
    """How a value is kept in the audit trail (JSON text; ``None`` for an empty field)."""
    return None if value is None else json.dumps(to_json(value), ensure_ascii=False)


def audit_display(field_path: str, stored: str | None, *, reveal: bool) -> str | None:
    """An audited value for display: personal data masked unless ``reveal``."""
    if stored is None:
        return None
    value = json.loads(stored)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    field = BY_PATH.get(field_path)
    if reveal or field is None or field.mask is None:
        return text
    return field.mask(text)
