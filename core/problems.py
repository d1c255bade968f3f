"""A broken rule, said once for every audience: where (a JSON path), what (a code), and how to
say it to a person in Chinese and English. The platform contract, the intake API, tickets and
every HTTP refusal speak it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: where (JSON path), what (code), and how to say it to a person."""

    field: str
    code: str
    message_zh: str
    message_en: str

    def to_dict(self) -> dict[str, str]:
        """The platform's 422 ``errors`` item (``field``, ``code``) plus both messages."""
        return {"field": self.field, "code": self.code,
                "message": self.message_en, "message_zh": self.message_zh}

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Problem:
        """Read an ``errors`` item back (messages may be missing when the platform sends none)."""
        message = str(item.get("message", ""))
        return cls(str(item.get("field", "")), str(item.get("code", "")),
                   str(item.get("message_zh", message)), message)


def problems_to_json(problems: Iterable[Problem]) -> list[dict[str, str]]:
    return [p.to_dict() for p in problems]
