"""TensorFlow's candidate samplers (``tf.random.*_candidate_sampler``), on any Array API backend.

Each sampler draws ONE set of ``num_sampled`` candidates shared by the whole batch and returns
``CandidateSamples(sampled_candidates [S] int64, true_expected_count [B, T] float32,
sampled_expected_count [S] float32)`` (SEMANTICS.md 5). Base distributions, unique sampling with
rejection, ``num_tries`` and the expected-count formula follow TensorFlow's kernels exactly; the
random numbers come from :mod:`multisampled._rng` (Threefry, integer-only mapping to classes), so a
seeded call gives bit-identical candidates on every backend and device, but not TensorFlow's
candidates (TensorFlow uses Philox with its own mapping).

Unique sampling is TensorFlow's loop -- draw until ``num_sampled`` distinct classes were seen,
keep them in order of first draw, ``num_tries`` = all draws including repeats -- computed on
blocks of draws with sorts instead of a per-draw loop. Draw ``i`` of a call is always counter
``(call_index, i)``, so the result does not depend on the block size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
import os
import threading
from collections import OrderedDict
from typing import Any, NamedTuple, Optional

from . import _rng
from ._context import Ctx, context
from ._public import public

__all__ = [
    "CandidateSamples",
    "LearnedUnigramSampler",
    "all_candidate_sampler",
    "fixed_unigram_candidate_sampler",
    "learned_unigram_candidate_sampler",
    "log_uniform_candidate_sampler",
    "uniform_candidate_sampler",
]

INT32_MAX = 2**31 - 1
# TensorFlow's unique loop CHECK-fails when num_tries reaches kint32max: at most this many draws
MAX_TRIES = INT32_MAX - 1
# total weight cap of the learned unigram (TensorFlow drops updates beyond it)
LEARNED_TOTAL_CAP = INT32_MAX
# unique sampling on a backend without host checks sizes one block so that it fails to hold
# num_sampled distinct classes with probability below this
BLOCK_FAILURE_PROBABILITY = 1e-12
_MAX_BLOCK = 2**22  # draws per block (memory bound); the block also holds at least 4 * S


class CandidateSamples(NamedTuple):
    """What every sampler returns; usable as ``sampled_values`` of the losses."""

    sampled_candidates: Any
    true_expected_count: Any
    sampled_expected_count: Any


# --------------------------------------------------------------------------- argument checks


def _check_int(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {bound}, got {value}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}")


def _check_seed(seed: Any, ctx: Ctx) -> Any:
    if seed is None or isinstance(seed, _rng.Generator):
        return seed
    if (
        ctx.backend.key_from_seed is not None
        and not isinstance(seed, int)
        and type(seed).__module__.split(".")[0] == ctx.backend.module
    ):
        return seed  # a framework-native seed object (torch.Generator): see _call_for
    return _rng._check_seed(seed)


def _true_classes(ctx: Ctx, true_classes: Any, num_true: int) -> Any:
    """``true_classes`` as a backend array of an integer dtype, shape-checked (TF's checks)."""
    xp = ctx.xp
    tc = ctx.asarray(true_classes)
    if not xp.isdtype(tc.dtype, "integral"):
        raise TypeError(
            f"true_classes (labels) must be integers (int64, int32, ...), got dtype {tc.dtype}"
        )
    if len(tc.shape) != 2:
        raise ValueError(
            "true_classes must be a matrix of shape [batch_size, num_true], got shape "
            f"{tuple(tc.shape)} (rank {len(tc.shape)})"
        )
    if tc.shape[1] != num_true:
        raise ValueError(
            f"true_classes must have num_true={num_true} columns, got {tc.shape[1]} "
            f"(shape {tuple(tc.shape)})"
        )
    return tc


def _check_class_range(ctx: Ctx, tc: Any, range_max: int, what: str) -> Any:
    """TF's "`true_candidate` out of range [0, R)" check, then the cast to the index dtype.

    Eager on host-check backends; otherwise ``assert_async`` when the backend has it, and the
    indices used for gathers are clipped so an invalid label never reads out of bounds.
    """
    xp = ctx.xp
    msg = f"true_classes values must be in [0, {range_max}) ({what})"
    if tc.shape[0] * tc.shape[1] > 0:
        bad = tc < 0
        if xp.iinfo(tc.dtype).max >= range_max:
            bad = bad | (tc >= range_max)
        if ctx.host_checks:
            if bool(xp.any(bad)):
                flat = xp.reshape(tc, (-1,))
                first = int(xp.argmax(xp.astype(xp.reshape(bad, (-1,)), xp.int8)))
                raise ValueError(f"{msg}, got {int(flat[first])} at flat position {first}")
        elif ctx.backend.assert_async is not None:
            ctx.backend.assert_async(xp.logical_not(xp.any(bad)), msg)
    out = tc if tc.dtype == ctx.index_dtype else xp.astype(tc, ctx.index_dtype)
    if not ctx.host_checks:
        out = xp.clip(out, 0, range_max - 1)
    return out


def _common_checks(num_true, num_sampled, unique, range_max=None):
    num_true = _check_int("num_true", num_true, 1, INT32_MAX)
    num_sampled = _check_int("num_sampled", num_sampled, 1, INT32_MAX)
    unique = _check_bool("unique", unique)
    if range_max is not None:
        range_max = _check_int("range_max", range_max, 1)
        if unique and num_sampled > range_max:
            raise ValueError(
                f"Sampler's range is too small: unique=True needs num_sampled <= range_max, got "
                f"num_sampled={num_sampled} and range_max={range_max}"
            )
    return num_true, num_sampled, unique, range_max


def _check_index_range(ctx: Ctx, range_max: int) -> None:
    limit = int(ctx.xp.iinfo(ctx.index_dtype).max)
    if range_max - 1 > limit or range_max >= 2**32:
        raise ValueError(
            f"range_max={range_max} is too large for the {ctx.name} backend: class ids must fit "
            f"its index dtype {ctx.index_dtype} and be below 2**32"
        )


# --------------------------------------------------------------------------- caches


class _LRU:
    """A small thread-safe least-recently-used cache of per-backend constant tables."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, build):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_tables = _LRU(8)


def _resolved_device(ctx: Ctx) -> Any:
    """The call's device; for host data, the device the backend creates arrays on."""
    if ctx.device is not None:
        return ctx.device
    try:
        return ctx.xp.__array_namespace_info__().default_device()
    except Exception:
        return None


def _device_key(ctx: Ctx) -> tuple:
    return (ctx.backend.name, repr(_resolved_device(ctx)))


# --------------------------------------------------------------------------- distributions


class _Uniform:
    """``P(k) = 1/R``; one draw is ``floor(u * R)``."""

    def __init__(self, ctx: Ctx, range_max: int):
        import numpy as np

        self.ctx, self.range = ctx, range_max
        self.p = float(np.float32(1.0 / range_max))  # TF: double 1/R stored as float

    def classes(self, hi, lo):
        return self.ctx.xp.astype(_rng.uniform_int(self.ctx.xp, hi, lo, self.range),
                                  self.ctx.index_dtype)

    def prob(self, classes):
        xp = self.ctx.xp
        return xp.full(classes.shape, self.p, dtype=xp.float32, device=self.ctx.device)

    def tail_masses(self, s: int):
        import numpy as np

        return (self.range - np.arange(s, dtype=np.float64)) / self.range


class _Table:
    """A fixed distribution given by host-built CDF thresholds and a float32 ``P`` table."""

    def __init__(self, ctx: Ctx, key: tuple, build):
        """``build() -> (cdf float64 [R], p float32 [R], tail_masses(s) callable)`` on the host."""
        self.ctx = ctx

        def device_tables():
            import numpy as np

            cdf, p, tails = build()
            support = int(np.count_nonzero(p))
            hi, lo = _rng.cdf_thresholds(cdf[:-1])
            if _rng.word_dtype(ctx) == ctx.xp.int64:
                # one int64 key per threshold: a single native searchsorted, still exact
                tables = (ctx.asarray(_rng.host_signed_keys(hi, lo), "int64"),)
            else:
                tables = (ctx.asarray(hi, "uint32"), ctx.asarray(lo, "uint32"))
            return (tables, ctx.asarray(p, "float32"), tails, len(p), support, {})

        (self.tables, self.p, self.tail_masses, self.range, self.support,
         self.block_sizes) = _tables.get(_device_key(ctx) + key, device_tables)

    def classes(self, hi, lo):
        xp = self.ctx.xp
        if len(self.tables) == 1:
            k = _rng.search_cdf_keys(xp, hi, lo, self.tables[0])
            return xp.astype(k, self.ctx.index_dtype)
        th_hi, th_lo = self.tables
        return _rng.search_cdf(xp, hi, lo, th_hi, th_lo, self.ctx.index_dtype)

    def unique_block_size(self, s: int) -> int:
        if s not in self.block_sizes:  # a pure function of the table and s: cache it
            self.block_sizes[s] = _unique_block_size(self.tail_masses(s), s)
        return self.block_sizes[s]

    def prob(self, classes):
        return self.ctx.xp.take(self.p, classes)


def _log_uniform(ctx: Ctx, range_max: int) -> _Table:
    def build():
        import numpy as np

        log_range = np.log1p(np.float64(range_max))
        k = np.arange(range_max, dtype=np.float64)
        # one draw is floor(exp(u * log1p(R))) - 1, i.e. class k for u in [ln(k+1), ln(k+2)) / L
        cdf = np.log(k + 2.0) / log_range
        p = (np.log((k + 2.0) / (k + 1.0)) / log_range).astype(np.float32)

        def tails(s):
            # the k most likely classes are 0..k-1 with mass ln(k+1)/L
            return (log_range - np.log1p(np.arange(s, dtype=np.float64))) / log_range

        return cdf, p, tails

    return _Table(ctx, ("log_uniform", range_max), build)


class _Learned:
    """The learned unigram's current weights (a device array of counts, total known on host)."""

    def __init__(self, ctx: Ctx, counts: Any, total: int):
        xp = ctx.xp
        self.ctx, self.counts, self.total = ctx, counts, total
        self.range = counts.shape[0]
        self.cum = xp.cumulative_sum(counts)
        total_arr = self.cum[-1]
        self.total_word = xp.astype(total_arr, _rng.word_dtype(ctx))
        # TF: static_cast<float>(weight) / total_weight, a float32 division
        self.p = xp.astype(counts, xp.float32) / xp.astype(total_arr, xp.float32)

    def classes(self, hi, lo):
        xp = self.ctx.xp
        v = _rng.uniform_int(xp, hi, lo, self.total_word)  # uniform integer in [0, total)
        k = xp.searchsorted(self.cum, xp.astype(v, self.cum.dtype), side="right")
        return xp.astype(k, self.ctx.index_dtype)

    def prob(self, classes):
        return self.ctx.xp.take(self.p, classes)

    def tail_masses(self, s: int):
        import numpy as np

        # every weight is >= 1: the classes not yet drawn weigh at least (R - k) / total
        return (self.range - np.arange(s, dtype=np.float64)) / self.total


# --------------------------------------------------------------------------- sampling


def _unique_block_size(tail_masses, s: int) -> int:
    """Draws that hold ``s`` distinct classes except with probability < 1e-12.

    ``tail_masses[k]`` bounds from below the chance that a draw is new once ``k`` distinct
    classes were seen, so the draws needed are dominated by a sum of geometric variables with
    those success probabilities; Janson's tail bound (Statist. Probab. Lett. 135, 2018, Thm 2.1)
    ``P(X >= lam * mu) <= exp(-p_min * mu * (lam - 1 - ln lam))`` gives the size.
    """
    import numpy as np

    m = np.asarray(tail_masses, dtype=np.float64)
    mu = float(np.sum(1.0 / m))
    target = -math.log(BLOCK_FAILURE_PROBABILITY) / (float(np.min(m)) * mu)
    lo, hi = 1.0, 2.0 + 2.0 * target  # lam - 1 - ln(lam) >= target at hi
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid - 1.0 - math.log(mid) >= target:
            hi = mid
        else:
            lo = mid
    n = math.ceil(1.01 * hi * mu) + 16  # margin for the float64 tail masses
    return max(s, min(n, MAX_TRIES))


def _first_new_positions(ctx: Ctx, c: Any, seen: Any) -> Any:
    """Ascending draw positions of the first occurrence of each class of ``c`` not in ``seen``.

    Shape ``[n]``: real positions first, then the filler ``n``. ``seen`` is a sorted array of
    classes kept earlier, or None.
    """
    xp = ctx.xp
    n = c.shape[0]
    order = xp.argsort(c, stable=True)  # equal classes stay in draw order
    sc = xp.take(c, order)
    first = xp.ones((1,), dtype=xp.bool, device=ctx.device)
    if n > 1:
        first = xp.concat([first, sc[1:] != sc[:-1]])
    if seen is not None:
        idx = xp.clip(xp.searchsorted(seen, sc), 0, seen.shape[0] - 1)
        first = first & (xp.take(seen, idx) != sc)
    return xp.sort(xp.where(first, order, xp.full_like(order, n)))


def _sample_unique_eager(ctx: Ctx, dist, call, s: int, block: int):
    """TF's unique loop over blocks of draws, reading counts on the host (bounded memory)."""
    xp = ctx.xp
    key0, key1, index = call
    start, kept, seen, n_kept = 0, [], None, 0
    max_block = max(_MAX_BLOCK, 4 * s)
    while True:
        n = min(block, MAX_TRIES - start)
        if n <= 0:
            raise ValueError(
                f"unique sampling found only {n_kept} of num_sampled={s} distinct classes in "
                f"{MAX_TRIES} draws (TensorFlow aborts at this bound); the distribution puts "
                "too little mass on too few classes"
            )
        hi, lo = _rng.draw_words(ctx, key0, key1, index, start, n)
        c = dist.classes(hi, lo)
        keys = _first_new_positions(ctx, c, seen)
        n_new = int(xp.sum(xp.astype(keys < n, ctx.index_dtype)))
        need = s - n_kept
        if n_new >= need:
            pos = keys[:need]
            kept.append(xp.take(c, pos))
            num_tries = start + int(pos[need - 1]) + 1
            break
        if n_new:
            new = xp.take(c, keys[:n_new])
            kept.append(new)
            seen = xp.sort(new if seen is None else xp.concat([seen, new]))
            n_kept += n_new
        start += n
        block = min(2 * block, max_block)
    return (kept[0] if len(kept) == 1 else xp.concat(kept)), num_tries


def _sample_unique_block(ctx: Ctx, dist, call, s: int, n: int):
    """One block sized from the failure bound; no host synchronisation."""
    xp = ctx.xp
    key0, key1, index = call
    hi, lo = _rng.draw_words(ctx, key0, key1, index, 0, n)
    c = dist.classes(hi, lo)
    pos = _first_new_positions(ctx, c, None)[:s]
    last = pos[s - 1]
    if ctx.backend.assert_async is not None:
        ctx.backend.assert_async(
            last < n,
            f"unique sampling: {n} draws held fewer than num_sampled={s} distinct classes "
            f"(probability < {BLOCK_FAILURE_PROBABILITY})",
        )
    candidates = xp.take(c, xp.clip(pos, 0, n - 1))
    return candidates, xp.astype(last, ctx.index_dtype) + 1


def _call_for(ctx: Ctx, seed: Any) -> tuple:
    """``(key0, key1, call_index)`` for one sampler call with ``seed``.

    A framework-native seed object the backend understands (a ``torch.Generator``) gives a
    fresh key drawn from it and call index 0; anything else goes to the seed streams of
    :mod:`multisampled._rng` (None, an int, or a :class:`~multisampled.Generator`).
    """
    native = ctx.backend.key_from_seed
    if native is not None and seed is not None and not isinstance(seed, (int, _rng.Generator)):
        keys = native(seed, _resolved_device(ctx))
        if keys is None:
            raise TypeError(
                f"seed must be None, a multisampled.Generator, an int in [0, 2**64) or a seed "
                f"object the {ctx.backend.name} backend accepts; got {seed!r} of type "
                f"{type(seed).__name__}"
            )
        return keys[0], keys[1], 0
    return _rng.stream_for(ctx.backend.name, seed).next_call()


def _pow2(n: int) -> int:
    """``n`` rounded up to a power of two. Draws are indexed by counter, so a larger block
    gives the same result; fewer distinct shapes spare tracing backends a recompile per call."""
    return 1 << (n - 1).bit_length()


def _sample(ctx: Ctx, dist, s: int, unique: bool, seed: Any):
    """``(candidates [s], num_tries)``; num_tries is an int, or a 0-d array off the host."""
    call = _call_for(ctx, seed)
    if not unique:
        hi, lo = _rng.draw_words(ctx, call[0], call[1], call[2], 0, s)
        return dist.classes(hi, lo), s
    if hasattr(dist, "unique_block_size"):
        bound = dist.unique_block_size(s)
    else:
        bound = _unique_block_size(dist.tail_masses(s), s)
    if ctx.host_checks:
        # refills are cheap on the host: start near the expected need, not at the bound
        first = _pow2(min(bound, max(4 * s, 2**16)))
        return _sample_unique_eager(ctx, dist, call, s, first)
    if bound <= max(_MAX_BLOCK, 4 * s):
        return _sample_unique_block(ctx, dist, call, s, _pow2(bound))
    # no block of bounded size is safe for this distribution: fall back to reading the count
    return _sample_unique_eager(ctx, dist, call, s, max(_MAX_BLOCK, 4 * s))


def _expected_count(ctx: Ctx, p: Any, s: int, num_tries: Any) -> Any:
    """TF's ExpectedCountHelper in float32: ``S*P`` if num_tries == S else ``1-(1-P)^num_tries``."""
    xp = ctx.xp
    if isinstance(num_tries, int):
        if num_tries == s:
            return p * float(s)
        return -xp.expm1(float(num_tries) * xp.log1p(-p))
    rejected = -xp.expm1(xp.astype(num_tries, xp.float32) * xp.log1p(-p))
    return xp.where(num_tries == s, p * float(s), rejected)


def _run(ctx: Ctx, dist, tc: Any, s: int, unique: bool, seed: Any) -> CandidateSamples:
    xp = ctx.xp
    candidates, num_tries = _sample(ctx, dist, s, unique, seed)
    flat = xp.reshape(tc, (-1,))
    true_q = _expected_count(ctx, dist.prob(flat), s, num_tries)
    sampled_q = _expected_count(ctx, dist.prob(candidates), s, num_tries)
    return CandidateSamples(candidates, xp.reshape(true_q, tuple(tc.shape)), sampled_q)


# --------------------------------------------------------------------------- public samplers


@public
def uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                              seed=None, name=None, *, backend=None) -> CandidateSamples:
    """``tf.random.uniform_candidate_sampler``: classes uniform in ``[0, range_max)``.

    ``P(k) = 1/range_max``. Returns ``CandidateSamples(sampled_candidates [S] int64,
    true_expected_count [B, num_true] float32, sampled_expected_count [S] float32)``.
    ``seed``: None (fresh randomness), an int (the process-wide stream of that seed on this
    backend, shared by all samplers: reproducible across runs, different on each call) or a
    :class:`multisampled.Generator`. ``name`` is accepted and ignored.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    ctx = context(true_classes, backend=backend)
    seed = _check_seed(seed, ctx)
    _check_index_range(ctx, range_max)
    tc = _true_classes(ctx, true_classes, num_true)
    tc = _check_class_range(ctx, tc, range_max, "uniform_candidate_sampler")
    return _run(ctx, _Uniform(ctx, range_max), tc, num_sampled, unique, seed)


@public
def log_uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                                  seed=None, name=None, *, backend=None) -> CandidateSamples:
    """``tf.random.log_uniform_candidate_sampler``: Zipfian classes in ``[0, range_max)``.

    ``P(k) = ln((k+2)/(k+1)) / ln(range_max+1)`` (float64, returned as float32); suits class ids
    sorted by decreasing frequency. Returns and ``seed`` as :func:`uniform_candidate_sampler`.
    Builds (once per backend and device) a table of ``12 * range_max`` bytes.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    ctx = context(true_classes, backend=backend)
    seed = _check_seed(seed, ctx)
    _check_index_range(ctx, range_max)
    tc = _true_classes(ctx, true_classes, num_true)
    tc = _check_class_range(ctx, tc, range_max, "log_uniform_candidate_sampler")
    return _run(ctx, _log_uniform(ctx, range_max), tc, num_sampled, unique, seed)


