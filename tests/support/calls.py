"""Whole calls through the stand-in with the real application: a caller keying at the menu, an
agent ready or on a break, the caller talking to an agent, the call's record, and what the
application publishes of its agents."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from core.settings import RecordingSettings, Settings
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from queues.engine import Agent, AgentState


def recording(settings: Settings, root: Path) -> Settings:
    """``settings`` with conversations recorded into ``root``."""
    return settings.model_copy(update={"recordings": RecordingSettings(enabled=True, root=root)})


async def agent_ready(app: Application, agent_id: str, home: str, lines: set[str], endpoint: str) -> None:
    await app.queues.login(Agent(agent_id, home, frozenset(lines), frozenset({"zh-CN"}), endpoint))
    await app.queues.available(agent_id)


async def agent_on_break(app: Application, agent_id: str, home: str, line: str, reason: str = "meeting") -> None:
    """Logged in (so the level counts as staffed) but not taking calls."""
    await app.queues.login(Agent(agent_id, home, frozenset({line}), frozenset({"zh-CN"}), f"PJSIP/{agent_id}"))
    await app.queue_engine.set_break(agent_id, reason)


async def agent_state(app: Application, agent_id: str) -> AgentState:
    return (await app.queue_engine.agent(agent_id))["state"]


async def press(call: SimCall, prompts: PromptCatalogue, digit: str = "1") -> None:
    await call.wait_for_playback(prompts.media("main_menu"))
    call.send_dtmf(digit)


async def talking_to(pbx_sim: PbxSim, call: SimCall, endpoint: str, timeout: float = 5) -> str:
    """Wait until the caller shares a bridge with a leg to ``endpoint``; that leg's id."""
    def agent_leg() -> str | None:
        caller = pbx_sim.channel(call.channel_id)
        bridge = pbx_sim.engine.bridges.get(caller.bridge_id or "") if caller else None
        for member in bridge.channels if bridge else ():
            ch = pbx_sim.channel(member)
            if ch is not None and ch.name.startswith(endpoint + "-"):
                return ch.id
        return None

    return str(await call.wait_for(agent_leg, timeout=timeout, what=f"a conversation with {endpoint}"))


async def record_of(app: Application, call: SimCall):  # type: ignore[no-untyped-def]
    """The call's record with every event so far handled and written."""
    await app.dispatcher.drain()
    await app.records.flush()
    return await app.call_records.by_channel(call.channel_id)


async def ended_record(app: Application, call: SimCall):  # type: ignore[no-untyped-def]
    """The call's record once the app has closed it, else None."""
    record = await record_of(app, call)
    return record if record is not None and record.ended_at is not None else None


class AgentNews:
    """Every agent event the application publishes (what desktops and the wallboard see)."""

    def __init__(self, app: Application, settings: Settings) -> None:
        self._pubsub = app.redis.pubsub()
        self._channel = f"{settings.redis.prefix}:events:agents"
        self.seen: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AgentNews:
        await self._pubsub.subscribe(self._channel)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                self.seen.append(json.loads(message["data"]))

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.2)  # what was published last
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._pubsub.aclose()

    def states_of(self, agent_id: str) -> list[tuple[str, str | None]]:
        return [(m["state"], m["reason"]) for m in self.seen
                if m["type"] == "agent.state" and m["agent_id"] == agent_id]


def requests_to(pbx_sim: PbxSim, method: str, path_end: str) -> list[dict[str, str]]:
    """The query parameters of every ARI request ``method`` to a path ending in ``path_end``
    that the stand-in gets from now on (its contract checker hands them on), in order."""
    seen: list[dict[str, str]] = []

    def note(kind: str, payload: dict[str, Any]) -> None:
        if kind == "request" and payload["method"] == method and payload["path"].endswith(path_end):
            seen.append(dict(payload.get("query") or []))

    pbx_sim.contract.then = note  # type: ignore[attr-defined]
    return seen
