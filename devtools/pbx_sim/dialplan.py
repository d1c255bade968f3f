"""A small interpreter for the subset of ``extensions.conf`` that our dialplan uses.

The Asterisk stand-in runs ``dialplans/extensions.conf`` through this module so that
tests and the demo exercise the real dialplan, not a copy of its logic.

Supported, with Asterisk's semantics:

* sections ``[context]``, ``[globals]`` (variables), ``[general]`` (ignored);
* ``exten => <ext>,<priority>[(<label>)],<App>(<data>)``, ``same => ...``, priorities as
  numbers or ``n``, ``hint`` lines (recorded, never executed), ``include => <context>``;
* patterns ``_`` with ``X Z N [a-z0-9 ranges] . !``; the best match wins by Asterisk's
  ordering (exact names first, then the pattern that is most specific at the first
  position where patterns differ), a context's own extensions before its includes;
* ``${VAR}``, ``${VAR:offset[:length]}`` (negative too), ``${EXTEN}``, ``${CONTEXT}``,
  ``${PRIORITY}``, ``${CALLERID(num)}``, ``${LEN(...)}``, ``${CHANNEL(...)}`` and
  globals, nested ``${A_${B}}``; ``$[...]`` with comparisons, ``&``, ``|``, ``!`` and
  parentheses;
* ``NoOp``, ``Set``, ``Answer``, ``Stasis`` (sets ``STASISSTATUS``), ``Playback``
  (``a&b`` plays both), ``Hangup``, ``Goto``, ``GotoIf``; every other application goes to
  :meth:`DialplanHost.other_app`, except flow-control applications we do not model
  (``Gosub``, ``Macro``, ...), which raise.

Running off the end of an extension hangs the channel up, as Asterisk does with its
default ``autofallthrough=yes``. A host stops the dialplan (caller hung up) by raising
:class:`ChannelHungUp` from any of its methods. ``h`` extensions are not run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

#: Guard against dialplans that loop for ever (Goto to themselves).
MAX_STEPS = 10_000

#: Applications that change the flow in ways this interpreter does not model.
UNMODELLED_FLOW_APPS = frozenset(
    {"gosub", "gosubif", "macro", "macroif", "return", "stackpop", "while", "endwhile",
     "exitwhile", "continuewhile", "execif", "execiftime", "gotoiftime", "exec", "trygoto"}
)


class DialplanError(Exception):
    """A dialplan this interpreter cannot read or run; the message names file and line."""


class ChannelHungUp(Exception):
    """Raised by a host when the caller has gone: the dialplan stops quietly."""


@dataclass(frozen=True)
class Continue:
    """What Stasis() returns when the application sent the channel to a place of its choice
    (``POST /channels/{id}/continue`` with a context, extension, priority or label): STASISSTATUS
    is SUCCESS and the dialplan goes on there, not at the next priority."""

    context: str
    exten: str
    priority: int


class DialplanHost(Protocol):
    """The channel the dialplan runs on (the stand-in's simulated call)."""

    # Read-only: the dialplan reads ${CALLERID(num)}, it never sets it.
    @property
    def caller_number(self) -> str: ...

    async def answer(self) -> None: ...
    async def stasis(
        self, app: str, args: list[str], *, context: str, exten: str, priority: int, app_data: str
    ) -> str | Continue: ...
    async def playback(self, sound: str) -> None: ...
    async def hangup(self, cause: int = 16) -> None: ...
    async def set_variable(self, name: str, value: str) -> None: ...
    async def other_app(self, name: str, data: str) -> None: ...


# --- patterns ---------------------------------------------------------------------------

_CLASSES = {"X": "0123456789", "Z": "123456789", "N": "23456789"}
#: Rank of a pattern position is (characters it matches << 8 | lowest character), so
#: narrower sets sort first; '.', '!' and the end of the pattern sort after every set,
#: in that order (Asterisk's ext_cmp).
_DOT, _BANG, _END = 0x18000, 0x28000, 0x30000


def _rank(chars: str) -> int:
    return len(chars) << 8 | min(ord(min(chars)), 0xFF)


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    #: Per position, then the end: see _rank.
    rank: tuple[int, ...]
    is_pattern: bool

    @classmethod
    def compile(cls, text: str, where: str) -> Pattern:
        if not text.startswith("_"):
            return cls(text, re.compile(re.escape(text)), (), False)
        parts: list[str] = []
        rank: list[int] = []
        i, body = 0, text[1:]
        while i < len(body):
            ch = body[i]
            if ch.upper() in _CLASSES:
                chars = _CLASSES[ch.upper()]
                parts.append(f"[{chars}]")
                rank.append(_rank(chars))
            elif ch == "[":
                end = body.find("]", i)
                if end < 0:
                    raise DialplanError(f"{where}: unclosed '[' in pattern {text!r}")
                chars = _expand_set(body[i + 1:end], text, where)
                parts.append("[" + re.escape(chars) + "]")
                rank.append(_rank(chars))
                i = end
            elif ch == ".":
                parts.append(".+")
                rank.append(_DOT)
            elif ch == "!":
                parts.append(".*")
                rank.append(_BANG)
            elif ch == "-":
                pass  # Asterisk ignores dashes in patterns (readability: _555-XXXX)
            else:
                parts.append(re.escape(ch))
                rank.append(_rank(ch))
            i += 1
        return cls(text, re.compile("".join(parts)), (*rank, _END), True)

    def matches(self, exten: str) -> bool:
        return self.regex.fullmatch(exten) is not None

    def sort_key(self) -> tuple[int, tuple[int, ...], str]:
        # Exact extensions before any pattern; then position by position, the narrower
        # character set first (Asterisk's ext_cmp); ties by the text.
        return (1 if self.is_pattern else 0, self.rank, self.text)


def _expand_set(spec: str, text: str, where: str) -> str:
    if not spec:
        raise DialplanError(f"{where}: empty '[]' in pattern {text!r}")
    chars: set[str] = set()
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            lo, hi = spec[i], spec[i + 2]
            if lo > hi:
                raise DialplanError(f"{where}: bad range {lo}-{hi} in pattern {text!r}")
            chars.update(chr(c) for c in range(ord(lo), ord(hi) + 1))
            i += 3
        else:
            chars.add(spec[i])
            i += 1
    return "".join(sorted(chars))


# --- parsed dialplan --------------------------------------------------------------------


@dataclass
class Step:
    app: str
    data: str
    where: str  # "file:line" for error messages


@dataclass
class Extension:
    pattern: Pattern
    steps: dict[int, Step] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    hint: str | None = None


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)

    def find(self, exten: str) -> Extension | None:
        candidates = [e for e in self.extensions.values() if e.pattern.matches(exten)]
        return min(candidates, key=lambda e: e.pattern.sort_key()) if candidates else None


