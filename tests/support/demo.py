"""The demo in tests: its settings on free ports and a var dir of the test's own, so that the
tests run beside a demo on 8080 (and beside each other)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from core.settings import Settings, load_settings
from devtools.embedded import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def demo_settings(var_dir: Path, *, redis_url: str, redis_prefix: str) -> Settings:
    """The demo profile with every port free and every file under ``var_dir``."""
    return load_settings(
        profile="demo",
        var_dir=var_dir,
        http={"port": 0},
        ari={"url": f"http://127.0.0.1:{free_port()}"},
        redis={"url": redis_url, "prefix": redis_prefix},
        database={"url": f"sqlite+aiosqlite:///{var_dir / 'demo.db'}"},
        ivr={"sounds_dir": var_dir / "sounds"},
        platform={"url": f"http://127.0.0.1:{free_port()}/api", "poll_s": 0.1, "backoff_base_s": 0.05,
                  "backoff_cap_s": 0.5},
    )


def demo_environment(var_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of a ``python -m devtools demo`` subprocess on free ports, its own Redis
    port among them, and the ports by name (to check they are free again after it)."""
    ports = {name: free_port() for name in ("http", "ari", "redis", "platform")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({
        "HOTLINE_VAR_DIR": str(var_dir),
        "HOTLINE_HTTP__PORT": str(ports["http"]),
        "HOTLINE_ARI__URL": f"http://127.0.0.1:{ports['ari']}",
        "HOTLINE_REDIS__URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "HOTLINE_PLATFORM__URL": f"http://127.0.0.1:{ports['platform']}/api",
        "HOTLINE_DATABASE__URL": f"sqlite+aiosqlite:///{var_dir / 'demo.db'}",
        "HOTLINE_IVR__SOUNDS_DIR": str(var_dir / "sounds"),
        "PYTHONUNBUFFERED": "1",
    })
    return env, ports


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` (loopback) any more: it can be bound again."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_alive(pid: int) -> bool:
    """A process with ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


class DemoProcess:
    """``python -m devtools demo`` as a child process, its output read line by line in a thread
    so that a test can wait for a line without blocking forever."""

    def __init__(self, var_dir: Path, *args: str) -> None:
        self.env, self.ports = demo_environment(var_dir)
        self.var_dir = var_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools", "demo", "--no-browser", *args], cwd=PROJECT_ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 60) -> str:
        """The first line containing ``text``; fails with the output so far if none comes in time."""
        with self._changed:
            found = self._changed.wait_for(lambda: next((ln for ln in self.lines if text in ln), None)
                                           or self.proc.poll() is not None, timeout)
            line = next((ln for ln in self.lines if text in ln), None)
        if not found or line is None:
            raise AssertionError(f"no line with {text!r} from the demo; its output:\n{self.output}")
        return line

    def children(self) -> list[int]:
        """The demo's child processes now (redis-server among them), whichever of its threads
        started them (the demo starts redis-server from a worker thread)."""
        children = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            try:
                children += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue  # a thread that ended meanwhile
        return children

    def stop(self, sig: signal.Signals, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the demo to exit; its exit code."""
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the demo did not exit within {timeout} s of {sig.name}:\n{self.output}") from None
        self._reader.join(10)  # the last lines of the output
        return code
