"""The framework-free logic of the sampled-softmax layers, for front ends that own the class
table (``multisampled.torch.SampledSoftmaxLoss``, a Keras or Flax layer): arguments, the
sampler, the seed stream, the eval-mode rule and the training step.

A front end keeps the parameters, the key words and a call counter (or a framework's key) in
its framework's own containers, gets a :func:`context` for its backend and device, flattens the
positions with :func:`positions`, draws with :func:`sample` (a call of :func:`key_call` for a
key), and calls :func:`sampled_softmax_step` with a function that gathers rows its way (dense or
sparse gradients), or :func:`full_softmax_loss` in evaluation. Everything else -- which
distribution, the one sampling engine, expected counts, accidental hits, the loss through the
backend's ``sampled_softmax``, reductions and ignored positions -- is here once.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Callable, Optional

from . import _distributions as dists
from . import _seeds, _sharded, _unique, _vocab
from ._checks import (
    check_bool,
    check_positive_int,
    check_seed_int,
    check_value_range,
    keep_in_range,
)
from ._context import Ctx, context_for
from ._registry import get_backend
from ._tf_args import check_sampled_values
from ._hits import hit_mask
from ._math import compute_dtype, logsumexp
from ._sharded import Shard

SAMPLERS = ("log_uniform", "uniform", "fixed_unigram")
REDUCTIONS = ("none", "mean", "sum")
MASK32 = 0xFFFFFFFF

__all__ = [
    "LayerSpec",
    "REDUCTIONS",
    "SAMPLERS",
    "check_bool",
    "check_ignore_index",
    "checked_labels",
    "check_reduction",
    "context",
    "distribution",
    "full_logits",
    "full_softmax_loss",
    "ignored_positions",
    "key_call",
    "positions",
    "reduce",
    "rows",
    "sample",
    "sampled_softmax_step",
    "seed_key",
    "table_shard",
    "use_full_softmax",
    "validated_samples",
]


def context(backend: str, device: Any) -> Ctx:
    """The per-call context of a front end's backend (by name) on ``device``."""
    return context_for(get_backend(backend), device)


def validated_samples(ctx: Ctx, spec: "LayerSpec", batch: int, sampled_values: Any) -> tuple:
    """A user's ``(candidates, true_expected_count, sampled_expected_count)`` checked as the
    functional losses check it (candidates in the index dtype, counts in float32)."""
    return check_sampled_values(
        ctx, sampled_values, batch=batch, num_true=spec.num_true,
        num_classes=spec.num_classes, cdtype=ctx.xp.float32,
        expected_len=spec.num_sampled if spec.remove_accidental_hits else None,
        length_reason=" (they must agree when remove_accidental_hits=True)")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A sampled-softmax layer's static configuration, validated."""

    num_classes: int
    embedding_dim: int
    num_sampled: int
    num_true: int = 1
    sampler: str = "log_uniform"
    remove_accidental_hits: bool = True
    unigrams: Any = None  # the fixed-unigram sampler's weights, a tuple of floats

    @classmethod
    def checked(cls, num_classes, embedding_dim, num_sampled, *, num_true=1,
                sampler="log_uniform", remove_accidental_hits=True, unigrams=None) -> "LayerSpec":
        num_classes = check_positive_int("num_classes", num_classes)
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        num_sampled = check_positive_int("num_sampled", num_sampled)
        num_true = check_positive_int("num_true", num_true)
        remove = check_bool("remove_accidental_hits", remove_accidental_hits)
        if num_classes >= 2**63:
            raise ValueError(
                f"num_classes must be below 2**63 (class ids are int64), got {num_classes}"
            )
        if isinstance(sampler, str):
            if sampler not in SAMPLERS:
                raise ValueError(
                    f"sampler must be one of {list(SAMPLERS)} or a callable returning "
                    f"CandidateSamples, got {sampler!r}"
                )
            if num_sampled > num_classes:
                raise ValueError(
                    f"num_sampled={num_sampled} cannot be greater than num_classes={num_classes}:"
                    f" the {sampler} sampler draws num_sampled distinct classes"
                )
        elif not callable(sampler):
            raise TypeError(
                f"sampler must be one of {list(SAMPLERS)} or a callable returning "
                f"CandidateSamples, got {sampler!r} of type {type(sampler).__name__}"
            )
        if (sampler == "fixed_unigram") != (unigrams is not None):
            raise ValueError(
                "unigrams (the classes' weights, e.g. item frequencies) must be given exactly "
                f"when sampler='fixed_unigram'; got sampler={sampler!r} and "
                f"unigrams={'None' if unigrams is None else 'weights'}"
            )
        if unigrams is not None:
            weights = _vocab.unigram_array(unigrams)
            if weights.shape[0] != num_classes:
                raise ValueError(
                    f"unigrams must have num_classes={num_classes} weights, got "
                    f"{weights.shape[0]}"
                )
            unigrams = tuple(float(w) for w in weights)  # a constant for tracing compilers
        return cls(num_classes, embedding_dim, num_sampled, num_true, sampler, remove, unigrams)

    @property
    def builtin(self) -> bool:
        return isinstance(self.sampler, str)


