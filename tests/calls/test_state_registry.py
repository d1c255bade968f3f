"""How the call core rebuilds a stored call's state from what the features registered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from calls.flow import BaseState, Ended
from calls.registry import StateRegistry
from calls.store import CallState


@dataclass
class Greeting(BaseState):
    name: ClassVar[str] = "greeting"
    service: str = ""


@dataclass
class Talking(BaseState):
    name: ClassVar[str] = "talking"
    service: str = ""
    agent: str = ""


def stored(state: str, agent_id: str | None = None) -> CallState:
    return CallState(call_id="c1", channel_id="ch1", hotline_number="12315", business_line="general",
                     area_code=None, caller_phone="13800000000", language="zh_CN",
                     started_at=datetime(2025, 1, 1, tzinfo=UTC), state=state, agent_id=agent_id)


@pytest.fixture
def registry() -> StateRegistry:
    states = StateRegistry()
    states.register_first(lambda: Greeting("ivr"))
    states.register(Greeting.name, lambda data: Greeting("ivr"))
    states.register(Talking.name, lambda data: Talking("queues", agent=data.agent_id or ""))
    return states


def test_a_stored_call_resumes_in_its_state_with_the_service_its_feature_gave_it(registry: StateRegistry) -> None:
    assert registry.restore(stored("talking", agent_id="a7")) == Talking("queues", agent="a7")


def test_a_call_stored_in_a_state_nobody_registered_starts_over_from_the_first_state(
        registry: StateRegistry) -> None:
    assert registry.restore(stored("in_a_feature_turned_off")) == Greeting("ivr")


def test_the_end_of_a_call_is_known_without_any_feature() -> None:
    assert isinstance(StateRegistry().restore(stored("ended")), Ended)


def test_two_features_cannot_claim_one_state_name(registry: StateRegistry) -> None:
    with pytest.raises(ValueError, match="'talking' is registered twice"):
        registry.register("talking", lambda data: Talking())
    with pytest.raises(ValueError, match="first state"):
        registry.register_first(lambda: Talking())


def test_without_the_ivr_no_call_can_begin_and_the_error_says_so() -> None:
    with pytest.raises(LookupError, match="the IVR"):
        StateRegistry().first()
