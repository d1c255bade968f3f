"""hotline outbox: what is owed to the national platform, and the operator's levers.

    hotline outbox stats                      rows per kind and state, oldest waiting, halt or pause
    hotline outbox list [--state dead] [--kind case] [--limit 50]
    hotline outbox show ID                    one row: body, last answer, problems
    hotline outbox retry ID... | --all-dead   dead rows back to the queue
    hotline outbox replay ID... | --since T [--kind K]   delivered rows sent again
    hotline outbox work [--workers N]         run delivery workers in this process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from core.arguments import action as sub_command
from core.arguments import command, whole_number
from core.db import make_engine
from core.migrate import create_schema
from core.settings import Settings
from core.tasks import until_signalled
from delivery.models import Kind, OutboxRow, State
from delivery.outbox import Outbox


def build_parser() -> argparse.ArgumentParser:
    parser = command(
        "hotline outbox",
        "What is owed to the national platform (cases, progress steps, call records), and the\n"
        "operator's levers: look, send dead rows again, replay delivered ones, run workers.",
        "hotline outbox stats", "hotline outbox list --state dead", "hotline outbox show 42",
        "hotline outbox retry --all-dead", "hotline outbox replay --since 2026-11-24T00:00:00+08:00",
        "hotline outbox work --workers 4")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, summary: str, description: str, *examples: str) -> argparse.ArgumentParser:
        return sub_command(sub, name, summary, description, *(f"hotline outbox {example}" for example in examples))

    action("stats", "rows per kind and state",
           "Rows per kind and state, the oldest waiting, and whether delivery is halted (and what to fix) "
           "or paused.", "stats")
    ls = action("list", "list rows, newest first", "List rows, newest first, with their state and last answer.",
                "list", "list --state dead --kind case --limit 20")
    ls.add_argument("--state", choices=[s.value for s in State])
    ls.add_argument("--kind", choices=[k.value for k in Kind])
    ls.add_argument("--limit", type=_positive, default=50, help="at most this many rows (default 50)")
    show = action("show", "one row in full", "One row in full: its body, the last answer, the platform's problems.",
                  "show 42")
    show.add_argument("id", type=_positive)
    retry = action("retry", "send dead rows again",
                   "Put dead rows back in the queue; they keep their key, so the platform still gets each once.",
                   "retry 42 43", "retry --all-dead")
    retry.add_argument("ids", type=_positive, nargs="*")
    retry.add_argument("--all-dead", action="store_true", help="every dead row")
    replay = action("replay", "send delivered rows again (the platform replays what it has)",
                    "Send delivered rows again, for a reconciliation after the platform lost data.",
                    "replay 42", "replay --since 2026-11-24T00:00:00+08:00 --kind case")
    replay.add_argument("ids", type=_positive, nargs="*")
    replay.add_argument("--since", type=_moment,
                        help="delivered at or after (RFC 3339, e.g. 2026-11-24T08:00:00+08:00)")
    replay.add_argument("--kind", choices=[k.value for k in Kind])
    work = action("work", "run delivery workers until interrupted",
                  "Run delivery workers in this process until SIGINT or SIGTERM (beside hotline serve's own).",
                  "work", "work --workers 4")
    work.add_argument("--workers", type=_positive, help="workers in this process (default: [platform] workers)")
    return parser


_positive = whole_number(at_least=1)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2026-11-24T08:00:00+08:00") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset; write +08:00 or Z")
    return moment


def main(settings: Settings, argv: list[str], out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    return asyncio.run(_main(settings, args, out))


async def _main(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    engine = make_engine(settings.database.url)
    try:
        await create_schema(engine, settings)
        outbox = Outbox(engine)
        if args.action == "work":
            return await _work(settings, outbox, args.workers)
        if args.action == "stats":
            return await _stats(outbox, args, out, settings=settings)
        action: Callable[[Outbox, argparse.Namespace, TextIO], Awaitable[int]] = ACTIONS[args.action]
        return await action(outbox, args, out)
    finally:
        await engine.dispose()


async def _stats(outbox: Outbox, _args: argparse.Namespace, out: TextIO, *,
                 settings: Settings | None = None) -> int:
    counts = await outbox.counts()
    out.write(f"{'kind':<12} {'pending':>9} {'delivered':>10} {'dead':>6}\n")
    for kind in Kind:
        row = [counts.get((kind.value, s.value), 0) for s in (State.PENDING, State.DELIVERED, State.DEAD)]
        out.write(f"{kind.value:<12} {row[0]:>9} {row[1]:>10} {row[2]:>6}\n")
    oldest = await outbox.oldest_pending()
    if oldest is not None:
        age = (datetime.now(UTC) - oldest).total_seconds()
        out.write(f"oldest waiting: {oldest.isoformat(timespec='seconds')} ({age:.0f} s ago)\n")
    if settings is not None:
        await _gate_state(settings, out)
    return 0


async def _gate_state(settings: Settings, out: TextIO) -> None:
    """The gate every delivery process shares: a halt is what the operators must fix."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from delivery.gate import RedisGate

    redis = Redis.from_url(settings.redis.url)
    try:
        left, halt = await RedisGate(redis, settings.redis.prefix, settings.platform).state()
    except (RedisError, OSError) as exc:
        out.write(f"delivery gate: unknown (Redis at {settings.redis.url} unreachable: {exc})\n")
        return
    finally:
        await redis.aclose()
    if halt is not None:
        out.write(f"DELIVERY HALTED since {halt.since}: the platform answered {halt.status} {halt.reason} "
                  f"(to {halt.document}).\n  To fix: {halt.fix}\n"
                  f"  Rows wait; delivery resumes by itself once a probe is accepted "
                  f"(every {settings.platform.probe_s:.0f} s).\n")
    elif left > 0:
        out.write(f"delivery paused {left:.1f} s more: the platform asked us to wait (Retry-After)\n")
    else:
        out.write("delivery: running\n")


