"""Counters and gauges of one application process, read as Prometheus text at ``GET /metrics``.

A tiny registry of our own (no client library): a feature asks the :class:`Metrics` it is
given for its counters and gauges when it is built, keeps them, and bumps them where things
happen: one attribute addition, nothing allocated. A value that already lives elsewhere (the
number of live calls) is not copied: it is registered as a function read at each scrape.

The text is Prometheus' exposition format 0.0.4: for each metric ``# HELP`` and ``# TYPE``,
then one line per set of label values. Who may read it is decided in :func:`metrics_routes`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Literal

from aiohttp import web

from core.forwarded import client_address
from core.web import ApiError

#: The content type Prometheus asks for (text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge"]
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Counter:
    """A value that only goes up (calls shed since the start)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Gauge:
    """A value that goes up and down (shedding now: 0 or 1)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def set(self, value: float) -> None:
        self.value = value


class _Family:
    """One metric: its name, help and kind, and its series (one per set of label values)."""

    def __init__(self, name: str, kind: Kind, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.kind, self.help, self.labels = name, kind, help_text, labels
        self.series: dict[tuple[str, ...], Counter | Gauge | Callable[[], float]] = {}


class Metrics:
    """The registry: metrics by name, in the order they were registered."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def counter(self, name: str, help_text: str, **labels: str) -> Counter:
        """The counter ``name`` with these label values (made on first ask; the same one after)."""
        found = self._series(name, "counter", help_text, labels, Counter)
        assert isinstance(found, Counter)
        return found

    def gauge(self, name: str, help_text: str, **labels: str) -> Gauge:
        found = self._series(name, "gauge", help_text, labels, Gauge)
        assert isinstance(found, Gauge)
        return found

    def read(self, name: str, kind: Kind, help_text: str, read: Callable[[], float], **labels: str) -> None:
        """A metric whose value is ``read()`` at each scrape (a count kept elsewhere)."""
        family = self._family(name, kind, help_text, tuple(labels))
        family.series[tuple(labels.values())] = read

    def _series(self, name: str, kind: Kind, help_text: str, labels: dict[str, str],
                make: type[Counter] | type[Gauge]) -> Counter | Gauge | Callable[[], float]:
        family = self._family(name, kind, help_text, tuple(labels))
        key = tuple(labels.values())
        series = family.series.get(key)
        if series is None:
            series = family.series[key] = make()
        return series

    def _family(self, name: str, kind: Kind, help_text: str, labels: tuple[str, ...]) -> _Family:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a metric name")
        for label in labels:
            if not _LABEL.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"{label!r} is not a label name")
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = _Family(name, kind, help_text, labels)
        elif (family.kind, family.labels) != (kind, labels):
            raise ValueError(f"metric {name} is a {family.kind} with labels {family.labels}, "
                             f"not a {kind} with labels {labels}")
        return family

    def value(self, name: str, **labels: str) -> float:
        """The current value of one series (tests, and whoever wants a figure without the text)."""
        series = self._families[name].series[tuple(labels.values())]
        return series() if callable(series) else series.value

    def render(self) -> str:
        """Everything in the text exposition format, one family after another."""
        out: list[str] = []
        for family in self._families.values():
            out.append(f"# HELP {family.name} {_escape_help(family.help)}")
            out.append(f"# TYPE {family.name} {family.kind}")
            for key, series in family.series.items():
                value = series() if callable(series) else series.value
                if key:
                    pairs = ",".join(f'{label}="{_escape_value(v)}"' for label, v in zip(family.labels, key,
                                                                                       strict=True))
                    out.append(f"{family.name}{{{pairs}}} {_number(value)}")
                else:
                    out.append(f"{family.name} {_number(value)}")
        return "\n".join(out) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


# ----------------------------------------------------------------------------- who may read them

#: Only from this host. The figures are no secret, but they tell how busy the centre is, hour by
#: hour, to anyone who asks; and a scraper sends no session cookie. A Prometheus (or its agent)
#: on this host reads them directly; from elsewhere, through an SSH tunnel or an agent here.
#: Behind our reverse proxy (``[http] trusted_proxies``) the client is the address it forwards,
#: so a request from outside that passes through the proxy on this host is still refused.
def is_local(address: str | None) -> bool:
    if address is None:
        return False
    if address.startswith("::ffff:"):
        address = address[len("::ffff:"):]
    return address == "::1" or address.startswith("127.")


def metrics_routes(metrics: Metrics) -> Callable[[web.Application], None]:
    """``GET /metrics`` for clients on this host (see :func:`is_local`); 403 for the others."""

    async def serve(request: web.Request) -> web.Response:
        if not is_local(client_address(request)):
            raise ApiError(403, "metrics_local_only", "the metrics are served to this host only",
                           "运行指标仅向本机提供")
        return web.Response(body=metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    def add(app: web.Application) -> None:
        app.router.add_get("/metrics", serve)

    return add
