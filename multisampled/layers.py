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
from typing import Any, Callable, Optional, Sequence, Union

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
from ._math import compute_dtype, logsumexp
from ._sharded import Shard
from ._types import Array, SampledValues  # Array: also the front ends' (no private imports there)

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
    """The per-call context of a front end's backend (by name) on ``device``.

    Args:
        backend: A registered backend's name (``"torch"``, ``"jax"``, ``"tensorflow"``, ...).
        device: The device of the call's arrays (a framework device object, or None for the
            backend's default).

    Returns:
        The context every other function here takes: the backend, its Array API namespace
        (``ctx.xp``) and the device.

    Raises:
        TypeError: ``backend`` is not a str.
        ValueError: No backend is registered as ``backend``.
        ImportError: The backend's framework is not installed.
    """
    return context_for(get_backend(backend), device)


def validated_samples(ctx: Ctx, spec: "LayerSpec", batch: Optional[int],
                      sampled_values: SampledValues) -> tuple[Array, Array, Array]:
    """A user's ``(candidates, true_expected_count, sampled_expected_count)`` checked as the
    functional losses check it (candidates in the index dtype, counts in float32).

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        batch: The number of flattened positions ``N`` (None: not known while tracing).
        sampled_values: ``(candidates [S], true_expected_count [N, T],
            sampled_expected_count [S])``; with ``remove_accidental_hits``, ``S`` must be
            ``spec.num_sampled``.

    Returns:
        The triple with no gradient: candidates in the index dtype, counts in float32.

    Raises:
        TypeError: ``sampled_values`` not a triple of arrays (a ``ValueError`` too), ragged or
            sparse members, candidates not of an integer dtype or counts not floating.
        ValueError: Shapes that do not fit (no candidates, a count other than
            ``spec.num_sampled`` with hit removal, counts that do not broadcast to ``[N, T]``
            and ``[S]``); where values are read on the host, candidates outside
            ``[0, num_classes)`` or counts not finite and > 0.
    """
    return check_sampled_values(
        ctx, sampled_values, batch=batch, num_true=spec.num_true,
        num_classes=spec.num_classes, cdtype=ctx.xp.float32,
        expected_len=spec.num_sampled if spec.remove_accidental_hits else None,
        length_reason=" (they must agree when remove_accidental_hits=True)")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A sampled-softmax layer's static configuration, validated (build it with
    :meth:`checked`).

    Attributes:
        num_classes: The number of classes ``C`` (the rows of the class table).
        embedding_dim: The width ``D`` of the inputs and of the table's rows.
        num_sampled: The number of negatives drawn in each training call.
        num_true: The number of labels per position ``T``.
        sampler: ``"log_uniform"``, ``"uniform"``, ``"fixed_unigram"``, or a callable
            ``sampler(labels [N, T]) -> CandidateSamples``.
        remove_accidental_hits: Whether sampled classes equal to a position's label are
            masked.
        unigrams: The fixed-unigram sampler's class weights, a tuple of floats (None for the
            other samplers).
    """

    num_classes: int
    embedding_dim: int
    num_sampled: int
    num_true: int = 1
    sampler: Union[str, Callable[..., Any]] = "log_uniform"
    remove_accidental_hits: bool = True
    unigrams: Any = None  # the fixed-unigram sampler's weights, a tuple of floats

    @classmethod
    def checked(cls, num_classes: int, embedding_dim: int, num_sampled: int, *,
                num_true: int = 1, sampler: Union[str, Callable[..., Any]] = "log_uniform",
                remove_accidental_hits: bool = True,
                unigrams: Union[Sequence[float], Array, None] = None) -> "LayerSpec":
        """The configuration of these arguments, each checked.

        Args:
            num_classes: The number of classes (>= 1, below ``2**63``).
            embedding_dim: The embedding width (>= 1).
            num_sampled: The negatives per call (>= 1; at most ``num_classes`` for a built-in
                sampler, which draws distinct classes).
            num_true: The labels per position (>= 1).
            sampler: A built-in sampler's name (:data:`SAMPLERS`) or a callable returning
                ``CandidateSamples``.
            remove_accidental_hits: Whether to mask sampled classes equal to a label.
            unigrams: ``num_classes`` finite weights >= 0 (a sequence of floats or a 1-D
                array), exactly when ``sampler="fixed_unigram"``.

        Returns:
            The validated :class:`LayerSpec`.

        Raises:
            TypeError: An int or bool argument of another type; ``sampler`` neither a str nor
                callable; ``unigrams`` not a sequence of floats.
            ValueError: A count below 1, ``num_classes >= 2**63``, an unknown sampler name,
                ``num_sampled > num_classes`` for a built-in sampler, ``unigrams`` given
                without ``sampler="fixed_unigram"`` (or missing with it), not flat, or not
                of ``num_classes`` entries (their values are checked by :func:`distribution`).
        """
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
        """Whether the sampler is a built-in one (a name), not a user's callable."""
        return isinstance(self.sampler, str)


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


