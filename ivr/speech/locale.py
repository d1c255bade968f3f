"""Locale packs for speech menus: what a caller may say in each menu, per language.

A locale pack is ``ivr/prompts/<locale>.toml``: the prompt texts (``[meta]``, ``[prompts]``,
read by the prompt catalogue) plus the speech tables read here::

    [speech]
    model = "vosk-model-small-cn-0.22"       # model directory name (see ivr.speech.models)
    decoys = ["你好", "是的", ...]             # common words no phrase uses: they soak up
                                               # out-of-grammar speech (see ivr.speech.grammar)
    fillers = ["嗯", "啊", ...]                # optional: single words that answer nothing
                                               # (hesitations, particles): grammar words like
                                               # decoys, but a phrase heard among them is asked
                                               # about instead of being no match
    [speech.digits]                            # spoken forms of a DTMF key
    "1" = ["一", "幺"]
    [speech.menus.main_menu]                   # choice -> phrases (words separated by spaces)
    complaint = ["投诉", "我 要 投诉"]
    confirm_always = ["投诉"]                  # optional: phrases (or whole choices) that are
                                               # always confirmed when heard

A spoken digit means what its key means in that menu: "一" in the main menu is the choice
of key 1 there. The key tables are the ones the menus act on (``ivr.speech.menus``), so a
pack can never disagree with what the keys do.

``confirm_always`` is for a confusable pair the margin cannot see: another choice's audio
that the model hears as this phrase with nothing else in its lattice (so the margin is as
wide as for the phrase itself); the caller is asked "you said ...?" whenever it is heard.
Keep it short: every caller who says it answers one more question.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.prompts.catalogue import PROMPTS_DIR, available_locales
from ivr.speech.menus import MENU_KEYS

_LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Z]{2})?")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DTMF = re.compile(r"[0-9*#]")
#: The key of a menu table that is no choice: its phrases (or choices) always confirmed.
CONFIRM_ALWAYS = "confirm_always"


class SpeechPackError(ValueError):
    """A locale pack that is missing or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class MenuPhrases:
    """What callers may say in one menu: choice -> phrases (spoken digits included)."""

    menu: str
    choices: Mapping[str, tuple[str, ...]]
    #: Phrases that are never taken without the caller's confirmation (a confusable pair's
    #: phrase whose wrong hearings come with a wide margin).
    confirm_always: frozenset[str] = frozenset()
    #: The pack's fillers (``[speech] fillers``): words that answer nothing around a phrase.
    fillers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpeechPack:
    locale: str
    #: Name of the Vosk model directory this pack's words were checked against.
    model: str
    menus: Mapping[str, MenuPhrases]
    #: Words that absorb speech which is no phrase of a menu (out-of-grammar rejection).
    decoys: tuple[str, ...] = field(default=())
    #: Words that absorb noise and mean nothing: a phrase heard among them still counts (asked).
    fillers: tuple[str, ...] = field(default=())


def load_speech_pack(locale: str, prompts_dir: Path | None = None) -> SpeechPack:
    """The speech tables of ``locale``; :class:`SpeechPackError` naming file and key if wrong.

    ``prompts_dir``: where ``<locale>.toml`` is, for a draft pack checked before it ships
    (default: the packs that ship, ``ivr/prompts``)."""
    path = _pack_path(locale, PROMPTS_DIR if prompts_dir is None else prompts_dir)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpeechPackError(f"{path} is not valid TOML: {exc}") from exc
    speech = data.get("speech")
    if not isinstance(speech, dict):
        raise SpeechPackError(f"{path}: no [speech] table, so {locale} has no speech menus")
    model = speech.get("model")
    if not isinstance(model, str) or not model.strip():
        raise SpeechPackError(f"{path}: [speech] model is missing (the Vosk model directory name)")
    decoys = _phrase_list(speech.get("decoys", []), path, "[speech] decoys")
    fillers = _fillers(speech.get("fillers", []), decoys, path)
    digits = _digits(speech.get("digits", {}), path)
    menus = speech.get("menus")
    if not isinstance(menus, dict) or not menus:
        raise SpeechPackError(f"{path}: [speech.menus] is missing or empty")
    parsed = {
        name: _menu(name, table, digits, MENU_KEYS.get(name), path, fillers) for name, table in menus.items()
    }
    return SpeechPack(locale, model.strip(), MappingProxyType(parsed), decoys, fillers)


def _pack_path(locale: str, prompts_dir: Path) -> Path:
    path = prompts_dir / f"{locale}.toml"
    if not _LOCALE.fullmatch(locale) or not path.is_file():
        raise SpeechPackError(
            f"no locale pack for {locale!r} (looked for {path}); available: "
            f"{', '.join(available_locales())}"
        )
    return path


