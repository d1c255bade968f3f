"""The supervisors' wallboard: live figures, agents, tickets near their deadline and the day's
calls for one node of the jurisdiction tree and its children.

Reading and rendering are separate: :meth:`WallboardService.facts` reads everything once (the
latest published queue figures, every logged-in agent, and, cached for a few seconds, the SQL
parts), and :meth:`WallboardService.render` cuts one node out of it without any I/O. The
notifier reads once and renders every node that has a screen open, so a hundred supervisors
cost one read.

Subtree figures are sums of the queues whose jurisdiction lies within the node. A call that
overflowed sits in the queue of each level it reached, and is counted in each (as the queue
figures count it, see ``queues/figures.py``): a province's "waiting" includes its cities'
callers who also wait at the province once. Agents are counted once each, by their home.

The day by hour (China time) counts what the live figures count, so that the two agree for
the same calls: a call is *offered* at the jurisdiction it was queued for, in the hour it was
queued; *answered* at the home of the agent who answered it (the queue whose agent answered,
as the queues count it: a Hangzhou caller answered by a Zhejiang agent after overflowing is a
Zhejiang answer), in the hour it was answered; *abandoned* at its jurisdiction in the hour the
caller gave up. The live "answered" is the last 60 minutes, the chart is the whole day.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.models import User
from agent_desktop.services import rfc3339
from callrecords.models import CallRecord
from core.jurisdictions import NATIONAL, JurisdictionTree, Level
from core.vocabulary import CHINA_TZ
from queues.engine import AgentState, QueueEngine
from queues.figures import THRESHOLDS_S, snapshot
from tickets.deadlines import CalendarNotPublished, WorkingCalendar
from tickets.models import Status, Ticket

log = logging.getLogger(__name__)

#: Published figures older than this are not trusted: a fresh snapshot is read instead.
FIGURES_STALE_MS = 5_000
DEADLINES_TTL_S = 30.0
DAY_TTL_S = 10.0
NEAR_DEADLINE_LIMIT = 200
#: Farther than this from its due day, a ticket's working days are not counted one by one.
COUNT_DAYS_MAX = 400
AGENT_STATES = tuple(s.value for s in AgentState if s is not AgentState.OFFLINE)
#: Calls that started this long before midnight may still be answered or abandoned today.
DAY_LOOKBACK_H = 6
OFFERED, ANSWERED, ABANDONED = 0, 1, 2
#: Municipalities: their map shows the districts (counties of the city <pp>0100) as regions.
MUNICIPALITIES = frozenset({"110000", "120000", "310000", "500000"})


class AgentDirectory(Protocol):
    """Display names of agents (``accounts``; a missing one shows the agent id)."""

    async def display_names(self, agent_ids: Collection[str]) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class AgentRow:
    agent_id: str
    display_name: str
    home: str
    state: str
    since: datetime | None
    call_id: str | None


@dataclass(frozen=True, slots=True)
class DeadlineRow:
    ticket_id: str
    case_type: str | None
    kind: str
    due: date
    working_days_left: int | None
    #: Where the ticket is handled: a GB/T 2260 code or a station code.
    jurisdiction: str
    #: What a supervisor knows the ticket by: the platform's case number once it has one, and
    #: the business complained about (the ticket id means nothing to a person).
    case_no: str | None = None
    respondent: str | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the wallboard shows, read at one moment."""

    at_ms: int
    queues: list[dict[str, Any]]
    agents: list[AgentRow]
    deadlines: list[DeadlineRow]
    #: jurisdiction -> 24 hours (China time) of [offered, answered, abandoned], each counted
    #: where and when the module's docstring says
    day: dict[str, list[list[int]]]


