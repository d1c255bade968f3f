"""The desktop's and the wallboard's HTTP API and WebSockets, and their pages.

Views are thin: who may ask (``accounts.http``), what the body says (checked here, every
mistake named), then one call to the services. The services' refusals (:class:`Refused`,
the ticket service's errors) become the product's JSON problems in one place
(:func:`_refusals`). Each view's docstring says its part of the contract with the pages.

The pages (``agent_desktop/static``) are served at ``/`` (login), ``/desktop/`` and
``/wallboard/``, with their assets beside them; nothing under ``/api/``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from accounts.auth import check_websocket, require, require_scope, still_logged_in
from agent_desktop.monitor import MODES, MonitorService
from agent_desktop.notifier import DesktopNotifier, Outlet
from agent_desktop.services import BREAK_REASONS, DesktopService, Refused, rfc3339, ticket_fields
from agent_desktop.wallboard import WallboardService
from agent_desktop.wording import STATUS_WORDS, all_for_agents, unstorable, words
from core.jurisdictions import JurisdictionTree
from core.problems import Problem
from core.web import ApiError, Language, json_response, language, problem_item, read_json_object
from national.contract import UUID_RE
from tickets.deadlines import UnsetDeadline
from tickets.fields import BadChanges
from tickets.models import Ticket
from tickets.services import TicketConflict, TicketInvalid, TicketNotEditable, TicketNotFound, delivery_problems

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
MAX_BODY_BYTES = 64 * 1024
#: How often a long-lived WebSocket checks that its session has not ended (logout, disable).
SESSION_CHECK_S = 30.0
WS_HEARTBEAT_S = 30.0
#: Close code when the session behind a socket has ended (``accounts`` uses 4401 too).
WS_CLOSE_SESSION_ENDED = 4401

#: The views class a method view belongs to (DesktopViews, WallboardViews).
_Views = TypeVar("_Views")
MethodView = Callable[[_Views, web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, *, desktop: DesktopService, wallboard: WallboardService,
               monitor: MonitorService, notifier: DesktopNotifier, tree: JurisdictionTree,
               static_dir: Path = STATIC_DIR) -> None:
    """Register every desktop and wallboard endpoint, and the pages, on ``app``."""
    d = DesktopViews(desktop, notifier)
    w = WallboardViews(wallboard, monitor, notifier, tree)
    r = app.router
    r.add_get("/api/desktop/state", d.state, allow_head=False)
    r.add_post("/api/desktop/state", d.set_state)
    r.add_post("/api/desktop/queues/login", d.queues_login)
    r.add_post("/api/desktop/queues/logout", d.queues_logout)
    for action in ("answer", "hangup", "hold", "mute", "transfer", "jurisdiction"):
        r.add_post(f"/api/desktop/call/{action}", getattr(d, f"call_{action}"))
    r.add_post("/api/desktop/tickets", d.create_ticket)
    r.add_get("/api/desktop/tickets", d.tickets_of_call, allow_head=False)
    r.add_get("/api/desktop/drafts", d.drafts, allow_head=False)
    r.add_get("/api/desktop/tickets/{id}", d.ticket, allow_head=False)
    r.add_patch("/api/desktop/tickets/{id}", d.update_ticket)
    r.add_post("/api/desktop/tickets/{id}/validate", d.validate_ticket)
    r.add_post("/api/desktop/tickets/{id}/complete", d.complete_ticket)
    r.add_get("/api/desktop/ws", d.websocket, allow_head=False)
    r.add_get("/api/wallboard", w.board, allow_head=False)
    r.add_get("/api/wallboard/ws", w.websocket, allow_head=False)
    r.add_post("/api/wallboard/monitor", w.start_monitor)
    r.add_delete("/api/wallboard/monitor/{id}", w.stop_monitor)
    # Pages last: everything that is not under /api/ is a file of the static directory.
    r.add_get("/{path:(?!api/).*}", Pages(static_dir).serve)
    app.on_shutdown.append(notifier.close_sockets)


# --------------------------------------------------------------------------- refusals


def _refusals(view: MethodView[_Views]) -> MethodView[_Views]:
    """The services' refusals as JSON problems."""

    @functools.wraps(view)
    async def wrapped(self: _Views, request: web.Request) -> web.StreamResponse:
        try:
            return await view(self, request)
        except Refused as exc:
            raise ApiError(exc.status, exc.code, exc.message_en, exc.message_zh, errors=exc.problems) from None
        except TicketNotFound as exc:
            raise ApiError(404, "not_found", f"there is no ticket {exc.ticket_id}",
                           f"不存在工单 {exc.ticket_id}") from None
        except TicketConflict:
            raise ApiError(409, "conflict", "the ticket was changed meanwhile: reload it and make your change again",
                           "工单已被修改，请刷新后重做修改") from None
        except TicketNotEditable as exc:
            zh, en = words(STATUS_WORDS, exc.status)
            raise ApiError(409, "not_editable", f"the ticket is {en}: only a draft can be changed or submitted",
                           f"工单状态为“{zh}”，只有草稿可以修改或提交") from None
        except TicketInvalid as exc:
            raise ApiError(422, "invalid", f"the ticket breaks {len(exc.problems)} rule(s) of the national platform",
                           f"工单有 {len(exc.problems)} 处不符合全国平台的规则",
                           errors=all_for_agents(exc.problems)) from None
        except BadChanges as exc:
            raise ApiError(422, "invalid", "some fields cannot be stored: see the marked fields",
                           "部分字段无法保存，请查看标注的字段", errors=unstorable(exc.errors)) from None

    return wrapped


