"""The one sampling engine: TF's unique sampling loop, its block sizes, and the expected counts.

TensorFlow's unique sampler draws until ``num_sampled`` distinct classes were seen, keeps them in
order of first draw, and counts every draw, repeats included, as ``num_tries``. Here draw ``i``
of a call is always Threefry counter ``(call_index, i)``, so the result does not depend on how
the draws are grouped, and the loop runs on blocks of draws:

* where the backend may read values on the host (:attr:`Ctx.may_read_values`), blocks start
  near the expected need and grow until enough distinct classes were seen (bounded memory);
* elsewhere (accelerators, tracing compilers) ONE block is drawn, sized from a tail bound so
  that it holds ``num_sampled`` distinct classes except with probability below
  :data:`BLOCK_FAILURE_PROBABILITY`; a short block is reported through the backend's
  ``check_async``, and its expected counts are NaN, never silently wrong candidates.

The first-occurrence selection is delegated once (:func:`first_distinct`): the backend's fast
path (a per-class table in PyTorch) if it has one, else the portable sort-based definition.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

from . import _rng
from ._context import Ctx
from ._types import Array

INT32_MAX = 2**31 - 1
# TensorFlow's unique loop CHECK-fails when num_tries reaches kint32max: at most this many draws
MAX_TRIES = INT32_MAX - 1
# total weight cap of the learned unigram (TensorFlow drops updates beyond it)
LEARNED_TOTAL_CAP = INT32_MAX
# one block fails to hold num_sampled distinct classes with probability below this
BLOCK_FAILURE_PROBABILITY = 1e-12
MAX_BLOCK = 2**22  # draws per block (memory bound); a block also holds at least 4 * S

_block_sizes: dict = {}


#: Class ranges up to which a backend's per-class table (a ``[num_classes]`` array of positions,
#: 4 to 8 bytes a class) may replace a sort of the draws, or 16 times the ids involved if more:
#: beyond it a sort keeps memory to the draws' (:func:`table_fits`).
TABLE_CLASSES = 2**24


def table_fits(num_classes: int, ids: int) -> bool:
    """Whether a per-class table of ``num_classes`` entries is within :data:`TABLE_CLASSES`
    (or 16 entries per id of the ``ids`` it indexes)."""
    return num_classes <= max(TABLE_CLASSES, 16 * ids)


def block_size(tail_masses: Array, s: int) -> int:
    """Draws that hold ``s`` distinct classes except with probability < 1e-12.

    ``tail_masses[k]`` bounds from below the chance that a draw is new once ``k`` distinct
    classes were seen, so the draws needed are dominated by a sum of geometric variables with
    those success probabilities; Janson's tail bound (Statist. Probab. Lett. 135, 2018, Thm 2.1)
    ``P(X >= lam * mu) <= exp(-p_min * mu * (lam - 1 - ln lam))`` gives the size.

    Args:
        tail_masses: ``[s]`` host floats in ``(0, 1]``: ``tail_masses[k]`` bounds from below the
            chance that a draw is new after ``k`` distinct classes.
        s: The distinct classes needed (>= 1).

    Returns:
        The number of draws, in ``[s, MAX_TRIES]``.
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


def _bound(dist: Any, s: int) -> int:
    key = getattr(dist, "key", None)
    if key is None:  # distributions whose bound changes (the learned unigram)
        bound_key = getattr(dist, "bound_key", None)
        key = bound_key() if bound_key is not None else None
        if key is None:
            return block_size(dist.tail_masses(s), s)
    return block_bound(key, s)


