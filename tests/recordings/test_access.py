"""Only the handling agent, supervisors of the jurisdiction's subtree and admins hear a
recording; seeking works with HTTP ranges; ids from users name nothing else; every access of a
logged-in user, allowed or refused, is in the audit supervisors read; anonymous ones are counted."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from recordings.models import Recording
from tests.support.accounts import browser
from tests.support.desktop import Browser, Desk
from tests.support.jurisdictions import BEIJING, HANGZHOU, ZHEJIANG
from tests.support.recordings import stored_recording, wav_bytes

pytestmark = pytest.mark.slow


async def audio(who: Browser, recording_id: str, *, headers: dict[str, str] | None = None,
                query: str = "") -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with who.http.get(f"{who.url}/api/recordings/{recording_id}/audio{query}", headers=headers or {}) as resp:
        return resp.status, await resp.read(), resp.headers


@pytest.fixture
async def recording(desk: Desk, store_root: Path) -> Recording:
    return await stored_recording(desk.app.recordings.index, store_root, agent_id="1001", jurisdiction=HANGZHOU)


async def audit_of(desk: Desk, recording_id: str) -> list[tuple[str | None, str, str | None]]:
    if await desk.accounts.by_username("admin") is None:
        await desk.users.admin()
    admin = await desk.browser_for("admin")
    doc = await admin.ok("GET", f"/api/recordings/audit?recording_id={recording_id}")
    return [(e["username"], e["action"], e["detail"]) for e in reversed(doc["entries"])]


async def test_the_handling_agent_plays_the_whole_file_and_seeks_with_ranges(desk: Desk, recording: Recording,
                                                                          store_root: Path) -> None:
    await desk.users.agent(agent_id="1001", jurisdiction=HANGZHOU)
    agent = await desk.browser_for("agent1001")
    whole = (store_root / (recording.path or "")).read_bytes()

    status, body, headers = await audio(agent, recording.id)
    assert status == 200 and body == whole
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "audio/wav"
    assert headers["Content-Disposition"].startswith("inline") and "no-store" in headers["Cache-Control"]

    status, body, headers = await audio(agent, recording.id, headers={"Range": "bytes=100-199"})
    assert (status, body, headers["Content-Range"]) == (206, whole[100:200], f"bytes 100-199/{len(whole)}")
    status, body, headers = await audio(agent, recording.id, headers={"Range": "bytes=-10"})
    assert (status, body) == (206, whole[-10:]) and headers["Content-Range"].endswith(f"/{len(whole)}")
    status, body, _ = await audio(agent, recording.id, headers={"Range": f"bytes={len(whole) - 5}-"})
    assert (status, body) == (206, whole[-5:])
    status, body, _ = await audio(agent, recording.id, headers={"Range": f"bytes=10-{len(whole) + 999}"})
    assert (status, body) == (206, whole[10:])

    for bad in (f"bytes={len(whole)}-", "bytes=50-10", "bytes=0-1,5-9", "items=0-1", "bytes=-", "bytes=-0"):
        status, _, headers = await audio(agent, recording.id, headers={"Range": bad})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(whole)}", bad

    status, body, headers = await audio(agent, recording.id, query="?download=1")
    assert status == 200 and body == whole
    assert headers["Content-Disposition"] == f'attachment; filename="{recording.name}.wav"'

    actions = [a for _u, a, _d in await audit_of(desk, recording.id)]
    assert actions == ["play"] * 5 + ["denied"] * 6 + ["download"]


async def test_wrong_users_are_refused_and_every_refusal_is_audited(desk: Desk, recording: Recording) -> None:
    await desk.users.agent(agent_id="1002", jurisdiction=HANGZHOU)  # same home, not their call
    await desk.users.supervisor("beijing", jurisdiction=BEIJING)
    other_agent = await desk.browser_for("agent1002")
    beijing = await desk.browser_for("beijing")
    for who in (other_agent, beijing):
        status, body, _ = await audio(who, recording.id)
        assert status == 403 and b"forbidden" in body
        status, _doc = await who.call("GET", f"/api/recordings?call_id={recording.call_id}")
        assert status == 403
    anonymous = Browser(desk.url)
    anonymous.http = browser()
    try:
        status, _, _ = await audio(anonymous, recording.id)
        assert status == 401
    finally:
        await anonymous.http.close()

    assert await audit_of(desk, recording.id) == [
        ("agent1002", "denied", "forbidden"), ("beijing", "denied", "forbidden")]  # the anonymous one is counted


async def test_a_flood_of_anonymous_requests_writes_no_audit_rows_and_is_counted(
        desk: Desk, recording: Recording, caplog: pytest.LogCaptureFixture) -> None:
    await desk.users.admin()
    admin = await desk.browser_for("admin")
    before = (await admin.ok("GET", "/api/recordings/audit?limit=500"))["entries"]
    anonymous = Browser(desk.url)
    anonymous.http = browser()
    try:
        for n in range(300):
            status, _, _ = await audio(anonymous, recording.id if n % 2 else f"anything-{n}")
            assert status == 401
    finally:
        await anonymous.http.close()
    doc = await admin.ok("GET", "/api/recordings/audit?limit=500")
    assert doc["entries"] == before
    assert sum(m["count"] for m in doc["anonymous_refusals"]) == 300  # one minute, or two if it turned
    samples = [r for r in caplog.records if "request without a session" in r.getMessage()]
    assert 1 <= len(samples) <= 2
    # Supervisors read their scope's audit; the anonymous count has no jurisdiction: admins only.
    await desk.users.supervisor("zhejiang", jurisdiction=ZHEJIANG)
    zhejiang = await desk.browser_for("zhejiang")
    assert "anonymous_refusals" not in await zhejiang.ok("GET", "/api/recordings/audit")


async def test_supervisors_of_the_subtree_and_admins_may_listen_and_list(desk: Desk, recording: Recording) -> None:
    await desk.users.supervisor("zhejiang", jurisdiction=ZHEJIANG)
    await desk.users.admin()
    for name in ("zhejiang", "admin"):
        who = await desk.browser_for(name)
        status, body, _ = await audio(who, recording.id)
        assert status == 200 and body.startswith(b"RIFF")
        listed = await who.ok("GET", f"/api/recordings?call_id={recording.call_id}")
        assert [(r["id"], r["sha256"], r["duration_s"]) for r in listed["recordings"]] == [
            (recording.id, recording.sha256, 1.0)]
        assert listed["recordings"][0]["audio_url"] == f"/api/recordings/{recording.id}/audio"


async def test_ids_that_try_to_reach_files_or_other_rows_name_nothing(desk: Desk, recording: Recording,
                                                                     store_root: Path, tmp_path: Path) -> None:
    await desk.users.admin()
    admin = await desk.browser_for("admin")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(wav_bytes(0.1))
    relative = f"2026/12/08/{HANGZHOU}/{recording.name}.wav"
    attempts = ["..%2F..%2F..%2Fsecret.wav", "%2e%2e%2fsecret.wav", "..%252F..%252Fsecret.wav",
                relative.replace("/", "%2F"), f"{recording.id}%2F..%2F..", recording.id.upper(),
                f"{recording.id}.wav", "00000000-0000-0000-0000-000000000000"]
    for attempt in attempts:
        async with admin.http.get(f"{admin.url}/api/recordings/{attempt}/audio") as resp:
            assert resp.status == 404, attempt
            assert (await resp.json())["code"] == "not_found"
    async with admin.http.get(f"{admin.url}/api/recordings/../../secret.wav/audio") as resp:
        assert resp.status == 404  # normalised by the client or refused by the router: never the file
    status, doc = await admin.call("GET", "/api/recordings?call_id=../../etc")
    assert status == 400 and doc["code"] == "malformed"

    admin_audit = await admin.ok("GET", "/api/recordings/audit?limit=500")
    denied = [e for e in admin_audit["entries"] if e["detail"] == "not_found"]
    assert len(denied) == len(attempts) and all(e["action"] == "denied" for e in denied)


async def test_the_audit_is_for_supervisors_of_the_recordings_jurisdiction(desk: Desk, recording: Recording,
                                                                          store_root: Path) -> None:
    beijing_recording = await stored_recording(desk.app.recordings.index, store_root, agent_id="2001",
                                               jurisdiction=BEIJING, seed=3)
    await desk.users.agent(agent_id="1001", jurisdiction=HANGZHOU)
    await desk.users.supervisor("zhejiang", jurisdiction=ZHEJIANG)
    await desk.users.supervisor("beijing", jurisdiction=BEIJING)
    agent = await desk.browser_for("agent1001")
    assert (await audio(agent, recording.id))[0] == 200
    assert (await audio(agent, beijing_recording.id))[0] == 403

    status, doc = await agent.call("GET", "/api/recordings/audit")
    assert status == 403 and doc["code"] == "forbidden"
    zhejiang = await desk.browser_for("zhejiang")
    entries = (await zhejiang.ok("GET", "/api/recordings/audit"))["entries"]
    assert [(e["recording_id"], e["username"], e["action"]) for e in entries] == [
        (recording.id, "agent1001", "play")]
    assert entries[0]["client"] == "127.0.0.1"
    beijing = await desk.browser_for("beijing")
    entries = (await beijing.ok("GET", "/api/recordings/audit"))["entries"]
    assert [(e["recording_id"], e["action"]) for e in entries] == [(beijing_recording.id, "denied")]
    status, doc = await beijing.call("GET", "/api/recordings/audit?since=yesterday")
    assert status == 400 and "since" in doc["message"]


async def test_a_recording_not_stored_is_not_played_and_says_why(desk: Desk, recording: Recording) -> None:
    await desk.users.admin()
    admin = await desk.browser_for("admin")
    await desk.app.recordings.index.purged(recording.id)
    status, body, _ = await audio(admin, recording.id)
    assert status == 410 and b"purged" in body
