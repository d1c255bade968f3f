"""The sound files Asterisk needs to say a number (``number:N`` media), per channel language.

Asterisk says numbers with its own rules per language (``main/say.c``,
``ast_say_number_full_<lang>``) from stock files ``digits/<name>``. A source build ships no
sound files at all, so without these every ``number:N`` is silence (zh) or a failed playback
(en). ``hotline prompts build`` speaks them like the prompts, into
``<sounds>/<language>/digits/<name>.wav``, where Asterisk looks first for the channel
language (then ``<sounds>/zh/``, ``<sounds>/``, ``<sounds>/en/``).

Which names each rule set reads (Asterisk 22.10, ``main/say.c``):

* ``zh`` (any ``zh*`` language, ``ast_say_number_full_zh``): ``0``-``9``, the tens ``10``,
  ``20`` ... ``90`` (12 is ``digits/10`` then ``digits/2``: 十 二), ``hundred``, ``thousand``,
  ``wan`` (10^4), ``yi`` (10^8), ``minus``; ``0`` also for the zero inside 105 (一百零五).
* ``en`` (``en*`` except ``en_GB``, ``get_number_str_en``): ``0``-``19``, the tens ``20``
  ... ``90``, ``hundred``, ``thousand``, ``million``, ``billion``, ``minus``.
* ``ko``: Asterisk has no Korean routine; ``say_number_full`` falls back to the English one
  (and logs "Language ko_KR not currently supported, defaulting to English"). The English
  structure gives Sino-Korean numbers right up to 99 (21 = 이십 + 일), which is what the IVR
  says (queue positions, minutes), and 200-999 and 2,000-9,999 (이백, 이천); 100-199 and
  1,000-1,999 come out as 일 백 / 일 천 rather than 백 / 천, and 10,000 and more are counted in
  thousands (12,000 as 십이 천, not 만 이천): understandable, not idiomatic.
"""

from __future__ import annotations

#: The Asterisk sounds sub-directory of the number files.
DIGITS_DIR = "digits"

_TENS = tuple(str(n) for n in range(10, 100, 10))
_ZH_FILES = (*(str(n) for n in range(10)), *_TENS, "hundred", "thousand", "wan", "yi", "minus")
_EN_FILES = (*(str(n) for n in range(20)), *_TENS[1:], "hundred", "thousand", "million", "billion", "minus")

#: Asterisk's rule set (the say.c routine) for a language's first two letters, and the
#: files it reads. Only the languages we ship prompts for; another needs its routine read.
_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "zh": ("zh", _ZH_FILES),
    "en": ("en", _EN_FILES),
    "ko": ("en", _EN_FILES),  # no Korean routine in Asterisk: English rules (see above)
}


class UnknownNumberRules(LookupError):
    """A language whose number-saying rules in Asterisk we have not read."""


def say_rules(language: str) -> str:
    """The say.c routine Asterisk uses for an Asterisk channel language (``zh_CN`` -> ``zh``)."""
    return _entry(language)[0]


def number_files(language: str) -> tuple[str, ...]:
    """The ``digits/<name>`` names Asterisk reads to say any number in ``language``."""
    return _entry(language)[1]


def number_sound(name: str) -> str:
    """The sound as Asterisk names it, e.g. ``digits/10``."""
    return f"{DIGITS_DIR}/{name}"


def _entry(language: str) -> tuple[str, tuple[str, ...]]:
    # say.c compares the first two letters only, with one exception we do not cover.
    if language.lower().startswith("en_gb"):
        raise UnknownNumberRules("Asterisk says British English numbers with its own rules (digits/and); "
                                 "not supported: use en_US")
    try:
        return _RULES[language[:2].lower()]
    except KeyError:
        raise UnknownNumberRules(
            f"no number sounds known for language {language!r}: Asterisk's rules are known for "
            f"{', '.join(sorted(_RULES))} (ivr/prompts/numbers.py)"
        ) from None
