"""Sampler truth: Threefry-2x32 and the integer mapping of draws to classes (section 5).

TensorFlow's samplers draw from Philox; multisampled's draw from a counter-based contract of
their own, which these functions state in Python ints so that a sampler can be checked bit for
bit. Draw i of the call with index c under the key (key0, key1) is the Threefry-2x32-20 block
(x0, x1) of the counter (c, i), read as the 64-bit integer X = x0 * 2**32 + x1 (the number
u = X / 2**64 in [0, 1)). An int seed s is the key (s >> 32, s & 0xFFFFFFFF). Classes follow
from X by integer arithmetic; only the CDF thresholds are computed, once, in float64.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from ._common import _i64
from ._distributions import expected_count, log_uniform_prob

_MASK32 = 0xFFFFFFFF
#: Skein's key-schedule parity constant, as Random123 uses it for 32-bit words.
_THREEFRY_PARITY = 0x1BD11BDA
#: Random123's rotation amounts R_32x2_0_0 .. R_32x2_7_0: round r rotates by entry r % 8.
_THREEFRY_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_THREEFRY_ROUNDS = 20

#: Random123's known-answer vectors of Threefry-2x32-20: ``((key0, key1), (c0, c1), (x0, x1))``.
THREEFRY2X32_KAT = (
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
)


def _rotl32(x, r):
    """``x`` rotated left by ``r`` bits as a 32-bit word (a Python int or a uint64 array)."""
    return ((x << r) | (x >> (32 - r))) & _MASK32


def _threefry_rounds(key0, key1, c0, c1):
    """Threefry-2x32-20 of 32-bit words held in Python ints or NumPy uint64 arrays.

    Random123's definition: the key schedule is ``(key0, key1, key0 ^ key1 ^ parity)``; the
    counter plus the first two key words is mixed by 20 rounds of ``x0 += x1; x1 = rotl(x1,
    R[r % 8]) ^ x0``, and after every fourth round injection ``s = 1 .. 5`` adds key words
    ``s % 3`` and ``(s + 1) % 3`` (the latter plus ``s``). Every sum is reduced mod 2**32.
    """
    ks = (key0, key1, key0 ^ key1 ^ _THREEFRY_PARITY)
    x0 = (c0 + ks[0]) & _MASK32
    x1 = (c1 + ks[1]) & _MASK32
    for r in range(_THREEFRY_ROUNDS):
        x0 = (x0 + x1) & _MASK32
        x1 = _rotl32(x1, _THREEFRY_ROTATIONS[r % 8]) ^ x0
        if r % 4 == 3:
            s = r // 4 + 1
            x0 = (x0 + ks[s % 3]) & _MASK32
            x1 = (x1 + ks[(s + 1) % 3] + s) & _MASK32
    return x0, x1


def _word(value, name):
    """``value`` as a Python int in ``[0, 2**32)``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an int in [0, 2**32), got {value!r}")
    value = int(value)
    if not 0 <= value <= _MASK32:
        raise ValueError(f"{name}: expected an int in [0, 2**32), got {value}")
    return value


def threefry2x32(key0: int, key1: int, c0: int, c1: int) -> tuple[int, int]:
    """Threefry-2x32 with 20 rounds: the counter ``(c0, c1)`` encrypted under ``(key0, key1)``.

    All four are ints in ``[0, 2**32)``; returns ``(x0, x1)``, two such ints. Random123's
    function, which ``jax.random`` also uses (see :data:`THREEFRY2X32_KAT`).

    Args:
        key0: The key's first word.
        key1: The key's second word.
        c0: The counter's first word.
        c1: The counter's second word.

    Returns:
        ``(x0, x1)``.

    Raises:
        ValueError: A word that is not an int in ``[0, 2**32)`` (bools refused).
    """
    words = [_word(v, n) for v, n in zip((key0, key1, c0, c1), ("key0", "key1", "c0", "c1"))]
    return _threefry_rounds(*words)


def threefry2x32_array(key0: npt.ArrayLike, key1: npt.ArrayLike, c0: npt.ArrayLike,
                       c1: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """:func:`threefry2x32` elementwise over broadcast NumPy integer arrays (or ints).

    Every value must lie in ``[0, 2**32)``. Returns ``(x0, x1)`` as uint64 arrays of the
    broadcast shape (at least one dimension) holding 32-bit values.

    Args:
        key0: The keys' first words.
        key1: The keys' second words.
        c0: The counters' first words.
        c1: The counters' second words.

    Returns:
        ``(x0, x1)``.

    Raises:
        ValueError: A non-integer array or a value outside ``[0, 2**32)``.
    """
    words = []
    for value, name in zip((key0, key1, c0, c1), ("key0", "key1", "c0", "c1")):
        arr = np.array(value, ndmin=1)
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > _MASK32)):
            raise ValueError(f"{name}: expected integers in [0, 2**32), got {value!r}")
        words.append(arr.astype(np.uint64))
    return _threefry_rounds(*np.broadcast_arrays(*words))


