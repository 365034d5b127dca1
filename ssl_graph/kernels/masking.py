"""Span masks for wav2vec 2.0 / HuBERT pre-training, with fairseq semantics.

Same behaviour as fairseq's ``compute_mask_indices`` (per-row "random rounding" of the
span count, overlapping spans by default, ``require_same_masks`` equalisation,
``add_masks``, ``mask_dropout``, the four span-length distributions, ``no_overlap``
with ``min_space``), but:

* **seeded and reproducible**: the mask is a pure function of (seed, shape, lengths,
  options); row ``i`` uses its own random stream derived from ``(seed, i)``, so the
  result does not depend on threading.  Pass a new seed per step (e.g. derived from
  the global step) to get fresh masks.
* runs on numpy 2 for every option (fairseq HEAD crashes on ``uniform`` and
  ``no_overlap`` there).
* the whole batch is one call into a compiled Numba kernel (tens of microseconds
  for B=32, T=800), so masks can be drawn per step without a Python loop over rows.

Deliberate differences where fairseq HEAD crashes or misbehaves: a row whose span
count rounds to 0 gets no spans (fairseq raises for ``static`` and forces one span
otherwise); ``add_masks`` only adds unpadded frames and raises if a row is too short
(fairseq masks padding); ``no_overlap`` accepts an interval only if the span leaves
at least one frame (fairseq crashes on an exact fit with ``min_space=0``); padding must
be right-aligned; empty rows raise.  The random streams are our own (SplitMix64), so
masks are not bit-identical to fairseq's; distributions match.
"""

from __future__ import annotations

import operator

import numba
import numpy as np

from . import _masking_impl as _impl

__all__ = ["compute_channel_mask", "compute_mask_indices"]

_U64 = (1 << 64) - 1
_MAX_SIZE = (1 << 31) - 1  # bounded draws are 32-bit
# Batches below this many cells run on one thread.  Serial costs ~1.5 ns per cell
# (B=256, T=1600: ~0.4 ms), far below a training step, while the prange driver pays
# for waking the pool, stalls when cores are oversubscribed (torch threads, loader
# workers), and Numba documents its GNU-OpenMP layer as not fork-safe.  Real batches
# (B*T of 10^4..10^5 frames) therefore never use it.
_PARALLEL_MIN_CELLS = 1 << 20


