"""Numba kernels behind :mod:`ssl_graph.kernels.masking` (private; no validation here).

Determinism: row ``i`` draws only from its own SplitMix64 stream, seeded from
``(seed, i)``, and one thread processes a row from start to finish.  The serial and
parallel drivers therefore give bit-identical masks, whatever the thread count.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

STATIC, UNIFORM, NORMAL, POISSON = 0, 1, 2, 3
MASK_TYPES = {"static": STATIC, "uniform": UNIFORM, "normal": NORMAL, "poisson": POISSON}

# Error codes returned by the drivers (the Python wrapper turns them into ValueErrors).
OK, EMPTY_ROW, FULL_ROW, ADD_OVERFLOW = 0, 1, 2, 3


class Params(NamedTuple):
    """Validated options; passed to the kernels as one (typed) tuple."""

    mask_prob: float
    span: int
    mtype: int
    mother: float
    min_masks: int
    no_overlap: bool
    min_space: int
    same: bool
    add: bool
    dropout: float
    seed: np.uint64


# uint64 constants: numba would promote uint64-with-int64 arithmetic to float64.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0x6A09E667F3BCC909)  # keeps seed 0 away from the all-zero state
_LO32 = np.uint64(0xFFFFFFFF)
_TWO32 = np.uint64(1 << 32)
_S11, _S27, _S30, _S31, _S32 = (np.uint64(k) for k in (11, 27, 30, 31, 32))
_INV_2_53 = 1.0 / float(1 << 53)


# --------------------------------------------------------------------------- RNG


@njit(cache=True)
def _mix64(z):
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def _next_u64(st, i):
    s = st[i] + _GAMMA
    st[i] = s
    return _mix64(s)


@njit(cache=True)
def _uniform(st, i):
    """Float in [0, 1) with 53 random bits."""
    return np.float64(_next_u64(st, i) >> _S11) * _INV_2_53


@njit(cache=True)
def _randbelow(st, i, n):
    """Unbiased integer in [0, n) for 0 < n < 2**32 (Lemire's multiply-and-reject)."""
    un = np.uint64(n)
    m = (_next_u64(st, i) >> _S32) * un
    lo = m & _LO32
    if lo < un:
        t = (_TWO32 - un) % un
        while lo < t:
            m = (_next_u64(st, i) >> _S32) * un
            lo = m & _LO32
    return np.int64(m >> _S32)


@njit(cache=True)
def _gauss(st, i):
    """Standard normal (Marsaglia polar method; the second variate is discarded)."""
    while True:
        u = 2.0 * _uniform(st, i) - 1.0
        v = 2.0 * _uniform(st, i) - 1.0
        s = u * u + v * v
        if 0.0 < s < 1.0:
            return u * math.sqrt(-2.0 * math.log(s) / s)


@njit(cache=True)
def _poisson(st, i, lam):
    """Poisson(lam): multiplication method for small lam, Hoermann's PTRS otherwise."""
    if lam <= 0.0:
        return np.int64(0)
    if lam < 10.0:
        limit = math.exp(-lam)
        k = np.int64(0)
        prod = _uniform(st, i)
        while prod > limit:
            k += 1
            prod *= _uniform(st, i)
        return k
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = _uniform(st, i) - 0.5
        v = _uniform(st, i)
        us = 0.5 - abs(u)
        if us <= 0.0:  # u == -0.5 exactly (p = 2**-53): would divide by zero
            continue
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= v_r:
            return np.int64(k)
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        lhs = math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b)
        if lhs <= -lam + k * loglam - math.lgamma(k + 1.0):
            return np.int64(k)


# --------------------------------------------------------------------- per row
#
# Row functions share two int64 scratch buffers of ``scratch_sizes(T, ...)`` entries:
# ``buf`` (span lengths, interval lists, index lists) and ``stamp`` (row-stamped
# membership flags), so the serial driver allocates nothing per row.


@njit(cache=True)
def _draw_lengths(lengths, st, i, span, mtype, mother, sz):
    """Fill ``lengths`` with span lengths; returns how many of them to use."""
    num = lengths.shape[0]
    total = 0
    for k in range(num):
        if mtype == STATIC:
            ln = span
        elif mtype == UNIFORM:  # numpy randint(mask_other, 2 * span + 1)
            lo = np.int64(mother)
            ln = lo + _randbelow(st, i, 2 * span + 1 - lo)
        elif mtype == NORMAL:
            x = np.rint(span + mother * _gauss(st, i))  # clamp before the int cast
            ln = np.int64(max(1.0, min(x, float(sz))))
        else:
            ln = _poisson(st, i, np.float64(span))
        ln = min(ln, sz)  # longer spans act exactly like sz-long ones; avoids overflow
        lengths[k] = ln
        total += ln
    if num > 0 and total == 0:  # fairseq: every span drew length 0 -> one span instead
        lengths[0] = min(span, sz - 1)
        return 1
    return num


