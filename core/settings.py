"""One typed settings object for the whole application.

Precedence, lowest to highest: defaults in this file, the ``test`` profile (when
``HOTLINE_PROFILE=test``), a TOML file (``HOTLINE_CONFIG`` or ``--config``), then
environment variables ``HOTLINE_<SECTION>__<FIELD>`` (for example
``HOTLINE_ARI__URL=http://pbx:8088``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as EnvParsingError

from core.privacy import mask_url

#: Where runtime data (SQLite file, sounds, recordings, redis dump) lives by default.
DEFAULT_VAR_DIR = Path("var")


class AriSettings(BaseModel):
    url: str = "http://127.0.0.1:8088"
    username: str = "hotline"
    password: SecretStr = SecretStr("hotline")
    app: str = "hotline"
    #: Reconnect backoff of the events WebSocket: first delay, cap (seconds).
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 10.0
    request_timeout_s: float = 5.0


class DatabaseSettings(BaseModel):
    #: SQLAlchemy async URL. SQLite is the embedded default; PostgreSQL via
    #: ``postgresql+asyncpg://user:pass@host/db``.
    url: str = f"sqlite+aiosqlite:///{DEFAULT_VAR_DIR}/core.db"


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every key, so that several deployments (or tests) share a server.
    prefix: str = "hotline"
    #: Connections per process. Redis runs commands one at a time, so more connections
    #: buy nothing; when all are busy, a command waits for one (up to the timeout).
    max_connections: int = Field(default=32, ge=1, le=10_000)
    pool_timeout_s: float = Field(default=5.0, gt=0)


class IvrSettings(BaseModel):
    language: str = "zh-CN"
    #: Seconds of silence after a menu prompt before the caller is reprompted.
    no_input_timeout_s: float = 5.0
    #: Attempts at a menu (first prompt included) before the caller goes to an operator.
    max_attempts: int = Field(default=3, ge=1, le=10)
    #: Where ``hotline prompts build`` writes Asterisk sound files (``<dir>/<lang>/hotline/*.wav``).
    sounds_dir: Path = DEFAULT_VAR_DIR / "sounds"
    #: Music on hold class callers hear while waiting or held (musiconhold.conf [hotline]).
    moh_class: str = "hotline"
    #: After every connect, check in the background that Asterisk has every prompt and number
    #: sound and that moh_class plays music; ERROR in the log if not (ivr/media_checks.py).
    #: Off in the test and demo profiles: the Asterisk stand-in has no sounds index or music.
    check_media: bool = True


class SpeechSettings(BaseModel):
    """Speech menus: callers may say their choice (Vosk), DTMF always works too."""

    #: Listen to callers in menus. Without an installed model the IVR logs how to install
    #: one and serves DTMF only: callers are never turned away for want of speech.
    enabled: bool = True
    #: Where ``hotline models download`` puts models; the model name comes from the locale pack.
    #: Not given: ``<var_dir>/models`` (see Settings).
    models_dir: Path = DEFAULT_VAR_DIR / "models"
    #: Recognizers at once per process; a caller beyond that is served by DTMF alone.
    max_streams: int = Field(default=16, ge=1, le=1000)
    #: Threads running Vosk (it releases the GIL, so one per core is the useful most).
    threads: int = Field(default=2, ge=1, le=64)
    #: Where we receive the callers' audio (RTP), and the address Asterisk must send it to.
    rtp_bind_host: str = "127.0.0.1"
    rtp_advertise_host: str | None = None
    #: externalMedia format: slin16 (16 kHz) or ulaw (8 kHz).
    format: Literal["slin16", "ulaw"] = "slin16"
    #: Hear every caller as a telephone line: slin16 taken to 8 kHz, through μ-law and back, as
    #: a ulaw stream is (ivr/speech/rtp.py). The Korean test model scored 82 % of a clean line's
    #: phrases that way against 68 % on the same wideband speech as sent (issue 16); false keeps
    #: slin16 as sent, for a model that does better on wideband speech.
    telephone_band: bool = True
    #: Once a caller's utterance started, it ends when the recognizer has heard no word for
    #: this long (noise that passed the voice detector cannot keep the menu waiting).
    no_word_timeout_s: float = Field(default=3.0, gt=0, le=30)
    #: The longest utterance, words or not: the last guard.
    max_utterance_s: float = Field(default=10.0, gt=0, le=60)
    #: How much more likely (log-likelihood, as Vosk scores its n best) the best phrase must be
    #: than anything meaning something else to be taken as the caller's choice (inf: every
    #: spoken choice is confirmed); from ``confirm_margin`` up to this, the caller is asked to
    #: confirm it ("you said complaint?"); below, no match. Measured: ivr/speech/grammar.py.
    accept_margin: float = Field(default=2.0, ge=0)
    #: 0.1, as ivr/speech/grammar.py's CONFIRM_MARGIN: re-deciding the noisy set's saved n-best
    #: lists (bench/speech_noisy.py, three draws of its 720 phrase turns), 0.1 had 7-10 more right
    #: for 0-1 more callers asked about the wrong choice (they say no, the menu is asked again) and
    #: no out-of-grammar turn more asked or taken; a wrong choice is only ever taken above
    #: accept_margin. 0.05 added 0-5 right turns for up to 2 wrong questions more in one condition.
    confirm_margin: float = Field(default=0.1, ge=0)
    #: A caller whose loudest syllable stands less than this far above the line's background
    #: (dB; noise at 15 dB SNR: 19-38, a clean line 49 and more) is asked about every choice:
    #: on such a line Vosk gave wrong choices with nothing else in its lattice (issue 16). As
    #: ivr/speech/engine.py's CONFIRM_BELOW_DB; 0: never asked for the line's sake.
    confirm_below_db: float = Field(default=30.0, ge=0, le=96)
    #: Take a noisy line's steady noise out of what the recognizer hears (a Wiener filter learnt
    #: from the line before the caller speaks; ivr/speech/denoise.py). Quiet lines are never
    #: changed. On the noisy set (issue 16): pink noise at 15 dB SNR 63 -> 80-82 % right, babble 28 -> 47-48.
    noise_reduction: bool = True

    @model_validator(mode="after")
    def _margins_in_order(self) -> SpeechSettings:
        if self.confirm_margin > self.accept_margin:
            raise ValueError(f"confirm_margin ({self.confirm_margin}) must not exceed accept_margin "
                             f"({self.accept_margin}): a confirmation asks about a thinner margin")
        return self


class OpeningHours(BaseModel):
    """When agents answer; outside these hours callers hear the after-hours message."""

    timezone: str = "Asia/Shanghai"
    #: ISO weekdays: 1 is Monday, 7 Sunday.
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    opens: str = "00:00"
    closes: str = "24:00"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from core.hours import check_timezone

        return check_timezone(value)

    @field_validator("opens", "closes")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        from core.hours import parse_hhmm

        parse_hhmm(value, "opening hours")
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(not 1 <= d <= 7 for d in value):
            raise ValueError(f"days are ISO weekdays 1 (Monday) to 7 (Sunday), got {value}")
        return value


class QueueSettings(BaseModel):
    """Jurisdiction queues: where calls wait for agents, and how they climb the levels."""

    #: Route calls to agents through the queue engine (off: callers are told they are
    #: queued and held, as before the engine existed).
    enabled: bool = True
    #: Jurisdiction of a call whose line, number and words say nothing (national).
    default_jurisdiction: str = "000000"
    #: Grassroots stations (TOML, ``[[station]]`` code/name/county); none by default.
    stations_file: Path | None = None
    #: Seconds a call waits at a level before it is also offered one level up; the last
    #: value repeats for the levels above. A level with nobody logged in is skipped at once.
    overflow_after_s: list[float] = Field(default_factory=lambda: [60.0, 90.0, 120.0, 180.0])
    #: Seconds between position and estimated-wait announcements to a waiting caller.
    announce_every_s: float = Field(default=45.0, gt=0)
    #: Seconds an agent's phone rings before the call goes to the next agent.
    ring_timeout_s: int = Field(default=20, ge=1, le=300)
    #: Agent wrap-up after a call (seconds) before the next offer.
    wrap_up_s: float = Field(default=10.0, ge=0)
    #: A caller who hung up while waiting and calls again within this many minutes (same
    #: number, same line) gets their old place back. 0 turns it off.
    resume_place_min: float = Field(default=10.0, ge=0)
    #: Waiting callers may ask to be called back when their turn comes, keeping their place.
    callback_offer: bool = True
    #: The trunk (pjsip.conf endpoint) that calls callers back, and how often it tries.
    callback_trunk: str = "carrier"
    callback_attempts: int = Field(default=3, ge=1, le=10)
    callback_retry_s: float = Field(default=120.0, ge=0)
    #: Answered around the clock by default; a centre with hours sets them here.
    hours: OpeningHours = OpeningHours()


class HttpSettings(BaseModel):
    """Our own HTTP API (intake, and the agent desktop's). Port 0 takes any free port."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: Session cookies only over HTTPS. Off in the test and demo profiles (plain http on loopback).
    secure_cookies: bool = True
    #: Logged-in sessions end after this long without a request.
    session_idle_s: int = Field(default=8 * 3600, ge=60)
    #: Reverse proxies (CIDRs) whose ``X-Forwarded-For`` is believed: the client is the
    #: rightmost address in it that is not one of them. Empty: the peer is the client.
    trusted_proxies: list[str] = []
    #: Failed logins for one username from one client address before each further one makes
    #: the next try wait: ``login_delay_s`` doubling per failure, up to ``login_delay_max_s``.
    #: A wrong guess thus slows that pair only, never the user elsewhere nor the address's others.
    login_attempts: int = Field(default=5, ge=1)
    login_delay_s: float = Field(default=1.0, gt=0)
    login_delay_max_s: float = Field(default=900.0, gt=0)
    #: A pair's failures are forgotten this long after its last one (and its wait, if longer).
    login_window_s: int = Field(default=900, ge=1)
    #: Failures for one username from addresses it never logged in from, before those
    #: addresses are delayed too (guessing from many addresses); its known addresses are not.
    login_user_attempts: int = Field(default=20, ge=1)
    #: The coarse ceiling per client address, whatever the usernames: failed logins within
    #: ``login_address_window_s``. High, so that a centre of hundreds behind one NAT is never
    #: stopped by its own typing; it stops spraying passwords over many accounts.
    login_address_failures: int = Field(default=1000, ge=1)
    login_address_window_s: int = Field(default=600, ge=1)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        bad = []
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                bad.append(item)
        if bad:
            raise ValueError(f"trusted_proxies are addresses or CIDRs (10.0.0.0/8, ::1); not {', '.join(bad)}")
        return [item.strip() for item in value]

    @model_validator(mode="after")
    def _delays(self) -> HttpSettings:
        if self.login_delay_max_s < self.login_delay_s:
            raise ValueError(f"login_delay_max_s ({self.login_delay_max_s}) must not be below "
                             f"login_delay_s ({self.login_delay_s})")
        return self


class AccountsSettings(BaseModel):
    """Secrets of the accounts kept in the database."""

    #: Key (32 bytes, base64) that encrypts the agents' SIP secrets at rest. Not given: read
    #: from ``<var_dir>/secret.key``, which is made (mode 0600) the first time it is needed.
    #: Keep it with the backups of the database, apart from them: without it the SIP secrets
    #: cannot be read; with it and a stolen database, they can.
    secret_key: SecretStr | None = None


class DesktopSettings(BaseModel):
    """The agent desktop and the wallboard."""

    #: ``sip``: the browser registers to Asterisk over WSS with SIP.js and answers there.
    #: ``simulated``: no media (the demo, tests): the desktop answers through our API.
    phone_mode: Literal["sip", "simulated"] = "sip"
    #: Asterisk's WebSocket for SIP (pjsip transport-wss), as the browser reaches it.
    sip_ws_url: str = "wss://asterisk.example:8089/ws"
    sip_domain: str = "asterisk.example"
    #: Show agents the caller's full number (otherwise masked: 138****8000).
    show_full_number: bool = False
    #: A ticket is "near its deadline" on the wallboard this many working days before it.
    deadline_warning_days: int = Field(default=2, ge=0)


class PlatformSettings(BaseModel):
    """The national 12315 platform (``../shared/national-platform/openapi.yaml``) and our
    delivery to it through the outbox."""

    #: Base URL; the contract's paths (``/v1/cases``) are appended to it.
    url: str = "http://127.0.0.1:8090/api"
    org_code: str = "DEMO330100"
    #: The shared secret the platform issued; set it through HOTLINE_PLATFORM__SECRET.
    secret: str = "demo-secret"
    timeout_s: float = 10.0
    #: Delivery workers in this process (each sends up to ``concurrency`` requests at once).
    workers: int = 1
    concurrency: int = 32
    #: Rows one claim takes; a claimed row is leased, so a killed worker's rows come back.
    claim_batch: int = 64
    lease_s: float = 60.0
    #: Backoff between attempts: full jitter up to ``base * 2**attempt``, capped; a
    #: ``Retry-After`` is a floor.
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    #: After this many failed attempts of a retryable kind, a row is dead-lettered.
    max_attempts: int = 200
    #: How often an idle worker looks for due rows (new rows also wake it in-process).
    poll_s: float = 1.0
    #: While delivery is halted (the platform refuses our credentials or URL: 401, 403, 404),
    #: one row is tried this often to notice the fix; a process started with another
    #: configuration tries at once.
    probe_s: float = Field(default=30.0, gt=0)
    #: A hotline case completed during its call waits for the call's recording (its hash and
    #: duration go with the case), but never longer than this.
    hold_for_recording_s: float = 3600.0
    enabled: bool = True


#: Years recordings are kept by default, per case type of their call's tickets.
DEFAULT_RETENTION_YEARS: dict[str, int] = {"complaint": 3, "report": 3, "consultation": 1, "no_ticket": 1}


class RecordingSettings(BaseModel):
    """Call recordings: captured in Asterisk, kept under ``root``, heard only by those allowed."""

    #: Record every answered call (the IVR tells callers so).
    enabled: bool = True
    #: Where verified recordings are kept: ``<root>/<YYYY>/<MM>/<DD>/<jurisdiction>/<call>-<segment>.wav``;
    #: unset: ``<var_dir>/recordings``.
    root: Path | None = None
    #: What Asterisk records; WAV is what the browser plays and what durations are read from.
    format: Literal["wav"] = "wav"
    #: The dates of the layout are this zone's (the centre's working day, not UTC's).
    timezone: str = "Asia/Shanghai"
    #: Fetch each finished file over ARI (``GET /recordings/stored/{name}/file``), so that it
    #: works when Asterisk runs on another host. Off: read it from ``spool_dir`` (Asterisk's
    #: ``recording`` spool, on this host or a shared file system).
    fetch_from_ari: bool = True
    spool_dir: Path | None = None
    #: Years a recording is kept, per case type of the tickets of its call (the longest wins);
    #: ``no_ticket`` for calls that produced none.
    retention_years: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_RETENTION_YEARS))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from core.hours import check_timezone

        return check_timezone(value)

    @field_validator("retention_years")
    @classmethod
    def _retention(cls, value: dict[str, int]) -> dict[str, int]:
        known = tuple(DEFAULT_RETENTION_YEARS)
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"retention_years: unknown case type(s) {', '.join(unknown)}; "
                             f"the keys are {', '.join(known)}")
        short = sorted(k for k, years in value.items() if years < 1)
        if short:
            raise ValueError(f"retention_years: {', '.join(short)} must be kept at least 1 year")
        # A file that names one case type keeps the defaults of the others.
        return {**DEFAULT_RETENTION_YEARS, **value}