_SECTION = re.compile(r"\[([^\]]+)\]\s*(\(.*\))?")
_KEYVAL = re.compile(r"([A-Za-z_][\w()]*)\s*=>?\s*(.*)")
_EXTEN = re.compile(r"(exten|same)\s*=>?\s*(.*)", re.IGNORECASE)
_INCLUDE = re.compile(r"include\s*=>?\s*(\S+)", re.IGNORECASE)
_PRIORITY = re.compile(r"(\d+|n|hint)(?:\(([A-Za-z_][\w-]*)\))?", re.IGNORECASE)
_APP = re.compile(r"([A-Za-z_]\w*)(?:\((.*)\))?", re.DOTALL)


def _strip_comment(line: str) -> str:
    """Drop a ``;`` comment; ``\\;`` is a literal semicolon."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


class Dialplan:
    def __init__(self, contexts: dict[str, Context], globals_: dict[str, str], source: str) -> None:
        self.contexts = contexts
        self.globals = globals_
        self.source = source

    # --- loading ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Dialplan:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise DialplanError(f"dialplan {path} does not exist") from exc
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<dialplan>") -> Dialplan:
        contexts: dict[str, Context] = {}
        globals_: dict[str, str] = {}
        section: str | None = None
        current: Extension | None = None
        last_priority = 0
        in_block_comment = False
        for lineno, raw in enumerate(text.splitlines(), 1):
            where = f"{source}:{lineno}"
            # ;-- ... --; block comments may span lines.
            if in_block_comment:
                if "--;" not in raw:
                    continue
                raw, in_block_comment = raw.split("--;", 1)[1], False
            if ";--" in raw:
                head, _, tail = raw.partition(";--")
                in_block_comment = "--;" not in tail
                raw = head + (tail.split("--;", 1)[1] if not in_block_comment else "")
            line = _strip_comment(raw)
            if not line:
                continue
            if line.startswith("#"):
                raise DialplanError(f"{where}: preprocessor directive {line!r} is not supported")
            if m := _SECTION.fullmatch(line):
                if m.group(2):
                    raise DialplanError(f"{where}: context templates {line!r} are not supported")
                section, current, last_priority = m.group(1).strip(), None, 0
                if section not in ("general", "globals"):
                    if section in contexts:
                        raise DialplanError(f"{where}: context [{section}] defined twice")
                    contexts[section] = Context(section)
                continue
            if section is None:
                raise DialplanError(f"{where}: {line!r} before any [context]")
            if section == "general":
                continue  # pbx_config options (static, writeprotect, ...) change nothing here
            if section == "globals":
                if not (m := _KEYVAL.fullmatch(line)):
                    raise DialplanError(f"{where}: expected NAME=value in [globals], got {line!r}")
                globals_[m.group(1)] = m.group(2).strip()
                continue
            ctx = contexts[section]
            if m := _INCLUDE.fullmatch(line):
                ctx.includes.append(m.group(1))
                continue
            if not (m := _EXTEN.fullmatch(line)):
                raise DialplanError(f"{where}: unsupported line {line!r}")
            keyword, rest = m.group(1).lower(), m.group(2)
            if keyword == "exten":
                name, sep, rest = rest.partition(",")
                name = name.strip()
                if not sep or not name:
                    raise DialplanError(f"{where}: expected 'exten => name,priority,App(...)'")
                if "/" in name:
                    raise DialplanError(f"{where}: caller-id matching {name!r} is not supported")
                if name not in ctx.extensions:
                    ctx.extensions[name] = Extension(Pattern.compile(name, where))
                if current is not ctx.extensions[name]:
                    current = ctx.extensions[name]
                    last_priority = max(current.steps, default=0)
            elif current is None:
                raise DialplanError(f"{where}: 'same =>' without an 'exten =>' before it")
            prio_text, sep, app_text = rest.partition(",")
            pm = _PRIORITY.fullmatch(prio_text.strip())
            if not sep or not pm:
                raise DialplanError(f"{where}: bad priority in {line!r}")
            if pm.group(1).lower() == "hint":
                current.hint = app_text.strip()
                continue
            priority = last_priority + 1 if pm.group(1).lower() == "n" else int(pm.group(1))
            if priority in current.steps:
                raise DialplanError(f"{where}: priority {priority} of {current.pattern.text!r} defined twice")
            am = _APP.fullmatch(app_text.strip())
            if not am:
                raise DialplanError(f"{where}: expected App(arguments), got {app_text.strip()!r}")
            current.steps[priority] = Step(am.group(1), am.group(2) or "", where)
            if pm.group(2):
                current.labels[pm.group(2)] = priority
            last_priority = priority
        if in_block_comment:
            raise DialplanError(f"{source}: block comment ';--' is never closed")
        for ctx in contexts.values():
            for inc in ctx.includes:
                if inc not in contexts:
                    raise DialplanError(f"{source}: [{ctx.name}] includes unknown context {inc!r}")
        return cls(contexts, globals_, source)

    # --- matching -----------------------------------------------------------------------

    def find_extension(
        self, context: str, exten: str, seen: frozenset[str] = frozenset()
    ) -> Extension | None:
        """The extension that runs ``exten`` in ``context`` (own extensions, then includes)."""
        ctx = self.contexts.get(context)
        if ctx is None or context in seen:
            return None
        found = ctx.find(exten)
        if found is not None:
            return found
        for inc in ctx.includes:
            found = self.find_extension(inc, exten, seen | {context})
            if found is not None:
                return found
        return None

    def match(self, context: str, exten: str) -> str | None:
        """The extension (name or pattern) that ``exten`` runs in ``context``, or ``None``."""
        found = self.find_extension(context, exten)
        return found.pattern.text if found else None

    # --- running ------------------------------------------------------------------------

    async def run(self, context: str, exten: str, host: DialplanHost) -> None:
        """Execute from ``context,exten,1`` until a hang-up or the end of the dialplan."""
        run = _Run(self, host, context, exten)
        try:
            await run.execute()
        except ChannelHungUp:
            log.debug("dialplan stopped: the channel hung up")


class _Run:
    """One channel's walk through the dialplan (its variables and position)."""

    def __init__(self, plan: Dialplan, host: DialplanHost, context: str, exten: str) -> None:
        self.plan, self.host = plan, host
        self.context, self.exten, self.priority = context, exten, 1
        self.vars: dict[str, str] = {}
        self.where = plan.source

    async def execute(self) -> None:
        if self.plan.find_extension(self.context, self.exten) is None:
            # Asterisk rejects a call to an extension that does not exist.
            log.info("no extension %r in context %r: hanging up", self.exten, self.context)
            await self.host.hangup(1)
            return
        for _ in range(MAX_STEPS):
            ext = self.plan.find_extension(self.context, self.exten)
            step = ext.steps.get(self.priority) if ext else None
            if ext is None or step is None:
                # autofallthrough=yes: out of dialplan, the channel is hung up.
                await self.host.hangup(16)
                return
            self.where = step.where
            try:
                goto = await self.call(step.app, self.substitute(step.data))
            except _HungUp:
                return
            if goto is not None:
                self.context, self.exten, self.priority = goto
            else:
                self.priority += 1
        raise DialplanError(f"{self.where}: more than {MAX_STEPS} steps: the dialplan loops")

    # --- applications ---------------------------------------------------------------------

    async def call(self, app: str, data: str) -> tuple[str, str, int] | None:
        """Run one application; a ``(context, exten, priority)`` to jump to, or ``None``."""
        name = app.lower()
        # A host that shows where its channel is (the stand-in's calls) is told every step, as
        # Asterisk publishes ChannelDialplan for each application it runs.
        step = getattr(self.host, "dialplan_step", None)
        if step is not None:
            step(self.context, self.exten, self.priority, app, data)
        if name == "noop":
            return None
        if name == "set":
            var, sep, value = data.partition("=")
            if not sep or not var.strip():
                raise DialplanError(f"{self.where}: Set needs NAME=value, got {data!r}")
            var = var.strip()
            self.vars[_norm_function(var)] = value
            await self.host.set_variable(var, value)
            return None
        if name == "answer":
            await self.host.answer()
            return None
        if name == "stasis":
            stasis_app, *args = split_args(data)
            if not stasis_app:
                raise DialplanError(f"{self.where}: Stasis needs an application name")
            status = await self.host.stasis(
                stasis_app, args, context=self.context, exten=self.exten, priority=self.priority, app_data=data
            )
            if isinstance(status, Continue):
                self.vars["STASISSTATUS"] = "SUCCESS"
                return status.context, status.exten, status.priority
            self.vars["STASISSTATUS"] = status
            return None
        if name == "playback":
            files = split_args(data)[0] if data else ""
            if not files:
                raise DialplanError(f"{self.where}: Playback needs a file name")
            for sound in files.split("&"):
                await self.host.playback(sound)
            self.vars["PLAYBACKSTATUS"] = "SUCCESS"
            await self.host.set_variable("PLAYBACKSTATUS", "SUCCESS")  # announced, as Asterisk does
            return None
        if name == "hangup":
            cause = data.strip()
            # A host that tells Hangup() from the end of the dialplan (the stand-in's calls: their
            # events differ) is told which; others hang up either way.
            hangup_app = getattr(self.host, "hangup_app", None)
            await (hangup_app or self.host.hangup)(int(cause) if cause.isdigit() else 16)
            raise _HungUp
        if name == "goto":
            return self.target(data)
        if name == "gotoif":
            condition, sep, branches = data.partition("?")
            if not sep:
                raise DialplanError(f"{self.where}: GotoIf needs condition?true[:false], got {data!r}")
            if_true, _, if_false = branches.partition(":")
            branch = if_true if is_true(condition) else if_false
            return self.target(branch) if branch.strip() else None
        if name in UNMODELLED_FLOW_APPS:
            raise DialplanError(f"{self.where}: {app}() is not supported by the dialplan interpreter")
        await self.host.other_app(app, data)
        return None

    def target(self, spec: str) -> tuple[str, str, int]:
        """``[[context,]exten,]priority`` -> where to continue; a label is looked up."""
        parts = [p.strip() for p in split_args(spec)]
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise DialplanError(f"{self.where}: bad goto target {spec!r}")
        context = parts[0] if len(parts) == 3 else self.context
        exten = parts[-2] if len(parts) >= 2 else self.exten
        label = parts[-1]
        ext = self.plan.find_extension(context, exten)
        if ext is None:
            raise DialplanError(f"{self.where}: goto {spec!r}: no extension {exten!r} in context {context!r}")
        if label.isdigit():
            priority = int(label)
        elif label in ext.labels:
            priority = ext.labels[label]
        else:
            raise DialplanError(f"{self.where}: goto {spec!r}: no label {label!r} in {context},{ext.pattern.text}")
        if priority not in ext.steps:
            raise DialplanError(f"{self.where}: goto {spec!r}: no priority {priority} in {context},{ext.pattern.text}")
        return context, exten, priority

    # --- variables and expressions ------------------------------------------------------

    def substitute(self, text: str) -> str:
        """Expand ``${...}`` and ``$[...]``, innermost first, as Asterisk does."""
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i) or text.startswith("$[", i):
                opener, closer = text[i + 1], "}" if text[i + 1] == "{" else "]"
                end = _closing(text, i + 2, opener, closer)
                if end < 0:
                    raise DialplanError(f"{self.where}: unclosed '${opener}' in {text!r}")
                inner = self.substitute(text[i + 2:end])
                out.append(self.variable(inner) if opener == "{" else evaluate(inner, self.where))
                i = end + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def variable(self, expr: str) -> str:
        fm = re.fullmatch(r"([A-Za-z_]\w*)\((.*)\)", expr, re.DOTALL)
        if fm:
            return self.function(fm.group(1).upper(), fm.group(2))
        vm = re.fullmatch(r"([A-Za-z_][\w.]*)(?::(-?\d+)(?::(-?\d+))?)?", expr)
        if not vm:
            raise DialplanError(f"{self.where}: cannot read variable expression ${{{expr}}}")
        value = self.lookup(vm.group(1))
        if vm.group(2) is None:
            return value
        return substring(value, int(vm.group(2)), int(vm.group(3)) if vm.group(3) else None)

    def lookup(self, name: str) -> str:
        builtin = {"EXTEN": self.exten, "CONTEXT": self.context, "PRIORITY": str(self.priority)}
        if name in builtin:
            return builtin[name]
        if name in self.vars:
            return self.vars[name]
        return self.plan.globals.get(name, "")

    def function(self, name: str, arg: str) -> str:
        key = f"{name}({arg.strip().lower()})"
        if key in self.vars:
            return self.vars[key]  # set earlier with Set(FUNC(arg)=...)
        if name == "LEN":
            return str(len(arg))
        if name == "CALLERID":
            field_ = arg.strip().lower()
            if field_ in ("num", "number"):
                return self.host.caller_number
            if field_ == "name":
                return ""  # the stand-in's callers carry a number only
            raise DialplanError(f"{self.where}: CALLERID({arg}) is not supported")
        if name == "CHANNEL":
            return ""
        raise DialplanError(f"{self.where}: function {name}() is not supported by the dialplan interpreter")