def _check_unigram_range(range_max: int) -> None:
    if range_max >= INT32_MAX:
        raise ValueError(
            f"range_max must be less than {INT32_MAX} for unigram samplers, got {range_max}"
        )


class LearnedUnigramSampler:
    """TF's learned unigram sampler as an object that owns its state.

    Weights start at 1 for each of ``range_max`` classes. A call samples from ``weight / total``,
    computes the expected counts, and only then adds 1 per entry of ``true_classes`` (repeats
    counted; updates that would take the total past 2**31-1 are dropped, as in TensorFlow).
    ``counts`` is the weight vector (a backend array of the index dtype).
    """

    def __init__(self, range_max, *, backend=None):
        range_max = _check_int("range_max", range_max, 1)
        _check_unigram_range(range_max)
        self.range_max = range_max
        self._backend = backend
        self._lock = threading.Lock()
        self._bind(context(backend=backend))

    def _bind(self, ctx: Ctx) -> None:
        _check_index_range(ctx, self.range_max)
        self._where = _device_key(ctx)
        self._device = _resolved_device(ctx)
        self.total = self.range_max  # host mirror of sum(counts)
        import numpy as np

        from ._checks import dtype_name

        # from host data: a tracing backend (jax.jit) keeps it concrete, so the cached state
        # never holds a tracer
        self.counts = ctx.asarray(
            np.ones((self.range_max,), dtype=np.int64), dtype_name(ctx.index_dtype)
        )

    @public
    def __call__(self, true_classes, num_true, num_sampled, unique, seed=None) -> CandidateSamples:
        """Sample, then learn from ``true_classes``; arguments as in TensorFlow's sampler."""
        num_true, num_sampled, unique, _ = _common_checks(
            num_true, num_sampled, unique, self.range_max)
        ctx = context(true_classes, backend=self._backend)
        seed = _check_seed(seed, ctx)
        with self._lock:
            if ctx.device is None and ctx.backend.name == self._where[0]:
                ctx = dataclasses.replace(ctx, device=self._device)  # host labels go to counts
            if _device_key(ctx) != self._where:
                if self.total != self.range_max:
                    raise ValueError(
                        f"this LearnedUnigramSampler learned on {self._where}; true_classes are "
                        f"on {_device_key(ctx)}: keep one sampler per backend and device"
                    )
                self._bind(ctx)  # nothing learned yet: move to the caller's backend
            tc = _true_classes(ctx, true_classes, num_true)
            tc = _check_class_range(ctx, tc, self.range_max, "learned_unigram_candidate_sampler")
            result = _run(ctx, _Learned(ctx, self.counts, self.total), tc, num_sampled,
                          unique, seed)
            self._update(ctx, ctx.xp.reshape(tc, (-1,)))  # after sampling, as TensorFlow
            return result

    def _update(self, ctx: Ctx, labels: Any) -> None:
        xp = ctx.xp
        allowed = min(labels.shape[0], LEARNED_TOTAL_CAP - self.total)
        if allowed <= 0:
            return
        values = xp.sort(labels[:allowed])
        ids = xp.arange(self.range_max, dtype=values.dtype, device=ctx.device)
        # a bincount without scatter: occurrences of id = right edge - left edge in sorted values
        added = (xp.searchsorted(values, ids, side="right")
                 - xp.searchsorted(values, ids, side="left"))
        self.counts = self.counts + xp.astype(added, self.counts.dtype)
        self.total += allowed

    def __repr__(self) -> str:
        return f"LearnedUnigramSampler(range_max={self.range_max}, total={self.total})"


