"""The agent's side of the desktop: their state in the queues, the call they are offered or
talking on, call control, and the tickets they fill in for their calls.

An agent sees and touches only their own: the call the queue engine gave them (or their
last one, during wrap-up) and the tickets whose ``agent_id`` is theirs. Everything here
works from what is shared between processes (the queue engine and the calls' state in Redis,
the call records and tickets in SQL), never from one process's memory, except the changes
to a live call's flow, which go through that call's event FIFO (:class:`DesktopAction`).

Refusals are :class:`Refused` (an HTTP status, a code and both languages' messages); the
HTTP layer only renders them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError

from agent_desktop.phones import PhoneService, PhoneState
from agent_desktop.wording import AGENT_STATE_WORDS, words
from ari.dispatcher import Dispatcher
from ari.errors import AriError
from ari.models import Event
from ari.rest import AriRest
from callrecords.payload import handling_org
from callrecords.services import CallRecordRepository
from calls.call import Call
from calls.flow import Reaction, State
from calls.store import CallStateStore
from core.jurisdictions import JurisdictionTree, UnknownJurisdiction
from core.privacy import mask_phone
from core.problems import Problem
from core.settings import DesktopSettings
from core.vocabulary import CHINA_TZ, LINE_OF_NUMBER, utcnow
from national.contract import format_datetime, format_money
from queues.engine import Agent, AgentState, AgentStateError, QueueEngine, UnknownAgentError
from queues.flow import Connected
from queues.services import QueueService
from tickets.fields import FIELDS, GROUPS
from tickets.models import Ticket
from tickets.services import TicketConflict, TicketNotFound, TicketService

log = logging.getLogger(__name__)

BREAK_REASONS = ("lunch", "meeting", "training", "other")
#: Ticket fields the desktop fills in from the call and the agent may not change.
LINKED_FIELDS = ("call_id", "agent_id")
#: How long the desktop remembers an agent's last call (to show it during wrap-up).
LAST_CALL_TTL_S = 24 * 3600
PREVIOUS_TICKETS = 5
SUMMARY_PREVIEW = 200
#: The first words of a draft's complaint in the agent's list of drafts.
DRAFT_PREVIEW = 60
#: How many of an agent's drafts the list shows (newest first).
DRAFTS_LISTED = 100
#: How many of the calls last offered to an agent the desktop remembers (for 24 h): the agent
#: may file a ticket for any of them, also for one whose caller hung up while it rang.
OFFERED_KEPT = 50
#: How long an action on a live call may wait for the call's own events to be handled.
ACTION_TIMEOUT_S = 10.0


class DesktopUser(Protocol):
    """What the desktop reads of a signed-in user (``accounts`` provides the real one)."""

    id: int
    username: str
    display_name: str
    role: str
    jurisdiction: str
    agent_id: str | None
    lines: list[str]
    language: str


class Refused(Exception):
    """A request the desktop turns down: ``status`` and ``code`` for the HTTP answer."""

    def __init__(self, status: int, code: str, message_en: str, message_zh: str,
                 problems: list[Problem] | None = None) -> None:
        super().__init__(message_en)
        self.status, self.code, self.message_en, self.message_zh = status, code, message_en, message_zh
        self.problems = problems or []


def _forbidden(en: str, zh: str) -> Refused:
    return Refused(403, "forbidden", en, zh)


def _agent_state(en: str, zh: str) -> Refused:
    return Refused(409, "agent_state", en, zh)


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)



# --------------------------------------------------------------------------- actions on live calls


@dataclass(frozen=True, slots=True)
class DesktopAction(Event):
    """A change the desktop makes to a live call (a transfer), posted into the call's own event
    FIFO so that it never runs at the same time as the call's Asterisk events."""

    key: str
    reaction: Reaction = field(compare=False)
    done: asyncio.Future[bool] = field(compare=False)

    def route_key(self) -> str | None:
        return self.key


# --------------------------------------------------------------------------- the service


@dataclass(frozen=True, slots=True)
class LiveCall:
    call_id: str
    channel_id: str
    #: The agent's leg (None until the flow has stored it, a moment after the offer).
    agent_leg: str | None
    state: str


