"""Hearing recordings over HTTP: list a call's, play with seeking (HTTP Range), download, and
the access audit for supervisors.

Who may hear a recording: the agent who talked in it, a supervisor whose scope holds its
jurisdiction, an admin. Every request for audio of a logged-in user, allowed or refused, is
written to the audit (who, which, when, play/download/denied, from where) before the
answer goes out. Requests without a session are counted per minute instead
(:mod:`recordings.refusals`): one row each would let anyone flood the audit. Users name
recordings by id only: an id that is not a UUID names nothing, and a file's path comes from
its index row, checked to stay inside the recordings root.

``GET /api/recordings?call_id=<uuid>``
    ``{"recordings": [{"id", "call_id", "segment", "agent_id", "jurisdiction", "state",
    "format", "duration_s", "size_bytes", "sha256", "created_at", "audio_url"}]}``: the
    call's segments the user may hear; 403 when there are some and none is theirs.
``GET /api/recordings/{id}/audio[?download=1]``
    The WAV: ``Accept-Ranges: bytes``; a ``Range: bytes=a-b`` (one range) answers 206 with
    ``Content-Range``; a range that is malformed, multiple or beyond the end answers 416
    with ``Content-Range: bytes */<size>``. ``download=1`` sends it as an attachment.
``GET /api/recordings/audit[?recording_id=&since=<RFC 3339>&limit=]``
    Supervisors (their scope's recordings) and admins (everything): ``{"entries": [...]}``,
    newest first; for admins also ``"anonymous_refusals"``: ``[{"minute", "count"}]`` of the
    last hour's minutes that had any.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from accounts.auth import in_scope, user_of
from accounts.models import Role, User
from core.forwarded import client_address
from core.jurisdictions import JurisdictionTree
from core.web import ApiError, json_response
from recordings.index import AccessEntry, RecordingIndex
from recordings.models import Access, Recording, RecordingAccess, RecordingState
from recordings.refusals import AnonymousRefusals
from recordings.storage import RecordingStore, StorageError

log = logging.getLogger(__name__)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# ASCII digits, as HTTP writes them (\d also takes "١" and the like).
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
#: Byte positions past this are all "beyond the end" (and int() of thousands of digits raises).
_FAR = 10**18
CHUNK = 64 * 1024
AUDIT_LIMIT_MAX = 500


def add_routes(app: web.Application, *, index: RecordingIndex, store: RecordingStore,
               tree: JurisdictionTree, anonymous: AnonymousRefusals) -> None:
    views = RecordingViews(index, store, tree, anonymous)
    app.router.add_get("/api/recordings", views.list, allow_head=False)
    app.router.add_get("/api/recordings/audit", views.audit, allow_head=False)
    app.router.add_get("/api/recordings/{id}/audio", views.audio, allow_head=False)


def may_hear(user: User, row: Recording, tree: JurisdictionTree) -> bool:
    """The handling agent, a supervisor of the jurisdiction's subtree, an admin."""
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.AGENT:
        return bool(user.agent_id) and row.agent_id == user.agent_id
    return user.role == Role.SUPERVISOR and in_scope(user, row.jurisdiction, tree)


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range ``header`` asks for, as (first, last) inclusive; ``None`` for the whole."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        raise RangeNotSatisfiable(f"unreadable or multiple ranges {header[:60]!r}: ask for one, bytes=first-last")
    first, last = match.groups()
    if not first and not last:
        raise RangeNotSatisfiable("a range needs a first byte, a last byte, or both")
    if not first:  # bytes=-n: the last n bytes
        length = _position(last)
        if length == 0:
            raise RangeNotSatisfiable("bytes=-0 asks for nothing")
        return max(size - length, 0), size - 1
    start, end = _position(first), _position(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"bytes {start}-{end} are not within the {size} bytes of the recording")
    return start, min(end, size - 1)


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _FAR


