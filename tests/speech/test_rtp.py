"""The caller's audio arriving over RTP: jitter buffer logic, then a real UDP socket."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct

import numpy as np
import pytest

from ivr.speech import codec
from ivr.speech.codec import FilledSilence
from ivr.speech.rtp import FRAME_BYTES, WINDOW_FRAMES, JitterBuffer, RtpReceiver
from tests.fixtures.waiting import eventually

SSRC = 0x5EED1234
SILENCE = bytes(FRAME_BYTES)


def rtp(seq: int, ts: int, payload: bytes, *, pt: int = 118, ssrc: int = SSRC,
        marker: bool = False, version: int = 2) -> bytes:
    header = struct.pack("!BBHII", version << 6, (0x80 if marker else 0) | pt,
                         seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    return header + payload


def samples_for(seq: int) -> np.ndarray:
    """20 ms at 16 kHz, different for every frame, with negative values (byte order matters)."""
    rng = np.random.default_rng(seq)
    return rng.integers(-20000, 20000, 320, dtype=np.int16)


def slin16(seq: int, *, ts: int | None = None, **kw: object) -> bytes:
    """A packet as Asterisk sends it: big-endian payload, timestamp advancing 320 per frame."""
    payload = samples_for(seq).astype(">i2").tobytes()
    return rtp(seq, seq * 320 if ts is None else ts, payload, **kw)


def expected(seq: int) -> bytes:
    return samples_for(seq).astype("<i2").tobytes()


DEPTH_S = 0.06  # the default depth: three 20 ms frames
JOIN = 64  # samples (4 ms at 16 kHz) cross-faded where made-up audio meets real audio


def pcm(frame: bytes) -> np.ndarray:
    return codec.pcm_from_bytes(frame)


def joined(frame: bytes, seq: int) -> bool:
    """``frame`` is packet ``seq`` cross-faded in after concealment: exact after the join."""
    return len(frame) == FRAME_BYTES and frame[2 * JOIN:] == expected(seq)[2 * JOIN:]


def faded_out(frame: bytes) -> bool:
    """Silence after whatever was sounding faded out within the join (no click)."""
    return len(frame) == FRAME_BYTES and frame[2 * JOIN:] == SILENCE[2 * JOIN:]


def feed(jb: JitterBuffer, packets: list[bytes], now: float = DEPTH_S) -> list[bytes]:
    """Push packets arriving together at `now`, collecting what each one releases."""
    out: list[bytes] = []
    for packet in packets:
        jb.push(packet, now)
        out += jb.pop_ready(now)
    return out


def started(jb: JitterBuffer, first: bytes) -> list[bytes]:
    """A stream's first packet at t=0, released once the start-up depth has passed."""
    jb.push(first, 0.0)
    return jb.pop_ready(DEPTH_S)


# --- JitterBuffer ------------------------------------------------------------------


def test_in_order_slin16_big_endian_payload_comes_out_little_endian_and_sample_exact():
    jb = JitterBuffer("slin16", telephone_band=False)
    out = started(jb, slin16(0)) + feed(jb, [slin16(s) for s in range(1, 10)])
    assert out == [expected(s) for s in range(10)]
    assert all(len(frame) == FRAME_BYTES for frame in out)
    assert (jb.stats.received, jb.stats.lost, jb.stats.reordered, jb.stats.bad) == (10, 0, 0, 0)


def test_the_start_of_a_stream_waits_the_depth_so_an_earlier_packet_arriving_second_is_kept():
    jb = JitterBuffer("slin16", depth_frames=3, telephone_band=False)
    assert feed(jb, [slin16(7), slin16(5)], now=0.0) == []
    assert jb.deadline() == pytest.approx(DEPTH_S)
    five, six, seven = jb.pop_ready(DEPTH_S)  # 6 never came: concealed
    assert five == expected(5) and joined(seven, 7) and six != SILENCE
    assert feed(jb, [slin16(8)]) == [expected(8)]
    assert (jb.stats.lost, jb.stats.late, jb.stats.reordered) == (1, 0, 1)


def test_reordered_packets_within_the_depth_come_out_in_sequence_order():
    jb = JitterBuffer("slin16", depth_frames=3, telephone_band=False)
    out = started(jb, slin16(0)) + feed(jb, [slin16(s) for s in (2, 1, 3, 5, 4, 6)])
    assert out == [expected(s) for s in range(7)]
    assert jb.stats.reordered == 2
    assert jb.stats.lost == 0


