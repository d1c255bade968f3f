"""The desktop's event handlers: its changes to live calls, run on each call's own FIFO."""

from __future__ import annotations

from agent_desktop.monitor import MonitorService, monitor_of
from agent_desktop.phones import PhoneService
from agent_desktop.services import DesktopAction
from ari import models as ari
from calls.services import CallService
from core.plugins import CONSUMED, Subscription


class DesktopStasis:
    def __init__(self, calls: CallService, monitor: MonitorService, phones: PhoneService) -> None:
        self._calls = calls
        self._monitor = MonitorStasis(monitor)
        self._phones = phones

    def subscriptions(self) -> list[Subscription]:
        # The monitors' channels are claimed before the call logic would take them for callers.
        return [*self._monitor.subscriptions(),
                Subscription("DesktopAction", self.on_desktop_action),
                Subscription("EndpointStateChange", self._phones.on_endpoint_state_change)]

    async def on_desktop_action(self, key: str, event: DesktopAction) -> None:
        try:
            taken = await self._calls.deliver(key, event.reaction)
        except Exception as exc:  # noqa: BLE001 - handed to the request that asked
            if not event.done.done():
                event.done.set_exception(exc)
            return
        if not event.done.done():
            event.done.set_result(taken)


class MonitorStasis:
    """Claims the monitors' channel events before the call logic sees them (it would take
    them for callers); every other channel's events go on to the other handlers."""

    def __init__(self, monitor: MonitorService) -> None:
        self._monitor = monitor

    def subscriptions(self) -> list[Subscription]:
        return [Subscription("StasisStart", self.on_stasis_start, first=True),
                Subscription("StasisEnd", self.on_stasis_end, first=True),
                Subscription("ChannelDestroyed", self.on_channel_destroyed, first=True)]

    async def on_stasis_start(self, key: str, event: ari.StasisStart) -> object:
        monitor_id = monitor_of(event.channel.id)
        if monitor_id is None:
            return None
        await self._monitor.entered(event.channel.id, monitor_id)
        return CONSUMED

    async def on_stasis_end(self, key: str, event: ari.StasisEnd) -> object:
        return CONSUMED if monitor_of(event.channel.id) is not None else None

    async def on_channel_destroyed(self, key: str, event: ari.ChannelDestroyed) -> object:
        monitor_id = monitor_of(event.channel.id)
        if monitor_id is None:
            return None
        await self._monitor.end(monitor_id)
        return CONSUMED