def block_bound(key: tuple, s: int) -> int:
    """:func:`block_size` of the distribution named ``key`` (``("uniform", R)``, a table's
    key, or ``("learned", R)``: a learned unigram whose total is not known on the host, so
    bounded by :data:`LEARNED_TOTAL_CAP`): host work of constants, cached, which tracing
    compilers evaluate at trace time (:data:`multisampled.kernels.HOST_WORK`).

    Args:
        key: The distribution's key: ``("uniform", R)``, ``("learned", R)`` or a table's key.
        s: The distinct classes needed (>= 1, at most the classes of positive probability).

    Returns:
        :func:`block_size` of the distribution's tail masses.
    """
    if (key, s) not in _block_sizes:
        if key[0] in ("uniform", "learned"):
            import numpy as np

            total = key[1] if key[0] == "uniform" else LEARNED_TOTAL_CAP
            tails = (key[1] - np.arange(s, dtype=np.float64)) / total
        else:
            from ._distributions import _host_tables

            tails = _host_tables(key)[1](s)
        _block_sizes[(key, s)] = block_size(tails, s)
    return _block_sizes[(key, s)]


def pow2(n: int) -> int:
    """``n`` rounded up to a power of two: a larger block gives the same result (draws are
    indexed by counter), and fewer distinct shapes spare tracing backends a recompile."""
    return 1 << (n - 1).bit_length()


def first_new_positions(xp: Any, classes: Array, seen: Optional[Array] = None) -> Array:
    """Ascending draw positions of the first occurrence of each class of ``classes [n]`` not in
    ``seen`` (a sorted array of classes kept earlier, or None); shape ``[n]``: real positions
    first, then the filler ``n``.

    Args:
        xp: The Array API namespace of ``classes``.
        classes: ``[n]`` integer draws, in draw order.
        seen: A sorted non-empty ``[k]`` array of the classes kept earlier (same dtype), or None.

    Returns:
        ``[n]`` positions in the dtype of an argsort: the first occurrences of new classes in
        ascending order, then ``n`` in every remaining slot.
    """
    n = classes.shape[0]
    order = xp.argsort(classes, stable=True)  # equal classes stay in draw order
    sc = xp.take(classes, order)
    first = xp.ones_like(sc, dtype=xp.bool)
    if n > 1:
        first = xp.concat([first[:1], sc[1:] != sc[:-1]])
    if seen is not None:
        idx = xp.clip(xp.searchsorted(seen, sc), 0, seen.shape[0] - 1)
        first = first & (xp.take(seen, idx) != sc)
    return xp.sort(xp.where(first, order, xp.full_like(order, n)))


def portable_first_distinct(xp: Any, classes: Array, s: int,
                            num_classes: int) -> tuple[Array, Array]:
    """The portable :meth:`Backend.first_distinct`: the first ``s`` distinct classes of the
    draws in draw order, and ``num_tries`` (the last one's position + 1; ``n + 1`` when the
    draws hold fewer than ``s``).

    Args:
        xp: The Array API namespace of ``classes``.
        classes: ``[n]`` integer draws (``n >= s``), in draw order.
        s: The distinct classes wanted (>= 1).
        num_classes: The number of classes (unused here; a backend's kernel may size a table
            with it).

    Returns:
        ``(candidates [s], num_tries)``: the first ``s`` distinct classes in draw order (the
        dtype of ``classes``; where the draws hold fewer, the last draw fills the other slots) and a
        0-d integer array.
    """
    n = classes.shape[0]
    pos = first_new_positions(xp, classes)[:s]
    candidates = xp.take(classes, xp.clip(pos, 0, n - 1))
    return candidates, pos[s - 1] + 1


def draw_classes(ctx: Ctx, dist: Any, key0: Any, key1: Any, index: Any, start: Any,
                 count: int) -> Any:
    """The one delegation point of the draws: the classes of draws ``start .. start+count-1``
    of the call, from the backend's fused kernel where it has one for ``dist``, else
    :func:`multisampled.kernels.threefry2x32`'s words mapped by ``dist``."""
    fused = getattr(dist, "fused", None)
    args = fused() if fused is not None else None
    if args is not None:
        out = ctx.backend.draw_classes(key0, key1, index, start, count, ctx.device, **args)
        if out is not None:
            return out
    hi, lo = _rng.draw_words(ctx, key0, key1, index, start, count)
    return dist.classes(ctx, hi, lo)