def test_a_packet_ahead_of_a_gap_waits_for_the_depth_before_the_gap_is_concealed():
    jb = JitterBuffer("slin16", depth_frames=3, telephone_band=False)
    assert started(jb, slin16(0)) == [expected(0)]
    jb.push(slin16(3), 1.00)
    assert jb.pop_ready(1.05) == []  # 1 and 2 may still come
    assert jb.deadline() == pytest.approx(1.06)
    out = jb.pop_ready(1.06)
    assert len(out) == 3 and joined(out[2], 3)
    assert jb.stats.lost == 2


def test_a_long_gap_is_carried_on_for_60_ms_fading_then_silence_then_joined_to_the_real_audio():
    jb = JitterBuffer("slin16", depth_frames=3, telephone_band=False)
    started(jb, slin16(0))
    jb.push(slin16(5), 1.0)
    first, second, third, fourth, real = jb.pop_ready(2.0)
    level = [np.abs(pcm(f).astype(np.int32)).max() for f in (first, second, third)]
    assert level[0] > 10000  # the caller's sound goes on at first (full level for 10 ms) ...
    assert level[0] > level[1] > level[2] and pcm(third)[-1] == 0  # ... and fades out by 60 ms
    assert fourth == SILENCE  # a gap longer than that is silence
    assert real == expected(5)  # nothing sounding any more: the real audio starts as it is
    assert jb.stats.lost == 4


def test_duplicates_and_late_packets_are_dropped_and_counted():
    jb = JitterBuffer("slin16", depth_frames=3, telephone_band=False)
    out = started(jb, slin16(0))
    out += feed(jb, [slin16(1), slin16(1)])  # duplicate of a frame already played
    jb.push(slin16(3), 1.0)
    jb.push(slin16(3), 1.0)  # duplicate while still buffered
    out += jb.pop_ready(2.0)  # 2 is concealed
    out += feed(jb, [slin16(2)], now=2.0)  # too late: its slot was played out
    assert out[:2] == [expected(0), expected(1)] and joined(out[3], 3) and len(out) == 4
    assert (jb.stats.duplicates, jb.stats.late, jb.stats.lost) == (2, 1, 1)
    assert jb.stats.received == 6


def test_sequence_numbers_wrap_around_from_65535_to_0():
    jb = JitterBuffer("slin16", telephone_band=False)
    order = [65534, 0, 65535, 1, 2]
    out = started(jb, slin16(65533, ts=7))
    out += feed(jb, [slin16(s, ts=(s - 65533) % 65536 * 320 + 7) for s in order])
    assert out == [expected(s) for s in (65533, 65534, 65535, 0, 1, 2)]
    assert (jb.stats.lost, jb.stats.late, jb.stats.reordered, jb.stats.silence_filled) == (0, 0, 1, 0)


def test_a_timestamp_jump_after_silence_suppression_is_filled_with_silence():
    jb = JitterBuffer("slin16", telephone_band=False)
    out = started(jb, slin16(0, ts=1000))
    out += feed(jb, [slin16(1, ts=1000 + 6 * 320, marker=True)])
    assert out[0] == expected(0) and faded_out(out[1]) and out[2:] == [SILENCE] * 4 + [expected(1)]
    assert jb.stats.silence_filled == 5
    assert jb.stats.lost == 0
    # Made up, and said so: the detector learns nothing of the line from these frames.
    assert [isinstance(f, FilledSilence) for f in out] == [False] + [True] * 5 + [False]


def test_a_short_timestamp_gap_without_a_new_talkspurt_is_concealed_as_a_loss():
    # Asterisk numbers only the frames it sends: audio lost before it shows as time missing.
    jb = JitterBuffer("slin16", telephone_band=False)
    out = started(jb, slin16(0, ts=0)) + feed(jb, [slin16(1, ts=3 * 320)])
    assert len(out) == 4 and out[0] == expected(0) and joined(out[3], 1)
    assert np.abs(pcm(out[1])).max() > 10000  # the caller's sound carried on, not a hole
    assert (jb.stats.lost, jb.stats.silence_filled) == (2, 0)


def test_a_huge_timestamp_gap_is_capped_at_max_gap_frames():
    jb = JitterBuffer("slin16", max_gap_frames=10, telephone_band=False)
    out = started(jb, slin16(0, ts=0)) + feed(jb, [slin16(1, ts=3_000_000, marker=True)])
    assert len(out) == 12 and faded_out(out[1]) and out[2:] == [SILENCE] * 9 + [expected(1)]


