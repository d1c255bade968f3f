"""The menus' keys: DTMF key -> choice, for every menu that takes keys.

The menu states (``ivr.flow``) act on these keys, and the speech packs give a spoken digit
the meaning of its key (``ivr.speech.locale``), so one table serves both and a pack can never
disagree with what the keys do. It lives here, under the speech package, so that speech
needs nothing of the IVR's states.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: DTMF key -> menu choice of the main menu.
MAIN_MENU: Mapping[str, str] = MappingProxyType(
    {"1": "complaint", "2": "report", "3": "consultation", "0": "operator"}
)

#: DTMF key -> answer in the confirmation turn ("you said complaint: press 1 or say yes...").
CONFIRM_MENU: Mapping[str, str] = MappingProxyType({"1": "yes", "2": "no"})

#: Menu name -> its keys, for the menus that take keys.
MENU_KEYS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"main_menu": MAIN_MENU, "confirm": CONFIRM_MENU}
)
