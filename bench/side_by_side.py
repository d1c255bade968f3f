"""Side by side on one real Asterisk 22: the project's ARI path against the dialplan + app_queue.

One Asterisk (the build of ../shared/asterisk, installed by scripts/install_asterisk.sh),
configured by ``hotline asterisk install``, serves two paths in turns, at each load:

- ``ari``: the project's dialplan hands the call to ``hotline serve`` (its own process): the
  welcome and the main menu, the key 1 (complaint), the queue engine, an agent's phone rung and
  answered, the bridge, the talk, the hang-up. Speech, recording and delivery are off.
- ``dialplan``: the same job written for Asterisk alone (bench/side_by_side_files/): Answer, the
  same prompts in Read() (the key stops them), Queue() whose static members are the same agents.

The same sipp callers (carrier trunk, the key sent as an RFC 4733 event 1.5 s after the answer,
the caller hangs up after --call-seconds) and the same agent phones (one sipp answering every
agent's static contact after --answer-ms) serve both. Per step (a path at a rate): set-up time
INVITE -> 200 OK (p50/p95, sipp's response times), CPU per call of Asterisk, the application,
Redis and the database (utime+stime from /proc, before and after the step, divided by the calls
placed), calls that failed in sipp, callers that never reached an agent, channels still up once
the step settled, Asterisk's warnings. A step is "held" when every caller reached an agent and
nothing was left up. Nothing heavy runs before the switch answers; the two paths share the
machine with sipp, Redis and the database.

Examples:
    .venv/bin/python -m bench.side_by_side                                # 1 and 2.5 calls/s, 60 s each
    .venv/bin/python -m bench.side_by_side --rates 1,2.5,5,10 --call-seconds 20 --step-seconds 60
    .venv/bin/python -m bench.side_by_side --rates 2 --step-seconds 20 --paths dialplan --markdown
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import table  # noqa: E402
from core.settings import load_settings  # noqa: E402
from devtools.asterisk import BUILD, TRUNK_HOST, AsteriskInstance, free_udp_port, make_instance  # noqa: E402
from devtools.embedded import PostgresProcess, RedisProcess  # noqa: E402
from pbx_config.render import AgentPhone  # noqa: E402
from tests.support.sipp import counter, last_stats, percentile, response_times_ms, setup_times_ms  # noqa: E402

FILES = Path(__file__).resolve().parent / "side_by_side_files"
#: Prompts built once per machine (espeak-ng), shared with the real-Asterisk tests.
SOUNDS_CACHE = ROOT / ".cache" / "test-sounds"
#: The number the project's path is called on (Hangzhou's 12315: jurisdiction 330100) and the
#: number of the dialplan path (a literal extension of from-pstn, added for the benchmark).
ARI_NUMBER = "057112315"
DIALPLAN_NUMBER = "99912315"
HANGZHOU = "330100"
FIRST_AGENT = 2001
#: RTP ports for this instance: two per channel, two channels per call (caller and agent).
RTP_START, RTP_END = 40000, 49998
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Missing(SystemExit):
    """A prerequisite is not installed: one line saying which and what installs it."""


def check_prerequisites() -> None:
    if shutil.which("sipp") is None:
        raise Missing("side_by_side: sipp is not installed: run scripts/install_asterisk.sh "
                      "(Debian package sip-tester)")
    if not (BUILD / "sbin" / "asterisk").is_file():
        raise Missing(f"side_by_side: no Asterisk build in {BUILD}: run scripts/install_asterisk.sh")
    if shutil.which("redis-server") is None:
        raise Missing("side_by_side: redis-server is not installed: run scripts/bootstrap.sh")
    if not Path("/usr/share/sip-tester/dtmf_2833_1.pcap").is_file():
        raise Missing("side_by_side: sipp's pcaps are missing (/usr/share/sip-tester): "
                      "run scripts/install_asterisk.sh (Debian package sip-tester)")


# --- CPU from /proc ----------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def tree_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) of a process, its live descendants, and the
    children it has reaped (PostgreSQL's ended backends are counted by their postmaster)."""
    if pid is None:
        return 0.0
    kids, total, todo = _children(), 0, [pid]
    while todo:
        p = todo.pop()
        fields = _stat(p)
        if fields is None:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        todo += kids.get(p, [])
    return total / CLK_TCK


