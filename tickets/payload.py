"""What the national platform receives: a ticket as a ``Case``, a status change as a
``Progress`` step (``../shared/national-platform/openapi.yaml``).

Field names are the contract's; absent optional fields are left out rather than sent as
``null`` (the contract's types do not allow null); money is written by
:func:`national.contract.format_money` and times by :func:`national.contract.format_datetime`
in China's time (+08:00), the time the handling organisations read.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.vocabulary import CHINA_TZ
from national.contract import format_datetime, format_money
from tickets.fields import FIELDS, Field
from tickets.models import Ticket, TicketStatusChange

#: Left out when the caller of a report wants to stay anonymous (the platform refuses them).
_IDENTIFYING = frozenset({"caller.phone", "caller.name"})


def case_payload(ticket: Ticket) -> dict[str, Any]:
    """The ``Case`` body of ``ticket``, as far as it is filled in."""
    case: dict[str, Any] = {"case_id": ticket.id}
    for field in FIELDS:
        value = getattr(ticket, field.attr)
        if not field.in_case or value is None or value is False:
            continue
        if ticket.caller_anonymous and field.path in _IDENTIFYING:
            continue
        _put(case, field.path, _wire(field, value))
    deadlines = {key: day.isoformat() for key, day in
                 (("accept_by", ticket.accept_by), ("finish_by", ticket.finish_by)) if day is not None}
    if deadlines:
        case["deadlines"] = deadlines
    return case


def progress_payload(change: TicketStatusChange) -> dict[str, Any]:
    """The ``Progress`` body of a recorded progress step."""
    if change.step_id is None:
        raise ValueError(f"status change {change.from_status}->{change.to_status} is not a progress step")
    body: dict[str, Any] = {"step_id": change.step_id, "step": change.to_status, "at": _time(change.at)}
    to = {key: value for key, value in (("region", change.to_region), ("level", change.to_level),
                                        ("station", change.to_station)) if value is not None}
    if to:
        body["to"] = to
    if change.outcome is not None:
        body["outcome"] = change.outcome
    if change.note is not None:
        body["note"] = change.note
    return body


def _wire(field: Field, value: Any) -> Any:
    if field.kind == "money" and isinstance(value, (Decimal, int, str)):
        return format_money(value)
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _time(moment: datetime) -> str:
    return format_datetime(moment.astimezone(CHINA_TZ))


def _put(case: dict[str, Any], path: str, value: Any) -> None:
    group, _, key = path.rpartition(".")
    target = case.setdefault(group, {}) if group else case
    target[key] = value
