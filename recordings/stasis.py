"""ARI event handlers of the recordings, named after the events."""

from __future__ import annotations

import logging

from ari import models as ari
from core.plugins import Subscription
from recordings.capture import NAME_RE, CallRecorder

log = logging.getLogger(__name__)


class RecordingStasis:
    def __init__(self, recorder: CallRecorder) -> None:
        self._recorder = recorder

    def subscriptions(self) -> list[Subscription]:
        return [Subscription("RecordingStarted", self.on_recording_started),
                Subscription("RecordingFinished", self.on_recording_finished),
                Subscription("RecordingFailed", self.on_recording_failed)]

    async def on_recording_started(self, key: str, event: ari.RecordingStarted) -> None:
        log.debug("recording %s is recording", event.recording.name)

    async def on_recording_finished(self, key: str, event: ari.RecordingFinished) -> None:
        # Names not ours (another application's recordings, a voicemail) are left alone.
        if NAME_RE.fullmatch(event.recording.name):
            self._recorder.finished(event.recording.name, cancelled=event.recording.state == "canceled")

    async def on_recording_failed(self, key: str, event: ari.RecordingFailed) -> None:
        if NAME_RE.fullmatch(event.recording.name):
            self._recorder.failed(event.recording.name, event.recording.cause or "no cause given")