def seed_key(seed: Optional[int]) -> tuple:
    """The two key words of an int seed (None: 64 random bits, fixed for the layer's life)."""
    key = secrets.randbits(64) if seed is None else check_seed_int(seed)
    return key >> 32, key & MASK32


def use_full_softmax(training: bool, full_softmax: Optional[bool]) -> bool:
    """Eval mode computes the full softmax (TF's advice for evaluating); ``full_softmax``
    forces either way."""
    if full_softmax is None:
        return not training
    return check_bool("full_softmax", full_softmax)


def distribution(ctx: Ctx, spec: LayerSpec) -> Any:
    """The built-in sampler's distribution on the call's backend and device."""
    if spec.sampler == "uniform":
        return dists.Uniform(spec.num_classes)
    if spec.sampler == "log_uniform":
        return dists.log_uniform(ctx, spec.num_classes)
    from ._rng import word_dtype
    from .samplers import fixed_unigram_plan

    word = "int64" if word_dtype(ctx) == ctx.xp.int64 else "uint32"
    return dists.Table(*fixed_unigram_plan(ctx.backend.name, dists.resolved_device(ctx), word,
                                           spec.num_classes, "", 1.0, 0, 1, 0, spec.unigrams))


def sample(ctx: Ctx, spec: LayerSpec, labels: Any, call: tuple) -> tuple:
    """``(candidates [S], true_expected_count [B, T], sampled_expected_count [S])`` of the
    built-in sampler for ``call = (key0, key1, call_index)``."""
    xp = ctx.xp
    dist = distribution(ctx, spec)
    candidates, num_tries = _unique.sample(ctx, dist, spec.num_sampled, True, call)
    ids = xp.concat([xp.reshape(labels, (-1,)), candidates])
    q = _unique.expected_count(xp, dist.prob(ctx, ids), spec.num_sampled, num_tries)
    s = spec.num_sampled  # the batch size may be unknown (a symbolic dimension): split from the end
    return candidates, xp.reshape(q[:-s], (-1, spec.num_true)), q[-s:]


def table_shard(ctx: Ctx, spec: LayerSpec, group: Any, partition_strategy: Any) -> Shard:
    """This rank's shard of the layer's class table over ``group`` (a ``torch.distributed``
    process group, a mesh axis name): its ``rows`` are the layout's size for this rank."""
    return _sharded.shard_for(ctx, group, spec.num_classes, partition_strategy)


def sampled_softmax_step(ctx: Ctx, spec: LayerSpec, inputs: Any, labels: Any,
                         sampled_values: tuple, gather: Callable[[Any], tuple],
                         out_dtype: Any = None, shard: Optional[Shard] = None) -> Any:
    """The per-example sampled softmax loss ``[B]`` in ``out_dtype`` (default: the inputs'
    dtype), for validated ``labels [B, T]`` (index dtype) and ``sampled_values`` (candidates,
    counts); ``gather(ids) -> (weight rows, bias rows)`` gathers the table rows the front end's
    way. With ``shard`` (:func:`table_shard`) the table is this rank's shard: ``gather`` gets
    local rows, and the loss is assembled over the group."""
    xp = ctx.xp
    candidates, true_q, sampled_q = (ctx.stop_gradient(v) for v in sampled_values)
    cdtype = compute_dtype(xp, inputs.dtype)
    s = candidates.shape[0]
    ids = xp.concat([xp.reshape(labels, (-1,)), candidates])
    owned = None
    if shard is not None:
        owned, ids = shard.owner(ids)
    rows_w, rows_b = gather(ids)
    hits = hit_mask(xp, labels, candidates) if spec.remove_accidental_hits else None
    parts = (rows_w[:-s], rows_b[:-s], rows_w[-s:], rows_b[-s:],
             xp.log(xp.astype(true_q, cdtype)), xp.log(xp.astype(sampled_q, cdtype)), hits,
             spec.num_true)
    if shard is None:
        loss = ctx.backend.sampled_softmax(xp, inputs, *parts)
    else:
        loss = _sharded.sampled_softmax(shard, inputs, *parts,
                                        *_sharded.split_owned(xp, owned, s, spec.num_true),
                                        ctx.stop_gradient)
    return xp.astype(loss, inputs.dtype if out_dtype is None else out_dtype)