def _validate(
    shape: tuple[int, int],
    mask_prob: float,
    mask_length: int,
    mask_type: str,
    mask_other: float,
    min_masks: int,
    no_overlap: bool,
    min_space: int,
    require_same_masks: bool,
    add_masks: bool,
    mask_dropout: float,
    seed: int,
) -> tuple[int, int, _impl.Params]:
    """Normalise and validate the arguments shared by time and channel masks."""
    try:
        B, T = (operator.index(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair of ints (batch, size); got {shape!r}") from None
    if not (0 <= B <= _MAX_SIZE and 0 <= T <= _MAX_SIZE):
        raise ValueError(f"shape sizes must be in [0, 2**31); got {shape!r}")
    mtype = _impl.MASK_TYPES.get(mask_type)
    if mtype is None:
        raise ValueError(f"mask_type must be one of {sorted(_impl.MASK_TYPES)}; got {mask_type!r}")
    try:
        span = operator.index(mask_length)
    except TypeError:
        span = -1
    if not 1 <= span <= _MAX_SIZE // 4:
        raise ValueError(f"mask_length must be an int in [1, 2**29); got {mask_length!r}")
    mask_prob = float(mask_prob)
    if not 0.0 <= mask_prob <= 1.0:  # also rejects NaN
        raise ValueError(f"mask_prob must be in [0, 1]; got {mask_prob!r}")
    mask_dropout = float(mask_dropout)
    if not 0.0 <= mask_dropout <= 1.0:
        raise ValueError(f"mask_dropout must be in [0, 1]; got {mask_dropout!r}")
    mask_other = float(mask_other)
    if mtype == _impl.UNIFORM and not 0.0 <= mask_other <= 2 * span:
        raise ValueError(
            f"uniform mask_other (min span length) must be in [0, 2*mask_length]; "
            f"got {mask_other!r}"
        )
    if mtype == _impl.NORMAL and not 0.0 <= mask_other < float("inf"):
        raise ValueError(f"normal mask_other (std) must be finite and >= 0; got {mask_other!r}")
    min_masks = operator.index(min_masks)
    if not 0 <= min_masks <= max(T, 1):  # more spans than frames can only fully mask
        raise ValueError(f"min_masks must be in [0, {max(T, 1)}]; got {min_masks!r}")
    min_space = operator.index(min_space)
    if min_space < 0:
        raise ValueError(f"min_space must be >= 0; got {min_space!r}")
    params = _impl.Params(
        mask_prob,
        span,
        mtype,
        mask_other,
        min_masks,
        bool(no_overlap),
        min_space,
        bool(require_same_masks),
        bool(add_masks),
        mask_dropout,
        np.uint64(operator.index(seed) & _U64),
    )
    return B, T, params


def _run(lens: np.ndarray, T: int, p: _impl.Params) -> np.ndarray:
    """Dispatch to a compiled driver and turn its error code into a ValueError."""
    B = lens.shape[0]
    n_buf, n_stamp = _impl.scratch_sizes(T, p.mask_prob, p.span, p.min_masks)
    threads = numba.get_num_threads() if B > 1 and B * T >= _PARALLEL_MIN_CELLS else 1
    if threads > 1:
        n_chunks = min(B, 4 * threads)  # a few chunks per thread evens out row costs
        mask, bad, code, info = _impl.masks_parallel(lens, T, p, n_buf, n_stamp, n_chunks)
    else:
        mask, bad, code, info = _impl.masks_serial(lens, T, p, n_buf, n_stamp)
    if bad < 0:
        return mask
    sz = int(lens[bad])
    if code == _impl.EMPTY_ROW:
        raise ValueError(f"row {bad} has no unpadded frames (sz=0); drop empty rows first")
    if code == _impl.FULL_ROW:
        raise ValueError(
            f"the entire sequence would be masked in row {bad} ({info} of sz={sz} frames); "
            f"lower mask_prob, mask_length or min_masks"
        )
    raise ValueError(
        f"add_masks needs {info} masked frames per row but row {bad} has only sz={sz} "
        f"unpadded frames; use add_masks=False or batch similar lengths"
    )


def compute_mask_indices(
    shape: tuple[int, int],
    mask_prob: float,
    mask_length: int,
    *,
    lengths: np.ndarray | None = None,
    padding_mask: np.ndarray | None = None,
    mask_type: str = "static",
    mask_other: float = 0.0,
    min_masks: int = 0,
    no_overlap: bool = False,
    min_space: int = 0,
    require_same_masks: bool = True,
    mask_dropout: float = 0.0,
    add_masks: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Boolean (B, T) time mask (True = masked), fairseq ``compute_mask_indices`` semantics.

    ``mask_prob`` is the span-start probability times ``mask_length`` (0.65 with M=10
    means p=0.065; expected coverage ~ 1 - (1 - p)**M before equalisation).  Give the
    valid length of each row either as ``lengths`` (B,) or as a right-aligned
    ``padding_mask`` (B, T), True = padded; padded frames are never masked.
    ``mask_other`` is the minimum span length for ``uniform`` (truncated to an int;
    lengths are drawn from [mask_other, 2*mask_length]) and the std for ``normal``.
    With ``require_same_masks`` every row ends with the batch minimum (or with
    ``add_masks`` the maximum) masked count, which lets callers gather masked frames
    into a dense (B, n, D) tensor; ``mask_dropout`` then unmasks
    ``round(n * mask_dropout)`` random masked frames per row.

    Raises ValueError for invalid options, empty rows, and rows that would be
    entirely masked.
    """
    B, T, params = _validate(
        shape,
        mask_prob,
        mask_length,
        mask_type,
        mask_other,
        min_masks,
        no_overlap,
        min_space,
        require_same_masks,
        add_masks,
        mask_dropout,
        seed,
    )
    if lengths is not None and padding_mask is not None:
        raise ValueError("give either lengths or padding_mask, not both")
    if padding_mask is not None:
        pm = np.ascontiguousarray(padding_mask, dtype=np.bool_)
        if pm.shape != (B, T):
            raise ValueError(f"padding_mask shape {pm.shape} does not match shape {(B, T)}")
        lens, bad = _impl.lengths_from_padding(pm)
        if bad >= 0:
            raise ValueError(f"padding_mask row {bad} is not right-padded (True must be a suffix)")
    elif lengths is not None:
        arr = np.asarray(lengths)
        if arr.shape != (B,) or (B and arr.dtype.kind not in "iu"):
            raise ValueError(
                f"lengths must be an integer array of shape ({B},); got {arr.dtype} {arr.shape}"
            )
        if B and (arr.min() < 0 or arr.max() > T):
            raise ValueError(f"lengths must be in [0, {T}]; got [{arr.min()}, {arr.max()}]")
        lens = np.ascontiguousarray(arr, dtype=np.int64)
    else:
        lens = np.full(B, T, dtype=np.int64)
    return _run(lens, T, params)


def compute_channel_mask(
    shape: tuple[int, int],
    mask_prob: float,
    mask_length: int,
    *,
    mask_type: str = "static",
    mask_other: float = 0.0,
    min_masks: int = 0,
    no_overlap: bool = False,
    min_space: int = 0,
    require_same_masks: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Boolean (B, C) channel mask; broadcast it over time and zero those channels.

    Same span sampling as :func:`compute_mask_indices` without padding.
    ``require_same_masks`` defaults to True because fairseq's wav2vec 2.0 / HuBERT
    call ``compute_mask_indices`` for channels with its defaults.  Use a different
    ``seed`` from the time mask so the two are independent.
    """
    B, C, params = _validate(
        shape,
        mask_prob,
        mask_length,
        mask_type,
        mask_other,
        min_masks,
        no_overlap,
        min_space,
        require_same_masks,
        False,
        0.0,
        seed,
    )
    return _run(np.full(B, C, dtype=np.int64), C, params)
