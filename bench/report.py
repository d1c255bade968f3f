"""What every benchmark prints and writes: a Markdown table, and its block in README.md."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, columns padded so that it also reads well in a terminal."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        # A row has a cell per column, as the header does.
        return "| " + " | ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |", *map(line, cells[1:])])


def measures(rows: Sequence[tuple[str, str]]) -> str:
    """The usual two-column table of a benchmark's figures."""
    return table(["measure", "value"], rows)


def write_block(name: str, text: str, readme: Path = README) -> None:
    """Put ``text`` between ``<!-- bench:NAME -->`` markers in the README: in place of the old
    block, or at the end of the "## Benchmarks" section (after any notes) the first time."""
    content = readme.read_text(encoding="utf-8")
    block = f"<!-- bench:{name} -->\n{text}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", flags=re.S)
    if pattern.search(content):
        content = pattern.sub(lambda _: block, content)
    else:
        section = re.search(r"^## Benchmarks\n.*?(?=^## |\Z)", content, flags=re.S | re.M)
        if section is None:
            raise SystemExit(f"{readme} has no '## Benchmarks' section for the {name} figures")
        end = section.end()
        after = "\n" if end < len(content) else ""
        content = content[:end].rstrip("\n") + "\n\n" + block + "\n" + after + content[end:]
    readme.write_text(content, encoding="utf-8")
