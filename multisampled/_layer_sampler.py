"""The sampler plan and seed stream of the sampled-softmax layers (:mod:`multisampled.layers`):
a seed's key words, a key's sampler call, the built-in sampler's distribution on the call's
backend and device, and the draw of one training call through the one sampling engine.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Optional

from . import _distributions as dists
from . import _seeds, _unique
from ._checks import check_seed_int
from ._context import Ctx
from ._rng import MASK32, word_dtype
from ._types import Array

if TYPE_CHECKING:
    from .layers import LayerSpec

__all__ = ["distribution", "key_call", "sample", "seed_key"]


def seed_key(seed: Optional[int]) -> tuple[int, int]:
    """The two key words of an int seed (None: 64 random bits, fixed for the layer's life).

    Args:
        seed: An int in ``[0, 2**64)``, or None.

    Returns:
        ``(key0, key1)``: the seed's high and low 32-bit words.

    Raises:
        TypeError: ``seed`` is neither None nor an int.
        ValueError: ``seed`` is outside ``[0, 2**64)``.
    """
    key = secrets.randbits(64) if seed is None else check_seed_int(seed)
    return key >> 32, key & MASK32


def distribution(ctx: Ctx, spec: LayerSpec) -> Any:
    """The built-in sampler's distribution on the call's backend and device.

    Args:
        ctx: The call's context (:func:`context`).
        spec: A configuration with a built-in sampler.

    Returns:
        The distribution object the sampling engine draws from (its tables are built once per
        backend and device, and cached).

    Raises:
        ValueError: A fixed-unigram weight that is negative or not finite.
    """
    if spec.sampler == "uniform":
        return dists.Uniform(spec.num_classes)
    if spec.sampler == "log_uniform":
        return dists.log_uniform(ctx, spec.num_classes)
    from .samplers import fixed_unigram_plan

    word = "int64" if word_dtype(ctx) == ctx.xp.int64 else "uint32"
    return dists.Table(*fixed_unigram_plan(ctx.backend.name, dists.resolved_device(ctx), word,
                                           spec.num_classes, "", 1.0, 0, 1, 0, spec.unigrams))


def sample(ctx: Ctx, spec: LayerSpec, labels: Array, call: tuple[Any, Any, Any]
           ) -> tuple[Array, Array, Array]:
    """``(candidates [S], true_expected_count [B, T], sampled_expected_count [S])`` of the
    built-in sampler for ``call = (key0, key1, call_index)``.

    Args:
        ctx: The call's context (:func:`context`).
        spec: A configuration with a built-in sampler.
        labels: ``[B, T]`` labels in the index dtype, checked (:func:`checked_labels`).
        call: The key words and the call index, ints or 0-d integer arrays
            (:func:`key_call`, or a front end's counter).

    Returns:
        ``spec.num_sampled`` distinct candidates and the expected counts (float32), as the
        functional samplers return them.
    """
    xp = ctx.xp
    dist = distribution(ctx, spec)
    candidates, num_tries = _unique.sample(ctx, dist, spec.num_sampled, True, call)
    ids = xp.concat([xp.reshape(labels, (-1,)), candidates])
    q = _unique.expected_count(xp, dist.prob(ctx, ids), spec.num_sampled, num_tries)
    s = spec.num_sampled  # the batch size may be unknown (a symbolic dimension): split from the end
    return candidates, xp.reshape(q[:-s], (-1, spec.num_true)), q[-s:]


def key_call(ctx: Ctx, key: Array) -> tuple[Any, Any, Any]:
    """``(key0, key1, 0)``: the sampler call of a key (a 1-D integer array of two 32-bit words
    or a JAX key, e.g. from ``keras.random.SeedGenerator`` or ``nnx.Rngs``); the candidates
    then equal those of the functional API with ``seed=key``.

    Args:
        ctx: The call's context (:func:`context`).
        key: The key.

    Returns:
        The key's two words as 0-d arrays of the call's word dtype, and the call index 0.

    Raises:
        TypeError: ``key`` is not a key (an int, None, a Generator) or its words are not
            integers.
        ValueError: The key is not two words; where values are read on the host, a word
            outside ``[0, 2**32)``.
    """
    if not _seeds.is_key(key):
        raise TypeError(
            "the sampler's key must be a 1-D integer array of two 32-bit words or a JAX key, "
            f"got {type(key).__name__}"
        )
    return _seeds.call_for(ctx, key)
