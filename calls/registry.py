"""Which state a stored call is in, by name: filled by the features at start-up.

A call's state is stored by name only (``CallState.state``); a restarted process rebuilds
the state object from it. The states belong to the features (the IVR's menus, the queues),
which register them here with a factory that gives each the services it needs; the call core
knows none of them. One registry per application, built by the composition root.
"""

from __future__ import annotations

from collections.abc import Callable

from calls.flow import Ended, State
from calls.store import CallState

#: Rebuilds a state from the stored call (most ignore it; a few take a field back from it).
StateFactory = Callable[[CallState], State]


class StateRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, StateFactory] = {Ended.name: lambda data: Ended()}
        self._first: Callable[[], State] | None = None

    def register(self, name: str, factory: StateFactory) -> None:
        """``name``: the state's ``name``; a name may be registered once (two features must
        never claim one stored name, or a restart would resume calls in the wrong one)."""
        if name in self._factories:
            raise ValueError(f"call state {name!r} is registered twice")
        self._factories[name] = factory

    def register_first(self, factory: Callable[[], State]) -> None:
        """The state every new inbound call begins in (the IVR's answering)."""
        if self._first is not None:
            raise ValueError("the first state of new calls is registered twice")
        self._first = factory

    def first(self) -> State:
        if self._first is None:
            raise LookupError("no feature registered the state new calls begin in (the IVR does)")
        return self._first()

    def restore(self, data: CallState) -> State:
        """The state object a stored call was in; a name nobody registered (a feature turned off
        since) starts the call over from the first state."""
        factory = self._factories.get(data.state)
        return factory(data) if factory is not None else self.first()