class CallRecordSettings(BaseModel):
    """How the calls' records are written; and the call records of the calls Asterisk serves
    without the application (the fallback while it is down, numbers that are not ours):
    Asterisk's CDRs, imported from the file ``dialplans/cdr_custom.conf`` makes it write."""

    #: That file as this host reads it: ``<astlogdir>/cdr-custom/hotline-cdr.csv`` on the
    #: Asterisk host (``/var/log/asterisk/cdr-custom/hotline-cdr.csv``), here or on a shared file
    #: system. ``hotline serve`` follows it when set; unset, those calls are not imported.
    cdr_file: Path | None = None
    #: Seconds between two looks at the file for new lines.
    cdr_poll_s: float = Field(default=2.0, gt=0)
    #: The last call in the file is imported once the file has not changed for this long
    #: (Asterisk writes a call's CDR lines one after another when the call ends).
    cdr_settle_s: float = Field(default=3.0, ge=0)
    #: How long the call-record writer gathers ended calls before it commits them (with their
    #: rows for the national platform, which the delivery sends as soon as they are committed).
    #: A transaction found cold costs about 1.5 ms of CPU, a row in one a tenth of that: at one
    #: call a second on the real switch, 2 s cost the application 1.1-1.2 ms of CPU a call less
    #: than 0.5 s, and 4 s another 0.2-0.7 (simultaneous A/B runs, 2026-12-07); records reach the
    #: platform up to that much later. 0 writes each as soon as the writer is free.
    batch_delay_s: float = Field(default=4.0, ge=0, le=60)


