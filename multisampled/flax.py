"""Flax NNX front end: :class:`SampledSoftmax`, an ``nnx.Module`` owning the class table.

Keys come from an ``nnx.Rngs`` stream the module keeps (as ``nnx.Dropout`` does), so every
call in training draws fresh negatives, also inside ``nnx.jit`` or ``jax.jit`` (with
``nnx.split``/``nnx.merge``) training steps: the stream's counter is module state. The layer's
logic is :mod:`multisampled.layers`'s; this file is the Flax glue (arrays are JAX's, through
Flax and the JAX backend). Importing it imports Flax.
"""

from __future__ import annotations

from typing import Any, Optional

from flax import nnx

from multisampled import get_backend
from multisampled import layers as _layer
from multisampled.layers import Array

__all__ = ["SampledSoftmax"]


class SampledSoftmax(nnx.Module):
    """Sampled softmax with TensorFlow's semantics as an NNX module owning ``kernel [C, D]``
    and ``bias [C]`` (``nnx.Param``; the ``weights``/``biases`` of
    ``tf.nn.sampled_softmax_loss``).

    ``SampledSoftmax(num_classes, embedding_dim, num_sampled, *, rngs, num_true=1,
    sampler="log_uniform", unigrams=None, remove_accidental_hits=True, use_bias=True,
    reduction="none", ignore_index=None, deterministic=False,
    rng_collection="sampled_softmax", kernel_init=lecun_normal over D, bias_init=zeros,
    param_dtype=float32)``

    ``module(inputs, labels, *, deterministic=None)`` with ``inputs [..., D]`` and integer
    ``labels [..., num_true]`` (or ``[...]`` when ``num_true == 1``):

    * training (``deterministic=False``, the default): TF's sampled softmax of each position
      over ``num_sampled`` negatives drawn with the next key of the ``rng_collection`` stream
      of ``rngs`` (the ``default`` stream where it has none), equal to
      ``multisampled.sampled_softmax_loss(kernel, bias, labels, inputs, ..., seed=key)``;
    * evaluation (``deterministic=True``, or after ``module.eval()``): the full softmax cross
      entropy over all classes;
    * ``reduction``: ``"none"`` (the loss per position ``[...]``, float32), ``"mean"`` or
      ``"sum"``; ``ignore_index`` (an extension; TF has none): positions whose labels all
      equal it get loss 0 and no gradient, and are left out of the mean.

    ``module(inputs)``: the logits of all classes, ``[..., C]``.

    Args:
        num_classes: The number of classes ``C`` (>= 1, below ``2**63``).
        embedding_dim: The width ``D`` of the inputs and of the kernel's rows (>= 1).
        num_sampled: The negatives drawn per training call (>= 1, at most ``num_classes``).
        rngs: The ``nnx.Rngs`` whose ``params`` stream initialises the parameters and whose
            ``rng_collection`` stream (or ``default``) the module forks for its keys.
        num_true: The labels per position ``T`` (>= 1).
        sampler: ``"log_uniform"``, ``"uniform"`` or ``"fixed_unigram"``.
        unigrams: The ``num_classes`` class weights of ``sampler="fixed_unigram"`` (a
            sequence of floats or a 1-D array, finite and >= 0); None otherwise.
        remove_accidental_hits: Whether to mask sampled classes equal to a position's label.
        use_bias: Whether the module has a ``bias`` parameter.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        ignore_index: The label id of positions to leave out (``-100``, say), or None.
        deterministic: The default of the call's ``deterministic`` (True: the full softmax).
        rng_collection: The name of the ``rngs`` stream the negatives' keys come from.
        kernel_init: An initializer ``init(key, shape, dtype)`` of ``kernel [C, D]``; None:
            LeCun normal over ``D``.
        bias_init: An initializer of ``bias [C]``; None: zeros.
        param_dtype: The parameters' dtype.

    Raises:
        TypeError: ``sampler`` not a str, ``rngs`` not an ``nnx.Rngs``; an int or bool
            argument of another type; ``ignore_index`` not an int.
        ValueError: A count below 1 or ``num_classes >= 2**63``; an unknown sampler or
            ``reduction``; ``num_sampled > num_classes``; ``unigrams`` without
            ``sampler="fixed_unigram"`` (or missing with it), not flat or of another length
            (their values are checked at the first call).
    """

    def __init__(self, num_classes: int, embedding_dim: int, num_sampled: int, *,
                 rngs: nnx.Rngs, num_true: int = 1, sampler: str = "log_uniform",
                 unigrams: Any = None, remove_accidental_hits: bool = True,
                 use_bias: bool = True, reduction: str = "none",
                 ignore_index: Optional[int] = None, deterministic: bool = False,
                 rng_collection: str = "sampled_softmax", kernel_init: Any = None,
                 bias_init: Any = None, param_dtype: Any = "float32") -> None:
        if not isinstance(sampler, str):
            raise TypeError(
                f"sampler must be one of {list(_layer.SAMPLERS)} for the Flax module, got "
                f"{sampler!r} of type {type(sampler).__name__}"
            )
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"rngs must be an nnx.Rngs, got {type(rngs).__name__}")
        self.spec = _layer.LayerSpec.checked(
            num_classes, embedding_dim, num_sampled, num_true=num_true, sampler=sampler,
            unigrams=unigrams, remove_accidental_hits=remove_accidental_hits)
        self.use_bias = _layer.check_bool("use_bias", use_bias)
        self.reduction = _layer.check_reduction(reduction)
        self.ignore_index = _layer.check_ignore_index(ignore_index, self.spec.num_classes)
        self.deterministic = _layer.check_bool("deterministic", deterministic)
        kernel_init = kernel_init or nnx.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        bias_init = bias_init or nnx.initializers.zeros_init()
        shape = (self.spec.num_classes, self.spec.embedding_dim)
        self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
        self.bias = (nnx.Param(bias_init(rngs.params(), shape[:1], param_dtype))
                     if self.use_bias else None)
        self.rngs = rngs[rng_collection].fork()

    def __call__(self, inputs: Array, labels: Optional[Array] = None, *,
                 deterministic: Optional[bool] = None) -> Array:
        """The loss of each position (or its mean or sum), or the logits without ``labels``.

        Args:
            inputs: ``[..., D]`` floating inputs (JAX arrays).
            labels: ``[..., num_true]`` integer labels (``[...]`` when ``num_true == 1``), or
                None for :meth:`logits`.
            deterministic: True: the full softmax; False: the sampled one with the stream's
                next key; None: the module's ``deterministic`` (``module.eval()`` sets it).

        Returns:
            The float32 loss per position ``[...]`` for ``reduction="none"``, else a 0-d sum
            or mean; or the logits ``[..., C]``.

        Raises:
            TypeError: ``deterministic`` not a bool; ``inputs`` not floating or ``labels`` not
                integer.
            ValueError: ``inputs`` not ``[..., D]`` or ``labels`` not of its leading shape;
                where values are read on the host (concrete CPU arrays, outside ``jit``),
                labels outside ``[0, num_classes)`` (other than ``ignore_index``); elsewhere
                ``checkify`` reports them.
        """
        if labels is None:
            return self.logits(inputs)
        full = self.deterministic if deterministic is None else _layer.check_bool(
            "deterministic", deterministic)
        ctx = _layer.context("jax", get_backend("jax").device_of(inputs))
        x, y, lead = _layer.positions(ctx, self.spec, inputs, labels)
        keep, y = _layer.ignored_positions(ctx, y, self.ignore_index)
        y = _layer.checked_labels(ctx, self.spec, y)
        weight = self.kernel[...]
        bias = None if self.bias is None else self.bias[...]
        if full:
            loss = _layer.full_softmax_loss(ctx, self.spec, x, weight, bias, y)
        else:
            sampled = _layer.sample(ctx, self.spec, y, _layer.key_call(ctx, self.rngs()))
            loss = _layer.sampled_softmax_step(
                ctx, self.spec, x, y, sampled, lambda ids: _layer.rows(ctx, weight, bias, ids),
                out_dtype=ctx.xp.float32)
        loss = ctx.xp.astype(loss, ctx.xp.float32)
        return _layer.reduce(ctx, loss, keep, self.reduction, lead)

    def logits(self, inputs: Array) -> Array:
        """``inputs [..., D] @ kernel.T + bias``: the logits of all classes, ``[..., C]``.

        Args:
            inputs: ``[..., D]`` floating inputs.

        Returns:
            The logits ``[..., C]`` in the inputs' dtype.
        """
        out = inputs @ self.kernel[...].T.astype(inputs.dtype)
        return out if self.bias is None else out + self.bias[...].astype(inputs.dtype)
