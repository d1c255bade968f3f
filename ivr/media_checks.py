"""At every connect to Asterisk: will callers hear what the IVR plays? Said loudly if not.

Two faults of an Asterisk installation are silent on the call path: a prompt or number file
that is not installed (a ``number:N`` in Chinese is then simply skipped, a prompt's
playback fails and the caller hears nothing), and a music on hold class with no music
(``POST /moh`` answers 204 all the same, and waiting callers hear silence; FIELD-NOTES).
Nobody on a call can tell the operator, so the application checks, after every (re)connect:

* **sounds**: ``GET /sounds/{id}`` for every prompt (``hotline/<name>``) and every number
  file (``digits/<name>``) of the IVR's locale. Asterisk rebuilds its sounds index for each
  such request, so what it answers is what a playback would find now. A sound counts as
  present in the languages Asterisk tries for the channel language (``main/file.c``,
  ``fileexists_core``: ``zh_CN``, then ``zh``); one found only in the default ``en`` plays
  in English, which is said as a warning.
* **music on hold**: ARI cannot list the classes, so the class is played for real: an
  externalMedia channel sending μ-law RTP to a UDP socket of ours, music on hold started on
  it with the class, and music must arrive (non-silent audio) within a couple of seconds.

All of it runs in a background task, bounded in time, never on a call's path; its last
result is :attr:`MediaChecks.last` (``healthy`` for health and metrics).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from ari.errors import AriError, AriNotFound, AriNotInStasis
from ari.rest import AriRest
from core.settings import Settings
from ivr.prompts.catalogue import PromptCatalogue, asterisk_language

log = logging.getLogger(__name__)

#: What an operator runs to put the prompts, number files and music where Asterisk reads them.
INSTALL_COMMAND = "hotline asterisk install"
#: The music on hold class that command writes (dialplans/musiconhold.conf, pbx_config/moh.py).
INSTALLED_MOH_CLASS = "hotline"
#: Asterisk's default language: where it looks last for a sound (``DEFAULT_LANGUAGE``).
DEFAULT_LANGUAGE = "en"
#: Channel ids of the music check: recognisable in ``core show channels`` and in our logs.
CHANNEL_PREFIX = "hotline-media-check-"
#: A 20 ms μ-law packet counts as sound above this RMS (about -50 dBFS; silence decodes to 0).
_SILENCE_RMS = 100.0
#: Packets of sound (20 ms each) that make music audible: a click or one noisy packet does not.
_AUDIBLE_PACKETS = 5


def _ulaw_sample(byte: int) -> int:
    """One G.711 μ-law byte as a 16-bit linear sample."""
    u = ~byte & 0xFF
    magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
    return -magnitude if u & 0x80 else magnitude


#: μ-law byte -> linear sample (a constant table, computed once).
_ULAW = tuple(_ulaw_sample(b) for b in range(256))


def ulaw_rms(payload: bytes) -> float:
    if not payload:
        return 0.0
    return math.sqrt(sum(_ULAW[b] ** 2 for b in payload) / len(payload))


def lookup_languages(language: str) -> list[str]:
    """The languages Asterisk tries for a sound, in order, for a channel language:
    ``zh_CN`` -> ``zh_CN``, ``zh``, then (no language, which the sounds index cannot show)
    the default ``en``."""
    order = own_languages(language)
    return order if DEFAULT_LANGUAGE in order else [*order, DEFAULT_LANGUAGE]


def own_languages(language: str) -> list[str]:
    """The channel language and its parents (``zh_CN``, ``zh``): a sound found in one of
    them is heard in the caller's language."""
    order: list[str] = []
    lang = language
    while lang:
        order.append(lang)
        lang = lang.rpartition("_")[0]
    return order


@dataclass(frozen=True)
class MediaReport:
    """One check's findings. ``problems`` are what was logged at ERROR; empty when healthy."""

    checked_at: datetime
    language: str
    #: Sounds Asterisk has in no language it would play for ``language``; None: not checked.
    missing_sounds: tuple[str, ...] | None
    #: Sounds found only in Asterisk's default language (callers hear them in English).
    fallback_sounds: tuple[str, ...]
    moh_class: str
    #: Music arrived; False: silence; None: could not be tested (see ``moh_detail``).
    moh_audible: bool | None
    moh_detail: str
    problems: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        """No problem found (see ``complete`` for whether everything could be looked at)."""
        return not self.problems

    @property
    def complete(self) -> bool:
        """Both checks ran to a verdict (ARI answered, RTP could be received)."""
        return self.missing_sounds is not None and self.moh_audible is not None


