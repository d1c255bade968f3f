"""The real agent path: the desktop's SIP.js softphone in Chromium against a real Asterisk 22.

The agent logs in, the page registers over SIP-over-WebSocket (Asterisk sees the endpoint
online, the page says registered), goes Available; a caller on the carrier trunk dials and
keys the menu; the desktop rings, the agent answers in the page, and media flows both ways
over DTLS-SRTP (the caller hears the browser's microphone, the browser receives the caller's
audio); hold from the page gives the caller the hotline's music, unhold gives them the agent
again, the agent hangs up in the page, and nothing is left up.

Asterisk runs in a network namespace of this session (``tests/fixtures/netns.py``): WebRTC
needs an ICE candidate both ends reach, and Asterisk never offers a loopback address.
"""

from __future__ import annotations

import asyncio
import math
import struct
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from core.settings import Settings
from devtools import audio
from devtools.netns import has_default_route
from devtools.netns_asterisk import NamespacedAsterisk
from devtools.sip_phone import Call, linear_to_ulaw, ulaw_to_linear
from hotline.app import Application
from pbx_config.moh import piece
from tests.fixtures.app import running
from tests.fixtures.netns import (  # noqa: F401 - fixtures used by name
    WEBRTC_AGENTS,
    carrier_phone,
    endpoint_state,
    private_network,
    webrtc_asterisk,
)
from tests.fixtures.real_asterisk import dial, real_settings, require_idle
from tests.fixtures.waiting import eventually
from tests.support.accounts import PASSWORD
from tests.support.browser import CHROMIUM_ARGS, Shots, chromium_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

AGENT = WEBRTC_AGENTS[0]
#: How long the page may take to show what the switch did.
WAIT_MS = 15_000
#: Every RTCPeerConnection the page makes, kept for getStats (the page keeps its SIP.js session
#: private). This wraps the browser's own constructor, not any of our code.
KEEP_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peerConnections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__peerConnections.push(this);
    }
  };
})();
"""
#: What the browser's peer connection says about its media: the transport (DTLS, SRTP), the
#: ICE pair in use, and the audio received and sent.
MEDIA_STATS = """
async () => {
  const pcs = window.__peerConnections || [];
  const pc = pcs[pcs.length - 1];
  if (!pc) return null;
  const report = await pc.getStats();
  const out = { connectionState: pc.connectionState, inbound: null, outbound: null, transport: null, pair: null };
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio")
      out.inbound = { packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived,
                      totalAudioEnergy: s.totalAudioEnergy ?? null };
    if (s.type === "outbound-rtp" && s.kind === "audio")
      out.outbound = { packetsSent: s.packetsSent, bytesSent: s.bytesSent };
    if (s.type === "transport")
      out.transport = { dtlsState: s.dtlsState, srtpCipher: s.srtpCipher ?? null,
                        dtlsCipher: s.dtlsCipher ?? null, pairId: s.selectedCandidatePairId ?? null };
  });
  if (out.transport && out.transport.pairId) {
    const pair = report.get(out.transport.pairId);
    const local = report.get(pair.localCandidateId), remote = report.get(pair.remoteCandidateId);
    out.pair = { state: pair.state, local: local.address, remote: remote.address, remotePort: remote.port };
  }
  return out;
}
"""


def tone_ulaw(freq: float, seconds: float) -> bytes:
    """A loud sine at 8 kHz as μ-law, for the caller to send."""
    samples = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / 8000)))
                       for i in range(int(seconds * 8000)))
    return linear_to_ulaw(samples)


def microphone_file(path: Path) -> Path:
    """What Chromium's fake microphone says (it loops the file): a steady 600 Hz tone, so that
    the caller's side can tell the agent's voice from silence by level alone."""
    rate = 48000
    frames = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 600 * i / rate))) for i in range(rate))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def heard_since(call: Call, start: int) -> np.ndarray:
    """What the caller received since byte ``start`` of their μ-law stream, as samples."""
    return audio.pcm(ulaw_to_linear(bytes(call.rtp.received[start:])))


def is_music(heard: np.ndarray) -> bool:
    pieces = [audio.pcm(piece(name)) for name in ("hotline-1", "hotline-2")]
    return any(audio.find(m, heard, seconds=0.3, threshold=0.7) is not None for m in pieces)


@pytest.fixture
async def webrtc_browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium with a fake microphone (and its permission), its own ICE candidates as plain
    addresses (mDNS names are of no use to Asterisk), and the test certificate accepted."""
    if not has_default_route():
        raise RuntimeError("this host has no IPv4 default route: Chromium then gathers no ICE candidate at all "
                           "(not even the test network's), so no WebRTC call can be made")
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone_file(tmp_path / 'microphone.wav')}",
            "--disable-features=WebRtcHideLocalIpsWithMdns", "--autoplay-policy=no-user-gesture-required",
            "--ignore-certificate-errors"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=args)
        try:
            yield browser
        finally:
            await browser.close()