# --- the benchmark's own configuration, on top of what `hotline asterisk install` wrote ----------

def fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def add_bench_config(instance: AsteriskInstance, agents: list[AgentPhone], phones_port: int, args: argparse.Namespace,
                     ) -> None:
    """Static contacts for the agents (their phones are one sipp), the dialplan path and its queue."""
    etc = instance.workdir / "etc"
    pjsip = etc / "pjsip.conf"
    text = pjsip.read_text(encoding="utf-8")
    # Each agent's aor: a static contact instead of a registration, not qualified (the contact's
    # status stays Unknown, which Asterisk counts as reachable: the endpoint is online).
    def static(m: re.Match[str]) -> str:
        return f"{m.group(0)}\ncontact=sip:{m.group(1)}@127.0.0.1:{phones_port}\nqualify_frequency=0"

    text, found = re.subn(r"^\[(\d+)\]\(agent-aor\)$", static, text, flags=re.M)
    if found != len(agents):
        raise SystemExit(f"side_by_side: expected {len(agents)} agent aors in pjsip.conf, found {found}")
    pjsip.write_text(text, encoding="utf-8")
    values = {
        "number": DIALPLAN_NUMBER, "attempts": "3", "no_input_s": "5", "max_wait_s": "600",
        "ring_timeout_s": str(args.ring_timeout), "wrap_up_s": f"{args.wrap_up:g}",
        "members": "\n".join(f"member => PJSIP/{a.endpoint},0,{a.endpoint}" for a in agents),
    }
    for name in ("extensions.conf", "queues.conf"):
        with open(etc / name, "a", encoding="utf-8") as conf:
            conf.write("\n" + fill((FILES / name).read_text(encoding="utf-8"), values))


# --- running things ----------------------------------------------------------------------------

def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"side_by_side: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def channels_up(instance: AsteriskInstance) -> int:
    m = re.search(r"(\d+) active channel", instance.cli("core show channels count"))
    return int(m.group(1)) if m else -1


def postgres_pid(pg: PostgresProcess) -> int | None:
    try:
        return int((pg.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def log_agents_in(redis_url: str, prefix: str, agents: list[AgentPhone]) -> None:
    """As the desktop's Login and Available do: every agent at Hangzhou, line general, Chinese."""
    from redis.asyncio import Redis

    from queues.engine import Agent, QueueEngine

    redis = Redis.from_url(redis_url)
    try:
        engine = QueueEngine(redis, f"{prefix}:queues")
        for a in agents:
            await engine.login(Agent(a.endpoint, HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}),
                                     f"PJSIP/{a.endpoint}"))
            await engine.set_available(a.endpoint)
    finally:
        await redis.aclose()


