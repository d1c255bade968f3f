"""Whether each agent's phone can ring: Asterisk's view of the agents' endpoints.

With the browser softphone (``[desktop] phone_mode = "sip"``) an agent is reachable only while
SIP.js is registered to Asterisk. Otherwise ``POST /channels`` to ``PJSIP/<agent>`` answers
500 "Allocation failed" (FIELD-NOTES: an endpoint with no contact); the queue would then put
the agent on break for a "missed" call and play the caller the callback offer again and again.
So the desktop follows Asterisk's endpoint states and never lets such an agent take calls:

- after every (re)connect of the ARI events WebSocket (:meth:`PhoneService.resync`) the
  application subscribes to the endpoint of every agent logged in to the queues
  (``endpoint:PJSIP/1001``, fifty to a request), then reads each (``GET
  /endpoints/PJSIP/{resource}``); events that arrive meanwhile wait in the socket and are
  handled after, in order, so nothing is missed or applied out of order. An agent who logs in
  later is followed from their login (or, logged in through another process, from the first
  state this one hears of): subscribe, then read. Only agents' phones: ``endpoint:PJSIP``
  would bring every event of every SIP channel, the callers' on the trunk too, once more than
  their call's own subscription does (issue 15: a third of a call's events were such copies);
- then it follows ``EndpointStateChange`` (:meth:`PhoneService.on_endpoint_state_change`);
- the states are kept in Redis, where every process's desktop API reads them;
- an available agent (or one in wrap-up, who becomes available by itself when it ends) whose
  endpoint goes offline is put on break with reason ``phone_offline``, so the queue engine
  offers them nothing; when the phone comes back they stay on break until they choose
  Available (the desktop refuses that while the phone is offline: :meth:`PhoneService.reachable`).

In ``simulated`` mode there are no phones: nothing here runs and nothing is refused.

Keys (``P`` = the Redis prefix): ``P:desktop:phones:state`` hash endpoint (``PJSIP/1001``) ->
``{"state", "since_ms"}``; ``P:desktop:phones:agents`` hash endpoint -> agent id (filled at
queue login and at every resync).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from ari.errors import AriError, AriNotFound, AriUnprocessable
from ari.models import Endpoint, EndpointStateChange
from ari.rest import AriRest
from core.settings import DesktopSettings
from queues.engine import AgentState, AgentStateError, QueueEngine, UnknownAgentError

log = logging.getLogger(__name__)

#: The break reason of an agent whose phone went offline (the page explains it).
PHONE_OFFLINE = "phone_offline"
#: The technology of the agents' endpoints (their WebRTC endpoints in pjsip.conf).
TECHNOLOGY = "PJSIP"
#: At most this many endpoint reads at once after a reconnect (hundreds of agents log in).
RESYNC_CONCURRENCY = 8
#: Endpoints subscribed to in one request (their names go in its query string).
SUBSCRIBE_BATCH = 50
#: How long a state this process heard in an ``EndpointStateChange`` is trusted without reading
#: Redis. Asterisk sends the event for every channel that comes to or leaves an endpoint (the
#: trunk's and the agent's, twice per call each) though the state stays ``online``: without
#: this each was three Redis round trips, a log line and a message to the desktops (issue 15).
#: Bounded so that a state another process stored is read again within this time, when this
#: process could not follow the endpoint (its subscription failed): while it follows it, it
#: hears every change Asterisk makes, and what it heard stays true until the next resync.
SEEN_TRUST_S = 30.0

#: ``online``/``offline``/``unknown`` as Asterisk says; ``missing`` when Asterisk has no such
#: endpoint (404: not configured in pjsip.conf); ``unseen`` when we have not heard of it yet.
PhoneStateName = Literal["online", "offline", "unknown", "missing", "unseen"]
#: States in which a call to the endpoint cannot ring.
UNREACHABLE: frozenset[str] = frozenset({"offline", "missing"})


@dataclass(frozen=True, slots=True)
class PhoneState:
    endpoint: str
    state: str
    since_ms: int | None

    @property
    def reachable(self) -> bool:
        return self.state not in UNREACHABLE


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """``PJSIP/1001`` -> ``("PJSIP", "1001")``; ValueError for anything else."""
    tech, sep, resource = endpoint.partition("/")
    if not sep or not tech or not resource or "/" in resource:
        raise ValueError(f"an endpoint is TECH/resource, got {endpoint!r}")
    return tech, resource


def states_key(prefix: str) -> str:
    """The hash of the phones' stored states, endpoint -> :func:`stored_state`."""
    return f"{prefix}:desktop:phones:state"


