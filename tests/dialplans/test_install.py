"""`hotline asterisk install` writes the configuration as an operator needs it: files Asterisk
can read (owned like the directory it goes into), the operator's own versions kept, nothing
rewritten that did not change, and values that cannot go into a config file refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings import load_settings
from pbx_config.install import install
from pbx_config.render import AgentPhone, RenderError, render

AGENTS = [AgentPhone("1001", "secret;1001", "Agent 1001")]


def test_files_are_owned_like_their_directory_and_the_operators_own_are_kept(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    os.chown(etc, 4321, 4321)  # /etc/asterisk owned by the asterisk user
    (etc / "ari.conf").write_text("[general]\nenabled=no\n")
    os.chown(etc / "ari.conf", 5555, 4321)  # the operator's file: its owner stays
    settings = load_settings(ari={"password": "pw"})
    report = install(settings, AGENTS, etc_dir=etc, data_dir=tmp_path / "data", prompts=False)
    written = {p.name for p in report.written}
    assert {"ari.conf", "pjsip.conf", "extensions.conf", "musiconhold.conf"} <= written
    for path in report.written:
        st = path.stat()
        owner = 5555 if path.name == "ari.conf" else 4321
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (owner, 4321, 0o640), path
    assert [b.name.split(".orig-")[0] for b in report.backups] == ["ari.conf"]
    # The SIP secret's ';' would start a comment: escaped.
    assert "password=secret\\;1001" in (etc / "pjsip.conf").read_text()
    assert list((tmp_path / "data" / "moh" / "hotline").glob("*.wav"))

    again = install(settings, AGENTS, etc_dir=etc, data_dir=tmp_path / "data", prompts=False)
    assert again.written == [] and again.backups == [] and len(again.unchanged) == len(report.written)


def test_a_value_that_cannot_go_into_a_config_file_is_refused_by_name() -> None:
    settings = load_settings(ari={"password": "two\nlines"})
    with pytest.raises(RenderError, match=r"\[ari\] password must be on one line"):
        render(settings, AGENTS)
