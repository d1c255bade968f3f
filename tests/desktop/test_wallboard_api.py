"""Supervisors watch their part of the country on the wallboard: figures of their node and of
each child, the agents, tickets near their deadline, the day by hour; live over a WebSocket;
and listen to, whisper to or barge into an agent's call from their own phone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import update

from agent_desktop.notifier import DesktopNotifier
from agent_desktop.wallboard import Facts
from core.db import sessionmaker
from core.vocabulary import CHINA_TZ
from tests.fixtures.waiting import eventually
from tests.support.desktop import Browser, Desk, ReadingSocket, next_message
from tests.support.documents import CREDIT_CODE
from tests.support.jurisdictions import BEIJING, HANGZHOU, XIHU, ZHEJIANG
from tickets.models import Ticket

pytestmark = pytest.mark.slow


async def agent_on_break(desk: Desk, agent_id: str = "1001") -> Browser:
    """A Hangzhou agent logged into the queues, on break: the city is staffed, calls wait there."""
    await desk.users.agent(agent_id=agent_id, jurisdiction=HANGZHOU)
    agent = await desk.browser_for(f"agent{agent_id}")
    await agent.ok("POST", "/api/desktop/queues/login")
    return agent


def child(board: dict, code: str) -> dict:
    return next(c for c in board["children"] if c["code"] == code)


async def test_a_zhejiang_supervisor_sees_hangzhou_and_its_agents_but_may_not_open_beijing(desk: Desk) -> None:
    await agent_on_break(desk)
    await desk.users.supervisor(jurisdiction=ZHEJIANG)
    supervisor = await desk.browser_for("supervisor")

    board = await supervisor.ok("GET", "/api/wallboard")
    assert board["node"] == {"code": ZHEJIANG, "name": "浙江省", "level": "province"}
    assert [n["code"] for n in board["path"]] == [ZHEJIANG]
    assert child(board, HANGZHOU)["figures"]["agents"]["break"] == 1
    assert board["figures"]["agents"] == {"available": 0, "ringing": 0, "on_call": 0, "wrap_up": 0, "break": 1}
    assert [(a["agent_id"], a["display_name"], a["state"]) for a in board["agents"]] == [("1001", "坐席1001", "break")]
    assert [h["hour"] for h in board["day"]] == list(range(24))

    # The map of a province colours its cities: the children, with the same figures.
    assert board["regions"] == board["children"]
    assert board["agents"][0]["jurisdiction_name"] == "杭州市"

    city = await supervisor.ok("GET", f"/api/wallboard?jurisdiction={HANGZHOU}")
    assert [n["code"] for n in city["path"]] == [ZHEJIANG, HANGZHOU]
    assert XIHU in {c["code"] for c in city["children"]}
    assert city["regions"] == []  # no map below a province

    status, refusal = await supervisor.call("GET", f"/api/wallboard?jurisdiction={BEIJING}")
    assert (status, refusal["code"]) == (403, "forbidden")
    status, refusal = await supervisor.call("GET", "/api/wallboard?jurisdiction=999999")
    assert status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with supervisor.ws(f"/api/wallboard/ws?jurisdiction={BEIJING}"):
            pass
    assert refused.value.status == 403
    agent = await desk.browser_for("agent1001")
    status, refusal = await agent.call("GET", "/api/wallboard")
    assert (status, refusal["code"]) == (403, "forbidden")

    await desk.users.admin()
    admin = await desk.browser_for("admin")
    national = await admin.ok("GET", f"/api/wallboard?jurisdiction={HANGZHOU}")
    assert [n["code"] for n in national["path"]] == ["000000", ZHEJIANG, HANGZHOU]
    country = await admin.ok("GET", "/api/wallboard")
    assert len(country["regions"]) == 34 and {r["level"] for r in country["regions"]} == {"province"}
    assert child(country, ZHEJIANG)["figures"]["agents"]["break"] == 1


def test_the_map_of_a_municipality_shows_its_districts_and_a_province_its_directly_administered_counties(
    desk: Desk,
) -> None:
    wallboard = desk.parts.wallboard
    beijing = wallboard.map_regions(BEIJING)
    assert "110105" in beijing and {wallboard.tree.get(c).level.name for c in beijing} == {"COUNTY"}
    assert wallboard.map_regions("110100") == beijing  # the municipality's city: the same map
    hainan = wallboard.map_regions("460000")
    assert "460100" in hainan and "469001" in hainan and "469000" not in hainan


async def test_the_wallboard_socket_pushes_an_update_when_a_call_starts_waiting(desk: Desk) -> None:
    await agent_on_break(desk)
    await desk.users.supervisor(jurisdiction=ZHEJIANG)
    supervisor = await desk.browser_for("supervisor")
    desk.parts.wallboard.ttl_s["day"] = 0.0
    async with supervisor.ws(f"/api/wallboard/ws?jurisdiction={ZHEJIANG}") as ws:
        first = await next_message(ws, "wallboard")
        assert first["figures"]["waiting"] == 0 and first["at_ms"] > 0
        # The open board asks for the queue figures, which go out only while one watches.
        watched = f"{desk.parts.wallboard.queue_prefix}:figures:watched"
        await eventually(lambda: desk.parts.wallboard.redis.exists(watched))
        call = await desk.caller_reaches_menu()
        waiting = await next_message(ws, "wallboard", where=lambda m: m["figures"]["waiting"] == 1)
        assert child(waiting, HANGZHOU)["figures"]["waiting"] == 1
        assert waiting["at_ms"] >= first["at_ms"]
        await call.hangup()
        gone = await next_message(ws, "wallboard", where=lambda m: m["figures"]["waiting"] == 0)
        assert gone["figures"]["abandoned"] == 1 and gone["figures"]["abandon_rate"] == 1.0
    hour = datetime.now(CHINA_TZ).hour

    async def abandoned_in_the_chart() -> bool:
        # The chart counts call records, which are gathered for seconds before a commit.
        await desk.app.records.flush()
        board = await supervisor.ok("GET", "/api/wallboard")
        return board["day"][hour] == {"hour": hour, "offered": 1, "answered": 0, "abandoned": 1}

    await eventually(abandoned_in_the_chart)


async def test_tickets_near_their_deadline_are_listed_for_the_supervisors_whose_scope_handles_them(desk: Desk) -> None:
    ticket = await desk.app.tickets.create({
        "case_type": "complaint", "channel": "web", "caller": {"phone": "13800138000"},
        "respondent": {"name": "杭州示例电器有限公司", "credit_code": CREDIT_CODE, "region": XIHU},
        "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。", "handling": {"region": XIHU, "level": "county"},
    }, by="web")
    ticket = await desk.app.tickets.complete(ticket.id, by="web", version=ticket.version)
    today = datetime.now(UTC).astimezone(CHINA_TZ).date()
    async with sessionmaker(desk.app.engine)() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == ticket.id).values(accept_by=today))

    await desk.users.supervisor(jurisdiction=ZHEJIANG)
    await desk.users.supervisor("beijing", jurisdiction=BEIJING)
    zhejiang = await (await desk.browser_for("supervisor")).ok("GET", "/api/wallboard")
    assert zhejiang["near_deadline"] == [{"ticket_id": ticket.id, "case_type": "complaint",
                                          "deadline_kind": "accept_by", "due": today.isoformat(),
                                          "working_days_left": 0, "case_no": None,
                                          "respondent": "杭州示例电器有限公司"}]
    beijing = await (await desk.browser_for("beijing")).ok("GET", "/api/wallboard")
    assert beijing["near_deadline"] == []


async def test_a_supervisor_whispers_to_an_agent_from_their_own_phone_and_hangs_up(desk: Desk) -> None:
    await desk.users.agent(agent_id="1001", jurisdiction=HANGZHOU)
    agent = await desk.browser_for("agent1001")
    await agent.ok("POST", "/api/desktop/queues/login")
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})  # its phone answers by itself
    await desk.users.supervisor(jurisdiction=ZHEJIANG, sip_endpoint="PJSIP/9001")
    await desk.users.supervisor("beijing", jurisdiction=BEIJING, sip_endpoint="PJSIP/9002")
    supervisor = await desk.browser_for("supervisor")
    call = await desk.caller_reaches_menu()

    async def connected() -> str | None:
        state = await agent.ok("GET", "/api/desktop/state")
        return state["call"]["call_id"] if state["agent"]["state"] == "on_call" else None

    call_id = await eventually(connected)
    status, refusal = await (await desk.browser_for("beijing")).call(
        "POST", "/api/wallboard/monitor", {"call_id": call_id, "mode": "listen"})
    assert (status, refusal["code"]) == (403, "forbidden")
    status, refusal = await supervisor.call("POST", "/api/wallboard/monitor", {"call_id": call_id, "mode": "shout"})
    assert status == 400 and refusal["errors"][0]["field"] == "mode"

    monitor_id = (await supervisor.ok("POST", "/api/wallboard/monitor",
                                      {"call_id": call_id, "mode": "whisper"}))["monitor_id"]
    pbx = desk.pbx

    def joined() -> list | None:
        bridge = pbx.engine.bridges.get(f"monitor-{monitor_id}")
        return bridge.channels if bridge is not None and len(bridge.channels) == 2 else None

    async def both_in_the_bridge() -> list | None:
        return joined()

    members = [pbx.channel(c) for c in await eventually(both_in_the_bridge)]
    snoop = next(ch for ch in members if ch is not None and ch.kind == "snoop")
    phone = next(ch for ch in members if ch is not None and ch.kind == "originated")
    leg = pbx.channel(snoop.snoop_target or "")
    assert leg is not None and leg.name.startswith("PJSIP/1001-")  # the agent's leg, not the caller's
    assert (snoop.snoop_spy, snoop.snoop_whisper) == ("both", "out")
    assert phone.name.startswith("PJSIP/9001-")

    await supervisor.ok("DELETE", f"/api/wallboard/monitor/{monitor_id}", status=204)

    async def monitor_gone() -> bool:
        return f"monitor-{monitor_id}" not in pbx.engine.bridges and snoop.id not in pbx.engine.channels

    await eventually(monitor_gone)
    status, _ = await supervisor.call("DELETE", f"/api/wallboard/monitor/{monitor_id}")
    assert status == 404
    assert pbx.channel(call.channel_id) is not None  # the call itself goes on
    await call.hangup()
    await pbx.wait_idle()


class CountingBoard:
    """A wallboard whose renders are counted (and take no time)."""

    def __init__(self) -> None:
        self.renders: list[float] = []

    async def facts(self) -> Facts:
        self.renders.append(asyncio.get_running_loop().time())
        return Facts(at_ms=len(self.renders), queues=[], agents=[], deadlines=[], day={})

    def render(self, facts: Facts, node: str, root: str) -> dict:
        return {"node": {"code": node}}


async def test_a_burst_of_changes_renders_the_wallboards_at_once_and_then_once_per_interval() -> None:
    board = CountingBoard()
    notifier = DesktopNotifier(None, "t", desktop=None, wallboard=board, tickets=None,  # type: ignore[arg-type]
                               throttle_s=0.1)
    socket = ReadingSocket()
    outlet = await notifier.attach_wallboard(socket, ZHEJIANG, ZHEJIANG)  # type: ignore[arg-type]
    await asyncio.sleep(0.15)  # longer than the interval since the socket's initial board
    loop = asyncio.get_running_loop()
    start = loop.time()
    notifier.wallboard_changed()
    await asyncio.sleep(0)  # one turn of the loop, no timer
    # The first change is rendered at once, not at the end of an interval (how soon it reaches
    # the screen is bench/wallboard.py's "event -> screen").
    assert len(board.renders) == 2
    for _ in range(49):  # the rest of a burst: figures and agents changing together
        notifier.wallboard_changed()
        await asyncio.sleep(0.002)
    burst = loop.time() - start
    await asyncio.sleep(0.3)
    renders = [t - start for t in board.renders[1:]]  # the first was the socket's initial board
    # The rest of the burst: once per 100 ms, not 49 times.
    assert 2 <= len(renders) <= burst / 0.1 + 2
    assert all(b - a >= 0.09 for a, b in zip(renders, renders[1:], strict=False))
    await eventually(lambda: _received(socket, len(board.renders)))
    await notifier.detach(outlet)


async def _received(socket: ReadingSocket, count: int) -> bool:
    return len(socket.received) == count
