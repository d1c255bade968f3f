"""``python -m devtools demo``: the whole system on embedded defaults, with simulated callers.

Everything real runs: the dialplan in ``dialplans/`` (interpreted by the Asterisk
stand-in), the ARI application exactly as ``hotline serve`` runs it, a real
redis-server and SQLite. Only the callers (``devtools.demo_callers``) and the agents'
phones are simulated: callers arrive by a Poisson process, wait as long as their
patience lasts, and talk for a drawn time once an agent answers.

SIGTERM and SIGINT (Ctrl-C) stop it cleanly: the callers hang up, the application, the
stand-ins and then the redis-server it started end, and a last line says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from accounts.services import AccountService
from callrecords.models import CallRecord
from core.privacy import mask_phone
from core.settings import Settings
from devtools.demo_accounts import HUMAN_AGENT, create_people, welcome
from devtools.demo_callers import Caller, CallerModel, Outcome, describe, draw_callers, play_caller
from devtools.demo_tickets import file_tickets, print_deliveries, start_platform
from devtools.embedded import RedisProcess, redis_answers
from hotline.app import Application
from queues.services import QueueService

if TYPE_CHECKING:
    # Only for annotations: the demo imports them when it starts.
    from devtools.pbx_sim.server import PbxSim
    from devtools.platform_sim.server import PlatformSim
    from ivr.prompts.catalogue import PromptCatalogue

log = logging.getLogger(__name__)


def say(text: str) -> None:
    """A line of the demo's story on stdout. A reader gone (the pipe closed) must not stop the
    demo, least of all half-way through stopping its parts: the line is dropped."""
    with contextlib.suppress(OSError):
        print(text, flush=True)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Seconds within which an answer counts towards the service level (the wallboard's 20 s band).
SERVICE_LEVEL_S = 20

#: The demo's simulated agents: (agent id, home jurisdiction, what it is). Their phones are the
#: stand-in's, which answer after a second, as a person would. The newcomer's own agent (1005,
#: Hangzhou, on the browser desktop) comes on top of them: Hangzhou's calls do not depend on
#: someone sitting at the desktop, and when the newcomer is available, calls ring there too.
#:
#: Why the callers' default rate is 2.5 calls a minute (CallerModel): a call holds an agent for
#: its talk (mean 60 s), the ring before the agent picks up (1 s) and the product's wrap-up
#: (queues.wrap_up_s, 10 s): about 71 s. Nine calls in ten reach the queue (one in ten hangs up
#: in the menu). Each city's agents serve their own city's queue (a call climbs a level only after
#: queues.overflow_after_s, 60 s, or at once where nobody is logged in), so each queue is its own
#: Erlang C system. At 2.5 calls a minute: Hangzhou (half the calls, three agents) is offered
#: 1.33 erlangs, a call waits at all with probability 18 % and 89 % are answered within 20 s;
#: each one-agent city (a tenth of the calls) 0.27 erlangs, 27 % wait, 78 % within 20 s; the
#: national centre (a fifth, two agents) 0.53 erlangs, 93 %. Altogether about 86 % within 20 s
#: before abandonment (which shortens queues) and overflow (which lends the national agents to
#: the cities) improve it. At 3.5 calls a minute it falls to about 74 %: one agent per city
#: cannot take more, and the demo would look like a centre in trouble, which it is not meant to.
DEMO_AGENTS = [
    ("1001", "330200", "Ningbo city"),
    ("1002", "110100", "Beijing city"),
    ("1003", "440300", "Shenzhen city"),
    ("1004", "000000", "national centre (takes what no level below can)"),
    ("1006", "330100", "Hangzhou city"),
    ("1007", "330100", "Hangzhou city"),
    ("1008", "330100", "Hangzhou city"),
    ("1009", "000000", "national centre"),
]
LINES = frozenset({"general", "quality", "food_drug", "price", "intellectual_property"})


@dataclass(frozen=True)
class DemoOptions:
    """What the demo does; the defaults are ``python -m devtools demo`` without flags."""

    callers: CallerModel = field(default_factory=CallerModel)
    seed: int = 12315
    #: Stop placing calls after this many, or after this many seconds; then report and exit.
    #: Neither: callers keep coming until SIGTERM or Ctrl-C.
    calls: int | None = None
    duration_s: float | None = None
    #: Below 1, prompts play faster and the callers' times shrink (gaps, patience, talk, the
    #: agents' pick-up); the product's own timers (wrap-up, overflow, ring timeout) and the
    #: 20 s of the service level do not, so figures taken under a scale are not a centre's.
    time_scale: float = 1.0
    open_browser: bool = True
    #: Seconds between the figures lines (and the agents filing their tickets).
    report_every_s: float = 60.0

    @property
    def bounded(self) -> bool:
        return self.calls is not None or self.duration_s is not None


@dataclass
class Demo:
    """The running system: what the callers call and what the reports read."""

    settings: Settings
    app: Application
    sim: PbxSim
    platform: PlatformSim
    prompts: PromptCatalogue
    started_at: datetime


async def run_demo(settings: Settings, options: DemoOptions | None = None) -> int:
    """Run the demo until its calls are done (bounded) or a SIGTERM / SIGINT; 0 when it ended cleanly."""
    options = options or DemoOptions()
    loop = asyncio.get_running_loop()
    work = asyncio.create_task(_run(settings, options), name="demo")
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        if received:
            say(f"[demo] {sig.name} again: already stopping, every part in turn")
            return
        received.append(sig)
        work.cancel()
        say(f"[demo] {sig.name} received: stopping the callers, the application, the stand-ins and redis-server")

    handled = (signal.SIGTERM, signal.SIGINT)
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await work
    except asyncio.CancelledError:
        if not received:
            raise
        say(f"[demo] stopped on {received[0].name}: every part of the demo has ended")
        return 0
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


async def _run(settings: Settings, options: DemoOptions) -> int:
    async with started(settings, options) as demo:
        await (_bounded(demo, options) if options.bounded else _endless(demo, options))
    if options.bounded:
        say("[demo] finished: every part of the demo has ended")
    return 0


@contextlib.asynccontextmanager
async def started(settings: Settings, options: DemoOptions) -> AsyncIterator[Demo]:
    """Start redis-server (unless one is meant to be used), the stand-ins, the application and the
    agents; on the way out, however it is left, stop each in the reverse order."""
    from devtools.pbx_sim.server import PbxSim
    from ivr.prompts.build import build_prompts
    from ivr.prompts.catalogue import PromptCatalogue

    say(f"[demo] building prompts ({settings.ivr.language}) into {settings.ivr.sounds_dir} ...")
    await asyncio.to_thread(build_prompts, settings.ivr.language, settings.ivr.sounds_dir)
    async with contextlib.AsyncExitStack() as stack:
        await _redis(settings, stack)
        ari = urlsplit(settings.ari.url)
        sim = PbxSim(
            username=settings.ari.username,
            password=settings.ari.password.get_secret_value(),
            dialplan_path=PROJECT_ROOT / "dialplans" / "extensions.conf",
            sounds_dir=settings.ivr.sounds_dir,
            recordings_dir=settings.var_dir / "spool" / "recording",  # Asterisk's spool, not our recordings root
            time_scale=options.time_scale,
        )
        await sim.start(host=ari.hostname or "127.0.0.1", port=ari.port or 8088)
        stack.push_async_callback(_stopping, "the Asterisk stand-in", sim.stop)
        say(f"[demo] Asterisk stand-in serving ARI at {sim.url}/ari")

        platform = await start_platform(settings)
        stack.push_async_callback(_stopping, "the national platform stand-in", platform.stop)
        say(f"[demo] national platform stand-in at {platform.url} (fails one request in ten)")

        app = Application(settings)
        stack.push_async_callback(_stopping, "the hotline application", app.stop)
        await app.start()
        await app.wait_connected()
        say(f"[demo] hotline app connected as ARI application {settings.ari.app!r}")
        # The app has accounts only with the queues on (the desktop's sign-in).
        accounts: AccountService | None = getattr(app, "accounts", None)
        if accounts is not None:
            await create_people(accounts)
        sim.endpoint(f"PJSIP/{HUMAN_AGENT}", mode="manual")
        await staff_agents(app, sim, answer_after_s=1.0 * options.time_scale)
        welcome(app, options.open_browser)
        yield Demo(settings, app, sim, platform, PromptCatalogue.load(settings.ivr.language), datetime.now(UTC))


async def _stopping(what: str, stop: Callable[[], Awaitable[object]]) -> None:
    """One step of the shutdown: said, done, and a failure said without skipping the next steps."""
    say(f"[demo] stopping {what} ...")
    try:
        await stop()
    except Exception as exc:  # noqa: BLE001 - the other parts must still be stopped
        say(f"[demo] stopping {what} failed: {exc}")


async def _redis(settings: Settings, stack: contextlib.AsyncExitStack) -> None:
    """The demo's redis-server: a leftover of an earlier demo is stopped (never silently reused);
    a Redis the demo did not start is used, and said so."""
    port = urlsplit(settings.redis.url).port or 6379
    workdir = settings.var_dir / "redis"
    pidfile = workdir / "redis-server.pid"
    leftover = RedisProcess.leftover(pidfile)
    if leftover is not None:
        pid, old_port = leftover
        say(f"[demo] a redis-server left running by an earlier demo (pid {pid}, port {old_port}, "
              f"pid file {pidfile}): stopping it; its data stays in {workdir}")
        await asyncio.to_thread(RedisProcess.stop_leftover, pidfile)
    if redis_answers(port):
        say(f"[demo] a Redis the demo did not start already answers on port {port}: using it "
              f"(keys under {settings.redis.prefix!r}); the demo will not stop it")
        return
    say(f"[demo] starting redis-server on port {port} (data in {workdir}, pid in {pidfile})")
    server = RedisProcess(workdir, port=port, pidfile=pidfile)
    workdir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(server.start)
    stack.push_async_callback(_stopping, f"redis-server (pid {server.proc.pid if server.proc else '?'})",
                              lambda: asyncio.to_thread(server.stop))


async def staff_agents(app: Application, sim: PbxSim, *, answer_after_s: float = 1.0) -> None:
    from queues.engine import Agent

    if not isinstance(app.queues, QueueService):  # queues switched off: nobody to staff
        return
    for agent_id, home, what in DEMO_AGENTS:
        endpoint = f"PJSIP/{agent_id}"
        sim.endpoint(endpoint, answer_after_s=answer_after_s)
        await app.queues.login(Agent(agent_id, home, LINES, frozenset({app.settings.ivr.language}), endpoint))
        await app.queues.available(agent_id)
        say(f"[demo] agent {agent_id} ready: {what} ({home})")


# --- the callers -------------------------------------------------------------------------------


class Calls:
    """The callers on the line, and what became of those who are done."""

    def __init__(self, demo: Demo, options: DemoOptions) -> None:
        self.demo, self.options = demo, options
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: list[Outcome] = []
        self.placed = 0

    def place(self, caller: Caller) -> None:
        self.placed += 1
        n = self.placed
        task = asyncio.create_task(self._one(n, caller), name=f"demo-call-{n}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _one(self, n: int, caller: Caller) -> None:
        """A script failing must not stop the other callers."""
        say(f"[demo] {describe(n, caller)}")
        try:
            outcome = await play_caller(self.demo.sim, self.demo.prompts, caller, time_scale=self.options.time_scale)
        except Exception as exc:  # noqa: BLE001 - one script failing must not stop the other callers
            say(f"[demo] call {n:>4}: script stopped: {exc}")
            return
        self.outcomes.append(outcome)
        more = f" after {outcome.waited_s:.0f} s with {outcome.agent}, talked {outcome.talked_s:.0f} s" \
            if outcome.agent else f" after {outcome.waited_s:.0f} s" if outcome.result == "gave up waiting" else ""
        say(f"[demo] call {n:>4}: {outcome.result}{more} ({len(self.outcomes)} done)")

    async def arrive(self, callers: Iterator[Caller], *, until: float | None, count: int | None) -> None:
        """Place callers at their drawn gaps until ``count`` are placed or the loop time ``until``."""
        loop = asyncio.get_running_loop()
        for caller in callers:
            if count is not None and self.placed >= count:
                return
            gap = caller.gap_s * self.options.time_scale
            if until is not None and loop.time() + gap > until:
                return
            await asyncio.sleep(gap)
            self.place(caller)

    async def finish(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def hang_up_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)


async def _bounded(demo: Demo, options: DemoOptions) -> None:
    """A fixed number of calls or a fixed time: then every call is closed, the agents file their
    tickets, the platform receives them, and the figures are printed."""
    calls = Calls(demo, options)
    loop = asyncio.get_running_loop()
    until = loop.time() + options.duration_s * options.time_scale if options.duration_s is not None else None
    tickets, done = Tickets(), asyncio.Event()
    reporter = asyncio.create_task(_report_every(demo, options, tickets, done), name="demo-figures")
    try:
        await calls.arrive(draw_callers(options.callers, options.seed), until=until, count=options.calls)
        await calls.finish()
        done.set()
        await reporter  # lets a report under way finish filing its tickets
    finally:
        reporter.cancel()
        await calls.hang_up_all()
    await settle(demo.app)
    records = await _records_since(demo)
    if len(records) <= 60:
        print_summary(records)
    say(f"[demo] {figures_of(records).line()}")
    await _print_wallboard(demo)
    await tickets.file(demo.app, records)
    say("[demo] the agents completed a ticket for each answered call")
    await print_deliveries(demo.app, demo.platform, tickets.ids)


async def _endless(demo: Demo, options: DemoOptions) -> None:
    """Callers keep coming while the newcomer looks at the desktop and the wallboard."""
    say(f"[demo] callers arrive at random, {options.callers.rate_per_min:g} a minute on average; "
          "press Ctrl-C to stop")
    calls = Calls(demo, options)
    reporter = asyncio.create_task(_report_every(demo, options, Tickets(), asyncio.Event()), name="demo-figures")
    try:
        await calls.arrive(draw_callers(options.callers, options.seed), until=None, count=None)
    finally:
        reporter.cancel()
        await calls.hang_up_all()


class Tickets:
    """The tickets the demo's agents filed, one per answered call, never two."""

    def __init__(self) -> None:
        self.calls: set[str] = set()
        self.ids: list[str] = []

    async def file(self, app: Application, records: list[CallRecord]) -> int:
        new = [r for r in records if r.call_id not in self.calls and r.ended_at is not None]
        ids = await file_tickets(app, new)
        self.calls.update(r.call_id for r in new)
        self.ids += ids
        return len(ids)


