"""What the stand-in reads from our other Asterisk configuration files, besides the dialplan.

The stand-in takes its configured objects from the very files a real Asterisk loads
(``dialplans/pjsip.conf``, ``dialplans/musiconhold.conf``), so that a class or an
endpoint missing there is missing in tests and the demo too. Only the general
``.conf`` syntax is read: ``[section]``, ``[section](template,...)``, ``[template](!)``,
``key=value`` / ``key => value`` and ``;`` comments; a section inherits its templates'
keys, as Asterisk's config loader does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_SECTION = re.compile(r"\[([^\]]+)\]\s*(?:\(([^)]*)\))?")
_KEYVAL = re.compile(r"([^=]+?)\s*=>?\s*(.*)")


@dataclass
class Section:
    name: str
    is_template: bool
    values: dict[str, str] = field(default_factory=dict)


def read_sections(path: Path) -> list[Section]:
    """The sections of a ``.conf`` file in order, templates applied; ``[]`` if there is no file.

    A missing file is not an error: Asterisk starts without it too (and then has no
    music classes, no endpoints ...), which is what the stand-in should then show.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        log.info("%s does not exist: nothing configured from it", path)
        return []
    sections: list[Section] = []
    templates: dict[str, Section] = {}
    current: Section | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := _SECTION.fullmatch(line):
            options = [o.strip() for o in (m.group(2) or "").split(",") if o.strip()]
            current = Section(m.group(1).strip(), "!" in options)
            for name in (o for o in options if o != "!"):
                if name in templates:
                    current.values.update(templates[name].values)
            if current.is_template:
                templates[current.name] = current
            else:
                sections.append(current)
            continue
        if current is not None and (kv := _KEYVAL.fullmatch(line)):
            current.values[kv.group(1).strip().lower()] = kv.group(2).strip()
    return sections


def moh_classes(path: Path) -> set[str]:
    """Music-on-hold classes of ``musiconhold.conf`` (every section but ``[general]``)."""
    return {s.name for s in read_sections(path) if s.name.lower() != "general"}


def pjsip_endpoints(path: Path) -> list[str]:
    """Names of the ``type=endpoint`` objects of ``pjsip.conf``, in file order."""
    names = [s.name for s in read_sections(path) if s.values.get("type") == "endpoint"]
    return list(dict.fromkeys(names))


def pjsip_endpoint_options(path: Path) -> dict[str, dict[str, str]]:
    """``PJSIP/<name>`` -> the options of that ``type=endpoint`` object (``context``,
    ``callerid``, ``moh_suggest`` ...), templates applied."""
    return {f"PJSIP/{s.name}": dict(s.values) for s in read_sections(path) if s.values.get("type") == "endpoint"}
