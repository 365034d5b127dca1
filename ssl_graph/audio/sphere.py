"""NIST SPHERE headers (TIMIT's ``.WAV``), checked before libsndfile decodes the samples.

libsndfile trusts the header: a wrong header length shifts every sample, ``sample_count`` is
ignored (the file size decides), and a wrong ``sample_byte_format`` turns speech into noise,
all without an error. Here the header is parsed as SPHERE defines it (``NIST_1A``, the header
length, then ``name -type value`` lines up to ``end_head``) and checked against the file, and
each problem names ``file:line`` of the header field that is wrong.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

MAGIC = b"NIST_1A\n"
#: samples read to judge the byte order (about 2 s at 16 kHz)
_PROBE = 32768
#: the declared byte order is refused only when the other one is this much smoother
_SMOOTHER = 2.0


class SphereError(ValueError):
    pass


def is_sphere(head: bytes) -> bool:
    return head.startswith(MAGIC)


def check_sphere(fh: BinaryIO, size: int, name: str) -> None:
    """Refuse a SPHERE header that does not describe the file ``fh`` (``size`` bytes, named
    ``name`` in messages); returns quietly for files that are not SPHERE."""
    fh.seek(0)
    head = fh.read(1024)
    if not is_sphere(head):
        return
    fix = "fix the header or re-create the file (e.g. sox or sph2pipe -f wav)"
    lines = head.split(b"\n")
    text = lines[1].decode("ascii", "replace").strip() if len(lines) > 1 else ""
    if not text.isdigit():
        raise SphereError(f"{name}:2: SPHERE header length {text!r} is not a number; {fix}")
    hlen = int(text)
    if hlen > size:
        raise SphereError(f"{name}:2: SPHERE header length {hlen} is past the end of the file "
                          f"({size} bytes); {fix}")
    fh.seek(0)
    header = fh.read(hlen)
    fields, end = {}, None
    for ln, raw in enumerate(header.split(b"\n"), 1):
        words = raw.decode("ascii", "replace").split()
        if ln > 2 and words[:1] == ["end_head"]:
            end = ln
            break
        if ln > 2 and len(words) >= 3:
            fields[words[0]] = (ln, " ".join(words[2:]))
    if end is None:
        raise SphereError(f"{name}:2: SPHERE header length {hlen} ends before the header's "
                          f"end_head line; {fix}")
    coding = fields.get("sample_coding", (0, "pcm"))[1]
    if coding != "pcm":
        if "pcm" in coding:  # pcm,embedded-shorten-v2.00: TIMIT's discs as pressed
            raise SphereError(f"{name}:{fields['sample_coding'][0]}: SPHERE samples are "
                              f"compressed ({coding}); decompress the file first "
                              "(sph2pipe -f wav, or sox)")
        return  # ulaw / alaw: one byte a sample, nothing more to check here
    nbytes = _int(fields, "sample_n_bytes", name, fix)
    channels = _int(fields, "channel_count", name, fix) or 1
    count = _int(fields, "sample_count", name, fix)
    order = fields.get("sample_byte_format")
    if nbytes and order:
        ln, value = order
        if len(value) != nbytes or value not in (_ascending(nbytes), _ascending(nbytes)[::-1]):
            raise SphereError(f"{name}:{ln}: SPHERE sample_byte_format {value!r} does not fit "
                              f"sample_n_bytes {nbytes} (expected {_ascending(nbytes)!r}, "
                              f"little-endian, or {_ascending(nbytes)[::-1]!r}); {fix}")
    if nbytes and count is not None:
        want, have = count * nbytes * channels, size - hlen
        if want != have:
            ln = fields["sample_count"][0]
            raise SphereError(
                f"{name}:{ln}: SPHERE sample_count {count} × {nbytes} bytes × {channels} "
                f"channel(s) is {want} bytes of samples, but {have} follow the {hlen}-byte "
                f"header; the header length or sample_count is wrong, or the file was cut short; {fix}")
    if nbytes == 2 and order:
        _check_byte_order(fh, hlen, channels, order, name, fix)


def _ascending(n: int) -> str:
    return "".join(str(i) for i in range(n))


def _int(fields: dict, key: str, name: str, fix: str) -> int | None:
    if key not in fields:
        return None
    ln, value = fields[key]
    if not value.isdigit():
        raise SphereError(f"{name}:{ln}: SPHERE {key} {value!r} is not a whole number; {fix}")
    return int(value)


def _roughness(x: np.ndarray) -> float:
    """Mean step between neighbouring samples over mean magnitude: ~0.1–0.6 for speech, ~1.4
    for white noise (what 16-bit audio read in the wrong byte order looks like)."""
    mag = float(np.abs(x).mean())
    return float(np.abs(np.diff(x)).mean()) / mag if mag > 0 else 0.0


def _check_byte_order(fh: BinaryIO, hlen: int, channels: int, order: tuple, name: str,
                      fix: str) -> None:
    fh.seek(hlen)
    raw = fh.read(2 * channels * _PROBE)
    raw = raw[: len(raw) // (2 * channels) * 2 * channels]
    if len(raw) < 2 * channels * 64:
        return  # too short to judge
    ln, value = order
    declared = np.dtype("<i2" if value == "01" else ">i2")
    first = np.frombuffer(raw, declared)[::channels].astype(np.float64)
    swapped = np.frombuffer(raw, declared.newbyteorder())[::channels].astype(np.float64)
    said, other = _roughness(first), _roughness(swapped)
    if other > 0 and said > _SMOOTHER * other:
        endian = "little-endian" if value == "01" else "big-endian"
        raise SphereError(
            f"{name}:{ln}: SPHERE sample_byte_format {value!r} ({endian}) reads the samples as "
            f"noise (roughness {said:.2f}) and the other byte order as audio ({other:.2f}); "
            f"the header's byte order is wrong: set it to {value[::-1]!r}, or {fix}")
