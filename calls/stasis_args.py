"""The contract between the dialplan and the application: the ``Stasis()`` arguments.

``dialplans/extensions.conf`` hands every inbound call to us as::

    Stasis(hotline,<hotline number>,<business line>,<area code or empty>)

for example ``Stasis(hotline,12365,quality,)`` or ``Stasis(hotline,12315,general,0571)``.
Asterisk gives the application everything after the app name as ``StasisStart.args``,
so :meth:`InboundArgs.parse` receives ``["12365", "quality", ""]``. The trailing
field is always present (possibly empty) so that the argument list has one shape.
This module is the only place in Python that knows that shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.vocabulary import LINE_OF_NUMBER

#: Chinese area codes: 3 digits (010, 02X) or 4 digits (03XX-09XX), always with the trunk 0.
AREA_CODE = re.compile(r"0[1-9]\d{1,2}")

#: Number of arguments after the application name.
ARG_COUNT = 3


@dataclass(frozen=True)
class InboundArgs:
    hotline_number: str
    business_line: str
    area_code: str | None = None

    @classmethod
    def parse(cls, args: list[str]) -> InboundArgs:
        """Parse ``StasisStart.args``; ``ValueError`` for anything that is not an inbound call."""
        if len(args) != ARG_COUNT:
            raise ValueError(
                f"expected {ARG_COUNT} Stasis arguments (hotline number, business line, "
                f"area code or empty), got {len(args)}: {args!r}"
            )
        number, line, area = (a.strip() for a in args)
        expected_line = LINE_OF_NUMBER.get(number)
        if expected_line is None:
            raise ValueError(
                f"{number!r} is not a hotline number; expected one of {', '.join(LINE_OF_NUMBER)}"
            )
        if line != expected_line:
            raise ValueError(
                f"hotline {number} belongs to business line {expected_line!r}, "
                f"but the dialplan passed {line!r}"
            )
        if area and not AREA_CODE.fullmatch(area):
            raise ValueError(
                f"{area!r} is not an area code (3 or 4 digits starting with 0, e.g. 010 or 0571)"
            )
        return cls(number, line, area or None)

    def to_args(self) -> list[str]:
        """The argument list as the dialplan passes it (inverse of :meth:`parse`)."""
        return [self.hotline_number, self.business_line, self.area_code or ""]


#: Marker in the ids of the channels and bridges the IVR creates for a call (its speech
#: listener): ``<caller channel id>-ivr-media-1``. Resynchronization recognises by it the
#: ones a previous process left behind.
HELPER_MARK = "-ivr-"


def is_helper_id(object_id: str) -> bool:
    return HELPER_MARK in object_id