def test_idle_silence_already_handed_out_is_not_filled_again_after_a_timestamp_gap():
    jb = JitterBuffer("slin16", telephone_band=False)
    started(jb, slin16(0, ts=0))
    idle = [jb.idle_frame() for _ in range(4)]
    out = feed(jb, [slin16(1, ts=7 * 320, marker=True)])
    assert faded_out(idle[0]) and idle[1:] == [SILENCE] * 3
    assert all(isinstance(f, FilledSilence) for f in idle)
    assert out == [SILENCE] * 2 + [expected(1)]
    assert jb.stats.silence_filled == 6


def test_when_packets_stop_silence_starts_40_ms_after_the_next_one_was_due_then_keeps_the_pace():
    jb = JitterBuffer("slin16", telephone_band=False)
    assert jb.idle_due(0.04, since=5.0) == pytest.approx(5.06)  # nothing yet: from when we listened
    jb.push(slin16(0), 1.0)
    assert jb.idle_due(0.04, since=0.0) is None  # a packet is held: its own deadline comes first
    jb.pop_ready(1.06)
    assert jb.idle_due(0.04, since=0.0) == pytest.approx(1.06)  # packet 1 was due at 1.02
    jb.idle_frame()
    assert jb.idle_due(0.04, since=0.0) == pytest.approx(1.04)  # 2 is due too: at once
    jb.idle_frame()
    jb.idle_frame()
    assert jb.idle_due(0.04, since=0.0) == pytest.approx(1.08)  # then at the line's own pace
    jb.push(slin16(1), 1.5)  # the caller is back: timing starts again from this packet
    assert jb.pop_ready(1.5) == [expected(1)]
    assert jb.idle_due(0.04, since=0.0) == pytest.approx(1.56)


def test_packets_after_a_gap_idle_fill_covered_are_not_concealed_again():
    jb = JitterBuffer("slin16", telephone_band=False)
    started(jb, slin16(0))
    idle = [jb.idle_frame(), jb.idle_frame()]  # 1 and 2 overdue: their time went by as silence
    jb.push(slin16(3), 1.0)
    out = jb.pop_ready(2.0)  # 1 and 2 never came
    assert len(idle) + len(out) == 3 and out[-1] == expected(3)  # no frame twice: time stays true
    assert jb.stats.lost == 2 and jb.stats.silence_filled == 2


def test_ulaw_frames_are_decoded_and_upsampled_to_640_bytes_without_clicks_at_frame_edges():
    t = np.arange(160 * 12) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    ulaw = codec.ulaw_encode(tone)
    packets = [rtp(i, i * 160, ulaw[i * 160:(i + 1) * 160], pt=0) for i in range(12)]
    jb = JitterBuffer("ulaw")
    out = started(jb, packets[0]) + feed(jb, packets[1:])
    assert all(len(frame) == FRAME_BYTES for frame in out) and len(out) == 12
    # Frame by frame gives exactly what one pass over the whole call gives: the filter
    # carries its history across frame boundaries.
    whole = codec.upsample_8k_to_16k(codec.ulaw_decode(ulaw))
    assert b"".join(out) == codec.pcm_to_bytes(whole)


def voice_at_8k(frames: int) -> np.ndarray:
    """A G.711 caller: a vowel, 8 kHz, through μ-law and back."""
    t = np.arange(160 * frames) / 8000
    vowel = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 26)) * 5000
    return codec.ulaw_decode(codec.ulaw_encode(np.rint(vowel).astype(np.int16)))


def upsampled_by_asterisk(narrow: np.ndarray) -> np.ndarray:
    """8 kHz -> 16 kHz with nothing above 4 kHz (an ideal resampler, as a good one nearly is)."""
    spectrum = np.fft.rfft(narrow.astype(np.float64))
    wide = np.fft.irfft(np.concatenate([spectrum, np.zeros(len(narrow) // 2)]), 2 * len(narrow)) * 2
    return np.rint(wide).astype(np.int16)


def heard_from(fmt: str, payloads: list[bytes]) -> np.ndarray:
    jb = JitterBuffer(fmt)
    pt, ticks = (118, 320) if fmt == "slin16" else (0, 160)
    packets = [rtp(i, i * ticks, payload, pt=pt) for i, payload in enumerate(payloads)]
    return pcm(b"".join(started(jb, packets[0]) + feed(jb, packets[1:])))


def test_a_g711_caller_in_slin16_reaches_the_recognizer_as_the_same_line_as_in_ulaw_from_the_first_frame():
    narrow = voice_at_8k(25)
    wide = upsampled_by_asterisk(narrow)
    as_ulaw = heard_from("ulaw", [codec.ulaw_encode(narrow[i:i + 160]) for i in range(0, len(narrow), 160)])
    as_slin16 = heard_from("slin16", [wide[i:i + 320].astype(">i2").tobytes() for i in range(0, len(wide), 320)])
    # The same audio as the ulaw stream gives, but for the 8 kHz decimator's own delay (23
    # samples at 16 kHz), from the start: the caller's first word is not heard as sent.
    assert len(as_slin16) == len(as_ulaw) == 25 * 320
    a, b = as_ulaw[320:-200].astype(np.float64), as_slin16[320 + 23:-177].astype(np.float64)
    assert a @ b / np.sqrt((a @ a) * (b @ b)) > 0.99
    assert not np.array_equal(as_slin16, wide)  # not as Asterisk sent it


def wideband_voice() -> np.ndarray:
    t = np.arange(320 * 12) / 16000
    voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 50)) * 5000  # up to 7.5 kHz
    return np.rint(voice + np.random.default_rng(5).normal(0, 300, len(t))).astype(np.int16)


def above_4k_db(x: np.ndarray) -> float:
    """The share of the energy above 4.4 kHz, in dB."""
    power = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)))) ** 2
    return float(10 * np.log10(power[int(4400 * len(x) / 16000):].sum() / power.sum()))