def check_reduction(reduction: Any) -> str:
    """``reduction`` validated: one of :data:`REDUCTIONS`."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    return reduction


def check_ignore_index(ignore_index: Any, num_classes: int) -> Optional[int]:
    """``ignore_index`` validated: None, or an int label id marking positions to leave out."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            f"ignore_index must be None or an int (a label id such as -100 marking padding "
            f"positions), got {ignore_index!r} of type {type(ignore_index).__name__}"
        )
    return ignore_index


def key_call(ctx: Ctx, key: Any) -> tuple:
    """``(key0, key1, 0)``: the sampler call of a key (a 1-D integer array of two 32-bit words
    or a JAX key, e.g. from ``keras.random.SeedGenerator`` or ``nnx.Rngs``); the candidates
    then equal those of the functional API with ``seed=key``."""
    if not _seeds.is_key(key):
        raise TypeError(
            "the sampler's key must be a 1-D integer array of two 32-bit words or a JAX key, "
            f"got {type(key).__name__}"
        )
    return _seeds.call_for(ctx, key)


def positions(ctx: Ctx, spec: LayerSpec, inputs: Any, labels: Any) -> tuple:
    """``(inputs [N, D], labels [N, T] index dtype, lead)``: a layer's ``inputs [..., D]`` and
    ``labels [..., T]`` (or ``[...]`` when ``T == 1``) flattened over the leading shape
    ``lead`` (a tuple whose unknown sizes are None, as in a symbolic batch dimension)."""
    xp = ctx.xp
    shape = tuple(inputs.shape)
    if len(shape) < 2 or shape[-1] != spec.embedding_dim:
        raise ValueError(
            f"inputs must have shape [batch_size, embedding_dim={spec.embedding_dim}] (or "
            f"[..., embedding_dim]), got shape {list(shape)}"
        )
    if not xp.isdtype(inputs.dtype, "real floating"):
        raise TypeError(f"inputs must have a floating dtype, got {inputs.dtype}")
    if xp.isdtype(labels.dtype, ("real floating", "complex floating", "bool")):
        raise TypeError(
            f"labels must have an integer dtype (class ids), got {labels.dtype}; cast "
            "explicitly if the values are whole numbers"
        )
    lead = shape[:-1]
    got = tuple(labels.shape)
    t = spec.num_true
    fits = len(got) == len(lead) + 1 and got[-1] == t
    if t == 1 and len(got) == len(lead):
        fits, labels = True, labels[..., None]
    if not fits or any(a is not None and b is not None and a != b
                       for a, b in zip(got, lead)):
        rows = ", ".join("None" if n is None else str(n) for n in lead)
        raise ValueError(
            f"labels must have shape [{rows}, num_true={t}]"
            + (f" (or [{rows}])" if t == 1 else "") + f", got shape {list(got)}"
        )
    flat_x = xp.reshape(inputs, (-1, spec.embedding_dim))
    flat_y = xp.astype(xp.reshape(labels, (-1, t)), ctx.index_dtype)
    return flat_x, flat_y, lead


def checked_labels(ctx: Ctx, spec: LayerSpec, labels: Any) -> Any:
    """``labels`` with every id checked to lie in ``[0, num_classes)``: on the host where the
    backend may read values (a ``ValueError``), else through its asynchronous check, with the
    ids clipped so no gather reads out of bounds."""
    check_value_range(ctx, "labels", labels, 0, spec.num_classes)
    return keep_in_range(ctx, labels, 0, spec.num_classes)