@dataclass
class Step:
    path: str
    rate: float
    calls: int = 0
    failed: int = 0
    connected: int = 0
    setup_ms: list[float] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    left: int = 0
    warnings: int = 0
    seconds: float = 0.0
    note: str = ""

    @property
    def unconnected(self) -> int:
        return max(0, self.calls - self.connected)

    @property
    def held(self) -> bool:
        return self.calls > 0 and self.failed == 0 and self.unconnected == 0 and self.left == 0

    def per_call(self, who: str) -> float:
        return self.cpu_ms.get(who, 0.0)

    @property
    def total_ms(self) -> float:
        return sum(self.cpu_ms.values())


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, stack: ExitStack) -> None:
        self.args, self.work, self.stack = args, work, stack
        self.agents = [AgentPhone(str(FIRST_AGENT + i), f"bench-{FIRST_AGENT + i}-{secrets.token_hex(4)}",
                                  f"Agent {FIRST_AGENT + i}", desk=True) for i in range(args.agents)]
        self.app: subprocess.Popen[bytes] | None = None
        self.phones: subprocess.Popen[bytes] | None = None
        self.pg: PostgresProcess | None = None
        self.prefix = "bench"
        self.step_no = 0

    # -- set-up --

    def start(self) -> None:
        a = self.args
        self.redis = RedisProcess(self.work / "redis")
        self.redis.start()
        self.stack.callback(self.redis.stop)
        if a.database == "postgresql":
            self.pg = PostgresProcess()
            self.pg.start()
            self.stack.callback(self.pg.stop)
            db_url = self.pg.url
        else:
            db_url = f"sqlite+aiosqlite:///{self.work / 'hotline.db'}"
        settings = load_settings(ari={"password": secrets.token_hex(12)},
                                 asterisk={"rtp_timeout_s": 300, "rtp_timeout_hold_s": 600})
        instance = make_instance(self.work / "asterisk", settings, self.agents)
        wide = instance.settings.asterisk.model_copy(update={"rtp_start": RTP_START, "rtp_end": RTP_END})
        instance.settings = instance.settings.model_copy(update={"asterisk": wide})
        self.asterisk = instance
        SOUNDS_CACHE.mkdir(parents=True, exist_ok=True)
        (instance.workdir / "data").mkdir(parents=True, exist_ok=True)
        (instance.workdir / "data" / "sounds").symlink_to(SOUNDS_CACHE)
        instance.configure()
        self.phones_port = free_udp_port()
        add_bench_config(instance, self.agents, self.phones_port, a)
        instance.start()
        self.stack.callback(instance.stop)
        self.start_phones()
        self.db_url = db_url
        self.start_app()
        asyncio.run(log_agents_in(self.redis.url, self.prefix, self.agents))
        # Asterisk sees every agent's endpoint online (static contact), so both paths may ring it.
        state = instance.ari("GET", f"/endpoints/PJSIP/{self.agents[0].endpoint}").get("state")
        if state != "online":
            raise SystemExit(f"side_by_side: agent endpoint PJSIP/{self.agents[0].endpoint} is {state!r}, not online")

    def agent_audio(self) -> Path:
        """What the agents say: the welcome and the main menu as raw A-law (8 kHz), for sipp's
        rtp_stream."""
        import warnings
        import wave

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # deprecated, still in 3.11: the one A-law encoder at hand

        raw = b""
        for name in ("welcome-general", "main-menu"):
            with wave.open(str(SOUNDS_CACHE / "zh_CN" / "hotline" / f"{name}.wav")) as w:
                if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != (8000, 2, 1):
                    raise SystemExit(f"side_by_side: {name}.wav is not 8 kHz 16-bit mono")
                raw += w.readframes(w.getnframes())
        path = self.work / "agent-speech.alaw"
        path.write_bytes(audioop.lin2alaw(raw, 2))
        return path

    def start_phones(self) -> None:
        out = open(self.work / "phones.log", "wb")
        self.phones_stats = self.work / "phones-stats.csv"
        # sipp reads no keyword in an exec: the speech file's path is written into the scenario.
        scenario = self.work / "agent.xml"
        scenario.write_text((FILES / "agent.xml").read_text(encoding="utf-8")
                            .replace("[agent_audio]", str(self.agent_audio())), encoding="utf-8")
        self.phones = subprocess.Popen(
            ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(self.phones_port),
             "-mi", "127.0.0.1", "-mp", str(free_udp_port()), "-d", str(self.args.answer_ms),
             "-trace_stat", "-stf", str(self.phones_stats), "-fd", "1", "-nostdin", "-aa",
             "-max_socket", "4096", "-l", "100000"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.work, start_new_session=True)
        out.close()
        self.stack.callback(stop_process, self.phones)
        wait_for(lambda: self.phones_stats.exists(), 15, "the agents' sipp writing its statistics")

    def start_app(self) -> None:
        """``hotline serve``, connected to ARI. A dialplan step runs without it (a site without
        the application has none: no events are made for it, no CPU spent)."""
        if self.app is not None and self.app.poll() is None:
            return
        inst, a, db_url = self.asterisk, self.args, self.db_url
        env = {
            **os.environ, "HOTLINE_LOG_LEVEL": "WARNING", "HOTLINE_VAR_DIR": str(self.work / "var"),
            "HOTLINE_ARI__URL": inst.ari_url, "HOTLINE_ARI__USERNAME": inst.settings.ari.username,
            "HOTLINE_ARI__PASSWORD": inst.settings.ari.password.get_secret_value(),
            "HOTLINE_REDIS__URL": self.redis.url, "HOTLINE_REDIS__PREFIX": self.prefix,
            "HOTLINE_DATABASE__URL": db_url,
            "HOTLINE_SPEECH__ENABLED": "false", "HOTLINE_RECORDINGS__ENABLED": "false",
            "HOTLINE_PLATFORM__ENABLED": "false", "HOTLINE_HTTP__ENABLED": "false",
            "HOTLINE_IVR__CHECK_MEDIA": "false",
            "HOTLINE_QUEUES__WRAP_UP_S": f"{a.wrap_up:g}", "HOTLINE_QUEUES__RING_TIMEOUT_S": str(a.ring_timeout),
        }
        out = open(self.work / "app.log", "ab")
        self.app = subprocess.Popen([sys.executable, "-m", "hotline.cli", "serve"], env=env, cwd=ROOT,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        out.close()
        self.stack.callback(stop_process, self.app)  # the last one; stop_app stopped the others

        def connected() -> bool:
            if self.app is not None and self.app.poll() is not None:
                raise SystemExit(f"side_by_side: hotline serve exited ({self.app.returncode}); "
                                 f"see {self.work / 'app.log'}")
            try:
                return any(app.get("name") == "hotline" for app in inst.ari("GET", "/applications"))
            except OSError:
                return False

        wait_for(connected, 60, "hotline serve connecting to ARI")
        time.sleep(3.0)  # its start-up work (resync, phone states) done before anything is measured

    def stop_app(self) -> None:
        stop_process(self.app)
        deadline = time.monotonic() + 10  # Asterisk lets go of the application's registration
        while time.monotonic() < deadline and any(
                app.get("name") == "hotline" for app in self.asterisk.ari("GET", "/applications")):
            time.sleep(0.2)

    # -- a step --

    def cpu(self) -> dict[str, float]:
        return {
            "asterisk": tree_cpu_s(self.asterisk.proc.pid if self.asterisk.proc else None),
            "app": tree_cpu_s(self.app.pid if self.app else None),
            "redis": tree_cpu_s(self.redis.proc.pid if self.redis.proc else None),
            "database": tree_cpu_s(postgres_pid(self.pg)) if self.pg else 0.0,
        }

    def phones_answered(self) -> int:
        return counter(last_stats(self.phones_stats.read_text(errors="replace")), "SuccessfulCall")

    def run_step(self, path: str, rate: float) -> Step:
        a = self.args
        step = Step(path, rate)
        self.step_no += 1
        if path == "ari":
            self.start_app()
        else:
            self.stop_app()
        folder = self.work / f"{path}-{rate:g}"
        folder.mkdir()
        calls = max(1, round(rate * a.step_seconds))
        talk_ms = max(1000, int(a.call_seconds * 1000) - 1500)
        warnings0 = len(self.asterisk.log_lines("WARNING"))
        answered0 = self.phones_answered()
        cpu0, t0 = self.cpu(), time.monotonic()
        stats = folder / "callers-stats.csv"
        with open(folder / "callers.log", "wb") as out:
            caller = subprocess.Popen(
                ["sipp", f"127.0.0.1:{self.asterisk.sip_port}", "-sf", str(FILES / "caller.xml"),
                 "-s", ARI_NUMBER if path == "ari" else DIALPLAN_NUMBER,
                 # Callers' numbers differ from step to step (13800<step><call>): no caller of a
                 # step is taken for one calling again (the queue's "resume place").
                 "-key", "step", f"{self.step_no:02d}",
                 "-i", TRUNK_HOST, "-p", str(self.asterisk.settings.asterisk.trunk_port),
                 "-mi", TRUNK_HOST, "-mp", str(free_udp_port(TRUNK_HOST)), "-rtp_echo",
                 "-r", f"{rate:g}", "-m", str(calls), "-l", "100000", "-d", str(talk_ms),
                 "-trace_stat", "-stf", str(stats), "-fd", "1", "-trace_rtt", "-rtt_freq", "1", "-trace_msg",
                 "-nostdin", "-aa", "-max_socket", "4096",
                 "-timeout", f"{int(a.step_seconds + a.call_seconds + 120)}s"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
            try:
                caller.wait(timeout=a.step_seconds + a.call_seconds + 180)
            except subprocess.TimeoutExpired:
                step.note = "sipp callers did not finish"
            finally:
                stop_process(caller)
        # Settled: every channel gone, or --settle seconds waited for it.
        deadline = time.monotonic() + a.settle
        while (left := channels_up(self.asterisk)) != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2.5)  # the agents' sipp writes its statistics every second
        cpu1, step.seconds = self.cpu(), time.monotonic() - t0
        step.left = left
        row = last_stats(stats.read_text(errors="replace")) if stats.exists() else {}
        step.calls = counter(row, "TotalCallCreated") or calls
        step.failed = counter(row, "FailedCall")
        step.connected = self.phones_answered() - answered0
        # INVITE -> 200 OK to the microsecond from the message trace (sipp's own response times,
        # the fallback, are whole milliseconds).
        trace = next(iter(folder.glob("*_messages.log")), None)
        step.setup_ms = setup_times_ms(trace.read_text(errors="replace")) if trace else []
        rtt = next(iter(folder.glob("*_rtt.csv")), None)
        if not step.setup_ms and rtt is not None:
            step.setup_ms = response_times_ms(rtt.read_text(errors="replace"))
        step.cpu_ms = {k: (cpu1[k] - cpu0[k]) * 1000 / step.calls for k in cpu0}
        step.warnings = len(self.asterisk.log_lines("WARNING")) - warnings0
        if left:
            self.clear_channels()
        return step

    def clear_channels(self) -> None:
        """Hang up what a step left, so that the next step starts clean (and agents are free)."""
        for ch in self.asterisk.channels():
            try:
                self.asterisk.ari("DELETE", f"/channels/{ch['id']}")
            except OSError:
                pass
        time.sleep(2.0)


# --- the tables ----------------------------------------------------------------------------------

WHO = ("asterisk", "app", "redis", "database")


def fmt(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def steps_table(steps: list[Step], database: str) -> str:
    header = ["path", "calls/s", "calls", "INVITE→200 p50 ms", "p95 ms", "Asterisk CPU ms/call", "app ms/call",
              "Redis ms/call", f"database ({database}) ms/call", "total ms/call", "failed", "not connected",
              "channels left", "Asterisk warnings", "held"]
    rows = []
    for s in steps:
        rows.append([s.path, f"{s.rate:g}", s.calls,
                     fmt(percentile(s.setup_ms, 50), 2), fmt(percentile(s.setup_ms, 95), 2),
                     # The application is stopped during dialplan steps: nothing of it to count.
                     fmt(s.per_call("asterisk")), fmt(s.per_call("app")) if s.path == "ari" else "–",
                     fmt(s.per_call("redis"), 2),
                     fmt(s.per_call("database"), 2) if database == "postgresql" else "in app",
                     fmt(s.total_ms), s.failed, s.unconnected, s.left, s.warnings,
                     "yes" if s.held else "no" + (f" ({s.note})" if s.note else "")])
    return table(header, rows)


def ratio(a: float, b: float) -> str:
    return "–" if b <= 0 or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


def ratios_table(steps: list[Step]) -> str:
    by = {(s.path, s.rate): s for s in steps}
    rows = []
    for rate in sorted({s.rate for s in steps}):
        ari, plan = by.get(("ari", rate)), by.get(("dialplan", rate))
        if ari is None or plan is None:
            continue
        rows.append([f"{rate:g}", ratio(ari.per_call("asterisk"), plan.per_call("asterisk")),
                     ratio(ari.total_ms, plan.total_ms),
                     ratio(percentile(ari.setup_ms, 50), percentile(plan.setup_ms, 50)),
                     ratio(percentile(ari.setup_ms, 95), percentile(plan.setup_ms, 95))])
    return table(["calls/s", "Asterisk CPU ari/dialplan", "whole system CPU ari/dialplan",
                  "set-up p50 ari/dialplan", "set-up p95 ari/dialplan"], rows)


def highest_held(steps: list[Step], path: str) -> str:
    held = [s.rate for s in steps if s.path == path and s.held]
    failed = [s.rate for s in steps if s.path == path and not s.held]
    if not held:
        return "none of the loads tried"
    best = max(held)
    above = [r for r in failed if r > best]
    return f"{best:g} calls/s" + (f" (failed at {min(above):g})" if above else " (the highest tried)")


def report(steps: list[Step], args: argparse.Namespace) -> str:
    lines = [steps_table(steps, args.database), "", ratios_table(steps), "",
             f"Highest load held: ari {highest_held(steps, 'ari')}; dialplan {highest_held(steps, 'dialplan')}."]
    return "\n".join(lines)


def rates(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rates: calls per second separated by commas, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"--rates: every rate must be above 0, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m bench.side_by_side", description=doc.split("\n\n")[0],
        epilog=doc[doc.index("Examples:"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=rates, default=[1.0, 2.5], help="calls per second, one step each (1,2.5)")
    parser.add_argument("--call-seconds", type=float, default=20.0, help="each call, answer to hang-up (20)")
    parser.add_argument("--step-seconds", type=float, default=60.0, help="how long callers arrive at each step (60)")
    parser.add_argument("--paths", default="ari,dialplan",
                        help="which paths, in this order at each rate (ari,dialplan)")
    parser.add_argument("--agents", type=int, default=0,
                        help="agents' phones (default: enough for the highest rate: "
                             "rate x (call + wrap-up + 3 s) + 10)")
    parser.add_argument("--answer-ms", type=int, default=1000, help="an agent's phone rings this long (1000)")
    parser.add_argument("--wrap-up", type=float, default=1.0, help="agents' wrap-up after a call, both paths (1 s)")
    parser.add_argument("--ring-timeout", type=int, default=20, help="seconds an agent's phone rings at most (20)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds a step waits for channels to go (20)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the application's database (sqlite: in its process; postgresql: an embedded server)")
    parser.add_argument("--markdown", action="store_true", help="print the tables with the run's line for the README")
    args = parser.parse_args(argv)
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not args.paths or any(p not in ("ari", "dialplan") for p in args.paths):
        parser.error(f"--paths: ari and/or dialplan, got {','.join(args.paths)!r}")
    if args.call_seconds < 5:
        parser.error(f"--call-seconds: at least 5 (the key is sent 1.5 s after the answer), got {args.call_seconds:g}")
    if args.step_seconds <= 0:
        parser.error(f"--step-seconds: must be above 0, got {args.step_seconds:g}")
    if args.agents <= 0:
        args.agents = math.ceil(max(args.rates) * (args.call_seconds + args.wrap_up + 3)) + 10
    return args


def iter_steps(args: argparse.Namespace) -> Iterator[tuple[str, float]]:
    for rate in args.rates:
        for path in args.paths:
            yield path, rate


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="bench-side-"))
    steps: list[Step] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        with ExitStack() as stack:
            bench = Bench(args, work, stack)
            print(f"side_by_side: starting Asterisk, Redis, {args.database}, hotline serve and "
                  f"{args.agents} agent phones in {work}", file=sys.stderr)
            bench.start()
            for path, rate in iter_steps(args):
                print(f"side_by_side: {path} at {rate:g} calls/s for {args.step_seconds:g} s "
                      f"({args.call_seconds:g} s calls)...", file=sys.stderr)
                step = bench.run_step(path, rate)
                steps.append(step)
                print(steps_table([step], args.database).splitlines()[-1], file=sys.stderr)
    except KeyboardInterrupt:
        print("side_by_side: interrupted; the steps done so far:", file=sys.stderr)
    if not steps:
        return 1
    out = report(steps, args)
    if args.markdown:
        cmd = " ".join(["python -m bench.side_by_side", *(argv if argv is not None else sys.argv[1:])])
        out = (f"`{cmd}`, Asterisk {BUILD.name.split('-')[-1]}, {os.cpu_count()} cores, {started}, "
               f"{args.agents} agents, {args.call_seconds:g} s calls, {args.step_seconds:g} s per step:\n\n{out}")
    print(out)
    print(f"side_by_side: logs and sipp's files are in {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