class _MusicListener(asyncio.DatagramProtocol):
    """Counts the RTP packets that arrive and those with sound in them."""

    def __init__(self) -> None:
        self.packets = 0
        self.loud = 0
        self.audible = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return  # not RTP version 2
        self.packets += 1
        # μ-law (payload type 0) after the 12-byte header and any CSRCs; Asterisk sends no
        # extension or padding on externalMedia.
        payload = data[12 + 4 * (data[0] & 0x0F):]
        if data[1] & 0x7F == 0 and ulaw_rms(payload) > _SILENCE_RMS:
            self.loud += 1
            if self.loud >= _AUDIBLE_PACKETS:
                self.audible.set()


class MediaChecks:
    """Checks the IVR's sounds and music in Asterisk after every connect, in the background.

    Built by the composition root; :meth:`run` is its task, :meth:`connected` (called from
    the on-connect hook) asks for a check and returns at once.
    """

    def __init__(
        self,
        ari: AriRest,
        *,
        app: str,
        language: str,
        sounds: Sequence[str],
        moh_class: str,
        rtp_bind_host: str,
        rtp_advertise_host: str | None = None,
        asterisk_data_dir: Path | None = None,
        listen_s: float = 4.0,
        budget_s: float = 20.0,
        concurrency: int = 4,
    ) -> None:
        self._ari = ari
        self._app = app
        self.language = language
        self.sounds = list(sounds)
        self.moh_class = moh_class
        self._bind_host = rtp_bind_host
        self._advertise_host = rtp_advertise_host
        self._data_dir = asterisk_data_dir
        self._listen_s = listen_s
        self._budget_s = budget_s
        self._concurrency = concurrency
        self._due = asyncio.Event()
        self._run_id = uuid.uuid4().hex[:8]
        self._serial = itertools.count(1)
        #: The latest finished check (None before the first): health and metrics read it.
        self.last: MediaReport | None = None
        #: Checks finished since start, for tests and metrics.
        self.completed = 0
        self._finished = asyncio.Event()

    @classmethod
    def for_app(cls, ari: AriRest, settings: Settings, prompts: PromptCatalogue) -> MediaChecks:
        """The checks for what the application plays: its locale's prompts and number files,
        its music class; music received where speech receives callers' audio (same network
        path from Asterisk)."""
        return cls(
            ari, app=settings.ari.app, language=asterisk_language(prompts.locale), sounds=prompts.sounds(),
            moh_class=settings.ivr.moh_class, rtp_bind_host=settings.speech.rtp_bind_host,
            rtp_advertise_host=settings.speech.rtp_advertise_host, asterisk_data_dir=settings.asterisk.data_dir,
        )

    # --- scheduling -------------------------------------------------------------------------

    def connected(self) -> None:
        """ARI (re)connected: check again soon. Never blocks the connect."""
        self._due.set()

    async def run(self) -> None:
        """The background task: one check per connect (several connects in a row: one check)."""
        while True:
            await self._due.wait()
            self._due.clear()
            try:
                async with asyncio.timeout(self._budget_s):
                    self.last = await self.check()
            except TimeoutError:
                log.warning("checking the IVR's sounds and music in Asterisk took over %g s; gave up "
                            "(ARI slow or unreachable), next try at the next connect", self._budget_s)
            except Exception:
                log.exception("checking the IVR's sounds and music in Asterisk failed")
            self.completed += 1
            self._finished.set()

    async def wait_checked(self, count: int = 1) -> MediaReport | None:
        """Wait until ``count`` checks have finished since start; the latest report."""
        while self.completed < count:
            self._finished.clear()
            await self._finished.wait()
        return self.last

    # --- the check --------------------------------------------------------------------------

    async def check(self) -> MediaReport:
        """Both checks once; every problem logged at ERROR with its fix."""
        (missing, fallback, sounds_error), (audible, moh_detail) = await asyncio.gather(
            self._check_sounds(), self._check_music()
        )
        problems: list[str] = []
        if sounds_error is not None:
            log.warning("could not check the IVR's sounds in Asterisk: %s", sounds_error)
        elif missing:
            problems.append(self._missing_message(missing))
        if fallback:
            log.warning(
                "%d sound(s) the IVR plays are in Asterisk only in %r, so callers on %s hear them in that "
                "language: %s. Run '%s' to install the %s ones%s.",
                len(fallback), DEFAULT_LANGUAGE, self.language, ", ".join(fallback), INSTALL_COMMAND,
                self.language, self._where(f"sounds/{self.language}"),
            )
        if audible is False:
            problems.append(self._silent_music_message(moh_detail))
        elif audible is None:
            log.warning("could not check music on hold class '%s' in Asterisk: %s", self.moh_class, moh_detail)
        for problem in problems:
            log.error("%s", problem)
        if not problems and sounds_error is None and audible:
            log.info("Asterisk has the IVR's %d sounds for %s and music on hold class '%s' plays music",
                     len(self.sounds), self.language, self.moh_class)
        return MediaReport(
            checked_at=datetime.now(UTC), language=self.language,
            missing_sounds=None if sounds_error is not None else tuple(missing),
            fallback_sounds=tuple(fallback), moh_class=self.moh_class, moh_audible=audible,
            moh_detail=moh_detail, problems=tuple(problems),
        )

    def _where(self, sub: str) -> str:
        return f" into {self._data_dir / sub}" if self._data_dir is not None else f" into <astdatadir>/{sub}"

    def _silent_music_message(self, detail: str) -> str:
        head = (f"music on hold class '{self.moh_class}' plays nothing: {detail}; callers waiting for an "
                f"agent hear silence. ")
        writes = (f"writes the class '{INSTALLED_MOH_CLASS}' into musiconhold.conf and its "
                  f"music{self._where(f'moh/{INSTALLED_MOH_CLASS}')}")
        if self.moh_class == INSTALLED_MOH_CLASS:
            return f"{head}Run '{INSTALL_COMMAND}' (it {writes}), then asterisk -rx 'moh reload'."
        return (f"{head}Set [ivr] moh_class (HOTLINE_IVR__MOH_CLASS) to '{INSTALLED_MOH_CLASS}' ('{INSTALL_COMMAND}' "
                f"{writes}; then asterisk -rx 'moh reload'), or give musiconhold.conf a class '{self.moh_class}' "
                f"with music.")

    def _missing_message(self, missing: list[str]) -> str:
        return (
            f"{len(missing)} of the {len(self.sounds)} sounds the IVR plays are not in Asterisk for "
            f"language {self.language}: {', '.join(missing)}; callers hear silence or their playback fails. "
            f"Run '{INSTALL_COMMAND}' for this locale (it builds them{self._where(f'sounds/{self.language}')}), "
            f"on the Asterisk host or with --data <astdatadir>."
        )

    # --- sounds -----------------------------------------------------------------------------

    async def _check_sounds(self) -> tuple[list[str], list[str], str | None]:
        """(missing, found only in the default language, why not checked or None)."""
        accepted = set(own_languages(self.language))
        gate = asyncio.Semaphore(self._concurrency)  # Asterisk indexes the directory per request

        async def languages_of(sound: str) -> set[str] | None:
            async with gate:
                try:
                    found = await self._ari.request("GET", "/sounds/" + quote(sound, safe=""))
                except AriNotFound:
                    return None
            return {f.get("language", "") for f in (found or {}).get("formats", [])}

        try:
            results = await asyncio.gather(*(languages_of(s) for s in self.sounds))
        except AriError as exc:
            return [], [], str(exc)
        missing: list[str] = []
        fallback: list[str] = []
        for sound, languages in zip(self.sounds, results, strict=True):
            if languages and languages & accepted:
                continue
            if languages and DEFAULT_LANGUAGE in languages:
                fallback.append(sound)
            else:
                missing.append(sound)
        return missing, fallback, None

    # --- music on hold ----------------------------------------------------------------------

    async def _check_music(self) -> tuple[bool | None, str]:
        """Play the class to an externalMedia channel of ours and listen: (audible, detail)."""
        loop = asyncio.get_running_loop()
        try:
            transport, listener = await loop.create_datagram_endpoint(_MusicListener,
                                                                      local_addr=(self._bind_host, 0))
        except OSError as exc:
            return None, f"cannot receive RTP on {self._bind_host} ([speech] rtp_bind_host): {exc}"
        channel_id = f"{CHANNEL_PREFIX}{self._run_id}-{next(self._serial)}"
        try:
            bound_host, port = transport.get_extra_info("sockname")[:2]
            host = self._advertise_host or bound_host
            await self._ari.external_media(app=self._app, external_host=f"{host}:{port}", format="ulaw",
                                           channel_id=channel_id)
            await self._start_music(channel_id)
            try:
                async with asyncio.timeout(self._listen_s):
                    await listener.audible.wait()
            except TimeoutError:
                heard = (f"{listener.packets} RTP packet(s) in {self._listen_s:g} s, none with sound"
                         if listener.packets else f"no audio at all in {self._listen_s:g} s")
                return False, f"{heard} (Asterisk's log says why, e.g. \"Music on Hold class "\
                              f"'{self.moh_class}' not found\" or an empty directory)"
            return True, f"music after {listener.packets} RTP packet(s)"
        except AriError as exc:
            return None, str(exc)
        finally:
            transport.close()
            with suppress(AriError):
                await self._ari.hangup(channel_id)

    async def _start_music(self, channel_id: str) -> None:
        # The channel enters Stasis just after the REST answer (its StasisStart), and Asterisk
        # refuses music on it before that with 409: retry briefly rather than wire up events.
        for _ in range(50):
            try:
                await self._ari.start_moh(channel_id, self.moh_class)
                return
            except AriNotInStasis:
                await asyncio.sleep(0.02)
        await self._ari.start_moh(channel_id, self.moh_class)  # the last try's error goes up
