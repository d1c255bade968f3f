"""A ticket as the platform's ``Case`` and a status change as its ``Progress``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from national.contract import validate_case, validate_progress
from tests.support import documents
from tickets.fields import BadChanges, parse_changes
from tickets.models import Ticket, TicketStatusChange
from tickets.payload import case_payload, progress_payload

TICKET_ID = "5d0c6a38-1f7e-4c55-a0a4-2b9e6f000001"
NOW = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)


def ticket_of(draft: dict[str, Any], **columns: Any) -> Ticket:
    ticket = Ticket(id=TICKET_ID, caller_anonymous=False, received_at=NOW, **columns)
    for field, value in parse_changes(draft).items():
        setattr(ticket, field.attr, value)
    return ticket


@pytest.mark.parametrize("draft", [documents.complaint(), documents.report(), documents.consultation()],
                         ids=["complaint", "report", "consultation"])
def test_a_complete_ticket_of_each_case_type_is_a_case_the_platform_accepts(draft: dict[str, Any]) -> None:
    payload = case_payload(ticket_of(draft))
    assert validate_case(payload, now=NOW, idempotency_key=TICKET_ID) == []


def test_the_case_uses_the_contract_names_money_as_yuan_and_beijing_time() -> None:
    payload = case_payload(ticket_of(documents.complaint(), accept_by=date(2026, 10, 13),
                                     finish_by=date(2026, 12, 4)))
    assert payload["case_id"] == TICKET_ID
    assert payload["received_at"] == "2026-09-28T10:00:00+08:00"
    assert payload["subject"] == {"kind": "goods", "category": "家用电器", "amount": "1999.00",
                                  "purchased_on": "2026-09-01"}
    assert payload["caller"] == {"phone": "13812345678", "name": "张三丰", "region": "330106"}
    assert payload["handling"] == {"region": "330106", "level": "county"}
    assert payload["deadlines"] == {"accept_by": "2026-10-13", "finish_by": "2026-12-04"}


def test_absent_optional_fields_are_left_out_rather_than_sent_as_null() -> None:
    payload = case_payload(ticket_of(documents.consultation()))
    assert set(payload) == {"case_id", "case_type", "channel", "received_at", "handling", "caller",
                            "summary", "demand"}
    assert payload["caller"] == {"phone": "13987654321"}


def test_an_anonymous_report_never_carries_the_callers_phone_or_name_even_when_the_agent_typed_them() -> None:
    draft = documents.report(caller={"anonymous": True, "phone": "13812345678", "name": "李四"})
    payload = case_payload(ticket_of(draft))
    assert payload["caller"] == {"anonymous": True}
    assert validate_case(payload, now=NOW) == []


def test_an_amount_is_written_with_two_decimals_whatever_form_it_was_typed_in() -> None:
    assert case_payload(ticket_of({"subject": {"amount": 199}}))["subject"]["amount"] == "199.00"
    assert case_payload(ticket_of({"subject": {"amount": " 0.5"}}))["subject"]["amount"] == "0.50"
    assert case_payload(ticket_of({"subject": {"amount": Decimal("12.3")}}))["subject"]["amount"] == "12.30"


def test_a_progress_step_has_its_id_time_and_transfer_target() -> None:
    change = TicketStatusChange(ticket_id=TICKET_ID, from_status="accepted", to_status="transferred", at=NOW,
                                by="a1001", step_id="7c1d0f0e-0000-4000-8000-000000000001",
                                to_region="330106", to_level="station", to_station="012", note="交辖区所办理")
    body = progress_payload(change)
    assert body == {"step_id": "7c1d0f0e-0000-4000-8000-000000000001", "step": "transferred",
                    "at": "2026-09-28T10:00:00+08:00",
                    "to": {"region": "330106", "level": "station", "station": "012"}, "note": "交辖区所办理"}
    assert validate_progress(body) == []


def test_a_status_change_that_is_not_a_platform_step_has_no_progress_payload() -> None:
    change = TicketStatusChange(ticket_id=TICKET_ID, from_status="draft", to_status="completed", at=NOW, by="a")
    with pytest.raises(ValueError, match="not a progress step"):
        progress_payload(change)


@pytest.mark.parametrize(("changes", "message"), [
    ({"caller": {"phone": 13812345678}}, "caller.phone: must be a string, not int"),
    ({"caller": {"mobile": "138"}}, "caller.mobile: unknown field; caller has: phone, name, region, anonymous"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"status": "closed"}, "status: cannot be changed: the status changes through complete() and progress()"),
    ({"subject": {"amount": 19.99}}, 'subject.amount: must be an amount in yuan as a string such as "199.00"'),
    ({"subject": {"amount": "19.999"}}, "subject.amount: '19.999' has more than 2 decimals"),
    ({"subject": {"amount": "-5"}}, "subject.amount: '-5' is not an amount from 0 to 999999999999.99 yuan"),
    ({"subject": {"amount": "abc"}}, "subject.amount: 'abc' is not an amount in yuan"),
    ({"subject": {"purchased_on": "2026-02-30"}}, "subject.purchased_on: '2026-02-30' is not a valid date"),
    ({"received_at": "2026-09-28 10:00"}, "received_at: '2026-09-28 10:00' is not an RFC 3339 time"),
    ({"received_at": datetime(2026, 9, 28, 10)}, "received_at: a time needs its offset"),
    ({"caller": {"anonymous": "yes"}}, "caller.anonymous: must be true or false, not str"),
    ({"respondent": "某某餐馆"}, "respondent: must be an object, not str"),
    ({"recording": {"duration_s": True}}, "recording.duration_s: must be a number, not bool"),
    ({"summary": "x" * 10_001}, "summary: at most 10000 characters can be kept (has 10001)"),
])
def test_changes_of_the_wrong_type_are_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(BadChanges) as caught:
        parse_changes(changes)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(BadChanges) as caught:
        parse_changes({"caller": {"phone": 1, "name": 2}, "colour": "red"})
    assert [path for path, _ in caught.value.errors] == ["caller.phone", "caller.name", "colour"]


def test_an_empty_box_clears_its_field_and_null_clears_a_whole_object() -> None:
    parsed = {f.path: v for f, v in parse_changes({"summary": "  ", "recording": None}).items()}
    assert parsed == {"summary": None, "recording.recording_id": None, "recording.sha256": None,
                      "recording.duration_s": None}
