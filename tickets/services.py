"""The ticket service: what agents and the intake API do to tickets, one transaction each.

Every method either does all it says or nothing: the ticket, its history, its audit rows and
the outbox row that tells the platform are written in one transaction, so a case is never
"completed here" without being queued for the platform, nor queued without being completed.

Concurrency is optimistic: a change names the ``version`` of the ticket it was made on, and
a change made on an older version is refused with :class:`TicketConflict` (the database
checks it too, ``UPDATE ... WHERE version = :seen``, so two processes cannot both win).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.problems import Problem
from core.vocabulary import CHINA_TZ, utcnow
from national.contract import UUID_RE, check_step_order, format_datetime, validate_case, validate_progress
from tickets.deadlines import CalendarNotPublished, UnsetDeadline, WorkingCalendar
from tickets.fields import BY_PATH, BadChanges, Field, audit_display, audit_text, parse_changes
from tickets.models import DeliveryState, Status, Ticket, TicketAudit, TicketStatusChange
from tickets.payload import case_payload, progress_payload

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Who the delivery worker's changes are recorded as.
PLATFORM = "platform"
#: Who links a call's recording to its tickets (in the audit trail).
RECORDINGS = "recordings"
#: Tries of a change that names no version (progress, delivery) when another writer got in
#: first; each try starts from the ticket as it is then.
_RETRIES = 3


class OutboxWriter(Protocol):
    """Queues a document in the caller's transaction. ``False``: not queued, because a row
    with this key is already on its way or delivered (``None``: the writer cannot tell)."""

    async def enqueue(self, session: AsyncSession, *, kind: str, key: str, body: dict[str, Any],
                      ticket_id: str | None = None) -> bool | None: ...


class HoldingOutbox(OutboxWriter, Protocol):
    """An outbox that can hold a case until its call's recording is stored."""

    async def enqueue(self, session: AsyncSession, *, kind: str, key: str, body: dict[str, Any],
                      ticket_id: str | None = None, held: bool = False) -> bool | None: ...

    async def held_keys(self, session: AsyncSession, *, kind: str, keys: Iterable[str]) -> set[str]: ...

    async def release_held(self, session: AsyncSession, *, kind: str, key: str,
                           body: dict[str, Any] | None = None) -> bool: ...


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class RecordingRef:
    """A stored recording of a call, as a ticket carries it to the platform (``Case.recording``)."""

    recording_id: str
    sha256: str
    duration_s: float
    #: The agent who talked in this segment of the call (a transfer makes several).
    agent_id: str | None


#: The stored recordings of a call, first segment first (``recordings.index``).
RecordingsOf = Callable[[str], Awaitable[Sequence[RecordingRef]]]


def recording_for(ticket: Ticket, refs: Sequence[RecordingRef]) -> RecordingRef | None:
    """The segment a ticket is about: the one its agent talked in, else the call's first."""
    if not refs:
        return None
    return next((r for r in refs if ticket.agent_id and r.agent_id == ticket.agent_id), refs[0])


class TicketError(Exception):
    """Base of the ticket service's own errors."""


class TicketNotFound(TicketError, LookupError):
    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {ticket_id}")


class TicketExists(TicketError):
    """A ticket with this id exists already (an intake client sending its case again)."""

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"ticket {ticket_id} exists already")


class TicketConflict(TicketError):
    """The ticket changed since the version the change was made on: reload and redo."""

    def __init__(self, ticket_id: str, seen: int | None, current: int | None) -> None:
        self.ticket_id, self.seen, self.current = ticket_id, seen, current
        now = f"is at version {current}" if current is not None else "was changed by someone else meanwhile"
        on = f" but the change was made on version {seen}" if seen is not None else ""
        super().__init__(f"ticket {ticket_id} {now}{on}: reload it and apply the change again")


class TicketNotEditable(TicketError):
    """Only drafts are edited and completed: a completed case is what the platform has."""

    def __init__(self, ticket_id: str, status: str, action: str) -> None:
        self.ticket_id, self.status = ticket_id, status
        super().__init__(f"ticket {ticket_id} is {status}; only a draft can be {action}")