async def _report_every(demo: Demo, options: DemoOptions, tickets: Tickets, done: asyncio.Event) -> None:
    """Every ``report_every_s`` until ``done``: the figures so far, and a ticket for each call
    answered since."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), options.report_every_s * options.time_scale)
            return
        try:
            records = await _records_since(demo)
            filed = await tickets.file(demo.app, records)
            say(f"[demo] {figures_of(records).line()}; {filed} new ticket(s) filed")
        except Exception as exc:  # noqa: BLE001 - a report failing must not stop the demo
            say(f"[demo] figures not read this time: {exc}")


async def _records_since(demo: Demo) -> list[CallRecord]:
    """This run's call records (a var dir kept from an earlier demo holds that one's too)."""
    since = demo.started_at - timedelta(seconds=1)
    return [r for r in await demo.app.call_records.all() if r.started_at >= since]


@dataclass
class Figures:
    """A centre's figures over ended calls, from their call records."""

    calls: int = 0
    in_menu: int = 0  # hung up before reaching the queue
    answered: int = 0
    within: int = 0  # answered within SERVICE_LEVEL_S of entering the queue
    abandoned: int = 0  # hung up while waiting in the queue (or while an agent's phone rang)
    wait_s: float = 0.0  # summed over answered calls
    talk_s: float = 0.0

    @property
    def service_level(self) -> float | None:
        """Answered within 20 s of all calls that reached the queue (a caller who gave up
        counts against it, the strict reading)."""
        offered = self.answered + self.abandoned
        return self.within / offered if offered else None

    @property
    def abandon_rate(self) -> float | None:
        offered = self.answered + self.abandoned
        return self.abandoned / offered if offered else None

    def line(self) -> str:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.0f} %"

        answered = max(self.answered, 1)
        return (f"figures: {self.calls} calls ended, {self.in_menu} hung up in the menu; in the queue "
                f"{self.answered} answered, {self.within} within {SERVICE_LEVEL_S} s "
                f"(service level {pct(self.service_level)}), {self.abandoned} abandoned "
                f"({pct(self.abandon_rate)}); mean wait {self.wait_s / answered:.1f} s, "
                f"mean talk {self.talk_s / answered:.0f} s")


