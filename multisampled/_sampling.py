"""What every candidate sampler shares: TF's checks of its arguments, the one call that draws the
candidates and computes both expected counts, and the :class:`CandidateSamples` it returns.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from . import _seeds, _unique
from ._checks import (
    check_bool,
    check_int_in,
    check_integer_ids,
    check_label_columns,
    dtype_name,
    index_ids,
    named_array,
)
from ._context import Ctx
from ._types import Array

INT32_MAX = _unique.INT32_MAX


class CandidateSamples(NamedTuple):
    """What every sampler returns; usable as ``sampled_values`` of the losses.

    Attributes:
        sampled_candidates: ``[S]`` the sampled classes, in the index dtype.
        true_expected_count: ``[B, num_true]`` float32: how often each label is expected
            among the ``S`` draws.
        sampled_expected_count: ``[S]`` float32: the same for each candidate.
    """

    sampled_candidates: Array
    true_expected_count: Array
    sampled_expected_count: Array


# --------------------------------------------------------------------------- argument checks


def check_counts(num_true: Any, num_sampled: Any, unique: Any,
                 range_max: Optional[Any] = None) -> tuple:
    """``(num_true, num_sampled, unique, range_max)`` checked, in TF's order; ``range_max``
    None is left out (the all-candidate sampler has none)."""
    num_true = check_int_in("num_true", num_true, 1, INT32_MAX)
    num_sampled = check_int_in("num_sampled", num_sampled, 1, INT32_MAX)
    unique = check_bool("unique", unique)
    if range_max is not None:
        range_max = check_int_in("range_max", range_max, 1)
        if unique and num_sampled > range_max:
            raise ValueError(
                f"Sampler's range is too small: unique=True needs num_sampled <= range_max, got "
                f"num_sampled={num_sampled} and range_max={range_max}"
            )
    return num_true, num_sampled, unique, range_max


def check_unigram_range(range_max: int) -> None:
    """The unigram samplers keep weights in int32: ``range_max < 2**31 - 1``."""
    if range_max >= INT32_MAX:
        raise ValueError(
            f"range_max must be less than {INT32_MAX} for unigram samplers, got {range_max}"
        )


def check_index_range(ctx: Ctx, range_max: int) -> None:
    """Class ids ``[0, range_max)`` must fit the backend's index dtype (int64: ``range_max <
    2**63``; int32 on JAX without x64: ``range_max < 2**31``)."""
    limit = int(ctx.xp.iinfo(ctx.index_dtype).max)
    if range_max > limit:
        raise ValueError(
            f"range_max={range_max} is too large for the {ctx.name} backend: class ids must fit "
            f"its index dtype {dtype_name(ctx.index_dtype)}, so range_max must be at most "
            f"{limit}"
        )


def _check_class_range(ctx: Ctx, tc: Any, range_max: int, what: str) -> Any:
    """TF's "`true_candidate` out of range [0, R)" check, then the cast to the index dtype.

    Eager where values may be read; otherwise the backend's ``check_async``, and the ids used
    for gathers are kept in range so an invalid label never reads out of bounds. Unsigned
    labels are converted first (:func:`multisampled._checks.index_ids`).
    """
    xp = ctx.xp
    msg = f"true_classes values must be in [0, {range_max}) ({what})"
    tc, wrap = index_ids(ctx, tc)
    if not any(n == 0 for n in tc.shape):
        bad = tc < 0
        if xp.iinfo(tc.dtype).max >= range_max:
            bad = bad | (tc >= range_max)
        if ctx.may_read_values:
            if bool(xp.any(bad)):
                flat = xp.reshape(tc, (-1,))
                first = int(xp.argmax(xp.astype(xp.reshape(bad, (-1,)), xp.int8)))
                value = int(flat[first])
                if value < 0 and wrap:
                    value += wrap
                raise ValueError(f"{msg}, got {value} at flat position {first}")
        else:
            ctx.backend.check_async(xp.logical_not(xp.any(bad)), msg)
    out = tc if tc.dtype == ctx.index_dtype else xp.astype(tc, ctx.index_dtype)
    if not ctx.may_read_values:
        out = xp.clip(out, 0, range_max - 1)
    return out


def labels_for(ctx: Ctx, true_classes: Any, num_true: int, range_max: int, what: str) -> Any:
    """``true_classes`` as ``[B, num_true]`` ids of the index dtype in ``[0, range_max)``
    (TF's checks; ``what`` names the sampler in the range message)."""
    check_index_range(ctx, range_max)
    tc = named_array(ctx, "true_classes", true_classes)
    check_integer_ids(ctx, "true_classes (labels)", tc)
    check_label_columns("true_classes", tc, num_true)
    return _check_class_range(ctx, tc, range_max, what)


# --------------------------------------------------------------------------- one call


def run(ctx: Ctx, dist: Any, tc: Any, s: int, unique: bool, seed: Any) -> CandidateSamples:
    """One sampler call: candidates, then both expected counts (TF's float32 formula)."""
    xp = ctx.xp
    candidates, num_tries = _unique.sample(ctx, dist, s, unique, _seeds.call_for(ctx, seed))
    true_q = _unique.expected_count(xp, dist.prob(ctx, xp.reshape(tc, (-1,))), s, num_tries)
    sampled_q = _unique.expected_count(xp, dist.prob(ctx, candidates), s, num_tries)
    return CandidateSamples(candidates, xp.reshape(true_q, (-1, tc.shape[1])), sampled_q)
