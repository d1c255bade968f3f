"""hotline users: the accounts of agents, supervisors and administrators.

Passwords are asked on the terminal (twice), or read from the first line of standard input
(--password-stdin) or of a file (--password-file PATH); never from the command line, which
other users of the machine can read in the process list and which lands in shell histories.
Without a terminal and without either flag, the command says so instead of waiting. A new
password must be hard to guess (zxcvbn's estimate, its lists of common passwords, and not the
user's own name): a weak one is refused with the reason and advice. The SIP secret likewise:
--sip-password asks for it, --sip-password-stdin reads the next line of standard input (after
the password's, when both come from there), --sip-password-file PATH reads a file,
--sip-password-env VAR the environment variable VAR. It is stored encrypted ([accounts] secret_key).

Exit codes: 0 done, 1 refused (the message names the flag and what is wrong), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from redis.asyncio import Redis
from redis.exceptions import RedisError

from accounts.models import LANGUAGES, LINES, Role, User
from accounts.passwords import WeakPassword, check_password, strength_problem
from accounts.ratelimit import LoginLimiter
from accounts.services import AccountError, AccountService, UnknownUser
from accounts.sessions import SessionStore
from core.db import make_engine, sessionmaker
from core.jurisdictions import JurisdictionTree, StationConfigError
from core.migrate import create_schema
from core.sealing import SealingError, secret_box
from core.settings import Settings

Prompt = Callable[[str], str]


class Refused(Exception):
    """What the command could not do, said to the operator as is (exit code 1)."""


class _SipPasswordPrompt(argparse.Action):
    """``--sip-password``: ask for it; ``--sip-password X``: refused, as for the password."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 *_args: object) -> None:
        if values is not None:
            parser.error("a SIP secret is never given as an argument (the process list shows it to everyone): "
                         "use --sip-password alone to type it, --sip-password-stdin, --sip-password-file PATH "
                         "or --sip-password-env VAR")
        namespace.sip_password = "prompt"


class _NoPasswordArgument(argparse.Action):
    """``--password X``: said to be wrong, rather than taken (or taken for ``--password-stdin``)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        parser.error("a password is never given as an argument (the process list shows it to everyone): "
                     "use --password-stdin or --password-file PATH, or type it when asked")


_RAW = argparse.RawDescriptionHelpFormatter

_ADD_EXAMPLES = """examples:
  hotline users add --username zhangwei --role agent --jurisdiction 330106 --display-name 张伟 \\
      --agent-id 1001 --endpoint PJSIP/1001 --sip-password
  printf '%s\\n%s\\n' "$PASSWORD" "$SIP_SECRET" | hotline users add --username li --role agent \\
      --jurisdiction 330106 --display-name 李娜 --agent-id 1002 --endpoint PJSIP/1002 \\
      --password-stdin --sip-password-stdin
  hotline users add --username wang --role supervisor --jurisdiction 330000 --display-name 王芳 \\
      --password-file /run/secrets/wang"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline users", allow_abbrev=False, formatter_class=_RAW,
        description="The accounts of agents, supervisors and administrators of the desktop and wallboard.\n"
                    "Passwords come from the terminal, standard input or a file, never from the command line.",
        epilog="examples:\n  hotline users list --role agent\n  hotline users passwd zhangwei\n"
               "  hotline users disable zhangwei\n  hotline users lockouts\n  hotline users add --help")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, summary: str, description: str, epilog: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description, epilog=epilog, formatter_class=_RAW,
                              allow_abbrev=False)

    add = action("add", "add a user",
                 "Add a user. An agent also needs --agent-id and --endpoint (the phone the queue rings);\n"
                 "the password is asked twice unless --password-stdin or --password-file gives it.", _ADD_EXAMPLES)
    add.add_argument("--password", action=_NoPasswordArgument, nargs="?", help=argparse.SUPPRESS)
    add.add_argument("--username", required=True, help="2 to 64 of a-z, 0-9, '.', '_', '-'")
    add.add_argument("--role", required=True, help=" | ".join(Role))
    add.add_argument("--jurisdiction", required=True, help="GB/T 2260 code or station code (<county>-<nn>)")
    add.add_argument("--display-name", required=True, help="the name colleagues see")
    add.add_argument("--agent-id", help="agents: the queue engine's agent id")
    add.add_argument("--endpoint", help="the user's phone, e.g. PJSIP/1001 (agents: required)")
    sip = add.add_mutually_exclusive_group()
    sip.add_argument("--sip-password", action=_SipPasswordPrompt, nargs="?", default=None,
                     help="ask for the SIP account's secret the browser registers with (a value given "
                          "here is refused: the process list would show it)")
    sip.add_argument("--sip-password-stdin", dest="sip_password", action="store_const", const="stdin",
                     help="read the SIP secret from standard input (the line after the password's)")
    sip.add_argument("--sip-password-file", metavar="PATH", type=Path, help="read the SIP secret from a file")
    sip.add_argument("--sip-password-env", metavar="VAR",
                     help="read the SIP secret from the environment variable VAR")
    add.add_argument("--lines", help=f"comma-separated business lines (default: all of {','.join(LINES)})")
    add.add_argument("--language", default="zh-CN", help=" | ".join(LANGUAGES))
    _password_sources(add)
    ls = action("list", "list users", "List the users: role, jurisdiction, agent id, phone, status.",
                "examples:\n  hotline users list\n  hotline users list --role supervisor")
    ls.add_argument("--role", choices=list(Role))
    for name, text, description in (
            ("disable", "stop a user logging in and end their sessions",
             "Stop a user logging in; their open sessions end at once."),
            ("enable", "let a user log in again", "Let a disabled user log in again.")):
        action(name, text, description, f"example:\n  hotline users {name} zhangwei").add_argument("username")
    passwd = action("passwd", "set a user's password and end their sessions",
                    "Set a user's password (asked twice, or from --password-stdin or --password-file);\n"
                    "their open sessions end.",
                    "examples:\n  hotline users passwd zhangwei\n"
                    "  hotline users passwd zhangwei --password-file /run/secrets/zhangwei")
    passwd.add_argument("username")
    passwd.add_argument("--password", action=_NoPasswordArgument, nargs="?", help=argparse.SUPPRESS)
    _password_sources(passwd)
    action("lockouts", "list the usernames and addresses made to wait after failed logins",
           "List who is made to wait after failed logins, from where, and for how long.",
           "example:\n  hotline users lockouts")
    unlock = action("unlock", "end a user's waits after failed logins, or reset an address's",
                    "Forget a user's failed logins (at every address), or reset an address's ceiling.",
                    "examples:\n  hotline users unlock zhangwei\n  hotline users unlock --address 192.0.2.44")
    who = unlock.add_mutually_exclusive_group(required=True)
    who.add_argument("username", nargs="?")
    who.add_argument("--address", help="the client address whose ceiling of failed logins to reset")
    return parser


