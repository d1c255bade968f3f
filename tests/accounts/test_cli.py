"""``hotline users``: an administrator adds, lists and disables users and sets passwords; every
mistake is said plainly, naming the flag, with exit code 1 (2 for bad usage); passwords never travel
as arguments, come from the terminal, standard input or a file, and must be hard to guess."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from accounts.cli import main
from accounts.ratelimit import LoginLimiter
from accounts.sessions import SessionStore
from core.db import make_engine
from core.settings import Settings, load_settings
from devtools.embedded import RedisProcess
from hotline import cli as hotline_cli
from pbx_config.cli import agent_phones
from tests.support.jurisdictions import stations_file

AGENT = ["add", "--username", "zhangwei", "--role", "agent", "--jurisdiction", "330106-01",
         "--display-name", "张伟", "--agent-id", "1001", "--endpoint", "PJSIP/1001", "--sip-password-stdin",
         "--lines", "general,price", "--password-stdin"]


@pytest.fixture
def settings(sqlite_url: str, redis_server: RedisProcess, redis_prefix: str, tmp_path: Path) -> Settings:
    return load_settings(profile="test", database={"url": sqlite_url},
                         redis={"url": redis_server.url, "prefix": redis_prefix},
                         queues={"stations_file": str(stations_file(tmp_path))})


class Run:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.out = self.err = ""

    def __call__(self, *argv: str, stdin: str = "a long passphrase\ns1p-secret\n", typed: tuple[str, ...] = ()) -> int:
        out, err, answers = io.StringIO(), io.StringIO(), iter(typed)
        code = main(self.settings, list(argv), stdin=io.StringIO(stdin), out=out, err=err,
                    prompt=lambda _text: next(answers))
        self.out, self.err = out.getvalue(), err.getvalue()
        return code


@pytest.fixture
def run(settings: Settings) -> Run:
    return Run(settings)


def test_an_agent_is_added_with_the_password_from_stdin_and_listed(run: Run) -> None:
    assert run(*AGENT) == 0, run.err
    assert run.out.startswith("added agent zhangwei (id ") and "at 330106-01" in run.out
    assert run("list") == 0
    [header, row] = run.out.splitlines()
    assert row.split()[:7] == ["zhangwei", "agent", "330106-01", "1001", "PJSIP/1001", "zh-CN", "active"]
    assert row.endswith("张伟 / general,price") and "s1p-secret" not in run.out
    assert run("list", "--role", "supervisor") == 0 and run.out.endswith("(no users)\n")


@pytest.mark.parametrize(("change", "message"), [
    (("--role", "boss"), "hotline users: --role: must be one of agent, supervisor, admin (got 'boss')\n"),
    (("--jurisdiction", "999999"), "hotline users: --jurisdiction: unknown jurisdiction code '999999'"),
    (("--lines", "general,gas"), "hotline users: --lines: unknown business line(s) 'gas'"),
    (("--endpoint", "1001"), "hotline users: --endpoint: must look like PJSIP/1001 (got '1001')\n"),
])
def test_a_bad_field_is_refused_with_exit_code_1_naming_it(run: Run, change: tuple[str, str], message: str) -> None:
    argv = list(AGENT)
    argv[argv.index(change[0]) + 1] = change[1]
    assert run(*argv) == 1
    assert run.err.startswith(message) and run.out == ""
    assert run("list") == 0 and run.out.endswith("(no users)\n")


def test_a_short_password_is_refused_whether_piped_or_typed(run: Run) -> None:
    assert run(*AGENT, stdin="short\ns1p-secret\n") == 1
    assert run.err == "hotline users: password: must be at least 10 characters long (got 5)\n"
    assert run(*AGENT, stdin="\n") == 1
    assert "standard input had no password" in run.err
    typed = [a for a in AGENT if a not in ("--password-stdin", "--sip-password-stdin")]
    assert run(*typed, typed=("a long passphrase", "a long passphrasf")) == 1
    assert "the two typed differ" in run.err
    assert run(*typed, typed=("a long passphrase", "a long passphrase")) == 0


def test_a_password_on_the_command_line_is_bad_usage(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(*AGENT, "--password", "a long passphrase") == 2
    assert "a password is never given as an argument" in capsys.readouterr().err
    assert run("passwd", "zhangwei", "--password=a long passphrase") == 2
    assert run("add", "--username", "x") == 2  # the rest is required


def test_disabling_and_a_new_password_end_the_users_sessions(run: Run, settings: Settings) -> None:
    assert run(*AGENT) == 0
    user_id = int(run.out.split("(id ")[1].split(")")[0])

    async def sessions(action: str) -> int:
        redis = Redis.from_url(settings.redis.url)
        store = SessionStore(redis, settings.redis.prefix, 600)
        try:
            if action == "create":
                await store.create(user_id)
            return int(await redis.scard(f"{settings.redis.prefix}:user-sessions:{user_id}"))
        finally:
            await redis.aclose()

    assert asyncio.run(sessions("create")) == 1
    assert run("passwd", "ZhangWei", "--password-stdin", stdin="another passphrase\n") == 0
    assert run.out == "password of zhangwei changed\n1 session(s) of zhangwei ended\n"
    assert asyncio.run(sessions("create")) == 1
    assert run("disable", "zhangwei") == 0
    assert run.out == "zhangwei is disabled\n1 session(s) of zhangwei ended\n"
    assert asyncio.run(sessions("count")) == 0
    assert run("list") == 0 and " disabled " in run.out
    assert run("enable", "zhangwei") == 0 and run("list") == 0 and " active " in run.out


def test_an_unknown_user_or_stations_file_is_said_plainly(run: Run, settings: Settings, tmp_path: Path) -> None:
    assert run("disable", "nobody") == 1
    assert run.err == "hotline users: there is no user 'nobody' (see: hotline users list)\n"
    assert run("passwd", "nobody", "--password-stdin") == 1
    run.settings = settings.model_copy(update={"queues": settings.queues.model_copy(
        update={"stations_file": tmp_path / "missing.toml"})})
    assert run("list") == 1 and "stations file not found" in run.err


def test_the_hotline_command_has_users(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE__URL", settings.database.url)
    monkeypatch.setenv("HOTLINE_REDIS__URL", settings.redis.url)
    assert hotline_cli.main(["users", "list"]) == 0
    assert "(no users)" in capsys.readouterr().out


def test_the_sip_secret_is_never_an_argument_and_comes_from_stdin_a_variable_or_the_terminal(
        run: Run, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a for a in AGENT if a != "--sip-password-stdin"]
    assert run(*argv, "--sip-password", "s1p-secret") == 2
    assert "a SIP secret is never given as an argument" in capsys.readouterr().err
    assert run(*AGENT, stdin="a long passphrase\n") == 1
    assert run.err == "hotline users: --sip-password-stdin: standard input had no SIP secret on its second line\n"

    assert run(*AGENT) == 0, run.err  # password, then SIP secret, on standard input
    monkeypatch.setenv("AGENT2_SIP", "env-secret")
    second = [a.replace("1001", "1002").replace("zhangwei", "li") for a in argv]
    assert run(*second, "--sip-password-env", "AGENT2_SIP") == 0, run.err
    assert run(*second, "--sip-password-env", "NOT_SET") == 1 and "NOT_SET is not set" in run.err
    third = [a.replace("1001", "1003").replace("zhangwei", "zhao") for a in argv]
    assert run(*third, "--sip-password", typed=("typed-secret", "typed-secret")) == 0, run.err

    # Stored sealed: the database never holds them in clear; pjsip.conf gets them in clear.
    async def stored() -> list[str]:
        engine = make_engine(settings.database.url)
        try:
            async with engine.connect() as conn:
                return [row[0] for row in await conn.execute(text("SELECT sip_password_sealed FROM users"))]
        finally:
            await engine.dispose()

    sealed = asyncio.run(stored())
    assert len(sealed) == 3 and all(v.startswith("v1:") for v in sealed)
    assert not any(secret in v for v in sealed for secret in ("s1p-secret", "env-secret", "typed-secret"))
    phones = asyncio.run(agent_phones(settings))
    assert sorted(p.secret for p in phones) == ["env-secret", "s1p-secret", "typed-secret"]


def test_operators_list_who_is_made_to_wait_and_end_it(run: Run, settings: Settings) -> None:
    async def fail(times: int) -> None:
        redis = Redis.from_url(settings.redis.url)
        try:
            limiter = LoginLimiter.from_settings(redis, settings.redis.prefix, settings.http)
            for _ in range(times):
                await limiter.failed("zhangwei", "192.0.2.44")
        finally:
            await redis.aclose()

    assert run("lockouts") == 0 and run.out.endswith("(nobody is made to wait)\n")
    asyncio.run(fail(7))
    assert run("lockouts") == 0
    [_, row] = run.out.splitlines()
    assert row.split()[:3] == ["zhangwei", "192.0.2.44", "7"] and row.endswith("user at address")
    assert run("unlock", "ZhangWei") == 0
    assert run.out == "ZhangWei: 2 counter(s) of failed logins cleared, no wait left\n"  # at the address, overall
    assert run("lockouts") == 0 and run.out.endswith("(nobody is made to wait)\n")
    assert run("unlock", "--address", "192.0.2.44") == 0
    assert run.out == "address 192.0.2.44: its count of failed logins cleared\n"
    assert run("unlock", "--address", "192.0.2.44") == 0 and "had no failed logins counted" in run.out


@pytest.mark.parametrize(("password", "reason"), [
    ("aaaaaaaaaa", 'Repeats like "aaa" are easy to guess'),
    ("1234567890", "This is a top-100 common password"),
    ("password1234", "common password"),
])
def test_a_password_easy_to_guess_is_refused_with_the_reason_and_advice(run: Run, password: str,
                                                                        reason: str) -> None:
    assert run(*AGENT, stdin=f"{password}\ns1p-secret\n") == 1
    [line] = run.err.splitlines()
    assert line.startswith("hotline users: password: too easy to guess (strength ")
    assert reason in line and "Add another word or two" in line
    assert run("list") == 0 and run.out.endswith("(no users)\n")


def test_a_password_containing_the_users_name_is_refused(run: Run) -> None:
    assert run(*AGENT, stdin="zhangwei-likes-green-tea\ns1p-secret\n") == 1
    assert run.err == "hotline users: password: contains the username (zhangwei); choose one that does not\n"
    assert run(*AGENT, stdin="张伟的密码很长很长很长\ns1p-secret\n") == 1
    assert "contains a name of the user (张伟)" in run.err


def test_a_strong_password_is_accepted_from_a_file(run: Run, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("violet-harbour-quietly-seven\n", encoding="utf-8")
    sip = tmp_path / "sip"
    sip.write_text("s1p-from-a-file\n", encoding="utf-8")
    argv = [a for a in AGENT if a not in ("--password-stdin", "--sip-password-stdin")]
    assert run(*argv, "--password-file", str(secret), "--sip-password-file", str(sip), stdin="") == 0, run.err
    assert run("passwd", "zhangwei", "--password-file", str(tmp_path / "missing")) == 1
    assert run.err == f"hotline users: --password-file: cannot read {tmp_path / 'missing'}: No such file or directory\n"


def test_without_a_terminal_a_password_must_come_from_stdin_or_a_file(settings: Settings) -> None:
    err = io.StringIO()
    typed = [a for a in AGENT if a not in ("--password-stdin", "--sip-password-stdin")]
    # No prompt given and standard input is no terminal: said at once, never an EOFError.
    assert main(settings, typed, stdin=io.StringIO(""), out=io.StringIO(), err=err) == 2
    assert err.getvalue() == ("hotline users: no terminal to ask for the password: give it with --password-stdin "
                              "or --password-file PATH\n")
    err = io.StringIO()
    assert main(settings, ["passwd", "zhangwei"], stdin=io.StringIO(""), out=io.StringIO(), err=err) == 2
    assert "no terminal to ask for the password" in err.getvalue()


def test_a_terminal_closed_while_asking_is_said_plainly(run: Run) -> None:
    def closed(_text: str) -> str:
        raise EOFError

    code = main(run.settings, ["passwd", "zhangwei"], stdin=io.StringIO(""), out=io.StringIO(),
                err=(err := io.StringIO()), prompt=closed)
    assert code == 2 and err.getvalue().startswith("hotline users: the password was not typed (end of input)")
