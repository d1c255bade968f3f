"""``hotline prompts build``: turn the prompt texts into telephone-quality sound files.

Each text is spoken by espeak-ng and converted by sox to what Asterisk plays as ``.wav``:
8 kHz, mono, 16-bit signed PCM. Files are laid out as Asterisk looks for them::

    <out>/<asterisk language>/hotline/<name>.wav      e.g. var/sounds/zh_CN/hotline/main-menu.wav

so ``<out>/<language>`` can be copied (or linked) into Asterisk's sounds directory.
A manifest (``.manifest.json`` beside the files) keeps a hash of what each file was made
from (text, voice, conversion), so a second build only remakes prompts that changed.

The same build speaks the files Asterisk says numbers with (``number:N`` media: queue
positions, waits), from the locale's ``[numbers]`` table, into
``<out>/<language>/digits/<name>.wav`` (see :mod:`ivr.prompts.numbers`): a source build of
Asterisk has none, and Asterisk reads them per channel language like our prompts. They are
trimmed of espeak-ng's leading and trailing silence, since Asterisk strings several of them
together into one number (十 + 二).

Voice for zh-CN: ``cmn-latn-pinyin``, not ``cmn``. On espeak-ng 1.51 (Debian 12), the
``cmn`` voice reads its own pinyin spelling, tone digits included, as English ("你好" comes
out as "ni three hao three"); ``cmn-latn-pinyin`` speaks the same dictionary as Mandarin.
The voice is set per locale in ``<locale>.toml`` ``[meta] voice``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.arguments import action, command
from ivr.prompts.catalogue import (
    SOUND_DIR,
    PromptCatalogue,
    PromptCatalogueError,
    asterisk_language,
    sound_name,
)
from ivr.prompts.numbers import DIGITS_DIR

if TYPE_CHECKING:
    from core.settings import IvrSettings, Settings

SAMPLE_RATE = 8000
MANIFEST = ".manifest.json"
#: Bump when the conversion below changes, so that every file is remade once.
CONVERSION = f"espeak-ng|sox rate {SAMPLE_RATE} mono s16 gain -n -3|digits v1"
#: The number files' conversion: the prompts' one, then silence trimmed at both ends and
#: 50 ms of it put back at the end, so that 十 and 二 run together as one number.
_TRIM = ["silence", "1", "0.01", "1%", "reverse", "silence", "1", "0.01", "1%", "reverse", "pad", "0", "0.05"]
NUMBER_CONVERSION = f"{CONVERSION}|trim 1% pad 0.05 v1"
#: (index from 1, total, key, path, True if made now / False if unchanged); keys are prompt
#: keys, and ``digits/<name>`` for the number files.
Progress = Callable[[int, int, str, Path, bool], None]

#: Debian package of each tool we run, for the error message when one is missing.
TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}

_ZH_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))


class PromptBuildError(RuntimeError):
    """A tool is missing or failed; the message says what to do."""


def speakable(text: str, locale: str) -> str:
    """The text as espeak-ng should say it: numbers of 3+ digits (hotline and phone
    numbers) digit by digit, in Chinese with 幺 for 1 as telephone numbers are read."""
    def digits(m: re.Match[str]) -> str:
        if locale.startswith("zh"):
            return "".join(_ZH_DIGITS[d] for d in m.group())
        return " ".join(m.group())

    return re.sub(r"\d{3,}", digits, text)


def find_tools() -> dict[str, str]:
    """Paths of espeak-ng and sox; a clear error naming the Debian package if one is missing."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for tool, package in TOOLS.items():
        path = shutil.which(tool)
        if path is None:
            missing.append(f"{tool} (Debian package {package})")
        else:
            found[tool] = path
    if missing:
        packages = " ".join(TOOLS[m.split()[0]] for m in missing)
        raise PromptBuildError(
            f"{' and '.join(missing)} not found on PATH; install with: apt-get install {packages}"
        )
    return found


def _digest(text: str, voice: str, conversion: str = CONVERSION) -> str:
    return hashlib.sha256(f"{conversion}\0{voice}\0{text}".encode()).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}  # no or damaged manifest: everything is made again
    prompts = data.get("prompts") if isinstance(data, dict) else None
    return {k: v for k, v in prompts.items() if isinstance(v, str)} if isinstance(prompts, dict) else {}


def _write_manifest(path: Path, entries: dict[str, str], conversion: str = CONVERSION) -> None:
    # A temporary file of its own: two builds of one directory at once (two benchmarks' switches
    # sharing a cache of prompts) each replace the manifest whole, neither loses the other's file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({"conversion": conversion, "prompts": entries}, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _run(cmd: list[str], what: str, *, stdin: bytes | None = None) -> None:
    result = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise PromptBuildError(f"{what} failed: {detail}")


