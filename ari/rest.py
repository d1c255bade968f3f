"""Our thin, typed client for the ARI REST resources (commands go out here, only here).

Each method maps to one ARI operation with Asterisk 22's parameter names. Errors are
raised as the classes in :mod:`ari.errors`, so that call flows can treat the
usual races (404 after a hang-up, 409 out of Stasis) as the normal events they are.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
import orjson
import yarl

from ari.errors import error_for
from ari.http import HttpFailure, KeptAliveClient
from ari.models import (
    Application,
    AsteriskInfo,
    Bridge,
    Channel,
    Endpoint,
    LiveRecording,
    Playback,
    StoredRecording,
)

log = logging.getLogger(__name__)

Query = dict[str, str | Sequence[str]]


def _sources(event_source: str | Sequence[str]) -> list[str]:
    return [event_source] if isinstance(event_source, str) else list(event_source)


def _query(**params: Any) -> list[tuple[str, str]]:
    """ARI query parameters; ``None`` is left out, sequences become one comma-separated value.

    Never a repeated key: Asterisk keeps only the last value of a parameter given twice,
    so ``media=sound:a&media=sound:b`` would play ``b`` alone (FIELD-NOTES).
    """
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        elif isinstance(value, (list, tuple)):
            out.append((key, ",".join(str(v) for v in value)))
        else:
            out.append((key, str(value)))
    return out


#: A path yarl would leave as it is (kept characters, upper-case escapes, no dot segments).
_PLAIN_PATH = re.compile(r"(?:[A-Za-z0-9!$&'()*+,\-.:;=@_~/]|%[0-9A-F]{2})*")
#: A query key or value yarl would leave as it is.
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9!$'()*,\-./:?@_~]*")


def request_target(base: str, path: str, params: list[tuple[str, str]] | None) -> str:
    """``base`` + ``path`` and the query, encoded as aiohttp (yarl) encodes a URL: an id its
    caller escaped (a sound's "a%2Fb") stays so, anything else unsafe is escaped.

    Why not yarl every time: parsing and re-encoding a URL was 3 % of the application's CPU
    (a whole call makes ten requests, issue 15) for targets that are plain ASCII ids and sound
    names nearly always. Those are joined as they are; anything else goes through yarl.
    """
    full = base + path
    plain = _PLAIN_PATH.fullmatch(full) is not None and "/." not in full
    if plain and params:
        plain = all(_PLAIN_QUERY.fullmatch(k) and _PLAIN_QUERY.fullmatch(v) for k, v in params)
    if plain:
        return full + "?" + "&".join(f"{k}={v}" for k, v in params) if params else full
    url = yarl.URL("http://host" + full)  # the host is no part of the target
    return (url.with_query(params) if params else url).raw_path_qs


class AriRest:
    """REST half of the ARI client. The session is injected so its lifetime is the app's."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout_s: float = 5.0,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/ari"
        self._base_path = yarl.URL(self._base).raw_path
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._auth_line = f"Authorization: Basic {token}\r\n"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        #: The requests' own connections (ari/http.py: aiohttp's client cost a tenth of the
        #: application's CPU per call); the session above is for downloads.
        self._http = KeptAliveClient(base_url)
        #: (application, event source) pairs this client subscribed since the last
        #: :meth:`forget_subscriptions` (see :meth:`follows`).
        self._subscribed: set[tuple[str, str]] = set()

    # --- transport ------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON (``None`` for 204).

        ``Any`` because the shape depends on the operation: each method below states the
        ARI model it gets, a parsed one (``Channel.from_json``) or the JSON as it came
        (a ``TypedDict`` named after the declaration's model).
        """
        target = request_target(self._base_path, path, params)
        payload = orjson.dumps(body) if body is not None else b""
        try:
            answer = await self._http.request(method, target, headers=self._auth_line, body=payload,
                                              content_type="application/json" if body is not None else None,
                                              timeout_s=self._timeout_s)
        except (TimeoutError, HttpFailure) as exc:
            raise error_for(method, path, 0, f"{type(exc).__name__}: {exc}") from exc
        if answer.status == 204:
            return None
        if answer.status >= 400:
            raise error_for(method, path, answer.status, _message(answer.body.decode("utf-8", "replace")))
        return orjson.loads(answer.body) if answer.body else None

    async def close(self) -> None:
        """Close the requests' connections (the session is its owner's to close)."""
        await self._http.close()

    async def __aenter__(self) -> AriRest:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def read_bytes(self, path: str, *, timeout_s: float | None = None) -> bytes:
        url = self._base + path
        timeout = self._timeout if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._session.get(url, headers=self._headers, timeout=timeout) as resp:
                if resp.status >= 400:
                    raise error_for("GET", path, resp.status, _message(await resp.text()))
                return await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise error_for("GET", path, 0, f"{type(exc).__name__}: {exc}") from exc

    # --- asterisk / applications ------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        info: AsteriskInfo = await self.request("GET", "/asterisk/info")
        return info

    async def applications(self) -> list[Application]:
        apps: list[Application] = await self.request("GET", "/applications")
        return apps

    async def subscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        """Subscribe ``app`` to ``endpoint:PJSIP/1001`` (one phone) or ``endpoint:PJSIP`` (all).

        Returns the Application. Its events (``EndpointStateChange``) then come on the
        events WebSocket; subscribe again after every reconnect (the ``on_connect``
        callback), since a new connection does not inherit the old one's subscriptions.
        """
        subscribed: Application = await self.request(
            "POST", f"/applications/{app}/subscription", _query(eventSource=event_source))
        self._subscribed.update((app, source) for source in _sources(event_source))
        return subscribed

    def follows(self, app: str, event_source: str) -> bool:
        """Whether this client subscribed ``app`` to ``event_source`` (and has not unsubscribed
        it) since the last :meth:`forget_subscriptions`. False says only "not known": Asterisk
        counts subscriptions, and a source subscribed elsewhere is not seen here."""
        return (app, event_source) in self._subscribed

    def forget_subscriptions(self) -> None:
        """At every (re)connect, before the features subscribe again: a restarted Asterisk
        has forgotten the application's subscriptions."""
        self._subscribed.clear()

    async def filter_events(self, app: str, allowed: Iterable[str]) -> Application:
        """Have Asterisk send ``app`` only events of the ``allowed`` types (and no list of
        disallowed ones). Asterisk keeps the filter with the application, not the connection."""
        filtered: Application = await self.request(
            "PUT", f"/applications/{app}/eventFilter",
            body={"allowed": [{"type": kind} for kind in sorted(allowed)], "disallowed": []})
        return filtered

    async def unsubscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        self._subscribed.difference_update((app, source) for source in _sources(event_source))
        unsubscribed: Application = await self.request(
            "DELETE", f"/applications/{app}/subscription", _query(eventSource=event_source))
        return unsubscribed

    # --- endpoints --------------------------------------------------------------

    async def endpoints(self) -> list[Endpoint]:
        return [Endpoint.from_json(e) for e in await self.request("GET", "/endpoints")]

    async def endpoint(self, tech: str, resource: str) -> Endpoint:
        """One endpoint (``endpoint("PJSIP", "1001")``); ``state`` "online" when it is registered."""
        return Endpoint.from_json(await self.request("GET", f"/endpoints/{tech}/{resource}"))

    # --- channels ---------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels")]

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.request("GET", f"/channels/{channel_id}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str | None = None) -> None:
        await self.request("DELETE", f"/channels/{channel_id}", _query(reason=reason))

    async def play(
        self,
        channel_id: str,
        media: Iterable[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        """Play one or more media URIs in order, as a single playback (one ``media=a,b``).

        Events: ``PlaybackStarted`` per media, ``PlaybackContinuing`` between them, and one
        ``PlaybackFinished`` after the last, all with this playback's id.
        """
        params = _query(media=list(media), lang=lang, playbackId=playback_id)
        return Playback.from_json(await self.request("POST", f"/channels/{channel_id}/play", params))

    async def get_playback(self, playback_id: str) -> Playback:
        """A playback still playing (or queued); 404 once it has finished."""
        return Playback.from_json(await self.request("GET", f"/playbacks/{playback_id}"))

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def send_dtmf(self, channel_id: str, dtmf: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/dtmf", _query(dtmf=dtmf))

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", _query(mohClass=moh_class))

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def hold(self, channel_id: str) -> None:
        """Indicate hold to the channel (a PJSIP channel then plays music on hold to its caller)."""
        await self.request("POST", f"/channels/{channel_id}/hold")

    async def unhold(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/hold")

    async def mute(self, channel_id: str, direction: str = "both") -> None:
        """Mute audio ``in`` from the channel, ``out`` to it, or ``both``."""
        await self.request("POST", f"/channels/{channel_id}/mute", _query(direction=direction))

    async def unmute(self, channel_id: str, direction: str = "both") -> None:
        await self.request("DELETE", f"/channels/{channel_id}/mute", _query(direction=direction))

    async def get_variable(self, channel_id: str, variable: str) -> str:
        data = await self.request("GET", f"/channels/{channel_id}/variable", _query(variable=variable))
        return str(data.get("value", ""))

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request(
            "POST", f"/channels/{channel_id}/variable", _query(variable=variable, value=value)
        )

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/continue",
            _query(context=context, extension=extension, priority=priority, label=label),
        )

    async def originate(
        self,
        endpoint: str,
        *,
        app: str,
        app_args: Sequence[str] = (),
        caller_id: str | None = None,
        timeout_s: int = 30,
        channel_id: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        params = _query(
            endpoint=endpoint,
            app=app,
            appArgs=",".join(app_args) if app_args else None,
            callerId=caller_id,
            timeout=timeout_s,
            channelId=channel_id,
        )
        body = {"variables": variables} if variables else None
        return Channel.from_json(await self.request("POST", "/channels", params, body))

    async def external_media(
        self,
        *,
        app: str,
        external_host: str,
        format: str,
        channel_id: str | None = None,
        transport: str = "udp",
        encapsulation: str = "rtp",
        direction: str | None = None,
    ) -> Channel:
        params = _query(
            app=app,
            external_host=external_host,
            format=format,
            channelId=channel_id,
            transport=transport,
            encapsulation=encapsulation,
            direction=direction,
        )
        return Channel.from_json(await self.request("POST", "/channels/externalMedia", params))

    async def snoop(
        self,
        channel_id: str,
        *,
        app: str,
        spy: str = "both",
        whisper: str = "none",
        app_args: Sequence[str] = (),
        snoop_id: str | None = None,
    ) -> Channel:
        params = _query(
            app=app,
            spy=spy,
            whisper=whisper,
            appArgs=",".join(app_args) if app_args else None,
            snoopId=snoop_id,
        )
        return Channel.from_json(await self.request("POST", f"/channels/{channel_id}/snoop", params))

    async def record_channel(self, channel_id: str, name: str, fmt: str = "wav") -> LiveRecording:
        params = _query(name=name, format=fmt, ifExists="fail")
        return LiveRecording.from_json(
            await self.request("POST", f"/channels/{channel_id}/record", params)
        )

    # --- bridges ----------------------------------------------------------------

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self.request("GET", "/bridges")]

    async def create_bridge(
        self, *, bridge_id: str | None = None, name: str | None = None, bridge_type: str = "mixing"
    ) -> Bridge:
        params = _query(type=bridge_type, bridgeId=bridge_id, name=name)
        return Bridge.from_json(await self.request("POST", "/bridges", params))

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def add_channel(self, bridge_id: str, *channel_ids: str, role: str | None = None) -> None:
        """Put ``channel_ids`` into the bridge, in that order, with one request (Asterisk checks
        them all before it adds any: a missing one fails the request, 404/422, and adds none)."""
        await self.request(
            "POST", f"/bridges/{bridge_id}/addChannel", _query(channel=list(channel_ids), role=role)
        )

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel", _query(channel=channel_id))

    async def play_on_bridge(
        self, bridge_id: str, media: Iterable[str], *, playback_id: str | None = None, lang: str | None = None
    ) -> Playback:
        params = _query(media=list(media), lang=lang, playbackId=playback_id)
        return Playback.from_json(await self.request("POST", f"/bridges/{bridge_id}/play", params))

    async def bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/moh", _query(mohClass=moh_class))

    async def record_bridge(
        self, bridge_id: str, name: str, fmt: str = "wav", *, beep: bool = False
    ) -> LiveRecording:
        params = _query(name=name, format=fmt, ifExists="fail", beep=beep)
        return LiveRecording.from_json(await self.request("POST", f"/bridges/{bridge_id}/record", params))

    # --- recordings -------------------------------------------------------------

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{name}/stop")

    async def live_recording(self, name: str) -> LiveRecording:
        return LiveRecording.from_json(await self.request("GET", f"/recordings/live/{name}"))

    async def stored_recording(self, name: str) -> StoredRecording:
        """``{"name", "format"}`` of a finished recording still in Asterisk's spool."""
        stored: StoredRecording = await self.request("GET", f"/recordings/stored/{name}")
        return stored

    async def stored_recording_file(self, name: str, *, timeout_s: float | None = None) -> bytes:
        """The file's bytes. An hour of WAV is 57 MB: callers give a timeout that fits."""
        return await self.read_bytes(f"/recordings/stored/{name}/file", timeout_s=timeout_s)

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{name}")


def _message(text: str) -> str:
    """The text of an ARI error; the raw text when it is not one.

    Asterisk answers errors with ``{"message": "..."}``, except when it could not allocate
    something, e.g. a channel to a phone with no registered contact: then it is
    ``{"error": "Allocation failed"}`` (FIELD-NOTES).
    """
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(data, dict):
        for key in ("message", "error"):
            if key in data:
                return str(data[key])
    return text.strip()[:200]
