"""Each agent's conversation bridge, kept between their calls (issue 15).

A bridge made and destroyed for every call cost two of its ten requests to Asterisk, about
0.37 ms of the application's CPU a call at 1 call/s on the real switch. So the bridge an agent's
first call is put through in stays theirs: when the call is over, caller and agent leave it
(the caller hangs up, the agent's leg is hung up) and the agent's next call joins it again.

An agent's bridge is made ahead of their first call when this process sees them log in, and for
every logged-in agent after a start or a reconnect (``QueueService.prepare_bridges``): their first
call is then put through without it too. Made at the call otherwise (they logged in elsewhere).

The rules that kept failed connects clean still hold:

- a bridge is made under a new attempt's id (``<caller>-call-<attempt>``, never used before),
  so an id is never reused after a failure;
- any failure with a bridge (a step of connecting, a leg or a recording that could not be
  ended) forgets it here, and the caller of :meth:`forget` destroys it or leaves it to the sweep;
- only what this process made and saw end cleanly is kept; a call restored after a restart
  ends in a bridge this process does not know, which is destroyed as before.

Kept bridges live in this process's memory only: a restarted process makes new ones, and its
resynchronization destroys the idle ones of the process before it (``QueueService``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

#: The name of an agent's bridge (``agent 1001``): what stays in Asterisk between their calls,
#: empty, is recognised by it (``PbxSim.wait_idle``, the tests' checks that nothing is left).
NAME_PREFIX = "agent "


def bridge_name(agent_id: str) -> str:
    return f"{NAME_PREFIX}{agent_id}"


def is_kept_idle(name: str, channels: Collection[str]) -> bool:
    """Whether a bridge is an agent's, empty between their calls (not something left over)."""
    return name.startswith(NAME_PREFIX) and not channels


class AgentBridges:
    """Which bridge each agent has, and which of them a call is in now."""

    def __init__(self) -> None:
        self._of_agent: dict[str, str] = {}
        self._agent_of: dict[str, str] = {}
        #: Bridges a call is being put through in or talks in (kept or not yet).
        self._busy: set[str] = set()

    def has(self, agent_id: str) -> bool:
        return agent_id in self._of_agent

    def making(self, bridge_id: str) -> None:
        """``bridge_id`` is being made ahead of a call: the sweep must leave it meanwhile."""
        self._busy.add(bridge_id)

    def prepared(self, agent_id: str, bridge_id: str) -> bool:
        """``bridge_id``, made ahead, is ``agent_id``'s; False if they got one meanwhile (a call
        came first): then it is not needed."""
        self._busy.discard(bridge_id)
        if agent_id in self._of_agent:
            return False
        self._of_agent[agent_id], self._agent_of[bridge_id] = bridge_id, agent_id
        return True

    def take(self, agent_id: str, new_id: str) -> tuple[str, bool]:
        """The bridge to put ``agent_id``'s call through in, and whether it must be made first:
        the agent's idle one, else ``new_id``, which becomes theirs when they have none (an agent
        whose bridge is still busy, which the queues never allow, gets a bridge for this call only)."""
        kept = self._of_agent.get(agent_id)
        if kept is not None and kept not in self._busy:
            self._busy.add(kept)
            return kept, False
        if kept is None and agent_id:
            self._of_agent[agent_id], self._agent_of[new_id] = new_id, agent_id
        self._busy.add(new_id)
        return new_id, True

    def release(self, bridge_id: str) -> bool:
        """The call in ``bridge_id`` is over and caller and agent are out of it: True if it is
        kept for the agent's next call, False if it is not one of ours (destroy it)."""
        self._busy.discard(bridge_id)
        return bridge_id in self._agent_of

    def forget(self, bridge_id: str) -> None:
        """Never use ``bridge_id`` again (something with it failed, or it goes with a transfer)."""
        self._busy.discard(bridge_id)
        agent_id = self._agent_of.pop(bridge_id, None)
        if agent_id is not None and self._of_agent.get(agent_id) == bridge_id:
            del self._of_agent[agent_id]

    def owns(self, bridge_id: str) -> bool:
        """Whether this process uses ``bridge_id`` now (kept, or a call in it): the sweep leaves it."""
        return bridge_id in self._agent_of or bridge_id in self._busy

    def idle(self, *, but: Collection[str] = ()) -> list[str]:
        """Forget and return the idle bridges of every agent not in ``but``: all of them when the
        process stops, those of agents who logged out when ``but`` is the logged-in ones."""
        gone = [b for a, b in self._of_agent.items() if a not in but and b not in self._busy]
        for bridge_id in gone:
            self.forget(bridge_id)
        return gone

    def missing(self, existing: Iterable[str]) -> list[str]:
        """Forget and return the agents' bridges Asterisk no longer has (it restarted): a call
        in one ended with it, and an idle one would fail the agent's next connect."""
        there = set(existing)
        gone = [b for b in self._of_agent.values() if b not in there]
        for bridge_id in gone:
            self.forget(bridge_id)
        return gone

    @property
    def kept(self) -> int:
        return len(self._of_agent)
