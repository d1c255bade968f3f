"""``hotline serve`` with counters, for the benchmarks: the product's own command, run in this
process with what an outsider cannot see counted from inside it.

Counted from the start: SQL statements sent to the database (SQLAlchemy's
``before_cursor_execute``; an ``executemany`` of many rows is one), transactions committed, log
records written (those that pass the configured level), the process's CPU time, and the cyclic
garbage collector's collections by generation and its time in them (``gc.callbacks``). On SIGUSR1
the counters are written, as JSON, to the file named by ``BENCH_PROBE_OUT``: a benchmark reads
them before and after what it measures. With ``BENCH_PROFILE=<file>``, a first SIGUSR2 starts
cProfile and the next stops it and writes its statistics there, so that the profile holds what
is measured and nothing of the start-up.

    BENCH_PROBE_OUT=/tmp/c.json .venv/bin/python bench/app_probe.py serve
"""

from __future__ import annotations

import cProfile
import gc
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402


class Counters:
    def __init__(self, out: Path, profile_to: Path | None) -> None:
        self.out, self.profile_to = out, profile_to
        self.sql = 0
        self.sql_by_verb: dict[str, int] = {}
        self.commits = 0
        self.log_records = 0
        self.snapshots = 0
        self.profiler: cProfile.Profile | None = None
        self.gc_s = 0.0
        self.gc_by_generation = [0, 0, 0]
        self._gc_started = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._collection)
        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "commit", self._commit)
        # Records are made only for loggers enabled at their level: a record made is a line
        # written (the root handler takes every record that reaches it).
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            self.log_records += 1
            return make(*args, **kwargs)

        logging.setLogRecordFactory(factory)
        signal.signal(signal.SIGUSR1, self._snapshot)
        signal.signal(signal.SIGUSR2, self._profile)

    def _statement(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                   executemany: bool) -> None:
        self.sql += 1
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        self.sql_by_verb[verb] = self.sql_by_verb.get(verb, 0) + 1

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def _collection(self, phase: str, info: dict[str, int]) -> None:
        # Wall time: a collection holds the GIL and runs start to stop without sleeping.
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_s += time.perf_counter() - self._gc_started
            self.gc_by_generation[info["generation"]] += 1

    def _snapshot(self, signum: int, frame: FrameType | None) -> None:
        self.snapshots += 1
        data = {"cpu_s": time.process_time(), "sql": self.sql, "sql_by_verb": self.sql_by_verb,
                "commits": self.commits, "log_records": self.log_records, "snapshot": self.snapshots,
                "gc_s": self.gc_s, "gc_by_generation": self.gc_by_generation}
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.out)  # the reader never sees half a file

    def _profile(self, signum: int, frame: FrameType | None) -> None:
        if self.profile_to is None:
            return
        if self.profiler is None:
            self.profiler = cProfile.Profile()
            self.profiler.enable()
        else:
            self.profiler.disable()
            self.profiler.dump_stats(self.profile_to)
            self.profiler = None


def main() -> int:
    profile = os.environ.get("BENCH_PROFILE")
    Counters(Path(os.environ["BENCH_PROBE_OUT"]), Path(profile) if profile else None).install()
    from hotline.cli import main as hotline_main

    return hotline_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
