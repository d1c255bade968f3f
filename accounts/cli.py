"""``hotline users``: the accounts of agents, supervisors and administrators.

    hotline users add --username zhangwei --role agent --jurisdiction 330106 --display-name 张伟 \\
        --agent-id 1001 --endpoint PJSIP/1001 [--sip-password | --sip-password-stdin | --sip-password-env VAR]
        [--lines general,price] [--language zh-CN]
    hotline users list [--role agent]
    hotline users disable USERNAME          no more logins; their sessions end
    hotline users enable USERNAME
    hotline users passwd USERNAME           a new password; their sessions end
    hotline users lockouts                  who is being made to wait after failed logins, and where
    hotline users unlock USERNAME           forget that user's failed logins (every address)
    hotline users unlock --address ADDR     reset an address's ceiling of failed logins

Passwords are read from the terminal (asked twice) or, with ``--password-stdin``, from the
first line of standard input; never from the command line, which other users of the machine
can read in the process list and which lands in shell histories. The SIP secret likewise:
``--sip-password`` asks for it, ``--sip-password-stdin`` reads the next line of standard input
(after the password's, when both come from there), ``--sip-password-env VAR`` reads the
environment variable VAR. It is stored encrypted (``[accounts] secret_key``).

Exit codes: 0 done, 1 refused (the message names the field and what is wrong), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from redis.asyncio import Redis
from redis.exceptions import RedisError

from accounts.models import LANGUAGES, LINES, Role, User
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
                         "use --sip-password alone to type it, --sip-password-stdin or --sip-password-env VAR")
        namespace.sip_password = "prompt"


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
    sip = add.add_mutually_exclusive_group()
    sip.add_argument("--sip-password", action=_SipPasswordPrompt, nargs="?", default=None,
                     help="ask for the SIP account's secret the browser registers with")
    sip.add_argument("--sip-password-stdin", dest="sip_password", action="store_const", const="stdin",
                     help="read the SIP secret from standard input (the line after the password's)")
    sip.add_argument("--sip-password-env", metavar="VAR",
                     help="read the SIP secret from the environment variable VAR")
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
    sub.add_parser("lockouts", help="list the usernames and addresses made to wait after failed logins")
    unlock = sub.add_parser("unlock", help="end a user's waits after failed logins, or reset an address's")
    who = unlock.add_mutually_exclusive_group(required=True)
    who.add_argument("username", nargs="?")
    who.add_argument("--address", help="the client address whose ceiling of failed logins to reset")
    return parser


def main(settings: Settings, argv: list[str], *, stdin: TextIO | None = None, out: TextIO | None = None,
         err: TextIO | None = None, prompt: Prompt = getpass.getpass) -> int:
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.action in ("lockouts", "unlock"):
            try:
                return asyncio.run(_lockouts(settings, args, out))
            except (RedisError, OSError) as exc:
                raise Refused(f"cannot reach Redis, where failed logins are counted ({type(exc).__name__})") from None
        # Asked before anything else runs: nobody should type a password for nothing.
        password = _password(args, stdin, prompt) if args.action in ("add", "passwd") else None
        sip_password = _sip_password(args, stdin, prompt) if args.action == "add" else None
        return asyncio.run(_main(settings, args, password, sip_password, out, err))
    except (Refused, AccountError, StationConfigError, SealingError) as exc:
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


def _sip_password(args: argparse.Namespace, stdin: TextIO, prompt: Prompt) -> str | None:
    if args.sip_password_env:
        value = os.environ.get(args.sip_password_env)
        if not value:
            raise Refused(f"sip_password: the environment variable {args.sip_password_env} is not set or empty")
        return value
    if args.sip_password == "stdin":
        value = stdin.readline().rstrip("\r\n")
        if not value:
            raise Refused("sip_password: standard input had no SIP secret on its "
                          f"{'second' if args.password_stdin else 'first'} line")
        return value
    if args.sip_password == "prompt":
        first = prompt(f"SIP secret of {args.endpoint or args.username}: ")
        if prompt("again: ") != first:
            raise Refused("sip_password: the two secrets typed differ; nothing was changed")
        return first
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
