"""A private, real Asterisk 22 inside a test network namespace (:mod:`devtools.netns`).

For browsers: SIP over WebSocket (``ws://<ns_addr>:8088/ws``) and over TLS
(``wss://<ns_addr>:8089/ws``, a self-signed certificate made here), and WebRTC media whose
only ICE candidate is the namespace's address, which the browser in the root namespace
reaches over the veth pair. Configured, like :mod:`devtools.asterisk`'s instances, by
``hotline asterisk install`` itself.

The namespace is the instance's own, so its ports are fixed (no clash with other runs); the
carrier trunk is ``network.peer_addr``, a root-side address of its own, because Asterisk
identifies the trunk by source address and the browser comes from ``network.host_addr``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from devtools.asterisk import AsteriskInstance, free_udp_port
from devtools.netns import TestNetwork
from pbx_config.render import AgentPhone

HTTP_PORT, HTTPS_PORT, SIP_PORT = 8088, 8089, 5060


def self_signed(directory: Path, address: str) -> tuple[Path, Path]:
    """A certificate for ``address`` (as an IP subjectAltName) and its key, valid two days."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "asterisk.crt", directory / "asterisk.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={address}", "-addext", f"subjectAltName=IP:{address}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@dataclass
class NamespacedAsterisk(AsteriskInstance):
    """An :class:`AsteriskInstance` whose process runs inside ``network``'s namespace."""

    network: TestNetwork | None = None

    @property
    def host(self) -> str:
        return self.settings.asterisk.bind_host

    @property
    def ari_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.http_port}/ws"

    @property
    def wss_url(self) -> str:
        return f"wss://{self.host}:{self.settings.asterisk.https_port}/ws"

    @property
    def sip_server(self) -> tuple[str, int]:
        return self.host, self.sip_port

    def launch_prefix(self) -> list[str]:
        # `ip netns exec` execs the command: the process, its pid and its process group are
        # Asterisk's own. The CLI (`asterisk -rx`) still works from outside: its control
        # socket is a file.
        assert self.network is not None
        return list(self.network.exec_prefix())


def make_netns_instance(workdir: Path, settings: Settings, agents: list[AgentPhone], network: TestNetwork, *,
                        tls: bool = True) -> NamespacedAsterisk:
    """Settings for an Asterisk inside ``network`` (HTTP, WSS, SIP and RTP on its address,
    the trunk on ``network.peer_addr``); nothing started yet."""
    cert_key = self_signed(workdir / "tls", network.ns_addr) if tls else (None, None)
    asterisk = settings.asterisk.model_copy(update={
        "bind_host": network.ns_addr, "http_port": HTTP_PORT, "https_port": HTTPS_PORT, "sip_port": SIP_PORT,
        "tls_cert": cert_key[0], "tls_key": cert_key[1],
        "trunk_host": network.peer_addr, "trunk_port": free_udp_port(network.peer_addr),
        "rtp_start": 10000, "rtp_end": 10200,
        "etc_dir": workdir / "etc", "data_dir": workdir / "data",
        "desk_phones": [f"PJSIP/{a.endpoint}" for a in agents if a.desk],
        # Nothing to map: the namespace's only interface is the address the browser reaches.
        "ice_host_candidates": {},
    })
    updated = settings.model_copy(update={"asterisk": asterisk})
    return NamespacedAsterisk(workdir=workdir, settings=updated, agents=agents, network=network)