def sampler_draws(key: Sequence[int], call_index: int, start: int, count: int) -> list[int]:
    """``X = x0 * 2**32 + x1`` of draws ``start .. start+count-1`` of one sampler call.

    ``key``: ``(key0, key1)``; draw ``i`` of call ``call_index`` is the counter
    ``(call_index, i)``. Returns a list of Python ints in ``[0, 2**64)``.

    Args:
        key: ``(key0, key1)``, ints in ``[0, 2**32)``.
        call_index: The call's index, an int in ``[0, 2**32)``.
        start: The first draw's index.
        count: The number of draws.

    Returns:
        The draws ``X``.

    Raises:
        ValueError: A key word or call index outside ``[0, 2**32)``, or draws outside the
            32-bit draw counter.
    """
    key0, key1 = (_word(k, "key") for k in key)
    call_index = _word(call_index, "call_index")
    if start < 0 or start + count > 2**32:
        raise ValueError(f"draws [{start}, {start + count}) leave the 32-bit draw counter")
    draws = np.arange(start, start + count, dtype=np.uint64)
    x0, x1 = threefry2x32_array(key0, key1, call_index, draws)
    return [(a << 32) | b for a, b in zip(x0.tolist(), x1.tolist())]


def _draw_stream(key, call_index):
    """``X`` of draws 0, 1, 2, ... of one sampler call, lazily, in growing blocks."""
    start, block = 0, 256
    while start < 2**32:
        count = min(block, 2**32 - start)
        yield from sampler_draws(key, call_index, start, count)
        start += count
        block = min(2 * block, 2**16)


def cdf_threshold_ints(cdf: npt.ArrayLike) -> list[int]:
    """64-bit fixed-point thresholds ``rint(clip(cdf, 0, 1) * 2**64)`` of float64 CDF values.

    Python ints; values that reach ``2**64`` (which no draw can reach) are dropped. A draw ``X``
    falls in class ``k`` = the number of thresholds ``<= X``.

    Args:
        cdf: Non-decreasing CDF values (without the final 1).

    Returns:
        The thresholds.

    Raises:
        ValueError: ``cdf`` decreases somewhere.
    """
    scaled = np.rint(np.clip(np.asarray(cdf, dtype=np.float64), 0.0, 1.0) * 2.0**64)
    thresholds = [int(v) for v in scaled.tolist() if v < 2.0**64]
    if any(b < a for a, b in zip(thresholds, thresholds[1:])):
        raise ValueError("cdf: expected non-decreasing values")
    return thresholds


def fixed_unigram_weights_float32(unigrams: Iterable[float], distortion: float = 1.0,
                                  num_reserved_ids: int = 0, num_shards: int = 1,
                                  shard: int = 0) -> np.ndarray:
    """The fixed-unigram weights ``wv`` in float32, as TensorFlow holds them (section 5.5).

    Reserved ids of this shard get 0 (no power applied); every kept unigram (entries whose
    running id, starting at the number of this shard's reserved ids, is ``shard`` mod
    ``num_shards``) becomes ``float32(value) ** float32(distortion)`` in float32.

    Args:
        unigrams: The classes' counts.
        distortion: The power applied to every count.
        num_reserved_ids: Leading ids of weight 0.
        num_shards: The number of shards of the vocabulary.
        shard: This shard's index, ``0 <= shard < num_shards``.

    Returns:
        The float32 weights of this shard.

    Raises:
        ValueError: A bad ``shard``, or a count that is negative or not finite.
    """
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"shard: expected 0 <= shard < num_shards={num_shards}, got {shard}")
    reserved = sum(1 for rid in range(num_reserved_ids) if rid % num_shards == shard)
    kept = [v for j, v in enumerate(unigrams) if (reserved + j) % num_shards == shard]
    values = np.asarray(kept, dtype=np.float64).astype(np.float32)
    if np.any(~np.isfinite(values) | (values < 0)):
        raise ValueError(f"unigrams: expected finite values >= 0, got {list(unigrams)!r}")
    powered = np.power(values, np.float32(distortion), dtype=np.float32)
    return np.concatenate([np.zeros(reserved, dtype=np.float32), powered])