async def _list(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    rows = await outbox.rows(state=args.state, kind=args.kind, limit=args.limit)
    out.write(f"{'id':>8} {'kind':<11} {'state':<9} {'tries':>5} {'status':>6}  key / last error\n")
    for row in rows:
        note = f"  {row.last_error[:60]}" if row.last_error and row.state != State.DELIVERED else ""
        out.write(f"{row.id:>8} {row.kind:<11} {row.state:<9} {row.attempts:>5} {row.last_status or '':>6}  "
                  f"{row.key}{note}\n")
    if not rows:
        out.write("(no rows)\n")
    return 0


async def _show(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    rows = await outbox.rows(ids=[args.id], limit=1)
    if not rows:
        sys.stderr.write(f"hotline outbox: no row {args.id}\n")
        return 1
    json.dump(_describe(rows[0]), out, ensure_ascii=False, indent=2)
    out.write("\n")
    return 0


def _describe(row: OutboxRow) -> dict[str, object]:
    # The body holds personal data (the caller's phone and name): shown to the operator
    # who asks for this one row, as the platform will receive it; never logged.
    return {
        "id": row.id, "kind": row.kind, "key": row.key, "ticket_id": row.ticket_id, "state": row.state,
        "attempts": row.attempts, "next_attempt_at": _iso(row.next_attempt_at), "lease_owner": row.lease_owner,
        "lease_until": _iso(row.lease_until), "last_status": row.last_status, "last_error": row.last_error,
        "problems": row.problems, "receipt": row.receipt, "created_at": _iso(row.created_at),
        "delivered_at": _iso(row.delivered_at), "body": json.loads(row.body),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


async def _retry(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    if not args.ids and not args.all_dead:
        sys.stderr.write("hotline outbox retry: name row ids, or --all-dead\n")
        return 2
    count = await outbox.retry(args.ids, all_dead=args.all_dead)
    out.write(f"{count} dead row(s) queued again\n")
    return 0


async def _replay(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    if not args.ids and args.since is None:
        sys.stderr.write("hotline outbox replay: name row ids, or --since\n")
        return 2
    count = await outbox.replay(args.ids, kind=args.kind, since=args.since)
    out.write(f"{count} delivered row(s) queued to be sent again\n")
    return 0


async def _work(settings: Settings, outbox: Outbox, workers: int | None) -> int:
    from redis.asyncio import Redis

    from core.db import sessionmaker
    from delivery.feeds import TicketResults
    from delivery.gate import RedisGate
    from delivery.services import PlatformDelivery
    from tickets.deadlines import official_calendar
    from tickets.services import TicketService

    platform = settings.platform
    if workers:
        platform = platform.model_copy(update={"workers": workers})
    # A case's answer is written on its ticket in the same transaction, as in `hotline serve`.
    tickets = TicketService(sessionmaker(outbox.engine), outbox, calendar=official_calendar())
    outbox.hooks.append(TicketResults(tickets))
    # The gate is shared with `hotline serve` and every other worker process, through Redis.
    redis = Redis.from_url(settings.redis.url)
    delivery = PlatformDelivery(outbox, platform, gate=RedisGate(redis, settings.redis.prefix, platform))
    await delivery.start()
    try:
        await until_signalled()
    finally:
        await delivery.stop()
        await redis.aclose()
    return 0


ACTIONS: dict[str, Callable[[Outbox, argparse.Namespace, TextIO], Awaitable[int]]] = {
    "stats": _stats, "list": _list, "show": _show, "retry": _retry, "replay": _replay,
}
