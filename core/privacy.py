"""Personal data in logs: phone numbers, ID card numbers and names are masked before they are written.

:func:`mask_text` finds numbers by their shape, not by their length alone, so that what must
stay readable to follow a call or a case does: the platform's case numbers (19 digits,
``12315`` + date + sequence), call and ticket ids (UUIDs), Asterisk channel ids
(``1795524998.12``). What it masks, in every way people write them, inside any text
(Chinese around them included, ``电话13800138000``):

* mobiles: ``13800138000``, ``138 0013 8000``, ``138-0013-8000``, with ``+86``, ``0086`` or ``86``;
* landlines: ``0571-88881234``, ``(0571)8888-1234``, ``010 1234 5678``, ``+86 571 8888 1234``,
  and local numbers without the area code (``8888-1234``, ``88881234``);
* ID card numbers: 18 characters (the last may be ``X``), and the old 15 digits;
* bank card numbers: 16 to 19 digits, also in groups of four, unless shaped as a case number.

A number joined to letters or digits (``A13800138000``, ``13800138000B``), or joined by a
hyphen to an identifier (the groups of a UUID), is part of that identifier and left alone.
"""

from __future__ import annotations

import logging
import re

#: Not glued to an identifier: no letter or digit, nor ``x-`` / ``9.`` (UUID groups, channel ids), before.
_BEFORE = r"(?<![0-9A-Za-z+])(?<![0-9A-Za-z]-)(?<!\d\.)"
#: ... nor after (``.wav`` after a number is fine: only ``.<digit>`` continues an id).
_AFTER = r"(?![0-9A-Za-z])(?!-[0-9A-Za-z])(?!\.\d)"
_SEP = r"[ -]?"
_COUNTRY = r"(?:\+86|0086|86)[ -]?"
_MOBILE = rf"1[3-9]\d(?:{_SEP}\d{{4}}){{2}}"
_AREA = r"(?:\(0\d{2,3}\)|0\d{2,3})"
_SUBSCRIBER = rf"[2-9]\d{{2,3}}{_SEP}\d{{4}}"
#: The platform's case numbers: 12315, the date, a sequence of 6 digits or more.
_CASE_NO = r"12315(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{6,}(?!\d)"
_NUMBER = "|".join((
    r"\d{17}[\dXx]",                                    # ID card, 18 characters
    rf"(?!{_CASE_NO})\d{{16,19}}",                       # bank card (as the old 7+ digit rule did)
    r"\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?",           # bank card in groups of four
    rf"{_COUNTRY}{_MOBILE}",                            # mobile with the country code
    rf"{_COUNTRY}\(?0?[1-9]\d{{1,2}}\)?{_SEP}{_SUBSCRIBER}",  # landline with the country code
    rf"{_AREA}{_SEP}{_SUBSCRIBER}",                     # landline with its area code
    _MOBILE,
    r"\d{15}",                                          # ID card, old 15 digits
    r"[2-9]\d{2,3}-?\d{4}",                             # local number without the area code
))
_PHONE_RE = re.compile(rf"{_BEFORE}(?:{_NUMBER}){_AFTER}")
_NOT_KEPT = re.compile(r"[ ()\-]")


def mask_phone(number: str | None) -> str:
    """``13812345678`` -> ``138****5678``; a number shorter than 11 keeps only its last 4
    (``88881234`` -> ``****1234``); short or empty values become ``***`` or ``-``."""
    if not number:
        return "-"
    digits = number.strip()
    if len(digits) < 7:
        return "***"
    if len(digits) < 11:
        return f"{'*' * (len(digits) - 4)}{digits[-4:]}"
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_name(name: str | None) -> str:
    """Keep the first character only: ``张三丰`` -> ``张**``."""
    if not name:
        return "-"
    return name[0] + "*" * (len(name) - 1)


_URL_PASSWORD = re.compile(r"(//[^/:@\s]*:)[^/@\s]+@")


def mask_url(text: str) -> str:
    """A URL's password hidden, wherever URLs stand in ``text``:
    ``redis://:secret@host:6379/0`` -> ``redis://:****@host:6379/0``."""
    return _URL_PASSWORD.sub(r"\1****@", text)


def mask_text(text: str) -> str:
    """Mask every phone or ID card number inside free text (see the module's note)."""
    # Separators go: ``138-0013-8000`` and ``13800138000`` mask alike, and no group survives whole.
    return _PHONE_RE.sub(lambda m: mask_phone(_NOT_KEPT.sub("", m.group(0))), text)


class MaskingFilter(logging.Filter):
    """Last line of defence: masks phone and ID numbers in every formatted record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic tells of every plugin it sets up at each start: noise at INFO.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