def softphone_settings(instance: NamespacedAsterisk, settings: Settings, ws_url: str) -> Settings:
    """The application on the real switch with the desktop's phone in SIP mode at ``ws_url``."""
    return settings.model_copy(update={
        "desktop": settings.desktop.model_copy(update={
            "phone_mode": "sip", "sip_ws_url": ws_url, "sip_domain": instance.host}),
        # The agent answers by a click in the page: give the ring its usual time.
        "queues": settings.queues.model_copy(update={"ring_timeout_s": 30}),
    })


@pytest.fixture
def switch_settings(webrtc_asterisk: NamespacedAsterisk, redis_server, redis_prefix: str,  # type: ignore[no-untyped-def]
                    sqlite_url: str, tmp_path: Path) -> Iterator[Settings]:
    """The application's settings for the switch in the namespace; afterwards nothing may be up."""
    yield real_settings(webrtc_asterisk, redis_server.url, redis_prefix, sqlite_url, tmp_path)
    require_idle(webrtc_asterisk)


@asynccontextmanager
async def desktop_app(settings: Settings) -> AsyncIterator[Application]:
    """The application running, with the agent whose SIP account is the switch's WebRTC endpoint."""
    async with running(settings) as app:
        await app.accounts.add_user(username="wang", password=PASSWORD, role="agent", jurisdiction="330100",
                                    display_name="王芳", agent_id=AGENT.endpoint,
                                    sip_endpoint=f"PJSIP/{AGENT.endpoint}", sip_password=AGENT.secret,
                                    lines=["general"])
        yield app


async def log_in(browser: Browser, app: Application, on_websocket: Callable[[str], None] | None = None,
                 page_errors: list[str] | None = None) -> Page:
    context = await browser.new_context(locale="zh-CN")
    await context.add_init_script(KEEP_PEER_CONNECTIONS)
    page = await context.new_page()
    if page_errors is not None:
        page.on("pageerror", lambda error: page_errors.append(str(error)))
    if on_websocket is not None:
        page.on("websocket", lambda ws: on_websocket(ws.url))
    await page.goto(f"{app.web_url}/")
    await page.get_by_test_id("login-username").fill("wang")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(f"{app.web_url}/desktop/")
    return page


async def endpoint_becomes(instance: NamespacedAsterisk, state: str, timeout: float = 10.0) -> None:
    async def there() -> bool:
        return await asyncio.to_thread(endpoint_state, instance, AGENT.endpoint) == state

    await eventually(there, timeout=timeout)


async def registered(page: Page, instance: NamespacedAsterisk) -> None:
    """The page says its phone is registered, and Asterisk has the endpoint online."""
    await expect(page.get_by_test_id("phone-status")).to_have_attribute("data-status", "registered", timeout=WAIT_MS)
    await endpoint_becomes(instance, "online")


async def media_stats(page: Page) -> dict[str, Any]:
    stats = await page.evaluate(MEDIA_STATS)
    assert stats is not None, "the page made no RTCPeerConnection"
    return dict(stats)