class CaseAlreadySent(TicketNotEditable):
    """A changed case whose earlier version the platform has (or is about to get): the
    platform cannot amend a case (no operation for it; the same ``case_id`` with another body
    is a ``409``), so the change is refused here rather than dropped without a word."""

    def __init__(self, ticket_id: str, platform_case_no: str | None) -> None:
        self.ticket_id, self.status, self.platform_case_no = ticket_id, Status.COMPLETED.value, platform_case_no
        if platform_case_no:
            where = f"the national platform already has this case as no. {platform_case_no}"
        else:
            where = "this case is already on its way to the national platform with its earlier content"
        TicketError.__init__(self, f"ticket {ticket_id}: {where}, and the platform cannot amend a case. "
                                   "Report further handling as a progress step (its note may say what changed), "
                                   "or open a related ticket for a new matter")


class TicketInvalid(TicketError):
    """The platform would refuse this: ``problems`` says where and why, in both languages."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        listed = "; ".join(f"{p.field or '(body)'}: {p.code} ({p.message_en})" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s): {listed}")


class StepOutOfOrder(TicketError):
    """A progress step that may not follow the ticket's earlier steps."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.message_en)


# --------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited change, for display: personal data masked unless asked for."""

    field: str
    old: str | None
    new: str | None
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    """Who created a ticket, and the values it was created with as its audit keeps them
    (field path -> JSON text), whatever was changed later."""

    by: str
    values: Mapping[str, str]

    def made_from(self, draft: Mapping[str, Any]) -> bool:
        """Whether creating a ticket from ``draft`` sets exactly these values: a client's
        retry of the request that created it (key order, blanks around text and ``"199"``
        against ``"199.00"`` make no difference; any other field or value does)."""
        try:
            changes = parse_changes(draft)
        except BadChanges:
            return False
        return _initial_values(changes) == dict(self.values)


def delivery_problems(ticket: Ticket) -> list[Problem]:
    """The platform's reasons for refusing the ticket's case (empty unless refused)."""
    return [Problem.from_dict(item) for item in ticket.delivery_problems or []]


# --------------------------------------------------------------------------- the service


