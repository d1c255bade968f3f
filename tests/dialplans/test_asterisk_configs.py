"""The other Asterisk files say what the application and the agents' browsers rely on."""

from __future__ import annotations

from core.settings import AriSettings
from tests.support.dialplans import RENDERED as DIALPLANS
from tests.support.dialplans import conf_sections, section


def test_ari_has_a_user_with_the_applications_user_name_and_password() -> None:
    user = section(DIALPLANS / "ari.conf", AriSettings().username)
    assert user["type"] == ["user"] and user["read_only"] == ["no"]
    assert user["password"] == [AriSettings().password.get_secret_value()]
    assert section(DIALPLANS / "ari.conf", "general")["enabled"] == ["yes"]


def test_http_serves_8088_and_tls_on_8089_with_certificate_paths() -> None:
    http = section(DIALPLANS / "http.conf", "general")
    assert http["enabled"] == ["yes"] and http["bindport"] == ["8088"]
    assert http["tlsenable"] == ["yes"] and http["tlsbindaddr"][0].endswith(":8089")
    assert http["tlscertfile"][0].startswith("/etc/asterisk/keys/")
    assert http["tlsprivatekey"][0].startswith("/etc/asterisk/keys/")


def test_browsers_get_ws_and_wss_transports_and_webrtc_endpoints_without_opus() -> None:
    pjsip = DIALPLANS / "pjsip.conf"
    protocols = {v["protocol"][0] for _n, _t, v in conf_sections(pjsip) if v.get("type") == ["transport"]}
    assert {"udp", "ws", "wss"} <= protocols
    for agent in ("1001", "1002"):
        endpoint = section(pjsip, agent, "endpoint")
        assert endpoint["webrtc"] == ["yes"]
        assert endpoint["allow"] == ["ulaw,alaw"] and endpoint["disallow"] == ["all"]
        assert endpoint["context"] == ["from-agents"]
        auth = section(pjsip, endpoint["auth"][0], "auth")
        assert auth["username"] == [agent]
        section(pjsip, agent, "aor")
    uses = {(name, tuple(t)) for name, t, _v in conf_sections(pjsip)}
    assert {("agent-webrtc", ("!",)), ("1001", ("agent-webrtc",)), ("1002", ("agent-webrtc",))} <= uses


def test_the_carrier_trunk_lands_in_from_pstn() -> None:
    pjsip = DIALPLANS / "pjsip.conf"
    trunk = section(pjsip, "carrier", "endpoint")
    assert trunk["context"] == ["from-pstn"] and "alaw" in trunk["allow"][0]
    assert section(pjsip, "carrier", "identify")["endpoint"] == ["carrier"]


def test_rtp_has_a_port_range_ice_and_the_host_candidates_section() -> None:
    names = [name for name, _t, _v in conf_sections(DIALPLANS / "rtp.conf")]
    general = section(DIALPLANS / "rtp.conf", "general")
    assert int(general["rtpstart"][0]) < int(general["rtpend"][0])
    assert general["icesupport"] == ["yes"]
    assert "ice_host_candidates" in names


def test_modules_we_cannot_run_without_are_required_explicitly() -> None:
    modules = section(DIALPLANS / "modules.conf", "modules")
    assert modules["autoload"] == ["no"]  # only what is listed: a quiet log where faults show
    required = set(modules["require"])
    for module in ("res_ari.so", "res_stasis.so", "app_stasis.so", "chan_pjsip.so", "res_http_websocket.so",
                   "chan_websocket.so", "res_pjsip_transport_websocket.so", "app_queue.so", "res_srtp.so",
                   "format_wav.so", "pbx_config.so"):
        assert module in required, module
