"""With SIP phones, an agent whose phone is not registered with Asterisk is never offered a call:
the desktop refuses "available" with the reason, an available agent whose phone goes offline is
put on break ``phone_offline`` (and stays there when it comes back, until they choose), and the
application learns the phones' states again after every reconnect of the ARI events.

The stand-in plays Asterisk: its phones register and lose their contact through its control
API, it sends ``EndpointStateChange`` to subscribed applications, and it answers 500
"Allocation failed" when asked to call a phone with no contact."""

from __future__ import annotations

import asyncio

import pytest

from agent_desktop.phones import PhoneService
from ari.models import parse_event
from core.settings import Settings
from queues.engine import Agent, AgentState
from tests.fixtures.waiting import eventually
from tests.support.desktop import Browser, Desk, next_message
from tests.support.jurisdictions import HANGZHOU
from tests.support.redis import redis_commands_counted

pytestmark = pytest.mark.slow

PHONE = "PJSIP/1001"


@pytest.fixture
def desk_settings(desk_settings: Settings) -> Settings:
    """The desktop as in production: the browser is the phone (SIP.js over WSS)."""
    return desk_settings.model_copy(update={"desktop": desk_settings.desktop.model_copy(update={
        "phone_mode": "sip", "sip_ws_url": "wss://pbx.example:8089/ws", "sip_domain": "pbx.example"})})


async def agent_in_queues(desk: Desk, agent_id: str = "1001") -> Browser:
    """An agent of Hangzhou logged in to the queues (on break "login")."""
    await desk.users.agent(agent_id=agent_id, jurisdiction=HANGZHOU)
    agent = await desk.browser_for(f"agent{agent_id}")
    await agent.ok("POST", "/api/desktop/queues/login")
    return agent


async def agent_state(desk: Desk, agent_id: str = "1001") -> dict:
    agent = await desk.app.queue_engine.agent(agent_id)
    assert agent is not None
    return agent


async def the_waiting_call(desk: Desk) -> str:
    async def one() -> str | None:
        calls = await desk.app.queue_engine.live_calls()
        return calls[0] if calls else None

    return await eventually(one)


async def test_an_agent_whose_phone_is_not_registered_cannot_become_available_and_is_told_why(desk: Desk) -> None:
    desk.pbx.set_registered(PHONE, False)
    agent = await agent_in_queues(desk)
    state = await agent.ok("GET", "/api/desktop/state")
    assert state["phone"]["endpoint"]["name"] == PHONE and state["phone"]["endpoint"]["state"] == "offline"

    status, refusal = await agent.call("POST", "/api/desktop/state", {"state": "available"})
    assert (status, refusal["code"]) == (409, "phone_not_registered")
    assert "PJSIP/1001" in refusal["message"] and "not registered" in refusal["message"]
    assert (await agent_state(desk))["state"] is AgentState.BREAK

    # The phone registers: the desktop sees it, and the agent may go available.
    async with agent.ws("/api/desktop/ws") as ws:
        await next_message(ws, "state")
        desk.pbx.set_registered(PHONE, True)
        pushed = await next_message(ws, "state", where=lambda m: m["phone"]["endpoint"]["state"] == "online")
        assert pushed["agent"]["state"] == "break"
    state = await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    assert state["agent"]["state"] == "available"


async def test_the_refusal_is_in_chinese_for_a_chinese_page(desk: Desk) -> None:
    desk.pbx.set_registered(PHONE, False)
    agent = await agent_in_queues(desk)
    async with agent.http.post(agent.url + "/api/desktop/state", json={"state": "available"},
                               headers={"X-CSRF-Token": agent.csrf, "Accept-Language": "zh-CN"}) as resp:
        refusal = await resp.json()
    assert resp.status == 409 and refusal["code"] == "phone_not_registered"
    assert "未注册" in refusal["message"] and "PJSIP/1001" in refusal["message"], refusal