class TicketService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: OutboxWriter, *,
                 clock: Callable[[], datetime] = utcnow, calendar: WorkingCalendar,
                 recordings_of: RecordingsOf | None = None,
                 recording_pending: Callable[[str], Awaitable[bool]] | None = None) -> None:
        if sessions.kw.get("expire_on_commit", True):
            # Tickets are handed back after their session closed; expired ones could not be read.
            raise ValueError("the ticket service needs sessions with expire_on_commit=False "
                             "(core.db.sessionmaker makes them)")
        self._sessions = sessions
        self._outbox = outbox
        self._clock = clock
        self._calendar = calendar
        #: The stored recordings of a call: a ticket of a call recorded already carries its recording.
        self._recordings_of = recordings_of
        #: Whether a call's recording is still running: its completed cases wait for it.
        self._recording_pending = recording_pending

    def follow_recordings(self, recordings_of: RecordingsOf,
                          recording_pending: Callable[[str], Awaitable[bool]] | None) -> None:
        """The recordings feature registers itself (it is built after tickets, and links its
        stored recordings to them): before any ticket is written."""
        self._recordings_of = recordings_of
        self._recording_pending = recording_pending

    # ----------------------------------------------------------------- editing

    async def create(self, draft: Mapping[str, Any], *, by: str, ticket_id: str | None = None) -> Ticket:
        """A new draft from whatever is known so far (every field may be missing)."""
        _check_actor(by)
        changes = parse_changes(draft)
        ticket_id = _new_id(ticket_id)
        now = self._clock()
        refs = await self._recordings(changes)
        async with self._sessions() as session, session.begin():
            ticket = await self._add_draft(session, ticket_id, changes, by=by, at=now)
            self._link(session, ticket, refs, at=now)
        return ticket

    async def link_recordings(self, call_id: str, refs: Sequence[RecordingRef]) -> list[str]:
        """The call's recordings were stored: its draft tickets carry theirs (:func:`recording_for`),
        with an audit row each; the ids of the tickets changed. A ticket already completed
        keeps what its case was sent with: the platform has no way to amend a case."""
        now = self._clock()
        linked: list[str] = []
        async with self._sessions() as session, session.begin():
            if refs:
                tickets = await session.scalars(select(Ticket).where(Ticket.call_id == call_id,
                                                                     Ticket.status == Status.DRAFT.value))
                for ticket in tickets:
                    if self._link(session, ticket, refs, at=now):
                        ticket.updated_at = now
                        linked.append(ticket.id)
            linked += await self._release_held(session, call_id, refs, at=now)
        return linked

    async def _release_held(self, session: AsyncSession, call_id: str, refs: Sequence[RecordingRef], *,
                            at: datetime) -> list[str]:
        """Cases completed during the call waited for this: they go now, with the recording
        when there is one (and as they are when the recording failed)."""
        if self._recording_pending is None:
            return []
        holding = cast(HoldingOutbox, self._outbox)
        completed = list(await session.scalars(select(Ticket).where(Ticket.call_id == call_id,
                                                                    Ticket.status != Status.DRAFT.value)))
        held = await holding.held_keys(session, kind="case", keys=[t.id for t in completed])
        released = []
        for ticket in (t for t in completed if t.id in held):
            if refs and self._link(session, ticket, refs, at=at):
                ticket.updated_at = at
            await session.flush()
            await holding.release_held(session, kind="case", key=ticket.id, body=case_payload(ticket))
            released.append(ticket.id)
        return released

    async def _recordings(self, changes: dict[Field, Any]) -> Sequence[RecordingRef]:
        call_id = changes.get(BY_PATH["call_id"])
        if (self._recordings_of is None or not isinstance(call_id, str)
                or changes.get(BY_PATH["recording.recording_id"])):
            return ()
        return await self._recordings_of(call_id)

    def _link(self, session: AsyncSession, ticket: Ticket, refs: Sequence[RecordingRef], *, at: datetime) -> bool:
        ref = recording_for(ticket, refs)
        if ref is None:
            return False
        changes = {BY_PATH["recording.recording_id"]: ref.recording_id, BY_PATH["recording.sha256"]: ref.sha256,
                   BY_PATH["recording.duration_s"]: ref.duration_s}
        return self._apply(session, ticket, changes, by=RECORDINGS, at=at)

    async def create_completed(self, draft: Mapping[str, Any], *, by: str, ticket_id: str) -> Ticket:
        """A new ticket completed at once, for a case that arrives whole (the intake API).

        One transaction: the draft, its completion and the queued case are written together
        or not at all, so a case the platform would refuse (:class:`TicketInvalid`, with every
        problem) leaves no draft behind for nobody to finish. Raises :class:`TicketExists`
        when a ticket with ``ticket_id`` exists, also when another request created it a
        moment ago (the database's primary key decides between two at once).
        """
        _check_actor(by)
        changes = parse_changes(draft)
        ticket_id = _new_id(ticket_id)
        now = self._clock()
        try:
            async with self._sessions() as session, session.begin():
                if await session.get(Ticket, ticket_id) is not None:
                    raise TicketExists(ticket_id)
                ticket = await self._add_draft(session, ticket_id, changes, by=by, at=now)
                self._finish(session, ticket, by=by, at=now)
                await session.flush()
                await self._queue_case(session, ticket)
        except IntegrityError:
            # Both passed the check above; the loser's INSERT met the winner's row.
            async with self._sessions() as session:
                if await session.get(Ticket, ticket_id) is not None:
                    raise TicketExists(ticket_id) from None
            raise
        _log_completed(ticket, by)
        return ticket

    def check_new(self, draft: Mapping[str, Any], *, ticket_id: str) -> list[Problem]:
        """Every problem the platform would find in the case of a ticket created now from
        ``draft``, read as it was sent: a value of the wrong type is a ``bad_type`` problem
        with the others, where :meth:`create` would stop at :class:`BadChanges`. A draft
        without ``received_at`` is received now, as :meth:`create` does."""
        now = self._clock()
        case = {**draft, "case_id": ticket_id}
        case.setdefault("received_at", format_datetime(now.astimezone(CHINA_TZ)))
        return validate_case(case, now=now, idempotency_key=ticket_id)

    async def update(self, ticket_id: str, changes: Mapping[str, Any], *, by: str, version: int) -> Ticket:
        """Change some fields of a draft; each changed field gets an audit row."""
        _check_actor(by)
        parsed = parse_changes(changes)
        now = self._clock()
        async with self._sessions() as session:
            async with session.begin():
                ticket = await self._editable(session, ticket_id, version, "edited")
                await self._check_related(session, ticket_id, parsed)
                if self._apply(session, ticket, parsed, by=by, at=now):
                    ticket.updated_at = now
                await _flush(session, ticket_id, version)
        return ticket

    async def validate(self, ticket_id: str) -> list[Problem]:
        """Every problem the platform would find in this ticket's case, right now."""
        async with self._sessions() as session:
            ticket = await _load(session, ticket_id)
            return validate_case(case_payload(ticket), now=self._clock(), idempotency_key=ticket.id)

    async def complete(self, ticket_id: str, *, by: str, version: int) -> Ticket:
        """Finish a draft: check it as the platform will, fix its deadlines and queue the case.

        Raises :class:`TicketInvalid` with every problem, and changes nothing, when the
        platform would refuse the case.
        """
        _check_actor(by)
        now = self._clock()
        async with self._sessions() as session:
            async with session.begin():
                ticket = await self._editable(session, ticket_id, version, "completed")
                self._finish(session, ticket, by=by, at=now)
                await _flush(session, ticket_id, version)
                await self._queue_case(session, ticket)
        _log_completed(ticket, by)
        return ticket

    # ----------------------------------------------------------------- handling

    async def progress(self, ticket_id: str, step: str, *, by: str, to: Mapping[str, Any] | None = None,
                       outcome: str | None = None, note: str | None = None) -> Ticket:
        """Record a step of handling (``accepted``, ``rejected``, ``transferred``, ``closed``)
        and queue it for the platform.

        Raises :class:`StepOutOfOrder` when the step may not follow the earlier ones and
        :class:`TicketInvalid` when the platform would refuse it (a ``closed`` without
        outcome, an acceptance after the deadline).
        """
        _check_actor(by)
        _check_progress_args(step, to, outcome, note)

        async def attempt(session: AsyncSession) -> Ticket:
            ticket = await _load(session, ticket_id, for_update=True)
            if ticket.status == Status.DRAFT.value:
                raise StepOutOfOrder(Problem("step", "out_of_order", "案件尚未完成登记，不能报告办理进展",
                                             "the ticket is not completed yet; complete it first"))
            previous = await _steps(session, ticket_id)
            change = self._change_status(session, ticket, step, by=by, at=self._clock(),
                                         step_id=str(uuid.uuid4()), to=to, outcome=outcome, note=note)
            body = progress_payload(change)
            problems = validate_progress(body, accept_by=ticket.accept_by)
            if problems:
                raise TicketInvalid(problems)
            out_of_order = check_step_order(previous, step)
            if out_of_order is not None:
                raise StepOutOfOrder(out_of_order)
            if step == Status.ACCEPTED.value:
                self._set_handling_deadlines(ticket, accepted=change.at.astimezone(CHINA_TZ).date())
            await _flush(session, ticket_id, None)
            await self._outbox.enqueue(session, kind="progress", key=str(change.step_id), body=body,
                                       ticket_id=ticket.id)
            return ticket

        return await self._retrying(ticket_id, attempt)

    async def record_delivery(self, ticket_id: str, *, platform_case_no: str | None = None,
                              problems: Sequence[Problem | Mapping[str, Any]] | None = None) -> Ticket:
        """What the platform answered to the ticket's case (called by the delivery worker).

        ``platform_case_no``: delivered. ``problems`` (its 422 ``errors``): refused; the ticket
        goes back to draft so that the agent can fix exactly those fields and complete it again.
        """
        if (platform_case_no is None) == (problems is None):
            raise ValueError("give either platform_case_no (delivered) or problems (refused)")
        if platform_case_no is not None and (not isinstance(platform_case_no, str) or not platform_case_no):
            raise ValueError(f"platform_case_no must be a non-empty string, not {platform_case_no!r}")
        refused = None if problems is None else _problem_dicts(problems)

        async def attempt(session: AsyncSession) -> Ticket:
            ticket = await _load(session, ticket_id, for_update=True)
            self._apply_delivery(session, ticket, platform_case_no, refused)
            await _flush(session, ticket_id, None)
            return ticket

        return await self._retrying(ticket_id, attempt)

    async def record_deliveries(self, session: AsyncSession,
                                results: Sequence[tuple[str, str | None, list[dict[str, Any]] | None]]) -> int:
        """Many answers at once, in the caller's transaction (the delivery worker settles a
        batch of outbox rows and their tickets together, so neither is ever ahead of the
        other). ``results`` are ``(ticket_id, platform_case_no, problems)``; a ticket that does
        not exist here is skipped (a case sent by another system). Returns how many changed."""
        changed = 0
        for ticket_id, platform_case_no, problems in results:
            ticket = await session.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                continue
            refused = None if problems is None else _problem_dicts(problems)
            self._apply_delivery(session, ticket, platform_case_no, refused)
            changed += 1
        await session.flush()
        return changed

    def _apply_delivery(self, session: AsyncSession, ticket: Ticket, platform_case_no: str | None,
                        refused: list[dict[str, str]] | None) -> None:
        now = self._clock()
        if refused is not None and ticket.delivery_state == DeliveryState.DELIVERED.value:
            # A refusal that arrives after the platform stored the case (a worker whose lease
            # ran out while another delivered the row): the platform has it; a draft now would
            # invite a correction that could never be sent.
            log.warning("ticket %s: a refusal after delivery (no. %s) ignored: %s", ticket.id,
                        ticket.platform_case_no, ", ".join(f"{p['field']} {p['code']}" for p in refused))
            return
        if refused is None:
            ticket.delivery_state = DeliveryState.DELIVERED.value
            ticket.platform_case_no = platform_case_no
            ticket.delivery_problems = None
        else:
            ticket.delivery_state = DeliveryState.REFUSED.value
            ticket.delivery_problems = refused
            if ticket.status == Status.COMPLETED.value:
                self._change_status(session, ticket, Status.DRAFT, by=PLATFORM, at=now,
                                    note=f"refused by the national platform: {len(refused)} problem(s)")
            log.warning("ticket %s refused by the platform: %s", ticket.id,
                        ", ".join(f"{p['field']} {p['code']}" for p in refused))
        ticket.updated_at = now

    # ----------------------------------------------------------------- reading

    async def get(self, ticket_id: str) -> Ticket:
        async with self._sessions() as session:
            return await _load(session, ticket_id)

    async def list_for_call(self, call_id: str) -> list[Ticket]:
        """The tickets of one call, first created first."""
        async with self._sessions() as session:
            result = await session.scalars(
                select(Ticket).where(Ticket.call_id == call_id).order_by(Ticket.created_at, Ticket.id))
            return list(result)

    async def drafts_of_agent(self, agent_id: str, *, limit: int = 100) -> list[Ticket]:
        """The agent's tickets not completed yet (drafts, and cases the platform sent back),
        newest first: what the agent still has to finish."""
        if not isinstance(agent_id, str) or not agent_id:
            return []
        query = (select(Ticket).where(Ticket.agent_id == agent_id, Ticket.status == Status.DRAFT.value)
                 .order_by(Ticket.created_at.desc(), Ticket.id).limit(max(0, limit)))
        async with self._sessions() as session:
            return list(await session.scalars(query))

    async def tickets_of_caller(self, phone: str, *, limit: int = 5, exclude_call: str | None = None) -> list[Ticket]:
        """The caller's earlier tickets (same phone number), newest first: an agent sees at once
        that the caller has complained before. ``exclude_call`` leaves out the current call's."""
        if not isinstance(phone, str) or not phone.strip():
            return []  # a withheld number says nothing about who calls
        query = select(Ticket).where(Ticket.caller_phone == phone.strip())
        if exclude_call is not None:
            query = query.where((Ticket.call_id != exclude_call) | Ticket.call_id.is_(None))
        async with self._sessions() as session:
            result = await session.scalars(query.order_by(Ticket.created_at.desc(), Ticket.id).limit(max(0, limit)))
            return list(result)

    async def origin(self, ticket_id: str) -> Origin:
        """Who created the ticket and what with (:class:`Origin`)."""
        async with self._sessions() as session:
            ticket = await _load(session, ticket_id)
            creator = await session.scalar(
                select(TicketStatusChange.by)
                .where(TicketStatusChange.ticket_id == ticket_id, TicketStatusChange.from_status.is_(None))
                .order_by(TicketStatusChange.id).limit(1))
            # The creation's audit rows are the creator's at the creation time; later edits
            # (an agent fixing a refused case) have their own author or time.
            rows = await session.execute(
                select(TicketAudit.field, TicketAudit.new_value)
                .where(TicketAudit.ticket_id == ticket_id, TicketAudit.by == creator,
                       TicketAudit.at == ticket.created_at))
            return Origin(by=creator or "", values={field: value for field, value in rows if value is not None})

    async def history(self, ticket_id: str) -> list[TicketStatusChange]:
        """Every status change of the ticket, oldest first."""
        async with self._sessions() as session:
            await _load(session, ticket_id)
            result = await session.scalars(
                select(TicketStatusChange).where(TicketStatusChange.ticket_id == ticket_id)
                .order_by(TicketStatusChange.id))
            return list(result)

    async def audit(self, ticket_id: str, *, reveal_personal: bool = False) -> list[AuditEntry]:
        """Every field change, oldest first. Personal data (the caller's phone and name, phone
        numbers in free text) is masked unless ``reveal_personal``, which the caller sets only
        after checking that the reader is an authorised auditor."""
        async with self._sessions() as session:
            await _load(session, ticket_id)
            result = await session.scalars(
                select(TicketAudit).where(TicketAudit.ticket_id == ticket_id).order_by(TicketAudit.id))
            return [AuditEntry(row.field, audit_display(row.field, row.old_value, reveal=reveal_personal),
                               audit_display(row.field, row.new_value, reveal=reveal_personal), row.by, row.at)
                    for row in result]

    # ----------------------------------------------------------------- helpers

    async def _editable(self, session: AsyncSession, ticket_id: str, version: int, action: str) -> Ticket:
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"version must be the integer version of the ticket, not {version!r}")
        ticket = await _load(session, ticket_id, for_update=True)
        if ticket.version != version:
            raise TicketConflict(ticket_id, version, ticket.version)
        if ticket.status != Status.DRAFT.value:
            raise TicketNotEditable(ticket_id, ticket.status, action)
        return ticket

    async def _add_draft(self, session: AsyncSession, ticket_id: str, changes: dict[Field, Any], *, by: str,
                         at: datetime) -> Ticket:
        await self._check_related(session, ticket_id, changes)
        ticket = _blank_ticket(ticket_id, at)
        session.add(ticket)
        self._apply(session, ticket, changes, by=by, at=at)
        if ticket.received_at is None:
            # Intake channels say when the matter came in; a call is received now.
            ticket.received_at = at
        session.add(TicketStatusChange(ticket_id=ticket_id, from_status=None, to_status=Status.DRAFT.value,
                                       at=at, by=by))
        return ticket

    def _finish(self, session: AsyncSession, ticket: Ticket, *, by: str, at: datetime) -> None:
        """Complete a draft in ``session``, or raise :class:`TicketInvalid` with every problem
        the platform would find in its case."""
        problems = validate_case(case_payload(ticket), now=at, idempotency_key=ticket.id)
        if problems:
            raise TicketInvalid(problems)
        self._set_deadlines(ticket)
        self._change_status(session, ticket, Status.COMPLETED, by=by, at=at)
        ticket.delivery_state = DeliveryState.PENDING.value
        ticket.delivery_problems = None

    async def _queue_case(self, session: AsyncSession, ticket: Ticket) -> None:
        if await self._waits_for_recording(ticket):
            holding = cast(HoldingOutbox, self._outbox)
            if await holding.enqueue(session, kind="case", key=ticket.id, body=case_payload(ticket),
                                     ticket_id=ticket.id, held=True) is False:
                raise CaseAlreadySent(ticket.id, ticket.platform_case_no)
            log.info("ticket %s completed during its call: its case waits for the recording", ticket.id)
            return
        queued = await self._outbox.enqueue(session, kind="case", key=ticket.id, body=case_payload(ticket),
                                            ticket_id=ticket.id)
        if queued is False:
            # Rolls the completion back: the agent hears why, and the platform keeps what it has.
            raise CaseAlreadySent(ticket.id, ticket.platform_case_no)

    async def _waits_for_recording(self, ticket: Ticket) -> bool:
        if self._recording_pending is None or not ticket.call_id or ticket.recording_id:
            return False
        return await self._recording_pending(ticket.call_id)

    async def _check_related(self, session: AsyncSession, ticket_id: str, changes: dict[Field, Any]) -> None:
        related = changes.get(BY_PATH["related_to"])
        if related is None:
            return
        if related == ticket_id:
            raise BadChanges([("related_to", "a ticket cannot be related to itself")])
        if await session.get(Ticket, related) is None:
            raise BadChanges([("related_to", f"no ticket {related}")])

    @staticmethod
    def _apply(session: AsyncSession, ticket: Ticket, changes: dict[Field, Any], *, by: str, at: datetime) -> bool:
        """Set the changed fields, one audit row each; True when anything changed."""
        changed = False
        for field, new in changes.items():
            old = getattr(ticket, field.attr)
            if old == new:
                continue
            setattr(ticket, field.attr, new)
            session.add(TicketAudit(ticket_id=ticket.id, field=field.path, old_value=audit_text(old),
                                    new_value=audit_text(new), by=by, at=at))
            changed = True
        return changed

    @staticmethod
    def _change_status(session: AsyncSession, ticket: Ticket, status: str, *, by: str, at: datetime,
                       step_id: str | None = None, to: Mapping[str, Any] | None = None,
                       outcome: str | None = None, note: str | None = None) -> TicketStatusChange:
        to = to or {}
        change = TicketStatusChange(ticket_id=ticket.id, from_status=ticket.status, to_status=str(status), at=at,
                                    by=by, note=note, step_id=step_id, to_region=to.get("region"),
                                    to_level=to.get("level"), to_station=to.get("station"), outcome=outcome)
        session.add(change)
        ticket.status = str(status)
        ticket.updated_at = at
        return change

    def _set_deadlines(self, ticket: Ticket) -> None:
        """Deadlines of a completed complaint or report (a consultation is answered at once).

        Before acceptance the handling deadline runs from the last day acceptance may take
        (the latest it can legally be); :meth:`progress` shortens it from the actual acceptance.
        """
        ticket.accept_by = ticket.finish_by = ticket.verify_by = ticket.deadline_note = None
        if ticket.case_type not in ("complaint", "report"):
            return
        received = ticket.received_at.astimezone(CHINA_TZ).date()
        try:
            ticket.accept_by = self._calendar.accept_by(received)
        except CalendarNotPublished as exc:
            ticket.deadline_note = UnsetDeadline.of("accept_by", exc).note()
            return
        self._set_handling_deadlines(ticket, accepted=ticket.accept_by)

    def _set_handling_deadlines(self, ticket: Ticket, *, accepted: date) -> None:
        name, compute = {"complaint": ("finish_by", self._calendar.mediation_end),
                         "report": ("verify_by", self._calendar.verify_by)}.get(ticket.case_type or "", ("", None))
        if compute is None:
            return
        try:
            setattr(ticket, name, compute(accepted))
            ticket.deadline_note = None
        except CalendarNotPublished as exc:
            setattr(ticket, name, None)
            ticket.deadline_note = UnsetDeadline.of(name, exc).note()

    async def _retrying(self, ticket_id: str, attempt: Callable[[AsyncSession], Awaitable[T]]) -> T:
        for remaining in range(_RETRIES - 1, -1, -1):
            try:
                async with self._sessions() as session:
                    async with session.begin():
                        return await attempt(session)
            except TicketConflict:
                if not remaining:
                    raise
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------- module helpers


