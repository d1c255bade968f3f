"""Fill the shipped Asterisk configuration (``dialplans/*.conf``) with a site's values.

The files keep ``{{name}}`` placeholders where sites differ; everything else in them is
the configuration itself, commented for operators. Rendering is pure (settings and agents
in, file texts out), so the tests render exactly what ``hotline asterisk install`` writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings

#: Where the shipped configuration lives (the repository's ``dialplans/``).
DIALPLANS_DIR = Path(__file__).resolve().parent.parent / "dialplans"


def config_files(source: Path = DIALPLANS_DIR) -> list[str]:
    """The files Asterisk reads that we ship: every ``*.conf`` of ``dialplans/``. asterisk.conf
    (the directories) is the operator's and is not among them."""
    return sorted(p.name for p in source.glob("*.conf") if p.name != "asterisk.conf")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_ENDPOINT = re.compile(r"PJSIP/([A-Za-z0-9_.-]{1,64})")


class RenderError(ValueError):
    """A value that cannot go into Asterisk's configuration, or a placeholder nobody fills."""


@dataclass(frozen=True, slots=True)
class AgentPhone:
    """One agent's SIP account: the endpoint the queue rings and the secret the browser uses."""

    endpoint: str  # "1001" of PJSIP/1001
    secret: str
    name: str
    #: A desk phone or plain SIP softphone (UDP, unencrypted RTP) rather than the browser.
    desk: bool = False

    @classmethod
    def from_account(cls, sip_endpoint: str, secret: str, name: str, *, desk: bool = False) -> AgentPhone:
        m = _ENDPOINT.fullmatch(sip_endpoint)
        if m is None:
            raise RenderError(f"agent endpoint {sip_endpoint!r} is not PJSIP/<name>")
        return cls(endpoint=m.group(1), secret=secret, name=name, desk=desk)


def conf_value(value: str, what: str) -> str:
    """A value as Asterisk's config parser reads it back: ``;`` starts a comment unless escaped."""
    if any(ch in value for ch in "\r\n\0"):
        raise RenderError(f"{what} must be on one line")
    if value != value.strip():
        raise RenderError(f"{what} must not begin or end with spaces")
    return value.replace(";", r"\;")


def _agents_block(agents: list[AgentPhone]) -> str:
    blocks = []
    for a in agents:
        name = conf_value(a.name, f"agent {a.endpoint}'s name").replace("<", "").replace(">", "").replace('"', "")
        blocks.append(
            f"[{a.endpoint}]({'agent-desk' if a.desk else 'agent-webrtc'})\nauth={a.endpoint}-auth\naors={a.endpoint}\n"
            f'callerid="{name}" <{a.endpoint}>\n\n'
            f"[{a.endpoint}-auth](agent-auth)\nusername={a.endpoint}\n"
            f"password={conf_value(a.secret, f'agent {a.endpoint} SIP secret')}\n\n"
            f"[{a.endpoint}](agent-aor)\n"
        )
    if not blocks:
        return "; No agent has a SIP account yet (hotline users add --endpoint ... --sip-password)."
    return "\n".join(blocks)


def _members_block(agents: list[AgentPhone]) -> str:
    if not agents:
        return "; No agents: callers hear the goodbye prompt when the application is down (joinempty)."
    return "\n".join(f"member => PJSIP/{a.endpoint},0,{a.endpoint}" for a in agents)


def _tls_block(settings: Settings) -> str:
    a = settings.asterisk
    if a.tls_cert is None or a.tls_key is None:
        return "tlsenable=no"
    return (f"tlsenable=yes\ntlsbindaddr={a.bind_host}:{a.https_port}\n"
            f"tlscertfile={a.tls_cert}\ntlsprivatekey={a.tls_key}")


def _ice_block(settings: Settings) -> str:
    pairs = settings.asterisk.ice_host_candidates
    return "\n".join(f"{conf_value(k, 'ICE address')} => {conf_value(v, 'ICE address')}"
                     for k, v in pairs.items())


def values(settings: Settings, agents: list[AgentPhone], data_dir: Path | None = None) -> dict[str, str]:
    """Every placeholder's text for this site."""
    a = settings.asterisk
    return {
        "bind_host": conf_value(a.bind_host, "[asterisk] bind_host"),
        "http_port": str(a.http_port),
        "tls": _tls_block(settings),
        "sip_port": str(a.sip_port),
        "trunk_host": conf_value(a.trunk_host, "[asterisk] trunk_host"),
        "trunk_port": str(a.trunk_port),
        "rtp_start": str(a.rtp_start),
        "rtp_end": str(a.rtp_end),
        "rtp_timeout": str(a.rtp_timeout_s),
        "rtp_timeout_hold": str(a.rtp_timeout_hold_s),
        "ice_host_candidates": _ice_block(settings),
        "ari_username": conf_value(settings.ari.username, "[ari] username"),
        "ari_password": conf_value(settings.ari.password.get_secret_value(), "[ari] password"),
        "moh_dir": str((data_dir or a.data_dir) / "moh" / "hotline"),
        "agents": _agents_block(agents),
        "fallback_members": _members_block(agents),
    }


def fill(text: str, vals: dict[str, str], name: str) -> str:
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in vals:
            raise RenderError(f"{name}: no value for {{{{{key}}}}}")
        return vals[key]

    return _PLACEHOLDER.sub(one, text)


def render(settings: Settings, agents: list[AgentPhone], *, data_dir: Path | None = None,
           source: Path = DIALPLANS_DIR) -> dict[str, str]:
    """File name -> text of every configuration file, filled for this site."""
    vals = values(settings, agents, data_dir)
    # One newline at the end, whatever a placeholder left there (an empty list of agents).
    return {name: fill((source / name).read_text(encoding="utf-8"), vals, name).rstrip() + "\n"
            for name in config_files(source)}