class IntakeSettings(BaseModel):
    """Omni-channel intake: complaints from the web, WeChat and the app, one API key per channel.
    Keys are given as their SHA-256 (hex), so the settings file holds no usable secret."""

    api_key_sha256: dict[str, str] = {}


class AsteriskSettings(BaseModel):
    """The Asterisk that serves the hotline, as ``hotline asterisk install`` configures it.

    ARI's user and password come from ``[ari]``; the agents' SIP endpoints from their
    accounts (``hotline users add --endpoint PJSIP/1001 --sip-password``).
    """

    #: Asterisk's configuration directory (``astetcdir``) that the files are written into.
    etc_dir: Path = Path("/etc/asterisk")
    #: Asterisk's data directory (``astdatadir``): prompts go to ``sounds/<lang>/hotline``,
    #: music on hold to ``moh/hotline``.
    data_dir: Path = Path("/var/lib/asterisk")
    #: Address Asterisk's HTTP server (ARI, SIP over WebSocket) and SIP listen on.
    bind_host: str = "0.0.0.0"
    http_port: int = Field(default=8088, ge=1, le=65535)
    #: HTTPS and WSS for browsers; on when a certificate is given.
    https_port: int = Field(default=8089, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: SIP over UDP from the carrier.
    sip_port: int = Field(default=5060, ge=1, le=65535)
    #: The carrier's (or SBC's) SIP address: calls from it are trusted as the trunk.
    trunk_host: str = "198.51.100.10"
    trunk_port: int = Field(default=5060, ge=1, le=65535)
    #: RTP port range (open it in the firewall).
    rtp_start: int = Field(default=10000, ge=1024, le=65535)
    rtp_end: int = Field(default=20000, ge=1024, le=65535)
    #: A call whose media stopped this long (seconds) is hung up: a caller gone without a BYE
    #: must not keep caller, agent and recorder channels up for ever. On hold, longer.
    rtp_timeout_s: int = Field(default=30, ge=1)
    rtp_timeout_hold_s: int = Field(default=300, ge=1)
    #: Local address => address browsers reach, for ICE (rtp.conf ``[ice_host_candidates]``).
    ice_host_candidates: dict[str, str] = {}
    #: Agents' endpoints (``PJSIP/1001``) that are desk phones or plain SIP softphones, not the
    #: browser: they register over UDP with unencrypted RTP instead of WebRTC.
    desk_phones: list[str] = []
    @model_validator(mode="after")
    def _rtp_range(self) -> AsteriskSettings:
        if self.rtp_start >= self.rtp_end:
            raise ValueError(f"rtp_start ({self.rtp_start}) must be below rtp_end ({self.rtp_end})")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        return self


class OverloadSettings(BaseModel):
    """Load shedding: beyond what this process can hold, new calls are turned away on purpose
    (the dialplan's ``[hotline-shed]``: a busy message, a call record with outcome ``shed``)
    instead of failing calls at random. Calls in progress are never turned away. See
    calls/overload.py and README.md "Overload"."""

    #: New calls are turned away while this many calls are in progress in this process (0: no
    #: limit); taken again below 90 % of it. A ceiling, not the load signal: how much a machine
    #: can take is what the event delay below measures. 3,000 is above the 2,500 calls one process
    #: holds in menus in bench/ivr.py (so it never cuts calls a process was measured to carry) and
    #: stops a burst from piling more onto one process than that; set it to the trunk's channels
    #: or what your own load test held.
    max_calls: int = Field(default=3000, ge=0)
    #: New calls are turned away while the application handles Asterisk's events this many seconds
    #: later than Asterisk sent them (above the lowest delay of the last minute, so a clock skew
    #: between the hosts does not count); taken again below half of it (0: never for this reason).
    #: One second: a caller notices a prompt a second late, and Asterisk's queue of events for the
    #: application is growing (it warns at 500).
    max_event_delay_s: float = Field(default=1.0, ge=0)


class Settings(BaseSettings):
    """Everything configurable, grouped by concern."""

    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_", env_nested_delimiter="__", extra="forbid"
    )

    profile: Literal["production", "test", "demo"] = "production"
    log_level: str = "INFO"
    var_dir: Path = DEFAULT_VAR_DIR
    ari: AriSettings = AriSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    ivr: IvrSettings = IvrSettings()
    speech: SpeechSettings = SpeechSettings()
    queues: QueueSettings = QueueSettings()
    http: HttpSettings = HttpSettings()
    accounts: AccountsSettings = AccountsSettings()
    platform: PlatformSettings = PlatformSettings()
    intake: IntakeSettings = IntakeSettings()
    desktop: DesktopSettings = DesktopSettings()
    recordings: RecordingSettings = RecordingSettings()
    callrecords: CallRecordSettings = CallRecordSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    overload: OverloadSettings = OverloadSettings()

    @model_validator(mode="after")
    def _recordings_under_var_dir(self) -> Settings:
        # Beside the database and the sounds, wherever var_dir is (the demo and tests move it).
        if self.recordings.root is None:
            self.recordings.root = self.var_dir / "recordings"
        # Speech models too, unless a models_dir was given (the default names var/ itself).
        if "models_dir" not in self.speech.model_fields_set:
            self.speech.models_dir = self.var_dir / "models"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats explicit init values (which carry the TOML file and profile).
        return (env_settings, init_settings)


