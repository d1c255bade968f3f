"""Jurisdiction codes the tests use (GB/T 2260) and the test stations."""

from __future__ import annotations

from pathlib import Path

BEIJING, ZHEJIANG, HANGZHOU, XIHU = "110000", "330000", "330100", "330106"

#: Two grassroots stations of Hangzhou's Xihu district.
TWO_XIHU_STATIONS = """
[[station]]
code = "330106-01"
name = "北山市场监管所"
county = "330106"

[[station]]
code = "330106-02"
name = "西溪市场监管所"
county = "330106"
"""


def stations_file(directory: Path, text: str = TWO_XIHU_STATIONS) -> Path:
    """The stations as a file, for settings (``[queues] stations_file``)."""
    path = directory / "stations.toml"
    path.write_text(text, encoding="utf-8")
    return path