def test_wideband_slin16_is_heard_as_a_telephone_line_too():
    wide = wideband_voice()
    heard = heard_from("slin16", [wide[i:i + 320].astype(">i2").tobytes() for i in range(0, len(wide), 320)])
    assert len(heard) == len(wide)
    assert above_4k_db(wide) > -20 and above_4k_db(heard[640:]) < -40


def test_with_the_telephone_band_off_wideband_slin16_reaches_the_recognizer_as_sent():
    wide = wideband_voice()
    jb = JitterBuffer("slin16", telephone_band=False)
    packets = [rtp(i, i * 320, wide[k:k + 320].astype(">i2").tobytes(), pt=118)
               for i, k in enumerate(range(0, len(wide), 320))]
    assert np.array_equal(pcm(b"".join(started(jb, packets[0]) + feed(jb, packets[1:]))), wide)


def test_a_foreign_ssrc_is_ignored_and_a_new_ssrc_with_the_marker_bit_resyncs():
    jb = JitterBuffer("slin16", telephone_band=False)
    out = started(jb, slin16(10)) + feed(jb, [slin16(12)])  # 11 missing, 12 buffered
    out += feed(jb, [slin16(500, ssrc=0xBEEF)])  # foreign, no marker
    assert out == [expected(10)] and jb.stats.bad == 1
    out += feed(jb, [slin16(500, ssrc=0xBEEF, marker=True), slin16(501, ssrc=0xBEEF)])
    assert len(out) == 3  # the old stream's leftovers (11 concealed, 12) are played first
    out += jb.pop_ready(1.0)  # the new source starts after its own start-up depth
    assert out[0] == expected(10) and joined(out[2], 12) and out[3:] == [expected(s) for s in (500, 501)]
    out += feed(jb, [slin16(13)], now=1.0)  # the old source is now the foreign one
    assert len(out) == 5 and jb.stats.bad == 2 and jb.stats.lost == 1


def test_malformed_packets_are_counted_as_bad_and_produce_nothing():
    jb = JitterBuffer("slin16", telephone_band=False)
    payload = bytes(640)
    packets = [
        b"",
        b"\x80\x76\x00",  # shorter than a header
        rtp(0, 0, payload, version=1),
        rtp(0, 0, payload, pt=0),  # ulaw on a slin16 stream
        rtp(0, 0, payload[:320]),  # wrong size
        rtp(0, 0, payload + b"\x00"),
        struct.pack("!BBHII", 0x81, 200, 6, 0, SSRC) + bytes(20),  # an RTCP sender report
    ]
    assert feed(jb, packets) + jb.pop_ready(10.0) == []
    assert jb.stats.bad == len(packets) and jb.stats.received == 0


def test_padding_csrcs_and_header_extensions_are_skipped():
    jb = JitterBuffer("slin16", telephone_band=False)
    body = samples_for(0).astype(">i2").tobytes()
    csrc_ext = struct.pack("!I", 99) + struct.pack("!HH", 0xBEDE, 1) + b"\x01\x02\x03\x04"
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 118, 0, 0, SSRC)
    assert started(jb, header + csrc_ext + body + b"\x00\x00\x03") == [expected(0)]


