"""What a sampler's ``seed=`` may be, and the Threefry key and call index it gives.

* a **key**: a 1-D integer array of two 32-bit words of any backend (``uint32``, or a signed
  dtype holding values in ``[0, 2**32)``), or a JAX typed key (``jax.random.key(k)``) or legacy
  ``jax.random.PRNGKey(k)``. The call's draws are counters ``(0, i)`` under the key: a pure
  function of the key, so the same key gives the same candidates everywhere and nothing
  advances. A key may be a traced value (``jax.jit``, ``jax.vmap``, ``tf.function``,
  ``torch.compile``, a CUDA graph's static buffer).
* an **int** ``s`` in ``[0, 2**64)``: the process-wide stream of ``(backend, s)``; its ``k``-th
  call uses counters ``(k, i)`` under the key ``(s >> 32, s & 0xFFFFFFFF)``, so its first call
  equals the call with that key.
* a :class:`~multisampled.Generator`: its own stream, likewise; ``None``: a fresh random key.
* a framework-native generator the backend understands (a ``torch.Generator``): a fresh key
  drawn from it on the device (``Backend.key_from_seed``), call index 0.

Streams are host state: while a compiler traces (``Backend.is_compiling``) only a key works.
"""

from __future__ import annotations

from typing import Any

from . import _registry, _rng
from ._checks import check_integer_ids, check_seed_int, dtype_name
from ._context import Ctx

KEY_FORMS = (
    "a key (a 1-D integer array of two 32-bit words, a JAX typed key or jax.random.PRNGKey), "
    "None, an int in [0, 2**64), a multisampled.Generator"
)


def is_key(seed: Any) -> bool:
    """Whether ``seed`` is given as a key (an array or a framework key object)."""
    if seed is None or isinstance(seed, (bool, int, _rng.Generator)):
        return False
    return hasattr(seed, "shape") and hasattr(seed, "dtype")


def check_seed(ctx: Ctx, seed: Any) -> Any:
    """Validate ``seed`` without drawing (the samplers call this before any other work)."""
    if seed is None or isinstance(seed, _rng.Generator) or is_key(seed):
        return seed
    if not isinstance(seed, int) and type(seed).__module__.split(".")[0] == ctx.backend.module:
        return seed  # a framework-native seed object (torch.Generator): see call_for
    return check_seed_int(seed)


def call_for(ctx: Ctx, seed: Any) -> tuple:
    """``(key0, key1, call_index)`` of one sampler call with ``seed`` (see the module doc)."""
    if is_key(seed):
        k0, k1 = key_words(ctx, seed)
        return k0, k1, 0
    if seed is not None and not isinstance(seed, (int, _rng.Generator)):
        words = ctx.backend.key_from_seed(seed, _device(ctx))
        if words is None:
            raise TypeError(
                f"seed must be {KEY_FORMS}, or a seed object the {ctx.backend.name} backend "
                f"accepts; got {seed!r} of type {type(seed).__name__}"
            )
        return words[0], words[1], 0
    if ctx.backend.is_compiling():
        raise TypeError(
            f"seed={seed!r}: a sampler under a compiler's trace needs a key as seed, e.g. "
            "seed=jax.random.key(0) (split or fold_in a step counter for fresh negatives each "
            "step), or an integer array of two 32-bit words such as tf.constant([0, step]) or "
            "torch.tensor([0, step]). An int seed's stream advances on the host, which a "
            "traced function would do once, at trace time, and then replay the same negatives"
        )
    return _rng.stream_for(ctx.backend.name, seed).next_call()


def key_words(ctx: Ctx, key: Any) -> tuple:
    """The two key words as 0-d arrays of the call's word dtype on the call's device."""
    xp = ctx.xp
    owner = _registry.backend_of(key) if not _registry.is_host(key) else None
    if owner is not None:
        native = owner.key_words(key)
        if native is not None:
            key = native
    if tuple(key.shape) != (2,):
        raise ValueError(
            f"seed: a key must be a 1-D array of two 32-bit words, got shape "
            f"{list(key.shape)}"
        )
    if owner is not None and owner is not ctx.backend:
        # a key of another framework: its words (concrete) move to this call's backend
        key = owner.to_numpy(key)
    words = ctx.asarray(key)
    check_integer_ids(ctx, "seed (a key)", words)
    _check_key_values(ctx, words)
    words = xp.astype(words, _rng.word_dtype(ctx))
    return words[0], words[1]


def _check_key_values(ctx: Ctx, words: Any) -> None:
    xp = ctx.xp
    if xp.isdtype(words.dtype, "unsigned integer") and xp.iinfo(words.dtype).bits <= 32:
        return
    ok = xp.all(words >= 0)
    if xp.iinfo(words.dtype).bits > 32:
        ok = ok & xp.all(words <= _rng.MASK32)
    msg = (f"seed: a key's words must be in [0, 2**32) (dtype {dtype_name(words.dtype)})")
    if ctx.may_read_values:
        if not bool(ok):
            raise ValueError(f"{msg}; got {[int(v) for v in words]}")
    else:
        ctx.backend.check_async(ok, msg)


def _device(ctx: Ctx) -> Any:
    from ._distributions import resolved_device

    return resolved_device(ctx)
