"""Agents' phones on both switches: originating to them, their endpoints, following them."""

from __future__ import annotations

import collections
import json
from typing import Any

from tests.support.conformance import RTP_STATS, Switch, answered_call
from tests.support.transcript import Transcript, of_channel

#: An agent leg as POST /channels answers it: the endpoint's context and caller name
#: (pjsip.conf), the callerId given as its number and connected line, the dialler's app.
AGENT_LEG = {
    "id": "agent", "name": "PJSIP/1001-<n>", "state": "Down", "protocol_id": "<call-id>",
    "caller": {"name": "Agent 1001", "number": "12315"}, "connected": {"name": "", "number": "12315"},
    "accountcode": "", "dialplan": {"context": "from-agents", "exten": "s", "priority": 1,
                                    "app_name": "AppDial2", "app_data": "(Outgoing Line)"},
    "creationtime": "<time>", "language": "en",
}


def settled(lines: list[str]) -> list[str]:
    """The one race a real Asterisk has here: while a phone starts ringing, the dialler's
    ``Dial`` events (``""`` then ``RINGING``, in that order) and the channel's
    ``ChannelStateChange`` to ``Ringing`` come from two threads, in any interleaving, and each
    Dial's snapshot of the channel may be taken on either side of the state change. Put every
    such run in one order, each Dial with the state it has in the stand-in."""
    out: list[str] = []
    run: list[str] = []

    def rank(line: str) -> int:
        return 0 if "dialstatus=''" in line else 1 if "dialstatus='RINGING'" in line else 2

    for line in [*lines, ""]:
        if "dialstatus=''" in line:
            run.append(line.replace(":Ringing", ":Down"))
            continue
        if "dialstatus='RINGING'" in line:
            run.append(line.replace(":Down", ":Ringing"))
            continue
        if "ChannelStateChange" in line and ":Ringing" in line:
            run.append(line)
            continue
        out += sorted(run, key=rank)
        run = []
        if line:
            out.append(line)
    return out


async def originate(switch: Switch, channel_id: str = "conf-agent", timeout: str = "10") -> Any:
    return await switch.ari.request("POST", "/channels", endpoint="PJSIP/1001", app="hotline",
                                    appArgs="agent,1001", callerId="12315", timeout=timeout,
                                    channelId=channel_id)


async def test_an_agents_registered_phone_answers_and_its_leg_enters_stasis_after_the_dial(switch: Switch) -> None:
    await switch.register("1001")
    ari = switch.ari
    made = await originate(switch)
    t = Transcript(ari.events, agent="conf-agent")
    assert made.status == 200 and t.channel(made.body) == AGENT_LEG
    again = await originate(switch)
    assert (again.status, again.body) == (409, {"message": "Channel with given unique ID already exists"})
    start = await ari.wait_event("StasisStart", lambda e: e["channel"]["id"] == "conf-agent")
    assert start["args"] == ["agent", "1001"]
    assert t.channel(start["channel"]) == {**AGENT_LEG, "state": "Up", "dialplan": {
        "context": "from-agents", "exten": "s", "priority": 1, "app_name": "Stasis", "app_data": "hotline,agent,1001"}}
    endpoint = await ari.request("GET", "/endpoints/PJSIP/1001")
    assert endpoint.body == {"technology": "PJSIP", "resource": "1001", "state": "online",
                             "channel_ids": ["conf-agent"]}
    assert settled(t.lines()) == [
        "Dial dialstatus='' dialstring='1001' forward='' peer=agent:Down",
        "Dial dialstatus='RINGING' dialstring='1001' forward='' peer=agent:Ringing",
        "ChannelStateChange channel=agent:Ringing",
        "ChannelStateChange channel=agent:Up",
        "Dial dialstatus='ANSWER' dialstring='1001' forward='' peer=agent:Up",
        "StasisStart args=['agent', '1001'] channel=agent:Up",
    ]
    await ari.quiet()
    mark = len(ari.events)
    assert (await ari.request("DELETE", "/channels/conf-agent")).status == 204
    await ari.wait_event("ChannelDestroyed")
    # Originated over ARI, the leg stays the application's until it is destroyed.
    assert t.lines(ari.events[mark:]) == [
        *[line.replace("caller:", "agent:") for line in RTP_STATS],
        "ChannelHangupRequest cause=32 channel=agent:Up soft=True",
        "StasisEnd channel=agent:Up",
        "ChannelDestroyed cause=16 cause_txt='Normal Clearing' channel=agent:Up",
    ]
    await switch.unregister("1001")