def first_distinct(ctx: Ctx, classes: Any, s: int, num_classes: int) -> tuple:
    """The one delegation point of the selection: the backend's fast path or the portable
    definition (the default :meth:`Backend.first_distinct`)."""
    return ctx.backend.first_distinct(ctx.xp, classes, s, num_classes)


def sample(ctx: Ctx, dist: Any, s: int, unique: bool, call: tuple) -> tuple:
    """``(candidates [s], num_tries)`` of one sampler call ``call = (key0, key1, index)``;
    ``num_tries`` is an int, or a 0-d array where values stay off the host."""
    key0, key1, index = call
    if not unique:
        return draw_classes(ctx, dist, key0, key1, index, 0, s), s
    bound = _bound(dist, s)
    if ctx.may_read_values:
        # refills are cheap on the host: start near the expected need, not at the bound (and
        # not rounded up: with no compiler, a block's shape costs nothing but its draws)
        return _sample_refill(ctx, dist, call, s, min(bound, max(4 * s, 2**16)))
    if bound <= max(MAX_BLOCK, 4 * s):
        return _sample_block(ctx, dist, call, s, pow2(bound))
    # no block of bounded size is safe for this distribution: TF's loop over fixed blocks,
    # as the backend's while loop (traced where the framework has one)
    return _sample_loop(ctx, dist, call, s, min(pow2(max(4 * s, 2**12)), MAX_BLOCK))


def _sample_refill(ctx: Ctx, dist: Any, call: tuple, s: int, block: int) -> tuple:
    """TF's unique loop over growing blocks of draws, reading counts on the host."""
    xp = ctx.xp
    key0, key1, index = call
    start, kept, seen, n_kept = 0, [], None, 0
    max_block = max(MAX_BLOCK, 4 * s)
    while True:
        n = min(block, MAX_TRIES - start)
        if n <= 0:
            raise ValueError(
                f"unique sampling found only {n_kept} of num_sampled={s} distinct classes in "
                f"{MAX_TRIES} draws (TensorFlow aborts at this bound); the distribution puts "
                "too little mass on too few classes"
            )
        c = draw_classes(ctx, dist, key0, key1, index, start, n)
        if seen is None:
            candidates, tries = first_distinct(ctx, c, s, dist.range)
            if int(tries) <= n:
                return candidates, int(tries)
        keys = first_new_positions(xp, c, seen)
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