_learned_states: dict = {}
_learned_lock = threading.Lock()


def _reset_learned_states() -> None:
    """Forget the state of every functional learned unigram sampler (tests)."""
    with _learned_lock:
        _learned_states.clear()


@public
def learned_unigram_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                                      seed=None, name=None, *, backend=None) -> CandidateSamples:
    """``tf.random.learned_unigram_candidate_sampler``: classes by counts of past labels.

    State persists across calls the way TensorFlow's eager kernel cache keeps it: one
    :class:`LearnedUnigramSampler` per backend, device and attribute set ``(num_true,
    num_sampled, unique, range_max, seed)``. A call's own labels affect only later calls.
    Returns and ``seed`` as :func:`uniform_candidate_sampler`; ``range_max < 2**31 - 1``.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    _check_unigram_range(range_max)
    ctx = context(true_classes, backend=backend)
    seed = _check_seed(seed, ctx)
    key = _device_key(ctx) + (num_true, num_sampled, unique, range_max, seed)
    with _learned_lock:
        sampler = _learned_states.get(key)
        if sampler is None:
            sampler = _learned_states[key] = LearnedUnigramSampler(range_max, backend=ctx.backend)
    return sampler(true_classes, num_true, num_sampled, unique, seed=seed)


# --------------------------------------------------------------------------- fixed unigram


def _vocab_values(vocab_file: str, keep):
    """``(values, line_numbers)``: the last comma field of the non-empty lines ``keep`` selects.

    ``keep(j)`` says whether the ``j``-th non-empty line belongs to this shard.
    """
    values, line_numbers = [], []
    with open(vocab_file, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    word = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            continue
        if keep(word):  # like TensorFlow, lines of other shards are not parsed
            field = line.split(b",")[-1]
            try:
                if b"_" in field:
                    raise ValueError
                values.append(float(field))
                line_numbers.append(lineno)
            except ValueError:
                raise ValueError(
                    f"vocab_file={vocab_file!r}: wrong vocabulary format at line {lineno}: "
                    f"{line.decode('utf-8', 'replace')!r}; expected the last comma-separated "
                    "field to be a number"
                ) from None
        word += 1
    return values, line_numbers


def _fixed_unigram_weights(range_max, vocab_file, distortion, num_reserved_ids, num_shards,
                           shard, unigrams):
    """TF's FixedUnigramSampler weights ``wv`` (float32) for this shard (SEMANTICS.md 5.5)."""
    import numpy as np

    reserved = len(range(shard, num_reserved_ids, num_shards))  # reserved ids of this shard
    start = reserved  # TF's running word id starts at len(wv) (quirk 13.13)
    keep = lambda j: (start + j) % num_shards == shard  # noqa: E731
    if vocab_file:
        source = "vocab_file"
        parsed, line_numbers = _vocab_values(vocab_file, keep)
        values = np.asarray(parsed, dtype=np.float64).astype(np.float32)
        where = lambda i: f"line {line_numbers[i]}"  # noqa: E731
    else:
        source = "unigrams"
        allv = unigrams  # float32 host array (TF's list(float) attribute)
        positions = np.nonzero((start + np.arange(allv.shape[0])) % num_shards == shard)[0]
        values = allv[positions]
        where = lambda i: f"index {int(positions[i])}"  # noqa: E731
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{source} weights must be finite and >= 0, got {values[i]} at {where(i)}")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        powered = np.power(values, np.float32(distortion), dtype=np.float32)
    if not np.all(np.isfinite(powered)):
        i = int(np.argmax(~np.isfinite(powered)))
        raise ValueError(
            f"distortion={distortion} turns the {source} weight {values[i]} at {where(i)} into "
            f"{powered[i]}; expected finite weights (a negative distortion needs positive weights)"
        )
    wv = np.concatenate([np.zeros(reserved, dtype=np.float32), powered])
    if wv.shape[0] != range_max:
        raise ValueError(
            f"range_max={range_max} must equal the number of weights of shard {shard}, which is "
            f"{wv.shape[0]} ({reserved} reserved ids + {powered.shape[0]} {source} entries)"
        )
    return wv


