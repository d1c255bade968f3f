"""SIP phones for tests and benchmarks against a real Asterisk: a caller on the carrier
trunk and agents' desk phones, over UDP with G.711 μ-law RTP and RFC 4733 DTMF.

Small on purpose: one dialog per call, no retransmission timers (loopback loses nothing),
digest authentication (MD5) for registering. What a phone hears is kept as the μ-law
payloads it received, so a test can check which prompts a caller heard, and in which order.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
import re
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PCMU = 0
DTMF_PT = 101
FRAME = 160  # 20 ms of 8 kHz μ-law
SILENCE = b"\xff" * FRAME  # μ-law zero


def _ulaw_table() -> list[int]:
    """G.711 μ-law byte -> 16-bit linear sample (ITU-T G.711, as Asterisk decodes it)."""
    table = []
    for byte in range(256):
        u = ~byte & 0xFF
        t = ((u & 0x0F) << 3) + 0x84
        t <<= (u & 0x70) >> 4
        table.append((0x84 - t) if u & 0x80 else (t - 0x84))
    return table


_ULAW = _ulaw_table()
_ULAW_BYTES = b"".join(struct.pack("<h", v) for v in _ULAW)


def ulaw_to_linear(data: bytes) -> bytes:
    return b"".join(_ULAW_BYTES[2 * b:2 * b + 2] for b in data)


def linear_to_ulaw(samples: bytes) -> bytes:
    """16-bit little-endian linear -> μ-law (G.711, with the usual bias and clip)."""
    out = bytearray()
    for (value,) in struct.iter_unpack("<h", samples):
        sign = 0x80 if value < 0 else 0
        magnitude = min(-value if value < 0 else value, 32635) + 0x84
        exponent = max(0, magnitude.bit_length() - 8)
        mantissa = (magnitude >> (exponent + 3)) & 0x0F
        out.append(~(sign | (exponent << 4) | mantissa) & 0xFF)
    return bytes(out)


# --- messages --------------------------------------------------------------------------------


@dataclass
class SipMessage:
    first: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.first.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0] if self.is_request else self.cseq[1]

    @property
    def status(self) -> int:
        return int(self.first.split(" ", 2)[1]) if not self.is_request else 0

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def cseq(self) -> tuple[int, str]:
        num, method = self.get("CSeq").split()
        return int(num), method

    @property
    def call_id(self) -> str:
        return self.get("Call-ID")

    def encode(self) -> bytes:
        lines = [self.first] + [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        headers = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append((k.strip(), v.strip()))
        return cls(lines[0], headers, body)


def _tag(value: str) -> str | None:
    m = re.search(r";\s*tag=([^;>\s]+)", value)
    return m.group(1) if m else None


def _uri(value: str) -> str:
    m = re.search(r"<([^>]+)>", value)
    return m.group(1) if m else value.split(";")[0].strip()


def sdp_offer(host: str, port: int, *, direction: str = "sendrecv", session: int = 1) -> bytes:
    return (
        f"v=0\r\no=- {session} {session} IN IP4 {host}\r\ns=test\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {PCMU} {DTMF_PT}\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:{DTMF_PT} telephone-event/8000\r\na=fmtp:{DTMF_PT} 0-16\r\na=ptime:20\r\na={direction}\r\n"
    ).encode()


def sdp_peer(body: bytes) -> tuple[str, int] | None:
    text = body.decode(errors="replace")
    host = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    port = re.search(r"^m=audio (\d+)", text, re.M)
    if not host or not port:
        return None
    return host.group(1), int(port.group(1))


# --- media ----------------------------------------------------------------------------------------


class RtpStream(asyncio.DatagramProtocol):
    """One call's RTP: sends μ-law (silence unless told otherwise) every 20 ms, keeps what arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self.received = bytearray()
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, byte offset in received)
        self.dtmf_received: list[str] = []
        self._outgoing: bytearray = bytearray()
        self._seq = random.randrange(1 << 16)
        self._ts = random.randrange(1 << 31)
        self._ssrc = random.randrange(1 << 32)
        self._task: asyncio.Task[None] | None = None
        self._dtmf: list[tuple[str, int]] = []
        self.sending = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # typeshed gives every protocol a BaseTransport; a datagram endpoint's is a DatagramTransport.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        pt = data[1] & 0x7F
        cc = data[0] & 0x0F
        payload = data[12 + 4 * cc:]
        if pt == PCMU:
            self.arrivals.append((time.monotonic(), len(self.received)))
            self.received += payload
        elif pt == DTMF_PT and payload and payload[1] & 0x80:
            digit = "0123456789*#ABCD"[payload[0]] if payload[0] < 16 else "?"
            if not self.dtmf_received or self.dtmf_received[-1] != f"{digit}@{data[4:8].hex()}":
                self.dtmf_received.append(f"{digit}@{data[4:8].hex()}")

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def start(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rtp-send")

    def play(self, ulaw: bytes) -> None:
        """Queue μ-law audio to send (after what is queued); silence fills the rest."""
        self._outgoing += ulaw

    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        self._dtmf.append((digit, duration_ms))

    def _packet(self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self._seq,
                             (self._ts if ts is None else ts) & 0xFFFFFFFF, self._ssrc)
        return header + payload

    async def _run(self) -> None:
        next_at = time.monotonic()
        while self.transport is not None and not self.transport.is_closing():
            if self._dtmf:
                await self._send_digit(*self._dtmf.pop(0))
                next_at = time.monotonic()
                continue
            if self.sending and self.peer is not None:
                chunk = bytes(self._outgoing[:FRAME]).ljust(FRAME, b"\xff")
                del self._outgoing[:FRAME]
                self.transport.sendto(self._packet(PCMU, chunk), self.peer)
            self._ts += FRAME
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _send_digit(self, digit: str, duration_ms: int) -> None:
        """RFC 4733: one event, its own timestamp, updates every 20 ms, the end sent three times."""
        assert self.transport is not None and self.peer is not None
        event = "0123456789*#ABCD".index(digit.upper())
        start_ts = self._ts
        steps = max(1, duration_ms // 20)
        for i in range(1, steps + 1):
            payload = struct.pack("!BBH", event, 10, i * FRAME)
            self.transport.sendto(self._packet(DTMF_PT, payload, marker=i == 1, ts=start_ts), self.peer)
            await asyncio.sleep(0.02)
        end = struct.pack("!BBH", event, 0x80 | 10, steps * FRAME)
        for _ in range(3):
            self.transport.sendto(self._packet(DTMF_PT, end, ts=start_ts), self.peer)
        # The next event (or audio) starts at a new timestamp, as Asterisk needs to tell digits apart.
        self._ts = start_ts + (steps + 2) * FRAME

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None:
            self.transport.close()

    def pcm(self) -> bytes:
        """What arrived, as 16-bit linear samples (8 kHz)."""
        return ulaw_to_linear(bytes(self.received))


# --- calls and phones -----------------------------------------------------------------------------------


@dataclass
class Dialog:
    call_id: str
    local_uri: str
    remote_uri: str
    local_tag: str
    remote_tag: str | None = None
    remote_target: str = ""
    cseq: int = 1
    incoming: bool = False
    invite: SipMessage | None = None


@dataclass
class Call:
    """One call of a phone: its dialog, its media and what happened to it."""

    phone: SipPhone
    dialog: Dialog
    rtp: RtpStream
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    final_status: int | None = None
    reinvites: list[SipMessage] = field(default_factory=list)
    invite_sent_at: float = 0.0
    answered_at: float | None = None
    hold: bool = False
    remote_number: str = ""

    async def wait_answered(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.answered.wait(), timeout)

    async def wait_ended(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)

    def dtmf(self, digits: str) -> None:
        for d in digits:
            self.rtp.send_dtmf(d)

    async def hang_up(self, *, q850_cause: int | None = None) -> None:
        """A BYE; ``q850_cause`` adds ``Reason: Q.850;cause=<n>`` (RFC 3326), as carriers send."""
        if self.ended.is_set():
            return
        headers = [("Reason", f"Q.850;cause={q850_cause}")] if q850_cause is not None else []
        await self.phone.request(self, "BYE", headers=headers)
        self._end()

    def _end(self) -> None:
        self.ended.set()
        self.rtp.close()

    async def set_hold(self, on: bool) -> None:
        """A re-INVITE with ``a=sendonly`` (hold) or ``a=sendrecv`` (resume), as a phone does."""
        self.hold = on
        body = sdp_offer(self.phone.host, self.rtp.port, direction="sendonly" if on else "sendrecv",
                         session=2 if on else 3)
        await self.phone.request(self, "INVITE", body)

    def heard_seconds(self) -> float:
        return len(self.rtp.received) / 8000


class SipPhone(asyncio.DatagramProtocol):
    """A UDP SIP user agent on ``host`` that calls out, or registers and answers."""

    def __init__(self, host: str, server: tuple[str, int], *, user: str = "caller",
                 password: str | None = None, answer_after_s: float | None = 0.2) -> None:
        self.host, self.server, self.user, self.password = host, server, user, password
        #: Seconds an incoming call rings before it is answered; None: never answer (ring out).
        self.answer_after_s = answer_after_s
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, Call] = {}
        self.incoming: asyncio.Queue[Call] = asyncio.Queue()
        self._responses: dict[tuple[str, int, str], asyncio.Future[SipMessage]] = {}
        self._cseq = itertools.count(1)
        self.on_incoming: Callable[[Call], None] | None = None
        self.registered = False

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.port}>"

    async def start(self, port: int = 0) -> SipPhone:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, port), family=socket.AF_INET)
        return self

    def close(self) -> None:
        for call in self.calls.values():
            call._end()
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # typeshed gives every protocol a BaseTransport; a datagram endpoint's is a DatagramTransport.
        self.transport = transport  # type: ignore[assignment]

    # --- sending ---------------------------------------------------------------------------

    def _send(self, msg: SipMessage, to: tuple[str, int] | None = None) -> None:
        assert self.transport is not None
        self.transport.sendto(msg.encode(), to or self.server)

    def _via(self) -> str:
        return f"SIP/2.0/UDP {self.host}:{self.port};rport;branch=z9hG4bK{uuid.uuid4().hex[:16]}"

    async def _transact(self, msg: SipMessage, timeout: float = 10.0) -> SipMessage:
        """Send a request; the final response (provisional ones are passed over)."""
        num, method = msg.cseq
        fut: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._responses[(msg.call_id, num, method)] = fut
        self._send(msg)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._responses.pop((msg.call_id, num, method), None)

    def _auth_header(self, challenge: str, method: str, uri: str) -> str:
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
        ha1 = hashlib.md5(f"{self.user}:{realm}:{self.password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
        parts = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
                 'algorithm=MD5']
        if "qop" in fields:
            cnonce, nc = uuid.uuid4().hex[:8], "00000001"
            response = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
            parts += [f'response="{response}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            parts.append(f'response="{hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()}"')
        if "opaque" in fields:
            parts.append(f'opaque="{fields["opaque"]}"')
        return "Digest " + ", ".join(parts)

    async def register(self, expires: int = 300) -> int:
        """REGISTER (answering the digest challenge); the final status."""
        uri = f"sip:{self.server[0]}:{self.server[1]}"
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        auth: str | None = None
        for _ in range(2):
            headers = [("Via", self._via()), ("Max-Forwards", "70"),
                       ("From", f"<sip:{self.user}@{self.server[0]}>;tag={tag}"),
                       ("To", f"<sip:{self.user}@{self.server[0]}>"), ("Call-ID", call_id),
                       ("CSeq", f"{next(self._cseq)} REGISTER"), ("Contact", self.contact),
                       ("Expires", str(expires)), ("User-Agent", "hotline-test-phone")]
            if auth:
                headers.append(("Authorization", auth))
            resp = await self._transact(SipMessage(f"REGISTER {uri} SIP/2.0", headers))
            if resp.status == 401 and auth is None:
                challenges = resp.all("WWW-Authenticate")
                md5 = [c for c in challenges if "MD5" in c.upper() or "algorithm" not in c.lower()]
                auth = self._auth_header((md5 or challenges)[0], "REGISTER", uri)
                continue
            self.registered = resp.status == 200 and expires > 0
            return resp.status
        return 401

    async def unregister(self) -> int:
        return await self.register(expires=0)

    async def call(self, number: str, *, caller: str | None = None) -> Call:
        """INVITE ``number`` at the server; returns at once (see ``Call.wait_answered``)."""
        rtp = await self._rtp()
        dialog = Dialog(call_id=uuid.uuid4().hex, local_uri=f"sip:{caller or self.user}@{self.host}",
                        remote_uri=f"sip:{number}@{self.server[0]}:{self.server[1]}", local_tag=uuid.uuid4().hex[:8])
        dialog.remote_target = dialog.remote_uri
        call = Call(self, dialog, rtp, remote_number=number)
        self.calls[dialog.call_id] = call
        call.invite_sent_at = time.monotonic()
        asyncio.get_running_loop().create_task(self._invite(call), name=f"invite-{number}")
        return call

    async def _invite(self, call: Call) -> None:
        d = call.dialog
        num = d.cseq
        msg = SipMessage(f"INVITE {d.remote_uri} SIP/2.0", [
            ("Via", self._via()), ("Max-Forwards", "70"), ("From", f"<{d.local_uri}>;tag={d.local_tag}"),
            ("To", f"<{d.remote_uri}>"), ("Call-ID", d.call_id), ("CSeq", f"{num} INVITE"),
            ("Contact", f"<{d.local_uri}:{self.port}>"),
            ("Content-Type", "application/sdp"), ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"),
            ("User-Agent", "hotline-test-phone"),
        ], sdp_offer(self.host, call.rtp.port))
        try:
            resp = await self._transact(msg, timeout=60)
        except TimeoutError:
            call.final_status = 408
            call._end()
            return
        call.final_status = resp.status
        d.remote_tag = _tag(resp.get("To"))
        if 200 <= resp.status < 300:
            d.remote_target = _uri(resp.get("Contact")) or d.remote_uri
            self._ack(call, num)
            peer = sdp_peer(resp.body)
            if peer:
                call.rtp.start(peer)
            call.answered_at = time.monotonic()
            call.answered.set()
        else:
            self._ack(call, num, branch_of=msg)
            call._end()

    def _ack(self, call: Call, num: int, branch_of: SipMessage | None = None) -> None:
        d = call.dialog
        via = branch_of.get("Via") if branch_of is not None else self._via()
        target = d.remote_uri if branch_of is not None else d.remote_target
        self._send(SipMessage(f"ACK {target} SIP/2.0", [
            ("Via", via), ("Max-Forwards", "70"), ("From", f"<{d.local_uri}>;tag={d.local_tag}"),
            ("To", f"<{d.remote_uri}>" + (f";tag={d.remote_tag}" if d.remote_tag else "")),
            ("Call-ID", d.call_id), ("CSeq", f"{num} ACK"),
        ]))

    async def request(self, call: Call, method: str, body: bytes = b"", *,
                      headers: list[tuple[str, str]] | None = None) -> SipMessage:
        """An in-dialog request (BYE, re-INVITE), with any extra ``headers``; its final response."""
        d = call.dialog
        d.cseq += 1
        dialog_headers = [("Via", self._via()), ("Max-Forwards", "70"), ("From", f"<{d.local_uri}>;tag={d.local_tag}"),
                   ("To", f"<{d.remote_uri}>" + (f";tag={d.remote_tag}" if d.remote_tag else "")),
                   ("Call-ID", d.call_id), ("CSeq", f"{d.cseq} {method}"),
                   ("Contact", f"<sip:{self.user}@{self.host}:{self.port}>")]
        dialog_headers += headers or []
        if body:
            dialog_headers.append(("Content-Type", "application/sdp"))
        resp = await self._transact(SipMessage(f"{method} {d.remote_target} SIP/2.0", dialog_headers, body))
        if method == "INVITE" and 200 <= resp.status < 300:
            self._ack(call, d.cseq)
        return resp

    async def _rtp(self) -> RtpStream:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(RtpStream, local_addr=(self.host, 0), family=socket.AF_INET)
        return proto

    # --- receiving ------------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            msg = SipMessage.parse(data)
        except (ValueError, IndexError):
            return
        if msg.is_request:
            asyncio.get_running_loop().create_task(self._on_request(msg, addr))
            return
        num, method = msg.cseq
        if msg.status < 200:
            return
        fut = self._responses.get((msg.call_id, num, method))
        if fut is not None and not fut.done():
            fut.set_result(msg)
        elif method == "INVITE" and 200 <= msg.status < 300 and msg.call_id in self.calls:
            self._ack(self.calls[msg.call_id], num)  # a retransmitted 200 OK

    def _reply(self, req: SipMessage, status: int, reason: str, addr: tuple[str, int], *,
               to_tag: str | None = None, body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> None:
        to = req.get("To")
        if to_tag and not _tag(to):
            to += f";tag={to_tag}"
        headers = [(k, v) for k, v in req.headers if k.lower() in ("via", "from", "call-id", "cseq")]
        headers.insert(2, ("To", to))
        headers += extra or []
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self._send(SipMessage(f"SIP/2.0 {status} {reason}", headers, body), addr)

    async def _on_request(self, req: SipMessage, addr: tuple[str, int]) -> None:
        method = req.method
        call = self.calls.get(req.call_id)
        if method == "INVITE" and call is None:
            await self._on_invite(req, addr)
        elif method == "INVITE" and call is not None:  # re-INVITE: keep our media as it is
            call.reinvites.append(req)
            peer = sdp_peer(req.body)
            if peer:
                call.rtp.peer = peer
            self._reply(req, 200, "OK", addr, to_tag=call.dialog.local_tag,
                        body=sdp_offer(self.host, call.rtp.port, direction="sendonly" if call.hold else "sendrecv"),
                        extra=[("Contact", f"<sip:{self.user}@{self.host}:{self.port}>")])
        elif method == "ACK":
            return
        elif method == "BYE":
            self._reply(req, 200, "OK", addr)
            if call is not None:
                call._end()
        elif method == "CANCEL":
            self._reply(req, 200, "OK", addr)
            if call is not None and call.dialog.invite is not None and not call.answered.is_set():
                self._reply(call.dialog.invite, 487, "Request Terminated", addr, to_tag=call.dialog.local_tag)
                call._end()
        else:  # OPTIONS (qualify), UPDATE, INFO, NOTIFY: fine
            self._reply(req, 200, "OK", addr, extra=[("Contact", self.contact)])

    async def _on_invite(self, req: SipMessage, addr: tuple[str, int]) -> None:
        rtp = await self._rtp()
        d = Dialog(call_id=req.call_id, local_uri=_uri(req.get("To")), remote_uri=_uri(req.get("From")),
                   local_tag=uuid.uuid4().hex[:8], remote_tag=_tag(req.get("From")),
                   remote_target=_uri(req.get("Contact")), incoming=True, invite=req)
        number = re.match(r"sip:([^@]+)@", d.remote_uri)
        call = Call(self, d, rtp, remote_number=number.group(1) if number else "")
        self.calls[req.call_id] = call
        self._reply(req, 100, "Trying", addr)
        self._reply(req, 180, "Ringing", addr, to_tag=d.local_tag)
        self.incoming.put_nowait(call)
        if self.on_incoming is not None:
            self.on_incoming(call)
        if self.answer_after_s is None:
            return
        await asyncio.sleep(self.answer_after_s)
        if call.ended.is_set():
            return
        peer = sdp_peer(req.body)
        self._reply(req, 200, "OK", addr, to_tag=d.local_tag, body=sdp_offer(self.host, rtp.port),
                    extra=[("Contact", f"<sip:{self.user}@{self.host}:{self.port}>")])
        if peer:
            rtp.start(peer)
        call.answered_at = time.monotonic()
        call.answered.set()