@njit(cache=True)
def _place_overlapping(row, sz, lengths, st, i, stamp):
    """fairseq's default path: distinct starts in [0, sz - min_len), spans clipped at sz."""
    num = lengths.shape[0]
    if num == 0:
        return 0
    min_len = lengths.min()
    if sz - min_len <= num:
        min_len = sz - num - 1
    n = sz - min_len  # always > num
    # Floyd's sampling: a uniform `num`-subset of [0, n) in `num` draws.  Membership
    # is "stamp[s] == i + 1", so the shared stamp buffer never needs clearing.
    taken = stamp if n <= stamp.shape[0] else np.zeros(n, np.int64)
    mark = i + 1
    for k in range(num):
        j = n - num + k
        s = _randbelow(st, i, j + 1)
        if taken[s] == mark:
            s = j
        taken[s] = mark
        # Lengths are i.i.d., so pairing them with starts in draw order has the same
        # distribution as fairseq's random pairing.
        row[s : min(s + lengths[k], sz)] = True  # slice fill beats a byte loop here
    count = 0
    for f in range(sz):
        count += row[f]
    return count


@njit(cache=True)
def _place_disjoint(row, sz, lengths, min_space, st, i, buf):
    """fairseq's ``no_overlap`` path: recursive splitting of free intervals.

    Spans are placed longest first; an interval (s, e) is eligible if
    ``e - s >= len + max(min_space, 1)`` and is chosen with probability proportional
    to ``e - s``; the start is uniform in [s, e - len).  The ``max(.., 1)`` only
    differs from fairseq where fairseq crashes (``randint(s, s)``).  As in fairseq,
    frame ``sz - 1`` is never masked on this path.
    """
    num = lengths.shape[0]
    if num == 0:
        return 0
    lengths.sort()
    keep = lengths[0]  # parts with less usable room than the shortest span are dropped
    ps = buf[: num + 1]
    pe = buf[num + 1 : 2 * num + 2]
    ps[0] = 0
    pe[0] = sz
    nparts = 1
    gap = max(min_space, 1)
    count = 0
    for q in range(num - 1, -1, -1):
        ln = lengths[q]
        need = ln + gap
        total = 0
        for c in range(nparts):
            w = pe[c] - ps[c]
            if w >= need:
                total += w
        if total == 0:
            break
        r = _randbelow(st, i, total)
        c = 0
        while True:
            w = pe[c] - ps[c]
            if w >= need:
                if r < w:
                    break
                r -= w
            c += 1
        s = ps[c]
        e = pe[c]
        nparts -= 1
        ps[c] = ps[nparts]
        pe[c] = pe[nparts]
        start = s + _randbelow(st, i, e - ln - s)
        row[start : start + ln] = True
        count += ln
        if start - s - min_space >= keep:
            ps[nparts] = s
            pe[nparts] = start - min_space + 1
            nparts += 1
        if e - start - ln - min_space > keep:
            ps[nparts] = start + ln + min_space
            pe[nparts] = e
            nparts += 1
    return count


@njit(cache=True)
def _row_spans(row, sz, st, i, p, buf, stamp):
    """Mask one row's spans; returns the number of masked frames."""
    # "random rounding" of the expected span count, as in fairseq
    num = max(p.min_masks, np.int64(p.mask_prob * sz / p.span + _uniform(st, i)))
    num = _draw_lengths(buf[:num], st, i, p.span, p.mtype, p.mother, sz)
    if p.no_overlap:
        return _place_disjoint(row, sz, buf[:num], p.min_space, st, i, buf[num:])
    return _place_overlapping(row, sz, buf[:num], st, i, stamp)


@njit(cache=True)
def _flip_random(row, sz, have, k, value, st, i, buf):
    """Flip ``k`` of the ``have`` frames in row[:sz] equal to ``value``, chosen uniformly."""
    if k <= 0:
        return
    if 8 * k <= have - k:
        # Few flips: rejection-sample positions (expected < 9/8 * sz/have draws each),
        # no scan needed.  Each accepted draw is uniform over the remaining candidates.
        done = 0
        while done < k:  # branch-free body: the hit test is a coin flip
            t = _randbelow(st, i, sz)
            v = row[t]
            hit = v == value
            row[t] = v != hit
            done += hit
        return
    idx = buf[:sz]
    n = 0
    for t in range(sz):
        idx[n] = t
        n += row[t] == value
    pick = k
    if k > n - k:  # cheaper to choose the survivors
        for j in range(n):
            row[idx[j]] = not value
        pick = n - k
        value = not value
    for j in range(pick):  # partial Fisher-Yates
        r = j + _randbelow(st, i, n - j)
        t = idx[r]
        idx[r] = idx[j]
        idx[j] = t
        row[t] = not value


