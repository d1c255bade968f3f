"""The ticket service on a real database (SQLite and PostgreSQL): what an agent and the
delivery worker do to tickets, and that nothing is ever half-written."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import chinese_calendar
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from core.problems import Problem
from national.contract import validate_case
from tests.support import documents
from tests.support.clock import Clock
from tests.support.tickets import TableOutbox
from tickets import services
from tickets.models import TicketAudit, TicketStatusChange
from tickets.payload import case_payload
from tickets.services import (
    StepOutOfOrder,
    TicketConflict,
    TicketInvalid,
    TicketNotEditable,
    TicketNotFound,
    TicketService,
    delivery_problems,
)

UNPUBLISHED = (f"2027 schedule not yet published in chinesecalendar {chinese_calendar.__version__}; "
               "update the package")


async def count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def completed(service: TicketService, draft: dict) -> str:
    ticket = await service.create(draft, by="a1001")
    await service.complete(ticket.id, by="a1001", version=ticket.version)
    return ticket.id


# --------------------------------------------------------------------------- drafts


async def test_a_draft_may_start_with_almost_nothing_and_is_received_now(service: TicketService, clock: Clock) -> None:
    ticket = await service.create({"channel": "hotline", "call_id": documents.CALL_ID}, by="a1001")
    assert (ticket.status, ticket.delivery_state, ticket.version) == ("draft", "not_sent", 1)
    assert ticket.received_at == clock.now
    assert ticket.caller_anonymous is False and ticket.summary is None
    again = await service.get(ticket.id)
    assert (again.channel, again.call_id, again.version) == ("hotline", documents.CALL_ID, 1)


async def test_an_intake_ticket_keeps_the_time_its_channel_received_it(service: TicketService) -> None:
    ticket = await service.create(documents.consultation(received_at="2026-09-27T21:30:00+08:00"), by="wechat")
    assert (await service.get(ticket.id)).received_at == datetime(2026, 9, 27, 13, 30, tzinfo=UTC)


async def test_one_call_about_two_shops_gives_two_related_tickets_listed_for_the_call(
        service: TicketService, clock: Clock) -> None:
    first = await service.create(documents.complaint(), by="a1001")
    clock.advance(seconds=30)
    second = await service.create(documents.complaint(respondent={"name": "另一家店", "region": "330106"},
                                                      related_to=first.id), by="a1001")
    listed = await service.list_for_call(documents.CALL_ID)
    assert [t.id for t in listed] == [first.id, second.id]
    assert listed[1].related_to == first.id
    assert await service.list_for_call("11111111-2222-4333-8444-555555555555") == []


async def test_a_ticket_related_to_one_that_does_not_exist_is_refused_and_nothing_is_written(
        service: TicketService, engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="related_to: no ticket 0000"):
        await service.create({"related_to": "00000000-0000-4000-8000-000000000000"}, by="a1001")
    assert await count(engine, TicketStatusChange) == 0


async def test_an_agent_edits_a_draft_and_each_changed_field_is_audited(service: TicketService, clock: Clock) -> None:
    ticket = await service.create({"summary": "洗衣机坏了"}, by="a1001")
    clock.advance(minutes=2)
    edited = await service.update(ticket.id, {"summary": "洗衣机坏了", "subject": {"amount": "1999"},
                                              "caller": {"phone": "13812345678"}}, by="a1002",
                                  version=ticket.version)
    assert edited.version == 2 and edited.updated_at == clock.now
    audit = await service.audit(ticket.id)
    assert [(e.field, e.by) for e in audit] == [("summary", "a1001"), ("subject.amount", "a1002"),
                                                ("caller.phone", "a1002")]
    assert (audit[1].old, audit[1].new, audit[1].at) == (None, "1999.00", clock.now)


async def test_an_edit_that_changes_nothing_keeps_the_version(service: TicketService) -> None:
    ticket = await service.create({"summary": "洗衣机坏了"}, by="a1001")
    same = await service.update(ticket.id, {"summary": " 洗衣机坏了 "}, by="a1001", version=1)
    assert same.version == 1


async def test_the_audit_masks_the_callers_phone_and_name_except_for_an_authorised_auditor(
        service: TicketService) -> None:
    ticket = await service.create({"caller": {"phone": "13812345678", "name": "张三丰"},
                                   "summary": "请回电 13912345678"}, by="a1001")
    await service.update(ticket.id, {"caller": {"phone": "13800000000"}}, by="a1001", version=1)
    shown = {(e.field, e.old, e.new) for e in await service.audit(ticket.id)}
    assert shown == {("caller.phone", None, "138****5678"), ("caller.name", None, "张**"),
                     ("summary", None, "请回电 139****5678"), ("caller.phone", "138****5678", "138****0000")}
    revealed = {(e.field, e.old, e.new) for e in await service.audit(ticket.id, reveal_personal=True)}
    assert ("caller.phone", "13812345678", "13800000000") in revealed
    assert ("caller.name", None, "张三丰") in revealed


async def test_a_change_with_a_stale_version_is_a_conflict_and_changes_nothing(
        service: TicketService, engine: AsyncEngine) -> None:
    ticket = await service.create({"summary": "第一版"}, by="a1001")
    await service.update(ticket.id, {"summary": "第二版"}, by="a1001", version=1)
    with pytest.raises(TicketConflict, match=r"is at version 2 but the change was made on version 1: reload"):
        await service.update(ticket.id, {"summary": "旧页面的改动"}, by="a1002", version=1)
    assert (await service.get(ticket.id)).summary == "第二版"
    assert await count(engine, TicketAudit) == 2


async def test_two_agents_saving_the_same_version_at_once_one_wins_and_one_is_told(service: TicketService) -> None:
    ticket = await service.create({"summary": "原文"}, by="a1001")
    results = await asyncio.gather(
        *(service.update(ticket.id, {"summary": f"{who} 的改动"}, by=who, version=1) for who in ("a1", "a2")),
        return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1 and isinstance(losers[0], TicketConflict), results
    stored = await service.get(ticket.id)
    assert (stored.summary, stored.version) == (winners[0].summary, 2)
    assert [e.by for e in await service.audit(ticket.id)] == ["a1001", winners[0].summary.split()[0]]


async def test_two_saves_that_both_read_the_ticket_before_either_wrote_still_cannot_both_win(
        service: TicketService, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each save pauses after reading, so both pass the version check before either writes:
    # the database's own check (UPDATE ... WHERE version = 1, or PostgreSQL's row lock) decides.
    load = services._load

    async def slow_load(*args: Any, **kwargs: Any) -> Any:
        ticket = await load(*args, **kwargs)
        await asyncio.sleep(0.05)
        return ticket

    ticket = await service.create({"summary": "原文"}, by="a1001")
    monkeypatch.setattr(services, "_load", slow_load)
    results = await asyncio.gather(
        *(service.update(ticket.id, {"summary": f"{who} 的改动"}, by=who, version=1) for who in ("a1", "a2")),
        return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Ticket", "TicketConflict"], results
    assert len(await service.audit(ticket.id)) == 2


async def test_unknown_fields_and_wrong_types_are_refused_with_their_path_and_nothing_is_written(
        service: TicketService) -> None:
    ticket = await service.create({"summary": "原文"}, by="a1001")
    with pytest.raises(ValueError) as caught:
        await service.update(ticket.id, {"summary": "新的", "respondent": {"nmae": "某店"},
                                         "subject": {"amount": 12.5}}, by="a1001", version=1)
    assert "respondent.nmae: unknown field" in str(caught.value)
    assert "subject.amount: must be an amount in yuan" in str(caught.value)
    assert (await service.get(ticket.id)).summary == "原文"


async def test_an_unknown_ticket_is_not_found(service: TicketService) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for call in (service.get(missing), service.history(missing), service.audit(missing),
                 service.update(missing, {}, by="a1001", version=1), service.validate(missing)):
        with pytest.raises(TicketNotFound, match=f"no ticket {missing}"):
            await call


def test_the_service_refuses_sessions_that_would_expire_the_tickets_it_hands_back(engine: AsyncEngine,
                                                                                  calendar) -> None:
    with pytest.raises(ValueError, match="expire_on_commit=False"):
        TicketService(async_sessionmaker(engine), TableOutbox(), calendar=calendar)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kind", ["complaint", "report", "consultation"])
async def test_a_complete_ticket_of_each_case_type_has_no_problems(service: TicketService, kind: str) -> None:
    ticket = await service.create(getattr(documents, kind)(), by="a1001")
    assert await service.validate(ticket.id) == []


async def test_the_agent_sees_every_problem_the_platform_would_find_with_its_field_path(
        service: TicketService) -> None:
    draft = documents.complaint(respondent={"name": "某店", "credit_code": "91330106MA2B3C4D5E", "region": "330106"},
                                summary="坏了")
    del draft["call_id"]
    ticket = await service.create(draft, by="a1001")
    problems = {(p.field, p.code): p for p in await service.validate(ticket.id)}
    assert set(problems) == {("respondent.credit_code", "bad_check_digit"), ("summary", "too_short"),
                             ("call_id", "required")}
    assert problems[("respondent.credit_code", "bad_check_digit")].message_zh.startswith("统一社会信用代码校验位")


# --------------------------------------------------------------------------- completing


async def test_completing_a_complaint_fixes_its_deadlines_and_queues_the_case_in_the_same_transaction(
        service: TicketService, engine: AsyncEngine, outbox: TableOutbox) -> None:
    ticket = await service.create(documents.complaint(), by="a1001")
    done = await service.complete(ticket.id, by="a1001", version=1)
    assert (done.status, done.delivery_state, done.version) == ("completed", "pending", 2)
    # Received Mon 28 Sep 2026: 7 working days across National Day; mediation runs at most
    # 45 working days from the last day acceptance may take.
    assert (done.accept_by, done.finish_by, done.verify_by, done.deadline_note) == (
        date(2026, 10, 13), date(2026, 12, 15), None, None)
    [row] = await outbox.rows(engine)
    assert (row["kind"], row["key"], row["ticket_id"]) == ("case", ticket.id, ticket.id)
    assert row["body"] == case_payload(done)
    assert row["body"]["deadlines"] == {"accept_by": "2026-10-13", "finish_by": "2026-12-15"}
    assert validate_case(row["body"], now=done.received_at, idempotency_key=ticket.id) == []
    assert [(h.from_status, h.to_status) for h in await service.history(ticket.id)] == [
        (None, "draft"), ("draft", "completed")]


async def test_a_report_gets_a_verification_deadline_and_a_consultation_none(service: TicketService) -> None:
    report = await service.get(await completed(service, documents.report()))
    assert (report.accept_by, report.verify_by, report.finish_by) == (date(2026, 10, 13), date(2026, 11, 3), None)
    consultation = await service.get(await completed(service, documents.consultation()))
    assert (consultation.accept_by, consultation.finish_by, consultation.verify_by) == (None, None, None)


async def test_a_ticket_the_platform_would_refuse_is_not_completed_and_nothing_changes(
        service: TicketService, engine: AsyncEngine, outbox: TableOutbox) -> None:
    ticket = await service.create(documents.complaint(respondent=None), by="a1001")
    with pytest.raises(TicketInvalid) as caught:
        await service.complete(ticket.id, by="a1001", version=1)
    assert [(p.field, p.code) for p in caught.value.problems] == [("respondent", "required")]
    stored = await service.get(ticket.id)
    assert (stored.status, stored.version, stored.accept_by) == ("draft", 1, None)
    assert await outbox.rows(engine) == []


async def test_when_the_outbox_fails_the_ticket_stays_a_draft_and_nothing_is_half_written(
        service: TicketService, engine: AsyncEngine, outbox: TableOutbox) -> None:
    ticket = await service.create(documents.complaint(), by="a1001")
    outbox.fail_with = ConnectionError("outbox unreachable")
    with pytest.raises(ConnectionError):
        await service.complete(ticket.id, by="a1001", version=1)
    stored = await service.get(ticket.id)
    assert (stored.status, stored.delivery_state, stored.version, stored.accept_by) == ("draft", "not_sent", 1, None)
    assert await outbox.rows(engine) == []
    assert len(await service.history(ticket.id)) == 1
    outbox.fail_with = None
    assert (await service.complete(ticket.id, by="a1001", version=1)).status == "completed"


async def test_a_completed_ticket_is_no_longer_edited_nor_completed_twice(service: TicketService) -> None:
    ticket_id = await completed(service, documents.complaint())
    with pytest.raises(TicketNotEditable, match="is completed; only a draft can be edited"):
        await service.update(ticket_id, {"summary": "改一下"}, by="a1001", version=2)
    with pytest.raises(TicketNotEditable, match="only a draft can be completed"):
        await service.complete(ticket_id, by="a1001", version=2)


async def test_a_ticket_is_completed_without_its_acceptance_deadline_when_the_calendar_has_no_data_yet(
        service: TicketService, clock: Clock, engine: AsyncEngine, outbox: TableOutbox) -> None:
    # Thu 24 Dec 2026: the seventh working day falls in 2027, not yet published.
    clock.now = datetime(2026, 12, 24, 2, 0, tzinfo=UTC)
    ticket_id = await completed(service, documents.complaint())
    ticket = await service.get(ticket_id)
    assert (ticket.status, ticket.accept_by, ticket.finish_by) == ("completed", None, None)
    assert ticket.deadline_note == f"accept_by unset: {UNPUBLISHED}"
    [row] = await outbox.rows(engine)
    assert "deadlines" not in row["body"]


async def test_a_handling_deadline_in_an_unpublished_year_is_left_unset_with_a_note(
        service: TicketService, clock: Clock) -> None:
    # Fri 20 Nov 2026: accepted by Tue 1 Dec, but 45 working days after that run into 2027.
    clock.now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    ticket = await service.get(await completed(service, documents.complaint()))
    assert (ticket.accept_by, ticket.finish_by) == (date(2026, 12, 1), None)
    assert ticket.deadline_note == f"finish_by unset: {UNPUBLISHED}"


# --------------------------------------------------------------------------- progress


async def test_acceptance_is_recorded_queued_for_the_platform_and_tightens_the_mediation_deadline(
        service: TicketService, clock: Clock, engine: AsyncEngine, outbox: TableOutbox) -> None:
    ticket_id = await completed(service, documents.complaint())
    clock.advance(days=1)  # accepted Tue 29 Sep
    ticket = await service.progress(ticket_id, "accepted", by="a2001", note="已受理")
    assert (ticket.status, ticket.finish_by) == ("accepted", date(2026, 12, 7))
    step = (await service.history(ticket_id))[-1]
    assert (step.from_status, step.to_status, step.by, step.note) == ("completed", "accepted", "a2001", "已受理")
    row = (await outbox.rows(engine))[-1]
    assert (row["kind"], row["key"], row["ticket_id"]) == ("progress", step.step_id, ticket_id)
    assert row["body"] == {"step_id": step.step_id, "step": "accepted", "at": "2026-09-29T10:00:00+08:00",
                           "note": "已受理"}


async def test_a_case_is_transferred_then_closed_and_nothing_may_follow_the_close(service: TicketService) -> None:
    ticket_id = await completed(service, documents.complaint())
    await service.progress(ticket_id, "accepted", by="a2001")
    await service.progress(ticket_id, "transferred", by="a2001",
                           to={"region": "330106", "level": "station", "station": "012"})
    closed = await service.progress(ticket_id, "closed", by="s0120", outcome="mediated")
    assert closed.status == "closed"
    history = await service.history(ticket_id)
    assert [h.to_status for h in history] == ["draft", "completed", "accepted", "transferred", "closed"]
    assert (history[3].to_region, history[3].to_level, history[3].to_station) == ("330106", "station", "012")
    assert history[4].outcome == "mediated"
    with pytest.raises(StepOutOfOrder, match="the case is closed"):
        await service.progress(ticket_id, "transferred", by="s0120", to={"region": "330100", "level": "city"})


async def test_steps_out_of_order_are_refused_and_nothing_is_written(
        service: TicketService, engine: AsyncEngine, outbox: TableOutbox) -> None:
    draft = await service.create(documents.complaint(), by="a1001")
    with pytest.raises(StepOutOfOrder, match="not completed yet"):
        await service.progress(draft.id, "accepted", by="a2001")
    ticket_id = await completed(service, documents.complaint())
    with pytest.raises(StepOutOfOrder) as caught:
        await service.progress(ticket_id, "closed", by="a2001", outcome="mediated")
    assert (caught.value.problem.field, caught.value.problem.code) == ("step", "out_of_order")
    assert "only accepted or rejected may follow" in str(caught.value)
    assert (await service.get(ticket_id)).status == "completed"
    assert [r["kind"] for r in await outbox.rows(engine)] == ["case"]


async def test_steps_the_platform_would_refuse_are_refused_with_their_problems(
        service: TicketService, clock: Clock) -> None:
    ticket_id = await completed(service, documents.complaint())
    with pytest.raises(TicketInvalid) as caught:
        await service.progress(ticket_id, "acknowledged", by="a2001")
    assert [(p.field, p.code) for p in caught.value.problems] == [("step", "not_allowed")]
    clock.now = datetime(2026, 10, 14, 2, 0, tzinfo=UTC)  # the day after accept_by
    with pytest.raises(TicketInvalid) as caught:
        await service.progress(ticket_id, "accepted", by="a2001")
    assert [(p.field, p.code) for p in caught.value.problems] == [("at", "past_deadline")]
    with pytest.raises(ValueError, match="to.city: unknown field"):
        await service.progress(ticket_id, "transferred", by="a2001", to={"city": "杭州"})


async def test_two_people_accepting_the_same_case_at_once_record_one_acceptance(
        service: TicketService, engine: AsyncEngine, outbox: TableOutbox) -> None:
    ticket_id = await completed(service, documents.complaint())
    results = await asyncio.gather(*(service.progress(ticket_id, "accepted", by=who) for who in ("a1", "a2")),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["StepOutOfOrder", "Ticket"], results
    assert [h.to_status for h in await service.history(ticket_id)] == ["draft", "completed", "accepted"]
    assert [r["kind"] for r in await outbox.rows(engine)] == ["case", "progress"]


async def test_closing_needs_an_outcome(service: TicketService) -> None:
    ticket_id = await completed(service, documents.consultation())
    await service.progress(ticket_id, "accepted", by="a2001")
    with pytest.raises(TicketInvalid) as caught:
        await service.progress(ticket_id, "closed", by="a2001")
    assert [(p.field, p.code) for p in caught.value.problems] == [("outcome", "required")]
    assert (await service.progress(ticket_id, "closed", by="a2001", outcome="answered")).status == "closed"


async def test_when_the_outbox_fails_a_step_is_not_recorded(
        service: TicketService, outbox: TableOutbox, engine: AsyncEngine) -> None:
    ticket_id = await completed(service, documents.complaint())
    outbox.fail_with = ConnectionError("outbox unreachable")
    with pytest.raises(ConnectionError):
        await service.progress(ticket_id, "accepted", by="a2001")
    assert (await service.get(ticket_id)).status == "completed"
    assert [h.to_status for h in await service.history(ticket_id)] == ["draft", "completed"]
    assert [r["kind"] for r in await outbox.rows(engine)] == ["case"]


# --------------------------------------------------------------------------- delivery


async def test_a_delivered_case_keeps_the_platforms_case_number(service: TicketService) -> None:
    ticket_id = await completed(service, documents.complaint())
    ticket = await service.record_delivery(ticket_id, platform_case_no="1231520260928000123")
    assert (ticket.delivery_state, ticket.platform_case_no, ticket.status) == (
        "delivered", "1231520260928000123", "completed")


async def test_a_refused_case_goes_back_to_the_agent_with_the_platforms_problems_to_fix_and_resend(
        service: TicketService, engine: AsyncEngine, outbox: TableOutbox) -> None:
    ticket_id = await completed(service, documents.complaint())
    refused = [{"field": "respondent.credit_code", "code": "bad_check_digit", "message": "check character wrong",
                "message_zh": "校验位不正确"},
               Problem("respondent.region", "unknown_region", "区划代码不存在", "unknown region")]
    ticket = await service.record_delivery(ticket_id, problems=refused)
    assert (ticket.status, ticket.delivery_state) == ("draft", "refused")
    assert [(p.field, p.code, p.message_zh, p.message_en) for p in delivery_problems(ticket)] == [
        ("respondent.credit_code", "bad_check_digit", "校验位不正确", "check character wrong"),
        ("respondent.region", "unknown_region", "区划代码不存在", "unknown region")]
    last = (await service.history(ticket_id))[-1]
    assert (last.from_status, last.to_status, last.by) == ("completed", "draft", "platform")
    fixed = await service.update(ticket_id, {"respondent": {"region": "330105"}}, by="a1001",
                                 version=ticket.version)
    again = await service.complete(ticket_id, by="a1001", version=fixed.version)
    assert (again.status, again.delivery_state, again.delivery_problems) == ("completed", "pending", None)
    assert [r["body"]["respondent"]["region"] for r in await outbox.rows(engine)] == ["330106", "330105"]


async def test_a_delivery_result_must_say_delivered_or_refused(service: TicketService) -> None:
    ticket_id = await completed(service, documents.complaint())
    with pytest.raises(ValueError, match="either platform_case_no"):
        await service.record_delivery(ticket_id)
    with pytest.raises(ValueError, match="either platform_case_no"):
        await service.record_delivery(ticket_id, platform_case_no="1", problems=[])
