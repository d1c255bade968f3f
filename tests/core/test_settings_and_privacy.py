"""Settings come from code defaults, a profile, a TOML file and the environment;
personal data never reaches the logs unmasked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.privacy import MaskingFilter, mask_name, mask_phone, mask_text
from core.settings import SettingsError, load_settings


def test_defaults_are_usable_without_any_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_PROFILE", raising=False)
    s = load_settings()
    assert s.ari.app == "hotline"
    assert s.database.url.startswith("sqlite+aiosqlite:///")
    assert s.ivr.language == "zh-CN"


def test_a_toml_file_overrides_defaults_and_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "hotline.toml"
    cfg.write_text('[ari]\nurl = "http://pbx.example:8088"\napp = "hl"\n[ivr]\nmax_attempts = 4\n')
    monkeypatch.setenv("HOTLINE_ARI__APP", "from-env")
    s = load_settings(cfg)
    assert s.ari.url == "http://pbx.example:8088"
    assert s.ari.app == "from-env"
    assert s.ivr.max_attempts == 4


def test_the_test_profile_shortens_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_PROFILE", "test")
    assert load_settings().ivr.no_input_timeout_s < 1


def test_a_broken_settings_file_gets_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[ari\nurl=")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_a_value_that_does_not_fit_is_a_settings_error_naming_it_never_pydantics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTLINE_HTTP__PORT", raising=False)
    with pytest.raises(SettingsError) as given:
        load_settings(http={"port": -1})
    assert str(given.value) == "setting http.port = -1: must be from 0 to 65535"
    cfg = tmp_path / "hotline.toml"
    cfg.write_text("[asterisk]\nrtp_start = 30000\n[queues.hours]\ndays = [0]\n")
    with pytest.raises(SettingsError) as found:
        load_settings(cfg)
    assert str(found.value).splitlines() == [
        f"[queues.hours] days in {cfg} = [0]: days are ISO weekdays 1 (Monday) to 7 (Sunday), got [0]",
        f"[asterisk] in {cfg}: rtp_start (30000) must be below rtp_end (20000)",
    ]


def test_a_password_in_a_url_that_does_not_fit_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_DATABASE__URL", raising=False)
    monkeypatch.setenv("HOTLINE_REDIS__MAX_CONNECTIONS", "0")
    with pytest.raises(SettingsError) as given:
        load_settings(database={"url": ["postgresql+asyncpg://hotline:s3cret@db/hotline"]})
    assert str(given.value).splitlines() == [
        "setting database.url = ['postgresql+asyncpg://hotline:****@db/hotline']: must be text",
        "HOTLINE_REDIS__MAX_CONNECTIONS = '0': must be from 1 to 10000",
    ]


def test_phone_numbers_and_names_are_masked() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("") == "-"
    assert mask_name("张三丰") == "张**"
    assert mask_text("caller 13812345678 dialled 12315") == "caller 138****5678 dialled 12315"


def test_log_records_are_masked_even_when_a_caller_forgot(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.masking")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.masking"):
        logger.info("callback to %s", "+8613812345678")
    assert "13812345678" not in caplog.text
    assert "+86*******5678" in caplog.text


def test_identifiers_with_long_digit_runs_stay_readable_in_logs_but_phones_next_to_them_do_not() -> None:
    from core.privacy import mask_text

    text = "call b5e3b0e3-3947-4676-bfe9-098296845297 on channel 1795524998.12 from 13800138000."
    assert mask_text(text) == "call b5e3b0e3-3947-4676-bfe9-098296845297 on channel 1795524998.12 from 138****8000."
