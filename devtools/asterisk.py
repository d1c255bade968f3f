"""A private, real Asterisk 22 for tests and benchmarks, configured as operators configure it.

The build comes from ``../shared/asterisk`` (unpacked by ``scripts/install_asterisk.sh`` into
``.cache/asterisk``). Each instance gets its own directories and free ports, and its
configuration is written by :func:`pbx_config.install.install`, the code behind
``hotline asterisk install``: the tests prove what operators install.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import Settings
from devtools.embedded import free_port
from pbx_config.install import install
from pbx_config.render import AgentPhone
from queues.kept_bridges import is_kept_idle

ROOT = Path(__file__).resolve().parent.parent
VERSION = "22.10.1"
#: Where scripts/install_asterisk.sh unpacks the build.
BUILD = ROOT / ".cache" / "asterisk" / f"asterisk-{VERSION}"
#: The trunk's address: calls from it are the carrier's (pjsip identify by IP). A loopback
#: address of its own, so that agents' phones on 127.0.0.1 are identified by user name.
TRUNK_HOST = "127.0.0.2"
_DIRS = ("etc", "data/keys", "spool/recording", "run", "log/cdr-custom", "lib", "cache")


def free_udp_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class AsteriskInstance:
    """One running Asterisk: its directories, ports and the ARI credentials."""

    workdir: Path
    settings: Settings
    agents: list[AgentPhone] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def http_port(self) -> int:
        return self.settings.asterisk.http_port

    @property
    def sip_port(self) -> int:
        return self.settings.asterisk.sip_port

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def conf(self) -> Path:
        return self.workdir / "etc" / "asterisk.conf"

    @property
    def messages_log(self) -> Path:
        return self.workdir / "log" / "messages"

    @property
    def spool(self) -> Path:
        return self.workdir / "spool"

    # --- set-up ----------------------------------------------------------------------------

    def configure(self) -> None:
        """Directories, asterisk.conf, and everything else through ``hotline asterisk install``."""
        if not (BUILD / "sbin" / "asterisk").is_file():
            raise RuntimeError(f"no Asterisk build in {BUILD}: run scripts/install_asterisk.sh")
        for d in _DIRS:
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        # ARI serves its API declarations from rest-api/ and checks against documentation/.
        for name in ("rest-api", "documentation"):
            link = data / name
            if not link.exists():
                link.symlink_to(BUILD / "var" / "lib" / "asterisk" / name)
        w = self.workdir
        self.conf.write_text(
            "[directories]\n"
            f"astetcdir => {w / 'etc'}\nastmoddir => {BUILD / 'lib' / 'asterisk' / 'modules'}\n"
            f"astvarlibdir => {w / 'lib'}\nastdbdir => {w / 'lib'}\nastkeydir => {data}\n"
            f"astdatadir => {data}\nastagidir => {data / 'agi-bin'}\nastspooldir => {w / 'spool'}\n"
            f"astrundir => {w / 'run'}\nastlogdir => {w / 'log'}\nastsbindir => {BUILD / 'sbin'}\n"
            f"astcachedir => {w / 'cache'}\n"
            "[options]\n"
            # Never wait for a terminal, never drop to another user: a private instance.
            "nocolor = yes\n"
            "cache_record_files = no\n"
            "transmit_silence = no\n",
            encoding="utf-8",
        )
        install(self.settings, self.agents, etc_dir=w / "etc", data_dir=data)

    # --- life cycle ------------------------------------------------------------------------

    def launch_prefix(self) -> list[str]:
        """What runs Asterisk's command (nothing here; ``ip netns exec NS`` in a namespace)."""
        return []

    def start(self, timeout: float = 30.0) -> None:
        out = open(self.workdir / "log" / "console.log", "ab")
        self.proc = subprocess.Popen(
            [*self.launch_prefix(), str(BUILD / "sbin" / "asterisk"), "-C", str(self.conf), "-f", "-n"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Asterisk exited at start ({self.proc.returncode}):\n{self.console_tail()}")
            try:
                self.ari("GET", "/asterisk/info")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError(f"Asterisk's ARI did not answer within {timeout} s:\n{self.console_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            subprocess.run([str(BUILD / "sbin" / "asterisk"), "-C", str(self.conf), "-rx", "core stop now"],
                           capture_output=True, timeout=10, check=False)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """As a crash: SIGKILL, no goodbye to anyone."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- looking inside ----------------------------------------------------------------------

    def cli(self, command: str) -> str:
        result = subprocess.run([str(BUILD / "sbin" / "asterisk"), "-C", str(self.conf), "-rx", command],
                                capture_output=True, timeout=15, check=False)
        return result.stdout.decode(errors="replace")

    def ari(self, method: str, path: str, **params: str) -> Any:
        """A blocking ARI request, for set-up and checks outside the application's loop."""
        query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params.items())
        url = f"{self.ari_url}/ari{path}" + (f"?{query}" if query else "")
        req = urllib.request.Request(url, method=method)
        password = self.settings.ari.password.get_secret_value()
        token = base64.b64encode(f"{self.settings.ari.username}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def channels(self) -> list[dict[str, Any]]:
        return list(self.ari("GET", "/channels"))

    def bridges(self) -> list[dict[str, Any]]:
        return list(self.ari("GET", "/bridges"))

    def left_bridges(self) -> list[dict[str, Any]]:
        """The bridges that are not an agent's, empty between their calls (``queues.kept_bridges``):
        what a call that ended left behind."""
        return [b for b in self.bridges() if not is_kept_idle(b.get("name", ""), b.get("channels", []))]

    def wait_idle(self, timeout: float = 8.0) -> list[dict[str, Any]]:
        """Channels still up after ``timeout`` (none, once calls have ended as they should)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.channels()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def console_tail(self, lines: int = 40) -> str:
        path = self.workdir / "log" / "console.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self, level: str = "WARNING") -> list[str]:
        """Lines of the ``messages`` log at ``level`` (WARNING, ERROR, NOTICE)."""
        if not self.messages_log.exists():
            return []
        pattern = re.compile(rf"\b{level}\[")
        return [line for line in self.messages_log.read_text(errors="replace").splitlines() if pattern.search(line)]


def make_instance(workdir: Path, settings: Settings, agents: list[AgentPhone]) -> AsteriskInstance:
    """Settings for a private instance on free loopback ports; nothing started yet."""
    rtp_start = 20000 + (os.getpid() % 200) * 100  # a range of our own among parallel runs
    asterisk = settings.asterisk.model_copy(update={
        "bind_host": "127.0.0.1", "http_port": free_port(), "sip_port": free_udp_port(),
        "trunk_host": TRUNK_HOST, "trunk_port": free_udp_port(TRUNK_HOST),
        "rtp_start": rtp_start, "rtp_end": rtp_start + 98,
        "etc_dir": workdir / "etc", "data_dir": workdir / "data",
        "desk_phones": [f"PJSIP/{a.endpoint}" for a in agents if a.desk],
    })
    updated = settings.model_copy(update={"asterisk": asterisk})
    return AsteriskInstance(workdir=workdir, settings=updated, agents=agents)
