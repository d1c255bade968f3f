"""The stand-in does what a real Asterisk 22 was seen doing (../shared/asterisk-ari/FIELD-NOTES.md).

These tests talk raw HTTP and WebSocket, not through our client, so that they pin down
the stand-in itself; the ``pbx_sim`` fixture also checks every message against
Asterisk's declarations.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devtools.pbx_sim.server import PbxSim

AUTH = {"Authorization": "Basic " + base64.b64encode(b"hotline:hotline").decode()}


class RawAri:
    """An ARI client with no smarts: the requests and the event stream as they are."""

    def __init__(self, sim: PbxSim, http: aiohttp.ClientSession) -> None:
        self.sim, self.http = sim, http
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, app: str = "hotline") -> None:
        self.ws = await self.http.ws_connect(f"{self.sim.url}/ari/events?app={app}", headers=AUTH)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            self.events.append(json.loads(msg.data))
            self._changed.set()

    async def call(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
                   **params: Any) -> tuple[int, Any]:
        """One request; ``query`` for parameters given more than once, in that order."""
        async with self.http.request(method, f"{self.sim.url}/ari{path}", params=query or params,
                                     headers=AUTH) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text and resp.content_type == "application/json" else None)

    async def event(self, kind: str, timeout: float = 3.0, **match: Any) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for e in self.events:
                    if e["type"] == kind and all(_get(e, k) == v for k, v in match.items()):
                        return e
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)

    def types_for(self, channel_id: str) -> list[str]:
        return [e["type"] for e in self.events if e.get("channel", {}).get("id") == channel_id]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


def _get(event: dict[str, Any], dotted: str) -> Any:
    value: Any = event
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@pytest.fixture
async def ari(pbx_sim: PbxSim) -> AsyncIterator[RawAri]:
    async with aiohttp.ClientSession() as http:
        client = RawAri(pbx_sim, http)
        await client.connect()
        yield client
        await client.close()


async def test_a_call_enters_stasis_with_its_args_dialplan_location_and_caller_id(pbx_sim: PbxSim, ari: RawAri) -> None:
    call = await pbx_sim.place_call("12365", caller_id="13800138000")
    start = await ari.event("StasisStart")
    assert start["args"] == ["12365", "quality", ""]
    channel = start["channel"]
    # Our dialplan answers before Stasis() (set-up latency, issue 15).
    assert channel["id"] == call.channel_id and channel["state"] == "Up"
    assert channel["caller"]["number"] == "13800138000"
    assert channel["dialplan"]["app_name"] == "Stasis"
    assert channel["dialplan"]["app_data"] == "hotline,12365,quality,"
    assert channel["dialplan"]["exten"] == "12365"


RTP_STATS = ["ChannelVarset"] * 5  # RTPAUDIOQOS*: a SIP channel that had media, as it hangs up


@pytest.mark.parametrize("who", ["caller", "application"])
async def test_a_hang_up_gives_hangup_request_then_stasis_end_and_nothing_more_to_the_stasis_application(
    pbx_sim: PbxSim, ari: RawAri, who: str
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138000")
    await ari.event("StasisStart")
    assert (await ari.call("POST", f"/channels/{call.channel_id}/answer"))[0] == 204
    if who == "caller":
        await call.hangup()
    else:
        assert (await ari.call("DELETE", f"/channels/{call.channel_id}"))[0] == 204
    await ari.event("StasisEnd")
    await call.wait_ended()
    await asyncio.sleep(0.05)
    # Subscribed to the channel only by having it in Stasis, the application hears nothing
    # after StasisEnd: no ChannelDestroyed (docs/asterisk-behaviour.md).
    assert ari.types_for(call.channel_id) == [
        "StasisStart", *RTP_STATS, "ChannelHangupRequest", "StasisEnd"]
    assert (await ari.call("POST", f"/channels/{call.channel_id}/answer"))[0] == 404


@pytest.mark.parametrize(("who", "first", "destroyed"), [
    ("caller", {}, (0, "Unknown")),  # a BYE without a Reason header: no cause at all
    ("application", {"cause": 32, "soft": True}, (16, "Normal Clearing")),  # 32: the EXPLICIT flag
])
async def test_an_application_following_the_channel_hears_the_dialplan_end_and_the_destruction(
    pbx_sim: PbxSim, ari: RawAri, who: str, first: dict[str, Any], destroyed: tuple[int, str]
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138000")
    await ari.event("StasisStart")
    status, app = await ari.call("POST", "/applications/hotline/subscription", eventSource=f"channel:{call.channel_id}")
    assert status == 200 and app["channel_ids"] == [call.channel_id]
    if who == "caller":
        await call.hangup()
    else:
        await ari.call("DELETE", f"/channels/{call.channel_id}")
    gone = await ari.event("ChannelDestroyed")
    assert (gone["cause"], gone["cause_txt"]) == destroyed
    requests = [{k: v for k, v in e.items() if k in ("cause", "soft")}
                for e in ari.events if e["type"] == "ChannelHangupRequest"]
    # The second is the dialplan ending after Stasis() (16: AST_SOFTHANGUP_APPUNLOAD).
    assert requests == [first, {"cause": 16, "soft": True}]
    assert ari.types_for(call.channel_id) == [
        "StasisStart", *RTP_STATS, "ChannelHangupRequest", "StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"]


async def test_a_callers_bye_gives_one_hangup_request_with_the_cause_of_its_reason_header(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    plain = await pbx_sim.place_call("12315", caller_id="13800138000")
    await ari.event("StasisStart", channel__id=plain.channel_id)
    await plain.hangup()
    busy = await pbx_sim.place_call("12315", caller_id="13800138001")
    await ari.event("StasisStart", channel__id=busy.channel_id)
    await busy.hangup(17)  # Reason: Q.850;cause=17
    await ari.event("StasisEnd", channel__id=busy.channel_id)
    first, second = [e for e in ari.events if e["type"] == "ChannelHangupRequest"]
    assert "cause" not in first and "soft" not in first
    assert (second["cause"], second["tech_cause"], "soft" in second) == (17, 486, False)


async def test_a_playback_answers_201_then_starts_and_finishes_done(pbx_sim: PbxSim, ari: RawAri) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13800138000")
    await ari.event("StasisStart")
    status, playback = await ari.call("POST", f"/channels/{call.channel_id}/play", media="sound:hello-world")
    assert status == 201 and playback["state"] == "queued"
    assert playback["target_uri"] == f"channel:{call.channel_id}"
    await ari.event("PlaybackStarted", playback__id=playback["id"])
    finished = await ari.event("PlaybackFinished", playback__id=playback["id"])
    assert finished["playback"]["state"] == "done"
    assert call.played == ["sound:hello-world"]


async def test_a_missing_sound_file_fails_the_playback(ari_contract, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.fixtures.ari_contract import TrafficChecker

    sounds = tmp_path / "sounds" / "en"
    sounds.mkdir(parents=True)
    write_tone(sounds / "hello-world.wav", seconds=0.1, rate=8000)
    checker = TrafficChecker(ari_contract)
    sim = PbxSim(sounds_dir=tmp_path / "sounds", recordings_dir=tmp_path / "rec", on_traffic=checker)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            client = RawAri(sim, http)
            await client.connect()
            call = await sim.place_call("12315")
            await client.event("StasisStart")
            _, ok = await client.call("POST", f"/channels/{call.channel_id}/play", media="sound:hello-world")
            _, bad = await client.call("POST", f"/channels/{call.channel_id}/play", media="sound:no-such-file")
            assert (await client.event("PlaybackFinished", playback__id=ok["id"]))["playback"]["state"] == "done"
            assert (await client.event("PlaybackFinished", playback__id=bad["id"]))["playback"]["state"] == "failed"
            await client.close()
    finally:
        await sim.stop()
    checker.assert_clean()


async def test_playbacks_on_one_channel_play_one_after_another(pbx_sim: PbxSim, ari: RawAri) -> None:
    call = await pbx_sim.place_call("12315")
    await ari.event("StasisStart")
    _, first = await ari.call("POST", f"/channels/{call.channel_id}/play", media="sound:one")
    _, second = await ari.call("POST", f"/channels/{call.channel_id}/play", media="sound:two")
    await ari.event("PlaybackFinished", playback__id=second["id"])
    order = [(e["type"], e["playback"]["id"]) for e in ari.events if e["type"].startswith("Playback")]
    assert order == [("PlaybackStarted", first["id"]), ("PlaybackFinished", first["id"]),
                     ("PlaybackStarted", second["id"]), ("PlaybackFinished", second["id"])]


async def test_several_media_in_one_play_are_one_comma_separated_value_played_under_one_playback_id(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    call = await pbx_sim.place_call("12315")
    await ari.event("StasisStart")
    status, playback = await ari.call("POST", f"/channels/{call.channel_id}/play", media="sound:a,sound:b")
    assert status == 201 and playback["media_uri"] == "sound:a" and playback["next_media_uri"] == "sound:b"
    await ari.event("PlaybackFinished", playback__id=playback["id"])
    seen = [(e["type"], e["playback"]["id"], e["playback"]["media_uri"], e["playback"].get("next_media_uri"),
             e["playback"]["state"]) for e in ari.events if e["type"].startswith("Playback")]
    pb = playback["id"]
    assert seen == [
        ("PlaybackStarted", pb, "sound:a", "sound:b", "playing"),
        ("PlaybackContinuing", pb, "sound:a", "sound:b", "continuing"),
        ("PlaybackStarted", pb, "sound:b", None, "playing"),
        ("PlaybackFinished", pb, "sound:b", None, "done"),
    ]
    assert call.played == ["sound:a", "sound:b"]


async def test_a_query_parameter_given_twice_keeps_only_its_last_value(ari_contract, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.fixtures.ari_contract import TrafficChecker

    checker = TrafficChecker(ari_contract)
    sim = PbxSim(recordings_dir=tmp_path / "rec", default_playback_s=0.02, on_traffic=checker)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            client = RawAri(sim, http)
            await client.connect()
            call = await sim.place_call("12315")
            await client.event("StasisStart")
            status, playback = await client.call("POST", f"/channels/{call.channel_id}/play", query=[
                ("media", "sound:a"), ("media", "sound:b"), ("playbackId", "first"), ("playbackId", "second")])
            assert status == 201 and playback["id"] == "second" and playback["media_uri"] == "sound:b"
            assert "next_media_uri" not in playback
            await client.event("PlaybackFinished", playback__id="second")
            assert call.played == ["sound:b"]  # as on Asterisk: sound:a is never heard
            await client.close()
    finally:
        await sim.stop()
    # The contract checker says why a client must never do that.
    assert [v for v in checker.violations if "repeated" in v] == [
        "POST /channels/{channelId}/play: query parameter 'media' is repeated: Asterisk keeps only the last value; "
        "give the list as one comma-separated value",
        "POST /channels/{channelId}/play: query parameter 'playbackId' is repeated but takes one value",
    ]


async def test_external_media_joins_a_bridge_only_after_its_own_stasis_start_and_sends_slin16_rtp(
    pbx_sim: PbxSim, ari: RawAri, tmp_path: Path
) -> None:
    received: list[bytes] = []
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Collect(received), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        call = await pbx_sim.place_call("12315")
        await ari.event("StasisStart")
        _, bridge = await ari.call("POST", "/bridges", type="mixing")
        assert (await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=call.channel_id))[0] == 204
        status, media = await ari.call("POST", "/channels/externalMedia", app="hotline",
                                       external_host=f"127.0.0.1:{port}", format="slin16")
        assert status == 200 and media["name"].startswith("UnicastRTP/")
        status, body = await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=media["id"])
        assert (status, body["message"]) == (422, "Channel not in Stasis application")
        await ari.event("StasisStart", channel__id=media["id"])
        assert (await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=media["id"]))[0] == 204

        wav = tmp_path / "voice.wav"
        write_tone(wav, seconds=0.2, rate=16000)
        call.say(wav)
        await call.wait_for(lambda: len(received) >= 15 and not call.speaking, timeout=3, what="RTP")
    finally:
        transport.close()
    packets = [parse_rtp(p) for p in received]
    assert {p["pt"] for p in packets} == {118}
    assert {len(p["payload"]) for p in packets} == {640}
    seqs = [p["seq"] for p in packets]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    voiced = [p for p in packets if any(p["payload"])]
    assert voiced, "the caller's voice never reached the external media host"
    # Network byte order: the tone's first samples decode as big-endian, not little-endian.
    samples = struct.unpack(">320h", voiced[0]["payload"])
    assert max(abs(s) for s in samples) > 1000


async def test_stasis_fails_at_once_when_the_application_is_not_connected(pbx_sim: PbxSim) -> None:
    call = await pbx_sim.place_call("12331")
    await call.wait_for(lambda: call.stasis_status, timeout=2, what="Stasis() to return")
    assert call.stasis_status == "FAILED"
    await call.wait_for_playback("sound:hotline/fallback-unavailable")


async def test_a_second_connection_for_the_same_application_replaces_the_first(pbx_sim: PbxSim, ari: RawAri) -> None:
    async with aiohttp.ClientSession() as http:
        second = RawAri(pbx_sim, http)
        await second.connect()
        await ari.event("ApplicationReplaced")
        call = await pbx_sim.place_call("12315")
        await second.event("StasisStart", channel__id=call.channel_id)
        assert not any(e["type"] == "StasisStart" for e in ari.events)
        await second.close()


async def test_the_events_socket_refuses_wrong_credentials(pbx_sim: PbxSim) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            wrong = {"Authorization": "Basic " + base64.b64encode(b"hotline:x").decode()}
            await http.ws_connect(f"{pbx_sim.url}/ari/events?app=hotline", headers=wrong)
        assert info.value.status == 401


async def test_channels_stay_in_stasis_when_the_application_goes_away(pbx_sim: PbxSim, ari: RawAri) -> None:
    call = await pbx_sim.place_call("12315")
    await ari.event("StasisStart")
    await ari.close()
    await call.wait_for(lambda: not pbx_sim.app_connected("hotline"), timeout=2, what="the app to be gone")
    await asyncio.sleep(0.1)
    assert not call.ended and pbx_sim.channel(call.channel_id).stasis_app == "hotline"


async def test_music_on_hold_of_a_class_asterisk_does_not_have_answers_204_and_plays_nothing(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    call = await pbx_sim.place_call("12315")
    await ari.event("StasisStart")
    # No mohClass is class "default", which our musiconhold.conf (a source build) does not have.
    assert (await ari.call("POST", f"/channels/{call.channel_id}/moh"))[0] == 204
    assert call.on_hold_in_silence and not call.on_hold_music
    assert (await ari.call("POST", f"/channels/{call.channel_id}/moh", mohClass="jazz"))[0] == 204
    assert call.on_hold_in_silence
    assert not [m for m in call.played if m.startswith("moh:")]

    assert (await ari.call("POST", f"/channels/{call.channel_id}/moh", mohClass="hotline"))[0] == 204
    assert call.on_hold_music and not call.on_hold_in_silence
    assert call.played == ["moh:hotline"]
    assert (await ari.call("DELETE", f"/channels/{call.channel_id}/moh"))[0] == 204
    assert not call.on_hold_music and not call.on_hold_in_silence


async def test_music_on_hold_on_a_bridge_is_heard_by_its_members_only_in_a_class_that_exists(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    call = await pbx_sim.place_call("12315")
    await ari.event("StasisStart")
    _, bridge = await ari.call("POST", "/bridges", type="mixing")
    await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=call.channel_id)
    assert (await ari.call("POST", f"/bridges/{bridge['id']}/moh"))[0] == 204
    assert call.on_hold_in_silence
    assert (await ari.call("POST", f"/bridges/{bridge['id']}/moh", mohClass="hotline"))[0] == 204
    assert call.on_hold_music and call.played == ["moh:hotline"]
    assert (await ari.call("DELETE", f"/bridges/{bridge['id']}/moh"))[0] == 204
    assert not call.on_hold_music


async def test_an_unknown_music_class_falls_back_to_default_where_there_is_one(tmp_path: Path) -> None:
    from devtools.pbx_sim.server import DEFAULT_DIALPLAN

    (tmp_path / "extensions.conf").write_text(DEFAULT_DIALPLAN.read_text())
    (tmp_path / "musiconhold.conf").write_text("[general]\n[default]\nmode=files\ndirectory=moh\n")
    sim = PbxSim(dialplan_path=tmp_path / "extensions.conf", recordings_dir=tmp_path / "rec")
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            client = RawAri(sim, http)
            await client.connect()
            call = await sim.place_call("12315")
            await client.event("StasisStart")
            assert (await client.call("POST", f"/channels/{call.channel_id}/moh", mohClass="jazz"))[0] == 204
            assert call.on_hold_music and call.played == ["moh:default"]
            await client.close()
    finally:
        await sim.stop()


async def test_originating_to_a_phone_with_no_registered_contact_answers_500_allocation_failed(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    pbx_sim.set_registered("PJSIP/1001", False)
    status, body = await ari.call("POST", "/channels", endpoint="PJSIP/1001", app="hotline")
    assert (status, body) == (500, {"error": "Allocation failed"})
    assert (await ari.call("GET", "/channels"))[1] == []  # no channel was made, no event sent
    assert not [e for e in ari.events if e["type"] != "EndpointStateChange"]

    pbx_sim.set_registered("PJSIP/1001", True)
    status, channel = await ari.call("POST", "/channels", endpoint="PJSIP/1001", app="hotline")
    assert status == 200 and channel["name"].startswith("PJSIP/1001-")


@pytest.mark.parametrize(("mode", "status"), [("answer", "ANSWER"), ("busy", "BUSY")])
async def test_originating_a_phone_announces_the_dial_placed_then_how_it_ended(
    pbx_sim: PbxSim, ari: RawAri, mode: str, status: str
) -> None:
    pbx_sim.endpoint("PJSIP/1001", mode=mode)
    _, channel = await ari.call("POST", "/channels", endpoint="PJSIP/1001", app="hotline", timeout="1")
    await ari.event("Dial", dialstatus=status, timeout=3)
    dials = [e for e in ari.events if e["type"] == "Dial"]
    assert [(e["dialstatus"], e["dialstring"], e["forward"], e["peer"]["id"]) for e in dials] == [
        ("", "1001", "", channel["id"]), ("RINGING", "1001", "", channel["id"]), (status, "1001", "", channel["id"])]
    assert "caller" not in dials[0]  # originated over ARI: no calling channel
    order = [e["type"] for e in ari.events if e.get("peer", e.get("channel", {})).get("id") == channel["id"]]
    if mode == "answer":
        assert order[:6] == ["Dial", "ChannelStateChange", "Dial", "ChannelStateChange", "Dial", "StasisStart"]
    else:
        await ari.event("ChannelDestroyed")
        assert order[:4] == ["Dial", "ChannelStateChange", "Dial", "Dial"]


async def test_endpoints_are_online_while_registered_and_offline_without_a_contact(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    pbx_sim.endpoint("PJSIP/1002", mode="manual")
    status, endpoints = await ari.call("GET", "/endpoints")
    assert status == 200
    # pjsip.conf's endpoints and the scripted phones are there, registered to begin with.
    states = {f"{e['technology']}/{e['resource']}": e["state"] for e in endpoints}
    assert states["PJSIP/carrier"] == states["PJSIP/1002"] == "online"

    pbx_sim.set_registered("PJSIP/1002", False)
    status, endpoint = await ari.call("GET", "/endpoints/PJSIP/1002")
    assert status == 200
    assert endpoint == {"technology": "PJSIP", "resource": "1002", "state": "offline", "channel_ids": []}
    assert (await ari.call("GET", "/endpoints/PJSIP"))[0] == 200
    assert (await ari.call("GET", "/endpoints/SIP/1002"))[0] == 404

    status, channel = await ari.call("POST", "/channels", endpoint="PJSIP/1001", app="hotline")
    assert (await ari.call("GET", "/endpoints/PJSIP/1001"))[1]["channel_ids"] == [channel["id"]]


async def test_an_application_subscribed_to_an_endpoint_hears_when_it_goes_offline_and_online(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    status, app = await ari.call("POST", "/applications/hotline/subscription", eventSource="endpoint:PJSIP/1001")
    assert status == 200 and app["endpoint_ids"] == ["PJSIP/1001"]

    pbx_sim.set_registered("PJSIP/1002", False)  # not subscribed to: no event
    pbx_sim.set_registered("PJSIP/1001", False)
    change = await ari.event("EndpointStateChange")
    assert change["endpoint"] == {"technology": "PJSIP", "resource": "1001", "state": "offline", "channel_ids": []}
    pbx_sim.set_registered("PJSIP/1001", False)  # no change, no event
    pbx_sim.set_registered("PJSIP/1001", True)
    await ari.event("EndpointStateChange", endpoint__state="online")
    assert [e["endpoint"]["resource"] for e in ari.events if e["type"] == "EndpointStateChange"] == ["1001", "1001"]

    # endpoint:PJSIP is every PJSIP endpoint.
    assert (await ari.call("POST", "/applications/hotline/subscription", eventSource="endpoint:PJSIP"))[0] == 200
    pbx_sim.set_registered("PJSIP/1002", True)
    await ari.event("EndpointStateChange", endpoint__resource="1002", endpoint__state="online")


async def test_subscriptions_are_refused_as_asterisk_refuses_them(pbx_sim: PbxSim, ari: RawAri) -> None:
    path = "/applications/hotline/subscription"
    assert await ari.call("POST", path, eventSource="nowhere:1") == (
        400, {"message": "Invalid event source URI scheme"})
    assert await ari.call("POST", path, eventSource="endpoint:XMPP/1") == (
        422, {"message": "Event source does not exist"})
    assert await ari.call("POST", "/applications/other/subscription", eventSource="endpoint:PJSIP") == (
        404, {"message": "Application not found"})
    assert await ari.call("DELETE", path, eventSource="endpoint:PJSIP/1001") == (
        422, {"message": "Event source was not subscribed to"})
    assert (await ari.call("POST", path, eventSource="endpoint:PJSIP/1001"))[0] == 200
    status, app = await ari.call("DELETE", path, eventSource="endpoint:PJSIP/1001")
    assert status == 200 and app["endpoint_ids"] == []


async def test_an_application_stays_registered_with_its_subscriptions_after_its_socket_closes(
    pbx_sim: PbxSim, ari: RawAri
) -> None:
    assert (await ari.call("POST", "/applications/hotline/subscription", eventSource="endpoint:PJSIP"))[0] == 200
    await ari.close()
    await asyncio.sleep(0.05)
    async with aiohttp.ClientSession() as http:
        other = RawAri(pbx_sim, http)
        await other.connect("other")
        status, app = await other.call("GET", "/applications/hotline")
        assert status == 200 and app["endpoint_ids"] == ["PJSIP"]
        assert [a["name"] for a in (await other.call("GET", "/applications"))[1]] == ["hotline", "other"]
        await other.close()


async def test_the_control_api_unregisters_and_registers_a_phone(pbx_sim: PbxSim, ari: RawAri) -> None:
    url = f"{pbx_sim.url}/sim/endpoints/PJSIP/1001/contact"
    async with ari.http.delete(url, headers=AUTH) as resp:
        assert resp.status == 200 and (await resp.json())["registered"] is False
    assert (await ari.call("GET", "/endpoints/PJSIP/1001"))[1]["state"] == "offline"
    async with ari.http.put(f"{pbx_sim.url}/sim/endpoints/PJSIP/1001?mode=manual", headers=AUTH) as resp:
        assert (await resp.json())["registered"] is False  # how it answers changed, not its registration
    async with ari.http.put(url, headers=AUTH) as resp:
        assert (await resp.json())["registered"] is True
    assert (await ari.call("GET", "/endpoints/PJSIP/1001"))[1]["state"] == "online"


class _Collect(asyncio.DatagramProtocol):
    def __init__(self, into: list[bytes]) -> None:
        self.into = into

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.into.append(data)


def parse_rtp(packet: bytes) -> dict[str, Any]:
    first, second, seq, timestamp, ssrc = struct.unpack("!BBHII", packet[:12])
    assert first >> 6 == 2, "RTP version 2"
    return {"pt": second & 0x7F, "seq": seq, "ts": timestamp, "ssrc": ssrc, "payload": packet[12:]}


def write_tone(path: Path, *, seconds: float, rate: int, hz: float = 440.0) -> None:
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