def _phrase_list(value: Any, path: Path, key: str) -> tuple[str, ...]:
    """A list of phrases, each normalised to single spaces between words.

    Vosk splits grammar phrases on single spaces, so a double space would make an empty
    "word" that it silently drops; normalising here keeps phrase text and grammar equal.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpeechPackError(f"{path}: {key} must be a list of strings")
    phrases = tuple(" ".join(v.split()) for v in value)
    if any(not p for p in phrases):
        raise SpeechPackError(f"{path}: {key} has an empty phrase")
    return phrases


def _fillers(value: Any, decoys: tuple[str, ...], path: Path) -> tuple[str, ...]:
    """The fillers: single words (a hypothesis is read word by word), none of them a decoy too
    (a decoy vetoes a phrase, a filler does not: one word cannot do both)."""
    fillers = _phrase_list(value, path, "[speech] fillers")
    for filler in fillers:
        if " " in filler:
            raise SpeechPackError(f"{path}: [speech] fillers {filler!r} is more than one word")
        if filler in decoys:
            raise SpeechPackError(f"{path}: [speech] fillers {filler!r} is in decoys too")
    return tuple(dict.fromkeys(fillers))


def _digits(value: Any, path: Path) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise SpeechPackError(f"{path}: [speech.digits] must be a table of key -> phrases")
    digits = {}
    for key, phrases in value.items():
        if not _DTMF.fullmatch(key):
            raise SpeechPackError(f"{path}: [speech.digits] {key!r} is not a DTMF key (0-9, *, #)")
        digits[key] = _phrase_list(phrases, path, f"[speech.digits] {key!r}")
    return digits


def _menu(
    name: str,
    table: Any,
    digits: Mapping[str, tuple[str, ...]],
    keys: Mapping[str, str] | None,
    path: Path,
    fillers: tuple[str, ...] = (),
) -> MenuPhrases:
    where = f"[speech.menus.{name}]"
    if not _NAME.fullmatch(name):
        raise SpeechPackError(f"{path}: {where}: a menu name is lower_case_words")
    if not isinstance(table, dict) or not table:
        raise SpeechPackError(f"{path}: {where} must be a non-empty table of choice -> phrases")
    choices: dict[str, list[str]] = {}
    for choice, phrases in table.items():
        if choice == CONFIRM_ALWAYS:
            continue
        if keys is not None and choice not in keys.values():
            raise SpeechPackError(
                f"{path}: {where} {choice!r} is not a choice of this menu; "
                f"its keys lead to {', '.join(sorted(set(keys.values())))}"
            )
        choices[choice] = list(_phrase_list(phrases, path, f"{where} {choice}"))
        if not choices[choice]:
            raise SpeechPackError(f"{path}: {where} {choice} has no phrases")
    # Spoken digits join the choice of their key; a menu without keys has no digits.
    for key, choice in (keys or {}).items():
        choices.setdefault(choice, []).extend(digits.get(key, ()))
    _refuse_shared_phrases(choices, path, where)
    confirm = _confirm_always(table.get(CONFIRM_ALWAYS, []), choices, path, where)
    return MenuPhrases(
        name, MappingProxyType({c: tuple(p) for c, p in choices.items() if p}), confirm, fillers
    )


def _confirm_always(
    value: Any, choices: Mapping[str, list[str]], path: Path, where: str
) -> frozenset[str]:
    """The phrases named by ``confirm_always``: each entry a phrase of the menu or a choice
    (all its phrases, spoken digits included); anything else is a typo and refused."""
    phrases: set[str] = set()
    for entry in _phrase_list(value, path, f"{where} {CONFIRM_ALWAYS}"):
        if entry in choices:
            phrases.update(choices[entry])
        elif any(entry in p for p in choices.values()):
            phrases.add(entry)
        else:
            raise SpeechPackError(
                f"{path}: {where} {CONFIRM_ALWAYS} {entry!r} is neither a phrase nor a choice of this menu"
            )
    return frozenset(phrases)


def _refuse_shared_phrases(choices: Mapping[str, list[str]], path: Path, where: str) -> None:
    """A phrase that means two choices (or is listed twice) would make the menu ambiguous."""
    owner: dict[str, str] = {}
    for choice, phrases in choices.items():
        for phrase in phrases:
            if phrase in owner:
                raise SpeechPackError(
                    f"{path}: {where} phrase {phrase!r} is listed for {owner[phrase]!r}"
                    + (" twice" if owner[phrase] == choice else f" and for {choice!r}")
                )
            owner[phrase] = choice
