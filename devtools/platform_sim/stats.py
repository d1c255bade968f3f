"""What the stand-in counted, for tests, the demo and the benchmark."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request: when it arrived, the status answered (``None``: dropped) and the
    ``Retry-After`` seconds the answer announced, if any."""

    at: float
    status: int | None
    retry_after_s: float | None


@dataclass
class SimStats:
    #: Requests to the contract's paths (control endpoints are not counted).
    requests: int = 0
    #: Cases, call records and progress steps stored for the first time.
    stored: int = 0
    call_records_stored: int = 0
    progress_recorded: int = 0
    #: Identical re-sends answered with the original result (200).
    replayed: int = 0
    #: 409: same key or step_id with a different body, or a step out of order.
    conflicts: int = 0
    rejected_400: int = 0
    rejected_404: int = 0
    rejected_413: int = 0
    rejected_422: int = 0
    unauthorized: int = 0
    rate_limited: int = 0
    #: Faults by kind (``error_503``, ``drop_after_store``, ``outage``, ``latency`` ...).
    faults_injected: Counter[str] = field(default_factory=Counter)
    #: How many times each document was stored, by ``(kind, org, id)`` where kind is
    #: ``case`` or ``call_record``: "each case stored exactly once" is every count being 1.
    store_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # Kept as they happen: ``GET /sim/stats`` is polled while 100,000s of cases are stored.
    _duplicates: set[tuple[str, str, str]] = field(default_factory=set, repr=False)
    #: Every request to the contract's paths as it arrived (platform clock), when asked for
    #: (``PlatformSim(record_arrivals=True)``): what a test of a sender's back-pressure reads.
    arrivals: list[Arrival] | None = None

    def note_arrival(self, at: float, status: int | None, retry_after: str | None) -> None:
        if self.arrivals is not None:
            self.arrivals.append(Arrival(at, status, float(retry_after) if retry_after else None))

    def count_stored(self, kind: str, org: str, doc_id: str) -> None:
        key = (kind, org, doc_id.lower())
        self.store_counts[key] += 1
        if self.store_counts[key] > 1:
            self._duplicates.add(key)

    def duplicates(self) -> list[tuple[str, str, str]]:
        """Documents stored more than once (the stand-in's promise is that there are none)."""
        return sorted(self._duplicates)

    def to_json(self) -> dict[str, Any]:
        """The counters for ``GET /sim/stats``; per-document counts are summarised, not listed."""
        doc: dict[str, Any] = {name: getattr(self, name) for name in (
            "requests", "stored", "call_records_stored", "progress_recorded", "replayed", "conflicts",
            "rejected_400", "rejected_404", "rejected_413", "rejected_422", "unauthorized",
            "rate_limited")}
        doc["faults_injected"] = dict(self.faults_injected)
        doc["distinct_stored"] = len(self.store_counts)
        doc["duplicates"] = ["/".join(key) for key in self.duplicates()]
        return doc