def _uniform_parts(range_max):
    """Uniform: class ``(X * R) >> 64`` (``floor(u * R)``); ``P = float32(1/R)``."""
    p = np.float32(1.0 / range_max)
    return (lambda x: (x * range_max) >> 64), (lambda k: np.full(k.shape, p)), range_max


def _log_uniform_parts(range_max):
    """Log-uniform: the number of thresholds ``t_k <= X``, ``t_k`` of ``log(k+2) / log1p(R)``
    for ``k = 0 .. R-2``; ``P`` as :func:`log_uniform_prob`."""
    k = np.arange(range_max - 1, dtype=np.float64)
    thresholds = cdf_threshold_ints(np.log(k + 2.0) / np.log1p(float(range_max)))

    def prob(classes):
        return log_uniform_prob(classes, range_max).astype(np.float32)

    return (lambda x: bisect.bisect_right(thresholds, x)), prob, range_max


def _fixed_unigram_parts(range_max, unigrams, **weight_args):
    """Fixed unigram: the number of thresholds ``<= X`` of ``cumsum(float64(w)) / sum`` less
    its last entry; ``P = float32(w[k] / total)`` with TensorFlow's running float32 total."""
    w = fixed_unigram_weights_float32(unigrams, **weight_args)
    if w.shape[0] != range_max:
        raise ValueError(f"range_max: expected the weight count {w.shape[0]}, got {range_max}")
    total = np.float32(0.0)
    for v in w:
        total = np.float32(total + v)
    if not (np.isfinite(total) and total > 0):
        raise ValueError(f"unigrams: expected a positive finite total weight, got {total}")
    cum = np.cumsum(w.astype(np.float64))
    thresholds = cdf_threshold_ints(cum[:-1] / cum[-1])
    p = (w / total).astype(np.float32)
    support = int(np.count_nonzero(w))
    return (lambda x: bisect.bisect_right(thresholds, x)), (lambda k: p[k]), support


def _learned_unigram_parts(range_max, counts=None):
    """Learned unigram: the first ``k`` with ``cumsum(counts)[k] > (X * total) >> 64`` (a
    uniform integer in ``[0, total)``); ``P = float32(count[k]) / float32(total)``."""
    counts = [1] * range_max if counts is None else [int(c) for c in counts]
    if len(counts) != range_max or min(counts) < 1:
        raise ValueError(f"counts: expected {range_max} ints >= 1, got {counts!r}")
    cum = list(itertools.accumulate(counts))
    total = cum[-1]
    p = np.asarray(counts, dtype=np.float32) / np.float32(total)
    return (lambda x: bisect.bisect_right(cum, (x * total) >> 64)), (lambda k: p[k]), range_max


_SAMPLER_PARTS = {
    "uniform": (_uniform_parts, ()),
    "log_uniform": (_log_uniform_parts, ()),
    "fixed_unigram": (_fixed_unigram_parts,
                      ("unigrams", "distortion", "num_reserved_ids", "num_shards", "shard")),
    "learned_unigram": (_learned_unigram_parts, ("counts",)),
}


def _sampler_parts(kind, range_max, dist_args):
    """``(draw_to_class, prob, support)`` of sampler ``kind`` over ``[0, range_max)``.

    ``draw_to_class(X)`` is the class of a 64-bit draw; ``prob(classes)`` the float32 ``P(k)``
    of an int64 array of classes (the expected counts' ``P``); ``support`` the number of
    classes with ``P > 0``.
    """
    if kind not in _SAMPLER_PARTS:
        raise ValueError(f"kind: expected one of {sorted(_SAMPLER_PARTS)}, got {kind!r}")
    build, allowed = _SAMPLER_PARTS[kind]
    unknown = sorted(set(dist_args) - set(allowed))
    if unknown:
        raise ValueError(f"{kind}: unexpected arguments {unknown}; expected {list(allowed)}")
    if kind == "fixed_unigram" and "unigrams" not in dist_args:
        raise ValueError("fixed_unigram: expected the argument unigrams")
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    return build(range_max, **dist_args)


