"""The framework-free logic of the sampled-softmax layers, for front ends that own the class
table (``multisampled.torch.SampledSoftmaxLoss``, a Keras or Flax layer): the one module a front
end imports for it. Here: the arguments and their validation (:class:`LayerSpec`, the eval-mode
rule, reductions, ignored labels, label ranges, a user's sampled values); the sampler plan and
seed stream (:func:`seed_key`, :func:`distribution`, :func:`sample`, :func:`key_call`) and the
step (:func:`positions`, :func:`sampled_softmax_step`, :func:`full_softmax_loss`, the row
gathers, ignored positions, reductions and the table's shard) are written in two core modules of
their own and re-exported.

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
from typing import Any, Callable, Optional, Sequence, Union

from . import _vocab
from ._checks import check_bool, check_positive_int, check_value_range, keep_in_range
from ._context import Ctx, context_for
from ._layer_sampler import distribution, key_call, sample, seed_key
from ._layer_step import (
    full_logits,
    full_softmax_loss,
    ignored_positions,
    positions,
    reduce,
    rows,
    sampled_softmax_step,
    table_shard,
)
from ._registry import get_backend
from ._tf_args import check_sampled_values
from ._types import Array, SampledValues  # Array: also the front ends' (no private imports there)

SAMPLERS = ("log_uniform", "uniform", "fixed_unigram")
REDUCTIONS = ("none", "mean", "sum")

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