def _password_sources(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    source.add_argument("--password-file", metavar="PATH", type=Path,
                        help="read the password from the first line of a file")


#: The flag that gives each field the account service checks, for its messages.
FLAGS = {"username": "--username", "role": "--role", "jurisdiction": "--jurisdiction",
         "display_name": "--display-name", "agent_id": "--agent-id", "sip_endpoint": "--endpoint",
         "sip_password": "--sip-password", "lines": "--lines", "language": "--language", "password": "password"}


class Usage(Exception):
    """How the command was called cannot work (exit code 2)."""


def main(settings: Settings, argv: list[str], *, stdin: TextIO | None = None, out: TextIO | None = None,
         err: TextIO | None = None, prompt: Prompt | None = None) -> int:
    """``prompt`` asks on the terminal (getpass when standard input is one); tests give their own."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    if prompt is None and _is_terminal(stdin):
        prompt = getpass.getpass
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.action in ("lockouts", "unlock"):
            # Redis not answering is said by the hotline command, with its exit code.
            return asyncio.run(_lockouts(settings, args, out))
        # Asked before anything else runs: nobody should type a password for nothing.
        password = _password(args, stdin, prompt) if args.action in ("add", "passwd") else None
        sip_password = _sip_password(args, stdin, prompt) if args.action == "add" else None
        return asyncio.run(_main(settings, args, password, sip_password, out, err))
    except Usage as exc:
        err.write(f"hotline users: {exc}\n")
        return 2
    except AccountError as exc:
        flag = FLAGS.get(exc.field, exc.field)
        err.write(f"hotline users: {flag}: {str(exc).removeprefix(exc.field + ': ')}\n")
        return 1
    except (Refused, StationConfigError, SealingError) as exc:
        err.write(f"hotline users: {exc}\n")
        return 1
    except UnknownUser as exc:
        err.write(f"hotline users: there is no user {exc.who!r} (see: hotline users list)\n")
        return 1


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False


def _read_line(stdin: TextIO, what: str, line: str) -> str:
    value = stdin.readline().rstrip("\r\n")
    if not value:
        raise Refused(f"{what}: standard input had no {'password' if what == 'password' else 'SIP secret'} "
                      f"on its {line} line")
    return value


def _read_file(path: Path, flag: str) -> str:
    try:
        with path.open(encoding="utf-8") as file:
            value = file.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(f"{flag}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not value:
        raise Refused(f"{flag}: the first line of {path} is empty")
    return value


def _typed_twice(prompt: Prompt | None, question: str, flags: str, what: str) -> str:
    if prompt is None:
        raise Usage(f"no terminal to ask for the {what}: give it with {flags}")
    try:
        first = prompt(question)
        again = prompt("again: ")
    except EOFError:
        raise Usage(f"the {what} was not typed (end of input): give it with {flags}") from None
    if again != first:
        raise Refused(f"{what}: the two typed differ; nothing was changed")
    return first


def _password(args: argparse.Namespace, stdin: TextIO, prompt: Prompt | None) -> str:
    if args.password_stdin:
        password = _read_line(stdin, "password", "first")
    elif args.password_file is not None:
        password = _read_file(args.password_file, "--password-file")
    else:
        password = _typed_twice(prompt, f"password for {args.username}: ", "--password-stdin or --password-file PATH",
                                "password")
    try:
        check_password(password)
    except WeakPassword as exc:
        raise Refused(str(exc)) from None
    personal = [args.username] + ([args.display_name] if getattr(args, "display_name", None) else [])
    problem = strength_problem(password, personal=personal)
    if problem is not None:
        raise Refused(f"password: {problem}")
    return password


def _sip_password(args: argparse.Namespace, stdin: TextIO, prompt: Prompt | None) -> str | None:
    if args.sip_password_env:
        value = os.environ.get(args.sip_password_env)
        if not value:
            raise Refused(f"--sip-password-env: the environment variable {args.sip_password_env} is not set or empty")
        return value
    if args.sip_password_file is not None:
        return _read_file(args.sip_password_file, "--sip-password-file")
    if args.sip_password == "stdin":
        return _read_line(stdin, "--sip-password-stdin", "second" if args.password_stdin else "first")
    if args.sip_password == "prompt":
        return _typed_twice(prompt, f"SIP secret of {args.endpoint or args.username}: ",
                            "--sip-password-stdin, --sip-password-file PATH or --sip-password-env VAR", "SIP secret")
    return None


async def _lockouts(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    redis = Redis.from_url(settings.redis.url)
    try:
        limiter = LoginLimiter.from_settings(redis, settings.redis.prefix, settings.http)
        if args.action == "lockouts":
            rows = await limiter.lockouts()
            out.write(f"{'username':<20} {'address':<28} {'failures':>8} {'wait s':>8}  kind\n")
            for row in rows:
                out.write(f"{row.username or '-':<20} {row.address or '-':<28} {row.failures:>8} "
                          f"{row.wait_s:>8.0f}  {row.kind}\n")
            if not rows:
                out.write("(nobody is made to wait)\n")
        elif args.address:
            ended = await limiter.unlock_address(args.address)
            out.write(f"address {args.address}: its count of failed logins cleared\n" if ended
                      else f"address {args.address}: had no failed logins counted\n")
        else:
            ended = await limiter.unlock(args.username)
            out.write(f"{args.username}: {ended} counter(s) of failed logins cleared, no wait left\n" if ended
                      else f"{args.username}: had no failed logins counted\n")
        return 0
    finally:
        await redis.aclose()


async def _main(settings: Settings, args: argparse.Namespace, password: str | None, sip_password: str | None,
                out: TextIO, err: TextIO) -> int:
    tree = JurisdictionTree.load(settings.queues.stations_file)
    engine = make_engine(settings.database.url)
    try:
        await create_schema(engine, settings)
        accounts = AccountService(sessionmaker(engine), tree, box=secret_box(settings))
        if args.action == "add":
            assert password is not None
            user = await accounts.add_user(
                username=args.username, password=password, role=args.role, jurisdiction=args.jurisdiction,
                display_name=args.display_name, agent_id=args.agent_id, sip_endpoint=args.endpoint,
                sip_password=sip_password, language=args.language,
                lines=None if args.lines is None else [v.strip() for v in args.lines.split(",") if v.strip()])
            out.write(f"added {user.role} {user.username} (id {user.id}) at {user.jurisdiction}\n")
        elif args.action == "list":
            _print_users(await accounts.list(role=args.role), out)
        elif args.action == "enable":
            user = await accounts.enable(args.username)
            out.write(f"{user.username} may log in again\n")
        else:
            if args.action == "disable":
                user = await accounts.disable(args.username)
                out.write(f"{user.username} is disabled\n")
            else:
                assert password is not None
                user = await accounts.set_password(args.username, password)
                out.write(f"password of {user.username} changed\n")
            await _end_sessions(settings, user, out, err)
        return 0
    finally:
        await engine.dispose()


async def _end_sessions(settings: Settings, user: User, out: TextIO, err: TextIO) -> None:
    redis = Redis.from_url(settings.redis.url)
    try:
        ended = await SessionStore(redis, settings.redis.prefix, settings.http.session_idle_s).delete_all_for(user.id)
        out.write(f"{ended} session(s) of {user.username} ended\n")
    except (RedisError, OSError) as exc:
        # The change is saved. A disabled user is refused at their next request anyway; a
        # changed password leaves their sessions running until they idle out.
        err.write(f"hotline users: could not reach Redis to end the sessions of {user.username} "
                  f"({type(exc).__name__}); they end after {settings.http.session_idle_s} s idle\n")
    finally:
        await redis.aclose()


def _print_users(rows: Sequence[User], out: TextIO) -> None:
    out.write(f"{'username':<20} {'role':<10} {'jurisdiction':<12} {'agent':<8} {'endpoint':<14} "
              f"{'language':<8} {'status':<8} display name / lines\n")
    for u in rows:
        out.write(f"{u.username:<20} {u.role:<10} {u.jurisdiction:<12} {u.agent_id or '-':<8} "
                  f"{u.sip_endpoint or '-':<14} {u.language:<8} {'disabled' if u.disabled else 'active':<8} "
                  f"{u.display_name} / {','.join(u.lines)}\n")
    if not rows:
        out.write("(no users)\n")