def use_full_softmax(training: bool, full_softmax: Optional[bool]) -> bool:
    """Eval mode computes the full softmax (TF's advice for evaluating); ``full_softmax``
    forces either way.

    Args:
        training: Whether the layer is in training mode.
        full_softmax: True or False to force the full or the sampled loss; None: the full
            softmax exactly when not training.

    Returns:
        Whether to compute the full softmax.

    Raises:
        TypeError: ``full_softmax`` is neither None nor a bool.
    """
    if full_softmax is None:
        return not training
    return check_bool("full_softmax", full_softmax)


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
    from ._rng import word_dtype
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


def table_shard(ctx: Ctx, spec: LayerSpec, group: Any, partition_strategy: str) -> Shard:
    """This rank's shard of the layer's class table over ``group`` (a ``torch.distributed``
    process group, a mesh axis name): its ``rows`` are the layout's size for this rank.

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        group: The process group or mesh axis name the table is sharded over.
        partition_strategy: ``"div"`` or ``"mod"``.

    Returns:
        The shard: this rank, the group's size and the number of rows this rank holds.

    Raises:
        ValueError: An unknown ``partition_strategy``, or fewer classes than ranks.
        TypeError: The rank is not known in Python (a traced rank).
    """
    return _sharded.shard_for(ctx, group, spec.num_classes, partition_strategy)


def sampled_softmax_step(ctx: Ctx, spec: LayerSpec, inputs: Array, labels: Array,
                         sampled_values: SampledValues,
                         gather: Callable[[Array], tuple[Array, Array]],
                         out_dtype: Any = None, shard: Optional[Shard] = None) -> Array:
    """The per-example sampled softmax loss ``[B]`` in ``out_dtype`` (default: the inputs'
    dtype), for validated ``labels [B, T]`` (index dtype) and ``sampled_values`` (candidates,
    counts); ``gather(ids) -> (weight rows, bias rows)`` gathers the table rows the front end's
    way. With ``shard`` (:func:`table_shard`) the table is this rank's shard: ``gather`` gets
    local rows, and the loss is assembled over the group.

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        inputs: ``[B, D]`` floating inputs (:func:`positions`).
        labels: ``[B, T]`` checked labels in the index dtype.
        sampled_values: ``(candidates [S], true_expected_count, sampled_expected_count)``
            from :func:`sample` or :func:`validated_samples` (no gradient flows into them).
        gather: ``gather(ids [B*T + S]) -> (weight rows [B*T + S, D], bias rows [B*T + S])``.
        out_dtype: The result's dtype (a dtype of the backend); None: the inputs' dtype.
        shard: This rank's shard of the table (:func:`table_shard`), or None.

    Returns:
        The loss of each position, ``[B]``, computed in float32 for half-precision inputs.
    """
    xp = ctx.xp
    candidates, true_q, sampled_q = (ctx.stop_gradient(v) for v in sampled_values)
    cdtype = compute_dtype(xp, inputs.dtype)
    s = candidates.shape[0]
    ids = xp.concat([xp.reshape(labels, (-1,)), candidates])
    owned = None
    if shard is not None:
        owned, ids = shard.owner(ids)
    rows_w, rows_b = gather(ids)
    hits = (ctx.backend.hit_mask(xp, labels, candidates, spec.num_classes)
            if spec.remove_accidental_hits else None)
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
    """``reduction`` validated: one of :data:`REDUCTIONS`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        ``reduction``.

    Raises:
        ValueError: ``reduction`` is not one of them.
    """
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    return reduction


def check_ignore_index(ignore_index: Any, num_classes: int) -> Optional[int]:
    """``ignore_index`` validated: None, or an int label id marking positions to leave out.

    Args:
        ignore_index: None, or an int (``-100``, say; any int, inside ``[0, num_classes)`` or
            not).
        num_classes: The number of classes (not used to restrict the value).

    Returns:
        ``ignore_index``.

    Raises:
        TypeError: ``ignore_index`` is neither None nor an int (bools refused).
    """
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            f"ignore_index must be None or an int (a label id such as -100 marking padding "
            f"positions), got {ignore_index!r} of type {type(ignore_index).__name__}"
        )
    return ignore_index


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


def positions(ctx: Ctx, spec: LayerSpec, inputs: Array, labels: Array
              ) -> tuple[Array, Array, tuple[Optional[int], ...]]:
    """``(inputs [N, D], labels [N, T] index dtype, lead)``: a layer's ``inputs [..., D]`` and
    ``labels [..., T]`` (or ``[...]`` when ``T == 1``) flattened over the leading shape
    ``lead`` (a tuple whose unknown sizes are None, as in a symbolic batch dimension).

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        inputs: ``[..., D]`` floating inputs.
        labels: ``[..., T]`` integer labels (``[...]`` when ``T == 1``), with the inputs'
            leading shape.

    Returns:
        The flattened inputs and labels, and the leading shape.

    Raises:
        ValueError: ``inputs`` not ``[..., D]`` with at least two dimensions, or ``labels``
            not of the inputs' leading shape and ``T`` columns.
        TypeError: ``inputs`` not floating, or ``labels`` floating, complex or bool.
    """
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