#: Values the ``test`` profile changes: short timeouts so that tests run fast.
TEST_PROFILE: dict[str, Any] = {
    "profile": "test",
    "log_level": "DEBUG",
    "ivr": {"no_input_timeout_s": 0.3, "check_media": False},
    # Loading a speech model takes seconds: tests that test speech turn it on themselves.
    "speech": {"enabled": False},
    "ari": {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.5},
    # No platform is listening in most tests: ended calls still go into the outbox, and the
    # delivery tests start a platform stand-in and workers themselves.
    "platform": {"enabled": False},
    # Many applications run at once in tests: each takes a free port.
    "http": {"port": 0, "secure_cookies": False},
    # A fixed key: tests write no key file under the working directory's var/. Never for production.
    "accounts": {"secret_key": "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="},
    "desktop": {"phone_mode": "simulated"},
    # Recordings would land under var/ of the working directory: the recording tests turn
    # them on with a root of their own.
    "recordings": {"enabled": False},
    # A busy test machine may handle an event a second late: only the overload tests shed on it.
    "overload": {"max_event_delay_s": 0.0},
}

#: Values the ``demo`` profile changes: everything on loopback, no Asterisk media.
DEMO_PROFILE: dict[str, Any] = {
    "profile": "demo",
    "ivr": {"check_media": False},
    "http": {"secure_cookies": False},
    "desktop": {"phone_mode": "simulated"},
}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class SettingsError(ValueError):
    """A settings file that cannot be read or does not fit the schema. Its message is one line
    per problem, naming the setting as the operator wrote it (the environment variable, or the
    file's ``[section] key``), the value (masked if secret) and what is allowed."""


