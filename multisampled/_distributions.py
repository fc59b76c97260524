"""The candidate samplers' base distributions: how a draw becomes a class, and ``P(class)``.

Every distribution maps a draw's two words ``(hi, lo)`` to a class with integer operations only
(:mod:`multisampled._rng`), so the same draw gives the same class on every backend and device:

* :class:`Uniform`: ``floor(u * R)``;
* :class:`Table`: a fixed CDF given by 64-bit fixed-point thresholds (log-uniform up to
  :data:`MAX_TABLE_CLASSES` classes, fixed unigram), searched exactly; its tables are built once
  on the host per backend, device and distribution (:func:`table_plan`, a pure function of
  constants, which tracing compilers evaluate at trace time);
* :class:`LogUniform`: the log-uniform distribution over larger ranges, ``floor((R+1)**u) - 1``
  in integer fixed point (:func:`multisampled._log_uniform.log_uniform_classes`), in memory that does not
  grow with the range;
* :class:`Learned`: the learned unigram's integer counts, ``searchsorted`` of a uniform integer
  in ``[0, total)``.

``tail_masses(s)`` bounds from below the probability that a draw is a new class once ``k < s``
distinct classes were kept: the unique engine (:mod:`multisampled._unique`) sizes its blocks
from it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any, Callable, Optional, Union

from . import _log_uniform, _rng
from ._context import Ctx
from ._types import Array

# log-uniform ranges up to this size use a CDF table (12 bytes per class on the device, float64
# work arrays on the host); larger ones map draws to classes in fixed point, without a table
MAX_TABLE_CLASSES = 2**28


class _LRU:
    """A small thread-safe least-recently-used cache of per-backend constant tables."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
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
# host builders of table distributions, by the source key that names them in table_plan's
# arguments (a builder's inputs, a vocabulary file's contents say, are not constants)
_builders: dict = {}
_builders_lock = threading.Lock()


class Uniform:
    """``P(k) = 1/R``; one draw is ``floor(u * R)``."""

    def __init__(self, range_max: int):
        import numpy as np

        self.range = self.support = range_max
        self.key = ("uniform", range_max)
        self.p = float(np.float32(1.0 / range_max))  # TF: double 1/R stored as float

    def classes(self, ctx: Ctx, hi: Any, lo: Any) -> Any:
        return ctx.xp.astype(_rng.uniform_int(ctx.xp, hi, lo, self.range), ctx.index_dtype)

    def fused(self) -> dict:
        """The arguments of :meth:`Backend.draw_classes` that name this distribution."""
        return {"uniform_range": self.range}

    def prob(self, ctx: Ctx, classes: Any) -> Any:
        return ctx.xp.full_like(classes, self.p, dtype=ctx.xp.float32)

    def tail_masses(self, s: int) -> Any:
        import numpy as np

        return (self.range - np.arange(s, dtype=np.float64)) / self.range


@dataclasses.dataclass(frozen=True)
class Table:
    """A fixed distribution: device tables of CDF thresholds and float32 ``P``."""

    tables: tuple  # (int64 signed keys,) or (hi uint32, lo uint32)
    p: Any  # float32 [R]
    range: int
    support: int  # classes with P > 0
    key: tuple  # what table_plan was asked for (for the block-size cache)

    def classes(self, ctx: Ctx, hi: Any, lo: Any) -> Any:
        xp = ctx.xp
        if len(self.tables) == 1:
            return xp.astype(_rng.search_cdf_keys(xp, hi, lo, self.tables[0]), ctx.index_dtype)
        th_hi, th_lo = self.tables
        return _rng.search_cdf(xp, hi, lo, th_hi, th_lo, ctx.index_dtype)

    def fused(self) -> Optional[dict]:
        """The arguments of :meth:`Backend.draw_classes` that name this distribution (int64
        word backends' single key table only)."""
        return {"cdf_keys": self.tables[0]} if len(self.tables) == 1 else None

    def prob(self, ctx: Ctx, classes: Any) -> Any:
        return ctx.xp.take(self.p, classes)

    def tail_masses(self, s: int) -> Any:
        return _host_tables(self.key)[1](s)


