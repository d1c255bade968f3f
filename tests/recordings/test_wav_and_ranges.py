"""The WAV header gives a recording's duration; a cut or foreign file is refused, not guessed.
Byte ranges are read as RFC 9110 says, one range at a time."""

from __future__ import annotations

import pytest

from recordings.http import RangeNotSatisfiable, parse_range
from recordings.storage import StorageError, resolve
from recordings.wav import BadWav, read_wav_info
from tests.support.recordings import wav_bytes


def test_the_duration_comes_from_the_header_and_the_data_length() -> None:
    info = read_wav_info(wav_bytes(2.5))
    assert (info.format_tag, info.channels, info.sample_rate, info.duration_s) == (1, 1, 8000, 2.5)


@pytest.mark.parametrize("data, why", [
    (b"", "not a RIFF/WAVE file"),
    (b"OggS" + bytes(40), "not a RIFF/WAVE file"),
    (wav_bytes(1.0)[:-100], "announces"),
    (b"RIFF" + (12).to_bytes(4, "little") + b"WAVE" + b"data" + bytes(4), "before the fmt chunk"),
])
def test_a_file_that_is_not_a_whole_wav_is_refused_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(BadWav, match=why):
        read_wav_info(data)


@pytest.mark.parametrize("header, span", [
    (None, None), ("bytes=0-99", (0, 99)), ("bytes=100-", (100, 999)), ("bytes=-100", (900, 999)),
    ("bytes=990-5000", (990, 999)), ("bytes=-5000", (0, 999)),
])
def test_ranges_are_read_and_clipped_to_the_file(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == span


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-4", "bytes=0-1,3-4", "bytes=-", "bytes=-0", "pages=1-2",
                                    "bytes=a-b"])
def test_ranges_outside_the_file_or_unreadable_are_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


@pytest.mark.parametrize("relative", ["../x.wav", "/etc/passwd", "2026/../../x.wav", "2026//x.wav", "./x.wav"])
def test_a_stored_path_never_leaves_the_root(relative: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError):
        resolve(tmp_path, relative)