#: Environment variables of the project that are not settings: the settings file, and what the
#: scripts and test tools around the product read. Known, so that they are not warned about.
OTHER_VARIABLES = frozenset({
    "HOTLINE_CONFIG", "HOTLINE_ARI_DECLARATIONS", "HOTLINE_PLATFORM_CONTRACT", "HOTLINE_ASTERISK_SHARED",
    "HOTLINE_SKIP_POSTGRES", "HOTLINE_SKIP_BROWSER",
})

#: Setting names whose values are never repeated in a message.
_SECRET_NAMES = frozenset({"password", "secret", "secret_key", "api_key_sha256"})


def _section_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The model of ``model``'s field ``name`` when that field is a section of its own."""
    field = model.model_fields.get(name)
    annotation = field.annotation if field is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_table(model: type[BaseModel], name: str) -> bool:
    """Whether the field is a free-form table (its keys are data, not setting names)."""
    field = model.model_fields.get(name)
    return field is not None and getattr(field.annotation, "__origin__", None) is dict


def _setting_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name in model.model_fields:
        path = (*prefix, name)
        paths.append(path)
        section = _section_model(model, name)
        if section is not None:
            paths.extend(_setting_paths(section, path))
    return paths


def _env_name(path: tuple[str, ...]) -> str:
    return "HOTLINE_" + "__".join(path).upper()