async def test_an_agent_bridged_with_the_caller_exchanges_connected_lines_and_survives_the_caller(
    switch: Switch
) -> None:
    await switch.register("1001")
    ch, t = await answered_call(switch)
    ari = switch.ari
    await originate(switch)
    await ari.wait_event("StasisStart", lambda e: e["channel"]["id"] == "conf-agent")
    t.name("conf-agent", "agent")
    await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-call")
    assert (await ari.request("POST", "/bridges/conf-call/addChannel", channel=f"{ch},conf-agent")).status == 204
    await ari.wait_event("ChannelConnectedLine", lambda e: e["channel"]["id"] == ch)
    caller = (await ari.request("GET", f"/channels/{ch}")).body
    agent = (await ari.request("GET", "/channels/conf-agent")).body
    assert (caller["connected"], agent["connected"]) == ({"name": "Agent 1001", "number": "12315"},
                                                         {"name": "", "number": "13800138000"})
    await ari.quiet()
    mark = len(ari.events)
    await switch.legs[ch].hang_up()
    await ari.wait_event("StasisEnd", lambda e: e["channel"]["id"] == ch)
    await ari.quiet()
    bridged = [f"ChannelVarset channel=agent:Up value=<rtp stats> variable='RTPAUDIOQOS{k}BRIDGED'"
               for k in ("", "JITTER", "LOSS", "RTT", "MES")]
    interleaved = [line for pair in zip(RTP_STATS, bridged, strict=True) for line in pair]
    assert t.lines(ari.events[mark:]) == [
        # Statistics of the caller's media, each followed by the same for its bridged peer.
        *interleaved,
        "ChannelHangupRequest channel=caller:Up",
        "ChannelLeftBridge bridge=conf-call['agent'] channel=caller:Up",
        "StasisEnd channel=caller:Up",
    ]
    await ari.request("DELETE", "/channels/conf-agent")
    await ari.wait_event("ChannelDestroyed")
    assert (await ari.request("DELETE", "/bridges/conf-call")).status == 204
    await ari.wait_event("BridgeDestroyed")
    entered = t.lines(e for e in ari.events if e["type"] in ("ChannelEnteredBridge", "ChannelConnectedLine"))
    assert entered[:2] == [
        "ChannelEnteredBridge bridge=conf-call['caller'] channel=caller:Up",
        "ChannelEnteredBridge bridge=conf-call['caller', 'agent'] channel=agent:Up",
    ]
    # Then each party's new connected line, in either order (two threads of Asterisk's).
    assert sorted(entered[2:]) == ["ChannelConnectedLine channel=agent:Up", "ChannelConnectedLine channel=caller:Up"]
    await switch.unregister("1001")


async def test_a_phone_without_a_contact_cannot_be_originated_to(switch: Switch) -> None:
    refused = await originate(switch)
    assert (refused.status, refused.body) == (500, {"error": "Allocation failed"})
    assert (await switch.ari.request("GET", "/channels")).body == []
    await switch.ari.quiet()
    assert switch.ari.events == []


async def test_a_ringing_agent_leg_is_not_the_applications_yet_and_a_hang_up_ends_its_dial(switch: Switch) -> None:
    await switch.register("1001")
    await switch.never_answer("1001")
    ch, t = await answered_call(switch)
    ari = switch.ari
    await originate(switch)
    await ari.wait_event("ChannelStateChange", lambda e: e["channel"]["id"] == "conf-agent")
    await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-call")
    for method, path, params, status in (
        ("POST", "/bridges/conf-call/addChannel", {"channel": "conf-agent"}, 422),
        ("POST", "/channels/conf-agent/answer", {}, 409),
        ("POST", "/channels/conf-agent/play", {"media": "sound:hotline/goodbye"}, 409),
    ):
        refused = await ari.request(method, path, **params)
        assert (refused.status, refused.body) == (status, {"message": "Channel not in Stasis application"}), path
    assert (await ari.request("DELETE", "/channels/conf-agent")).status == 204
    await ari.wait_event("ChannelDestroyed")
    t.name("conf-agent", "agent")
    assert settled(t.lines(of_channel(ari.events, "conf-agent"))) == [
        "Dial dialstatus='' dialstring='1001' forward='' peer=agent:Down",
        "Dial dialstatus='RINGING' dialstring='1001' forward='' peer=agent:Ringing",
        "ChannelStateChange channel=agent:Ringing",
        # Never answered: no media, no statistics.
        "ChannelHangupRequest cause=32 channel=agent:Ringing soft=True",
        "Dial dialstatus='NOANSWER' dialstring='1001' forward='' peer=agent:Ringing",
        "ChannelDestroyed cause=16 cause_txt='Normal Clearing' channel=agent:Ringing",
    ]
    await ari.request("DELETE", "/bridges/conf-call")
    await ari.request("DELETE", f"/channels/{ch}")
    await ari.wait_event("StasisEnd", lambda e: e["channel"]["id"] == ch)
    await switch.unregister("1001")