def checked_labels(ctx: Ctx, spec: LayerSpec, labels: Array) -> Array:
    """``labels`` with every id checked to lie in ``[0, num_classes)``: on the host where the
    backend may read values (a ``ValueError``), else through its asynchronous check, with the
    ids clipped so no gather reads out of bounds.

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        labels: ``[N, T]`` labels in the index dtype.

    Returns:
        The labels, unchanged where the check ran on the host, else clipped into range.

    Raises:
        ValueError: Where values are read on the host, an id outside ``[0, num_classes)``.
        RuntimeError: Under TensorFlow's XLA with its value checks on.
    """
    check_value_range(ctx, "labels", labels, 0, spec.num_classes)
    return keep_in_range(ctx, labels, 0, spec.num_classes)


def rows(ctx: Ctx, weight: Array, bias: Optional[Array], ids: Array) -> tuple[Array, Array]:
    """``(weight rows [N, D], bias rows [N])`` of a dense class table through the backend's
    ``take_rows``: the default ``gather`` of :func:`sampled_softmax_step` (``bias`` None: zeros,
    a layer without bias).

    Args:
        ctx: The call's context (:func:`context`).
        weight: The ``[C, D]`` class table.
        bias: The ``[C]`` biases, or None.
        ids: ``[N]`` row ids in the index dtype.

    Returns:
        The gathered weight rows and bias entries.
    """
    rows_w = ctx.take_rows(weight, ids)
    if bias is None:
        return rows_w, ctx.xp.zeros_like(rows_w[:, 0])
    return rows_w, ctx.take_rows(bias, ids)


def ignored_positions(ctx: Ctx, labels: Array, ignore_index: Optional[int]
                      ) -> tuple[Optional[Array], Array]:
    """``(keep [N] bool or None, labels)``: the positions whose labels are not all
    ``ignore_index``, and the labels with the ignored ids replaced by class 0 (their losses
    are discarded by :func:`reduce`); ``(None, labels)`` when ``ignore_index`` is None.

    Args:
        ctx: The call's context (:func:`context`).
        labels: ``[N, T]`` integer labels.
        ignore_index: The label id of ignored positions, or None.

    Returns:
        The mask of kept positions (None: all) and the labels.
    """
    if ignore_index is None:
        return None, labels
    xp = ctx.xp
    ignored = labels == ignore_index
    keep = xp.logical_not(xp.all(ignored, axis=1))
    return keep, xp.where(ignored, xp.zeros_like(labels), labels)


def reduce(ctx: Ctx, loss: Array, keep: Optional[Array], reduction: str,
           lead: tuple[Optional[int], ...]) -> Array:
    """The per-position ``loss [N]`` with ignored positions (``keep`` False) set to 0, as
    ``[*lead]`` (``"none"``; unknown sizes of ``lead`` are inferred), its sum or its mean over
    the kept positions.

    Args:
        ctx: The call's context (:func:`context`).
        loss: ``[N]`` losses of the flattened positions.
        keep: ``[N]`` bool mask of the kept positions (:func:`ignored_positions`), or None.
        reduction: ``"none"``, ``"mean"`` or ``"sum"`` (checked by :func:`check_reduction`).
        lead: The leading shape the positions were flattened from (:func:`positions`).

    Returns:
        ``[*lead]`` losses for ``"none"``, else a 0-d sum or mean (the mean of no kept
        position is NaN).
    """
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


def full_logits(ctx: Ctx, inputs: Array, weight: Array, bias: Optional[Array]) -> Array:
    """``inputs [N, D] @ weight.T + bias``: the logits of all classes ``[N, C]`` in the compute
    dtype (float32 for half precision); ``bias`` None: no bias.

    Args:
        ctx: The call's context (:func:`context`).
        inputs: ``[N, D]`` floating inputs.
        weight: The ``[C, D]`` class table.
        bias: The ``[C]`` biases, or None.

    Returns:
        The ``[N, C]`` logits.
    """
    xp = ctx.xp
    cdtype = compute_dtype(xp, inputs.dtype)
    logits = xp.matmul(xp.astype(inputs, cdtype), xp.matrix_transpose(xp.astype(weight, cdtype)))
    return logits if bias is None else logits + xp.astype(bias, cdtype)


def full_softmax_loss(ctx: Ctx, spec: LayerSpec, inputs: Array, weight: Array,
                      bias: Optional[Array], labels: Array,
                      shard: Optional[Shard] = None) -> Array:
    """The full softmax cross entropy ``[N]`` (compute dtype) over all classes with ``1/T``
    soft labels on the ``T`` true classes of ``labels [N, T]``: a layer's evaluation loss.
    With ``shard``, ``weight``/``bias`` are this rank's shard and the loss is assembled over
    the group.

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        inputs: ``[N, D]`` floating inputs.
        weight: The ``[C, D]`` class table (with ``shard``: this rank's rows).
        bias: The ``[C]`` biases (or this rank's), or None.
        labels: ``[N, T]`` checked labels in the index dtype.
        shard: This rank's shard of the table (:func:`table_shard`), or None.

    Returns:
        The loss of each position, ``[N]``.
    """
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