async def test_a_phone_that_registered_a_moment_ago_is_asked_about_rather_than_refused(desk: Desk) -> None:
    """The agent may click before Asterisk's event reached us: the desktop asks Asterisk then."""
    agent = await agent_in_queues(desk)
    phones = desk.parts.phones
    await desk.app.redis.hset(phones._states_key, PHONE, '{"state":"offline","since_ms":1}')  # an old news
    state = await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    assert state["agent"]["state"] == "available" and state["phone"]["endpoint"]["state"] == "online"


async def test_logging_in_to_the_queues_reads_the_phones_state_afresh(desk: Desk) -> None:
    """A state stored while the agent was away may be old news: the login asks Asterisk."""
    desk.pbx.set_registered(PHONE, False)
    await desk.app.redis.hset(desk.parts.phones._states_key, PHONE, '{"state":"online","since_ms":1}')
    agent = await agent_in_queues(desk)
    state = await agent.ok("GET", "/api/desktop/state")
    assert state["phone"]["endpoint"]["state"] == "offline"
    status, refusal = await agent.call("POST", "/api/desktop/state", {"state": "available"})
    assert (status, refusal["code"]) == (409, "phone_not_registered")


async def test_only_logged_in_agents_phones_are_followed_so_a_callers_events_come_once(desk: Desk) -> None:
    """Following ``endpoint:PJSIP`` would bring every event of every SIP channel, the callers'
    on the trunk too, once more than their call's own subscription does (issue 15)."""
    app = desk.app.settings.ari.app
    assert sorted(desk.pbx.apps.endpoint_sources(app).elements()) == []  # nobody logged in yet
    agent = await agent_in_queues(desk)
    assert sorted(desk.pbx.apps.endpoint_sources(app).elements()) == [PHONE]  # from the login on

    caller = await desk.pbx.place_call("057112315", caller_id="13800138000")
    await caller.wait_for_playback(desk.prompts.media("main_menu"))
    channel = desk.pbx.channel(caller.channel_id)
    assert channel is not None and desk.pbx.engine.channel_audience(channel) == {app: 1}

    # Still heard: the agent's phone going offline takes them out of the queue.
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    desk.pbx.set_registered(PHONE, False)
    after = await eventually(lambda: _agent_is(desk, AgentState.BREAK))
    assert after["reason"] == "phone_offline"


async def test_an_agent_logged_in_elsewhere_has_their_phone_followed_once_they_are_heard_of(desk: Desk) -> None:
    await agent_in_queues(desk)
    phones = desk.parts.phones
    desk.app.ari.forget_subscriptions()  # as in a process the agent did not log in through
    phones._endpoint_of.clear()
    assert not phones.following(PHONE)
    await phones.agent_changed({"type": "agent.state", "agent_id": "1001", "state": "available"})
    assert phones.following(PHONE)


async def test_a_phone_the_switch_does_not_have_keeps_no_other_from_being_followed(desk: Desk) -> None:
    # Asterisk checks every source of a subscription before it takes any: one unknown endpoint
    # refuses the whole request (422), so the phones are then followed one by one.
    phones = desk.parts.phones
    desk.pbx.faults.inject(r"/subscription$", method="POST", query="9999", status=422, count=2,
                           message="Event source does not exist")
    await phones.follow(["PJSIP/1002", "PJSIP/9999", "PJSIP/1003"])
    assert [phones.following(e) for e in ("PJSIP/1002", "PJSIP/9999", "PJSIP/1003")] == [True, False, True]