def table_plan(backend_name: str, device: Any, key: tuple,
               word: str) -> tuple[tuple[Array, ...], Union[Array, tuple[int, int]], int, int]:
    """``(tables, p, range, support)`` of the table distribution ``key`` on a backend and
    device, built on the host once and cached. ``word`` names the word dtype ("int64": one
    signed key per threshold, else uint32 halves); for a log-uniform range above
    :data:`MAX_TABLE_CLASSES`, :class:`LogUniform`'s limb tables, and in place of ``p`` its
    fixed-point constants (Python ints). Arguments
    and results are constants, so tracing compilers may evaluate it at trace time
    (:data:`multisampled.kernels.HOST_WORK`).

    Args:
        backend_name: The registered name of the backend whose arrays are built.
        device: The device of the tables, as the backend's ``asarray`` takes it.
        key: The distribution's key: ``("log_uniform", R)``, or the source key a builder was
            registered under (a fixed unigram's).
        word: The word dtype's name: ``"int64"`` or ``"uint32"``.

    Returns:
        ``(tables, p, range, support)``: the threshold tables (one int64 array of signed keys,
        or the uint32 high and low words; :class:`LogUniform`'s limb tables above
        :data:`MAX_TABLE_CLASSES`), ``p`` the float32 ``[R]`` probabilities (or the
        ``(log2, ln2)`` fixed-point constants), the number of classes ``R`` and the classes of
        positive probability.

    Raises:
        TypeError: ``backend_name`` is not a str.
        ValueError: No backend is registered as ``backend_name``.
        ImportError: The backend is registered but its framework is not installed.
        KeyError: ``key`` names no log-uniform table and no registered builder.
    """
    from ._registry import get_backend

    def build():
        import numpy as np

        backend = get_backend(backend_name)
        if _is_fixed_point(key):  # the exp2 mantissa limbs of LogUniform, no per-class data
            dtype = "int64" if word == "int64" else "uint32"
            tables = tuple(backend.asarray(t, dtype, device) for t in _log_uniform.exp2_limb_tables())
            constants = (_log_uniform.log2_constant(key[1]), _log_uniform.ln2_constant())
            return tables, constants, key[1], key[1]
        cdf, p = _host_tables(key)[0]
        support = int(np.count_nonzero(p))
        hi, lo = _rng.cdf_thresholds(cdf[:-1])
        if word == "int64":
            tables = (backend.asarray(_rng.host_signed_keys(hi, lo), "int64", device),)
        else:
            tables = (backend.asarray(hi, "uint32", device), backend.asarray(lo, "uint32", device))
        return tables, backend.asarray(p, "float32", device), len(p), support

    return _tables.get((backend_name, repr(device), word) + key, build)


_host_cache = _LRU(8)


def _host_tables(key: tuple):
    """``((cdf float64, p float32), tail_masses)`` on the host for a table key."""

    def build():
        if key[0] == "log_uniform":
            return _log_uniform_host(key[1])
        with _builders_lock:
            builder = _builders[key]
        return builder()

    return _host_cache.get(key, build)


def table(ctx: Ctx, key: tuple, build: Optional[Callable[[], tuple]] = None) -> Table:
    """The :class:`Table` named ``key`` on the call's backend and device. ``build() -> ((cdf
    float64 [R], p float32 [R]), tail_masses(s))`` runs on the host the first time (None for
    the log-uniform table, which its key defines)."""
    if build is not None:
        with _builders_lock:
            _builders.setdefault(key, build)
    word = "int64" if _rng.word_dtype(ctx) == ctx.xp.int64 else "uint32"
    tables, p, range_max, support = table_plan(ctx.backend.name, resolved_device(ctx), key, word)
    return Table(tables, p, range_max, support, key)


def _is_fixed_point(key: tuple) -> bool:
    return key[0] == "log_uniform" and key[1] > MAX_TABLE_CLASSES


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """TF's log-uniform distribution over a range too large for a table: a draw is class
    ``floor((R+1)**u) - 1`` evaluated in integer fixed point on the device (the same class on
    every backend and device), ``P(k)`` is TF's formula evaluated per class."""

    tables: tuple  # the four limb tables of multisampled._log_uniform.exp2_limb_tables
    constants: tuple  # (log2_constant(range), ln2_constant()), Python ints
    range: int
    support: int
    key: tuple

    def classes(self, ctx: Ctx, hi: Any, lo: Any) -> Any:
        xp = ctx.xp
        k = _log_uniform.log_uniform_classes(xp, hi, lo, self.range, self.tables, self.constants)
        return xp.astype(k, ctx.index_dtype)

    def prob(self, ctx: Ctx, classes: Any) -> Any:
        return log_uniform_prob(ctx, classes, self.range)

    def tail_masses(self, s: int) -> Any:
        return _host_tables(self.key)[1](s)


def log_uniform_prob(ctx: Ctx, classes: Any, range_max: int) -> Any:
    """TF's ``P(k) = log((k+2)/(k+1)) / log1p(R)`` in double, as float32, on the device.

    Where that ratio rounds to 1 (``k`` beyond about ``2**53``) TF's ``P`` is 0 and its loss NaN;
    ``log1p(1/(k+1)) / log1p(R)`` is used there instead. Backends without float64 evaluate the
    ``log1p`` form in float32.
    """
    import math

    xp = ctx.xp
    log_range = math.log1p(float(range_max))
    if ctx.backend.has_dtype("float64"):
        k = xp.astype(classes, xp.float64)
        ratio = (k + 2.0) / (k + 1.0)
        p = xp.where(ratio == 1.0, xp.log1p(1.0 / (k + 1.0)), xp.log(ratio)) / log_range
    else:
        k = xp.astype(classes, xp.float32)
        p = xp.log1p(1.0 / (k + 1.0)) / log_range
    return xp.astype(p, xp.float32)