def figures_of(records: list[CallRecord]) -> Figures:
    f = Figures()
    for r in records:
        if r.ended_at is None:
            continue
        f.calls += 1
        if r.outcome == "answered" and r.answered_at is not None:
            f.answered += 1
            wait = (r.answered_at - (r.queued_at or r.answered_at)).total_seconds()
            f.within += wait <= SERVICE_LEVEL_S
            f.wait_s += wait
            f.talk_s += (r.ended_at - r.answered_at).total_seconds()
        elif r.outcome == "abandoned_in_queue":
            f.abandoned += 1
        elif r.queued_at is None:
            f.in_menu += 1
    return f


async def _print_wallboard(demo: Demo) -> None:
    """What the wallboard shows over its last 60 minutes, per jurisdiction (summed over lines)."""
    from queues.figures import snapshot

    if not isinstance(demo.app.queues, QueueService):
        return
    engine = demo.app.queues.engine
    figures = await snapshot(engine.redis, engine.prefix, engine.clock_ms())
    per: dict[str, list[int]] = {}
    for q in figures["queues"]:
        row = per.setdefault(q["jurisdiction"], [0, 0, 0])
        row[0] += q["answered"]
        row[1] += q["answered_within"][str(SERVICE_LEVEL_S)]
        row[2] += q["abandoned"]
    say("[demo] the wallboard (last 60 min; a call that climbed counts as abandoned in every queue it waited in):")
    for jurisdiction, (answered, within, abandoned) in sorted(per.items()):
        if answered or abandoned:
            say(f"[demo]   {jurisdiction}: {answered} answered, {within} within {SERVICE_LEVEL_S} s, "
                  f"{abandoned} abandoned")


async def settle(app: Application, timeout: float = 10) -> None:
    """The callers have hung up: wait until the app has handled every hang-up and written the
    call records behind them."""
    await wait_calls_closed(app, timeout=timeout)
    await app.dispatcher.drain(timeout=timeout)
    await app.records.flush()


async def wait_calls_closed(app: Application, timeout: float) -> None:
    """The callers have hung up; wait until the app has seen every hang-up arrive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Polled: the IVR service announces no "last call flow ended", and the demo only waits here once.
    while app.ivr.flows and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def print_summary(records: list[CallRecord]) -> None:
    print(f"\n{'call':<38} {'line':<22} {'caller':<13} {'choice':<13} {'outcome':<20} {'agent':<6} path")
    for r in records:
        print(
            f"{r.call_id:<38} {r.hotline_number + ' ' + r.business_line:<22} {mask_phone(r.caller_phone):<13} "
            f"{r.choice or '-':<13} {r.outcome or r.state:<20} {r.agent_id or '-':<6} {' > '.join(r.menu_path)}"
        )
    print(f"{len(records)} call record(s) in the database\n", flush=True)
