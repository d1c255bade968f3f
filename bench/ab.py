"""Two checkouts of the application at once on the real switch: an A/B measured in the same minutes.

This shared host's speed drifts by a third within an hour (README, Benchmarks), more than most
cuts change: runs of A and of B one after the other compare the host's moments as much as the
code. Here each checkout gets its own Asterisk, Redis, agent phones and sipp callers (the ari
path of ``bench/side_by_side.py``, with RTP ports apart) and the two run their steps at the same
time, so every step of A has a step of B under the same load on the same cores. In the second
half the two sides swap ports and start order, so that neither side's place favours one
checkout. Per step: the application's, Redis's and Asterisk's CPU a call of each (utime+stime
from /proc, as the side-by-side), and the application's difference pair by pair.

Both checkouts run with this checkout's Python and packages (its ``.venv``): the other is a
second working tree of the same repository (``git worktree add ../b <commit>``), at a commit whose
dependencies this one has. Two switches at a rate each load the machine as one at twice that
rate: read the figures against each other, not against the side-by-side's tables.

    .venv/bin/python -m bench.ab ../b                     # this checkout (A) against ../b, 1 call/s
    .venv/bin/python -m bench.ab ../b --rate 2.5 --steps 3 --step-seconds 60
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import table  # noqa: E402

#: Each side's RTP ports (Asterisk's rtp.conf): apart, so that both switches run at once.
RTP_BASES = (40000, 45000)
RTP_SPAN = 4998


@dataclass(frozen=True)
class StepCpu:
    """One side's step: its calls and CPU a call (ms) of each process."""

    calls: int
    app: float
    redis: float
    asterisk: float
    failed: int
    left: int

    @property
    def held(self) -> bool:
        return self.failed == 0 and self.left == 0


def checkout(path: str) -> Path:
    root = Path(path).resolve()
    if not (root / "hotline" / "cli.py").is_file() or not (root / "bench" / "side_by_side.py").is_file():
        raise argparse.ArgumentTypeError(f"{path}: not a checkout of this project (no hotline/cli.py, "
                                         "bench/side_by_side.py)")
    return root


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=checkout, help="the checkout to compare with (B)")
    parser.add_argument("--a", type=checkout, default=ROOT, help="the first checkout (A; this one)")
    parser.add_argument("--rate", type=float, default=1.0, help="calls per second on each switch (1)")
    parser.add_argument("--step-seconds", type=float, default=60.0, help="how long callers arrive at each step (60)")
    parser.add_argument("--steps", type=int, default=4, help="steps in each half (4)")
    parser.add_argument("--agents", type=int, default=120, help="agents' phones on each switch (120)")
    parser.add_argument("--no-swap", action="store_true", help="one half only: no swap of the sides")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.step_seconds <= 0 or args.steps < 1 or args.agents < 1:
        parser.error("--rate, --step-seconds, --steps and --agents must be positive")
    return args


# --- one side, in a process of its own ---------------------------------------------------------

def run_side(root: Path, rtp_base: int, rate: float, step_seconds: float, steps: int, agents: int) -> int:
    """Start a switch and ``root``'s application; run the steps; print each as a JSON line."""
    from bench import side_by_side as sbs

    # Stopped by the other side's failure (SIGTERM) as by Ctrl-C: the ExitStack stops Asterisk,
    # sipp, Redis and the application, which run in sessions of their own.
    signal.signal(signal.SIGTERM, sbs._interrupted)
    # The application (``python -m hotline.cli serve``) runs from ``root``'s tree.
    sbs.ROOT = root
    sbs.RTP_START, sbs.RTP_END = rtp_base, rtp_base + RTP_SPAN
    args = sbs.parse_args(["--rates", f"{rate:g}", "--paths", "ari", "--agents", str(agents),
                           "--step-seconds", f"{step_seconds:g}"])
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    with ExitStack() as stack:
        bench = sbs.Bench(args, work, stack)
        bench.start()
        print(json.dumps({"ready": True, "work": str(work)}), flush=True)
        for _ in range(steps):
            step = bench.run_step("ari", rate)
            print(json.dumps({"calls": step.calls, "app": step.cpu_ms["app"], "redis": step.cpu_ms["redis"],
                              "asterisk": step.cpu_ms["asterisk"], "failed": step.failed, "left": step.left}),
                  flush=True)
    return 0


