"""``hotline speech check-grammar``: the build-time check of a locale pack's speech menus.

See :mod:`ivr.speech.confusion` for what it does and what it flags. Exit codes: 0 the pack
passes, 1 it has confusable or unrecognisable phrases (one line each on stdout, saying what
to do), 2 the check could not run (a line on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from core.arguments import action, command, number, whole_number
from ivr.speech.confusion import MAX_VARIANTS, check_pack, line_speaker, model_vocabulary, render, variants, vosk_hear

if TYPE_CHECKING:
    from core.settings import Settings

PROG = "hotline speech"
DEFAULT_VARIANTS = 12
#: The check could not run (no model, no espeak-ng, a pack or a word that is wrong).
CANNOT_CHECK = 2

CHECK_DESCRIPTION = f"""\
Say every phrase of a locale pack's speech menus (spoken digits and cities included) with
espeak-ng in several voices, speeds and pitches, carry it through a G.711 telephone line, and
recognize it with the menu's real grammar (decoys included), asking the model for its best
hypotheses. Per menu it prints what each phrase was heard as, then one line per finding:

  FAIL confusable    two phrases of different choices: one heard as the other in some
                     variant, or the runner-up within --margin of the best (a caller sent
                     down the wrong branch)
  FAIL unrecognised  a phrase never heard as its choice
  warn rarely recognised, decoy wins (a decoy word takes a phrase's audio)

Exit status: 0 the pack passes, 1 a FAIL line, {CANNOT_CHECK} the check could not run. The
model's vocabulary is checked first, as at start-up: a word it does not know stops the
check. It takes about a second per phrase at the default {DEFAULT_VARIANTS} variants."""


def _parser() -> argparse.ArgumentParser:
    parser = command(
        PROG, "Checks of the IVR's speech menus against a speech model.",
        "hotline speech check-grammar --locale ko-KR",
        "hotline speech check-grammar --pack draft/zh-CN.toml --model var/models/vosk-model-small-cn-0.22")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = action(
        sub, "check-grammar", "find the phrases of a locale pack that the recognizer confuses",
        CHECK_DESCRIPTION,
        "hotline speech check-grammar                       # the configured language ([ivr] language)",
        "hotline speech check-grammar --locale ko-KR --variants 24 --json var/grammar-ko-KR.json",
        "hotline speech check-grammar --pack /tmp/draft/zh-CN.toml --menu main_menu",
        "hotline speech check-grammar --locale zh-CN --model /srv/models/vosk-model-cn-0.22 --voice cmn-latn-pinyin")
    where = check.add_mutually_exclusive_group()
    where.add_argument("--locale", help="locale pack ivr/prompts/LOCALE.toml (default: [ivr] language)")
    where.add_argument("--pack", type=Path, metavar="FILE",
                       help="a pack file to check instead, e.g. a draft (its name is the locale: zh-CN.toml)")
    check.add_argument("--model", type=Path, metavar="DIR",
                       help="Vosk model directory (default: the pack's [speech] model, as installed by "
                            "hotline models download, in [speech] models_dir)")
    check.add_argument("--voice", help="espeak-ng voice (default: the pack's [meta] voice)")
    check.add_argument("--variants", type=_variant_count, default=DEFAULT_VARIANTS, metavar="N",
                       help=f"speakers per phrase, 1 to {MAX_VARIANTS} (default {DEFAULT_VARIANTS})")
    check.add_argument("--margin", type=number(above=0), metavar="LOGLIK",
                       help="a runner-up of another choice closer than this to the best makes a pair "
                            "confusable (default: [speech] accept_margin, above which a menu takes a phrase "
                            "without asking)")
    check.add_argument("--menu", action="append", default=[], metavar="NAME",
                       help="check only this menu (may be repeated; default every menu)")
    check.add_argument("--json", type=Path, metavar="FILE",
                       help="also write everything (tables, every hypothesis, findings) here as JSON")
    check.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def _variant_count(text: str) -> int:
    value = whole_number(at_least=1)(text)
    if value > MAX_VARIANTS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_VARIANTS}, got {text}")
    return value


def main(settings: Settings, argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return check_grammar(args, settings)
    except CheckError as exc:
        print(f"{PROG} check-grammar: {exc}", file=sys.stderr)
        return CANNOT_CHECK


class CheckError(Exception):
    """Why the check could not run, in one line."""


def check_grammar(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: the model's library and the pack loader are only needed by this action.
    import vosk

    from ivr.speech.grammar import GrammarError, Margins
    from ivr.speech.locale import SpeechPackError, load_speech_pack
    from ivr.speech.models import ModelError, find_model, layout_problems
    from ivr.speech.phoneline import SynthesisError

    prompts_dir = args.pack.parent if args.pack else None
    locale = args.pack.stem if args.pack else (args.locale or settings.ivr.language)
    try:
        pack = load_speech_pack(locale, prompts_dir)
        model_dir = args.model or find_model(pack.model, settings.speech.models_dir)
    except (SpeechPackError, ModelError) as exc:
        raise CheckError(str(exc)) from None
    if problems := layout_problems(model_dir):
        raise CheckError(f"{model_dir} is not a Vosk model: {'; '.join(problems)}")
    if unknown := sorted(set(args.menu) - set(pack.menus)):
        raise CheckError(f"the {locale} pack has no menu {', '.join(unknown)}; it has {', '.join(pack.menus)}")
    voice = args.voice or _pack_voice(prompts_dir, locale)
    vosk.SetLogLevel(-1)
    model = vosk.Model(str(model_dir))
    try:
        report = check_pack(
            pack, model_vocabulary(model), line_speaker(), vosk_hear(model),
            variants(voice, args.variants), thin_margin=args.margin,
            margins=Margins(accept=settings.speech.accept_margin, confirm=settings.speech.confirm_margin),
            model=pack.model if args.model is None else str(model_dir),
            only=args.menu, progress=None if args.quiet else _Progress(),
        )
    except (GrammarError, SynthesisError) as exc:
        raise CheckError(str(exc)) from None
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 1 if report.failed else 0


def _pack_voice(prompts_dir: Path | None, locale: str) -> str:
    """The pack's ``[meta] voice``: what its prompts are built with, so the check hears the same."""
    from ivr.prompts.catalogue import PROMPTS_DIR

    path = (prompts_dir or PROMPTS_DIR) / f"{locale}.toml"
    voice = tomllib.loads(path.read_text(encoding="utf-8")).get("meta", {}).get("voice")
    if not isinstance(voice, str) or not voice.strip():
        raise CheckError(f"{path}: [meta] voice is missing; give --voice (an espeak-ng voice)")
    return voice.strip()


class _Progress:
    """Phrases done out of all, on stderr, with the time so far."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self, done: int, total: int, menu: str, phrase: str) -> None:
        elapsed = time.monotonic() - self._start
        print(f"[{done}/{total}] {menu}: {phrase} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