def _blank_ticket(ticket_id: str, at: datetime | None) -> Ticket:
    return Ticket(id=ticket_id, status=Status.DRAFT.value, delivery_state=DeliveryState.NOT_SENT.value,
                  caller_anonymous=False, created_at=at, updated_at=at)


def _initial_values(changes: dict[Field, Any]) -> dict[str, str]:
    """The audit values (field path -> JSON text) that creating a ticket from ``changes``
    writes: as :meth:`TicketService._apply` on a blank ticket, which skips unchanged fields."""
    blank = _blank_ticket("", None)
    return {field.path: text for field, value in changes.items()
            if getattr(blank, field.attr) != value and (text := audit_text(value)) is not None}


def _log_completed(ticket: Ticket, by: str) -> None:
    log.info("ticket %s completed by %s, case queued for the platform%s", ticket.id, by,
             f" ({ticket.deadline_note})" if ticket.deadline_note else "")


async def _load(session: AsyncSession, ticket_id: str, *, for_update: bool = False) -> Ticket:
    # FOR UPDATE (PostgreSQL; SQLite has one writer anyway) makes a concurrent writer wait
    # for this transaction and then read its result, instead of failing on a stale version.
    ticket = await session.get(Ticket, ticket_id, with_for_update=for_update or None)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