def stored_state(state: str, since_ms: int | None) -> str:
    """A phone's state as kept in :func:`states_key` (what every process's desktop API reads)."""
    return json.dumps({"state": state, "since_ms": since_ms}, separators=(",", ":"))


class PhoneService:
    def __init__(self, *, ari: AriRest, engine: QueueEngine, redis: Redis, prefix: str, app_name: str,
                 settings: DesktopSettings, events_channel: str) -> None:
        self.ari, self.engine, self.redis, self.app_name = ari, engine, redis, app_name
        self.settings = settings
        self._states_key = states_key(prefix)
        self._agents_key = f"{prefix}:desktop:phones:agents"
        #: Where the queue engine announces agents (``AgentEvents``): the desktops listen there.
        self._events_channel = events_channel
        #: Endpoint -> (state, monotonic time) as last heard in an event and stored by this
        #: process; forgotten at every resync (events may have been missed before it).
        self._seen: dict[str, tuple[str, float]] = {}
        #: Agent -> endpoint, as remembered by this process (a login here, a resync, a read).
        self._endpoint_of: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.phone_mode == "sip"

    # ----------------------------------------------------------------- the stored states

    async def state(self, endpoint: str) -> PhoneState:
        raw = await self.redis.hget(self._states_key, endpoint)
        if raw is None:
            return PhoneState(endpoint, "unseen", None)
        try:
            doc = json.loads(raw)
            return PhoneState(endpoint, str(doc["state"]), int(doc["since_ms"]) if doc.get("since_ms") else None)
        except (ValueError, KeyError, TypeError):
            return PhoneState(endpoint, "unseen", None)

    async def _store(self, endpoint: str, state: str) -> PhoneState:
        """Store ``state``; ``since`` moves only when the state changes."""
        return (await self._change(endpoint, state))[0]

    async def _change(self, endpoint: str, state: str) -> tuple[PhoneState, bool]:
        """Store ``state``; the stored state and whether it is a change."""
        before = await self.state(endpoint)
        if before.state == state and before.since_ms is not None:
            return before, False
        now = PhoneState(endpoint, state, now_ms())
        await self.redis.hset(self._states_key, endpoint, stored_state(state, now.since_ms))
        return now, True

    async def remember(self, agent_id: str, endpoint: str) -> None:
        """Whose phone ``endpoint`` is (its events name the endpoint, not the agent)."""
        await self.redis.hset(self._agents_key, endpoint, agent_id)
        self._endpoint_of[agent_id] = endpoint

    def _heard(self, endpoint: str) -> str | None:
        """The state of ``endpoint`` this process heard and stored less than SEEN_TRUST_S ago."""
        seen = self._seen.get(endpoint)
        if seen is None or (not self.following(endpoint) and time.monotonic() - seen[1] > SEEN_TRUST_S):
            return None
        return seen[0]

    async def agent_of(self, endpoint: str) -> str | None:
        raw = await self.redis.hget(self._agents_key, endpoint)
        return raw.decode() if isinstance(raw, bytes) else raw

    # ----------------------------------------------------------------- asking Asterisk

    async def read(self, endpoint: str) -> PhoneState:
        """Asterisk's state of ``endpoint`` now (stored too). AriError when Asterisk cannot say."""
        tech, resource = split_endpoint(endpoint)
        try:
            found = await self.ari.endpoint(tech, resource)
        except AriNotFound:
            return await self._store(endpoint, "missing")
        return await self._store(endpoint, _state_of(found))

    async def reachable(self, endpoint: str) -> PhoneState:
        """The state to decide on before an agent goes available: the stored one when it says
        the phone can ring, else Asterisk's own answer now (the phone may have registered a
        moment ago, before its event reached us). AriError when Asterisk cannot say."""
        stored = await self.state(endpoint)
        if stored.state in ("online", "unknown"):
            return stored
        return await self.read(endpoint)

    # ----------------------------------------------------------------- following the phones

    def following(self, endpoint: str) -> bool:
        """Whether this process has subscribed to ``endpoint``'s events since the last resync."""
        return self.ari.follows(self.app_name, f"endpoint:{endpoint}")

    async def follow(self, endpoints: Iterable[str]) -> None:
        """Subscribe the application to these phones' events (those not followed yet). A batch
        Asterisk refuses (an endpoint it does not have: 422) is asked for one by one; a phone
        that cannot be followed is still checked when its agent chooses Available."""
        todo = [e for e in dict.fromkeys(endpoints) if not self.following(e)]
        for i in range(0, len(todo), SUBSCRIBE_BATCH):
            batch = todo[i:i + SUBSCRIBE_BATCH]
            try:
                await self.ari.subscribe(self.app_name, [f"endpoint:{e}" for e in batch])
            except AriUnprocessable as exc:  # Asterisk checks them all first: one it does not have
                if len(batch) > 1:
                    for endpoint in batch:
                        await self.follow([endpoint])
                    continue
                log.warning("phones: Asterisk has no endpoint %s to follow (%s)", batch[0], exc)
            except AriError as exc:
                log.warning("phones: following %d phone(s) failed (%s); each is checked when its agent "
                            "chooses Available, and followed at the next reconnect", len(batch), exc)

    # ----------------------------------------------------------------- after every (re)connect

    async def resync(self) -> None:
        """Subscribe to the logged-in agents' endpoints, then read each and put the available
        agents whose phone is offline on break. Never raises: the calls' own resync must not
        fail because of the phones (it is logged, and done again at the next connect)."""
        if not self.enabled:
            return
        self._seen.clear()
        agents = await self.engine.logged_in()
        limit = asyncio.Semaphore(RESYNC_CONCURRENCY)

        async def endpoint_of(agent_id: str) -> tuple[str, str] | None:
            async with limit:
                agent = await self.engine.agent(agent_id)
            return (agent_id, agent["endpoint"]) if agent is not None and agent["endpoint"] else None

        found = await asyncio.gather(*(endpoint_of(a) for a in agents), return_exceptions=True)
        phones = [f for f in found if isinstance(f, tuple)]
        # Subscribe first: a change after this point arrives as an event, handled after the
        # reads below (events wait in the socket until the resync is done).
        await self.follow(endpoint for _, endpoint in phones)

        async def one(agent_id: str, endpoint: str) -> str | None:
            async with limit:
                return await self._resync_agent(agent_id, endpoint)

        results = await asyncio.gather(*(one(*p) for p in phones), return_exceptions=True)
        offline = sum(1 for r in results if r in UNREACHABLE)
        failed = [r for r in (*found, *results) if isinstance(r, BaseException)]
        for error in failed[:3]:
            log.warning("phones: resync of an agent's phone failed: %s", error or type(error).__name__)
        log.info("phones: %d logged-in agent(s) checked, %d phone(s) offline", len(agents), offline)

    async def _resync_agent(self, agent_id: str, endpoint: str) -> str | None:
        await self.remember(agent_id, endpoint)
        try:
            state = await self.read(endpoint)
        except ValueError:
            return None  # not TECH/resource: nothing Asterisk could tell
        self._seen[endpoint] = (state.state, time.monotonic())
        if not state.reachable:
            await self.keep_from_calls(agent_id)
        await self._announce(agent_id, state)
        return state.state

    # ----------------------------------------------------------------- events

    async def on_endpoint_state_change(self, _key: str, event: EndpointStateChange) -> None:
        """``EndpointStateChange``: store the new state; an offline phone takes its agent out."""
        if not self.enabled:
            return
        found = event.endpoint
        if found.technology.upper() != TECHNOLOGY or not found.resource:
            return
        endpoint = f"{TECHNOLOGY}/{found.resource}"
        new = _state_of(found)
        if self._heard(endpoint) == new:
            return  # a channel came or went; the endpoint's state is the one stored
        state, changed = await self._change(endpoint, new)
        self._seen[endpoint] = (new, time.monotonic())
        if not changed and state.reachable:
            return  # stored already (by us before, or another process): nothing to tell
        agent_id = await self.agent_of(endpoint)
        if agent_id is None:
            return  # a trunk, or an agent not logged in since: stored for when they are
        log.info("phones: agent %s's phone %s is %s", agent_id, endpoint, state.state)
        if not state.reachable:
            await self.keep_from_calls(agent_id)
        await self._announce(agent_id, state)

    def wants(self, message: dict[str, Any]) -> bool:
        """Whether :meth:`agent_changed` has anything to do for this agent event: decided here,
        without a task, for the many that need nothing (several a call, issue 15)."""
        if not self.enabled or message.get("type") != "agent.state":
            return False
        state, reason = message.get("state"), message.get("reason")
        if not (state in (AgentState.AVAILABLE, AgentState.WRAP_UP)
                or (state == AgentState.BREAK and reason == "no_answer")):
            return False
        known = self._endpoint_of.get(str(message.get("agent_id") or ""))
        heard = self._heard(known) if known is not None else None
        # The phone this process last heard of can ring: nothing to look at (two Redis reads a call).
        return heard is None or heard in UNREACHABLE

    async def agent_changed(self, message: dict[str, Any]) -> None:
        """An agent event of the queue engine (``<prefix>:events:agents``), from any process.

        An agent on a call when their phone dropped goes to wrap-up after it, and from
        wrap-up to available by themselves; an agent offered a call their phone could not
        ring is put on break "no_answer". Either way, while the phone is offline they belong
        on break ``phone_offline``, which also says why."""
        if not self.wants(message):
            return
        agent_id = str(message.get("agent_id") or "")
        agent = await self.engine.agent(agent_id) if agent_id else None
        if agent is None or not agent["endpoint"]:
            return
        # An agent who logged in through another process: whose phone it is, for next time
        # (an agent's endpoint is their SIP account's, the same at every login).
        endpoint = self._endpoint_of[agent_id] = agent["endpoint"]
        await self.follow([endpoint])  # before the read: a change after it is heard
        followed = self.following(endpoint)
        state = await self.state(endpoint)
        if state.state == "unseen" and followed:
            state = await self._ask(endpoint, state)
        if followed and state.state != "unseen":
            # Not over a state an event brought meanwhile: that one is newer than the read.
            self._seen.setdefault(endpoint, (state.state, time.monotonic()))
        if not state.reachable:
            await self.keep_from_calls(agent_id)

    async def _ask(self, endpoint: str, stored: PhoneState) -> PhoneState:
        """Asterisk's state of a phone nobody has read yet (its agent was put in a queue
        without a login through a desktop: a supervisor's tool, a benchmark), stored: once
        followed, its changes come as events, and the agent's later events read nothing (the
        two reads of an unseen phone were at every wrap-up and every available: four Redis
        round trips a call, issue 15). ``stored`` when Asterisk cannot say."""
        try:
            return await self.read(endpoint)
        except AriError as exc:
            log.warning("phones: the state of %s not read: %s", endpoint, exc or type(exc).__name__)
            return stored

    async def keep_from_calls(self, agent_id: str) -> None:
        """Put the agent on break ``phone_offline`` if they could be offered a call (or were
        just put on break for one their phone could not ring)."""
        agent = await self.engine.agent(agent_id)
        if agent is None:
            return
        state, reason = agent["state"], agent["reason"]
        if state in (AgentState.AVAILABLE, AgentState.WRAP_UP) or (state is AgentState.BREAK and reason == "no_answer"):
            try:
                await self.engine.set_break(agent_id, PHONE_OFFLINE)
            except (AgentStateError, UnknownAgentError):
                return  # offered a call or logged out meanwhile: their state moved on without us
            log.info("phones: agent %s put on break: their phone is offline", agent_id)

    async def _announce(self, agent_id: str, state: PhoneState) -> None:
        """Tell the agent's desktops (in every process) that their phone's state changed."""
        message = {"type": "agent.phone", "agent_id": agent_id, "endpoint": state.endpoint, "state": state.state}
        try:
            await self.redis.publish(self._events_channel, json.dumps(message, separators=(",", ":")))
        except Exception as exc:  # noqa: BLE001 - news for the desktops; the state is stored
            log.warning("phones: announcing a phone state failed: %s", exc or type(exc).__name__)


def _state_of(found: Endpoint) -> str:
    """Asterisk's ``state`` of an Endpoint; absent means Asterisk does not know either."""
    state = (found.state or "").lower()
    return state if state in ("online", "offline") else "unknown"
