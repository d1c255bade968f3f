"""Playbacks and recordings in the stand-in, timed like the real sound files.

Asterisk plays the playbacks of one channel (or bridge) one after another, in the
order they were requested; a playback of several media (``media=sound:a,sound:b``)
plays them in turn under one id: ``PlaybackStarted`` (a), ``PlaybackContinuing`` (a,
next b), ``PlaybackStarted`` (b), ``PlaybackFinished`` (b). A sound file that does not exist makes the
playback ``failed`` (FIELD-NOTES). With a ``sounds_dir`` the stand-in looks files up
as Asterisk does (``<lang>/``, the language's base, the top, ``en/``) and plays them
for their real length times ``time_scale``; without one every media takes
``default_playback_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from collections.abc import Callable
from pathlib import Path

from devtools.pbx_sim.state import SimError, SimPlayback, SimRecording

log = logging.getLogger(__name__)

#: Media schemes Asterisk 22 plays (FIELD-NOTES); anything else fails the playback.
MEDIA_SCHEMES = ("sound", "recording", "number", "digits", "characters", "tone")
RECORDING_FORMATS = ("wav", "gsm", "ulaw", "alaw", "sln", "sln16", "g722")

Emit = Callable[[str, SimPlayback], None]
Heard = Callable[[SimPlayback, str], None]


class SoundLibrary:
    def __init__(self, sounds_dir: Path | None, recordings_dir: Path, *, default_s: float, time_scale: float) -> None:
        self.sounds_dir = sounds_dir
        self.recordings_dir = recordings_dir
        self.default_s = default_s
        self.time_scale = time_scale

    def duration(self, media: str, language: str) -> float | None:
        """Seconds the media plays for, or ``None`` when Asterisk would fail it."""
        scheme, _, what = media.partition(":")
        if scheme not in MEDIA_SCHEMES or not what:
            return None
        if scheme == "recording":
            return self._wav_length(self.recordings_dir / f"{what}.wav")
        if scheme != "sound" or self.sounds_dir is None:
            return self.default_s
        for folder in _language_folders(language):
            length = self._wav_length(self.sounds_dir / folder / f"{what}.wav")
            if length is not None:
                return length
        return None

    def _wav_length(self, path: Path) -> float | None:
        try:
            with wave.open(str(path), "rb") as w:
                return w.getnframes() / w.getframerate() * self.time_scale
        except (FileNotFoundError, wave.Error, EOFError):
            return None


def _language_folders(language: str) -> list[str]:
    folders = [language, language.split("_")[0], "", "en"]
    return list(dict.fromkeys(folders))


class Player:
    """Runs playbacks per target (``channel:<id>`` / ``bridge:<id>``) strictly in order."""

    def __init__(self, sounds: SoundLibrary, emit: Emit, heard: Heard) -> None:
        self._sounds = sounds
        self._emit = emit
        self._heard = heard
        self._queues: dict[str, list[SimPlayback]] = {}
        self.playbacks: dict[str, SimPlayback] = {}

    def start(self, playback: SimPlayback) -> None:
        if playback.id in self.playbacks:
            raise SimError(409, f"Playback with id {playback.id} already exists")
        self.playbacks[playback.id] = playback
        queue = self._queues.setdefault(playback.target_uri, [])
        queue.append(playback)
        if len(queue) == 1:
            self._run_next(playback.target_uri)

    def _run_next(self, target: str) -> None:
        queue = self._queues.get(target)
        if not queue:
            self._queues.pop(target, None)
            return
        playback = queue[0]
        playback.task = asyncio.get_running_loop().create_task(self._play(playback), name=f"playback:{playback.id}")

    async def _play(self, playback: SimPlayback) -> None:
        try:
            for index, media in enumerate(playback.media):
                if index:
                    # As res_stasis_playback: the media just played ends "continuing" (its
                    # own media_uri, the next one as next_media_uri), then the next one
                    # starts under the same playback id (FIELD-NOTES).
                    playback.state = "continuing"
                    self._emit("PlaybackContinuing", playback)
                    playback.index = index
                playback.state = "playing"
                self._emit("PlaybackStarted", playback)
                seconds = self._sounds.duration(media, playback.language)
                if seconds is None:
                    log.info("playback %s: %s not found: failed", playback.id, media)
                    playback.state = "failed"
                    break
                self._heard(playback, media)
                await asyncio.sleep(seconds)
            else:
                playback.state = "done"
        finally:
            if playback.id in self.playbacks:  # not already finished by stop()
                self._finish(playback)

    def _finish(self, playback: SimPlayback) -> None:
        self.playbacks.pop(playback.id, None)
        queue = self._queues.get(playback.target_uri, [])
        was_current = bool(queue) and queue[0] is playback
        if playback in queue:
            queue.remove(playback)
        self._emit("PlaybackFinished", playback)
        if was_current:
            self._run_next(playback.target_uri)

    def get(self, playback_id: str) -> SimPlayback:
        playback = self.playbacks.get(playback_id)
        if playback is None:
            raise SimError(404, "Playback not found")
        return playback

    def stop(self, playback_id: str, *, requested: bool = True) -> None:
        """Stop now: ``PlaybackFinished`` goes out before anything that follows the stop.

        ``requested``: stopped over ARI (barge-in), not because its channel went away.
        """
        playback = self.get(playback_id)
        if playback.task is not None and not playback.task.done():
            playback.task.cancel()
            playback.stopped = requested
        playback.state = "done"  # Asterisk reports a stopped playback as done
        self._finish(playback)

    def stop_target(self, target: str) -> None:
        """The channel or bridge is going away: end everything queued on it.

        Queued ones first, so that stopping the current one does not start the next.
        """
        for playback in reversed(list(self._queues.get(target, []))):
            self.stop(playback.id, requested=False)

    def current(self, target: str) -> SimPlayback | None:
        queue = self._queues.get(target)
        return queue[0] if queue else None


class Recorder:
    """Live recordings; a stopped one becomes a stored WAV in ``recordings_dir``.

    As in Asterisk (``res_stasis_recording``): the answer to ``POST .../record`` is the
    recording ``queued``; it starts a moment later (``RecordingStarted``, state
    ``recording``); a stop makes it ``done`` with its ``duration`` (``RecordingFinished``);
    a cancel deletes the file and is also a ``RecordingFinished``, state ``canceled``; a
    recording that cannot be made is ``failed`` with a ``cause`` (``RecordingFailed``).
    """

    def __init__(self, recordings_dir: Path, emit: Callable[[str, SimRecording], None]) -> None:
        self.dir = recordings_dir
        self._emit = emit
        self.live: dict[str, SimRecording] = {}
        #: Causes of the next recordings to fail (tests: ``POST /sim/recordings/faults``).
        self.fail_next: list[str] = []

    def start(self, name: str, fmt: str, target_uri: str, if_exists: str) -> SimRecording:
        if fmt not in RECORDING_FORMATS:
            raise SimError(422, "specified format is unknown on this system")
        if "/" in name or name.startswith("."):
            raise SimError(400, "Recording name must not contain a path")
        # Live or already stored, Asterisk says the same (the file exists in both cases).
        if name in self.live or (if_exists == "fail" and self.path(name, fmt).exists()):
            raise SimError(409, f"Recording '{name}' already exists and can not be overwritten")
        recording = SimRecording(name=name, format=fmt, target_uri=target_uri, state="queued")
        self.live[name] = recording
        # Asterisk queues the recording on the channel or bridge and answers at once.
        asyncio.get_running_loop().call_soon(self._begin, recording)
        return recording

    def _begin(self, recording: SimRecording) -> None:
        if self.live.get(recording.name) is not recording:
            return  # stopped or cancelled while queued
        if self.fail_next:
            del self.live[recording.name]
            recording.state, recording.cause = "failed", self.fail_next.pop(0)
            self._emit("RecordingFailed", recording)
            return
        recording.state, recording.started = "recording", time.monotonic()
        self._emit("RecordingStarted", recording)

    def path(self, name: str, fmt: str = "wav") -> Path:
        return self.dir / f"{name}.{fmt}"

    def get(self, name: str) -> SimRecording:
        recording = self.live.get(name)
        if recording is None:
            raise SimError(404, "Recording not found")
        return recording

    def stop(self, name: str, *, audio: bytes = b"", cancel: bool = False) -> None:
        recording = self.get(name)
        del self.live[name]
        recording.duration = int(time.monotonic() - recording.started)
        if cancel:
            # Asterisk deletes what was recorded and reports the end as a finish, not a failure.
            recording.state = "canceled"
            self.path(name, recording.format).unlink(missing_ok=True)
            self._emit("RecordingFinished", recording)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        seconds = max(time.monotonic() - recording.started, 0.02)
        write_wav(self.path(name, recording.format), audio or bytes(int(seconds * 8000) * 2))
        recording.state = "done"
        self._emit("RecordingFinished", recording)

    def stop_target(self, target: str) -> None:
        for recording in [r for r in self.live.values() if r.target_uri == target]:
            self.stop(recording.name)

    def stored(self) -> list[tuple[str, str]]:
        if not self.dir.is_dir():
            return []
        return sorted((p.stem, p.suffix[1:]) for p in self.dir.iterdir() if p.suffix[1:] in RECORDING_FORMATS)

    def stored_path(self, name: str) -> Path:
        for stem, fmt in self.stored():
            if stem == name:
                return self.path(stem, fmt)
        raise SimError(404, "Recording not found")


def write_wav(path: Path, pcm8k: bytes) -> None:
    """8 kHz mono 16-bit WAV: what Asterisk writes for ``format=wav``."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm8k)
