"""The IVR prompt catalogue: one text per prompt key and locale, and where its sound lives.

Texts live in ``<locale>.toml`` beside this module; ``zh-CN`` is the reference set and
every other locale must have exactly its keys.

Naming, in one place: keys are Python identifiers (``fallback_unavailable``); the sound
file of a key is the key with ``_`` written ``-`` (``hotline/fallback-unavailable``),
the way Asterisk names its own sounds (``vm-goodbye``). Code and dialplan use the file
name only through :func:`sound_name` / :meth:`PromptCatalogue.media` and the literal
``hotline/<name>`` in ``dialplans/extensions.conf`` (checked by the tests).

Numbers (``number:N`` media) are said by Asterisk from ``digits/<name>`` files; a locale's
``[numbers]`` table gives the text of each file its Asterisk language's rules read
(:mod:`ivr.prompts.numbers`), all of them and no others.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ivr.prompts.numbers import UnknownNumberRules, number_files, number_sound

PROMPTS_DIR = Path(__file__).resolve().parent
REFERENCE_LOCALE = "zh-CN"
#: Sub-directory of Asterisk's sounds directory that holds our prompts.
SOUND_DIR = "hotline"

_LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Z]{2})?")
_KEY = re.compile(r"[a-z][a-z0-9_]*")


class PromptCatalogueError(ValueError):
    """A locale that does not exist or a catalogue file that is incomplete or malformed."""


class UnknownPromptError(LookupError):
    """Code asked for a prompt key that the catalogue does not have."""


def sound_name(key: str) -> str:
    """The sound file name (no directory, no extension) of a prompt key."""
    return key.replace("_", "-")


def asterisk_language(locale: str) -> str:
    """The channel language Asterisk uses for ``locale`` and its sounds sub-directory.

    Asterisk names languages like POSIX locales (``en_GB``, ``fr_CA``), so ``zh-CN``
    becomes ``zh_CN`` and ``en-US`` ``en_US``. For language ``zh_CN`` Asterisk looks for a
    sound in ``sounds/zh_CN/``, then ``sounds/zh/``, then ``sounds/`` and the default
    ``sounds/en/``: our prompts go to ``sounds/zh_CN/hotline/`` and Asterisk's own
    English sounds still play where no Chinese ones are installed. Its number saying
    rules for ``zh`` apply to ``zh_CN`` as well.
    """
    if not _LOCALE.fullmatch(locale):
        raise PromptCatalogueError(
            f"{locale!r} is not a locale: expected language[-REGION], e.g. zh-CN or en-US"
        )
    return locale.replace("-", "_")


def available_locales() -> list[str]:
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.toml"))


@dataclass(frozen=True)
class PromptCatalogue:
    locale: str
    #: espeak-ng voice used to build the sound files.
    voice: str
    texts: Mapping[str, str]
    #: The text of each ``digits/<name>`` file Asterisk reads to say numbers in this locale.
    numbers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def load(cls, locale: str) -> PromptCatalogue:
        """The catalogue of ``locale``; checked against the reference locale's keys."""
        if not _LOCALE.fullmatch(locale) or not (PROMPTS_DIR / f"{locale}.toml").is_file():
            raise PromptCatalogueError(
                f"no prompts for locale {locale!r}; available: {', '.join(available_locales())}"
            )
        catalogue = cls._read(locale)
        if locale != REFERENCE_LOCALE:
            reference = set(cls._read(REFERENCE_LOCALE).texts)
            missing = sorted(reference - set(catalogue.texts))
            extra = sorted(set(catalogue.texts) - reference)
            if missing or extra:
                raise PromptCatalogueError(
                    f"prompts/{locale}.toml does not match {REFERENCE_LOCALE}.toml:"
                    + (f" missing {', '.join(missing)}" if missing else "")
                    + (f"; unknown {', '.join(extra)}" if extra else "")
                )
        catalogue._check_numbers()
        return catalogue

    def _check_numbers(self) -> None:
        """Every file Asterisk's rules read for this language has a text, and nothing else:
        a missing one would be silence in the middle of a number."""
        path = PROMPTS_DIR / f"{self.locale}.toml"
        try:
            needed = number_files(asterisk_language(self.locale))
        except UnknownNumberRules as exc:
            raise PromptCatalogueError(f"{path}: {exc}") from None
        missing = [n for n in needed if n not in self.numbers]
        extra = sorted(set(self.numbers) - set(needed))
        if missing or extra:
            raise PromptCatalogueError(
                f"{path}: [numbers] must give the text of every file Asterisk says numbers with"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )

    @classmethod
    def _read(cls, locale: str) -> PromptCatalogue:
        path = PROMPTS_DIR / f"{locale}.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PromptCatalogueError(f"{path} is not valid TOML: {exc}") from exc
        voice = data.get("meta", {}).get("voice")
        prompts = data.get("prompts")
        if not isinstance(voice, str) or not voice:
            raise PromptCatalogueError(f"{path}: [meta] voice is missing")
        if not isinstance(prompts, dict) or not prompts:
            raise PromptCatalogueError(f"{path}: the [prompts] table is missing or empty")
        for key, text in prompts.items():
            if not _KEY.fullmatch(key):
                raise PromptCatalogueError(f"{path}: {key!r} is not a prompt key (lower_case_words)")
            if not isinstance(text, str) or not text.strip():
                raise PromptCatalogueError(f"{path}: prompt {key!r} has no text")
        numbers = data.get("numbers", {})
        if not isinstance(numbers, dict):
            raise PromptCatalogueError(f"{path}: [numbers] must be a table of file name = text")
        for name, text in numbers.items():
            if not isinstance(text, str) or not text.strip():
                raise PromptCatalogueError(f"{path}: number {name!r} has no text")
        return cls(locale, voice, MappingProxyType(dict(prompts)), MappingProxyType(dict(numbers)))

    def keys(self) -> list[str]:
        return list(self.texts)

    def text(self, key: str) -> str:
        try:
            return self.texts[key]
        except KeyError:
            raise UnknownPromptError(
                f"no prompt {key!r} in the {self.locale} catalogue; known: {', '.join(self.texts)}"
            ) from None

    def number_names(self) -> list[str]:
        """The ``digits/`` file names, in the order of the locale file."""
        return list(self.numbers)

    def number_sounds(self) -> list[str]:
        """The number sounds as Asterisk names them, e.g. ``digits/10``."""
        return [number_sound(name) for name in self.numbers]

    def sounds(self) -> list[str]:
        """Every sound the IVR plays in this locale: prompts, then the number files."""
        return [self.sound_path(key) for key in self.texts] + self.number_sounds()

    def media(self, key: str) -> str:
        """The ARI media URI of a prompt, e.g. ``sound:hotline/main-menu``."""
        if key not in self.texts:
            self.text(key)  # raises with the list of known keys
        return f"sound:{SOUND_DIR}/{sound_name(key)}"

    def sound_path(self, key: str) -> str:
        """The sound as the dialplan names it, e.g. ``hotline/main-menu``."""
        return self.media(key).removeprefix("sound:")