async def test_an_available_agent_whose_phone_goes_offline_is_put_on_break_and_offered_no_call(desk: Desk) -> None:
    agent = await agent_in_queues(desk)
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})

    async with agent.ws("/api/desktop/ws") as ws:
        await next_message(ws, "state")
        desk.pbx.set_registered(PHONE, False)  # the browser closed, or its WebSocket to Asterisk dropped
        pushed = await next_message(ws, "state", where=lambda m: m["agent"]["state"] == "break")
        assert pushed["agent"]["reason"] == "phone_offline"

    # A caller for Hangzhou waits: nobody whose phone can ring is available, so nobody is offered it.
    await desk.caller_reaches_menu()
    call_id = await the_waiting_call(desk)
    call = await desk.app.queue_engine.call(call_id)
    assert call is not None and call["state"] == "waiting" and call["agent_id"] is None
    agent_now = await agent_state(desk)
    assert (agent_now["state"], agent_now["reason"]) == (AgentState.BREAK, "phone_offline")

    # The phone comes back: the agent stays on break until they choose to take calls again.
    desk.pbx.set_registered(PHONE, True)
    state = await eventually(lambda: _phone_is(agent, "online"))
    assert (state["agent"]["state"], state["agent"]["reason"]) == ("break", "phone_offline")
    call = await desk.app.queue_engine.call(call_id)
    assert call is not None and call["state"] == "waiting"

    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    answered = await eventually(lambda: _agent_is(desk, AgentState.ON_CALL))  # the phone answers at once
    assert answered["call_id"] == call_id


async def test_an_agent_whose_phone_dropped_during_a_call_goes_on_break_after_it_not_back_to_the_queue(
    desk: Desk,
) -> None:
    agent = await agent_in_queues(desk)
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    caller = await desk.caller_reaches_menu()
    await eventually(lambda: _agent_is(desk, AgentState.ON_CALL))

    desk.pbx.set_registered(PHONE, False)  # the agent is still talking: nothing to change yet
    await eventually(lambda: _phone_is(agent, "offline"))
    assert (await agent_state(desk))["state"] is AgentState.ON_CALL

    await caller.hangup()  # wrap-up (0.5 s here) would make them available by itself
    after = await eventually(lambda: _agent_is(desk, AgentState.BREAK))
    assert after["reason"] == "phone_offline"


async def test_phone_states_are_read_again_after_the_ari_events_reconnect(desk: Desk) -> None:
    agent = await agent_in_queues(desk)
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    connections = desk.app.events.connections

    # The phone drops while the application is not listening: no event reaches it.
    await desk.app.events.disconnect()
    desk.pbx.set_registered(PHONE, False)
    await eventually(lambda: _connected_again(desk, connections))
    after = await eventually(lambda: _agent_is(desk, AgentState.BREAK))
    assert after["reason"] == "phone_offline"

    # And the new connection is subscribed again: the phone's return is heard.
    desk.pbx.set_registered(PHONE, True)
    await eventually(lambda: _phone_is(agent, "online"))


async def test_calls_coming_and_going_on_a_phone_cost_no_redis_work_and_tell_the_desktop_nothing(
    desk: Desk,
) -> None:
    """Asterisk sends EndpointStateChange for every channel that comes to or leaves an endpoint
    (twice per call for the trunk and for the agent), its state still online: stored once, the
    rest is news to nobody. A real change after them still counts."""
    agent = await agent_in_queues(desk)
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    phones = desk.parts.phones
    online = parse_event({"type": "EndpointStateChange", "application": "hotline", "endpoint": {
        "technology": "PJSIP", "resource": "1001", "state": "online", "channel_ids": ["c1"]}})
    await phones.on_endpoint_state_change("", online)  # heard and stored by this process once
    announced = []
    async with desk.app.redis.pubsub() as sub:
        await sub.subscribe(phones._events_channel)
        with redis_commands_counted(desk.app.redis) as commands:
            for _ in range(10):
                await phones.on_endpoint_state_change("", online)
            await phones.agent_changed({"type": "agent.state", "agent_id": "1001", "state": "available"})
        assert commands == []
        while (message := await sub.get_message(ignore_subscribe_messages=True, timeout=0.2)) is not None:
            announced.append(message)
    assert announced == []

    desk.pbx.set_registered(PHONE, False)  # a real change: the agent is taken out at once
    after = await eventually(lambda: _agent_is(desk, AgentState.BREAK))
    assert after["reason"] == "phone_offline"