def _bad(field: str, en: str, zh: str) -> ApiError:
    return ApiError(400, "malformed", f"{field} {en}", f"{field} {zh}", errors=[Problem(field, "bad_value", zh, en)])


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(name, "is required (a non-empty string)", "必填（非空字符串）")
    return value.strip()


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if not isinstance(value, bool):
        raise _bad(name, "is required: true or false", "必填：true 或 false")
    return value


def _version(body: dict[str, Any]) -> int:
    value = body.get("version")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("version", "is required: the integer version of the ticket you changed",
                   "必填：您修改时看到的工单版本号（整数）")
    return value


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("fields", {})
    if not isinstance(value, dict):
        raise _bad("fields", "must be an object of ticket fields by contract path", "应为按字段路径给出的工单字段对象")
    return value


def ticket_json(ticket: Ticket, lang: Language, *, show_phone: bool) -> dict[str, Any]:
    """A ticket as the desktop's form reads it. ``deadlines.unset``: why a deadline is not set,
    as a code and its parameters that the page words (the note in words stays in the log)."""
    return {
        "id": ticket.id, "version": ticket.version, "status": ticket.status,
        "delivery_state": ticket.delivery_state, "platform_case_no": ticket.platform_case_no,
        "delivery_problems": [problem_item(p, lang) for p in all_for_agents(delivery_problems(ticket))],
        "deadlines": {"accept_by": _day(ticket.accept_by), "finish_by": _day(ticket.finish_by),
                      "verify_by": _day(ticket.verify_by), "unset": _unset(ticket.deadline_note)},
        "created_at": rfc3339(ticket.created_at), "updated_at": rfc3339(ticket.updated_at),
        "fields": ticket_fields(ticket, show_phone=show_phone),
    }


