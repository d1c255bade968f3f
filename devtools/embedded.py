"""Embedded servers for the demo and the tests: a real redis-server and a throwaway
PostgreSQL cluster, started on demand."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie waits only for its parent to read its end)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "\nState:\tZ" not in status


class RedisProcess:
    """A redis-server on loopback with append-only persistence in ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None, *, pidfile: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: run scripts/bootstrap.sh (Debian package redis-server)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        #: Where the running server's pid and port are written, so that a server outliving
        #: its owner (killed with -9) is found by the next one rather than silently reused.
        self.pidfile = pidfile

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def leftover(pidfile: Path) -> tuple[int, int] | None:
        """(pid, port) of a redis-server still running from ``pidfile``, else None (a stale
        file is removed). The command line is checked: a recycled pid is someone else's."""
        try:
            pid_text, port_text = pidfile.read_text(encoding="ascii").split()
            pid, port = int(pid_text), int(port_text)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            pidfile.unlink(missing_ok=True)
            return None
        if b"redis-server" not in cmdline:
            pidfile.unlink(missing_ok=True)
            return None
        return pid, port

    @staticmethod
    def stop_leftover(pidfile: Path, timeout: float = 10.0) -> bool:
        """Stop the redis-server ``pidfile`` names (SIGTERM: it saves and exits); True if one ran."""
        found = RedisProcess.leftover(pidfile)
        if found is None:
            return False
        pid = found[0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _running(pid):
            raise RuntimeError(f"redis-server pid {pid} (from {pidfile}) did not stop within {timeout:.0f} s")
        pidfile.unlink(missing_ok=True)
        return True

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no",
             # Its periodic work (expiring keys nobody reads, statistics) once a second, not ten
             # times: an idle server cost 6.5 ms of CPU a second on a virtual host, 1.5 now (issue 15).
             # Nothing of ours waits for it: an expired key is gone when read, blocked clients'
             # timeouts are kept without it (Redis 6 and later), and the append-only file is
             # still synced every second.
             "--hz", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C at the terminal reaches only its owner, which stops the
            # application (still writing to Redis) before it stops this server.
            start_new_session=True,
        )
        if self.pidfile is not None:
            self.pidfile.write_text(f"{self.proc.pid} {self.port}\n", encoding="ascii")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if redis_answers(self.port):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
        if self.pidfile is not None:
            self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
        if self.pidfile is not None:
            self.pidfile.unlink(missing_ok=True)


_PG_TOOLS = ("initdb", "pg_ctl", "postgres", "createdb")


def find_postgres_bin() -> Path:
    """The directory holding initdb, pg_ctl, postgres and createdb: from PATH, else the newest
    /usr/lib/postgresql/<version>/bin (Debian keeps the server tools off PATH)."""
    on_path = shutil.which("pg_ctl")
    # realpath: /usr/local/bin may hold only links; the tools must come from one installation.
    candidates = [Path(os.path.realpath(on_path)).parent] if on_path else []

    def version(bindir: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(bindir).parent.name))

    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for directory in candidates:
        if all((directory / tool).is_file() for tool in _PG_TOOLS):
            return directory
    raise RuntimeError(
        f"PostgreSQL server binaries ({', '.join(_PG_TOOLS)}) not found: "
        "run scripts/bootstrap.sh (Debian package postgresql)"
    )


class PostgresProcess:
    """A throwaway PostgreSQL cluster on loopback, data and unix socket inside ``workdir``.

    One superuser ``hotline``, every connection trusted, durability off: for tests and the
    demo only. :meth:`stop` deletes the cluster together with ``workdir``.

    initdb and postgres refuse to run as root, so as root they run as the ``postgres`` OS
    user, which must be able to reach ``workdir``: every parent directory must be traversable
    by others. pytest's /tmp/pytest-of-root is mode 700, hence the default workdir: a fresh
    mode-755 directory under the system temp dir.
    """

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        self.bindir = find_postgres_bin()
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
            workdir.chmod(0o755)  # mkdtemp makes it 700; the postgres user must get in
        self.workdir = workdir
        self.port = port or free_port()
        self.data = workdir / "data"
        self.log = workdir / "server.log"
        self._as_user: list[str] = []
        self._running = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://hotline:hotline@127.0.0.1:{self.port}/hotline"

    def _run(self, *argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
        # cwd: as the postgres user, root's working directory may be unreadable.
        return subprocess.run([*self._as_user, *argv], cwd=self.workdir, capture_output=True, text=True,
                              timeout=timeout)

    def _tool(self, name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bindir / name), *args, timeout=timeout)

    def _drop_root(self) -> None:
        """As root, hand ``workdir`` to the postgres OS user and run the server tools as that user."""
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root needs the OS user postgres (Debian package postgresql)") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running as root needs runuser (Debian package util-linux)")
        for path in (self.workdir, self.workdir / "run"):
            os.chown(path, user.pw_uid, user.pw_gid)
        self._as_user = [runuser, "-u", "postgres", "--"]
        if self._run("test", "-w", str(self.workdir), timeout=10).returncode != 0:
            raise RuntimeError(
                f"the postgres OS user cannot write {self.workdir}: every parent directory must be "
                "traversable by others (o+x); leave workdir unset to get a fresh one under the temp dir"
            )

    def start(self, timeout: float = 30.0) -> None:
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        self._drop_root()
        # --no-sync: a throwaway cluster need not survive a power cut.
        done = self._tool("initdb", "-D", str(self.data), "-U", "hotline", "--auth=trust", "-E", "UTF8",
                          "--no-locale", "--no-sync", "--no-instructions", timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.data}: {(done.stderr or done.stdout).strip()}")
        socket_dir = str(self.workdir / "run").replace("'", "''")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{socket_dir}'\n"
                # Test data only: durability costs time and buys nothing here.
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        done = self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)),
                          "start", timeout=timeout + 10)
        self._running = True  # even when pg_ctl gave up waiting a server may be up: stop() must see to it
        if done.returncode == 0:
            done = self._tool("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "hotline", "hotline",
                              timeout=timeout)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no server log)"
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {detail}\nserver log:\n{tail}")

    def stop(self) -> None:
        if self._running:
            self._tool("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
            self._running = False
        shutil.rmtree(self.workdir, ignore_errors=True)