async def test_an_agent_leg_that_rings_out_is_destroyed_with_cause_19_and_no_word_of_its_dial(switch: Switch) -> None:
    await switch.register("1001")
    await switch.never_answer("1001")
    ari = switch.ari
    await originate(switch, timeout="1")
    await ari.wait_event("ChannelDestroyed", timeout=4)
    t = Transcript(ari.events, agent="conf-agent")
    assert settled(t.lines()) == [
        "Dial dialstatus='' dialstring='1001' forward='' peer=agent:Down",
        "Dial dialstatus='RINGING' dialstring='1001' forward='' peer=agent:Ringing",
        "ChannelStateChange channel=agent:Ringing",
        # No hang-up request and no Dial NOANSWER: the dialler drops the channel at the timeout.
        "ChannelDestroyed cause=19 cause_txt='User alerting, no answer' channel=agent:Ringing tech_cause=480",
    ]
    await switch.unregister("1001")


async def test_endpoints_are_offline_until_their_phone_registers_and_subscribers_hear_the_changes(
    switch: Switch
) -> None:
    ari = switch.ari

    def phones(endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The carrier trunk's state is whatever its last OPTIONS ping found: not compared.
        return [e for e in endpoints if e["resource"] != "carrier"]

    listed = await ari.request("GET", "/endpoints")
    assert listed.status == 200 and phones(listed.body) == [
        {"technology": "PJSIP", "resource": "1001", "state": "offline", "channel_ids": []},
        {"technology": "PJSIP", "resource": "1002", "state": "offline", "channel_ids": []},
    ]
    assert [e["resource"] for e in listed.body] == ["1001", "1002", "carrier"]  # sorted by name
    for path, message in (("/endpoints/SIP/1001", "Endpoint not found"),
                          ("/endpoints/SIP", "No Endpoints found - invalid tech SIP")):
        missing = await ari.request("GET", path)
        assert (missing.status, missing.body) == (404, {"message": message}), path

    sub = "/applications/hotline/subscription"
    for app_path, source, status, message in (
        (sub, "nowhere:1", 400, "Invalid event source URI scheme"),
        (sub, "endpoint:XMPP/1", 422, "Event source does not exist"),
        (sub, "channel:no-such-channel", 422, "Event source does not exist"),
        ("/applications/no-such-app/subscription", "endpoint:PJSIP", 404, "Application not found"),
    ):
        refused = await ari.request("POST", app_path, eventSource=source)
        assert (refused.status, refused.body) == (status, {"message": message}), source
    not_subscribed = await ari.request("DELETE", sub, eventSource="endpoint:PJSIP/1002")
    assert (not_subscribed.status, not_subscribed.body) == (422, {"message": "Event source was not subscribed to"})

    subscribed = await ari.request("POST", sub, eventSource="endpoint:PJSIP/1001")
    assert subscribed.status == 200 and subscribed.body["endpoint_ids"] == ["PJSIP/1001"]
    await switch.register("1001")
    await ari.wait_event("ContactStatusChange", lambda e: e["contact_info"]["contact_status"] == "Reachable")
    online = await ari.request("GET", "/endpoints/PJSIP/1001")
    assert online.body == {"technology": "PJSIP", "resource": "1001", "state": "online", "channel_ids": []}
    await switch.register("1002")  # not subscribed to: nothing heard of it
    await switch.unregister("1001")
    await ari.wait_event("ContactStatusChange", lambda e: e["contact_info"]["contact_status"] == "Removed")
    await switch.unregister("1002")
    # Subscriptions are counted: a second one needs a second unsubscribe.
    assert (await ari.request("POST", sub, eventSource="endpoint:PJSIP/1001")).status == 200
    once = await ari.request("DELETE", sub, eventSource="endpoint:PJSIP/1001")
    assert once.status == 200 and once.body["endpoint_ids"] == ["PJSIP/1001"]
    twice = await ari.request("DELETE", sub, eventSource="endpoint:PJSIP/1001")
    assert twice.status == 200 and twice.body["endpoint_ids"] == []
    await ari.quiet()
    lines = endpoint_lines(ari.events)
    # res_pjsip announces a (un)registration from more than one thread: the order within each
    # is not fixed (the stand-in's is the one listed), only that the registration's come first.
    assert [sorted(lines[:4]), sorted(lines[4:])] == [sorted([
        "ContactStatusChange PJSIP/1001 NonQualified",
        "EndpointStateChange PJSIP/1001:online",
        "PeerStatusChange PJSIP/1001 Reachable",
        "ContactStatusChange PJSIP/1001 Reachable",
    ]), sorted([
        "EndpointStateChange PJSIP/1001:offline",
        "PeerStatusChange PJSIP/1001 Unreachable",
        "ContactStatusChange PJSIP/1001 Removed",
    ])]


def endpoint_lines(events: list[dict[str, Any]]) -> list[str]:
    """Endpoint events, with what differs by nature (the phone's port, the ping time) left out,
    and the endpoint's state only where it is the news (the other events' snapshot of it races
    with the change)."""
    lines = []
    for e in events:
        ep = e.get("endpoint")
        if ep is None:
            continue
        name = f"{ep['technology']}/{ep['resource']}"
        what = [e["type"], f"{name}:{ep['state']}" if e["type"] == "EndpointStateChange" else name]
        if "contact_info" in e:
            info = e["contact_info"]
            assert info["aor"] == ep["resource"] and info["uri"].startswith(f"sip:{ep['resource']}@")
            assert info["roundtrip_usec"].isdigit()
            what.append(info["contact_status"])
        if "peer" in e:
            what.append(e["peer"]["peer_status"])
        lines.append(" ".join(what))
    return lines


async def test_following_an_agents_endpoint_doubles_the_events_of_its_calls(switch: Switch) -> None:
    """An application subscribed to ``endpoint:PJSIP/1001`` that originates to PJSIP/1001 hears
    each event of that leg's topic twice: through the channel and through the endpoint."""
    ari = switch.ari
    await ari.request("POST", "/applications/hotline/subscription", eventSource="endpoint:PJSIP/1001")
    await switch.register("1001")
    # The registration is announced after it is answered: wait for the phone to be qualified.
    await ari.wait_event("ContactStatusChange", lambda e: e["contact_info"]["contact_status"] == "Reachable")
    await ari.quiet()
    mark = len(ari.events)
    await originate(switch)
    await ari.wait_event("StasisStart", lambda e: e["channel"]["id"] == "conf-agent")
    await ari.request("DELETE", "/channels/conf-agent")
    await ari.wait_event("EndpointStateChange", lambda e: e["endpoint"]["channel_ids"] == [], after=mark + 1)
    await ari.request("DELETE", "/applications/hotline/subscription", eventSource="endpoint:PJSIP/1001")
    t = Transcript(ari.events, agent="conf-agent")
    lines = [line for line in settled(t.lines(ari.events[mark:])) if "RTPAUDIOQOS" not in line]
    dial = "dialstring='1001' forward=''"
    assert lines == [
        "EndpointStateChange endpoint=PJSIP/1001:online['agent']",
        # Before the application subscribes to the new channel: through the endpoint only.
        "ChannelCreated channel=agent:Down",
        "ChannelDialplan channel=agent:Down dialplan_app='AppDial2' dialplan_app_data='(Outgoing Line)'",
        "ChannelCallerId caller_presentation=0 caller_presentation_txt='Presentation Allowed, Not Screened' "
        "channel=agent:Down",
        "ChannelConnectedLine channel=agent:Down",
        *[f"Dial dialstatus='' {dial} peer=agent:Down"] * 2,
        *[f"Dial dialstatus='RINGING' {dial} peer=agent:Ringing"] * 2,
        *["ChannelStateChange channel=agent:Ringing"] * 2,
        *["ChannelStateChange channel=agent:Up"] * 2,
        *[f"Dial dialstatus='ANSWER' {dial} peer=agent:Up"] * 2,
        "StasisStart args=['agent', '1001'] channel=agent:Up",  # from the application itself: once
        *["ChannelHangupRequest cause=32 channel=agent:Up soft=True"] * 2,
        "StasisEnd channel=agent:Up",
        *["ChannelDestroyed cause=16 cause_txt='Normal Clearing' channel=agent:Up"] * 2,
        "EndpointStateChange endpoint=PJSIP/1001:online[]",
    ]
    await switch.unregister("1001")


async def test_the_copies_of_an_event_are_the_same_message_byte_for_byte(switch: Switch) -> None:
    """What lets a client drop the second copy: Asterisk serialises the event once."""
    ari = switch.ari
    await ari.request("POST", "/applications/hotline/subscription", eventSource="endpoint:PJSIP/1001")
    await switch.register("1001")
    await originate(switch)
    await ari.wait_event("StasisStart", lambda e: e["channel"]["id"] == "conf-agent")
    await ari.request("DELETE", "/channels/conf-agent")
    await ari.wait_event("ChannelDestroyed")
    await ari.quiet()
    await ari.request("DELETE", "/applications/hotline/subscription", eventSource="endpoint:PJSIP/1001")
    # Every message of the leg's topic comes twice, the copies equal to the last field
    # (timestamps included); StasisStart and StasisEnd come once.
    copies = collections.Counter(json.dumps(e, sort_keys=True) for e in of_channel(ari.events, "conf-agent")
                                 if e["type"] in ("Dial", "ChannelStateChange", "ChannelDestroyed",
                                                  "ChannelHangupRequest", "StasisStart", "StasisEnd"))
    assert sorted(copies.values()) == [1, 1] + [2] * 7  # 3 Dial, 2 states, request, destroyed
    await switch.unregister("1001")