async def _flush(session: AsyncSession, ticket_id: str, seen: int | None) -> None:
    try:
        await session.flush()
    except StaleDataError:
        raise TicketConflict(ticket_id, seen, None) from None


async def _steps(session: AsyncSession, ticket_id: str) -> list[str]:
    """The platform progress steps already recorded, in order."""
    result = await session.scalars(
        select(TicketStatusChange.to_status)
        .where(TicketStatusChange.ticket_id == ticket_id, TicketStatusChange.step_id.is_not(None))
        .order_by(TicketStatusChange.id))
    return list(result)


def _check_actor(by: Any) -> None:
    if not isinstance(by, str) or not by.strip() or len(by) > 64:
        raise ValueError(f"by must name who acts (1 to 64 characters), not {by!r}")


def _new_id(ticket_id: str | None) -> str:
    if ticket_id is None:
        return str(uuid.uuid4())
    if not isinstance(ticket_id, str) or not UUID_RE.fullmatch(ticket_id):
        raise ValueError(f"ticket_id must be a UUID (it becomes the platform's case_id), not {ticket_id!r}")
    return ticket_id.lower()


def _check_progress_args(step: Any, to: Any, outcome: Any, note: Any) -> None:
    errors = [(name, f"must be a string, not {type(value).__name__}")
              for name, value in (("step", step), ("outcome", outcome), ("note", note))
              if value is not None and not isinstance(value, str)]
    if step is None:
        errors.append(("step", "is required"))
    if to is not None:
        if not isinstance(to, Mapping):
            errors.append(("to", f"must be an object, not {type(to).__name__}"))
        else:
            errors += [(f"to.{key}", "unknown field; to has: region, level, station")
                       for key in to if key not in ("region", "level", "station")]
            errors += [(f"to.{key}", f"must be a string, not {type(value).__name__}")
                       for key, value in to.items() if not isinstance(value, str)]
    if errors:
        raise BadChanges(errors)


def _problem_dicts(problems: Sequence[Problem | Mapping[str, Any]]) -> list[dict[str, str]]:
    items = []
    for problem in problems:
        if not isinstance(problem, (Problem, Mapping)):
            raise ValueError(f"a problem is a Problem or the platform's errors item, not {problem!r}")
        items.append((problem if isinstance(problem, Problem) else Problem.from_dict(problem)).to_dict())
    return items
