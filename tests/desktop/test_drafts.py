"""An agent's drafts on the desktop's API: ``GET /api/desktop/drafts`` lists the agent's own
tickets still to finish, newest first, with the caller masked and the first words of the
complaint; nobody else's are listed or readable; a ticket may be written for a call whose caller
hung up while it rang; the number an agent typed is shown to them as typed; a deadline the
calendar cannot give yet comes as a code the page words."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from agent_desktop.http import ticket_json
from tests.fixtures.waiting import eventually
from tests.support.desktop import Desk, answered_call, ready_agent, state_is
from tests.support.documents import CREDIT_CODE
from tests.support.jurisdictions import HANGZHOU
from tickets.deadlines import CalendarNotPublished, UnsetDeadline
from tickets.models import Ticket

pytestmark = pytest.mark.slow

SUMMARY = "购买的电水壶使用三天后漏电，商家拒绝退货，来电人要求退款并赔偿损失。"


async def test_an_agent_lists_their_own_drafts_newest_first_with_the_caller_masked(desk: Desk) -> None:
    agent = await ready_agent(desk, "1001")
    call_id = await answered_call(desk, agent)
    older = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {"summary": SUMMARY}},
                           status=201)
    newer = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {
        "summary": "第二件事：同一商家的售后电话打不通。", "related_to": older["id"]}}, status=201)
    submitted = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {
        "respondent": {"name": "杭州示例电器有限公司", "credit_code": CREDIT_CODE, "region": "330106"},
        "summary": "第三件事，已经可以提交。"}}, status=201)
    await agent.ok("POST", f"/api/desktop/tickets/{submitted['id']}/complete", {"version": submitted["version"]})

    drafts = (await agent.ok("GET", "/api/desktop/drafts"))["drafts"]
    assert [d["id"] for d in drafts] == [newer["id"], older["id"]]  # the submitted one is not a draft
    first = drafts[1]
    assert first["caller"] == "138****8000" and first["business_line"] == "general"
    assert first["case_type"] == "complaint" and first["status"] == "draft" and first["call_id"] == call_id
    assert first["summary"] == SUMMARY[:60] and first["received_at"].endswith("Z")


async def test_another_agents_drafts_are_neither_listed_nor_readable_nor_writable(desk: Desk) -> None:
    owner = await ready_agent(desk, "1001")
    call_id = await answered_call(desk, owner)
    draft = await owner.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {"summary": SUMMARY}},
                           status=201)
    await desk.users.agent(agent_id="1002", jurisdiction=HANGZHOU)
    other = await desk.browser_for("agent1002")
    assert (await other.ok("GET", "/api/desktop/drafts"))["drafts"] == []
    status, _ = await other.call("GET", f"/api/desktop/tickets/{draft['id']}")
    assert status == 403
    status, _ = await other.call("PATCH", f"/api/desktop/tickets/{draft['id']}",
                                 {"version": draft["version"], "fields": {"summary": "不是我的工单，不能改"}})
    assert status == 403
    status, _ = await other.call("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {}})
    assert status == 403  # never offered to 1002
    await desk.users.supervisor("zhejiang")
    boss = await desk.browser_for("zhejiang")
    status, _ = await boss.call("GET", "/api/desktop/drafts")
    assert status == 403  # the desktop is the agents'; supervisors see tickets elsewhere
    assert [d["id"] for d in (await owner.ok("GET", "/api/desktop/drafts"))["drafts"]] == [draft["id"]]


async def test_a_ticket_is_written_for_a_call_whose_caller_hung_up_while_it_rang(desk: Desk) -> None:
    agent = await ready_agent(desk, "1001")
    call = await desk.caller_reaches_menu()
    ringing = await eventually(lambda: state_is(agent, "ringing"))
    call_id = ringing["call"]["call_id"]
    await call.hangup()
    await eventually(lambda: state_is(agent, "available"))
    # Another call comes and goes meanwhile: the agent's last call is no longer this one.
    second = await desk.caller_reaches_menu(caller_id="13900139000")
    await eventually(lambda: state_is(agent, "ringing"))
    await second.hangup()
    await eventually(lambda: state_is(agent, "available"))
    draft = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {
        "summary": "来电人振铃时说：电水壶漏电"}}, status=201)
    assert draft["fields"]["call_id"] == call_id and draft["fields"]["caller.phone"] == "138****8000"
    assert [d["id"] for d in (await agent.ok("GET", "/api/desktop/drafts"))["drafts"]] == [draft["id"]]


async def test_the_number_the_agent_typed_is_shown_as_typed_and_the_calls_own_number_masked(desk: Desk) -> None:
    agent = await ready_agent(desk, "1001")
    call_id = await answered_call(desk, agent)
    draft = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {"summary": SUMMARY}},
                           status=201)
    assert draft["fields"]["caller.phone"] == "138****8000"  # the call's number: agents never see it whole
    typed = await agent.ok("PATCH", f"/api/desktop/tickets/{draft['id']}", {
        "version": draft["version"], "fields": {"caller": {"phone": "13712345678"}}})
    assert typed["fields"]["caller.phone"] == "13712345678"
    assert (await agent.ok("GET", f"/api/desktop/tickets/{draft['id']}"))["fields"]["caller.phone"] == "13712345678"
    listed = (await agent.ok("GET", f"/api/desktop/tickets?call_id={call_id}"))["tickets"]
    assert listed[0]["fields"]["caller.phone"] == "13712345678"
    [item] = (await agent.ok("GET", "/api/desktop/drafts"))["drafts"]
    assert item["caller"] == "137****5678"  # lists mask it all the same


def test_an_unset_deadline_is_a_code_with_its_parameters_and_the_note_keeps_the_words() -> None:
    unset = UnsetDeadline.of("finish_by", CalendarNotPublished(2027, "chinesecalendar 1.11.0"))
    note = unset.note()
    assert note == "finish_by unset: 2027 schedule not yet published in chinesecalendar 1.11.0; update the package"
    assert UnsetDeadline.read(note) == unset
    assert UnsetDeadline.read("something else") is None and UnsetDeadline.read(None) is None
    now = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
    ticket = Ticket(id="t1", version=3, status="completed", delivery_state="pending", accept_by=date(2026, 12, 15),
                    deadline_note=note, created_at=now, updated_at=now, caller_anonymous=False)
    deadlines = ticket_json(ticket, "zh", show_phone=False)["deadlines"]
    assert deadlines == {"accept_by": "2026-12-15", "finish_by": None, "verify_by": None,
                         "unset": {"code": "calendar_not_published", "deadline": "finish_by", "year": 2027}}
    ticket.deadline_note = "a note of another kind"
    assert ticket_json(ticket, "en", show_phone=False)["deadlines"]["unset"] == {"code": "other"}


async def test_creating_a_ticket_again_by_its_id_changes_that_ticket_instead_of_making_another(desk: Desk) -> None:
    agent = await ready_agent(desk, "1001")
    call_id = await answered_call(desk, agent)
    chosen = "3f2a9c1d-5b7e-4c2a-9d1e-0a1b2c3d4e5f"
    first = await agent.ok("POST", "/api/desktop/tickets", {"id": chosen, "call_id": call_id,
                                                            "fields": {"summary": "先记下的一半"}}, status=201)
    # The page never read that answer (it was reloaded): it sends the creation again, with more.
    again = await agent.ok("POST", "/api/desktop/tickets", {"id": chosen.upper(), "call_id": call_id,
                                                            "fields": {"summary": SUMMARY}}, status=201)
    assert first["id"] == again["id"] == chosen and again["version"] == first["version"] + 1
    assert again["fields"]["summary"] == SUMMARY
    assert [d["id"] for d in (await agent.ok("GET", "/api/desktop/drafts"))["drafts"]] == [chosen]
    await desk.users.agent(agent_id="1002", jurisdiction=HANGZHOU)
    other = await desk.browser_for("agent1002")
    status, _ = await other.call("POST", "/api/desktop/tickets", {"id": chosen, "call_id": call_id, "fields": {}})
    assert status == 403  # not their call, let alone their ticket
    status, answer = await agent.call("POST", "/api/desktop/tickets", {"id": "not-a-uuid", "call_id": call_id,
                                                                       "fields": {}})
    assert status == 400 and answer["errors"][0]["field"] == "id"
