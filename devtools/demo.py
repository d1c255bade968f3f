"""``python -m devtools demo``: the whole system on embedded defaults, with simulated callers.

Everything real runs: the dialplan in ``dialplans/`` (interpreted by the Asterisk
stand-in), the ARI application exactly as ``hotline serve`` runs it, a real
redis-server and SQLite. Only the callers are scripted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from accounts.services import AccountService
from callrecords.models import CallRecord
from core.privacy import mask_phone
from core.settings import Settings
from devtools.demo_accounts import HUMAN_AGENT, create_people, welcome
from devtools.demo_tickets import file_tickets, print_deliveries, start_platform
from devtools.embedded import RedisProcess, redis_answers
from hotline.app import Application
from queues.services import QueueService

if TYPE_CHECKING:
    # Only for annotations: run_demo imports them when the demo starts.
    from devtools.pbx_sim.server import PbxSim
    from ivr.prompts.catalogue import PromptCatalogue

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NUMBERS = ["12315", "12365", "12331", "12358", "12330"]
AREA_CODES = ["", "", "0571", "010", "0755"]


@dataclass
class Script:
    """What one simulated caller does."""

    number: str
    caller_id: str
    behaviour: str  # "press", "wrong-then-press", "silent", "hang-up-early"
    digit: str


def make_scripts(count: int, seed: int = 12315) -> list[Script]:
    rng = random.Random(seed)
    behaviours = ["press"] * 6 + ["wrong-then-press"] * 2 + ["silent", "hang-up-early"]
    return [
        Script(
            number=rng.choice(AREA_CODES) + rng.choice(NUMBERS),
            caller_id=f"1{rng.choice('35789')}{rng.randrange(10**9):09d}",
            behaviour=rng.choice(behaviours),
            digit=rng.choice("1230"),
        )
        for _ in range(count)
    ]


async def play_caller(sim: PbxSim, prompts: PromptCatalogue, script: Script, hold_s: float) -> str:
    call = await sim.place_call(script.number, caller_id=script.caller_id)
    menu, queued = prompts.media("main_menu"), prompts.media("queued")
    try:
        if script.behaviour == "hang-up-early":
            await call.wait_for_playback(prefix="sound:hotline/welcome", timeout=60)
            await asyncio.sleep(1.0)
        else:
            await call.wait_for_playback(prefix=menu, timeout=60)
            if script.behaviour == "wrong-then-press":
                call.send_dtmf("9")
                await call.wait_for_playback(prefix=prompts.media("no_match"), timeout=60)
            if script.behaviour != "silent":
                call.send_dtmf(script.digit)
            # Queued, or put through to an agent at once when one is free; a caller whose
            # number says nothing of where they are is asked for their city: Hangzhou, keyed.
            outcomes = {queued, prompts.media("transfer_operator"), prompts.media("connecting_agent")}
            ask_city = prompts.media("ask_city")
            await call.wait_for(lambda: (outcomes | {ask_city}) & set(call.played), timeout=120,
                                what="the queue, an agent or the city question")
            if ask_city in call.played:
                call.send_dtmf("0571#")
                await call.wait_for(lambda: outcomes & set(call.played), timeout=120, what="the queue or an agent")
            await asyncio.sleep(hold_s)
    finally:
        if not call.ended:
            await call.hangup()
    return script.behaviour


async def run_demo(
    settings: Settings, *, calls: int = 20, open_browser: bool = True, linger: bool = True,
    time_scale: float = 1.0,
) -> int:
    """Run the demo; ``time_scale`` < 1 plays every prompt faster (tests use it)."""
    from devtools.pbx_sim.server import PbxSim
    from ivr.prompts.build import build_prompts
    from ivr.prompts.catalogue import PromptCatalogue

    var = settings.var_dir
    print(f"[demo] building prompts ({settings.ivr.language}) into {settings.ivr.sounds_dir} ...", flush=True)
    await asyncio.to_thread(build_prompts, settings.ivr.language, settings.ivr.sounds_dir)

    redis_proc = None
    port = urlsplit(settings.redis.url).port or 6379
    if not redis_answers(port):
        print(f"[demo] starting redis-server on port {port} (data in {var / 'redis'})", flush=True)
        redis_proc = RedisProcess(var / "redis", port=port)
        redis_proc.start()

    ari = urlsplit(settings.ari.url)
    sim = PbxSim(
        username=settings.ari.username,
        password=settings.ari.password.get_secret_value(),
        dialplan_path=PROJECT_ROOT / "dialplans" / "extensions.conf",
        sounds_dir=settings.ivr.sounds_dir,
        recordings_dir=var / "spool" / "recording",  # Asterisk's own spool, not our recordings root
        time_scale=time_scale,
    )
    await sim.start(host=ari.hostname or "127.0.0.1", port=ari.port or 8088)
    print(f"[demo] Asterisk stand-in serving ARI at {sim.url}/ari", flush=True)

    platform = await start_platform(settings)
    print(f"[demo] national platform stand-in at {platform.url} (fails one request in ten)", flush=True)

    app = Application(settings)
    await app.start()
    await app.wait_connected()
    print(f"[demo] hotline app connected as ARI application {settings.ari.app!r}", flush=True)
    # The app has accounts only with the queues on (the desktop's sign-in).
    accounts: AccountService | None = getattr(app, "accounts", None)
    if accounts is not None:
        await create_people(accounts)
    sim.endpoint(f"PJSIP/{HUMAN_AGENT}", mode="manual")
    await staff_agents(app, sim)
    welcome(app, open_browser)

    prompts = PromptCatalogue.load(settings.ivr.language)
    scripts = make_scripts(calls)
    done = 0

    async def one(i: int, script: Script) -> None:
        nonlocal done
        await asyncio.sleep(i * 0.7)
        await one_caller(sim, prompts, i + 1, script, hold_s=2.0)
        done += 1
        print(f"[demo] progress: {done}/{len(scripts)} calls finished", flush=True)

    try:
        await asyncio.gather(*(one(i, s) for i, s in enumerate(scripts)))
        await wait_calls_closed(app, timeout=10)
        await app.dispatcher.drain(timeout=10)
        await app.records.flush()
        records = await app.call_records.all()
        print_summary(records)
        print("[demo] the agents complete a ticket for each answered call", flush=True)
        await print_deliveries(app, platform, await file_tickets(app, records))
        if linger:
            print("[demo] still serving, a new call every 8 s; press Ctrl-C to stop", flush=True)
            await keep_calling(sim, prompts, len(scripts))
    finally:
        await app.stop()
        await sim.stop()
        await platform.stop()
        if redis_proc is not None:
            redis_proc.stop()
    return 0


async def one_caller(sim: PbxSim, prompts: PromptCatalogue, n: int, script: Script, *, hold_s: float) -> None:
    """Caller number ``n`` plays its script; a script failing must not stop the others."""
    print(f"[demo] call {n:>3}: {mask_phone(script.caller_id)} dials {script.number} ({script.behaviour})", flush=True)
    try:
        await play_caller(sim, prompts, script, hold_s=hold_s)
    except Exception as exc:  # noqa: BLE001 - one script failing must not stop the other callers
        print(f"[demo] call {n:>3}: script stopped: {exc}", flush=True)


async def keep_calling(sim: PbxSim, prompts: PromptCatalogue, start: int) -> None:
    """Callers keep coming while the newcomer looks at the desktop and the wallboard."""
    tasks: set[asyncio.Task[None]] = set()
    for n, script in enumerate(make_scripts(100_000, seed=start), start=start + 1):
        if n % 2:  # every other caller dials from Hangzhou: those ring on the newcomer's desktop
            script = replace(script, number="0571" + script.number[-5:], behaviour="press", digit="1")
        task = asyncio.create_task(one_caller(sim, prompts, n, script, hold_s=20.0), name=f"demo-call-{n}")
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(8.0)


#: The demo's agents: (agent id, home jurisdiction, what it is). Their phones are the
#: stand-in's, which answer after a second, as a person would.
DEMO_AGENTS = [
    # Hangzhou is left to the newcomer's agent (1005) on the desktop; Ningbo has its own.
    ("1001", "330200", "Ningbo city"),
    ("1002", "110100", "Beijing city"),
    ("1003", "440300", "Shenzhen city"),
    ("1004", "000000", "national centre (takes what no level below can)"),
]
LINES = frozenset({"general", "quality", "food_drug", "price", "intellectual_property"})


async def staff_agents(app: Application, sim: PbxSim) -> None:
    from queues.engine import Agent

    if not isinstance(app.queues, QueueService):  # queues switched off: nobody to staff
        return
    for agent_id, home, what in DEMO_AGENTS:
        endpoint = f"PJSIP/{agent_id}"
        sim.endpoint(endpoint, answer_after_s=1.0)
        await app.queues.login(Agent(agent_id, home, LINES, frozenset({app.settings.ivr.language}), endpoint))
        await app.queues.available(agent_id)
        print(f"[demo] agent {agent_id} ready: {what} ({home})", flush=True)


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
