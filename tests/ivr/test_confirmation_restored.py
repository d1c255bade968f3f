"""A call stored in its confirmation turn ("you said complaint?") is picked up there after a restart."""

from __future__ import annotations

from datetime import UTC, datetime

from calls.registry import StateRegistry
from calls.store import CallState
from ivr.flow import ConfirmChoice, HoldRouter, MainMenu, Menus, register_states


def stored(state: str, *menu_path: str) -> CallState:
    return CallState(call_id="c1", channel_id="ch1", hotline_number="12315", business_line="general",
                     area_code=None, caller_phone="13800138000", language="ko-KR",
                     started_at=datetime(2026, 12, 6, tzinfo=UTC), state=state, menu_path=list(menu_path))


def registry() -> StateRegistry:
    states = StateRegistry()
    register_states(states, Menus(router=HoldRouter(), max_attempts=3))
    return states


def test_a_call_restored_in_its_confirmation_turn_is_asked_about_the_choice_it_was_asked_about() -> None:
    restored = registry().restore(stored("confirm_choice", "main_menu:speech:confirm:complaint", "confirm:speech:no",
                                         "main_menu:speech:confirm:report"))
    assert isinstance(restored, ConfirmChoice) and restored.choice == "report"


def test_a_call_restored_in_a_confirmation_turn_its_path_does_not_explain_goes_back_to_the_menu() -> None:
    assert isinstance(registry().restore(stored("confirm_choice", "main_menu:1:complaint")), MainMenu)