class RecordingViews:
    def __init__(self, index: RecordingIndex, store: RecordingStore, tree: JurisdictionTree,
                 anonymous: AnonymousRefusals) -> None:
        self._index, self._store, self._tree = index, store, tree
        self._anonymous = anonymous

    # ----------------------------------------------------------------- list

    async def list(self, request: web.Request) -> web.Response:
        user = user_of(request)
        call_id = request.query.get("call_id", "")
        if not _UUID.fullmatch(call_id):
            raise ApiError(400, "malformed", "call_id must be a call's id (a lower-case UUID)",
                           "call_id 须为通话编号（小写 UUID）")
        rows = await self._index.for_call(call_id)
        visible = [r for r in rows if may_hear(user, r, self._tree)]
        if rows and not visible:
            await self._audit(request, user, f"call:{call_id}", rows[0].jurisdiction, Access.DENIED, "forbidden: list")
            raise _forbidden()
        return json_response({"recordings": [_row_json(r) for r in visible]})

    # ----------------------------------------------------------------- audio

    async def audio(self, request: web.Request) -> web.StreamResponse:
        asked = request.match_info["id"]
        user = _user_or_none(request)
        if user is None:
            await self._anonymous.count(asked, client_address(request))
            user_of(request)  # raises the 401
        assert user is not None
        row = await self._index.get(asked) if _UUID.fullmatch(asked) else None
        if row is None:
            await self._audit(request, user, asked, None, Access.DENIED, "not_found")
            raise _not_found()
        if not may_hear(user, row, self._tree):
            await self._audit(request, user, row.id, row.jurisdiction, Access.DENIED, "forbidden")
            raise _forbidden()
        if row.state != RecordingState.STORED:
            await self._audit(request, user, row.id, row.jurisdiction, Access.DENIED, f"state {row.state}")
            raise _not_available(row)
        try:
            path = self._store.path_of(row)
            size = (await asyncio.to_thread(path.stat)).st_size
        except (StorageError, OSError) as exc:
            log.error("recording %s: its file cannot be opened: %s", row.id, exc)
            await self._audit(request, user, row.id, row.jurisdiction, Access.DENIED, "file missing")
            raise ApiError(410, "file_missing", "the recording's file is missing; an administrator has been told",
                           "录音文件缺失，已通知管理员") from None
        download = request.query.get("download") == "1"
        action = Access.DOWNLOAD if download else Access.PLAY
        try:
            span = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable as exc:
            await self._audit(request, user, row.id, row.jurisdiction, Access.DENIED, f"range: {exc}")
            raise ApiError(416, "range_not_satisfiable", str(exc), f"请求的字节范围无效：{exc}",
                           headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}) from None
        await self._audit(request, user, row.id, row.jurisdiction, action,
                          f"bytes {span[0]}-{span[1]}/{size}" if span else f"bytes 0-{size - 1}/{size}")
        return await _send(request, path, size, span, filename=f"{row.name}.{row.format}", download=download)

    # ----------------------------------------------------------------- the audit

    async def audit(self, request: web.Request) -> web.Response:
        user = user_of(request)
        if user.role not in (Role.SUPERVISOR, Role.ADMIN):
            raise ApiError(403, "forbidden", "the recordings' access audit is for supervisors and admins",
                           "录音访问审计仅限班长和管理员查看")
        recording_id = request.query.get("recording_id") or None
        since = _since(request.query.get("since"))
        limit = _limit(request.query.get("limit"))
        prefix = None if user.role == Role.ADMIN else _code_prefix(user.jurisdiction)
        entries = await self._index.audit_entries(prefix=prefix, recording_id=recording_id, since=since,
                                                  limit=limit)
        if user.role != Role.ADMIN:
            # The prefix narrows the query; the tree decides (a station, a renamed division).
            entries = [e for e in entries if e.jurisdiction and in_scope(user, e.jurisdiction, self._tree)]
        doc: dict[str, Any] = {"entries": [_entry_json(e) for e in entries]}
        if user.role == Role.ADMIN:
            doc["anonymous_refusals"] = await self._anonymous.recent()
        return json_response(doc)

    async def _audit(self, request: web.Request, user: User | None, recording_id: str, jurisdiction: str | None,
                     action: Access, detail: str) -> None:
        await self._index.audit(AccessEntry(
            recording_id=recording_id, jurisdiction=jurisdiction, user_id=user.id if user else None,
            username=user.username if user else None, role=user.role if user else None, action=action.value,
            detail=detail, client=client_address(request)))


