"""The hotline command: one entry point, one subcommand per job.

Subcommands import their feature lazily so that "hotline --help" stays fast and a missing
optional dependency only affects the command that needs it. Whatever goes wrong that the
operator can fix (a setting, a flag, a service that does not answer) ends in one line on stderr
and an exit code of its own (hotline.reach.ExitCode), never in a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from core.arguments import number
from core.privacy import configure_logging
from core.settings import Settings, SettingsError, load_settings, unknown_environment
from hotline.reach import (
    EXIT_CODES_HELP,
    ExitCode,
    Unreachable,
    database_problem,
    database_unreachable,
    is_database_unreachable,
    is_redis_unreachable,
    redis_unreachable,
)

Raw = argparse.RawDescriptionHelpFormatter


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed: the same code, a faster event loop (libuv)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    configure_logging(settings.log_level)
    return settings


def _cmd_serve(args: argparse.Namespace) -> int:
    from hotline.app import run_serve

    settings = _settings(args)
    return _reaching(settings, lambda: run(run_serve(settings, wait_s=args.wait)))


def _cmd_prompts(args: argparse.Namespace) -> int:
    from ivr.prompts.build import main as prompts_main

    settings = load_settings(args.config)
    configure_logging("INFO")
    return prompts_main(args.rest, settings=settings)


def _cmd_models(args: argparse.Namespace) -> int:
    from ivr.speech.models import main as models_main

    return models_main(args.rest)


def _with_settings(module: str) -> Callable[[argparse.Namespace], int]:
    """A command whose ``main(settings, argv)`` lives in ``module``, imported when it runs."""

    def handler(args: argparse.Namespace) -> int:
        main = importlib.import_module(module).main
        settings = _settings(args)
        return _reaching(settings, lambda: int(main(settings, args.rest)))

    return handler


def _reaching(settings: Settings, command: Callable[[], int]) -> int:
    """Run ``command``; Redis or the database not answering becomes :class:`Unreachable`.

    The features' commands connect where they need to; this is the one place that turns their
    connection errors into the line the operator reads (the features cannot name our exit codes)."""
    try:
        return command()
    except Unreachable:
        raise
    except Exception as exc:
        if is_redis_unreachable(exc):
            raise redis_unreachable(settings.redis.url, exc) from None
        if is_database_unreachable(exc):
            # Asked again on a connection of its own: the command's error may be a locked file
            # or a missing table, which is no reason to send the operator to check the URL.
            problem = asyncio.run(database_problem(settings.database.url))
            if problem is not None:
                raise database_unreachable(settings.database.url, problem) from None
        raise


_cmd_outbox = _with_settings("delivery.cli")
_cmd_db = _with_settings("core.migrate")
_cmd_users = _with_settings("accounts.cli")
_cmd_recordings = _with_settings("recordings.cli")
_cmd_callrecords = _with_settings("callrecords.cli")
_cmd_asterisk = _with_settings("pbx_config.cli")
_cmd_speech = _with_settings("ivr.speech.cli")


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int], bool]] = {
    # name: (help, handler, passes the remaining arguments through)
    "serve": ("run the ARI application against Asterisk", _cmd_serve, False),
    "prompts": ("build the IVR prompt sound files", _cmd_prompts, True),
    "models": ("download and verify speech models", _cmd_models, True),
    "speech": ("check a locale pack's speech menus: phrases the recognizer confuses", _cmd_speech, True),
    "outbox": ("inspect, retry and replay deliveries to the national platform", _cmd_outbox, True),
    "db": ("upgrade or inspect the database schema (Alembic)", _cmd_db, True),
    "users": ("add, list, disable users of the desktop and wallboard; set passwords", _cmd_users, True),
    "recordings": ("check recordings against their index; purge those past retention", _cmd_recordings, True),
    "callrecords": ("import the calls Asterisk served without the application (its CDR file)", _cmd_callrecords,
                    True),
    "asterisk": ("install the hotline's configuration, prompts and music on hold into Asterisk", _cmd_asterisk, True),
}

EPILOG = f"""settings:
  defaults, then the TOML file (--config FILE or HOTLINE_CONFIG), then environment variables
  HOTLINE_<SECTION>__<NAME>, e.g. HOTLINE_HTTP__PORT=8081 or HOTLINE_REDIS__URL=redis://host:6379/0.
  --config may stand before or after the subcommand. Each subcommand has its own --help.

