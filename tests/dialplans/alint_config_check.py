"""Check Asterisk .conf files (not extensions.conf) with asterisklint's config parser.

asterisklint has a command for dialplans only (``dialplan-check``); its generic parser
still checks the syntax every Asterisk config file shares: sections, ``key = value`` /
``key => value`` lines, comments, whitespace, encoding, ``#include``. Run as a script so
that each check starts with asterisklint's global message registry empty::

    python tests/dialplans/alint_config_check.py dialplans/pjsip.conf ...

asterisklint 0.4.3 reads only one-character template lists (``[name](!)``), so a
section header that uses templates, ``[1001](agent-webrtc)``, is checked here instead:
every template it names must be a section defined earlier in the file. The header is
then handed to asterisklint as a plain ``[1001]``, line for line, so that its messages
keep the real line numbers. Exit status 1 when any message was reported.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

TEMPLATE_HEADER = re.compile(r"^(\s*)\[([^\]]+)\]\(([^)]*)\)(\s*(?:;.*)?)$")
SECTION = re.compile(r"^\s*\[([^\]]+)\]")


def rewrite_templates(path: Path) -> tuple[str, list[str]]:
    """Check template headers ourselves; return the text asterisklint can read and errors."""
    errors: list[str] = []
    defined: set[str] = set()
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, 1):
        m = TEMPLATE_HEADER.match(line)
        if m:
            indent, name, templates, rest = m.groups()
            for template in (t.strip() for t in templates.split(",")):
                if template != "!" and template not in defined:
                    errors.append(
                        f"{path.name}:{number} template {template!r} of [{name}] is not defined above it"
                    )
            lines[number - 1] = f"{indent}[{name}]{rest}"
            defined.add(name)
        elif s := SECTION.match(line):
            defined.add(s.group(1))
    return "\n".join(lines), errors


def check(path: Path) -> int:
    from asterisklint import FileConfigParser
    from asterisklint.defines import MessageDefManager

    text, errors = rewrite_templates(path)
    for error in errors:
        print(error, file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / path.name).write_text(text, encoding="utf-8")
        cwd = os.getcwd()
        os.chdir(tmp)  # so that asterisklint names the file as "pjsip.conf:<line>"
        try:
            parser = FileConfigParser()
            parser.include(path.name)
            sections = list(parser)
        finally:
            os.chdir(cwd)
    reported = [m for msgs in MessageDefManager.raised.values() for m in msgs if not m.muted]
    MessageDefManager.reset()
    print(f"{path}: {len(sections)} sections, {len(reported) + len(errors)} problem(s)")
    return 1 if reported or errors else 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    status = 0
    for name in argv:
        status |= check(Path(name).resolve())
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
