"""``python -m devtools``: the development tools' commands, beside the product's ``hotline``.

    python -m devtools demo [--rate 2.5] [--duration 600] [--no-browser]   # the whole system, simulated calls
    python -m devtools pbx-sim [--port 8088 ...]          # the Asterisk 22 ARI stand-in
    python -m devtools platform-sim [--port 0 ...]        # the national platform stand-in
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.arguments import number, whole_number
from core.privacy import configure_logging
from core.settings import load_settings
from hotline.cli import UsageError, guarded, run, take_config

DEMO_DESCRIPTION = """\
Start the whole system on embedded defaults: a redis-server, SQLite, the Asterisk stand-in
running the real dialplan, the national platform stand-in and the hotline application, with
eight simulated agents and simulated callers. The agent desktop and the wallboard are at
http://127.0.0.1:8080/ (every account's password is printed at the start).

Callers arrive at random (a Poisson process) at --rate calls a minute. Each brings a patience
(log-normal, mean --patience seconds): they hang up if no agent has answered by then. Once
answered they talk for a log-normal time (mean --talk seconds) and hang up. Some key a wrong
digit first, some say nothing, some hang up during the welcome. Every minute a line gives the
figures so far (service level: answered within 20 s of all calls that reached the queue;
abandon rate; mean wait and talk) and the agents file a ticket for each answered call.

Without --calls or --duration the callers keep coming until Ctrl-C or SIGTERM, which stop
every part (callers, application, stand-ins, the redis-server the demo started) and exit 0.
A redis-server left running by a demo that was killed (var/redis/redis-server.pid) is stopped
first, with a message.

Where it listens comes from the settings (--config, HOTLINE_* variables): HTTP 8080, ARI
8088, the platform 8090, Redis 6379, data in var/."""

DEMO_EXAMPLES = """\
examples:
  python -m devtools demo
  python -m devtools demo --no-browser --duration 600        # ten minutes, then figures and exit
  python -m devtools demo --rate 4 --patience 60             # a busier hour, less patient callers
  python -m devtools demo --calls 5 --time-scale 0.1         # five quick calls (a smoke test)
  HOTLINE_HTTP__PORT=8180 HOTLINE_REDIS__URL=redis://127.0.0.1:6390/0 HOTLINE_VAR_DIR=/tmp/demo \\
      python -m devtools demo --no-browser                  # beside another demo"""


_positive = number(above=0)
_count = whole_number(at_least=1)


def _demo(args: argparse.Namespace, _rest: list[str]) -> int:
    from devtools.demo import DemoOptions, run_demo
    from devtools.demo_callers import CallerModel

    settings = load_settings(args.config, profile="demo")
    configure_logging(settings.log_level)
    options = DemoOptions(
        callers=CallerModel(rate_per_min=args.rate, patience_mean_s=args.patience, talk_mean_s=args.talk),
        seed=args.seed, calls=args.calls, duration_s=args.duration, time_scale=args.time_scale,
        open_browser=not args.no_browser, report_every_s=args.report_every,
    )
    try:
        return run(run_demo(settings, options))
    except (RuntimeError, OSError) as exc:
        # A server that would not start, a port taken: one line, not a traceback.
        print(f"python -m devtools demo: {exc}", file=sys.stderr)
        return 1


def _pbx_sim(_args: argparse.Namespace, rest: list[str]) -> int:
    from devtools.pbx_sim.__main__ import main

    configure_logging("INFO")
    return main(rest)


def _platform_sim(_args: argparse.Namespace, rest: list[str]) -> int:
    from devtools.platform_sim.__main__ import main

    configure_logging("INFO")
    return main(rest)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from devtools.demo_callers import CallerModel

    defaults = CallerModel()
    demo = sub.add_parser("demo", help="start the whole system on embedded defaults with simulated calls",
                          description=DEMO_DESCRIPTION, epilog=DEMO_EXAMPLES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--rate", type=_positive, default=defaults.rate_per_min, metavar="PER_MIN",
                      help="mean calls a minute, arriving at random (default %(default)s: what the demo's agents "
                           "answer at about 85 %% within 20 s)")
    demo.add_argument("--patience", type=_positive, default=defaults.patience_mean_s, metavar="SECONDS",
                      help="callers' mean patience while waiting (default %(default)s)")
    demo.add_argument("--talk", type=_positive, default=defaults.talk_mean_s, metavar="SECONDS",
                      help="mean conversation once answered (default %(default)s)")
    demo.add_argument("--calls", type=_count, default=None, metavar="N",
                      help="place N calls, then report the figures, file the tickets and exit")
    demo.add_argument("--duration", type=_positive, default=None, metavar="SECONDS",
                      help="place calls for this long, let them end, then report and exit")
    demo.add_argument("--seed", type=int, default=12315,
                      help="seed of the callers' draws: the same seed, the same callers (default %(default)s)")
    demo.add_argument("--time-scale", type=_positive, default=1.0, metavar="FACTOR",
                      help="below 1, prompts and the callers' times shrink by this factor; the product's timers "
                           "(wrap-up, overflow, the 20 s of the service level) do not (default %(default)s)")
    demo.add_argument("--report-every", type=_positive, default=60.0, metavar="SECONDS",
                      help="seconds between the figures lines (default %(default)s)")
    demo.add_argument("--no-browser", action="store_true", help="do not open the desktop and wallboard in a browser")
    demo.set_defaults(handler=_demo, passthrough=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools", description=__doc__.splitlines()[0],
                                     epilog="Each command has its own --help, with examples.")
    parser.add_argument("--config", type=Path, help="TOML settings file (or HOTLINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    for name, handler, what in (("pbx-sim", _pbx_sim, "run the Asterisk 22 ARI stand-in"),
                                ("platform-sim", _platform_sim, "run the national 12315 platform stand-in")):
        sub.add_parser(name, help=what, add_help=False).set_defaults(handler=handler, passthrough=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --config before or after the subcommand, as the product's own command takes it.
    try:
        config, argv = take_config(argv)
    except UsageError as exc:
        print(f"python -m devtools: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if config:
        args.config = Path(config)
    if rest and not args.passthrough:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return guarded("devtools", lambda: int(args.handler(args, rest)))


if __name__ == "__main__":
    sys.exit(main())