examples:
  hotline serve
  hotline --config /etc/hotline/hotline.toml serve
  hotline users add --help
  HOTLINE_LOG_LEVEL=DEBUG hotline outbox stats

{EXIT_CODES_HELP}"""

SERVE_DESCRIPTION = """Run the hotline: the ARI application that answers the calls Asterisk sends it, the
agent desktop and wallboard over HTTP ([http] host and port), and the delivery to the national
platform. It runs until SIGINT or SIGTERM; calls in progress stay in Asterisk and are resumed by
the next start.

At start it waits up to --wait seconds for Redis and the database (a WARNING per try), then
exits with code 3 or 4 naming the one that did not answer. Asterisk it waits for as long as it
takes: while ARI does not answer, a WARNING per try (every few seconds, at most every
[ari] reconnect_max_s), and the calls go to the dialplan's fallback meanwhile."""

SERVE_EPILOG = """examples:
  hotline serve
  hotline serve --config /etc/hotline/hotline.toml
  HOTLINE_ARI__URL=http://pbx:8088 HOTLINE_REDIS__URL=redis://cache:6379/0 hotline serve --wait 60"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=Raw, allow_abbrev=False)
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML settings file (or HOTLINE_CONFIG); before or after the subcommand")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, _handler, _passthrough) in COMMANDS.items():
        if name == "serve":
            p = sub.add_parser(name, help=help_text, description=SERVE_DESCRIPTION, epilog=SERVE_EPILOG,
                               formatter_class=Raw, allow_abbrev=False)
            p.add_argument("--wait", type=_seconds, default=15.0, metavar="SECONDS",
                           help="how long to wait for Redis and the database at start (default 15)")
        else:
            # Its own parser (in its module) answers --help, with its description and examples.
            p = sub.add_parser(name, help=help_text, add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


#: Seconds to wait for Redis and the database at start: at most an hour, a bound an operator can mean.
_seconds = number(within=(0, 3600))


def take_config(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--config FILE`` or ``--config=FILE`` wherever it stands, and the arguments without it:
    an operator types it after the subcommand as often as before, and the subcommands that
    take their own arguments would otherwise see it as theirs."""
    config: str | None = None
    rest: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--":
            rest.append(item)
            rest.extend(items)
            break
        if item == "--config":
            value = next(items, None)
            if value is None or value.startswith("-"):
                raise UsageError("--config needs a file: --config FILE (a TOML settings file)")
            config = value
        elif item.startswith("--config="):
            config = item.removeprefix("--config=")
            if not config:
                raise UsageError("--config needs a file: --config=FILE (a TOML settings file)")
        else:
            rest.append(item)
    return config, rest


class UsageError(Exception):
    """A command line that cannot mean anything: said in one line, exit 2."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config, argv = take_config(argv)
    except UsageError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    for warning in unknown_environment(os.environ):
        print(f"hotline: {warning}", file=sys.stderr)
    parser = build_parser()
    # Pass-through commands take their own options, which argparse's REMAINDER does not
    # capture when they come first: collect the unknown ones here instead.
    args, extra = parser.parse_known_args(argv)
    args.config = Path(config) if config else None
    _help, handler, passthrough = COMMANDS[args.command]
    if passthrough:
        args.rest = extra + list(args.rest)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return guarded("hotline", lambda: handler(args))


def guarded(prog: str, command: Callable[[], int]) -> int:
    """Run a command: what the operator can fix is one line on stderr and its exit code."""
    from core.migrate import SchemaMismatch

    try:
        return command()
    except SettingsError as exc:
        for line in str(exc).splitlines():
            print(f"{prog}: {line}", file=sys.stderr)
        return ExitCode.USAGE
    except Unreachable as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.code
    except SchemaMismatch as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return ExitCode.REFUSED
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