def synthesize(text: str, voice: str, target: Path, tools: dict[str, str], *, trim: bool = False) -> None:
    """Speak ``text`` into ``target`` as 8 kHz mono 16-bit WAV (written atomically);
    ``trim``: without the silence before and after the speech (number files)."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw, out = Path(tmp) / "espeak.wav", Path(tmp) / target.name
        # Text on stdin: nothing in it can be mistaken for an option.
        _run([tools["espeak-ng"], "-v", voice, "-w", str(raw), "--stdin"],
             f"espeak-ng (voice {voice}) for {target.name}", stdin=text.encode("utf-8"))
        _run([tools["sox"], str(raw), "-c", "1", "-b", "16", "-e", "signed-integer", str(out),
              "rate", str(SAMPLE_RATE), "gain", "-n", "-3", *(_TRIM if trim else [])],
             f"sox for {target.name}")
        os.replace(out, target)


@dataclass(frozen=True)
class _Sound:
    """One file to make: its progress key, where it goes, what is said and how."""

    key: str
    name: str
    text: str
    trim: bool


def build_prompts(
    locale: str,
    out_dir: Path | str,
    *,
    force: bool = False,
    progress: Progress | None = None,
    catalogue: PromptCatalogue | None = None,
) -> list[Path]:
    """Make the sound files of ``locale`` under ``out_dir``, prompts and number files;
    returns the files made now.

    Files whose text, voice and conversion are unchanged since the last build are
    skipped unless ``force``. ``catalogue`` overrides the shipped texts (tests, tools).
    """
    catalogue = catalogue or PromptCatalogue.load(locale)
    prompts = [_Sound(key, sound_name(key), speakable(catalogue.text(key), catalogue.locale), False)
               for key in catalogue.keys()]
    numbers = _number_sounds(catalogue)
    language_dir = Path(out_dir) / asterisk_language(catalogue.locale)
    tools = find_tools()
    total = len(prompts) + len(numbers)
    made = _build_set(prompts, language_dir / SOUND_DIR, CONVERSION, catalogue.voice, tools,
                      force=force, progress=progress, first=1, total=total)
    made += _build_set(numbers, language_dir / DIGITS_DIR, NUMBER_CONVERSION, catalogue.voice, tools,
                       force=force, progress=progress, first=len(prompts) + 1, total=total)
    return made


def build_numbers(locale: str, out_dir: Path | str, *, force: bool = False) -> list[Path]:
    """Only the number files of ``locale`` (``<out>/<language>/digits/``); the files made now."""
    catalogue = PromptCatalogue.load(locale)
    numbers = _number_sounds(catalogue)
    target = Path(out_dir) / asterisk_language(catalogue.locale) / DIGITS_DIR
    return _build_set(numbers, target, NUMBER_CONVERSION, catalogue.voice, find_tools(),
                      force=force, progress=None, first=1, total=len(numbers))


def _number_sounds(catalogue: PromptCatalogue) -> list[_Sound]:
    # Spoken as written: "十", "twelve", "십이" (no digit-by-digit reading as for prompts).
    return [_Sound(f"{DIGITS_DIR}/{name}", name, text, True) for name, text in catalogue.numbers.items()]


def _build_set(
    sounds: list[_Sound], target_dir: Path, conversion: str, voice: str, tools: dict[str, str], *,
    force: bool, progress: Progress | None, first: int, total: int,
) -> list[Path]:
    """Make one directory's files, each only if what it is made from changed (its manifest)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = target_dir / MANIFEST
    manifest = _read_manifest(manifest_path)
    as_read = dict(manifest)
    made: list[Path] = []
    try:
        for index, sound in enumerate(sounds, first):
            path = target_dir / f"{sound.name}.wav"
            digest = _digest(sound.text, voice, conversion)
            fresh = force or manifest.get(sound.name) != digest or not path.is_file()
            if fresh:
                synthesize(sound.text, voice, path, tools, trim=sound.trim)
                manifest[sound.name] = digest
                made.append(path)
            if progress is not None:
                progress(index, total, sound.key, path, fresh)
    finally:
        # Keep what was made even if a later file failed: the next run resumes.
        if manifest != as_read or not manifest_path.is_file():
            _write_manifest(manifest_path, manifest, conversion)
    return made


def _print_progress(index: int, total: int, key: str, path: Path, made: bool) -> None:
    print(f"[{index:>2}/{total}] {'made     ' if made else 'unchanged'} {path}", flush=True)


def _parser(ivr: IvrSettings) -> argparse.ArgumentParser:
    parser = command("hotline prompts", "Build the IVR prompt sound files with espeak-ng and sox.",
                     "hotline prompts build", "hotline prompts build --lang en-US --out var/sounds --force")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = action(
        sub, "build", "make the prompts' and the numbers' sound files",
        "Make <out>/<language>/hotline/<name>.wav for every prompt and <out>/<language>/digits/<name>.wav "
        "for saying numbers.\nA file is made again only when its text, the voice or the tools changed.",
        f"hotline prompts build                     # {ivr.language} into {ivr.sounds_dir}",
        "hotline prompts build --lang en-US --force")
    build.add_argument("--lang", default=ivr.language, help=f"locale (default {ivr.language})")
    build.add_argument("--out", type=Path, default=ivr.sounds_dir,
                       help=f"sounds directory (default {ivr.sounds_dir})")
    build.add_argument("--force", action="store_true", help="remake every file, changed or not")
    return parser


def main(argv: list[str], *, settings: Settings | None = None) -> int:
    """``hotline prompts``; ``settings`` are the command's (its --config), else loaded here."""
    if settings is None:
        from core.settings import load_settings

        settings = load_settings()
    args = _parser(settings.ivr).parse_args(argv)
    try:
        made = build_prompts(args.lang, args.out, force=args.force, progress=_print_progress)
        catalogue = PromptCatalogue.load(args.lang)
    except (PromptBuildError, PromptCatalogueError) as exc:
        print(f"hotline prompts: {exc}", file=sys.stderr)
        return 1
    language = asterisk_language(args.lang)
    total = len(catalogue.keys()) + len(catalogue.numbers)
    print(f"{len(made)} made, {total - len(made)} unchanged in {args.out / language} "
          f"({SOUND_DIR}/: {len(catalogue.keys())} prompts, {DIGITS_DIR}/: {len(catalogue.numbers)} number files)")
    print(f"Asterisk plays them with channel language {language}: copy {args.out / language} "
          f"to <sounds directory>/{language}, or let 'hotline asterisk install' do it (see dialplans/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