def reference_probabilities(kind: str, classes: npt.ArrayLike, range_max: int,
                            **dist_args: Any) -> np.ndarray:
    """The float32 ``P(k)`` of ``classes`` under sampler ``kind`` (float64 values of float32s).

    ``kind``: "uniform" (``1/R``), "log_uniform" (``ln((k+2)/(k+1)) / log1p(R)`` in float64),
    "fixed_unigram" (``w[k] / total``, ``total`` summed in float32 in order; ``dist_args``
    ``unigrams``, ``distortion``, ``num_reserved_ids``, ``num_shards``, ``shard``) or
    "learned_unigram" (``float32(count[k]) / float32(sum(counts))``; ``dist_args`` ``counts``,
    all ones by default).

    Args:
        kind: The sampler's name.
        classes: Integer class ids in ``[0, range_max)``.
        range_max: ``R``, the number of classes (>= 1).
        **dist_args: The sampler's distribution arguments.

    Returns:
        ``P(classes)``: float64 values of float32 numbers.

    Raises:
        ValueError: An unknown ``kind`` or argument, ``unigrams`` missing for
            "fixed_unigram", ``range_max < 1``, ids outside ``[0, range_max)``, bad weights
            or counts.
    """
    _, prob, _ = _sampler_parts(kind, range_max, dist_args)
    k = _i64(classes, "classes")
    if np.any((k < 0) | (k >= range_max)):
        raise ValueError(f"classes: expected ids in [0, {range_max}), got {classes!r}")
    return prob(k).astype(np.float64)


def reference_candidates(kind: str, key: Sequence[int], call_index: int, num_sampled: int,
                         unique: bool, range_max: int,
                         **dist_args: Any) -> tuple[np.ndarray, int]:
    """``(candidates int64 [S], num_tries)`` of one sampler call (section 5.3).

    Draw ``i`` of the call is :func:`sampler_draws` ``(key, call_index, i)``; its class is
    ``(X * R) >> 64`` (uniform), the number of CDF thresholds ``<= X`` (log-uniform, fixed
    unigram; thresholds of the CDF without its last entry, :func:`cdf_threshold_ints`), or the
    first ``k`` with ``cumsum(counts)[k] > (X * sum(counts)) >> 64`` (learned unigram).
    ``unique=False``: the classes of draws ``0 .. S-1``, ``num_tries = S``. ``unique=True``:
    TensorFlow's loop, keeping a draw's class iff it is new, until ``S`` are kept, in order of
    first draw; ``num_tries`` counts every draw up to the one that completed the set.
    ``dist_args`` as in :func:`reference_probabilities`.

    Args:
        kind: The sampler's name.
        key: ``(key0, key1)``.
        call_index: The call's index.
        num_sampled: ``S`` (>= 1).
        unique: Whether the candidates are distinct.
        range_max: ``R``, the number of classes (>= 1).
        **dist_args: The sampler's distribution arguments.

    Returns:
        ``(candidates, num_tries)``.

    Raises:
        ValueError: As :func:`reference_probabilities`; ``num_sampled < 1``; unique sampling of
            more classes than have ``P > 0``, or not done within ``2**32`` draws.
    """
    to_class, _, support = _sampler_parts(kind, range_max, dist_args)
    if num_sampled < 1:
        raise ValueError(f"num_sampled: expected >= 1, got {num_sampled}")
    if not unique:
        draws = sampler_draws(key, call_index, 0, num_sampled)
        return np.asarray([to_class(x) for x in draws], dtype=np.int64), num_sampled
    if num_sampled > support:
        raise ValueError(
            f"num_sampled: unique sampling needs {num_sampled} classes with P > 0, "
            f"got {support}"
        )
    kept, seen = [], set()
    for num_tries, x in enumerate(_draw_stream(key, call_index), start=1):
        k = to_class(x)
        if k not in seen:
            seen.add(k)
            kept.append(k)
            if len(kept) == num_sampled:
                return np.asarray(kept, dtype=np.int64), num_tries
    raise ValueError(f"unique sampling found {len(kept)} of {num_sampled} classes in 2**32 draws")


def reference_expected_counts(kind: str, classes: npt.ArrayLike, num_sampled: int,
                              num_tries: int, range_max: int, **dist_args: Any) -> np.ndarray:
    """TensorFlow's expected counts of ``classes`` for a call with ``num_tries`` (section 5.4).

    :func:`expected_count` of :func:`reference_probabilities`: ``S * P`` when
    ``num_tries == S``, else ``-expm1(num_tries * log1p(-P))``, in float32. Returns float64
    values of float32 numbers, shape of ``classes``.

    Args:
        kind: The sampler's name.
        classes: Integer class ids in ``[0, range_max)``.
        num_sampled: ``S``.
        num_tries: The draws the call consumed.
        range_max: ``R``, the number of classes.
        **dist_args: The sampler's distribution arguments.

    Returns:
        The expected counts.

    Raises:
        ValueError: As :func:`reference_probabilities`.
    """
    p = reference_probabilities(kind, classes, range_max, **dist_args)
    return expected_count(p, num_tries, num_sampled)
