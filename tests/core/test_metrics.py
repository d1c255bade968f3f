"""core/metrics.py: the registry, its Prometheus text read back by a parser of the format, and
who may read ``GET /metrics``."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.forwarded import trust_proxies
from core.metrics import CONTENT_TYPE, Metrics, is_local, metrics_routes
from core.web import new_web_app

_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse(text: str) -> tuple[dict[str, tuple[str, str]], dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """Prometheus text format 0.0.4, strictly: (name -> (type, help)), ((name, labels) -> value).
    Every sample must follow its own # HELP and # TYPE; every line must be one of the three."""
    assert text.endswith("\n")
    meta: dict[str, tuple[str, str]] = {}
    helps: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            helps[name] = help_text.replace("\\n", "\n").replace("\\\\", "\\")
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge") and name in helps
            meta[name] = (kind, helps[name])
        else:
            m = _SAMPLE.fullmatch(line)
            assert m, f"not a sample line: {line!r}"
            name, labels_text, value = m.groups()
            assert name in meta, f"{name} has no # TYPE before it"
            labels: list[tuple[str, str]] = []
            rest = labels_text or ""
            while rest:
                lm = _LABEL.match(rest)
                assert lm, f"bad labels {labels_text!r}"
                labels.append((lm.group(1), lm.group(2).replace('\\"', '"').replace("\\n", "\n")
                               .replace("\\\\", "\\")))
                rest = rest[lm.end():]
            key = (name, frozenset(labels))
            assert key not in samples, f"{key} twice"
            samples[key] = float(value)
    return meta, samples


def test_counters_gauges_and_read_values_come_back_from_the_text() -> None:
    m = Metrics()
    shed = m.counter("hotline_calls_shed_total", "Calls turned away.", reason="max_calls")
    m.counter("hotline_calls_shed_total", "Calls turned away.", reason="event_delay")
    shedding = m.gauge("hotline_shedding", "1 while shedding.")
    live = [7]
    m.read("hotline_calls_live", "gauge", "Calls in progress.", lambda: live[0])
    m.read("hotline_event_delay_seconds", "gauge", "How late.", lambda: 0.125)
    shed.inc()
    shed.inc(2)
    shedding.set(1)
    live[0] = 9
    assert m.counter("hotline_calls_shed_total", "Calls turned away.", reason="max_calls") is shed

    meta, samples = parse(m.render())
    assert meta["hotline_calls_shed_total"] == ("counter", "Calls turned away.")
    assert meta["hotline_calls_live"][0] == "gauge"
    assert samples == {
        ("hotline_calls_shed_total", frozenset({("reason", "max_calls")})): 3,
        ("hotline_calls_shed_total", frozenset({("reason", "event_delay")})): 0,
        ("hotline_shedding", frozenset()): 1,
        ("hotline_calls_live", frozenset()): 9,
        ("hotline_event_delay_seconds", frozenset()): 0.125,
    }


def test_help_and_label_values_are_escaped_as_the_format_says() -> None:
    m = Metrics()
    m.counter("odd_total", 'a back\\slash\nand a new line', where='say "hi"\\\n').inc()
    text = m.render()
    assert '# HELP odd_total a back\\\\slash\\nand a new line\n' in text
    assert 'odd_total{where="say \\"hi\\"\\\\\\n"} 1\n' in text
    meta, samples = parse(text)
    assert meta["odd_total"][1] == "a back\\slash\nand a new line"
    assert samples[("odd_total", frozenset({("where", 'say "hi"\\\n')}))] == 1


def test_special_values_are_written_as_prometheus_reads_them() -> None:
    m = Metrics()
    for name, value in (("a", float("inf")), ("b", float("-inf")), ("c", float("nan")), ("d", 2.0), ("e", 0.5)):
        m.read(name, "gauge", name, lambda v=value: v)
    assert m.render().splitlines()[2::3] == ["a +Inf", "b -Inf", "c NaN", "d 2", "e 0.5"]


def test_names_and_kinds_are_checked_when_registered() -> None:
    m = Metrics()
    m.counter("x_total", "x")
    with pytest.raises(ValueError, match="is a counter"):
        m.gauge("x_total", "x")
    with pytest.raises(ValueError, match="with labels"):
        m.counter("x_total", "x", reason="r")
    with pytest.raises(ValueError, match="not a metric name"):
        m.gauge("2x", "x")
    with pytest.raises(ValueError, match="not a label name"):
        m.gauge("y", "y", __reserved="1")


@pytest.mark.parametrize("address, local", [("127.0.0.1", True), ("127.0.0.53", True), ("::1", True),
                                            ("::ffff:127.0.0.1", True), ("10.0.0.5", False),
                                            ("203.0.113.7", False), ("::ffff:10.0.0.5", False), (None, False)])
def test_only_this_host_is_local(address: str | None, local: bool) -> None:
    assert is_local(address) is local


async def test_get_metrics_serves_this_host_and_refuses_a_client_behind_our_proxy() -> None:
    m = Metrics()
    m.gauge("hotline_shedding", "1 while shedding.").set(1)
    app = new_web_app()
    trust_proxies(app, ["127.0.0.1"])
    metrics_routes(m)(app)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200 and resp.headers["Content-Type"] == CONTENT_TYPE
        assert parse(await resp.text())[1] == {("hotline_shedding", frozenset()): 1}
        # Through our reverse proxy on this host, for someone elsewhere: refused.
        far = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
        assert far.status == 403 and (await far.json())["code"] == "metrics_local_only"
