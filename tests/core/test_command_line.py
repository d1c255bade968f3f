"""The hotline command helps whoever types it: whatever they can fix (a setting, a file, a flag, a
service that does not answer) is said in one line naming it, with an exit code of its own and no
traceback; misspelt variables are pointed out; every subcommand explains itself with examples."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.embedded import RedisProcess, free_port
from hotline.cli import COMMANDS, main
from hotline.reach import ExitCode
from tests.fixtures.waiting import eventually

HOTLINE = Path(sys.executable).parent / "hotline"

#: Each subcommand's own actions, whose --help is checked too.
ACTIONS = {
    "serve": [],
    "prompts": ["build"],
    "models": ["download", "verify", "path"],
    "speech": ["check-grammar"],
    "outbox": ["stats", "list", "show", "retry", "replay", "work"],
    "db": ["upgrade", "current", "history"],
    "users": ["add", "list", "disable", "enable", "passwd", "lockouts", "unlock"],
    "recordings": ["check", "purge"],
    "callrecords": ["import-cdr"],
    "asterisk": ["install"],
}


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No HOTLINE_* variable of the machine running the tests, and var/ under tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("HOTLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'core.db'}")
    return tmp_path


def said(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    """The exit code, the lines on stderr and stdout of ``hotline ARGV`` run in this process."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, err.splitlines(), out


def toml(tmp_path: Path, text: str, name: str = "hotline.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_hotline(*argv: str, env: dict[str, str], cwd: Path,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``hotline`` as a process of its own, to read its real stderr."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("HOTLINE_")}
    return subprocess.run([str(HOTLINE), *argv], env={**base, **env}, cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL if stdin is None else None)


# ------------------------------------------------------------------------------------------ settings


