"""The ``hotline`` command: one entry point, one sub-command per job.

Sub-commands import their feature lazily so that ``hotline --help`` stays fast and a
missing optional dependency only affects the command that needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from core.privacy import configure_logging
from core.settings import SettingsError, load_settings


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed: the same code, a faster event loop (libuv)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _cmd_serve(args: argparse.Namespace) -> int:
    from hotline.app import run_serve

    settings = load_settings(args.config)
    configure_logging(settings.log_level)
    return run(run_serve(settings))


def _cmd_prompts(args: argparse.Namespace) -> int:
    from ivr.prompts.build import main as prompts_main

    configure_logging("INFO")
    return prompts_main(args.rest)


def _cmd_models(args: argparse.Namespace) -> int:
    from ivr.speech.models import main as models_main

    return models_main(args.rest)


def _with_settings(module: str) -> Callable[[argparse.Namespace], int]:
    """A command whose ``main(settings, argv)`` lives in ``module``, imported when it runs."""

    def handler(args: argparse.Namespace) -> int:
        main = importlib.import_module(module).main
        settings = load_settings(args.config)
        configure_logging(settings.log_level)
        return int(main(settings, args.rest))

    return handler


_cmd_outbox = _with_settings("delivery.cli")
_cmd_db = _with_settings("core.migrate")
_cmd_users = _with_settings("accounts.cli")
_cmd_recordings = _with_settings("recordings.cli")
_cmd_callrecords = _with_settings("callrecords.cli")
_cmd_asterisk = _with_settings("pbx_config.cli")


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int], bool]] = {
    # name: (help, handler, passes the remaining arguments through)
    "serve": ("run the ARI application against Asterisk", _cmd_serve, False),
    "prompts": ("build the IVR prompt sound files", _cmd_prompts, True),
    "models": ("download and verify speech models", _cmd_models, True),
    "outbox": ("inspect, retry and replay deliveries to the national platform", _cmd_outbox, True),
    "db": ("upgrade or inspect the database schema (Alembic)", _cmd_db, True),
    "users": ("add, list, disable users of the desktop and wallboard; set passwords", _cmd_users, True),
    "recordings": ("check recordings against their index; purge those past retention", _cmd_recordings, True),
    "callrecords": ("import the calls Asterisk served without the application (its CDR file)", _cmd_callrecords,
                    True),
    "asterisk": ("install the hotline's configuration, prompts and music on hold into Asterisk", _cmd_asterisk, True),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML settings file (or HOTLINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _handler, passthrough) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, add_help=not passthrough)
        if passthrough:
            p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Pass-through commands take their own options, which argparse's REMAINDER does not
    # capture when they come first: collect the unknown ones here instead.
    args, extra = parser.parse_known_args(argv)
    _help, handler, passthrough = COMMANDS[args.command]
    if passthrough:
        args.rest = extra + list(args.rest)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return guarded("hotline", lambda: handler(args))


def guarded(prog: str, command: Callable[[], int]) -> int:
    """Run a command: bad settings are one line on stderr and exit 2, Ctrl-C exits 130."""
    try:
        return command()
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