def unknown_environment(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """One warning per ``HOTLINE_*`` variable that is neither a setting nor one of
    :data:`OTHER_VARIABLES`: a misspelt variable would otherwise be ignored without a word."""
    paths = _setting_paths(Settings)
    known = {_env_name(p) for p in paths} | OTHER_VARIABLES
    # A free-form table's entries are variables of their own (HOTLINE_RECORDINGS__RETENTION_YEARS__REPORT).
    tables = tuple(_env_name(p) + "__" for p in paths if _is_table(_parent_model(p), p[-1]))
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("HOTLINE_") or upper in known or upper.startswith(tables):
            continue
        # Compared without the prefix they all share, which would make any two look alike.
        close = difflib.get_close_matches(upper.removeprefix("HOTLINE_"),
                                          sorted(k.removeprefix("HOTLINE_") for k in known), n=1, cutoff=0.75)
        hint = (f"; did you mean HOTLINE_{close[0]}?" if close
                else " (settings are HOTLINE_<SECTION>__<NAME>, e.g. HOTLINE_HTTP__PORT)")
        warnings.append(f"warning: environment variable {name} is not a setting and is ignored{hint}")
    return warnings


def _parent_model(path: tuple[str, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Settings
    for name in path[:-1]:
        section = _section_model(model, name)
        assert section is not None
        model = section
    return model


def _where_in_file(path: tuple[str, ...], file: Path) -> str:
    if len(path) == 1:
        return f"{path[0]} in {file}"
    return f"[{'.'.join(path[:-1])}] {path[-1]} in {file}"


def _unknown_keys(values: dict[str, Any], file: Path, model: type[BaseModel] = Settings,
                  prefix: tuple[str, ...] = ()) -> list[str]:
    """The keys of a settings file that are no setting: refused rather than ignored, since the
    operator who wrote one believes it in force (a misspelt ``secure_cookes`` would leave
    cookies insecure without a word)."""
    problems = []
    for key, value in values.items():
        path = (*prefix, key)
        if key not in model.model_fields:
            close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
            what = f"[{'.'.join(path)}] in {file} is not a section" if isinstance(value, dict) else \
                f"{_where_in_file(path, file)} is not a setting"
            hint = f"; did you mean {close[0]}?" if close else f"; the {'settings' if prefix else 'keys'} here are: " \
                f"{', '.join(model.model_fields)}"
            problems.append(what + hint)
            continue
        section = _section_model(model, key)
        if section is not None and isinstance(value, dict):
            problems.extend(_unknown_keys(value, file, section, path))
    return problems


def _has(values: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = values
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return True


def _env_lookup(environ: dict[str, str], path: tuple[str, ...]) -> str | None:
    """The variable that gave the setting at ``path`` (itself, or a section given as JSON)."""
    for end in range(len(path), 0, -1):
        name = _env_name(path[:end])
        if name in environ:
            return name
    return None


def _mask(path: tuple[str, ...], value: object) -> str:
    if any(part in _SECRET_NAMES for part in path) or isinstance(value, SecretStr):
        return "'****'"
    # A URL's password (postgresql+asyncpg://user:pass@host/db, redis://:pass@host) never shows.
    return mask_url(repr(value))


def _range(path: tuple[str, ...]) -> str:
    """``from 0 to 65535`` for a field with bounds, else ``""``."""
    try:
        model = _parent_model(path)
    except AssertionError:
        return ""
    field = model.model_fields.get(path[-1])
    if field is None:
        return ""
    low = high = None
    for bound in field.metadata:
        low = getattr(bound, "ge", None) if getattr(bound, "ge", None) is not None else low
        low = f"more than {bound.gt}" if getattr(bound, "gt", None) is not None else low
        high = getattr(bound, "le", None) if getattr(bound, "le", None) is not None else high
    if isinstance(low, str):
        return low + (f", at most {high}" if high is not None else "")
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if low is not None:
        return f"at least {low}"
    return f"at most {high}" if high is not None else ""


def _allowed(error: Any, path: tuple[str, ...]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    bounds = _range(path)
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number" + (f", {bounds}" if bounds else "")
    if kind in ("float_parsing", "float_type"):
        return "must be a number" + (f", {bounds}" if bounds else "")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"must be {bounds}" if bounds else str(error["msg"]).lower()
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "json_invalid":
        return "must be JSON here (a list as [1, 2], a table as {\"key\": \"value\"})"
    if kind == "list_type":
        return "must be a list"
    if kind in ("dict_type", "model_type"):
        return "must be a table of settings"
    if kind == "string_type":
        return "must be text"
    if kind == "extra_forbidden":
        return "is not a setting"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def describe_errors(exc: ValidationError, *, environ: dict[str, str], file_values: dict[str, Any],
                    file: Path | None) -> list[str]:
    """One line per problem: where the operator wrote the setting, the value, what is allowed."""
    lines = []
    for error in exc.errors():
        path = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
        variable = _env_lookup(environ, path)
        if variable is not None:
            where = variable
        elif file is not None and _has(file_values, path):
            where = (f"[{path[0]}] in {file}" if len(path) == 1 and _section_model(Settings, path[0])
                     else _where_in_file(path, file))
        else:
            where = f"setting {'.'.join(path)}" if len(path) != 1 or _section_model(Settings, path[0]) is None \
                else f"settings [{path[0]}]"
        value = error.get("input")
        # A whole section (a model validator's complaint) is not repeated: the message names its fields.
        shown = "" if isinstance(value, dict | BaseModel) else f" = {_mask(path, value)}"
        lines.append(f"{where}{shown}: {_allowed(error, path)}")
    return lines


def _bad_json(environ: dict[str, str], message: str) -> str:
    """The variable whose value should have been JSON (a list, a table or a whole section)."""
    match = re.search(r'field "([a-z_]+)"', message)
    prefix = _env_name((match.group(1),)) if match else "HOTLINE_"
    paths = set(_setting_paths(Settings))
    for name in sorted(environ):
        path = tuple(name.removeprefix("HOTLINE_").lower().split("__"))
        if not (name == prefix or name.startswith(prefix + "__")) or path not in paths or _is_scalar(path):
            continue
        try:
            json.loads(environ[name])
        except ValueError:
            return (f"{name} = {_mask(path, environ[name])}: must be JSON here "
                    f"(a list as [\"a\", \"b\"], a table as {{\"key\": 1}})")
    return f"{prefix}: cannot be read ({message})"


def _is_scalar(path: tuple[str, ...]) -> bool:
    model = _parent_model(path)
    if _section_model(model, path[-1]) is not None:
        return False
    return getattr(model.model_fields[path[-1]].annotation, "__origin__", None) not in (list, dict)


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults, profile, TOML file, overrides, environment.

    :class:`SettingsError` for a file that is missing, not TOML or names no setting, and for a
    value that does not fit (from the file or the environment), never pydantic's traceback."""
    values: dict[str, Any] = {}
    environ = {name.upper(): value for name, value in os.environ.items() if name.upper().startswith("HOTLINE_")}
    profile = environ.get("HOTLINE_PROFILE", overrides.get("profile"))
    if profile == "test":
        values = _deep_merge(values, TEST_PROFILE)
    elif profile == "demo":
        values = _deep_merge(values, DEMO_PROFILE)
    given = config or environ.get("HOTLINE_CONFIG")
    path = Path(given) if given else None
    file_values: dict[str, Any] = {}
    if path is not None:
        origin = "--config" if config else "HOTLINE_CONFIG"
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"settings file {path} ({origin}) does not exist") from None
        except IsADirectoryError:
            raise SettingsError(f"settings file {path} ({origin}) is a directory, not a TOML file") from None
        except PermissionError:
            raise SettingsError(f"settings file {path} ({origin}) cannot be read: permission denied") from None
        except UnicodeDecodeError:
            raise SettingsError(f"settings file {path} ({origin}) is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
        unknown = _unknown_keys(file_values, path)
        if unknown:
            raise SettingsError("\n".join(unknown))
        values = _deep_merge(values, file_values)
    values = _deep_merge(values, overrides)
    try:
        return Settings(**values)
    except EnvParsingError as exc:
        # A list or table given in the environment must be JSON; pydantic-settings names only the section.
        raise SettingsError(_bad_json(environ, str(exc))) from None
    except ValidationError as exc:
        raise SettingsError("\n".join(describe_errors(exc, environ=environ, file_values=file_values,
                                                      file=path))) from None
