"""Shared fixtures: real servers (redis), the Asterisk stand-in with contract checks."""

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.pbx", "tests.fixtures.app", "tests.fixtures.postgres",
                  "tests.fixtures.watchdog", "tests.fixtures.real_asterisk", "tests.fixtures.desktop",
                  "tests.fixtures.screenshots"]


#: Test folders that run calls through a real Asterisk in real time on a shared 2-core machine.
REAL_TIME = ("real_asterisk", "conformance")


@pytest.hookimpl(tryfirst=True)  # before "-m" deselects by marker: the marker must be there
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A real-time test on the real switch is marked ``real_time``: scripts/test.sh runs those
    alone, after the rest ran in two workers, because their audio and SIP timing suffer when
    another test takes a core. It gets one rerun after a failure: timing on a 2-core machine can
    still miss a bound by a hair. The rerun shows in the summary ("R", "rerun"), so a test that
    needs it is seen, not hidden; a second failure fails the run."""
    for item in items:
        if any(part in REAL_TIME for part in item.path.parts):
            item.add_marker(pytest.mark.real_time)
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=1))


@pytest.fixture(autouse=True)
def _root_logger_as_it_was() -> Iterator[None]:
    """Commands run in-process (``hotline.cli.main``) configure logging as a process would,
    replacing the root logger's handlers with one on the stderr of that moment: a captured
    stream that is closed when the test ends. Put the root logger back after every test, so the
    next test logs where pytest expects and no handler writes to a closed file."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
