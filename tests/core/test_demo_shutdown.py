"""The demo stops whole: SIGTERM (a service manager, ``timeout``) and SIGINT (Ctrl-C) end every
part it started, the redis-server included, and free its ports; a redis-server left behind by a
demo that was killed is found and stopped, never silently reused."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from devtools.embedded import RedisProcess
from tests.support.demo import DemoProcess, port_is_free, process_alive

pytestmark = pytest.mark.slow

READY = "[demo] desktop and wallboard at"


def test_sigterm_stops_every_part_of_the_demo_and_frees_its_ports(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path, "--rate", "30", "--time-scale", "0.1")
    demo.wait_for_line(READY)
    demo.wait_for_line("dials")  # callers on the line while it stops
    redis_pid = int((tmp_path / "redis" / "redis-server.pid").read_text().split()[0])
    children = demo.children()
    assert redis_pid in children

    assert demo.stop(signal.SIGTERM) == 0

    assert demo.lines[-1] == "[demo] stopped on SIGTERM: every part of the demo has ended"
    assert f"[demo] stopping redis-server (pid {redis_pid}) ..." in demo.lines
    assert not [pid for pid in children if process_alive(pid)]
    assert all(port_is_free(port) for port in demo.ports.values()), demo.ports
    assert not (tmp_path / "redis" / "redis-server.pid").exists()
    assert "Traceback" not in demo.output


def test_a_redis_server_left_by_a_killed_demo_is_stopped_with_a_message_and_sigint_stops_the_demo(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "redis" / "redis-server.pid"
    demo = None
    # What a demo killed with -9 leaves: its redis-server running, the pid file naming it.
    leftover = RedisProcess(tmp_path / "redis", pidfile=pidfile)
    leftover.start()
    try:
        demo = DemoProcess(tmp_path)
        # The demo's port is its own; the leftover answers on another, as after a change of settings.
        line = demo.wait_for_line("left running by an earlier demo")
        demo.wait_for_line(READY)
        assert leftover.proc is not None and f"pid {leftover.proc.pid}" in line
        leftover.proc.wait(10)  # stopped by the demo: reaped here, its parent

        assert demo.stop(signal.SIGINT) == 0

        assert demo.lines[-1] == "[demo] stopped on SIGINT: every part of the demo has ended"
        assert all(port_is_free(port) for port in demo.ports.values()), demo.ports
    finally:
        leftover.stop()
        if demo is not None and demo.proc.poll() is None:
            demo.proc.kill()