# --- both sides, at once -----------------------------------------------------------------------

def read_steps(output: str) -> list[StepCpu]:
    steps = []
    for line in output.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "calls" in data:
            steps.append(StepCpu(int(data["calls"]), float(data["app"]), float(data["redis"]),
                                 float(data["asterisk"]), int(data["failed"]), int(data["left"])))
    return steps


def run_half(args: argparse.Namespace, roots: tuple[Path, Path], logs: Path,
             half: int) -> tuple[list[StepCpu], list[StepCpu]]:
    """Both checkouts' steps at once; ``roots[i]`` runs on ``RTP_BASES[i]``, started in that order."""
    procs = []
    for i, root in enumerate(roots):
        err = open(logs / f"half{half}-side{i}.log", "wb")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "bench.ab", "--side", str(root), str(RTP_BASES[i]), f"{args.rate:g}",
             f"{args.step_seconds:g}", str(args.steps), str(args.agents)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True), err))
    outputs = []
    for i, (proc, err) in enumerate(procs):
        out, _ = proc.communicate()
        err.close()
        if proc.returncode != 0:
            for other, _ in procs[i + 1:]:  # a half with one side is no comparison
                other.terminate()
                other.communicate()
            raise SystemExit(f"bench.ab: the side of {roots[i]} failed ({proc.returncode}); see {err.name}")
        outputs.append(read_steps(out))
    return outputs[0], outputs[1]


def report(a: list[StepCpu], b: list[StepCpu], names: tuple[str, str]) -> str:
    """The paired steps, then the means and how often B's application cost less than A's."""
    rows = []
    for i, (x, y) in enumerate(zip(a, b, strict=False), 1):
        rows.append([str(i), str(x.calls), f"{x.app:.2f}", f"{y.app:.2f}", f"{y.app - x.app:+.2f}",
                     f"{x.redis:.2f}", f"{y.redis:.2f}", f"{x.asterisk:.1f}", f"{y.asterisk:.1f}",
                     "yes" if x.held and y.held else "no"])
    out = table(["pair", "calls each", "A app ms/call", "B app ms/call", "B - A", "A Redis", "B Redis",
                 "A Asterisk", "B Asterisk", "both held"], rows)
    pairs = list(zip(a, b, strict=False))
    if pairs:
        diffs = [y.app - x.app for x, y in pairs]
        lower = sum(1 for d in diffs if d < 0)
        app_a, app_b = statistics.mean(x.app for x, _ in pairs), statistics.mean(y.app for _, y in pairs)
        redis_a, redis_b = statistics.mean(x.redis for x, _ in pairs), statistics.mean(y.redis for _, y in pairs)
        out += (f"\n\nA = {names[0]}, B = {names[1]}: the application {app_a:.2f} against {app_b:.2f} ms a call "
                f"(B - A {statistics.mean(diffs):+.2f}, pairs {min(diffs):+.2f} to {max(diffs):+.2f}); B cost less "
                f"in {lower} of {len(pairs)} pairs; Redis {redis_a:.2f} against {redis_b:.2f} ms a call.")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--side"]:
        root, base, rate, seconds, steps, agents = argv[1:7]
        return run_side(Path(root), int(base), float(rate), float(seconds), int(steps), int(agents))
    args = parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="bench-ab-logs-"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"bench.ab: A {args.a} and B {args.other} at {args.rate:g} calls/s each, {args.steps} steps of "
          f"{args.step_seconds:g} s{'' if args.no_swap else ', then swapped'}; logs in {logs}", file=sys.stderr)
    a, b = run_half(args, (args.a, args.other), logs, 1)
    if not args.no_swap:
        b2, a2 = run_half(args, (args.other, args.a), logs, 2)
        a, b = a + a2, b + b2
    print(f"`python -m bench.ab {' '.join(argv)}`, {started}, {args.agents} agents a switch, "
          f"{args.rate:g} calls/s on each of two switches at once:\n")
    print(report(a, b, (str(args.a), str(args.other))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