def test_a_variable_that_is_not_a_number_names_the_variable_the_value_and_the_range(
        clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOTLINE_HTTP__PORT", "abc")
    assert said(capsys, "db", "history")[:2] == (
        ExitCode.USAGE, ["hotline: HOTLINE_HTTP__PORT = 'abc': must be a whole number, from 0 to 65535"])


def test_a_value_out_of_range_in_the_file_names_its_section_key_and_file(
        clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = toml(clean, "[http]\nport = 70000\n")
    assert said(capsys, "--config", str(path), "db", "history")[:2] == (
        ExitCode.USAGE, [f"hotline: [http] port in {path} = 70000: must be from 0 to 65535"])


def test_a_value_not_among_the_allowed_ones_lists_them(
        clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = toml(clean, '[speech]\nformat = "mp3"\n')
    assert said(capsys, "db", "history", "--config", str(path))[:2] == (
        ExitCode.USAGE, [f"hotline: [speech] format in {path} = 'mp3': must be one of 'slin16' or 'ulaw'"])
    monkeypatch.setenv("HOTLINE_PROFILE", "staging")
    assert said(capsys, "db", "history")[1] == [
        "hotline: HOTLINE_PROFILE = 'staging': must be one of 'production', 'test' or 'demo'"]
    monkeypatch.setenv("HOTLINE_PROFILE", "production")
    monkeypatch.setenv("HOTLINE_HTTP__SECURE_COOKIES", "maybe")
    assert said(capsys, "db", "history")[1] == [
        "hotline: HOTLINE_HTTP__SECURE_COOKIES = 'maybe': must be true or false"]


def test_a_secret_that_does_not_fit_is_never_repeated(clean: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = toml(clean, "[ari]\npassword = 734512\n")
    code, err, _ = said(capsys, "db", "history", f"--config={path}")
    assert (code, err) == (ExitCode.USAGE, [f"hotline: [ari] password in {path} = '****': must be text"])
    monkeypatch.setenv("HOTLINE_HTTP__TRUSTED_PROXIES", "10.0.0.0/8")  # a list must be JSON here
    monkeypatch.setenv("HOTLINE_DATABASE__URL", "postgresql+asyncpg://hotline:s3cret-pw@db/hotline")
    code, err, _ = said(capsys, "db", "history")
    assert code == ExitCode.USAGE and err == [
        "hotline: HOTLINE_HTTP__TRUSTED_PROXIES = '10.0.0.0/8': must be JSON here "
        '(a list as ["a", "b"], a table as {"key": 1})']


def test_a_file_that_is_not_toml_says_the_line_and_column(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = toml(clean, "[http]\nport = 8081\n[redis\n")
    code, [line], _ = said(capsys, "serve", "--config", str(path))
    assert code == ExitCode.USAGE
    assert line.startswith(f"hotline: settings file {path} is not valid TOML: ") and "(at line 3, column 7)" in line


def test_a_missing_file_is_named_with_where_it_came_from(clean: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert said(capsys, "serve", "--config", "nowhere.toml")[:2] == (
        ExitCode.USAGE, ["hotline: settings file nowhere.toml (--config) does not exist"])
    monkeypatch.setenv("HOTLINE_CONFIG", "/etc/hotline/missing.toml")
    assert said(capsys, "users", "list")[:2] == (
        ExitCode.USAGE, ["hotline: settings file /etc/hotline/missing.toml (HOTLINE_CONFIG) does not exist"])


def test_a_key_of_the_file_that_is_no_setting_is_refused_with_a_suggestion(
        clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = toml(clean, "[http]\nprot = 8081\n[redsi]\nurl = 'redis://x'\n[queues.hours]\nopen = '08:00'\n")
    code, err, _ = said(capsys, "db", "history", "--config", str(path))
    assert code == ExitCode.USAGE
    assert err == [f"hotline: [http] prot in {path} is not a setting; did you mean port?",
                   f"hotline: [redsi] in {path} is not a section; did you mean redis?",
                   f"hotline: [queues.hours] open in {path} is not a setting; did you mean opens?"]


def test_a_misspelt_variable_is_warned_about_with_the_likely_one(
        clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOTLINE_HTTP__PROT", "8081")
    monkeypatch.setenv("HOTLINE_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("HOTLINE_WHATEVER", "1")
    monkeypatch.setenv("HOTLINE_CONFIG", str(toml(clean, "")))  # known, though not a setting
    monkeypatch.setenv("HOTLINE_ARI_DECLARATIONS", "/srv/ari")
    monkeypatch.setenv("HOTLINE_RECORDINGS__RETENTION_YEARS__REPORT", "5")  # an entry of a table
    code, err, _ = said(capsys, "db", "history")
    assert code == 0
    assert err == [
        "hotline: warning: environment variable HOTLINE_HTTP__PROT is not a setting and is ignored; "
        "did you mean HOTLINE_HTTP__PORT?",
        "hotline: warning: environment variable HOTLINE_REDIS_URL is not a setting and is ignored; "
        "did you mean HOTLINE_REDIS__URL?",
        "hotline: warning: environment variable HOTLINE_WHATEVER is not a setting and is ignored "
        "(settings are HOTLINE_<SECTION>__<NAME>, e.g. HOTLINE_HTTP__PORT)",
    ]


@pytest.mark.parametrize("where", ["before", "after", "equals"])
def test_config_is_taken_before_or_after_the_subcommand(where: str, clean: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("HOTLINE_DATABASE__URL")
    path = toml(clean, f'[database]\nurl = "sqlite+aiosqlite:///{clean / "from-the-file.db"}"\n')
    argv = {"before": ["--config", str(path), "db", "current"], "after": ["db", "current", "--config", str(path)],
            "equals": ["db", f"--config={path}", "current"]}[where]
    code, err, out = said(capsys, *argv)
    assert (code, err) == (0, [])
    assert "from-the-file.db: no revision (empty database)" in out


def test_config_without_a_file_is_bad_usage(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert said(capsys, "serve", "--config")[:2] == (
        ExitCode.USAGE, ["hotline: --config needs a file: --config FILE (a TOML settings file)"])


# ------------------------------------------------------------------------------------- services away


def test_serve_without_redis_waits_then_says_which_url_to_check(clean: Path) -> None:
    port = free_port()  # nobody listens there
    done = run_hotline("serve", "--wait", "0", cwd=clean, env={
        "HOTLINE_REDIS__URL": f"redis://:hush-hush@127.0.0.1:{port}/0",
        "HOTLINE_DATABASE__URL": f"sqlite+aiosqlite:///{clean / 'core.db'}", "HOTLINE_HTTP__PORT": "0"})
    assert done.returncode == ExitCode.REDIS_UNREACHABLE
    assert "Traceback" not in done.stderr and "hush-hush" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("hotline:")]
    assert line.startswith(f"hotline: cannot reach Redis at redis://:****@127.0.0.1:{port}/0 (")
    assert line.endswith("check that redis-server runs there and [redis] url (HOTLINE_REDIS__URL)")


async def test_serve_keeps_trying_asterisk_with_a_warning_per_try_and_stops_cleanly(
        clean: Path, redis_server: RedisProcess, redis_prefix: str) -> None:
    log = clean / "serve.log"
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("HOTLINE_")}
    env = {**base, "HOTLINE_PROFILE": "test", "HOTLINE_ARI__URL": f"http://127.0.0.1:{free_port()}",
           "HOTLINE_REDIS__URL": redis_server.url, "HOTLINE_REDIS__PREFIX": redis_prefix,
           "HOTLINE_DATABASE__URL": f"sqlite+aiosqlite:///{clean / 'core.db'}", "HOTLINE_LOG_LEVEL": "INFO"}
    with log.open("w") as sink:
        serve = await asyncio.create_subprocess_exec(str(HOTLINE), "serve", env=env, cwd=clean, stdout=sink,
                                                     stderr=subprocess.STDOUT)
    try:
        async def tried_three_times() -> bool:
            return log.read_text().count("WARNING ari.events: cannot reach Asterisk's ARI at ws://") >= 3

        await eventually(tried_three_times, timeout=30)
        assert serve.returncode is None  # still up, still trying
        serve.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(serve.wait(), 30) == 0
    finally:
        if serve.returncode is None:
            serve.kill()
            await serve.wait()
    text = log.read_text()
    assert "Traceback" not in text and " ERROR " not in text
    assert "trying again in" in text and "(is Asterisk running? check [ari] url)" in text


def test_a_command_without_its_database_says_which_url_to_check(
        clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    monkeypatch.setenv("HOTLINE_DATABASE__URL", f"postgresql+asyncpg://hotline:hush-hush@127.0.0.1:{port}/hotline")
    for argv in (["users", "list"], ["db", "upgrade"], ["outbox", "stats"]):
        code, [line], _ = said(capsys, *argv)
        assert code == ExitCode.DATABASE_UNREACHABLE, argv
        assert line.startswith(f"hotline: cannot reach the database at postgresql+asyncpg://hotline:****@127.0.0.1:"
                               f"{port}/hotline (")
        assert "hush-hush" not in line


def test_a_command_without_redis_says_so(clean: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOTLINE_REDIS__URL", f"redis://127.0.0.1:{free_port()}/0")
    code, [line], _ = said(capsys, "users", "lockouts")
    assert code == ExitCode.REDIS_UNREACHABLE and line.startswith("hotline: cannot reach Redis at redis://127.0.0.1:")


def test_the_real_command_answers_in_one_line_without_a_traceback(clean: Path) -> None:
    env = {"HOTLINE_HTTP__PORT": "abc"}
    done = run_hotline("users", "list", cwd=clean, env=env)
    assert (done.returncode, done.stderr) == (
        ExitCode.USAGE, "hotline: HOTLINE_HTTP__PORT = 'abc': must be a whole number, from 0 to 65535\n")
    done = run_hotline("serve", "--config", "missing.toml", cwd=clean, env={})
    assert (done.returncode, done.stderr) == (
        ExitCode.USAGE, "hotline: settings file missing.toml (--config) does not exist\n")


def test_a_password_is_never_waited_for_without_a_terminal(clean: Path) -> None:
    env = {"HOTLINE_PROFILE": "test", "HOTLINE_DATABASE__URL": f"sqlite+aiosqlite:///{clean / 'core.db'}"}
    add = ["users", "add", "--username", "wang", "--role", "admin", "--jurisdiction", "330100",
           "--display-name", "王芳"]
    done = run_hotline(*add, cwd=clean, env=env)  # standard input is /dev/null, not a terminal
    assert (done.returncode, done.stderr) == (ExitCode.USAGE, "hotline users: no terminal to ask for the password: "
                                                              "give it with --password-stdin or --password-file PATH\n")
    done = run_hotline(*add, "--password-stdin", cwd=clean, env=env, stdin="1234567890\n")
    assert done.returncode == ExitCode.REFUSED and "Traceback" not in done.stderr
    assert done.stderr.startswith("hotline users: password: too easy to guess (strength 0 of 4, 3 needed): "
                                  "This is a top-100 common password.")
    done = run_hotline(*add, "--password-stdin", cwd=clean, env=env, stdin="quiet-lantern-over-river\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("added admin wang (id ")


# ------------------------------------------------------------------------------------------- help


def test_every_subcommand_is_listed_in_the_help_with_the_exit_codes(clean: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, out = said(capsys, "--help")
    assert code == 0 and set(ACTIONS) == set(COMMANDS)
    assert all(f"    {name} " in out for name in COMMANDS)
    assert "exit codes:" in out and "3    Redis cannot be reached" in out and "4    the database" in out
    assert "`" not in out


@pytest.mark.parametrize("argv", [[command] for command in ACTIONS] +
                         [[command, action] for command, actions in ACTIONS.items() for action in actions],
                         ids=" ".join)
def test_every_subcommand_explains_itself_with_an_example(argv: list[str], clean: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, err, out = said(capsys, *argv, "--help")
    assert (code, err) == (0, [])
    usage, description, *_ = out.split("\n\n")
    assert usage.startswith(f"usage: hotline {' '.join(argv)}")
    assert description.strip() and not description.startswith(("positional arguments", "options")), out
    assert "\nexample:\n  hotline " in out or "\nexamples:\n  " in out, out
    assert "`" not in out and ":class:" not in out
