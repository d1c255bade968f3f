"""A private test network: a Linux network namespace joined to this one by a veth pair.

Why: a browser's WebRTC media needs an ICE candidate that both ends can reach. Asterisk never
offers a loopback address (res_rtp_asterisk skips 127.0.0.0/8 before ``[ice_host_candidates]``
is even consulted), and Chromium does not gather loopback candidates, so on one host the only
shared address would be the machine's own interface address, where test traffic must not go.
Mapping a host address to 127.0.0.1 in ``[ice_host_candidates]`` does not get around it: the
map is keyed by an interface address (on one host, the machine's own), and the browser's side
still has no loopback candidate: Chromium 156 gathered none even with
``--allow-loopback-in-peer-connection`` (tried in a namespace of its own, where it also gathered
no candidate at all until that namespace had a default route).

In a namespace of our own, Asterisk's only interface is the veth end ``ns_addr``, which is the
candidate it offers; the test process, Chromium and the SIP callers stay in the root namespace
(whose default route Chromium needs to gather candidates at all) and reach it over the veth pair.

The namespace has no default route: from inside, only the addresses of the pair's subnet exist,
so nothing started there can send traffic anywhere else (not even to the host's other
addresses). IPv6 is off on the pair (no link-local addresses), so there is no second path.

The root end carries two addresses: ``host_addr`` (the kernel's source for connections to the
namespace: the browser's WebSocket) and ``peer_addr``, a second one for a party that must be
told apart by its address (the carrier trunk, which Asterisk identifies by source IP).

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and ``ip`` from iproute2
(``scripts/install_asterisk.sh`` installs it).
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass

#: Test networks are carved out of this range, one /29 each.
POOL = ipaddress.IPv4Network("10.203.0.0/16")
PREFIX = 29
#: ``hotline-<pid of the test run>-<random>``: a run's own name; a dead run's namespaces are
#: recognised by their pid and removed by the next run.
_NAME = re.compile(r"^hotline-(\d+)-[0-9a-f]+$")


class NetworkError(RuntimeError):
    """The private network could not be set up (not root, no iproute2, ...)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip")
    if ip is None:
        raise NetworkError("`ip` (iproute2) is missing: run scripts/install_asterisk.sh (apt install iproute2)")
    result = subprocess.run([ip, *args], capture_output=True, text=True, timeout=15, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _used_ipv4() -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet on this host's interfaces (the root namespace), to avoid overlapping."""
    out = _ip("-4", "-o", "addr", "show").stdout
    return [ipaddress.IPv4Interface(m).network for m in re.findall(r"\binet (\S+)", out)]


def has_default_route() -> bool:
    """Whether this (the root) namespace has an IPv4 default route: without one Chromium gathers
    no ICE candidates at all, not even the veth pair's address."""
    return bool(_ip("-4", "route", "show", "default", check=False).stdout.strip())


def remove_stale() -> list[str]:
    """Remove namespaces left by test runs that died (SIGKILL, a crash): their processes
    (an Asterisk started in them) are stopped first. Returns the names removed."""
    removed = []
    for name in _namespaces():
        m = _NAME.match(name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        for pid in _ip("netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _ip("netns", "del", name, check=False)
        removed.append(name)
    return removed


@dataclass
class TestNetwork:
    """One namespace and its veth pair; ``create()`` and ``destroy()`` it."""

    __test__ = False  # not a pytest test class, despite its name

    name: str
    host_if: str
    ns_if: str
    subnet: ipaddress.IPv4Network

    @property
    def host_addr(self) -> str:
        """The root namespace's end (the browser and the application come from here)."""
        return str(self.subnet.network_address + 1)

    @property
    def ns_addr(self) -> str:
        """The namespace's end: where what runs inside is reached."""
        return str(self.subnet.network_address + 2)

    @property
    def peer_addr(self) -> str:
        """A second root-side address, for a party told apart by its source address."""
        return str(self.subnet.network_address + 3)

    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it inside the namespace."""
        ip = shutil.which("ip") or "ip"
        return [ip, "netns", "exec", self.name]

    @classmethod
    def new(cls) -> TestNetwork:
        """A name and a free subnet of this run's own (nothing created yet)."""
        token = secrets.token_hex(3)
        used = _used_ipv4()
        blocks = 2 ** (PREFIX - POOL.prefixlen)
        for _ in range(64):
            index = random.randrange(blocks)
            subnet = ipaddress.IPv4Network(f"{POOL.network_address + index * 2 ** (32 - PREFIX)}/{PREFIX}")
            if not any(subnet.overlaps(u) for u in used):
                return cls(f"hotline-{os.getpid()}-{token}", f"hv{token}h", f"hv{token}n", subnet)
        raise NetworkError(f"no free /{PREFIX} left in {POOL}")

    def create(self) -> TestNetwork:
        if os.geteuid() != 0:
            raise NetworkError("a private test network needs root (network namespaces, veth pairs)")
        remove_stale()
        _ip("netns", "add", self.name)
        try:
            # The peer end is created directly inside the namespace.
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.name)
            # No IPv6 link-local addresses: one path only, and no candidates there.
            _ip("link", "set", "dev", self.host_if, "addrgenmode", "none")
            _ip("-n", self.name, "link", "set", "dev", self.ns_if, "addrgenmode", "none")
            plen = str(self.subnet.prefixlen)
            _ip("addr", "add", f"{self.host_addr}/{plen}", "dev", self.host_if)
            _ip("addr", "add", f"{self.peer_addr}/{plen}", "dev", self.host_if)  # secondary: never a default source
            _ip("-n", self.name, "addr", "add", f"{self.ns_addr}/{plen}", "dev", self.ns_if)
            _ip("link", "set", "dev", self.host_if, "up")
            _ip("-n", self.name, "link", "set", "dev", self.ns_if, "up")
            _ip("-n", self.name, "link", "set", "dev", "lo", "up")
            # Deliberately no default route in the namespace.
        except BaseException:
            self.destroy()
            raise
        return self

    def destroy(self) -> None:
        """Stop whatever still runs inside, remove the namespace (its veth end, and so the pair)."""
        for pid in _ip("netns", "pids", self.name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _ip("netns", "del", self.name, check=False)
        _ip("link", "del", self.host_if, check=False)  # gone with its peer already, unless half made

    def exists(self) -> bool:
        return self.name in _namespaces()
