"""Write the hotline's Asterisk configuration, prompts and music into an Asterisk tree.

This is the one way the configuration gets into Asterisk, for operators
(``hotline asterisk install``) and for the tests that run a real Asterisk: what the tests
prove is what operators install.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.settings import Settings
from ivr.prompts.build import build_prompts
from ivr.prompts.catalogue import SOUND_DIR, asterisk_language
from ivr.prompts.numbers import DIGITS_DIR
from pbx_config.moh import write_music
from pbx_config.render import AgentPhone, render

Progress = Callable[[str], None]


@dataclass
class InstallReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)
    prompts: Path | None = None
    #: Where the files Asterisk says numbers with went (``<sounds>/<language>/digits``).
    numbers: Path | None = None
    music: list[Path] = field(default_factory=list)


def _owner_of(path: Path) -> tuple[int, int]:
    """Who must own the new file: the old file's owner, else its directory's (an
    /etc/asterisk owned by the asterisk user stays readable by Asterisk)."""
    st = (path if path.is_file() else path.parent).stat()
    return st.st_uid, st.st_gid


def _write(path: Path, text: str, report: InstallReport, stamp: str) -> None:
    uid, gid = _owner_of(path)
    if path.is_file():
        old = path.read_text(encoding="utf-8", errors="replace")
        if old == text:
            report.unchanged.append(path)
            return
        # The operator's own version is kept once, beside it, never overwritten silently.
        backup = path.with_name(f"{path.name}.orig-{stamp}")
        path.replace(backup)
        report.backups.append(backup)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    # ari.conf and pjsip.conf hold passwords: readable by Asterisk's group, not the world.
    os.chmod(tmp, 0o640)
    if (uid, gid) != (os.getuid(), os.getgid()):
        try:
            os.chown(tmp, uid, gid)
        except PermissionError as exc:  # not root: the operator sets it, told why
            raise OSError(f"cannot give {path} to uid {uid} gid {gid} (Asterisk must read it): {exc}") from exc
    tmp.replace(path)
    report.written.append(path)


def install(
    settings: Settings,
    agents: list[AgentPhone],
    *,
    etc_dir: Path | None = None,
    data_dir: Path | None = None,
    prompts: bool = True,
    progress: Progress | None = None,
) -> InstallReport:
    """Render and write every file; build the prompts and write the music on hold."""
    etc = etc_dir or settings.asterisk.etc_dir
    data = data_dir or settings.asterisk.data_dir
    say = progress or (lambda _line: None)
    report = InstallReport()
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    etc.mkdir(parents=True, exist_ok=True)
    for name, text in render(settings, agents, data_dir=data).items():
        _write(etc / name, text, report, stamp)
    say(f"configuration: {len(report.written)} written, {len(report.unchanged)} unchanged in {etc}")
    for backup in report.backups:
        say(f"  kept the previous file as {backup}")
    if prompts:
        # Prompts and the number files together: Asterisk says queue positions and waits
        # (number:N) from digits/<n> in the channel's language, which a source build lacks.
        sounds = data / "sounds"
        build_prompts(settings.ivr.language, sounds)
        language_dir = sounds / asterisk_language(settings.ivr.language)
        report.prompts, report.numbers = language_dir / SOUND_DIR, language_dir / DIGITS_DIR
        say(f"prompts ({settings.ivr.language}): {report.prompts}")
        say(f"numbers ({settings.ivr.language}): {report.numbers}")
    report.music = write_music(data / "moh" / "hotline")
    say(f"music on hold (class hotline): {len(report.music)} pieces in {data / 'moh' / 'hotline'}")
    return report