class WallboardService:
    def __init__(self, *, redis: Redis, queue_prefix: str, engine: QueueEngine, tree: JurisdictionTree,
                 directory: AgentDirectory, sessions: async_sessionmaker[AsyncSession], calendar: WorkingCalendar,
                 warning_days: int, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self.redis, self.queue_prefix, self.engine, self.tree = redis, queue_prefix, engine, tree
        self.directory, self.sessions, self.calendar = directory, sessions, calendar
        self.warning_days, self.clock_ms = warning_days, clock_ms
        self._figures: dict[str, Any] | None = None
        #: How long each SQL part is reused (seconds): deadlines move by days, the day's chart by calls.
        self.ttl_s = {"deadlines": DEADLINES_TTL_S, "day": DAY_TTL_S}
        self._cached: dict[str, tuple[float, Any]] = {}
        self._sql_lock = asyncio.Lock()
        self._ancestry: dict[str, frozenset[str]] = {}
        #: When the newest agent event arrived (ms): a render it caused carries this time.
        self.agents_changed_ms = 0

    # ----------------------------------------------------------------- reading

    def set_figures(self, figures: dict[str, Any]) -> None:
        """The latest snapshot published on ``<prefix>:queues:figures``."""
        if self._figures is None or figures.get("at_ms", 0) >= self._figures.get("at_ms", 0):
            self._figures = figures

    async def facts(self) -> Facts:
        figures = await self._current_figures()
        agents = await self._agents()
        deadlines = await self._cached_sql("deadlines", self._near_deadline)
        day = await self._cached_sql("day", self._day)
        at_ms = max(int(figures.get("at_ms", 0)), self.agents_changed_ms)
        return Facts(at_ms, list(figures.get("queues", [])), agents, deadlines, day)

    async def _current_figures(self) -> dict[str, Any]:
        now = self.clock_ms()
        if self._figures is None or now - int(self._figures.get("at_ms", 0)) > FIGURES_STALE_MS:
            # Nothing published lately (the queues run in another process that is down?):
            # read the queues ourselves rather than show old numbers.
            self.set_figures(await snapshot(self.redis, self.queue_prefix, now))
        assert self._figures is not None
        return self._figures

    async def _agents(self) -> list[AgentRow]:
        ids = await self.engine.logged_in()
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hmget(self.engine.key("agent", agent_id), "home", "state", "since", "call")
            rows = await pipe.execute()
        names = await self.directory.display_names(ids) if ids else {}
        agents = []
        # One reply per command sent: as many as there are agents.
        for agent_id, (home, state, since, call) in zip(ids, rows, strict=True):
            state = _s(state)
            if state not in AGENT_STATES or not home:
                continue  # logged out between the two reads
            since_ms = int(_s(since)) if since else None
            agents.append(AgentRow(agent_id, names.get(agent_id) or agent_id, _s(home), state,
                                   datetime.fromtimestamp(since_ms / 1000, UTC) if since_ms else None,
                                   _s(call) or None))
        return agents

    async def _cached_sql(self, name: str, read: Callable[[], Any]) -> Any:
        async with self._sql_lock:  # one reader refreshes; the others wait for its result
            at, value = self._cached.get(name, (0.0, None))
            now = time.monotonic()
            if value is None or now - at > self.ttl_s[name]:
                value = await read()
                self._cached[name] = (now, value)
            return value

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock_ms() / 1000, CHINA_TZ).date()

    async def _near_deadline(self) -> list[DeadlineRow]:
        today = self.today()
        cutoff = self._warning_cutoff(today)
        handling = (Ticket.status.in_([Status.ACCEPTED.value, Status.TRANSFERRED.value]))
        query = (select(Ticket.id, Ticket.case_type, Ticket.status, Ticket.accept_by, Ticket.finish_by,
                        Ticket.verify_by, Ticket.handling_region, Ticket.handling_station, Ticket.platform_case_no,
                        Ticket.respondent_name)
                 .where(or_(and_(Ticket.status == Status.COMPLETED.value, Ticket.accept_by <= cutoff),
                            and_(handling, or_(Ticket.finish_by <= cutoff, Ticket.verify_by <= cutoff))))
                 .limit(NEAR_DEADLINE_LIMIT * 5))
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        found = [row for row in (self._deadline(r, today) for r in rows) if row is not None]
        found.sort(key=lambda d: (d.due, d.ticket_id))
        return found[:NEAR_DEADLINE_LIMIT]

    def _deadline(self, row: Any, today: date) -> DeadlineRow | None:
        if row.status == Status.COMPLETED.value:
            kind, due = "accept_by", row.accept_by
        else:
            kind, due = ("finish_by", row.finish_by) if row.finish_by else ("verify_by", row.verify_by)
        if due is None or not row.handling_region:
            return None
        code = row.handling_region
        if row.handling_station:
            station = f"{row.handling_region}-{row.handling_station[-2:]}"
            code = station if station in self.tree else code
        return DeadlineRow(row.id, row.case_type, kind, due, self._working_days_left(today, due), code,
                           row.platform_case_no, row.respondent_name)

    def _warning_cutoff(self, today: date) -> date:
        if self.warning_days < 1:
            return today
        try:
            return self.calendar.add_working_days(today, self.warning_days)
        except CalendarNotPublished:
            return today + timedelta(days=self.warning_days * 7 // 5 + 2)  # roughly, never too short

    def _working_days_left(self, today: date, due: date) -> int | None:
        """Working days from today to the due day: 0 on the day, negative once overdue."""
        if abs((due - today).days) > COUNT_DAYS_MAX:
            return None
        sign, start, end = (1, today, due) if due >= today else (-1, due, today)
        try:
            return sign * sum(1 for n in range(1, (end - start).days + 1)
                              if self.calendar.is_workday(start + timedelta(days=n)))
        except CalendarNotPublished:
            return None

    async def _day(self) -> dict[str, list[list[int]]]:
        today = self.today()
        start = datetime.combine(today, clock_time(0), CHINA_TZ).astimezone(UTC)
        # started_at is indexed; a call queued after midnight started at most minutes before it,
        # and one answered or abandoned after midnight was queued at most hours before.
        query = (select(CallRecord.jurisdiction, CallRecord.queued_at, CallRecord.answered_at, CallRecord.ended_at,
                        CallRecord.outcome, User.jurisdiction)
                 .outerjoin(User, User.agent_id == CallRecord.agent_id)
                 .where(CallRecord.started_at >= start - timedelta(hours=DAY_LOOKBACK_H),
                        CallRecord.queued_at.is_not(None), CallRecord.jurisdiction.is_not(None)))
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        day: dict[str, list[list[int]]] = {}

        def count(jurisdiction: str, at: datetime, index: int) -> None:
            if at >= start:
                hour = at.astimezone(CHINA_TZ).hour
                day.setdefault(jurisdiction, [[0, 0, 0] for _ in range(24)])[hour][index] += 1

        for jurisdiction, queued_at, answered_at, ended_at, outcome, agent_home in rows:
            # The query leaves out rows without either; the columns may hold None in general.
            if jurisdiction is None or queued_at is None:
                continue
            count(jurisdiction, queued_at, OFFERED)
            if answered_at is not None:
                # An agent no longer in the accounts: where the call was queued, the best we know.
                count(agent_home or jurisdiction, answered_at, ANSWERED)
            if outcome == "abandoned_in_queue":
                count(jurisdiction, ended_at or queued_at, ABANDONED)
        return day

    # ----------------------------------------------------------------- rendering

    def scope_root(self, role: str, jurisdiction: str) -> str:
        """Where a user's breadcrumb starts: everything for an admin, else their own node."""
        return NATIONAL if role == "admin" else jurisdiction

    def render(self, facts: Facts, node: str, root: str) -> dict[str, Any]:
        """The wallboard body of ``node`` for a user whose scope starts at ``root``."""
        chain = [j.code for j in self.tree.chain(node)]
        path = chain[: chain.index(root) + 1] if root in chain else chain
        agents = [a for a in facts.agents if self.within(a.home, node)]
        return {
            "node": self._node(node),
            "path": [self._node(code) for code in reversed(path)],
            "figures": self._figures_of(facts, node),
            "children": [{**self._node(c.code), "figures": self._figures_of(facts, c.code)}
                         for c in self.tree.children(node)],
            "agents": [{"agent_id": a.agent_id, "display_name": a.display_name, "jurisdiction": a.home,
                        "jurisdiction_name": self.tree.get(a.home).name if a.home in self.tree else a.home,
                        "state": a.state, "since": rfc3339(a.since), "call_id": a.call_id}
                       for a in sorted(agents, key=lambda a: (AGENT_STATES.index(a.state), a.agent_id))],
            "near_deadline": [{"ticket_id": d.ticket_id, "case_type": d.case_type, "deadline_kind": d.kind,
                               "due": d.due.isoformat(), "working_days_left": d.working_days_left,
                               "case_no": d.case_no, "respondent": d.respondent}
                              for d in facts.deadlines if self.within(d.jurisdiction, node)],
            "day": self._day_of(facts, node),
            "regions": [{**self._node(code), "figures": self._figures_of(facts, code)}
                        for code in self.map_regions(node)],
        }

    def map_regions(self, node: str) -> list[str]:
        """The jurisdictions the wallboard's map draws for ``node`` (none below a province but
        a municipality's city): the provinces for the country, a province's cities, except
        that a municipality's districts and the counties a province administers directly (GB/T
        2260's virtual city <pp>9000) are regions of their own, as on the map."""
        level = self.tree.get(node).level
        if level is Level.NATIONAL:
            return [p.code for p in self.tree.children(node)]
        if level is Level.CITY and self.tree.get(node).parent in MUNICIPALITIES:
            return [c.code for c in self.tree.children(node)]
        if level is not Level.PROVINCE:
            return []
        codes = []
        for city in self.tree.children(node):
            if node in MUNICIPALITIES or city.is_virtual_city:
                codes += [c.code for c in self.tree.children(city.code)]
            else:
                codes.append(city.code)
        return codes

    def _node(self, code: str) -> dict[str, str]:
        j = self.tree.get(code)
        return {"code": j.code, "name": j.name, "level": j.level.name.lower()}

    def within(self, code: str, node: str) -> bool:
        """``code`` is ``node`` or below it (codes the tree no longer knows are nowhere)."""
        ancestry = self._ancestry.get(code)
        if ancestry is None:
            ancestry = frozenset(j.code for j in self.tree.chain(code)) if code in self.tree else frozenset()
            self._ancestry[code] = ancestry
        return node in ancestry

    def _figures_of(self, facts: Facts, node: str) -> dict[str, Any]:
        queues = [q for q in facts.queues if self.within(q["jurisdiction"], node)]
        answered = sum(q["answered"] for q in queues)
        abandoned = sum(q["abandoned"] for q in queues)
        agents = dict.fromkeys(AGENT_STATES, 0)
        for a in facts.agents:
            if self.within(a.home, node):
                agents[a.state] += 1
        return {
            "waiting": sum(q["waiting"] for q in queues),
            "longest_wait_s": max((q["longest_wait_s"] for q in queues), default=0.0),
            "answered": answered,
            "answered_within": {str(t): sum(q["answered_within"].get(str(t), 0) for q in queues)
                                for t in THRESHOLDS_S},
            "abandoned": abandoned,
            "abandon_rate": round(abandoned / (answered + abandoned), 3) if answered + abandoned else 0.0,
            "agents": agents,
        }

    def _day_of(self, facts: Facts, node: str) -> list[dict[str, int]]:
        hours = [[0, 0, 0] for _ in range(24)]
        for code, counts in facts.day.items():
            if self.within(code, node):
                for hour, (offered, answered, abandoned) in enumerate(counts):
                    hours[hour][0] += offered
                    hours[hour][1] += answered
                    hours[hour][2] += abandoned
        return [{"hour": h, "offered": o, "answered": a, "abandoned": x} for h, (o, a, x) in enumerate(hours)]

    async def body(self, node: str, root: str) -> dict[str, Any]:
        return self.render(await self.facts(), node, root)


def _s(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