def log_uniform(ctx: Ctx, range_max: int) -> Any:
    """TF's log-uniform (Zipfian) distribution over ``[0, range_max)``: a :class:`Table` up to
    :data:`MAX_TABLE_CLASSES` classes, a :class:`LogUniform` above."""
    key = ("log_uniform", range_max)
    if not _is_fixed_point(key):
        return table(ctx, key)
    word = "int64" if _rng.word_dtype(ctx) == ctx.xp.int64 else "uint32"
    tables, constants, r, support = table_plan(ctx.backend.name, resolved_device(ctx), key, word)
    return LogUniform(tables, constants, r, support, key)


def _log_uniform_host(range_max: int) -> tuple:
    import numpy as np

    log_range = np.log1p(np.float64(range_max))

    def tails(s):
        # the k most likely classes are 0..k-1 with mass ln(k+1)/L
        return (log_range - np.log1p(np.arange(s, dtype=np.float64))) / log_range

    if _is_fixed_point(("log_uniform", range_max)):
        return None, tails
    k = np.arange(range_max, dtype=np.float64)
    # one draw is floor(exp(u * log1p(R))) - 1, i.e. class k for u in [ln(k+1), ln(k+2)) / L
    cdf = np.log(k + 2.0) / log_range
    p = (np.log((k + 2.0) / (k + 1.0)) / log_range).astype(np.float32)
    return (cdf, p), tails


def register_builder(key: tuple, build: Callable[[], tuple]) -> None:
    """Name the host builder of table ``key`` (``build() -> ((cdf, p), tail_masses)``)."""
    with _builders_lock:
        _builders.setdefault(key, build)


def fixed_unigram(ctx: Ctx, key: tuple, weights: Callable[[], Any]) -> Table:
    """A fixed-unigram table from ``weights() -> float32 [R]`` (TF's FixedUnigramSampler)."""
    return table(ctx, key, lambda: fixed_unigram_host(weights()))


def fixed_unigram_host(wv: Any) -> tuple:
    """``((cdf float64, p float32), tail_masses)`` of TF's FixedUnigramSampler weights."""
    import numpy as np

    range_max = wv.shape[0]
    # TF accumulates the total in float32, entry by entry
    total = np.cumsum(wv, dtype=np.float32)[-1]
    if not (np.isfinite(total) and total > 0):
        raise ValueError(
            f"fixed unigram weights must have a positive finite total; got {total} "
            f"(weights: {wv[:8]}{'...' if wv.shape[0] > 8 else ''})"
        )
    p = wv / total  # float32 division, as TF's Probability()
    cum = np.cumsum(wv.astype(np.float64))
    cdf = cum / cum[-1]  # non-decreasing and ending at 1 exactly
    asc = np.cumsum(np.sort(wv.astype(np.float64))) / cum[-1]  # mass of the j+1 lightest

    def tails(n):
        return asc[range_max - 1 - np.arange(n)]  # mass outside the k heaviest classes

    return (cdf, p), tails


class Learned:
    """The learned unigram's current weights: ``counts`` (a backend array of the index dtype,
    every entry >= 1) and their ``total`` (a Python int where known on the host, else None)."""

    def __init__(self, ctx: Ctx, counts: Any, total: Optional[int]):
        xp = ctx.xp
        self.counts, self.total = counts, total
        self.range = self.support = int(counts.shape[0])
        self.cum = xp.cumulative_sum(counts)
        total_arr = self.cum[-1]
        self.total_word = xp.astype(total_arr, _rng.word_dtype(ctx))
        # TF: static_cast<float>(weight) / total_weight, a float32 division
        self.p = xp.astype(counts, xp.float32) / xp.astype(total_arr, xp.float32)

    def classes(self, ctx: Ctx, hi: Any, lo: Any) -> Any:
        xp = ctx.xp
        v = _rng.uniform_int(xp, hi, lo, self.total_word)  # uniform integer in [0, total)
        k = xp.searchsorted(self.cum, xp.astype(v, self.cum.dtype), side="right")
        return xp.astype(k, ctx.index_dtype)

    def prob(self, ctx: Ctx, classes: Any) -> Any:
        return ctx.xp.take(self.p, classes)

    def tail_masses(self, s: int) -> Any:
        import numpy as np

        from ._unique import LEARNED_TOTAL_CAP

        # every weight is >= 1: the classes not yet drawn weigh at least (R - k) / total
        total = LEARNED_TOTAL_CAP if self.total is None else self.total
        return (self.range - np.arange(s, dtype=np.float64)) / total

    def bound_key(self) -> Optional[tuple]:
        """The block-size key of a total not known on the host (``("learned", R)``, a constant
        a tracing compiler evaluates at trace time), else None (sized from the total)."""
        return ("learned", self.range) if self.total is None else None


def resolved_device(ctx: Ctx) -> Any:
    """The call's device; for host data, the device the backend creates arrays on."""
    if ctx.device is not None:
        return ctx.device
    try:
        return ctx.xp.__array_namespace_info__().default_device()
    except Exception:
        return None


def device_key(ctx: Ctx) -> tuple:
    return (ctx.backend.name, repr(resolved_device(ctx)))