def rows(ctx: Ctx, weight: Any, bias: Any, ids: Any) -> tuple:
    """``(weight rows [N, D], bias rows [N])`` of a dense class table through the backend's
    ``take_rows``: the default ``gather`` of :func:`sampled_softmax_step` (``bias`` None: zeros,
    a layer without bias)."""
    rows_w = ctx.take_rows(weight, ids)
    if bias is None:
        return rows_w, ctx.xp.zeros_like(rows_w[:, 0])
    return rows_w, ctx.take_rows(bias, ids)


def ignored_positions(ctx: Ctx, labels: Any, ignore_index: Optional[int]) -> tuple:
    """``(keep [N] bool or None, labels)``: the positions whose labels are not all
    ``ignore_index``, and the labels with the ignored ids replaced by class 0 (their losses
    are discarded by :func:`reduce`); ``(None, labels)`` when ``ignore_index`` is None."""
    if ignore_index is None:
        return None, labels
    xp = ctx.xp
    ignored = labels == ignore_index
    keep = xp.logical_not(xp.all(ignored, axis=1))
    return keep, xp.where(ignored, xp.zeros_like(labels), labels)


def reduce(ctx: Ctx, loss: Any, keep: Any, reduction: str, lead: tuple) -> Any:
    """The per-position ``loss [N]`` with ignored positions (``keep`` False) set to 0, as
    ``[*lead]`` (``"none"``; unknown sizes of ``lead`` are inferred), its sum or its mean over
    the kept positions."""
    xp = ctx.xp
    if keep is not None:
        loss = xp.where(keep, loss, xp.zeros_like(loss))
    if reduction == "sum":
        return xp.sum(loss)
    if reduction == "mean":
        count = xp.ones_like(loss) if keep is None else xp.astype(keep, loss.dtype)
        return xp.sum(loss) / xp.sum(count)
    if all(n is not None for n in lead):
        return xp.reshape(loss, lead)
    return xp.reshape(loss, tuple(-1 if n is None else n for n in lead))


def full_logits(ctx: Ctx, inputs: Any, weight: Any, bias: Any) -> Any:
    """``inputs [N, D] @ weight.T + bias``: the logits of all classes ``[N, C]`` in the compute
    dtype (float32 for half precision); ``bias`` None: no bias."""
    xp = ctx.xp
    cdtype = compute_dtype(xp, inputs.dtype)
    logits = xp.matmul(xp.astype(inputs, cdtype), xp.matrix_transpose(xp.astype(weight, cdtype)))
    return logits if bias is None else logits + xp.astype(bias, cdtype)


def full_softmax_loss(ctx: Ctx, spec: LayerSpec, inputs: Any, weight: Any, bias: Any,
                      labels: Any, shard: Optional[Shard] = None) -> Any:
    """The full softmax cross entropy ``[N]`` (compute dtype) over all classes with ``1/T``
    soft labels on the ``T`` true classes of ``labels [N, T]``: a layer's evaluation loss.
    With ``shard``, ``weight``/``bias`` are this rank's shard and the loss is assembled over
    the group."""
    xp = ctx.xp
    if shard is not None:
        inputs = shard.copy_in(inputs)
    logits = full_logits(ctx, inputs, weight, bias)
    cdtype = logits.dtype
    ids = xp.reshape(labels, (-1,))
    owned = None
    if shard is not None:
        owned, ids = shard.owner(ids)
    rows = xp.reshape(xp.astype(xp.take(weight, ids, axis=0), cdtype),
                      (-1, spec.num_true, spec.embedding_dim))
    true = xp.sum(xp.astype(inputs, cdtype)[:, None, :] * rows, axis=2)
    if bias is not None:
        true = true + xp.reshape(xp.astype(xp.take(bias, ids, axis=0), cdtype),
                                 (-1, spec.num_true))
    if shard is not None:
        owned_true = xp.reshape(owned, (-1, spec.num_true))
        return _sharded.full_softmax(shard, logits, true, owned_true, ctx.stop_gradient)
    return logsumexp(xp, logits, ctx.stop_gradient) - xp.sum(true, axis=1) / spec.num_true
