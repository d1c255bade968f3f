"""``hotline prompts build``: turn the prompt texts into telephone-quality sound files.

Each text is spoken by espeak-ng and converted by sox to what Asterisk plays as ``.wav``:
8 kHz, mono, 16-bit signed PCM. Files are laid out as Asterisk looks for them::

    <out>/<asterisk language>/hotline/<name>.wav      e.g. var/sounds/zh_CN/hotline/main-menu.wav

so ``<out>/<language>`` can be copied (or linked) into Asterisk's sounds directory.
A manifest (``.manifest.json`` beside the files) keeps a hash of what each file was made
from (text, voice, conversion), so a second build only remakes prompts that changed.

Voice for zh-CN: ``cmn-latn-pinyin``, not ``cmn``. On espeak-ng 1.51 (Debian 12), the
``cmn`` voice reads its own pinyin spelling, tone digits included, as English ("你好" comes
out as "ni three hao three"); ``cmn-latn-pinyin`` speaks the same dictionary as Mandarin.
The voice is set per locale in ``<locale>.toml`` ``[meta] voice``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from ivr.prompts.catalogue import (
    SOUND_DIR,
    PromptCatalogue,
    PromptCatalogueError,
    asterisk_language,
    sound_name,
)

SAMPLE_RATE = 8000
MANIFEST = ".manifest.json"
#: Bump when the conversion below changes, so that every file is remade once.
CONVERSION = f"espeak-ng|sox rate {SAMPLE_RATE} mono s16 gain -n -3|digits v1"
#: (index from 1, total, prompt key, path, True if made now / False if unchanged)
Progress = Callable[[int, int, str, Path, bool], None]

#: Debian package of each tool we run, for the error message when one is missing.
TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}

_ZH_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九"))


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


def _digest(text: str, voice: str) -> str:
    return hashlib.sha256(f"{CONVERSION}\0{voice}\0{text}".encode()).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}  # no or damaged manifest: everything is made again
    prompts = data.get("prompts") if isinstance(data, dict) else None
    return {k: v for k, v in prompts.items() if isinstance(v, str)} if isinstance(prompts, dict) else {}


def _write_manifest(path: Path, entries: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"conversion": CONVERSION, "prompts": entries}, indent=1, sort_keys=True),
                   encoding="utf-8")
    os.replace(tmp, path)


def _run(cmd: list[str], what: str, *, stdin: bytes | None = None) -> None:
    result = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise PromptBuildError(f"{what} failed: {detail}")


def synthesize(text: str, voice: str, target: Path, tools: dict[str, str]) -> None:
    """Speak ``text`` into ``target`` as 8 kHz mono 16-bit WAV (written atomically)."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw, out = Path(tmp) / "espeak.wav", Path(tmp) / target.name
        # Text on stdin: nothing in it can be mistaken for an option.
        _run([tools["espeak-ng"], "-v", voice, "-w", str(raw), "--stdin"],
             f"espeak-ng (voice {voice}) for {target.name}", stdin=text.encode("utf-8"))
        _run([tools["sox"], str(raw), "-c", "1", "-b", "16", "-e", "signed-integer", str(out),
              "rate", str(SAMPLE_RATE), "gain", "-n", "-3"],
             f"sox for {target.name}")
        os.replace(out, target)


def build_prompts(
    locale: str,
    out_dir: Path | str,
    *,
    force: bool = False,
    progress: Progress | None = None,
    catalogue: PromptCatalogue | None = None,
) -> list[Path]:
    """Make the sound files of ``locale`` under ``out_dir``; returns the files made now.

    Prompts whose text, voice and conversion are unchanged since the last build are
    skipped unless ``force``. ``catalogue`` overrides the shipped texts (tests, tools).
    """
    catalogue = catalogue or PromptCatalogue.load(locale)
    tools = find_tools()
    target_dir = Path(out_dir) / asterisk_language(catalogue.locale) / SOUND_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = target_dir / MANIFEST
    manifest = _read_manifest(manifest_path)
    made: list[Path] = []
    keys = catalogue.keys()
    try:
        for index, key in enumerate(keys, 1):
            name = sound_name(key)
            path = target_dir / f"{name}.wav"
            text = speakable(catalogue.text(key), catalogue.locale)
            digest = _digest(text, catalogue.voice)
            fresh = force or manifest.get(name) != digest or not path.is_file()
            if fresh:
                synthesize(text, catalogue.voice, path, tools)
                manifest[name] = digest
                made.append(path)
            if progress is not None:
                progress(index, len(keys), key, path, fresh)
    finally:
        # Keep what was made even if a later prompt failed: the next run resumes.
        _write_manifest(manifest_path, manifest)
    return made


def _print_progress(index: int, total: int, key: str, path: Path, made: bool) -> None:
    print(f"[{index:>2}/{total}] {'made     ' if made else 'unchanged'} {path}", flush=True)


def _parser() -> argparse.ArgumentParser:
    from hotline.settings import load_settings

    ivr = load_settings().ivr
    parser = argparse.ArgumentParser(
        prog="hotline prompts", description="Build the IVR prompt sound files with espeak-ng and sox."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="make <out>/<language>/hotline/<name>.wav for every prompt")
    build.add_argument("--lang", default=ivr.language, help=f"locale (default {ivr.language})")
    build.add_argument("--out", type=Path, default=ivr.sounds_dir,
                       help=f"sounds directory (default {ivr.sounds_dir})")
    build.add_argument("--force", action="store_true", help="remake every file, changed or not")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        made = build_prompts(args.lang, args.out, force=args.force, progress=_print_progress)
        total = len(PromptCatalogue.load(args.lang).keys())
    except (PromptBuildError, PromptCatalogueError) as exc:
        print(f"hotline prompts: {exc}", file=sys.stderr)
        return 1
    language = asterisk_language(args.lang)
    print(f"{len(made)} made, {total - len(made)} unchanged in {args.out / language / SOUND_DIR}")
    print(f"Asterisk plays them with channel language {language}: copy {args.out / language} "
          f"to <sounds directory>/{language} (see dialplans/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
