"""``python -m devtools``: the development tools' commands, beside the product's ``hotline``.

    python -m devtools demo [--calls N] [--no-browser]   # the whole system, simulated calls
    python -m devtools pbx-sim [--port 8088 ...]          # the Asterisk 22 ARI stand-in
    python -m devtools platform-sim [--port 0 ...]        # the national platform stand-in
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.privacy import configure_logging
from core.settings import load_settings
from hotline.cli import guarded, run


def _demo(args: argparse.Namespace, _rest: list[str]) -> int:
    from devtools.demo import run_demo

    settings = load_settings(args.config, profile="demo")
    configure_logging(settings.log_level)
    return run(run_demo(settings, calls=args.calls, open_browser=not args.no_browser))


def _pbx_sim(_args: argparse.Namespace, rest: list[str]) -> int:
    from devtools.pbx_sim.__main__ import main

    configure_logging("INFO")
    return main(rest)


def _platform_sim(_args: argparse.Namespace, rest: list[str]) -> int:
    from devtools.platform_sim.__main__ import main

    configure_logging("INFO")
    return main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML settings file (or HOTLINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="start the whole system on embedded defaults with simulated calls")
    demo.add_argument("--calls", type=int, default=20, help="simulated calls to place")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.set_defaults(handler=_demo, passthrough=False)
    for name, handler, what in (("pbx-sim", _pbx_sim, "run the Asterisk 22 ARI stand-in"),
                                ("platform-sim", _platform_sim, "run the national 12315 platform stand-in")):
        sub.add_parser(name, help=what, add_help=False).set_defaults(handler=handler, passthrough=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not args.passthrough:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return guarded("devtools", lambda: int(args.handler(args, rest)))


if __name__ == "__main__":
    sys.exit(main())