class DesktopService:
    def __init__(self, *, engine: QueueEngine, queues: QueueService, store: CallStateStore,
                 records: CallRecordRepository, tickets: TicketService, tree: JurisdictionTree, ari: AriRest,
                 dispatcher: Dispatcher, app_name: str, redis: Redis, prefix: str, settings: DesktopSettings,
                 call_language: str, phones: PhoneService) -> None:
        self.engine, self.queues, self.store, self.records = engine, queues, store, records
        self.tickets, self.tree, self.ari, self.dispatcher = tickets, tree, ari, dispatcher
        self.app_name, self.redis, self.prefix, self.settings = app_name, redis, prefix, settings
        self.phones = phones
        #: The language of the calls (the IVR's, as agents' languages are written: zh-CN).
        self.call_language = call_language.replace("_", "-")

    # ----------------------------------------------------------------- state

    async def state(self, user: DesktopUser) -> dict[str, Any]:
        """The body of ``GET /api/desktop/state`` and of the WebSocket's ``state`` message."""
        agent_id = _agent_id(user)
        agent = await self.engine.agent(agent_id)
        call_id = await self._current_call_id(agent_id, agent)
        return {"agent": _agent_view(agent), "call": await self.card(call_id) if call_id else None,
                "phone": await self._phone(user, agent)}

    async def _current_call_id(self, agent_id: str, agent: dict[str, Any] | None) -> str | None:
        """The call to show: the one ringing or connected, else (in wrap-up) the last one."""
        if agent is None:
            return None
        if agent["state"] in (AgentState.RINGING, AgentState.ON_CALL) and agent["call_id"]:
            await self.remember_call(agent_id, agent["call_id"])
            return str(agent["call_id"])
        if agent["state"] is AgentState.WRAP_UP:
            last = await self.redis.get(self._last_call_key(agent_id))
            return last.decode() if isinstance(last, bytes) else last
        return None

    def _last_call_key(self, agent_id: str) -> str:
        return f"{self.prefix}:desktop:last-call:{agent_id}"

    def _offered_key(self, agent_id: str) -> str:
        return f"{self.prefix}:desktop:offered:{agent_id}"

    async def remember_call(self, agent_id: str, call_id: str) -> None:
        """The call is offered to the agent (or shown on their desktop): their last call, and
        one of the calls they may file tickets for (:meth:`owned_call`) for a day."""
        now_ms = int(utcnow().timestamp() * 1000)
        offered = self._offered_key(agent_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._last_call_key(agent_id), call_id, ex=LAST_CALL_TTL_S)
            pipe.zadd(offered, {call_id: now_ms})
            pipe.zremrangebyscore(offered, "-inf", now_ms - LAST_CALL_TTL_S * 1000)
            pipe.zremrangebyrank(offered, 0, -OFFERED_KEPT - 1)
            pipe.expire(offered, LAST_CALL_TTL_S)
            await pipe.execute()

    async def _was_offered(self, agent_id: str, call_id: str) -> bool:
        score = await self.redis.zscore(self._offered_key(agent_id), call_id)
        return score is not None and score >= (utcnow().timestamp() - LAST_CALL_TTL_S) * 1000

    async def _phone(self, user: DesktopUser, agent: dict[str, Any] | None) -> dict[str, Any]:
        """The SIP account the page registers with, and Asterisk's view of that phone
        (``endpoint``: ``{"name", "state", "since"}``; state ``online``, ``offline``,
        ``unknown``, ``missing`` when Asterisk has no such endpoint, ``unseen`` when not known yet)."""
        s = self.settings
        if s.phone_mode == "simulated":
            return {"mode": "simulated", "sip": None}
        endpoint, secret = getattr(user, "sip_endpoint", None), getattr(user, "sip_password", None)
        # The queues ring the endpoint the agent logged in with: that is the one that counts.
        rung = (agent or {}).get("endpoint") or endpoint
        seen = _endpoint_view(await self.phones.state(rung)) if rung else None
        if not endpoint or not secret:
            return {"mode": "sip", "sip": None, "endpoint": seen}  # the page says "no phone configured"
        account = endpoint.partition("/")[2] or endpoint
        return {"mode": "sip", "sip": {"uri": f"sip:{account}@{s.sip_domain}", "ws_url": s.sip_ws_url,
                                       "password": secret, "display_name": user.display_name},
                "endpoint": seen}

    # ----------------------------------------------------------------- the queues

    async def login(self, user: DesktopUser) -> dict[str, Any]:
        """Into the queues of the agent's home, lines and languages: on break until available."""
        agent = self._agent(user)
        await self.queues.login(agent)
        if self.settings.phone_mode == "sip":
            await self.phones.remember(agent.agent_id, agent.endpoint)
            # Followed from now on (only logged-in agents' phones are), then asked afresh: what
            # is stored of a phone whose agent was not logged in may be old.
            await self.phones.follow([agent.endpoint])
            try:
                await self.phones.read(agent.endpoint)
            except (AriError, ValueError) as exc:
                log.info("desktop: agent %s's phone state is not known yet: %s", agent.agent_id, exc)
        return await self.state(user)

    def _agent(self, user: DesktopUser) -> Agent:
        agent_id = _agent_id(user)
        endpoint = getattr(user, "sip_endpoint", None)
        if not endpoint:
            raise Refused(409, "no_phone", "your account has no phone endpoint (e.g. PJSIP/1001); ask an admin",
                          "您的账号未配置话机（如 PJSIP/1001），请联系管理员")
        if user.jurisdiction not in self.tree:
            raise Refused(409, "no_home", f"your home jurisdiction {user.jurisdiction} is unknown; ask an admin",
                          f"您的所属辖区 {user.jurisdiction} 不存在，请联系管理员")
        lines = [line for line in user.lines or () if line in LINE_OF_NUMBER.values()]
        if not lines:
            raise Refused(409, "no_lines", "your account serves no business line; ask an admin",
                          "您的账号未配置业务线，请联系管理员")
        # Every agent takes calls in the centre's language; their own adds to it.
        languages = {self.call_language, user.language or self.call_language}
        return Agent(agent_id, user.jurisdiction, frozenset(lines), frozenset(languages), endpoint)

    async def logout(self, user: DesktopUser) -> dict[str, Any]:
        try:
            await self.engine.logout(_agent_id(user))
        except UnknownAgentError:
            pass  # never logged in: already out
        except AgentStateError:
            raise _agent_state("finish your call before logging out of the queues",
                               "请先结束当前通话再退出队列") from None
        return await self.state(user)

    async def on_logout(self, user: DesktopUser) -> None:
        """Signing out of the desktop also leaves the queues (the hook ``accounts`` calls)."""
        if getattr(user, "role", None) != "agent" or not getattr(user, "agent_id", None):
            return
        try:
            await self.engine.logout(str(user.agent_id))
        except UnknownAgentError:
            pass
        except AgentStateError:
            # On a call: the call goes on; the agent leaves the queues when it ends and they log out.
            log.info("agent %s signed out during a call; still in the queues", user.agent_id)

    async def set_state(self, user: DesktopUser, state: str, reason: str | None) -> dict[str, Any]:
        agent_id = _agent_id(user)
        try:
            if state == "available":
                await self._phone_can_ring(agent_id)
                await self.queues.available(agent_id)
            else:
                await self.engine.set_break(agent_id, reason or "other")
        except UnknownAgentError:
            raise _agent_state("log in to the queues first", "请先登录队列") from None
        except AgentStateError:
            now = await self.engine.agent(agent_id)
            zh, en = words(AGENT_STATE_WORDS, now["state"].value if now else "offline")
            raise _agent_state(f"not possible while {en}", f"当前状态（{zh}）下不能切换") from None
        return await self.state(user)

    async def _phone_can_ring(self, agent_id: str) -> None:
        """With SIP phones, refuse "available" while Asterisk cannot ring the agent's phone:
        the queue would offer calls that fail at once (500 "Allocation failed")."""
        if self.settings.phone_mode != "sip":
            return
        agent = await self.engine.agent(agent_id)
        if agent is None:
            raise UnknownAgentError(agent_id)
        endpoint = agent["endpoint"]
        try:
            phone = await self.phones.reachable(endpoint)
        except ValueError:
            raise Refused(409, "phone_not_found", f"your phone {endpoint} is not an endpoint the telephone system "
                          "knows (TECH/resource, e.g. PJSIP/1001); ask an admin",
                          f"您的话机 {endpoint} 不是电话系统可识别的终端（应为 PJSIP/1001 这样的格式），"
                          "请联系管理员") from None
        except AriError as exc:
            log.warning("desktop: agent %s's phone could not be checked: %s", agent_id, exc)
            raise Refused(503, "pbx_unavailable", "the telephone system cannot say whether your phone is "
                          "registered; try again in a moment",
                          "电话系统暂时无法确认您的话机是否已注册，请稍后再试") from None
        if phone.state == "missing":
            raise Refused(409, "phone_not_found", f"the telephone system has no endpoint {endpoint}; ask an admin",
                          f"电话系统中没有终端 {endpoint}，请联系管理员")
        if not phone.reachable:
            raise Refused(409, "phone_not_registered",
                          f"your phone ({endpoint}) is not registered with the telephone system, so calls cannot "
                          "ring it; wait until the phone shows \"registered\", then choose Available",
                          f"您的话机（{endpoint}）未注册到电话系统，来电无法振铃；请等话机显示“已注册”后再示闲")

    # ----------------------------------------------------------------- the call card

    async def card(self, call_id: str) -> dict[str, Any] | None:
        """What the agent sees of a call; None when nothing is known of it (yet)."""
        live = await self.engine.call(call_id)
        # The live call's state while it lasts, then its record: the same fields by the same names.
        data: Any = await self.store.load(live["channel_id"]) if live else None
        if data is None:
            data = await self.records.get(call_id)
        if data is None:
            return None
        status = {"ringing": "ringing", "on_call": "connected"}.get(live["state"] if live else "", "ended")
        flags = await self.redis.hgetall(self._flags_key(call_id)) if status == "connected" else {}
        phone = data.caller_phone or ""
        return {
            "call_id": call_id, "state": status,
            "caller": (phone if self.settings.show_full_number else mask_phone(phone)) if phone else None,
            "hotline_number": data.hotline_number, "business_line": data.business_line,
            "menu_path": list(data.menu_path or []), "choice": data.choice, "transcript": data.transcript,
            "recognized_by": data.recognized_by or "none",
            "jurisdiction": self._jurisdiction(data.jurisdiction),
            "waited_s": _waited(data), "previous_tickets": await self._previous(phone, call_id),
            "on_hold": _flag(flags, "held"), "muted": _flag(flags, "muted"),
        }

    def _jurisdiction(self, code: str | None) -> dict[str, str] | None:
        if not code or code not in self.tree:
            return None
        j = self.tree.get(code)
        return {"code": j.code, "name": j.name, "level": j.level.name.lower()}

    async def _previous(self, phone: str, call_id: str) -> list[dict[str, Any]]:
        tickets = await self.tickets.tickets_of_caller(phone, limit=PREVIOUS_TICKETS, exclude_call=call_id)
        return [{"id": t.id, "case_type": t.case_type, "status": t.status,
                 "summary": (t.summary or "")[:SUMMARY_PREVIEW] or None, "created_at": rfc3339(t.created_at)}
                for t in tickets]

    def _flags_key(self, call_id: str) -> str:
        return f"{self.prefix}:desktop:call:{call_id}"

    # ----------------------------------------------------------------- call control

    async def live_call(self, user: DesktopUser, *states: AgentState) -> LiveCall:
        """The agent's call, when their state is one of ``states``; else 409."""
        agent_id = _agent_id(user)
        agent = await self.engine.agent(agent_id)
        if agent is None or agent["state"] not in states or not agent["call_id"]:
            raise _agent_state("you have no call to do that with", "您当前没有可操作的通话")
        live = await self.engine.call(agent["call_id"])
        if live is None:
            raise _agent_state("the call has just ended", "通话刚刚结束")
        data = await self.store.load(live["channel_id"])
        leg = data.agent_channel if data is not None and data.agent_id == agent_id else None
        return LiveCall(live["call_id"], live["channel_id"], leg, live["state"])

    async def answer(self, user: DesktopUser) -> dict[str, Any]:
        if self.settings.phone_mode == "sip":
            raise Refused(409, "sip_phone", "answer on your phone: the desktop answers only simulated phones",
                          "请在话机上接听：桌面仅能接听模拟话机")
        call = await self.live_call(user, AgentState.RINGING)
        if call.agent_leg is None:
            raise _agent_state("your phone is not ringing yet; try again in a moment", "话机尚未振铃，请稍后再试")
        await self._ari("answering", lambda: self.ari.answer(call.agent_leg or ""),
                        gone=("the phone stopped ringing, or it is not a simulated phone the desktop can answer",
                              "话机已停止振铃，或不是可由工作台接听的模拟话机"))
        return await self.state(user)

    async def hangup(self, user: DesktopUser) -> dict[str, Any]:
        """Hang up the agent's leg: the caller is hung up with it (or, while ringing, the
        offer is declined and the call goes to the next agent)."""
        call = await self.live_call(user, AgentState.RINGING, AgentState.ON_CALL)
        if call.agent_leg is not None:
            await self._ari("hanging up", lambda: self.ari.hangup(call.agent_leg or ""), gone_ok=True)
        return await self.state(user)

    async def hold(self, user: DesktopUser, on: bool) -> dict[str, Any]:
        """The caller hears music on hold (Asterisk's hold indication on the caller's channel)."""
        call = await self.live_call(user, AgentState.ON_CALL)
        action = self.ari.hold if on else self.ari.unhold
        await self._ari("holding", lambda: action(call.channel_id))
        await self._set_flag(call.call_id, "held", on)
        return await self.state(user)

    async def mute(self, user: DesktopUser, on: bool) -> dict[str, Any]:
        """The caller stops hearing the agent: audio out to the caller's channel is muted."""
        call = await self.live_call(user, AgentState.ON_CALL)
        action = self.ari.mute if on else self.ari.unmute
        await self._ari("muting", lambda: action(call.channel_id, "out"))
        await self._set_flag(call.call_id, "muted", on)
        return await self.state(user)

    async def _set_flag(self, call_id: str, name: str, on: bool) -> None:
        key = self._flags_key(call_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            # One statement each: the pipeline's commands are typed as the client's (an int),
            # though they return the pipeline.
            pipe.hset(key, name, "1" if on else "0")
            pipe.expire(key, LAST_CALL_TTL_S)
            await pipe.execute()

    async def _ari(self, what: str, command: Callable[[], Awaitable[None]], *, gone_ok: bool = False,
                   gone: tuple[str, str] = ("the call has just ended", "通话刚刚结束")) -> None:
        try:
            await command()
        except AriError as exc:
            if gone_ok and exc.status in (404, 409):
                return
            log.warning("desktop: %s failed: %s", what, exc)
            if exc.status in (404, 409, 412):
                raise _agent_state(*gone) from None
            raise Refused(502, "pbx_unavailable", "the telephone system did not respond; try again",
                          "电话系统无响应，请重试") from None

    # ----------------------------------------------------------------- transfers

    async def correct_jurisdiction(self, user: DesktopUser, code: str) -> dict[str, Any]:
        """The agent learned where the caller really is (the IVR went by the number, or the
        caller named the wrong city): the call, its record and the tickets made from it from
        now on belong to ``code``. Statistics and the platform's handling organisation follow."""
        self._known_jurisdiction(code, "jurisdiction")
        agent_id = _agent_id(user)
        call = await self.live_call(user, AgentState.ON_CALL)

        async def reaction(state: State, flow_call: Call) -> State:
            if not isinstance(state, Connected) or flow_call.data.agent_id != agent_id:
                raise _agent_state("the call is no longer connected to you", "该通话已不在您这里")
            flow_call.data.jurisdiction = code
            await flow_call.svc.persist(flow_call.data)  # the record and the live state, now
            return state

        await self._act(call.channel_id, reaction)
        log.info("call %s: agent %s corrected the jurisdiction to %s", call.call_id, agent_id, code)
        return await self.state(user)

    def _known_jurisdiction(self, code: str, field_name: str) -> None:
        try:
            self.tree.get(code)
        except UnknownJurisdiction:
            raise Refused(422, "invalid", f"unknown jurisdiction {code}", f"辖区 {code} 不存在",
                          [Problem(field_name, "unknown", "辖区不存在", "no such jurisdiction")]) from None

    async def transfer_to_queue(self, user: DesktopUser, jurisdiction: str, line: str) -> dict[str, Any]:
        """The caller goes back into the queues of ``jurisdiction`` and ``line``, ahead of the
        callers who have not been served yet; the agent goes to wrap-up."""
        self._known_jurisdiction(jurisdiction, "queue.jurisdiction")
        if line not in LINE_OF_NUMBER.values():
            raise Refused(422, "invalid", f"unknown business line {line}", f"业务线 {line} 不存在",
                          [Problem("queue.line", "unknown", "业务线不存在",
                                   f"one of {', '.join(LINE_OF_NUMBER.values())}")])
        if not await self.engine.staffed(jurisdiction, line):
            raise Refused(409, "unstaffed", "nobody is logged in to that queue", "该队列无坐席登录")
        return await self._transfer(user, jurisdiction, line, f"transfer:queue:{jurisdiction}:{line}")

    async def transfer_to_agent(self, user: DesktopUser, target: str) -> dict[str, Any]:
        """Offer the call to another agent, who must be available and serve the call's line.

        The call is queued, first of all, at the target's home and line: the target gets it
        unless another agent of the same home is free and has waited longer (the queue engine
        has no offer to one named agent yet)."""
        other = await self.engine.agent(target)
        if other is None or other["state"] is not AgentState.AVAILABLE or target == _agent_id(user):
            raise _agent_state(f"agent {target} is not available", f"坐席 {target} 当前不可用")
        call = await self.live_call(user, AgentState.ON_CALL)
        data = await self.store.load(call.channel_id)
        line = data.business_line if data else ""
        if line not in other["lines"]:
            raise _agent_state(f"agent {target} does not serve the line {line}", f"坐席 {target} 不受理业务线 {line}")
        return await self._transfer(user, other["home"], line, f"transfer:agent:{target}")

    async def _transfer(self, user: DesktopUser, jurisdiction: str, line: str, step: str) -> dict[str, Any]:
        agent_id = _agent_id(user)
        call = await self.live_call(user, AgentState.ON_CALL)

        async def reaction(state: State, flow_call: Call) -> State:
            if not isinstance(state, Connected) or flow_call.data.agent_id != agent_id:
                raise _agent_state("the call is no longer connected to you", "该通话已不在您这里")
            return await self.queues.transfer(flow_call, agent_id, jurisdiction, line, step)

        await self._act(call.channel_id, reaction)
        return await self.state(user)

    async def _act(self, channel_id: str, reaction: Reaction) -> None:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.dispatcher.post(DesktopAction(type="DesktopAction", application=self.app_name, timestamp="",
                                           key=channel_id, reaction=reaction, done=done))
        try:
            taken = await asyncio.wait_for(done, ACTION_TIMEOUT_S)
        except TimeoutError:
            raise Refused(503, "busy", "the call is busy; try again", "通话处理中，请重试") from None
        if not taken:
            raise _agent_state("the call has just ended", "通话刚刚结束")

    # ----------------------------------------------------------------- tickets

    async def owned_call(self, user: DesktopUser, call_id: str) -> None:
        """Refuse unless ``call_id`` is (or was) this agent's call: offered to them (also when
        its caller hung up while it rang: the agent may have started its ticket), answered
        by them, or their last one."""
        agent_id = _agent_id(user)
        live = await self.engine.call(call_id)
        owner = live["agent_id"] if live else None
        if owner != agent_id and await self._was_offered(agent_id, call_id):
            return
        if owner is None:
            last = await self.redis.get(self._last_call_key(agent_id))
            if (last.decode() if isinstance(last, bytes) else last) == call_id:
                return
            record = await self.records.get(call_id)
            if record is None:
                raise Refused(404, "not_found", f"there is no call {call_id}", f"不存在通话 {call_id}")
            owner = record.agent_id
        if owner != agent_id:
            raise _forbidden("this call is not yours", "这不是您的通话")

    async def create_ticket(self, user: DesktopUser, call_id: str, fields: Mapping[str, Any],
                            ticket_id: str | None = None) -> Ticket:
        """A draft linked to the call, with what the call already says filled in.

        ``ticket_id`` (a UUID the page chose) makes creating idempotent: the page may send the
        same creation again when it never read the answer (it was closed or reloaded meanwhile,
        the network dropped); the ticket it created then gets these fields as a change instead
        of a second ticket being made."""
        await self.owned_call(user, call_id)
        changes = _flatten(fields)
        _no_linked_fields(changes)
        agent_id = _agent_id(user)
        if ticket_id is not None:
            again = await self._created_already(agent_id, ticket_id, call_id, changes)
            if again is not None:
                return again
        draft = {**await self._from_call(call_id), "agent_id": agent_id, **changes}
        try:
            return await self.tickets.create(draft, by=agent_id, ticket_id=ticket_id)
        except IntegrityError:
            # The same creation twice at once: the other one made it.
            again = await self._created_already(agent_id, ticket_id or "", call_id, changes)
            if again is None:
                raise
            return again

    async def _created_already(self, agent_id: str, ticket_id: str, call_id: str,
                               changes: dict[str, Any]) -> Ticket | None:
        try:
            ticket = await self.tickets.get(ticket_id)
        except TicketNotFound:
            return None
        if ticket.agent_id != agent_id or ticket.call_id != call_id:
            raise Refused(409, "conflict", "a ticket with this id exists already", "该编号的工单已存在")
        if ticket.status != "draft" or not changes:
            return ticket
        for _attempt in range(3):
            try:
                return await self.tickets.update(ticket_id, changes, by=agent_id, version=ticket.version)
            except TicketConflict:
                ticket = await self.tickets.get(ticket_id)
                if ticket.status != "draft":
                    return ticket
        raise Refused(409, "conflict", "the ticket was changed meanwhile: reload it and make your change again",
                      "工单已被修改，请刷新后重做修改")

    async def _call_data(self, call_id: str) -> Any:
        """The call's live state while it lasts, else its record (None when neither exists)."""
        live = await self.engine.call(call_id)
        data: Any = await self.store.load(live["channel_id"]) if live else None
        return data or await self.records.get(call_id)

    async def _from_call(self, call_id: str) -> dict[str, Any]:
        data = await self._call_data(call_id)
        draft: dict[str, Any] = {"channel": "hotline", "call_id": call_id}
        if data is None:
            return draft
        draft.update({"hotline_number": data.hotline_number, "business_line": data.business_line})
        if data.choice in ("complaint", "report", "consultation"):
            draft["case_type"] = data.choice
        if data.caller_phone and data.caller_phone.isdigit():
            draft["caller.phone"] = data.caller_phone
        if data.transcript:
            draft["ivr_transcript"] = data.transcript
        for key, value in (handling_org(data.jurisdiction) or {}).items():
            draft[f"handling.{key}"] = value
        return draft

    async def tickets_of_call(self, user: DesktopUser, call_id: str) -> list[Ticket]:
        await self.owned_call(user, call_id)
        return [t for t in await self.tickets.list_for_call(call_id) if t.agent_id == _agent_id(user)]

    async def drafts(self, user: DesktopUser) -> list[Ticket]:
        """The agent's own tickets still to finish (drafts, and cases the platform sent back),
        newest first. Only theirs: an agent never sees another's drafts."""
        return await self.tickets.drafts_of_agent(_agent_id(user), limit=DRAFTS_LISTED)

    def draft_item(self, ticket: Ticket) -> dict[str, Any]:
        """One line of the list of drafts: when the call came, who called (masked as everywhere
        in lists), the line and the first words of the complaint."""
        phone = ticket.caller_phone
        return {
            "id": ticket.id, "call_id": ticket.call_id, "status": ticket.status,
            "delivery_state": ticket.delivery_state, "case_type": ticket.case_type,
            "business_line": ticket.business_line,
            "caller": (phone if self.settings.show_full_number else mask_phone(phone)) if phone else None,
            "summary": (ticket.summary or "")[:DRAFT_PREVIEW] or None,
            "received_at": rfc3339(ticket.received_at), "created_at": rfc3339(ticket.created_at),
            "updated_at": rfc3339(ticket.updated_at),
        }

    async def phone_shown(self, ticket: Ticket) -> bool:
        """Whether the ticket's form shows the caller's number whole: always when configured so;
        else when an agent typed it (it is not the number the call came from, which agents see
        masked). Lists and logs mask it all the same."""
        if self.settings.show_full_number or not ticket.caller_phone:
            return True
        if not ticket.call_id:
            return False
        data = await self._call_data(ticket.call_id)
        return data is not None and (data.caller_phone or "") != ticket.caller_phone

    async def ticket(self, user: DesktopUser, ticket_id: str) -> Ticket:
        try:
            ticket = await self.tickets.get(ticket_id)
        except TicketNotFound:
            raise Refused(404, "not_found", f"there is no ticket {ticket_id}", f"不存在工单 {ticket_id}") from None
        if ticket.agent_id != _agent_id(user):
            raise _forbidden("this ticket is not yours", "这不是您的工单")
        return ticket

    async def update_ticket(self, user: DesktopUser, ticket_id: str, version: int,
                            fields: Mapping[str, Any]) -> Ticket:
        ticket = await self.ticket(user, ticket_id)
        changes = _flatten(fields)
        _no_linked_fields(changes)
        if not self.settings.show_full_number and changes.get("caller.phone") == mask_phone(ticket.caller_phone):
            del changes["caller.phone"]  # the masked number the page was shown, sent back unchanged
        return await self.tickets.update(ticket_id, changes, by=_agent_id(user), version=version)

    async def validate_ticket(self, user: DesktopUser, ticket_id: str) -> list[Problem]:
        await self.ticket(user, ticket_id)
        return await self.tickets.validate(ticket_id)

    async def complete_ticket(self, user: DesktopUser, ticket_id: str, version: int) -> Ticket:
        await self.ticket(user, ticket_id)
        return await self.tickets.complete(ticket_id, by=_agent_id(user), version=version)


# --------------------------------------------------------------------------- helpers


def _agent_id(user: DesktopUser) -> str:
    if getattr(user, "role", None) != "agent" or not getattr(user, "agent_id", None):
        raise _forbidden("only agents use the desktop", "仅坐席可使用工作台")
    return str(user.agent_id)


def _agent_view(agent: dict[str, Any] | None) -> dict[str, Any]:
    if agent is None:
        return {"state": "offline", "reason": None, "since": None, "wrap_up_ends": None}
    state: AgentState = agent["state"]
    ends = from_ms(agent["wrap_up_until_ms"]) if state is AgentState.WRAP_UP else None
    return {"state": state.value, "reason": agent["reason"], "since": rfc3339(from_ms(agent["since_ms"])),
            "wrap_up_ends": rfc3339(ends)}


def _endpoint_view(phone: PhoneState) -> dict[str, Any]:
    return {"name": phone.endpoint, "state": phone.state, "since": rfc3339(from_ms(phone.since_ms))}


def _waited(data: Any) -> float:
    start = data.queued_at or data.started_at
    end = data.answered_at or data.ended_at or utcnow()
    return round(max(0.0, (end - start).total_seconds()), 1) if start else 0.0


def _flag(flags: Mapping[Any, Any], name: str) -> bool:
    value = flags.get(name.encode()) or flags.get(name)
    return value in (b"1", "1")


def _flatten(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Changes by contract path: ``{"respondent": {"name": ..}}`` and ``{"respondent.name": ..}``
    both become ``{"respondent.name": ..}`` (a group given as null stays: it clears the group)."""
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        if key in GROUPS and isinstance(value, Mapping):
            for sub, item in value.items():
                flat[f"{key}.{sub}"] = item
        else:
            flat[str(key)] = value
    return flat


def _no_linked_fields(changes: Mapping[str, Any]) -> None:
    linked = [path for path in LINKED_FIELDS if path in changes]
    if linked:
        raise Refused(422, "invalid", "the call and the agent of a ticket are set by the desktop",
                      "工单的通话与坐席由系统填写，不能修改",
                      [Problem(path, "read_only", "由系统填写，不能修改", "set by the desktop; cannot be changed")
                       for path in linked])


def ticket_fields(ticket: Ticket, *, show_phone: bool) -> dict[str, Any]:
    """Every field of the ticket by contract path, as the platform writes values (money as
    ``"199.00"``, dates ``YYYY-MM-DD``, times RFC 3339 in China time); empty ones are null."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        value = getattr(ticket, f.attr)
        if isinstance(value, Decimal):
            value = format_money(value)
        elif isinstance(value, datetime):
            value = format_datetime(value.astimezone(CHINA_TZ))
        elif isinstance(value, date):
            value = value.isoformat()
        out[f.path] = value
    if not show_phone and out.get("caller.phone"):
        out["caller.phone"] = mask_phone(out["caller.phone"])
    return out
