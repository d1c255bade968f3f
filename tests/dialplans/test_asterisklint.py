"""asterisklint, run as a subprocess, finds nothing to complain about in dialplans/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dialplans import DIALPLANS, EXTENSIONS_CONF, RENDERED

ASTERISKLINT = Path(sys.executable).parent / "asterisklint"
CONFIG_CHECK = Path(__file__).with_name("alint_config_check.py")
OTHER_CONFS = sorted(p.name for p in DIALPLANS.glob("*.conf") if p.name != "extensions.conf")


def dialplan_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ASTERISKLINT), "dialplan-check", str(path)],
                          capture_output=True, text=True, timeout=60)


def config_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CONFIG_CHECK), str(path)],
                          capture_output=True, text=True, timeout=60)


def test_extensions_conf_passes_asterisklint_dialplan_check_without_a_message() -> None:
    result = dialplan_check(EXTENSIONS_CONF)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_dialplan_check_would_catch_a_goto_to_a_label_that_does_not_exist(tmp_path: Path) -> None:
    broken = tmp_path / "extensions.conf"
    text = EXTENSIONS_CONF.read_text(encoding="utf-8")
    assert "?fallback)" in text
    broken.write_text(text.replace("?fallback)", "?fallbak)"), encoding="utf-8")
    result = dialplan_check(broken)
    assert result.returncode == 1
    assert "fallbak" in result.stderr


def test_asterisklint_knows_every_application_the_dialplan_uses() -> None:
    result = subprocess.run([str(ASTERISKLINT), "modules-show", str(EXTENSIONS_CONF)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    modules_conf = (DIALPLANS / "modules.conf").read_text(encoding="utf-8")
    needed = [line.split("=>")[1].strip() for line in result.stdout.splitlines() if line.startswith("load =>")]
    assert "app_stasis.so" in needed and "app_queue.so" in needed
    for module in needed:  # every module the dialplan needs is required explicitly
        assert f"require => {module}" in modules_conf, module


@pytest.mark.parametrize("name", OTHER_CONFS)
def test_every_other_config_file_passes_asterisklints_config_parser(name: str) -> None:
    result = config_check(RENDERED / name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


def test_the_config_check_would_catch_a_bad_line_and_an_undefined_template(tmp_path: Path) -> None:
    text = (RENDERED / "pjsip.conf").read_text(encoding="utf-8")
    broken = tmp_path / "pjsip.conf"
    broken.write_text(
        text.replace("[1002](agent-webrtc)", "[1002](agent-webrtcc)").replace("protocol=udp", "protocol udp"),
        encoding="utf-8",
    )
    result = config_check(broken)
    assert result.returncode == 1
    assert "E_CONF_BAD_LINE" in result.stderr
    assert "template 'agent-webrtcc' of [1002] is not defined" in result.stderr