class _HungUp(Exception):
    """Hangup() ran: this channel's dialplan is over."""


def _norm_function(var: str) -> str:
    """``CHANNEL(Language)`` and ``channel(language)`` are the same function write."""
    m = re.fullmatch(r"([A-Za-z_]\w*)\((.*)\)", var)
    return f"{m.group(1).upper()}({m.group(2).strip().lower()})" if m else var


def _closing(text: str, start: int, opener: str, closer: str) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == opener and text[j - 1] == "$":
            depth += 1
        elif text[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    return -1


def substring(value: str, offset: int, length: int | None) -> str:
    """``${VAR:offset:length}``: negative offset counts from the end; negative length
    leaves that many characters off the end."""
    if offset < 0:
        offset = max(len(value) + offset, 0)
    rest = value[offset:]
    if length is None or length == 0:
        return rest
    if length < 0:
        return rest[: max(len(rest) + length, 0)]
    return rest[:length]


def split_args(data: str) -> list[str]:
    """Split application arguments on commas outside quotes and parentheses."""
    args: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for ch in data:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]" and depth:
            depth -= 1
        elif ch == "," and not quoted and depth == 0:
            args.append("".join(current))
            current = []
            continue
        current.append(ch)
    args.append("".join(current))
    return args


def is_true(value: str) -> bool:
    """Asterisk's condition test: empty and numeric zero are false, anything else true."""
    value = value.strip()
    if not value:
        return False
    try:
        return float(value) != 0
    except ValueError:
        return True


