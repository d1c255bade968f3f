"""The recordings' API under fuzzing, on the application as ``hotline serve`` wires it with a
stored recording: any id, query (``call_id``, ``recording_id``, ``since``, ``limit``,
``download``) and ``Range`` header, from the handling agent, a supervisor, an admin or nobody.
No answer is a 5xx, and a refused request stores no ticket or outbox row (the access audit it
writes is the point of it, and is not counted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from recordings.models import Recording
from tests.support import fuzz
from tests.support.accounts import browser
from tests.support.desktop import Browser, Desk
from tests.support.jurisdictions import HANGZHOU, ZHEJIANG
from tests.support.recordings import stored_recording

pytestmark = pytest.mark.slow

#: A placeholder for the stored recording's id and its call's, so that some requests name it.
THE_RECORDING, THE_CALL = "$recording", "$call"
VALUES = st.one_of(fuzz.SEGMENTS, st.sampled_from([THE_RECORDING, THE_CALL, "1", "500", "501", "0", "-1", "２", "²",
                                                   "9" * 5000, "2026-12-08T10:00:00+08:00"]))
#: The parameters the API reads, three times as likely as any other name.
NAMES = st.sampled_from(["call_id", "recording_id", "since", "limit", "download"] * 3) | fuzz.SEGMENTS
QUERIES = st.dictionaries(NAMES, VALUES, max_size=4)
#: Positions past what int() reads (4300 digits), within a header's 8 KiB together.
RANGES = st.one_of(fuzz.HEADER_VALUES, st.builds(lambda a, b: f"bytes={a}-{b}", st.sampled_from(
    ["", "0", "10", "99999999999999999999999", "-5", "١", "9" * 4400]),
    st.sampled_from(["", "0", "20", "18446744073709551616", "9" * 3700])))
PATHS = st.sampled_from(["/api/recordings", "/api/recordings/audit", "/api/recordings/{id}/audio"])


@dataclass
class Scene:
    desk: Desk
    who: dict[str, Browser]
    nobody: aiohttp.ClientSession
    recording: Recording

    def filled(self, text: str) -> str:
        return text.replace(THE_RECORDING, self.recording.id).replace(THE_CALL, self.recording.call_id)

    async def get(self, who: str, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        http = self.who[who].http if who in self.who else self.nobody
        url = self.desk.url + self.filled(path)
        if params:
            url = fuzz.short_enough(url + "?" + fuzz.query({k: self.filled(v) for k, v in params.items()}))
        async with http.get(url, headers=headers) as resp:
            raw = await resp.read()
            if resp.status < 400 and resp.content_type == "audio/wav":
                return resp.status, raw
            return resp.status, fuzz.check_answer(resp.status, raw, resp.content_type, f"{who} GET {url}")


@pytest.fixture
async def scene(desk: Desk, store_root: Path) -> AsyncIterator[Scene]:
    recording = await stored_recording(desk.app.recordings.index, store_root, agent_id="1001", jurisdiction=HANGZHOU)
    await desk.users.agent(agent_id="1001", jurisdiction=HANGZHOU)
    await desk.users.supervisor(jurisdiction=ZHEJIANG)
    await desk.users.admin()
    who = {name: await desk.browser_for(name) for name in ("agent1001", "supervisor", "admin")}
    async with browser() as nobody:
        yield Scene(desk, who, nobody, recording)


@fuzz.FUZZ
@given(who=st.sampled_from(["agent1001", "supervisor", "admin", "nobody"]), path=PATHS, recording_id=VALUES,
       params=QUERIES, headers=st.fixed_dictionaries({}, optional={"Range": RANGES,
                                                                   "Accept-Language": fuzz.HEADER_VALUES}))
@example(who="admin", path="/api/recordings/audit", recording_id="", params={"since": "0001-01-01T00:00:00+08:00"},
         headers={})
@example(who="admin", path="/api/recordings/audit", recording_id="", params={"since": "9999-12-31T23:59:59-23:59"},
         headers={})
@example(who="admin", path="/api/recordings/audit", recording_id="", params={"recording_id": "\x00"}, headers={})
@example(who="admin", path="/api/recordings/audit", recording_id="", params={"limit": "²"}, headers={})
@example(who="admin", path="/api/recordings/audit", recording_id="", params={"limit": "9" * 5000}, headers={})
@example(who="agent1001", path="/api/recordings/{id}/audio", recording_id=THE_RECORDING, params={},
         headers={"Range": "bytes=99999999999999999999999-"})
@example(who="agent1001", path="/api/recordings/{id}/audio", recording_id=THE_RECORDING, params={},
         headers={"Range": f"bytes=0-{'9' * 4400}"})
async def test_any_id_query_or_range_is_never_a_5xx_and_a_refusal_stores_nothing(
        scene: Scene, who: str, path: str, recording_id: str, params: dict[str, str], headers: dict[str, str]) -> None:
    target = fuzz.path_with(path, id=scene.filled(recording_id)) if "{id}" in path else path
    await fuzz.nothing_stored_if_refused(scene.desk.app.clients.db, lambda: scene.get(who, target, params, headers),
                                         f"{who} GET {target} {params} {headers}")
