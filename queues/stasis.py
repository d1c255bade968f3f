"""Queue events, in one table named after them.

The agents' legs and the conversation bridge are aliased to the caller's channel, so their
Asterisk events reach the call's flow through the IVR's table (``ivr.stasis``); what is left
here is the queue engine's own news: an agent was assigned to a waiting call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from calls.call import Call
from calls.flow import State
from calls.services import CallService
from queues.engine import Offer
from queues.flow import InQueue
from queues.services import QueueOffered, QueueService

Handler = Callable[[str, Any], Awaitable[None]]


class QueueStasis:
    def __init__(self, queues: QueueService, calls: CallService) -> None:
        self._queues, self._calls = queues, calls

    def table(self) -> dict[str, Handler]:
        return {"QueueOffered": self.on_queue_offered}

    async def on_queue_offered(self, key: str, event: QueueOffered) -> None:
        offer = event.offer
        taken = await self._calls.deliver(key, lambda state, call: _offered(state, call, offer))
        flow = self._calls.flows.get(key)
        if not taken and await self._queues.call_back(offer, self._calls):
            return  # the caller asked to be called back: their phone rings now
        if not taken or flow is None or flow.call.data.agent_id != offer.agent_id:
            await self._queues.refuse(offer)


async def _offered(state: State, call: Call, offer: Offer) -> State:
    """Only a waiting call takes an offer; in any other state it is left as it is (and refused)."""
    return await state.on_offer(call, offer) if isinstance(state, InQueue) else state