# --- $[...] expressions -------------------------------------------------------------------

_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|!=|<=|>=|==|=|<|>|&|\||!|\(|\)|[^\s"=!<>&|()]+)')
_COMPARISONS = {"=", "==", "!=", "<", ">", "<=", ">="}


def evaluate(expr: str, where: str = "<expression>") -> str:
    """Evaluate ``$[...]`` (after substitution): comparisons, ``&``, ``|``, ``!``, ``()``.

    Numbers compare as numbers, anything else as strings; quotes are stripped.
    Results are ``"1"``/``"0"`` for comparisons and logic, the value itself otherwise.
    """
    tokens: list[str] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m:
            raise DialplanError(f"{where}: cannot read expression $[{expr}]")
        tokens.append(m.group(1))
        pos = m.end()
    parser = _ExprParser(tokens, expr, where)
    result = parser.parse_or()
    if parser.pos != len(tokens):
        raise DialplanError(f"{where}: unexpected {tokens[parser.pos]!r} in $[{expr}]")
    return result


class _ExprParser:
    def __init__(self, tokens: list[str], expr: str, where: str) -> None:
        self.tokens, self.expr, self.where, self.pos = tokens, expr, where, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise DialplanError(f"{self.where}: $[{self.expr}] ends too early")
        self.pos += 1
        return token

    def parse_or(self) -> str:
        left = self.parse_and()
        while self.peek() == "|":
            self.take()
            right = self.parse_and()
            left = "1" if is_true(left) or is_true(right) else "0"
        return left

    def parse_and(self) -> str:
        left = self.parse_comparison()
        while self.peek() == "&":
            self.take()
            right = self.parse_comparison()
            left = "1" if is_true(left) and is_true(right) else "0"
        return left

    def parse_comparison(self) -> str:
        left = self.parse_unary()
        if self.peek() in _COMPARISONS:
            op = self.take()
            right = self.parse_unary()
            return "1" if _compare(left, op, right) else "0"
        return left

    def parse_unary(self) -> str:
        token = self.take()
        if token == "!":
            return "0" if is_true(self.parse_unary()) else "1"
        if token == "(":
            value = self.parse_or()
            if self.take() != ")":
                raise DialplanError(f"{self.where}: missing ')' in $[{self.expr}]")
            return value
        if token in _COMPARISONS or token in {"&", "|", ")"}:
            raise DialplanError(f"{self.where}: operator {token!r} without a left operand in $[{self.expr}]")
        if token.startswith('"') and token.endswith('"') and len(token) >= 2:
            return token[1:-1]
        return token


#: Two numbers, or else two strings: never one of each, which Python cannot order.
_Operand = TypeVar("_Operand", float, str)


def _compare(left: str, op: str, right: str) -> bool:
    try:
        numbers = float(left), float(right)
    except ValueError:
        return _ordered(left, op, right)
    return _ordered(numbers[0], op, numbers[1])


def _ordered(a: _Operand, op: str, b: _Operand) -> bool:
    if op in ("=", "=="):
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b
