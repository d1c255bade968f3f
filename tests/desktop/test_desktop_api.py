"""An agent works a call on the desktop's API: logs into the queues, is offered a call with its
card over the WebSocket, answers it (simulated phone), holds and mutes it, hangs up, and files
a ticket checked by the platform's rules; and sees nobody else's calls or tickets."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import pytest

from agent_desktop.notifier import Outlet
from delivery.notifier import DeliveryNotifier
from devtools.pbx_sim.server import PbxSim
from tests.fixtures.waiting import eventually, eventually_true
from tests.support.desktop import (
    Browser,
    Desk,
    ReadingSocket,
    StuckSocket,
    answered_call,
    next_message,
    ready_agent,
    state_is,
)
from tests.support.documents import CREDIT_CODE
from tests.support.jurisdictions import HANGZHOU

pytestmark = pytest.mark.slow

WRONG_CHECK_CHARACTER = "91330106MA2B3C4D5X"


async def test_an_offered_call_reaches_the_desktop_with_its_card_and_is_answered_held_muted_and_hung_up(
    desk: Desk,
) -> None:
    desk.pbx.endpoint("PJSIP/1001", mode="manual")
    await desk.users.agent(agent_id="1001", jurisdiction=HANGZHOU)
    agent = await desk.browser_for("agent1001")
    assert (await agent.ok("GET", "/api/desktop/state"))["agent"]["state"] == "offline"
    state = await agent.ok("POST", "/api/desktop/queues/login")
    assert state["agent"]["state"] == "break" and state["agent"]["reason"] == "login"
    assert state["phone"] == {"mode": "simulated", "sip": None}

    async with agent.ws("/api/desktop/ws") as ws:
        assert (await next_message(ws, "state"))["agent"]["state"] == "break"
        await agent.ok("POST", "/api/desktop/state", {"state": "available"})
        assert (await next_message(ws, "state"))["agent"]["state"] == "available"

        call = await desk.caller_reaches_menu(caller_id="13800138000", digit="1")
        card = (await next_message(ws, "call.offered"))["card"]
        assert card["caller"] == "138****8000" and card["state"] == "ringing"
        assert card["hotline_number"] == "12315" and card["business_line"] == "general"
        assert card["menu_path"] == ["main_menu:1:complaint"] and card["choice"] == "complaint"
        assert card["recognized_by"] == "dtmf"
        assert card["jurisdiction"] == {"code": HANGZHOU, "name": "杭州市", "level": "city"}

        await agent.ok("POST", "/api/desktop/call/answer")
        assert (await next_message(ws, "call.connected"))["call_id"] == card["call_id"]
        caller = desk.pbx.channel(call.channel_id)
        assert caller is not None and caller.bridge_id is not None  # talking to the agent's leg

        state = await agent.ok("POST", "/api/desktop/call/hold", {"on": True})
        assert caller.held and state["call"]["on_hold"]
        state = await agent.ok("POST", "/api/desktop/call/mute", {"on": True})
        assert caller.muted == {"out"} and state["call"]["muted"]  # the caller no longer hears the agent
        await agent.ok("POST", "/api/desktop/call/hold", {"on": False})
        await agent.ok("POST", "/api/desktop/call/mute", {"on": False})
        assert not caller.held and caller.muted == set()

        await agent.ok("POST", "/api/desktop/call/hangup")
        assert (await next_message(ws, "call.ended"))["call_id"] == card["call_id"]
        wrap_up = await next_message(ws, "state", where=lambda m: m["agent"]["state"] == "wrap_up")
        assert wrap_up["agent"]["wrap_up_ends"] and wrap_up["call"]["state"] == "ended"
        assert wrap_up["call"]["call_id"] == card["call_id"]
        await call.wait_ended()
        # After the wrap-up the agent takes calls again.
        await next_message(ws, "state", where=lambda m: m["agent"]["state"] == "available")


async def test_a_ticket_is_filled_in_for_the_call_checked_by_the_platforms_rules_and_completed(desk: Desk) -> None:
    agent = await ready_agent(desk)
    call_id = await answered_call(desk, agent)

    ticket = await agent.ok("POST", "/api/desktop/tickets", {
        "call_id": call_id, "fields": {"respondent": {"name": "杭州示例电器有限公司",
                                                      "credit_code": WRONG_CHECK_CHARACTER}}}, status=201)
    fields = ticket["fields"]
    assert fields["call_id"] == call_id and fields["agent_id"] == "1001" and fields["channel"] == "hotline"
    assert fields["hotline_number"] == "12315" and fields["business_line"] == "general"
    assert fields["case_type"] == "complaint" and fields["handling.region"] == HANGZHOU
    assert fields["caller.phone"] == "138****8000"  # stored whole for the platform, shown masked
    assert ticket["status"] == "draft" and ticket["version"] == 1

    problems = (await agent.ok("POST", f"/api/desktop/tickets/{ticket['id']}/validate"))["problems"]
    wrong = [p for p in problems if p["field"] == "respondent.credit_code"]
    assert [p["code"] for p in wrong] == ["bad_check_digit"] and wrong[0]["message_zh"]

    status, refusal = await agent.call("POST", f"/api/desktop/tickets/{ticket['id']}/complete",
                                       {"version": ticket["version"]})
    assert status == 422 and "respondent.credit_code" in {p["field"] for p in refusal["errors"]}

    # The page sends the whole form back, the masked number included: the number is kept.
    fixed = await agent.ok("PATCH", f"/api/desktop/tickets/{ticket['id']}", {"version": ticket["version"], "fields": {
        "respondent.credit_code": CREDIT_CODE, "respondent.region": "330106",
        "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。", "caller.phone": "138****8000"}})
    assert fixed["version"] == 2
    assert (await desk.app.tickets.get(ticket["id"])).caller_phone == "13800138000"
    status, stale = await agent.call("PATCH", f"/api/desktop/tickets/{ticket['id']}",
                                     {"version": 1, "fields": {"summary": "另一个说法，够五个字"}})
    assert status == 409 and stale["code"] == "conflict"

    assert (await agent.ok("POST", f"/api/desktop/tickets/{ticket['id']}/validate"))["problems"] == []
    done = await agent.ok("POST", f"/api/desktop/tickets/{ticket['id']}/complete", {"version": 2})
    assert done["status"] == "completed" and done["delivery_state"] == "pending"
    assert done["deadlines"]["accept_by"]
    listed = await agent.ok("GET", f"/api/desktop/tickets?call_id={call_id}")
    assert [t["id"] for t in listed["tickets"]] == [ticket["id"]]

    async with agent.ws("/api/desktop/ws") as ws:
        await next_message(ws, "state")
        await DeliveryNotifier(desk.app.redis, desk.app.settings.redis.prefix).publish(
            [(ticket["id"], "P-2026-000123", None)])
        delivered = await next_message(ws, "ticket.delivered")
        assert delivered["ticket_id"] == ticket["id"] and delivered["platform_case_no"] == "P-2026-000123"
        await agent.ok("POST", "/api/desktop/call/hangup")
        await next_message(ws, "state", where=lambda m: m["agent"]["state"] == "available")

        # The same caller calls again: the agent sees the complaint made before.
        await desk.caller_reaches_menu(caller_id="13800138000")
        card = (await next_message(ws, "call.offered"))["card"]
        assert [(t["id"], t["case_type"], t["status"]) for t in card["previous_tickets"]] == [
            (ticket["id"], "complaint", "completed")]
        assert card["previous_tickets"][0]["summary"].startswith("购买的电水壶")
    await agent.ok("POST", "/api/desktop/call/hangup")


async def test_an_agent_sees_neither_another_agents_ticket_nor_their_call(desk: Desk) -> None:
    first = await ready_agent(desk, "1001")
    call_id = await answered_call(desk, first)
    ticket = await first.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {}}, status=201)

    await desk.users.agent(agent_id="1002", jurisdiction=HANGZHOU)
    other = await desk.browser_for("agent1002")
    for method, path, body in [
        ("GET", f"/api/desktop/tickets/{ticket['id']}", None),
        ("PATCH", f"/api/desktop/tickets/{ticket['id']}", {"version": 1, "fields": {"summary": "不是我的工单啊"}}),
        ("POST", f"/api/desktop/tickets/{ticket['id']}/complete", {"version": 1}),
        ("GET", f"/api/desktop/tickets?call_id={call_id}", None),
        ("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {}}),
    ]:
        status, refusal = await other.call(method, path, body)
        assert (status, refusal["code"]) == (403, "forbidden"), (method, path)
    assert (await other.ok("GET", "/api/desktop/state"))["call"] is None
    status, refusal = await other.call("GET", "/api/desktop/tickets/00000000-0000-4000-8000-000000000000")
    assert (status, refusal["code"]) == (404, "not_found")

    status, refusal = await first.call("PATCH", f"/api/desktop/tickets/{ticket['id']}",
                                       {"version": 1, "fields": {"agent_id": "1002"}})
    assert status == 422 and refusal["errors"][0]["field"] == "agent_id"
    await first.ok("POST", "/api/desktop/call/hangup")


async def test_requests_that_make_no_sense_are_refused_with_the_reason(desk: Desk) -> None:
    await desk.users.agent(agent_id="1001", jurisdiction=HANGZHOU)
    await desk.users.supervisor()
    agent = await desk.browser_for("agent1001")
    status, refusal = await agent.call("POST", "/api/desktop/state", {"state": "asleep"})
    assert status == 400 and refusal["errors"][0]["field"] == "state"
    status, refusal = await agent.call("POST", "/api/desktop/state", {"state": "break", "reason": "nap"})
    assert status == 400 and refusal["errors"][0]["field"] == "reason"
    status, refusal = await agent.call("POST", "/api/desktop/state", {"state": "available"})
    assert (status, refusal["code"]) == (409, "agent_state")  # not logged into the queues
    status, refusal = await agent.call("POST", "/api/desktop/call/answer")
    assert (status, refusal["code"]) == (409, "agent_state")
    status, refusal = await agent.call("POST", "/api/desktop/call/hold", {"on": "yes"})
    assert status == 400 and refusal["errors"][0]["field"] == "on"
    status, refusal = await agent.call("POST", "/api/desktop/call/transfer", {})
    assert status == 400

    supervisor = await desk.browser_for("supervisor")
    status, refusal = await supervisor.call("GET", "/api/desktop/state")
    assert (status, refusal["code"]) == (403, "forbidden")
    anonymous = Browser(desk.url)
    try:
        status, refusal = await anonymous.call("GET", "/api/desktop/state")
        assert (status, refusal["code"]) == (401, "unauthenticated")
    finally:
        await anonymous.http.close()


async def test_in_sip_mode_the_browser_gets_its_sip_account_and_answers_on_its_own_phone(desk: Desk) -> None:
    desktop = desk.parts.desktop
    desktop.settings = desktop.settings.model_copy(update={
        "phone_mode": "sip", "sip_ws_url": "wss://pbx.example:8089/ws", "sip_domain": "pbx.example"})
    await desk.users.agent(agent_id="1001", jurisdiction=HANGZHOU, display_name="王小明")
    agent = await desk.browser_for("agent1001")
    state = await agent.ok("GET", "/api/desktop/state")
    assert state["phone"] == {"mode": "sip", "sip": {
        "uri": "sip:1001@pbx.example", "ws_url": "wss://pbx.example:8089/ws", "password": "sip-secret-1001",
        "display_name": "王小明"}, "endpoint": {"name": "PJSIP/1001", "state": "unseen", "since": None}}
    status, refusal = await agent.call("POST", "/api/desktop/call/answer")
    assert (status, refusal["code"]) == (409, "sip_phone")


async def test_a_call_transferred_to_a_queue_and_then_to_a_named_agent_rings_them_in_turn(desk: Desk) -> None:
    first = await ready_agent(desk, "1001")
    await answered_call(desk, first)
    second = await ready_agent(desk, "1002")
    await first.ok("POST", "/api/desktop/call/transfer", {"queue": {"jurisdiction": HANGZHOU, "line": "general"}})
    state = await eventually(lambda: state_is(second, "ringing"))
    assert "transfer:queue:330100:general" in state["call"]["menu_path"]
    assert (await first.ok("GET", "/api/desktop/state"))["agent"]["state"] in ("wrap_up", "available")
    await second.ok("POST", "/api/desktop/call/answer")
    await eventually(lambda: state_is(second, "on_call"))

    # The first agent takes a break (a free agent of the same home could take the call first).
    await first.ok("POST", "/api/desktop/state", {"state": "break", "reason": "meeting"})
    third = await ready_agent(desk, "1003")
    status, refusal = await second.call("POST", "/api/desktop/call/transfer", {"agent_id": "1001"})
    assert (status, refusal["code"]) == (409, "agent_state")  # not available
    await second.ok("POST", "/api/desktop/call/transfer", {"agent_id": "1003"})
    state = await eventually(lambda: state_is(third, "ringing"))
    assert state["call"]["menu_path"][-1] == "transfer:agent:1003"
    await third.ok("POST", "/api/desktop/call/answer")
    await eventually(lambda: state_is(third, "on_call"))
    await third.ok("POST", "/api/desktop/call/hangup")
    await desk.pbx.wait_idle()


async def test_the_pages_are_served_and_logging_out_leaves_the_queues(desk: Desk) -> None:
    agent = await ready_agent(desk)
    for path in ("/", "/desktop/", "/wallboard/"):
        async with agent.http.get(desk.url + path) as resp:
            assert resp.status == 200 and "<html" in (await resp.text()).lower(), path
    async with agent.http.get(desk.url + "/desktop", allow_redirects=False) as resp:
        assert resp.status == 301 and resp.headers["Location"] == "/desktop/"
    async with agent.http.get(desk.url + "/../pyproject.toml") as resp:
        assert resp.status == 404
    await agent.ok("DELETE", "/api/session", status=204)
    assert await desk.app.queue_engine.agent("1001") is not None
    assert (await desk.app.queue_engine.agent("1001"))["state"].value == "offline"


async def test_a_socket_that_stops_reading_is_closed_and_the_others_still_get_every_message() -> None:
    stuck, reading = StuckSocket(), ReadingSocket()
    outlets = [Outlet(stuck, size=4), Outlet(reading, size=4)]  # type: ignore[arg-type]
    for n in range(20):
        for outlet in outlets:
            outlet.send(str(n))
        await asyncio.sleep(0)
    await eventually_true(lambda: stuck.closed)
    assert stuck.close_code == 1013  # "try again later": the page reconnects
    assert reading.received == [str(n) for n in range(20)] and not reading.closed
    for outlet in outlets:
        await outlet.close()


async def test_the_stand_ins_control_api_makes_a_phone_wait_for_the_desktop_to_answer(pbx_sim: PbxSim) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b"hotline:hotline").decode()}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.put(f"{pbx_sim.url}/sim/endpoints/PJSIP/1001?mode=manual") as resp:
            assert resp.status == 200 and (await resp.json())["mode"] == "manual"
        async with http.put(f"{pbx_sim.url}/sim/endpoints/PJSIP/1001?mode=asleep") as resp:
            assert resp.status == 400 and "manual" in (await resp.json())["message"]
    assert pbx_sim.engine.endpoints["PJSIP/1001"].mode == "manual"


async def test_an_agent_corrects_where_a_call_belongs_and_the_call_record_follows(desk: Desk) -> None:
    agent = await ready_agent(desk)
    call_id = await answered_call(desk, agent)
    assert (await agent.ok("GET", "/api/desktop/state"))["call"]["jurisdiction"]["code"] == HANGZHOU

    status, body = await agent.call("POST", "/api/desktop/call/jurisdiction", {"code": "339999"})
    assert status == 422 and body["errors"][0]["field"] == "jurisdiction"
    state = await agent.ok("POST", "/api/desktop/call/jurisdiction", {"code": "330106"})  # Xihu district
    assert state["call"]["jurisdiction"]["code"] == "330106"

    await agent.ok("POST", "/api/desktop/call/hangup")

    async def recorded() -> bool:
        await desk.app.records.flush()
        record = await desk.app.call_records.get(call_id)
        return record is not None and record.ended_at is not None and record.jurisdiction == "330106"

    await eventually(recorded)
