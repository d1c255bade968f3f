"""Personal data in logs: phone numbers and names are masked before they are written."""

from __future__ import annotations

import logging
import re

# Runs of 7+ digits (optionally with a leading +) are phone-number-like; shorter runs
# (hotline numbers such as 12315, DTMF digits, counts) stay readable. Runs that are part
# of an identifier stay readable too, since they are needed to follow a call in the logs:
# digits inside a UUID or word (joined by letters, "_" or "-") and Asterisk channel ids
# ("1795524998.12").
_PHONE_RE = re.compile(r"(?<![\w-])\+?\d{7,}(?![\w-]|\.\d)")


def mask_phone(number: str | None) -> str:
    """``13812345678`` -> ``138****5678``; short or empty values become ``***``."""
    if not number:
        return "-"
    digits = number.strip()
    if len(digits) < 7:
        return "***"
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_name(name: str | None) -> str:
    """Keep the first character only: ``张三丰`` -> ``张**``."""
    if not name:
        return "-"
    return name[0] + "*" * (len(name) - 1)


def mask_text(text: str) -> str:
    """Mask every phone-number-like run inside free text."""
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


class MaskingFilter(logging.Filter):
    """Last line of defence: masks phone-like digit runs in every formatted record."""

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