async def test_an_agent_answers_in_the_browser_talks_over_dtls_srtp_holds_and_hangs_up_on_a_real_asterisk(
    webrtc_asterisk: NamespacedAsterisk, switch_settings: Settings, webrtc_browser: Browser, shots: Shots
) -> None:
    network = webrtc_asterisk.network
    assert network is not None
    settings = softphone_settings(webrtc_asterisk, switch_settings, webrtc_asterisk.ws_url)
    # No browser of an earlier test is registered: "online" below is this page's doing.
    await endpoint_becomes(webrtc_asterisk, "offline")
    async with desktop_app(settings) as app, carrier_phone(webrtc_asterisk) as carrier:
        page_errors: list[str] = []
        agent = await log_in(webrtc_browser, app, page_errors=page_errors)
        await registered(agent, webrtc_asterisk)
        await expect(agent.get_by_test_id("phone-line")).to_have_attribute("data-status", "registered")
        await shots.take(agent, "registered")

        await agent.get_by_test_id("queue-login").click()
        await expect(agent.get_by_test_id("state-available")).to_be_enabled(timeout=WAIT_MS)
        await agent.get_by_test_id("state-available").click()
        await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")
        await shots.take(agent, "available")

        # A caller from Hangzhou dials 12315 and keys 1 (a complaint) during the welcome.
        call = await dial(carrier, "057112315")
        await asyncio.sleep(1.0)
        call.dtmf("1")
        await expect(agent.get_by_test_id("call-state")).to_have_attribute("data-state", "ringing", timeout=20_000)
        await expect(agent.get_by_test_id("phone-status")).to_have_attribute("data-status", "ringing")
        await expect(agent.get_by_test_id("call-caller")).to_have_text("138****8000")
        await shots.take(agent, "ringing")

        await agent.get_by_test_id("call-answer").click()
        await expect(agent.get_by_test_id("call-state")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
        await expect(agent.get_by_test_id("phone-status")).to_have_attribute("data-status", "in_call")

        async def bridged() -> bool:
            return any(len(b["channels"]) == 2 for b in await asyncio.to_thread(webrtc_asterisk.bridges))

        await eventually(bridged, timeout=10)
        # Both ways: the caller speaks (a tone) while the agent's fake microphone plays its tone.
        start = len(call.rtp.received)
        call.rtp.play(tone_ulaw(1000, 2.0))
        await asyncio.sleep(2.5)
        from_agent = heard_since(call, start)
        assert audio.loud_seconds(from_agent) > 1.5, "the caller did not hear the agent's microphone"
        stats = await media_stats(agent)
        assert stats["connectionState"] == "connected", stats
        assert stats["transport"]["dtlsState"] == "connected" and stats["transport"]["srtpCipher"], stats
        assert stats["pair"]["remote"] == network.ns_addr, stats  # the namespace's only candidate
        assert stats["inbound"]["packetsReceived"] > 50 and stats["inbound"]["bytesReceived"] > 0, stats
        assert stats["inbound"]["totalAudioEnergy"] > 0.01, stats  # the caller's tone, decoded: not silence
        assert stats["outbound"]["packetsSent"] > 50, stats
        await shots.take(agent, "talking")

        # Mute stays in the browser (the microphone track is disabled): the caller hears silence.
        await agent.get_by_test_id("call-mute").click()
        await expect(agent.get_by_test_id("call-mute")).to_have_attribute("aria-pressed", "true")
        await asyncio.sleep(0.5)
        start = len(call.rtp.received)
        await asyncio.sleep(1.5)
        assert audio.loud_seconds(heard_since(call, start)) < 0.2, "a muted agent was still heard"
        await shots.take(agent, "muted")
        await agent.get_by_test_id("call-mute").click()
        await expect(agent.get_by_test_id("call-mute")).to_have_attribute("aria-pressed", "false")
        await asyncio.sleep(0.5)
        start = len(call.rtp.received)
        await asyncio.sleep(1.5)
        assert audio.loud_seconds(heard_since(call, start)) > 1.2, "the agent was not heard again after unmute"

        # Hold from the page: the caller hears the hotline's music, not silence.
        await agent.get_by_test_id("call-hold").click()
        await expect(agent.get_by_test_id("call-hold")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        start = len(call.rtp.received)
        await asyncio.sleep(4.0)
        on_hold = heard_since(call, start)
        assert audio.loud_seconds(on_hold) > 2.5, "the caller on hold heard silence"
        assert is_music(on_hold), "what the caller on hold heard is not the hotline's music"
        await shots.take(agent, "on-hold")

        # Unhold: the agent's microphone again, the music gone.
        await agent.get_by_test_id("call-hold").click()
        await expect(agent.get_by_test_id("call-hold")).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
        await asyncio.sleep(1.0)  # the music stops and the agent's audio comes back
        start = len(call.rtp.received)
        await asyncio.sleep(2.0)
        resumed = heard_since(call, start)
        assert audio.loud_seconds(resumed) > 1.5 and not is_music(resumed), \
            "after unhold the caller does not hear the agent"
        received_before = (await media_stats(agent))["inbound"]["packetsReceived"]
        call.rtp.play(tone_ulaw(800, 1.0))
        await asyncio.sleep(1.2)
        assert (await media_stats(agent))["inbound"]["packetsReceived"] > received_before + 25
        await shots.take(agent, "resumed")

        # The agent hangs up in the page: the caller's call ends, and nothing is left up.
        await agent.get_by_test_id("call-hangup").click()
        await call.wait_ended(10)
        await expect(agent.get_by_test_id("call-state")).to_have_attribute("data-state", "ended", timeout=WAIT_MS)
        await expect(agent.get_by_test_id("phone-status")).to_have_attribute("data-status", "registered",
                                                                             timeout=WAIT_MS)
        assert await asyncio.to_thread(webrtc_asterisk.wait_idle) == []
        await shots.take(agent, "hung-up")
        assert page_errors == [], page_errors


async def test_the_softphone_registers_over_wss_with_the_switchs_certificate(
    webrtc_asterisk: NamespacedAsterisk, switch_settings: Settings, webrtc_browser: Browser, shots: Shots
) -> None:
    settings = softphone_settings(webrtc_asterisk, switch_settings, webrtc_asterisk.wss_url)
    await endpoint_becomes(webrtc_asterisk, "offline")
    async with desktop_app(settings) as app:
        sockets: list[str] = []
        agent = await log_in(webrtc_browser, app, on_websocket=sockets.append)
        await registered(agent, webrtc_asterisk)
        # The phone's only connection to the switch is TLS (the page was given no other URL).
        assert [u for u in sockets if "/ws" in u and not u.startswith(app.web_url.replace("http", "ws"))] \
            == [webrtc_asterisk.wss_url], sockets
        contacts = await asyncio.to_thread(webrtc_asterisk.cli, "pjsip show contacts")
        assert f"{AGENT.endpoint}/sip:" in contacts, contacts
        await shots.take(agent, "registered-over-wss")