async def test_an_agent_logged_in_through_another_process_costs_redis_reads_once_not_at_every_call(
    desk: Desk,
) -> None:
    """Each process follows the phone of every agent it has heard of, so what it heard or read
    once stays true until the next resync: an agent's calls after the first cost the phones no
    Redis read."""
    agent = await agent_in_queues(desk)
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    phones = desk.parts.phones
    await asyncio.sleep(0.5)  # the desktop's own reads after "available" are done
    phones._endpoint_of.clear()  # as in a process the agent did not log in through
    phones._seen.clear()
    available = {"type": "agent.state", "agent_id": "1001", "state": "available"}
    with redis_commands_counted(desk.app.redis) as first:
        await phones.agent_changed(available)
    assert first[:2] == ["hgetall", "hget"]  # whose phone, and its state
    with redis_commands_counted(desk.app.redis) as later:
        for _ in range(5):
            await phones.agent_changed(available)
    assert later == []

    desk.pbx.set_registered(PHONE, False)  # a change is still heard, and acted on
    after = await eventually(lambda: _agent_is(desk, AgentState.BREAK))
    assert after["reason"] == "phone_offline"


async def test_an_agent_put_in_the_queues_without_a_desktop_has_their_phone_asked_about_once(desk: Desk) -> None:
    """Nobody read the phone of an agent a supervisor's tool (or a benchmark) put in the queues:
    their first event asks Asterisk, and the state then stored is trusted; before, each of the
    agent's events read the unseen phone's state again (four Redis round trips a call)."""
    engine, phones = desk.app.queue_engine, desk.parts.phones
    await engine.login(Agent("1001", HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}), PHONE))
    assert (await phones.state(PHONE)).state == "unseen"
    available = {"type": "agent.state", "agent_id": "1001", "state": "available"}
    await phones.agent_changed(available)
    assert (await phones.state(PHONE)).state == "online" and phones.following(PHONE)
    with redis_commands_counted(desk.app.redis) as later:
        for _ in range(5):
            await phones.agent_changed(available)
    assert later == []


async def test_an_agent_put_in_the_queues_whose_phone_is_not_registered_is_put_on_break(desk: Desk) -> None:
    desk.pbx.set_registered(PHONE, False)
    engine = desk.app.queue_engine
    await engine.login(Agent("1001", HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}), PHONE))
    await engine.set_available("1001")
    await desk.parts.phones.agent_changed({"type": "agent.state", "agent_id": "1001", "state": "available"})
    agent = await agent_state(desk)
    assert (agent["state"], agent["reason"]) == (AgentState.BREAK, "phone_offline")


async def test_after_a_reconnect_the_phones_read_then_are_trusted_until_the_next(desk: Desk) -> None:
    agent = await agent_in_queues(desk)
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    connections = desk.app.events.connections
    await desk.app.events.disconnect()
    await eventually(lambda: _connected_again(desk, connections))
    phones = desk.parts.phones
    await eventually(lambda: _heard(phones, PHONE))  # the resync read it from Asterisk
    with redis_commands_counted(desk.app.redis) as commands:
        await phones.agent_changed({"type": "agent.state", "agent_id": "1001", "state": "wrap_up"})
    assert commands == []


async def _heard(phones: PhoneService, endpoint: str) -> bool:
    return phones._heard(endpoint) == "online"


async def test_with_simulated_phones_nothing_is_refused(desk: Desk) -> None:
    desktop, phones = desk.parts.desktop, desk.parts.phones
    desktop.settings = phones.settings = desktop.settings.model_copy(update={"phone_mode": "simulated"})
    desk.pbx.set_registered(PHONE, False)
    agent = await agent_in_queues(desk)
    state = await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    assert state["agent"]["state"] == "available" and state["phone"] == {"mode": "simulated", "sip": None}


async def _phone_is(agent: Browser, wanted: str) -> dict | None:
    state = await agent.ok("GET", "/api/desktop/state")
    return state if (state["phone"]["endpoint"] or {}).get("state") == wanted else None


async def _agent_is(desk: Desk, wanted: AgentState, agent_id: str = "1001") -> dict | None:
    agent = await desk.app.queue_engine.agent(agent_id)
    return agent if agent is not None and agent["state"] is wanted else None


async def _connected_again(desk: Desk, before: int) -> bool:
    return desk.app.events.connections > before and desk.app.events.connected.is_set()
