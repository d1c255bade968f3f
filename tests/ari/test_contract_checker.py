"""The ARI contract checker, tested against Asterisk 22's real declarations (read from ../shared)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from tests.fixtures.ari_contract import ENV_VAR, AriContract, TrafficChecker

CHANNEL = {
    "id": "1732440000.1", "protocol_id": "3c2a-41f0@10.0.0.5", "name": "PJSIP/trunk-00000001",
    "state": "Ring", "caller": {"name": "", "number": "13800138000"},
    "connected": {"name": "", "number": ""}, "accountcode": "",
    "dialplan": {"context": "from-pstn", "exten": "12365", "priority": 3,
                 "app_name": "Stasis", "app_data": "hotline,12365"},
    "creationtime": "2026-11-24T10:00:00.000+0000", "language": "zh_CN",
}
STASIS_START = {
    "type": "StasisStart", "application": "hotline", "timestamp": "2026-11-24T10:00:00.012+0000",
    "args": ["12365"], "channel": CHANNEL, "asterisk_id": "52:54:00:12:34:56",
}


@pytest.fixture(scope="module")
def contract() -> AriContract:
    return AriContract.load()


def stasis_start(**changes: object) -> dict:
    event = copy.deepcopy(STASIS_START)
    event.update(changes)
    return event


# -- loading and routing ------------------------------------------------------------------------

def test_a_missing_declarations_directory_is_reported_by_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        AriContract.load(missing)


def test_the_declarations_directory_comes_from_the_environment_when_set(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "resources.json"))):
        AriContract.load()


def test_every_declared_operation_is_found_from_its_own_path_template(contract: AriContract) -> None:
    assert len(contract.operations) > 100
    for op in contract.operations:
        assert contract.operation(op.method, "/ari" + op.template) is op, op.label
        assert contract.operation(op.method, op.template) is op, op.label


def test_literal_path_segments_win_over_parameter_segments(contract: AriContract) -> None:
    assert contract.operation("POST", "/ari/channels/externalMedia").nickname == "externalMedia"
    assert contract.operation("POST", "/ari/channels/create").nickname == "create"
    assert contract.operation("POST", "/ari/channels/1.1").nickname == "originateWithId"
    assert contract.operation("PUT", "/ari/endpoints/sendMessage").nickname == "sendMessage"


def test_an_undeclared_path_or_method_has_no_operation(contract: AriContract) -> None:
    assert contract.operation("POST", "/ari/channels/1.1/dance") is None
    assert contract.operation("PATCH", "/ari/channels/1.1") is None


# -- requests -----------------------------------------------------------------------------------

def test_a_play_request_with_media_passes(contract: AriContract) -> None:
    assert contract.check_request("POST", "/ari/channels/1.1/play",
                                  [("media", "sound:hello-world"), ("lang", "zh")]) == []


def test_a_request_with_an_undeclared_query_parameter_is_reported(contract: AriContract) -> None:
    problems = contract.check_request("POST", "/ari/channels/1.1/play",
                                      [("media", "sound:x"), ("medai", "sound:x")])
    assert problems == ["POST /channels/{channelId}/play: query parameter 'medai' is not declared "
                        "(declared: media, lang, offsetms, skipms, playbackId)"]


def test_a_request_without_a_required_query_parameter_is_reported(contract: AriContract) -> None:
    problems = contract.check_request("POST", "/ari/channels/1.1/play", [("lang", "zh")])
    assert problems == ["POST /channels/{channelId}/play: required query parameter 'media' is missing"]


def test_a_request_to_an_undeclared_path_or_method_is_reported(contract: AriContract) -> None:
    assert contract.check_request("POST", "/ari/channels/1.1/dance", []) == [
        "POST /ari/channels/1.1/dance: no declared path matches"]
    assert contract.check_request("PATCH", "/ari/channels/1.1", []) == [
        "PATCH /channels/{channelId}: method not declared (declared: DELETE, GET, POST)"]


def test_an_external_media_request_with_app_host_and_format_passes(contract: AriContract) -> None:
    query = [("app", "hotline"), ("external_host", "127.0.0.1:40000"), ("format", "slin16")]
    assert contract.check_request("POST", "/ari/channels/externalMedia", query) == []
    websocket = [("app", "hotline"), ("format", "slin16"), ("transport", "websocket"),
                 ("encapsulation", "none")]
    assert contract.check_request("POST", "/ari/channels/externalMedia", websocket) == []


def test_a_value_outside_the_allowed_values_is_reported(contract: AriContract) -> None:
    problems = contract.check_request("POST", "/ari/channels/externalMedia",
                                      [("app", "h"), ("format", "ulaw"), ("transport", "sctp")])
    assert problems == ["POST /channels/externalMedia: query parameter 'transport': 'sctp' not in "
                        "allowed values ['udp', 'tcp', 'websocket']"]


def test_a_hangup_accepts_a_declared_reason_and_rejects_an_unknown_one(contract: AriContract) -> None:
    assert contract.check_request("DELETE", "/ari/channels/1.1", [("reason", "busy")]) == []
    assert contract.check_request("DELETE", "/ari/channels/1.1", [("reason_code", "16")]) == []
    assert contract.check_request("DELETE", "/ari/channels/1.1", [("reason", "bored")]) != []


def test_a_value_that_does_not_parse_as_its_data_type_is_reported(contract: AriContract) -> None:
    assert contract.check_request("POST", "/ari/channels/1.1/dtmf",
                                  [("dtmf", "12"), ("duration", "long")]) == [
        "POST /channels/{channelId}/dtmf: query parameter 'duration': 'long' is not a valid int"]
    assert contract.check_request("POST", "/ari/bridges/b1/addChannel",
                                  [("channel", "1.1"), ("mute", "yes")]) != []
    assert contract.check_request("POST", "/ari/bridges/b1/addChannel",
                                  [("channel", "1.1"), ("mute", "true")]) == []


def test_a_number_outside_a_declared_range_is_reported(contract: AriContract) -> None:
    problems = contract.check_request("POST", "/ari/bridges/b1/record",
                                      [("name", "r"), ("format", "wav"), ("maxDurationSeconds", "-1")])
    assert problems == ["POST /bridges/{bridgeId}/record: query parameter 'maxDurationSeconds': "
                        "-1 outside allowed range [0, None]"]


def test_a_multi_valued_parameter_is_comma_separated_and_a_repeated_one_is_reported(contract: AriContract) -> None:
    path = "/ari/bridges/b1/addChannel"
    assert contract.check_request("POST", path, [("channel", "1.1,1.2")]) == []
    # Asterisk would keep 1.2 alone.
    assert contract.check_request("POST", path, [("channel", "1.1"), ("channel", "1.2")]) == [
        "POST /bridges/{bridgeId}/addChannel: query parameter 'channel' is repeated: Asterisk keeps only the "
        "last value; give the list as one comma-separated value"]


def test_each_item_of_a_multi_valued_parameter_is_checked(contract: AriContract) -> None:
    problems = contract.check_request("GET", "/ari/asterisk/info", [("only", "build,weather")])
    assert problems == ["GET /asterisk/info: query parameter 'only': 'weather' not in allowed values "
                        "['build', 'system', 'config', 'status']"]


def test_a_single_valued_parameter_given_twice_is_reported(contract: AriContract) -> None:
    problems = contract.check_request("POST", "/ari/channels/1.1/play",
                                      [("media", "sound:x"), ("lang", "zh"), ("lang", "en")])
    assert problems == ["POST /channels/{channelId}/play: query parameter 'lang' is repeated but takes one value"]


def test_a_body_with_declared_variables_passes_and_an_unknown_field_is_reported(contract: AriContract) -> None:
    query = [("endpoint", "PJSIP/agent-1001"), ("app", "hotline")]
    assert contract.check_request("POST", "/ari/channels", query,
                                  {"variables": {"CALLERID(name)": "12315"}}) == []
    assert contract.check_request("POST", "/ari/channels", query, {"variabels": {}}) != []


def test_query_parameters_may_be_given_in_the_body_as_asterisk_allows(contract: AriContract) -> None:
    body = {"endpoint": "PJSIP/agent-1001", "app": "hotline", "timeout": 30}
    assert contract.check_request("POST", "/ari/channels", [], body) == []
    assert contract.check_request("POST", "/ari/channels", [], {**body, "timeout": "soon"}) != []


def test_a_missing_required_body_parameter_is_reported(contract: AriContract) -> None:
    assert contract.check_request("POST", "/ari/channels/1.1/variables", [], None) == [
        "POST /channels/{channelId}/variables: required body parameter 'variables' is missing"]


# -- responses ----------------------------------------------------------------------------------

def test_a_channel_list_is_validated_as_a_list_of_channels(contract: AriContract) -> None:
    assert contract.check_response("GET", "/ari/channels", 200, [CHANNEL, CHANNEL]) == []
    broken = {k: v for k, v in CHANNEL.items() if k != "name"}
    assert contract.check_response("GET", "/ari/channels", 200, [CHANNEL, broken]) == [
        "GET /channels response[1].name: required field is missing"]
    assert contract.check_response("GET", "/ari/channels", 200, CHANNEL) != []


def test_a_play_response_of_201_with_a_playback_passes(contract: AriContract) -> None:
    playback = {"id": "pb-1", "media_uri": "sound:hello-world", "target_uri": "channel:1.1",
                "language": "en", "state": "queued"}
    assert contract.check_response("POST", "/ari/channels/1.1/play", 201, playback) == []
    assert contract.check_response("POST", "/ari/channels/1.1/play", 201, {**playback, "state": "x"}) != []


def test_a_void_operation_answering_204_without_body_passes(contract: AriContract) -> None:
    assert contract.check_response("POST", "/ari/channels/1.1/answer", 204, None) == []


def test_a_void_operation_answering_200_with_a_body_is_reported(contract: AriContract) -> None:
    problems = contract.check_response("POST", "/ari/channels/1.1/answer", 200, {"ok": True})
    assert len(problems) == 2
    assert "answers 204" in problems[0] and "must not return a body" in problems[1]


def test_a_declared_error_status_with_a_message_passes(contract: AriContract) -> None:
    assert contract.check_response("POST", "/ari/bridges/b1/addChannel", 422,
                                   {"message": "Channel not in Stasis application"}) == []
    assert contract.check_response("POST", "/ari/channels/1.1/answer", 500,
                                   {"message": "Internal Server Error"}) == []


def test_an_undeclared_error_status_is_reported(contract: AriContract) -> None:
    problems = contract.check_response("POST", "/ari/channels/1.1/play", 418, {"message": "teapot"})
    assert len(problems) == 1
    assert problems[0].startswith("POST /channels/{channelId}/play: error status 418 is not declared "
                                  "(declared: 404, 409, 412;")


def test_an_error_without_a_message_is_reported(contract: AriContract) -> None:
    assert contract.check_response("GET", "/ari/channels/9.9", 404, {"error": "nope"}) != []


def test_asterisks_allocation_failure_answers_500_with_an_error_field(contract: AriContract) -> None:
    assert contract.check_response("POST", "/ari/channels", 500, {"error": "Allocation failed"}) == []


def test_an_undeclared_path_may_only_be_answered_not_found(contract: AriContract) -> None:
    assert contract.check_response("GET", "/ari/nothing", 404, {"message": "Resource not found"}) == []
    assert contract.check_response("GET", "/ari/nothing", 200, {}) != []


def test_a_binary_response_is_not_validated_as_a_model(contract: AriContract) -> None:
    assert contract.check_response("GET", "/ari/recordings/stored/r1/file", 200, b"RIFF") == []


# -- events -------------------------------------------------------------------------------------

def test_a_complete_stasis_start_passes(contract: AriContract) -> None:
    assert contract.check_event(stasis_start()) == []


def test_a_stasis_start_without_a_channel_is_reported(contract: AriContract) -> None:
    event = stasis_start()
    del event["channel"]
    assert contract.check_event(event) == ["StasisStart.channel: required field is missing"]


def test_a_channel_state_outside_the_declared_values_is_reported(contract: AriContract) -> None:
    event = stasis_start(channel={**CHANNEL, "state": "Talking"})
    problems = contract.check_event(event)
    assert len(problems) == 1
    assert problems[0].startswith("StasisStart.channel.state: 'Talking' not in allowed values ['Down',")


def test_fields_inherited_from_event_and_message_are_required(contract: AriContract) -> None:
    event = stasis_start()
    del event["application"]
    assert contract.check_event(event) == ["StasisStart.application: required field is missing"]


def test_wrong_types_and_dates_in_an_event_are_reported(contract: AriContract) -> None:
    dialplan = {**CHANNEL["dialplan"], "priority": "3"}
    event = stasis_start(timestamp="2026-11-24 10:00:00", channel={**CHANNEL, "dialplan": dialplan})
    assert contract.check_event(event) == [
        "StasisStart.timestamp: expected Date, got '2026-11-24 10:00:00'",
        "StasisStart.channel.dialplan.priority: expected long, got '3'"]


def test_unknown_extra_fields_are_allowed_in_events(contract: AriContract) -> None:
    assert contract.check_event(stasis_start(future_field=1)) == []


def test_an_event_of_an_unknown_type_is_reported(contract: AriContract) -> None:
    assert contract.check_event({"type": "ChannelDanced", "application": "hotline"}) != []
    assert contract.check_event({"type": "Event", "application": "hotline",
                                 "timestamp": STASIS_START["timestamp"]}) != []


def test_a_dtmf_event_with_its_channel_passes(contract: AriContract) -> None:
    event = {"type": "ChannelDtmfReceived", "application": "hotline",
             "timestamp": "2026-11-24T10:00:01.500+0000", "digit": "1", "duration_ms": 280,
             "channel": {**CHANNEL, "state": "Up"}}
    assert contract.check_event(event) == []


# -- the traffic callback -----------------------------------------------------------------------

def test_the_traffic_checker_counts_messages_records_violations_and_chains(contract: AriContract) -> None:
    seen: list[str] = []
    checker = TrafficChecker(contract, then=lambda kind, payload: seen.append(kind))
    checker("request", {"method": "POST", "path": "/ari/channels/1.1/play",
                        "query": [("media", "sound:x")], "body": None})
    checker("response", {"method": "POST", "path": "/ari/channels/1.1/answer", "status": 204, "body": None})
    checker("event", stasis_start())
    checker.assert_clean()
    checker("event", stasis_start(channel={**CHANNEL, "state": "Talking"}))
    assert checker.checked == {"request": 1, "response": 1, "event": 2}
    assert seen == ["request", "response", "event", "event"]
    with pytest.raises(AssertionError, match=r"(?s)1 ARI contract violation.*StasisStart\.channel\.state"):
        checker.assert_clean()


def test_the_traffic_checker_lists_at_most_twenty_violations(contract: AriContract) -> None:
    checker = TrafficChecker(contract)
    for _ in range(25):
        checker.on_traffic("event", {"type": "Nope"})
    with pytest.raises(AssertionError) as failure:
        checker.assert_clean()
    assert str(failure.value).count("is not a declared event type") == 20
    assert "and 5 more" in str(failure.value)


def test_a_body_that_is_its_one_object_parameter_may_have_any_keys_and_other_bodies_only_declared_ones(
    contract: AriContract
) -> None:
    # PUT eventFilter: the body is the filter itself (Asterisk: ``args.filter = body``).
    assert contract.check_request("PUT", "/ari/applications/hotline/eventFilter", [],
                                  {"allowed": [{"type": "StasisStart"}], "disallowed": []}) == []
    problems = contract.check_request("POST", "/ari/channels", [("endpoint", "PJSIP/1001"), ("app", "hotline")],
                                      {"variables": {}, "colour": "blue"})
    assert [p for p in problems if "body field" in p] == [p for p in problems if "'colour' is not declared" in p] != []
