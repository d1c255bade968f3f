"""What the dialplan tests share: paths, and a host that records what the dialplan did."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIALPLANS = PROJECT_ROOT / "dialplans"
EXTENSIONS_CONF = DIALPLANS / "extensions.conf"


def _render_example_site() -> Path:
    """The files as `hotline asterisk install` writes them for an example site: two browser
    agents, TLS with certificates under /etc/asterisk/keys, the default settings otherwise."""
    from core.settings import load_settings
    from pbx_config.render import AgentPhone, render

    settings = load_settings(asterisk={"tls_cert": "/etc/asterisk/keys/asterisk.crt",
                                       "tls_key": "/etc/asterisk/keys/asterisk.key"})
    agents = [AgentPhone("1001", "secret-1001", "Agent 1001"), AgentPhone("1002", "secret-1002", "Agent 1002")]
    out = Path(tempfile.mkdtemp(prefix="rendered-dialplans-"))
    for name, text in render(settings, agents).items():
        (out / name).write_text(text, encoding="utf-8")
    return out


#: The shipped files filled for an example site: what Asterisk reads.
RENDERED = _render_example_site()


@dataclass
class RecordingHost:
    """A channel for the interpreter that records every action in order.

    ``stasis_status`` is what Stasis() reports: SUCCESS (the application took the call
    and let it go), FAILED (the application is not connected) or KILLED.
    """

    caller_number: str = "13800138000"
    stasis_status: str = "SUCCESS"
    events: list[tuple[str, ...]] = field(default_factory=list)
    stasis_calls: list[dict[str, object]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    hangup_cause: int | None = None

    async def answer(self) -> None:
        self.events.append(("answer",))

    async def stasis(
        self, app: str, args: list[str], *, context: str, exten: str, priority: int, app_data: str
    ) -> str:
        self.stasis_calls.append({"app": app, "args": list(args), "priority": priority,
                                  "app_data": app_data, "language": self.variables.get("CHANNEL(language)")})
        self.events.append(("stasis", app, *args))
        return self.stasis_status

    async def playback(self, sound: str) -> None:
        self.events.append(("playback", sound))

    async def hangup(self, cause: int = 16) -> None:
        self.hangup_cause = cause
        self.events.append(("hangup", str(cause)))

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value
        self.events.append(("set", name, value))

    async def other_app(self, name: str, data: str) -> None:
        self.events.append(("app", name, data))

    @property
    def played(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "playback"]

    def actions(self) -> list[tuple[str, ...]]:
        """Everything the caller could notice (variables left out)."""
        return [e for e in self.events if e[0] != "set"]


def conf_sections(path: Path) -> list[tuple[str, list[str], dict[str, list[str]]]]:
    """A plain reading of an Asterisk .conf file: (section, templates, key -> values),
    with the settings of the templates a section names copied in first, as Asterisk does."""
    sections: list[tuple[str, list[str], dict[str, list[str]]]] = []
    by_name: dict[str, dict[str, list[str]]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            templates = [t.strip() for t in (header.group(2) or "").split(",") if t.strip()]
            values: dict[str, list[str]] = {}
            for template in templates:
                if template != "!":
                    values.update({k: list(v) for k, v in by_name[template].items()})
            sections.append((header.group(1), templates, values))
            by_name[header.group(1)] = values
            continue
        key, _, value = line.partition("=")
        sections[-1][2].setdefault(key.strip(), []).append(value.lstrip(">").strip())
    return sections


def section(path: Path, name: str, type_: str | None = None) -> dict[str, list[str]]:
    """One section's settings (of a given ``type=`` where names repeat, as in pjsip.conf)."""
    for sec_name, _templates, values in conf_sections(path):
        if sec_name == name and (type_ is None or values.get("type") == [type_]):
            return values
    raise AssertionError(f"{path.name} has no section [{name}]" + (f" of type {type_}" if type_ else ""))
