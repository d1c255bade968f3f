"""Queue events, in one table named after them.

The agents' legs and the conversation bridge are aliased to the caller's channel, so their
Asterisk events reach the call's flow through the IVR's table (``ivr.stasis``); what is left
here is the queue engine's own news: an agent was assigned to a waiting call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ivr.services import IvrService
from queues.services import QueueOffered, QueueService

Handler = Callable[[str, Any], Awaitable[None]]


class QueueStasis:
    def __init__(self, queues: QueueService, ivr: IvrService) -> None:
        self._queues, self._ivr = queues, ivr

    def table(self) -> dict[str, Handler]:
        return {"QueueOffered": self.on_queue_offered}

    async def on_queue_offered(self, key: str, event: QueueOffered) -> None:
        offer = event.offer
        taken = await self._ivr.deliver(key, lambda state, call: state.on_offer(call, offer))
        flow = self._ivr.flows.get(key)
        if not taken and await self._queues.call_back(offer, self._ivr):
            return  # the caller asked to be called back: their phone rings now
        if not taken or flow is None or flow.call.data.agent_id != offer.agent_id:
            await self._queues.refuse(offer)