async def _send(request: web.Request, path: Path, size: int, span: tuple[int, int] | None, *, filename: str,
                download: bool) -> web.StreamResponse:
    first, last = span if span else (0, size - 1)
    response = web.StreamResponse(status=206 if span else 200)
    response.content_type = "audio/wav"
    response.content_length = last - first + 1 if size else 0
    response.headers["Accept-Ranges"] = "bytes"
    # Evidence with personal data: no shared cache keeps it.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = f'{"attachment" if download else "inline"}; filename="{filename}"'
    if span:
        response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    await response.prepare(request)
    # Opening and reading touch the disk (a slow or network volume): in threads, off the loop.
    with await asyncio.to_thread(open, path, "rb") as f:
        await asyncio.to_thread(f.seek, first)
        left = last - first + 1 if size else 0
        while left > 0:
            block = await asyncio.to_thread(f.read, min(CHUNK, left))
            if not block:
                break  # the file shrank under us: the client sees a short body
            await response.write(block)
            left -= len(block)
    await response.write_eof()
    return response


def _user_or_none(request: web.Request) -> User | None:
    try:
        return user_of(request)
    except ApiError:
        return None


def _code_prefix(code: str) -> str:
    """The GB/T 2260 prefix of a division's subtree: 330000 → 33, 330100 → 3301."""
    code = code.split("-", 1)[0]
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return "" if code == "00" else code


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        moment.astimezone(UTC)  # the database compares in UTC: year 1 at +08:00 is before year 1 there
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiError(400, "malformed", f"since must be an RFC 3339 time with an offset, got {value[:40]!r}",
                       f"since 须为带时区的 RFC 3339 时间，收到 {value[:40]!r}")
    return moment


def _limit(value: str | None) -> int:
    if value is None:
        return 100
    # ASCII digits only: isdigit() also takes "²", which int() refuses, and thousands of digits.
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= AUDIT_LIMIT_MAX:
        raise ApiError(400, "malformed", f"limit must be a whole number from 1 to {AUDIT_LIMIT_MAX}",
                       f"limit 须为 1 到 {AUDIT_LIMIT_MAX} 之间的整数")
    return int(value)


def _row_json(row: Recording) -> dict[str, Any]:
    return {"id": row.id, "call_id": row.call_id, "segment": row.segment, "agent_id": row.agent_id,
            "jurisdiction": row.jurisdiction, "state": row.state, "format": row.format,
            "duration_s": row.duration_s, "size_bytes": row.size_bytes, "sha256": row.sha256,
            "created_at": row.created_at.isoformat(),
            "audio_url": f"/api/recordings/{row.id}/audio" if row.state == RecordingState.STORED else None}


def _entry_json(entry: RecordingAccess) -> dict[str, Any]:
    return {"recording_id": entry.recording_id, "jurisdiction": entry.jurisdiction, "user_id": entry.user_id,
            "username": entry.username, "role": entry.role, "action": entry.action, "detail": entry.detail,
            "client": entry.client, "at": entry.at.isoformat()}


def _forbidden() -> ApiError:
    return ApiError(403, "forbidden", "only the agent who handled the call and supervisors of its jurisdiction "
                    "may hear this recording", "仅处理该通话的坐席及其辖区的班长可以收听此录音")


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no recording has this id", "没有此编号的录音")


def _not_available(row: Recording) -> ApiError:
    if row.state == RecordingState.PURGED:
        return ApiError(410, "purged", "the recording was deleted when its retention period ended",
                        "该录音已在保存期满后删除")
    return ApiError(409, "not_stored", f"the recording is {row.state}, there is nothing to play",
                    f"该录音状态为 {row.state}，无可播放内容")
