"""Listen, whisper and barge: a supervisor joins an agent's call from their own phone.

Asterisk makes a snoop channel on the agent's leg (``POST /channels/{id}/snoop``): it hears
what the agent hears and says (``spy=both``), and what is played into it reaches the agent
(``whisper=out``: whisper) or the agent and, through the agent's leg, the caller
(``whisper=both``: barge). The snoop channel and a call to the supervisor's endpoint are put
into a mixing bridge of their own. Stopping hangs both up and destroys the bridge; so does
either of them going away (the call ended, the supervisor put the phone down).

Each monitor's channels and bridge are named after it (``monitor-<id>``, ``-spy``,
``-phone``), so that their Asterisk events are recognised here (:class:`agent_desktop.stasis.MonitorStasis`) and
a stop needs nothing but the id. Who started it is kept in Redis, so that any process may
stop it.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import suppress

from redis.asyncio import Redis

from agent_desktop.services import DesktopUser, Refused
from ari.errors import AriError
from ari.rest import AriRest
from calls.store import CallStateStore
from queues.engine import QueueEngine

log = logging.getLogger(__name__)

MARK = "monitor-"
#: Snoop directions on the agent's leg for each mode: (spy, whisper).
MODES: dict[str, tuple[str, str]] = {"listen": ("both", "none"), "whisper": ("both", "out"), "barge": ("both", "both")}
#: How long a monitor's owner is remembered (a monitor forgotten this long is surely over).
RECORD_TTL_S = 12 * 3600



def monitor_of(object_id: str) -> str | None:
    """The monitor id in one of its channel or bridge ids, else None."""
    if not object_id.startswith(MARK):
        return None
    rest = object_id[len(MARK):]
    return rest.split("-", 1)[0] or None


class MonitorService:
    def __init__(self, *, ari: AriRest, engine: QueueEngine, store: CallStateStore, redis: Redis, prefix: str,
                 app_name: str, ring_timeout_s: int = 30) -> None:
        self.ari, self.engine, self.store, self.redis = ari, engine, store, redis
        self.prefix, self.app_name, self.ring_timeout_s = prefix, app_name, ring_timeout_s

    def _key(self, monitor_id: str) -> str:
        return f"{self.prefix}:monitor:{monitor_id}"

    async def agent_home(self, call_id: str) -> str:
        """The home jurisdiction of the agent on the call (what decides whose scope it is in)."""
        live = await self.engine.call(call_id)
        if live is None:
            raise Refused(404, "not_found", f"there is no live call {call_id}", f"不存在进行中的通话 {call_id}")
        agent = await self.engine.agent(live["agent_id"]) if live["agent_id"] else None
        if agent is None or live["state"] != "on_call":
            raise Refused(409, "call_state", "this call is not connected to an agent now", "该通话当前未接通坐席")
        return str(agent["home"])

    async def start(self, user: DesktopUser, call_id: str, mode: str) -> str:
        """Ring the supervisor's phone and join it to the call as ``mode``; the monitor's id."""
        spy, whisper = MODES[mode]
        endpoint = getattr(user, "sip_endpoint", None)
        if not endpoint:
            raise Refused(409, "no_phone", "your account has no phone endpoint to listen on; ask an admin",
                          "您的账号未配置话机，无法监听，请联系管理员")
        leg = await self._agent_leg(call_id)
        monitor_id = uuid.uuid4().hex[:16]
        await self.redis.set(self._key(monitor_id), f"{user.id}:{call_id}:{mode}", ex=RECORD_TTL_S)
        bridge = f"{MARK}{monitor_id}"
        try:
            await self.ari.create_bridge(bridge_id=bridge, name=f"monitor {call_id}")
            await self.ari.snoop(leg, app=self.app_name, spy=spy, whisper=whisper, app_args=["monitor", monitor_id],
                                 snoop_id=f"{bridge}-spy")
            await self.ari.originate(endpoint, app=self.app_name, app_args=["monitor", monitor_id],
                                     timeout_s=self.ring_timeout_s, channel_id=f"{bridge}-phone")
        except AriError as exc:
            log.warning("monitor of call %s could not start: %s", call_id, exc)
            await self.end(monitor_id)
            if exc.status in (404, 409, 412):
                raise Refused(409, "call_state", "the call has just ended", "通话刚刚结束") from None
            raise Refused(502, "pbx_unavailable", "the telephone system did not respond; try again",
                          "电话系统无响应，请重试") from None
        log.info("supervisor %s monitors call %s (%s) as %s", user.id, call_id, monitor_id, mode)
        return monitor_id

    async def _agent_leg(self, call_id: str) -> str:
        live = await self.engine.call(call_id)
        data = await self.store.load(live["channel_id"]) if live else None
        if data is None or not data.agent_channel or live is None or live["state"] != "on_call":
            raise Refused(409, "call_state", "this call is not connected to an agent now", "该通话当前未接通坐席")
        return data.agent_channel

    async def stop(self, user: DesktopUser, monitor_id: str) -> None:
        """End a monitor its owner (or an admin) started."""
        record = await self.redis.get(self._key(monitor_id))
        owner = (record.decode() if isinstance(record, bytes) else record or "").split(":", 1)[0]
        if not owner:
            raise Refused(404, "not_found", f"there is no monitor {monitor_id}", f"不存在监听 {monitor_id}")
        if owner != str(user.id) and getattr(user, "role", None) != "admin":
            raise Refused(403, "forbidden", "this monitor is someone else's", "这是其他人的监听")
        await self.end(monitor_id)

    async def end(self, monitor_id: str) -> None:
        """Hang up both channels and destroy the bridge; whatever is already gone is fine."""
        await self.redis.delete(self._key(monitor_id))
        base = f"{MARK}{monitor_id}"
        for channel_id in (f"{base}-spy", f"{base}-phone"):
            with suppress(AriError):
                await self.ari.hangup(channel_id)
        with suppress(AriError):
            await self.ari.destroy_bridge(base)

    async def entered(self, channel_id: str, monitor_id: str) -> None:
        """A monitor's channel is in Stasis: into the monitor's bridge (422 before that)."""
        if not await self.redis.exists(self._key(monitor_id)):
            await self.end(monitor_id)  # stopped while the channel was on its way
            return
        try:
            await self.ari.add_channel(f"{MARK}{monitor_id}", channel_id)
        except AriError as exc:
            log.info("monitor %s: joining %s failed (%s); ending it", monitor_id, channel_id, exc)
            await self.end(monitor_id)