def _fixed_unigram(ctx: Ctx, args: tuple, s: int, unique: bool) -> _Table:
    (range_max, vocab_file, distortion, num_reserved_ids, num_shards, shard, unigrams) = args
    if vocab_file:
        try:
            st = os.stat(vocab_file)
        except OSError as exc:
            raise FileNotFoundError(f"vocab_file={vocab_file!r} cannot be read: {exc}") from None
        source_key = ("file", os.path.abspath(vocab_file), st.st_mtime_ns, st.st_size)
    else:
        digest = hashlib.blake2b(unigrams.tobytes(), digest_size=16).hexdigest()
        source_key = ("unigrams", digest)
    key = ("fixed_unigram", range_max, float(distortion), num_reserved_ids, num_shards, shard,
           source_key)

    def build():
        import numpy as np

        wv = _fixed_unigram_weights(*args)
        # TF accumulates the total in float32, entry by entry
        total = np.cumsum(wv, dtype=np.float32)[-1]
        if not (np.isfinite(total) and total > 0):
            raise ValueError(
                f"fixed unigram weights must have a positive finite total; got {total} "
                f"(weights of shard {shard}: {wv[:8]}{'...' if wv.shape[0] > 8 else ''})"
            )
        p = wv / total  # float32 division, as TF's Probability()
        cum = np.cumsum(wv.astype(np.float64))
        cdf = cum / cum[-1]  # non-decreasing and ending at 1 exactly
        asc = np.cumsum(np.sort(wv.astype(np.float64))) / cum[-1]  # mass of the j+1 lightest

        def tails(n):
            return asc[range_max - 1 - np.arange(n)]  # mass outside the k heaviest classes

        return cdf, p, tails

    table = _Table(ctx, key, build)
    support = table.support
    if unique and support < s:
        raise ValueError(
            f"unique=True needs num_sampled={s} distinct classes but only {support} classes of "
            f"range_max={range_max} have a positive weight (TensorFlow would loop until it aborts)"
        )
    return table