def _sample_loop(ctx: Ctx, dist: Any, call: tuple, s: int, n: int) -> tuple:
    """TF's unique loop as a while loop over blocks of ``n`` draws with a fixed-size state
    (kept classes, their count, the draws so far): no host read, so a compiler traces it."""
    xp = ctx.xp
    # the key words, fresh arrays: a traced loop body may not capture two views of one key
    # array (torch's while_loop rejects aliased inputs)
    key0, key1, index = (v if isinstance(v, int) else v + xp.zeros_like(v) for v in call)
    idx = ctx.index_dtype
    sentinel = dist.range  # sorts after every class, equals none
    slots = xp.arange(s, dtype=idx, device=ctx.device)
    zero = xp.zeros((), dtype=idx, device=ctx.device)

    def cond(state):
        start, n_kept, _, _ = state
        return (n_kept < s) & (start < MAX_TRIES)

    def body(state):
        start, n_kept, kept, tries = state
        c = xp.astype(draw_classes(ctx, dist, key0, key1, index, start, n), idx)
        pos = first_new_positions(xp, c, xp.sort(kept))  # new classes' first draws, ascending
        n_new = xp.sum(xp.astype(pos < n, idx))
        new = xp.take(c, xp.clip(pos, 0, n - 1))
        src = slots - n_kept
        fill = (src >= 0) & (src < n_new)
        kept = xp.where(fill, xp.take(new, xp.clip(src, 0, n - 1)), kept)
        need = s - n_kept
        last = xp.take(pos, xp.reshape(xp.clip(need - 1, 0, n - 1), (1,)))[0]
        tries = xp.where((tries == 0) & (n_new >= need), start + last + 1, tries)
        total = n_kept + n_new
        # min(total, s) in operators: a framework's traced loop body (torch's while_loop)
        # takes tensor operations only, not the dtype promotion of a two-argument function
        return start + n, total - (total - s) * xp.astype(total > s, idx), kept, tries

    state = (zero, xp.zeros_like(zero), xp.full((s,), sentinel, dtype=idx, device=ctx.device),
             xp.zeros_like(zero))  # distinct arrays: a traced loop's state may not alias
    _, _, kept, tries = ctx.backend.while_loop(cond, body, state)
    ctx.backend.check_async(
        tries > 0,
        f"unique sampling found fewer than num_sampled={s} distinct classes in {MAX_TRIES} "
        "draws (TensorFlow aborts at this bound)")
    if ctx.may_read_values:
        if int(tries) == 0:
            raise ValueError(
                f"unique sampling found fewer than num_sampled={s} distinct classes in "
                f"{MAX_TRIES} draws (TensorFlow aborts at this bound); the distribution puts too "
                "little mass on too few classes")
        return kept, int(tries)
    return kept, tries


def _sample_block(ctx: Ctx, dist: Any, call: tuple, s: int, n: int) -> tuple:
    """One block sized from the failure bound; no host synchronisation."""
    key0, key1, index = call
    classes = draw_classes(ctx, dist, key0, key1, index, 0, n)
    candidates, num_tries = first_distinct(ctx, classes, s, dist.range)
    ctx.backend.check_async(
        num_tries <= n,
        f"unique sampling: {n} draws held fewer than num_sampled={s} distinct classes "
        f"(probability < {BLOCK_FAILURE_PROBABILITY})",
    )
    xp = ctx.xp
    num_tries = xp.astype(num_tries, ctx.index_dtype)
    # a short block's num_tries becomes 0 (a real one is >= s >= 1): its counts are NaN
    return candidates, xp.where(num_tries <= n, num_tries, xp.zeros_like(num_tries))


def expected_count(xp: Any, p: Array, s: int, num_tries: Union[int, Array],
                   dtype: Any = None) -> Array:
    """TF's (and Paddle's) ExpectedCountHelper: ``S*P`` if ``num_tries == S``, else
    ``1-(1-P)^num_tries`` as ``-expm1(num_tries * log1p(-P))``; in float32 (TF) or ``dtype``.

    ``num_tries`` a 0-d array: both branches, selected on the device; a block that held too few
    distinct classes (``num_tries`` 0) gives NaN, so it can never pass unseen.

    Args:
        xp: The Array API namespace of ``p``.
        p: The probabilities of the classes counted (any shape; float32 in TF).
        s: ``S``, the number of candidates.
        num_tries: The draws the sampler made: a Python int, or a 0-d integer array.
        dtype: The floating dtype of the result; None: the dtype of ``p``.

    Returns:
        The expected counts, of the shape of ``p``, in ``dtype`` (NaN everywhere when
        ``num_tries`` is a 0-d array holding 0).
    """
    if dtype is not None and p.dtype != dtype:
        p = xp.astype(p, dtype)
    if isinstance(num_tries, int):
        if num_tries == s:
            return p * float(s)
        return -xp.expm1(float(num_tries) * xp.log1p(-p))
    rejected = -xp.expm1(xp.astype(num_tries, p.dtype) * xp.log1p(-p))
    counts = xp.where(num_tries == s, p * float(s), rejected)
    return xp.where(num_tries == 0, xp.full_like(counts, math.nan), counts)
