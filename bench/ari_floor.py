"""The thinnest ARI application that serves the side-by-side's calls (``bench/side_by_side.py``,
path ``floor``): what any Python application on ARI pays on this host before it does anything
of its own.

It does what the dialplan + app_queue path does and nothing more: the welcome, the recording
notice and the main menu in one playback, stopped by the caller's key 1; the next free agent's
phone rung; caller and agent bridged; the other party hung up when one leaves; the agent free
again after the wrap-up. No state beyond this process's memory, no Redis, no database, no log
line a call, no retry: a failed request leaves the call as it is. It talks to Asterisk through
the project's own ARI transport (``ari/http.py``, ``ari/websocket.py``), reads each event as
JSON and looks at its type, nothing else. The application proper (``hotline serve``) costs
what this one does plus what it does for a call to survive a restart, to be queued by
jurisdiction and seen by supervisors: the difference between the two rows is ours to cut, the
floor is not (issue 15).

    HOTLINE_ARI__PASSWORD=... .venv/bin/python bench/ari_floor.py --url http://127.0.0.1:8088 \\
        --agents PJSIP/2001,PJSIP/2002 [--user hotline] [--wrap-up 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import uvloop  # noqa: E402

from ari.errors import AriError  # noqa: E402
from ari.events import events_url  # noqa: E402
from ari.rest import AriRest  # noqa: E402
from ari.websocket import connect  # noqa: E402

APP = "hotline"
MENU = ("sound:hotline/welcome-general", "sound:hotline/recording-notice", "sound:hotline/main-menu")
#: The only events this application looks at; Asterisk sends no other (its event filter).
WANTED = ("StasisStart", "StasisEnd", "ChannelDtmfReceived")


class Floor:
    def __init__(self, rest: AriRest, agents: list[str], wrap_up_s: float) -> None:
        self.rest, self.wrap_up_s = rest, wrap_up_s
        self.free: deque[str] = deque(agents)
        #: Caller's channel -> its agent's leg (once rung); agent's leg -> (caller, agent).
        self.callers: dict[str, str | None] = {}
        self.legs: dict[str, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_message(self, data: bytes) -> None:
        event = orjson.loads(data)
        kind, channel = event["type"], event.get("channel") or {}
        cid = channel.get("id", "")
        if kind == "StasisStart":
            self._soon(self._leg_answered(cid) if cid in self.legs else self._caller(cid))
        elif kind == "ChannelDtmfReceived" and event.get("digit") == "1" and self.callers.get(cid, "") is None:
            self._soon(self._ring(cid))
        elif kind == "StasisEnd":
            self._soon(self._gone(cid))

    def _soon(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            print(f"ari_floor: {task.exception()!r}", file=sys.stderr)

    async def _caller(self, cid: str) -> None:
        self.callers[cid] = None
        await self.rest.play(cid, MENU, playback_id=f"{cid}-menu")

    async def _ring(self, cid: str) -> None:
        if not self.free:
            return  # nobody free: the caller stays in the menu (never the case with enough agents)
        agent = self.free.popleft()
        leg = f"{cid}-agent"
        self.callers[cid], self.legs[leg] = leg, (cid, agent)
        await self.rest.stop_playback(f"{cid}-menu")
        await self.rest.originate(agent, app=APP, app_args=["agent"], channel_id=leg, timeout_s=30)

    async def _leg_answered(self, leg: str) -> None:
        cid, _ = self.legs[leg]
        await self.rest.create_bridge(bridge_id=f"{cid}-call")
        await self.rest.add_channel(f"{cid}-call", cid, leg)

    async def _gone(self, cid: str) -> None:
        if cid in self.legs:  # the agent's leg has gone: their caller too, then the wrap-up
            caller, agent = self.legs.pop(cid)
            if self.callers.pop(caller, None) is not None:  # the agent hung up first
                with contextlib.suppress(AriError):
                    await self.rest.hangup(caller)
                with contextlib.suppress(AriError):
                    await self.rest.destroy_bridge(f"{caller}-call")
            await asyncio.sleep(self.wrap_up_s)
            self.free.append(agent)
            return
        leg = self.callers.pop(cid, None)
        if leg is None:
            return
        if leg in self.legs:  # its StasisEnd frees the agent
            with contextlib.suppress(AriError):
                await self.rest.hangup(leg)
        with contextlib.suppress(AriError):  # none if the agent had not answered
            await self.rest.destroy_bridge(f"{cid}-call")


async def serve(args: argparse.Namespace) -> None:
    token = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    async with aiohttp.ClientSession() as session:
        rest = AriRest(session, args.url, args.user, args.password)
        floor = Floor(rest, [a for a in args.agents.split(",") if a], args.wrap_up)
        ws = await connect(events_url(args.url, APP), {"Authorization": f"Basic {token}"}, floor.on_message)
        await rest.filter_events(APP, WANTED)
        ws.release()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        closed = asyncio.ensure_future(ws.wait_closed())
        await asyncio.wait([closed, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        ws.close_soon(1001)
        await rest.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Asterisk's HTTP server (http://127.0.0.1:8088)")
    # The account from the application's own settings' variables: no password on a command line.
    parser.add_argument("--user", default=os.environ.get("HOTLINE_ARI__USERNAME", "hotline"))
    password = os.environ.get("HOTLINE_ARI__PASSWORD")
    parser.add_argument("--agents", required=True, help="the agents' endpoints, comma separated (PJSIP/2001,...)")
    parser.add_argument("--wrap-up", type=float, default=1.0, help="seconds before an agent is rung again")
    args = parser.parse_args(argv)
    if not password:
        parser.error("HOTLINE_ARI__PASSWORD is not set (the ARI user's password)")
    args.password = password
    uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