def _day(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _unset(note: str | None) -> dict[str, Any] | None:
    if not note:
        return None
    unset = UnsetDeadline.read(note)
    # A note of another kind (none is written today) is still said, without its words.
    return {"code": unset.code, **unset.params()} if unset else {"code": "other"}


# --------------------------------------------------------------------------- the desktop


class DesktopViews:
    def __init__(self, desktop: DesktopService, notifier: DesktopNotifier) -> None:
        self.desktop, self.notifier = desktop, notifier

    def _agent(self, request: web.Request) -> Any:
        return require(request, "agent")

    async def _body(self, request: web.Request) -> dict[str, Any]:
        return await read_json_object(request, limit=MAX_BODY_BYTES)

    @_refusals
    async def state(self, request: web.Request) -> web.Response:
        """``GET /api/desktop/state``: the agent's state, call card and phone."""
        return json_response(await self.desktop.state(self._agent(request)))

    @_refusals
    async def set_state(self, request: web.Request) -> web.Response:
        """``POST /api/desktop/state`` ``{"state": "available"}`` or ``{"state": "break", "reason": ...}``."""
        user = self._agent(request)
        body = await self._body(request)
        state = body.get("state")
        if state not in ("available", "break"):
            raise _bad("state", "must be \"available\" or \"break\"", "应为 \"available\" 或 \"break\"")
        reason = body.get("reason")
        if state == "break" and reason not in BREAK_REASONS:
            raise _bad("reason", f"must be one of {', '.join(BREAK_REASONS)} for a break",
                       f"小休原因应为 {'、'.join(BREAK_REASONS)} 之一")
        return json_response(await self.desktop.set_state(user, state, reason))

    @_refusals
    async def queues_login(self, request: web.Request) -> web.Response:
        return json_response(await self.desktop.login(self._agent(request)))

    @_refusals
    async def queues_logout(self, request: web.Request) -> web.Response:
        return json_response(await self.desktop.logout(self._agent(request)))

    @_refusals
    async def call_answer(self, request: web.Request) -> web.Response:
        return json_response(await self.desktop.answer(self._agent(request)))

    @_refusals
    async def call_hangup(self, request: web.Request) -> web.Response:
        return json_response(await self.desktop.hangup(self._agent(request)))

    @_refusals
    async def call_hold(self, request: web.Request) -> web.Response:
        user = self._agent(request)
        return json_response(await self.desktop.hold(user, _boolean(await self._body(request), "on")))

    @_refusals
    async def call_mute(self, request: web.Request) -> web.Response:
        user = self._agent(request)
        return json_response(await self.desktop.mute(user, _boolean(await self._body(request), "on")))

    @_refusals
    async def call_jurisdiction(self, request: web.Request) -> web.Response:
        """``{"code": "330106"}``: the agent corrects where the call belongs."""
        user = self._agent(request)
        code = _string(await self._body(request), "code")
        return json_response(await self.desktop.correct_jurisdiction(user, code))

    @_refusals
    async def call_transfer(self, request: web.Request) -> web.Response:
        """``{"queue": {"jurisdiction", "line"}}`` or ``{"agent_id"}``."""
        user = self._agent(request)
        body = await self._body(request)
        if ("queue" in body) == ("agent_id" in body):
            raise ApiError(400, "malformed", "send either queue {jurisdiction, line} or agent_id",
                           "请给出 queue {jurisdiction, line} 或 agent_id 之一")
        if "agent_id" in body:
            return json_response(await self.desktop.transfer_to_agent(user, _string(body, "agent_id")))
        queue = body["queue"]
        if not isinstance(queue, dict):
            raise _bad("queue", "must be an object {jurisdiction, line}", "应为对象 {jurisdiction, line}")
        jurisdiction, line = _string(queue, "jurisdiction"), _string(queue, "line")
        return json_response(await self.desktop.transfer_to_queue(user, jurisdiction, line))

    async def _ticket(self, ticket: Ticket, request: web.Request, status: int = 200) -> web.Response:
        return json_response(await self._ticket_json(ticket, language(request)), status=status)

    async def _ticket_json(self, ticket: Ticket, lang: Language) -> dict[str, Any]:
        return ticket_json(ticket, lang, show_phone=await self.desktop.phone_shown(ticket))

    @_refusals
    async def create_ticket(self, request: web.Request) -> web.Response:
        """``POST /api/desktop/tickets`` ``{"call_id", "fields", "id"?}`` → 201, a draft linked to the
        call. ``id``: a UUID the page chose, so that sending the same creation again (the page
        never read the answer) changes that ticket instead of making another."""
        user = self._agent(request)
        body = await self._body(request)
        ticket_id = body.get("id")
        if ticket_id is not None and (not isinstance(ticket_id, str) or not UUID_RE.fullmatch(ticket_id)):
            raise _bad("id", "must be a UUID the page chose for the new ticket", "应为页面为新工单生成的 UUID")
        ticket = await self.desktop.create_ticket(user, _string(body, "call_id"), _fields(body),
                                                  ticket_id.lower() if ticket_id else None)
        return await self._ticket(ticket, request, status=201)

    @_refusals
    async def tickets_of_call(self, request: web.Request) -> web.Response:
        """``GET /api/desktop/tickets?call_id=``: the agent's tickets of one of their calls."""
        user = self._agent(request)
        call_id = request.query.get("call_id", "").strip()
        if not call_id:
            raise _bad("call_id", "is required as a query parameter", "为必填查询参数")
        lang = language(request)
        tickets = await self.desktop.tickets_of_call(user, call_id)
        return json_response({"tickets": [await self._ticket_json(t, lang) for t in tickets]})

    @_refusals
    async def drafts(self, request: web.Request) -> web.Response:
        """``GET /api/desktop/drafts``: the agent's own tickets still to finish, newest first
        (``{"drafts": [{id, call_id, status, delivery_state, case_type, business_line, caller
        (masked), summary (its first words), received_at, created_at, updated_at}]}``)."""
        user = self._agent(request)
        return json_response({"drafts": [self.desktop.draft_item(t) for t in await self.desktop.drafts(user)]})

    @_refusals
    async def ticket(self, request: web.Request) -> web.Response:
        user = self._agent(request)
        return await self._ticket(await self.desktop.ticket(user, request.match_info["id"]), request)

    @_refusals
    async def update_ticket(self, request: web.Request) -> web.Response:
        """``PATCH`` ``{"version", "fields"}``; 409 when the ticket changed since that version."""
        user = self._agent(request)
        body = await self._body(request)
        ticket = await self.desktop.update_ticket(user, request.match_info["id"], _version(body), _fields(body))
        return await self._ticket(ticket, request)

    @_refusals
    async def validate_ticket(self, request: web.Request) -> web.Response:
        """The platform's rules on the ticket as it is: ``{"problems": [...]}`` (empty: it would pass)."""
        user = self._agent(request)
        problems = await self.desktop.validate_ticket(user, request.match_info["id"])
        lang = language(request)
        return json_response({"problems": [problem_item(p, lang) for p in all_for_agents(problems)]})

    @_refusals
    async def complete_ticket(self, request: web.Request) -> web.Response:
        """``{"version"}``: completed and queued for the platform, or 422 with every problem."""
        user = self._agent(request)
        body = await self._body(request)
        ticket = await self.desktop.complete_ticket(user, request.match_info["id"], _version(body))
        return await self._ticket(ticket, request)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /api/desktop/ws``: ``state`` at once, then the agent's live messages."""
        user = check_websocket(request)
        if user.role != "agent" or not user.agent_id:
            require(request, "agent")  # the 403 answer, before the upgrade
        ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_S)
        await ws.prepare(request)
        outlet = await self.notifier.attach_agent(user, ws)
        await _hold_open(request, ws, outlet, self.notifier)
        return ws