@public
def fixed_unigram_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                                    vocab_file="", distortion=1.0, num_reserved_ids=0,
                                    num_shards=1, shard=0, unigrams=(), seed=None, name=None, *,
                                    backend=None) -> CandidateSamples:
    """``tf.random.fixed_unigram_candidate_sampler``: classes by fixed weights.

    Weights come from ``unigrams`` or from ``vocab_file`` (CSV-like: the last comma field of each
    non-empty line), exactly one of the two. ``num_reserved_ids`` leading ids get weight 0; with
    ``num_shards > 1`` only ids with ``id % num_shards == shard`` are kept, and the running id of
    loaded entries starts at the number of reserved ids of THIS shard (TensorFlow's quirk). Each
    weight is raised to ``distortion``. ``range_max`` must equal the number of kept weights, and
    the candidates are shard-local indices in ``[0, range_max)``. ``P(k) = w[k] / sum(w)`` in
    float32. Returns and ``seed`` as :func:`uniform_candidate_sampler`.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    _check_unigram_range(range_max)
    num_reserved_ids = _check_int("num_reserved_ids", num_reserved_ids, 0, INT32_MAX)
    num_shards = _check_int("num_shards", num_shards, 1, INT32_MAX)
    shard = _check_int("shard", shard, 0, INT32_MAX)
    if shard >= num_shards:
        raise ValueError(f"shard must be in [0, num_shards={num_shards}), got {shard}")
    if isinstance(distortion, bool) or not isinstance(distortion, numbers.Real):
        raise TypeError(
            f"distortion must be a float, got {distortion!r} of type {type(distortion).__name__}"
        )
    if not math.isfinite(float(distortion)):
        raise ValueError(f"distortion must be a finite float, got {distortion}")
    if vocab_file is None:
        vocab_file = ""
    if not isinstance(vocab_file, (str, os.PathLike)):
        raise TypeError(
            f"vocab_file must be a path (str), got {vocab_file!r} of type "
            f"{type(vocab_file).__name__}"
        )
    vocab_file = os.fspath(vocab_file)
    unigrams = _unigram_array(unigrams)
    n_unigrams = unigrams.shape[0]
    if not vocab_file and n_unigrams == 0:
        raise ValueError("Must provide either vocab_file or unigrams: both are empty")
    if vocab_file and n_unigrams:
        raise ValueError(
            f"Must only provide one of vocab_file and unigrams: got vocab_file={vocab_file!r} "
            f"and {n_unigrams} unigrams"
        )
    ctx = context(true_classes, backend=backend)
    seed = _check_seed(seed, ctx)
    _check_index_range(ctx, range_max)
    tc = _true_classes(ctx, true_classes, num_true)
    tc = _check_class_range(ctx, tc, range_max, "fixed_unigram_candidate_sampler")
    args = (range_max, vocab_file, float(distortion), num_reserved_ids, num_shards, shard,
            unigrams)
    dist = _fixed_unigram(ctx, args, num_sampled, unique)
    return _run(ctx, dist, tc, num_sampled, unique, seed)


def _unigram_array(unigrams: Any):
    """``unigrams`` as a 1-D float32 NumPy array (TensorFlow stores the attribute as floats)."""
    import numpy as np

    if isinstance(unigrams, (str, bytes)):
        raise TypeError(f"unigrams must be a sequence of floats, got {unigrams!r}")
    try:
        arr = np.asarray(unigrams, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"unigrams must be a sequence of floats, got {type(unigrams).__name__} "
            f"{str(unigrams)[:80]}"
        ) from None
    if len(arr.shape) != 1:
        raise ValueError(f"unigrams must be a flat sequence of floats, got shape {arr.shape}")
    with np.errstate(over="ignore"):  # too large for float32: inf, rejected with the weights
        return arr.astype(np.float32)


# --------------------------------------------------------------------------- all classes


@public
def all_candidate_sampler(true_classes, num_true, num_sampled, unique, seed=None, name=None, *,
                          backend=None) -> CandidateSamples:
    """``tf.random.all_candidate_sampler``: every class ``0 .. num_sampled-1``, in order.

    Every expected count is 1.0; ``unique`` and ``seed`` are validated and otherwise ignored.
    True classes must lie in ``[0, num_sampled)`` (recent TensorFlow kernels check this).
    Useful as an oracle: the sampled softmax over all classes equals the full softmax.
    """
    num_true, num_sampled, unique, _ = _common_checks(num_true, num_sampled, unique)
    ctx = context(true_classes, backend=backend)
    _check_seed(seed, ctx)
    _check_index_range(ctx, num_sampled)
    tc = _true_classes(ctx, true_classes, num_true)
    tc = _check_class_range(ctx, tc, num_sampled, "all_candidate_sampler")
    xp = ctx.xp
    candidates = xp.arange(num_sampled, dtype=ctx.index_dtype, device=ctx.device)
    ones = xp.ones((num_sampled,), dtype=xp.float32, device=ctx.device)
    true_ones = xp.ones(tuple(tc.shape), dtype=xp.float32, device=ctx.device)
    return CandidateSamples(candidates, true_ones, ones)