def test_a_hostile_sender_cannot_grow_the_buffer_beyond_its_window():
    jb = JitterBuffer("slin16", telephone_band=False)
    rng = random.Random(7)
    popped = 0
    for i in range(5000):
        jb.push(slin16(rng.randrange(65536), ts=rng.randrange(2**32), marker=i % 9 == 0), i * 1e-4)
        frames = jb.pop_ready(i * 1e-4)
        assert all(len(frame) == FRAME_BYTES for frame in frames)
        assert jb.buffered <= WINDOW_FRAMES
        popped += len(frames)
    assert popped > 0  # frames did come out, each of them checked above


def test_an_unknown_format_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="'opus'.*'slin16' or 'ulaw'"):
        JitterBuffer("opus")


# --- RtpReceiver over real UDP -----------------------------------------------------


def send(receiver: RtpReceiver, packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            sock.sendto(packet, receiver.address)


async def collect_until(receiver: RtpReceiver, last: bytes) -> list[bytes]:
    out: list[bytes] = []
    async with asyncio.timeout(5):
        async for frame in receiver.frames():
            out.append(frame)
            if frame == last:
                return out
    raise AssertionError("frames() ended early")


async def test_the_receiver_delivers_udp_packets_in_order_with_exact_audio():
    receiver = await RtpReceiver.open("slin16", telephone_band=False)
    try:
        host, port = receiver.address
        assert host == "127.0.0.1" and port > 0
        send(receiver, [slin16(s) for s in range(50)])
        out = await collect_until(receiver, expected(49))
        assert [f for f in out if f != SILENCE] == [expected(s) for s in range(50)]
        assert (receiver.stats.received, receiver.stats.lost, receiver.stats.bad) == (50, 0, 0)
    finally:
        receiver.close()


async def test_the_receiver_reorders_shuffled_packets_and_conceals_drops():
    rng = random.Random(12315)
    seqs = [s for s in range(60) if s not in (10, 25, 26)]
    shuffled = []
    for start in range(0, len(seqs), 3):  # shuffle within windows of three packets
        window = seqs[start:start + 3]
        rng.shuffle(window)
        shuffled += window
    receiver = await RtpReceiver.open("slin16", depth_frames=3, telephone_band=False)
    try:
        send(receiver, [slin16(s) for s in shuffled])
        out = await collect_until(receiver, expected(59))
        real = {expected(s)[2 * JOIN:]: s for s in seqs}  # after a gap, a frame is joined in
        assert [real[f[2 * JOIN:]] for f in out if f[2 * JOIN:] in real] == seqs
        stats = receiver.stats
        assert (stats.received, stats.lost, stats.late, stats.bad) == (57, 3, 0, 0)
        assert stats.reordered > 0
    finally:
        receiver.close()


async def test_frames_keeps_time_moving_with_silence_when_the_sender_goes_quiet():
    receiver = await RtpReceiver.open("ulaw", idle_fill_s=0.05)
    loop = asyncio.get_running_loop()
    try:
        send(receiver, [rtp(s, s * 160, codec.ulaw_encode(np.full(160, 3000)), pt=0)
                        for s in range(5)])
        out: list[bytes] = []
        stop = None
        async with asyncio.timeout(5):
            async for frame in receiver.frames():
                out.append(frame)
                if len(out) == 5:
                    stop = loop.time() + 0.5  # half a second of a quiet line from here
                if stop is not None and loop.time() >= stop:
                    break
        quiet = out[5:]
        # About 22 frames are due; the bound only rules out "none" and "a flood".
        assert 5 <= len(quiet) <= 60
        assert all(len(frame) == FRAME_BYTES for frame in quiet)
        assert receiver.stats.silence_filled == len(quiet)
        assert quiet[-1] == SILENCE  # the upsampler's tail has died out
    finally:
        receiver.close()


async def test_close_ends_the_frames_iterator_and_can_be_called_twice(caplog):
    caplog.set_level(logging.DEBUG, logger="ivr.speech.rtp")
    receiver = await RtpReceiver.open("slin16", telephone_band=False)
    got: list[bytes] = []

    async def consume() -> None:
        async for frame in receiver.frames():
            got.append(frame)

    task = asyncio.create_task(consume())
    send(receiver, [slin16(0)])

    async def arrived() -> bool:
        return bool(got)

    await eventually(arrived)
    receiver.close()
    await asyncio.wait_for(task, 2)
    receiver.close()
    assert got[0] == expected(0)
    summaries = [r.getMessage() for r in caplog.records if "closed" in r.getMessage()]
    assert len(summaries) == 1 and "received=1 " in summaries[0]


async def test_an_unknown_format_is_rejected_before_a_port_is_opened():
    with pytest.raises(ValueError, match="'alaw'"):
        await RtpReceiver.open("alaw")