# --------------------------------------------------------------------------- the wallboard


class WallboardViews:
    def __init__(self, wallboard: WallboardService, monitor: MonitorService, notifier: DesktopNotifier,
                 tree: JurisdictionTree) -> None:
        self.wallboard, self.monitor, self.notifier, self.tree = wallboard, monitor, notifier, tree

    def _node(self, request: web.Request, user: Any) -> str:
        code = request.query.get("jurisdiction", "").strip() or user.jurisdiction
        if code not in self.tree:
            raise ApiError(404, "not_found", f"there is no jurisdiction {code}", f"不存在辖区 {code}",
                           errors=[Problem("jurisdiction", "unknown", "辖区不存在", "no such jurisdiction")])
        require_scope(user, code, self.tree)
        return code

    async def board(self, request: web.Request) -> web.Response:
        """``GET /api/wallboard?jurisdiction=CODE`` (default: the user's own)."""
        user = require(request, "supervisor", "admin")
        node = self._node(request, user)
        root = self.wallboard.scope_root(user.role, user.jurisdiction)
        return json_response(await self.wallboard.body(node, root))

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /api/wallboard/ws?jurisdiction=CODE``: the board at once, then every update."""
        user = check_websocket(request)
        require(request, "supervisor", "admin")
        node = self._node(request, user)
        ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_S)
        await ws.prepare(request)
        outlet = await self.notifier.attach_wallboard(ws, node, self.wallboard.scope_root(user.role, user.jurisdiction))
        await _hold_open(request, ws, outlet, self.notifier)
        return ws

    @_refusals
    async def start_monitor(self, request: web.Request) -> web.Response:
        """``{"call_id", "mode": "listen|whisper|barge"}`` → ``{"monitor_id"}``; the supervisor's phone rings."""
        user = require(request, "supervisor", "admin")
        body = await read_json_object(request, limit=MAX_BODY_BYTES)
        call_id = _string(body, "call_id")
        mode = body.get("mode")
        if mode not in MODES:
            raise _bad("mode", f"must be one of {', '.join(MODES)}", f"应为 {'、'.join(MODES)} 之一")
        require_scope(user, await self.monitor.agent_home(call_id), self.tree)
        return json_response({"monitor_id": await self.monitor.start(user, call_id, mode)})

    @_refusals
    async def stop_monitor(self, request: web.Request) -> web.Response:
        user = require(request, "supervisor", "admin")
        await self.monitor.stop(user, request.match_info["id"])
        return web.Response(status=204)


async def _hold_open(request: web.Request, ws: web.WebSocketResponse, outlet: Outlet,
                     notifier: DesktopNotifier) -> None:
    """Keep the socket until the page or the server closes it, or the session ends."""
    watch = asyncio.get_running_loop().create_task(_session_watch(request, ws), name="desktop-session-watch")
    try:
        async for _message in ws:
            pass  # pages only listen; aiohttp answers pings and close frames
    finally:
        watch.cancel()
        await notifier.detach(outlet)


async def _session_watch(request: web.Request, ws: web.WebSocketResponse) -> None:
    while not ws.closed:
        await asyncio.sleep(SESSION_CHECK_S)
        if not await still_logged_in(request):
            await ws.close(code=WS_CLOSE_SESSION_ENDED, message=b"session ended")
            return


# --------------------------------------------------------------------------- the pages


class Pages:
    """Files of the static directory; a directory serves its ``index.html``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        found = await asyncio.to_thread(self._locate, rel)
        if found is None:
            raise ApiError(404, "not_found", "there is nothing at this path", "该路径不存在")
        if found.name == "index.html" and rel and not rel.endswith("/") and not rel.endswith("index.html"):
            raise web.HTTPMovedPermanently(f"/{rel}/")  # so that the page's relative links resolve
        # Revalidated every time (ETag, Last-Modified): a new release reaches browsers at once.
        return web.FileResponse(found, headers={"Cache-Control": "no-cache"})

    def _locate(self, rel: str) -> Path | None:
        if any(part.startswith(".") for part in rel.split("/")):
            return None
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root):
            return None
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_file() else None
