"""Numbers on a command line, checked where argparse reads them, so that a wrong one is said
as ``argument --rate: must be above 0, got 0`` (exit 2) before any work starts."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(*, at_least: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number, ``at_least`` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if at_least is not None and value < at_least:
            raise argparse.ArgumentTypeError(f"must be at least {at_least}, got {text}")
        return value

    return parse


def number(*, above: float | None = None, within: tuple[float, float] | None = None) -> Callable[[str], float]:
    """An argparse ``type``: a number, strictly ``above`` a bound or ``within`` a closed range."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        # "not value > above" also refuses NaN, which every comparison fails.
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"must be above {above:g}, got {text}")
        if within is not None and not within[0] <= value <= within[1]:
            raise argparse.ArgumentTypeError(f"must be from {within[0]:g} to {within[1]:g}, got {text}")
        return value

    return parse


# ------------------------------------------------------------------ commands with examples
# Every command's --help says what it does and shows how to call it: the description as
# written (line breaks kept), then its examples, one per line, as typed at a shell.

_KEEP_LINES = argparse.RawDescriptionHelpFormatter


def examples(*lines: str) -> str:
    """The epilog of a help text: ``example:`` or ``examples:``, then each line indented."""
    heading = "example:" if len(lines) == 1 else "examples:"
    return "\n".join([heading, *(f"  {line}" for line in lines)])


def command(prog: str, description: str, *example_lines: str) -> argparse.ArgumentParser:
    """A command's parser whose help shows ``description`` as written and its examples."""
    return argparse.ArgumentParser(prog=prog, description=description, epilog=examples(*example_lines),
                                   formatter_class=_KEEP_LINES)


def action(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str,
    *example_lines: str,
) -> argparse.ArgumentParser:
    """A sub-command: ``summary`` in its command's list, ``description`` and examples in its own help."""
    return sub.add_parser(name, help=summary, description=description, epilog=examples(*example_lines),
                          formatter_class=_KEEP_LINES)