@njit(cache=True)
def _row_finish(row, sz, count, target, dropout, st, i, buf):
    if target >= 0:
        if count > target:  # require_same_masks: random subset of the masked frames
            _flip_random(row, sz, count, count - target, True, st, i, buf)
        elif count < target:  # add_masks: random extra frames (never padding)
            _flip_random(row, sz, sz - count, target - count, False, st, i, buf)
        count = target
    if dropout > 0.0:
        _flip_random(row, sz, count, np.int64(np.rint(count * dropout)), True, st, i, buf)


# --------------------------------------------------------------------- drivers


def scratch_sizes(T: int, mask_prob: float, span: int, min_masks: int) -> tuple[int, int]:
    """Entries of ``buf`` (lengths + interval lists, or T indices) and ``stamp`` a row needs."""
    num_max = max(min_masks, int(mask_prob * T / span) + 1)
    return max(T, 3 * num_max + 2), max(T, num_max + 1)


@njit(cache=True)
def _row_start(out, lens, st, counts, i, base, p, buf, stamp):
    st[i] = _mix64(base + np.uint64(i + 1) * _GAMMA)
    if lens[i] > 0:
        counts[i] = _row_spans(out[i], lens[i], st, i, p, buf, stamp)


@njit(cache=True)
def _check(lens, counts, same, add):
    """Returns (bad_row, code, info, target); target -1 means no equalisation."""
    B = lens.shape[0]
    for i in range(B):
        if lens[i] <= 0:
            return np.int64(i), np.int64(EMPTY_ROW), np.int64(0), np.int64(-1)
        if counts[i] >= lens[i]:
            return np.int64(i), np.int64(FULL_ROW), counts[i], np.int64(-1)
    target = np.int64(-1)
    if same and B > 0:
        target = counts.max() if add else counts.min()
        if add:
            for i in range(B):
                if target >= lens[i]:
                    return np.int64(i), np.int64(ADD_OVERFLOW), target, np.int64(-1)
    return np.int64(-1), np.int64(OK), np.int64(0), target


# Two drivers with the same body (serial / prange): tiny batches lose more to thread
# wake-up than they gain.  Both give identical output thanks to per-row streams.
# Each returns (mask, bad_row, code, info); bad_row is -1 when all is well.


@njit(cache=True)
def masks_serial(lens, T, p, n_buf, n_stamp):
    B = lens.shape[0]
    out = np.zeros((B, T), np.bool_)
    st = np.empty(B, np.uint64)
    counts = np.zeros(B, np.int64)
    buf = np.empty(n_buf, np.int64)
    stamp = np.zeros(n_stamp, np.int64)
    base = _mix64(p.seed ^ _SALT)
    for i in range(B):
        _row_start(out, lens, st, counts, i, base, p, buf, stamp)
    bad, code, info, target = _check(lens, counts, p.same, p.add)
    if bad < 0 and (target >= 0 or p.dropout > 0.0):
        for i in range(B):
            _row_finish(out[i], lens[i], counts[i], target, p.dropout, st, i, buf)
    return out, bad, code, info


@njit(cache=True, parallel=True)
def masks_parallel(lens, T, p, n_buf, n_stamp, n_chunks):
    """Rows split into ``n_chunks`` contiguous chunks, one scratch allocation each."""
    B = lens.shape[0]
    out = np.zeros((B, T), np.bool_)
    st = np.empty(B, np.uint64)
    counts = np.zeros(B, np.int64)
    base = _mix64(p.seed ^ _SALT)
    for c in prange(n_chunks):
        buf = np.empty(n_buf, np.int64)
        stamp = np.zeros(n_stamp, np.int64)
        for i in range(c * B // n_chunks, (c + 1) * B // n_chunks):
            _row_start(out, lens, st, counts, i, base, p, buf, stamp)
    bad, code, info, target = _check(lens, counts, p.same, p.add)
    if bad < 0 and (target >= 0 or p.dropout > 0.0):
        for c in prange(n_chunks):
            buf = np.empty(n_buf, np.int64)
            for i in range(c * B // n_chunks, (c + 1) * B // n_chunks):
                _row_finish(out[i], lens[i], counts[i], target, p.dropout, st, i, buf)
    return out, bad, code, info


@njit(cache=True)
def lengths_from_padding(pm):
    """Unpadded length per row; returns (lengths, bad_row) where bad_row is the first
    row whose True entries are not a suffix (fairseq assumes right padding)."""
    B, T = pm.shape
    lens = np.empty(B, np.int64)
    for i in range(B):
        n_pad = 0
        for t in range(T):
            n_pad += pm[i, t]
        sz = T - n_pad
        for t in range(sz, T):
            if not pm[i, t]:
                return lens, np.int64(i)
        lens[i] = sz
    return lens, np.int64(-1)
