"""``hotline users``: the accounts of agents, supervisors and administrators.

    hotline users add --username zhangwei --role agent --jurisdiction 330106 --display-name 张伟 \\
        --agent-id 1001 --endpoint PJSIP/1001 [--sip-password S] [--lines general,price] [--language zh-CN]
    hotline users list [--role agent]
    hotline users disable USERNAME          no more logins; their sessions end
    hotline users enable USERNAME
    hotline users passwd USERNAME           a new password; their sessions end

Passwords are read from the terminal (asked twice) or, with ``--password-stdin``, from the
first line of standard input; never from the command line, which other users of the machine
can read in the process list and which lands in shell histories.

Exit codes: 0 done, 1 refused (the message names the field and what is wrong), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from redis.asyncio import Redis
from redis.exceptions import RedisError

from accounts.models import LANGUAGES, LINES, Role, User
from accounts.services import AccountError, AccountService, UnknownUser
from accounts.sessions import SessionStore
from core.db import make_engine, sessionmaker
from core.jurisdictions import JurisdictionTree, StationConfigError
from core.migrate import create_schema
from core.settings import Settings

Prompt = Callable[[str], str]


class Refused(Exception):
    """What the command could not do, said to the operator as is (exit code 1)."""


class _NoPasswordArgument(argparse.Action):
    """``--password X``: said to be wrong, rather than taken (or taken for ``--password-stdin``)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        parser.error("a password is never given as an argument (the process list shows it to everyone): "
                     "use --password-stdin, or type it when asked")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline users", description=__doc__.splitlines()[0], allow_abbrev=False)
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a user", allow_abbrev=False)
    add.add_argument("--password", action=_NoPasswordArgument, nargs="?", help=argparse.SUPPRESS)
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, help=" | ".join(Role))
    add.add_argument("--jurisdiction", required=True, help="GB/T 2260 code or station code (<county>-<nn>)")
    add.add_argument("--display-name", required=True)
    add.add_argument("--agent-id", help="agents: the queue engine's agent id")
    add.add_argument("--endpoint", help="the user's phone, e.g. PJSIP/1001 (agents: required)")
    add.add_argument("--sip-password", help="the SIP account's secret the browser registers with")
    add.add_argument("--lines", help=f"comma-separated business lines (default: all of {','.join(LINES)})")
    add.add_argument("--language", default="zh-CN", help=" | ".join(LANGUAGES))
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    ls = sub.add_parser("list", help="list users")
    ls.add_argument("--role", choices=list(Role))
    for name, text in (("disable", "stop a user logging in and end their sessions"),
                       ("enable", "let a user log in again")):
        sub.add_parser(name, help=text).add_argument("username")
    passwd = sub.add_parser("passwd", help="set a user's password and end their sessions", allow_abbrev=False)
    passwd.add_argument("username")
    passwd.add_argument("--password", action=_NoPasswordArgument, nargs="?", help=argparse.SUPPRESS)
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    return parser


def main(settings: Settings, argv: list[str], *, stdin: TextIO | None = None, out: TextIO | None = None,
         err: TextIO | None = None, prompt: Prompt = getpass.getpass) -> int:
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        # Asked before anything else runs: nobody should type a password for nothing.
        password = _password(args, stdin, prompt) if args.action in ("add", "passwd") else None
        return asyncio.run(_main(settings, args, password, out, err))
    except (Refused, AccountError, StationConfigError) as exc:
        err.write(f"hotline users: {exc}\n")
        return 1
    except UnknownUser as exc:
        err.write(f"hotline users: there is no user {exc.who!r} (see: hotline users list)\n")
        return 1


def _password(args: argparse.Namespace, stdin: TextIO, prompt: Prompt) -> str:
    if args.password_stdin:
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise Refused("password: standard input had no password on its first line")
        return password
    first = prompt(f"password for {args.username}: ")
    if prompt("again: ") != first:
        raise Refused("password: the two passwords typed differ; nothing was changed")
    return first


async def _main(settings: Settings, args: argparse.Namespace, password: str | None, out: TextIO,
                err: TextIO) -> int:
    tree = JurisdictionTree.load(settings.queues.stations_file)
    engine = make_engine(settings.database.url)
    try:
        await create_schema(engine)
        accounts = AccountService(sessionmaker(engine), tree)
        if args.action == "add":
            assert password is not None
            user = await accounts.add_user(
                username=args.username, password=password, role=args.role, jurisdiction=args.jurisdiction,
                display_name=args.display_name, agent_id=args.agent_id, sip_endpoint=args.endpoint,
                sip_password=args.sip_password, language=args.language,
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
