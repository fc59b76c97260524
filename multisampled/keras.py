"""Keras 3 front end: :class:`SampledSoftmax`, a layer owning the class table.

The layer runs on every Keras backend (``KERAS_BACKEND=tensorflow``, ``jax`` or ``torch``),
each through the matching multisampled backend, and draws fresh negatives in every training
step from keys of a ``keras.random.SeedGenerator``, so ``model.fit`` works compiled
(``jit_compile=True``) as well as eagerly. The layer's logic is :mod:`multisampled.layers`'s;
this file is the Keras glue. Importing it imports Keras.
"""

from __future__ import annotations

from typing import Any, Optional

import keras
from keras import ops

from multisampled import get_backend
from multisampled import layers as _layer
from multisampled.layers import Array

__all__ = ["SampledSoftmax"]

SEED_STATE = "seed_generator_state"


@keras.saving.register_keras_serializable(package="multisampled")
class SampledSoftmax(keras.layers.Layer):
    """Sampled softmax with TensorFlow's semantics as a Keras layer owning ``kernel [C, D]``
    and ``bias [C]`` (the ``weights``/``biases`` of ``tf.nn.sampled_softmax_loss``).

    ``SampledSoftmax(num_classes, num_sampled, *, num_true=1, sampler="log_uniform",
    unigrams=None, remove_accidental_hits=True, use_bias=True,
    kernel_initializer="glorot_uniform", bias_initializer="zeros", ignore_index=None,
    seed=None, **layer_kwargs)``

    * ``layer(inputs, labels)`` with ``inputs [..., D]`` and integer ``labels [..., num_true]``
      (or ``[...]`` when ``num_true == 1``): the loss of each position, ``[...]`` float32. In
      training (``model.fit``, or ``training=True``) it is TF's sampled softmax over
      ``num_sampled`` negatives drawn afresh in every step; in inference (``evaluate``,
      ``predict``, or a direct call) the full softmax cross entropy over all classes. The layer
      also adds the mean over the (not ignored) positions with ``add_loss``, so a model that
      ends in this layer trains with ``model.compile(optimizer=...)`` and no ``loss``.
    * ``layer(inputs)``: the logits of all classes, ``[..., C]`` (``inputs @ kernel.T +
      bias``), for prediction.

    ``sampler``: ``"log_uniform"`` (TF's default), ``"uniform"``, or ``"fixed_unigram"`` with
    ``unigrams=`` the classes' weights. ``seed``: the ``SeedGenerator``'s seed (an int, or
    None for a random one); step ``k`` draws with the key ``(seed, k)``, the candidates of
    ``multisampled.sampled_softmax_loss(..., seed=key)``, and the generator's state is saved
    with the model (``model.save``), so a loaded model continues the stream. ``ignore_index``
    (an extension; TF has none): positions whose labels all equal it get loss 0 and no
    gradient, and are left out of the mean.

    Args:
        num_classes: The number of classes ``C`` (>= 1, below ``2**63``).
        num_sampled: The negatives drawn per training step (>= 1, at most ``num_classes``).
        num_true: The labels per position ``T`` (>= 1).
        sampler: ``"log_uniform"``, ``"uniform"`` or ``"fixed_unigram"`` (a name: a saved
            model names its sampler).
        unigrams: The ``num_classes`` class weights of ``sampler="fixed_unigram"`` (a
            sequence of floats, finite and >= 0); None otherwise.
        remove_accidental_hits: Whether to mask sampled classes equal to a position's label.
        use_bias: Whether the layer has a ``bias`` weight.
        kernel_initializer: A Keras initializer (or its name) of ``kernel [C, D]``.
        bias_initializer: A Keras initializer (or its name) of ``bias [C]``.
        ignore_index: The label id of positions to leave out (``-100``, say), or None.
        seed: The ``keras.random.SeedGenerator``'s seed, an int or None.
        **kwargs: ``keras.layers.Layer``'s arguments (``name``, ``dtype``, ...).

    Raises:
        TypeError: ``sampler`` not a str; an int or bool argument of another type;
            ``ignore_index`` not an int.
        ValueError: A count below 1 or ``num_classes >= 2**63``; an unknown sampler;
            ``num_sampled > num_classes``; ``unigrams`` without ``sampler="fixed_unigram"``
            (or missing with it), not flat or of another length (their values are checked at
            the first call). Keras raises its own errors for an unknown initializer or seed.
    """

    def __init__(self, num_classes: int, num_sampled: int, *, num_true: int = 1,
                 sampler: str = "log_uniform", unigrams: Any = None,
                 remove_accidental_hits: bool = True, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 ignore_index: Optional[int] = None, seed: Optional[int] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(sampler, str):
            raise TypeError(
                f"sampler must be one of {list(_layer.SAMPLERS)} for the Keras layer (a saved "
                f"model names it), got {sampler!r} of type {type(sampler).__name__}"
            )
        # validated now (the embedding size is known at build time)
        spec = _layer.LayerSpec.checked(num_classes, 1, num_sampled, num_true=num_true,
                                        sampler=sampler, unigrams=unigrams,
                                        remove_accidental_hits=remove_accidental_hits)
        self.num_classes, self.num_sampled = spec.num_classes, spec.num_sampled
        self.num_true, self.sampler = spec.num_true, spec.sampler
        self.unigrams = None if spec.unigrams is None else list(spec.unigrams)
        self.remove_accidental_hits = spec.remove_accidental_hits
        self.use_bias = _layer.check_bool("use_bias", use_bias)
        self.ignore_index = _layer.check_ignore_index(ignore_index, self.num_classes)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.spec = None

    def build(self, inputs_shape: tuple[Optional[int], ...],
              labels_shape: Optional[tuple[Optional[int], ...]] = None) -> None:
        """Create ``kernel [C, D]`` and ``bias [C]`` for inputs of this shape (Keras calls it).

        Args:
            inputs_shape: The inputs' shape ``[..., D]``; ``D`` must be known.
            labels_shape: The labels' shape (unused), or None for a logits-only call.

        Raises:
            ValueError: The last dimension of ``inputs_shape`` is unknown.
        """
        dim = inputs_shape[-1]
        if dim is None:
            raise ValueError(
                f"inputs must have a known last dimension (the embedding size), got shape "
                f"{tuple(inputs_shape)}"
            )
        self.spec = _layer.LayerSpec.checked(
            self.num_classes, int(dim), self.num_sampled, num_true=self.num_true,
            sampler=self.sampler, unigrams=self.unigrams,
            remove_accidental_hits=self.remove_accidental_hits)
        self.kernel = self.add_weight(name="kernel", shape=(self.num_classes, int(dim)),
                                      initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.num_classes,),
                                     initializer=self.bias_initializer)
                     if self.use_bias else None)

    def call(self, inputs: Array, labels: Optional[Array] = None,
             training: Optional[bool] = None) -> Array:
        """The loss of each position, or the logits of all classes without ``labels``.

        Args:
            inputs: ``[..., D]`` floating inputs.
            labels: ``[..., num_true]`` integer labels (``[...]`` when ``num_true == 1``), or
                None for :meth:`logits`.
            training: True: the sampled softmax over fresh negatives; otherwise the full
                softmax (Keras passes it: True in ``fit``).

        Returns:
            The loss per position ``[...]`` in float32 (its mean over the kept positions is
            added with ``add_loss``), or the logits ``[..., C]``.

        Raises:
            ValueError: ``inputs`` not ``[..., D]`` or ``labels`` not of its leading shape;
                where values are read on the host, labels outside ``[0, num_classes)`` (other
                than ``ignore_index``).
            TypeError: ``inputs`` not floating or ``labels`` not integer.
            RuntimeError: Under TensorFlow's XLA (``jit_compile=True``) with the value checks
                on (``multisampled.backends.tensorflow.set_xla_value_checks``).
        """
        if labels is None:
            return self.logits(inputs)
        ctx = _layer.context(keras.backend.backend(), self._device(inputs))
        x, y, _ = _layer.positions(ctx, self.spec, inputs, labels)
        keep, y = _layer.ignored_positions(ctx, y, self.ignore_index)
        y = _layer.checked_labels(ctx, self.spec, y)
        weight = self.kernel.value
        bias = None if self.bias is None else self.bias.value
        if training:
            key = self.seed_generator.next()
            sampled = _layer.sample(ctx, self.spec, y, _layer.key_call(ctx, key))
            loss = _layer.sampled_softmax_step(
                ctx, self.spec, x, y, sampled, lambda ids: _layer.rows(ctx, weight, bias, ids),
                out_dtype=ctx.xp.float32)
        else:
            loss = ctx.xp.astype(_layer.full_softmax_loss(ctx, self.spec, x, weight, bias, y),
                                 ctx.xp.float32)
        self.add_loss(_layer.reduce(ctx, loss, keep, "mean", (None,)))
        per_position = _layer.reduce(ctx, loss, keep, "none", (None,))
        return ops.reshape(per_position, ops.shape(inputs)[:-1])

    def logits(self, inputs: Array) -> Array:
        """``inputs [..., D] @ kernel.T + bias``: the logits of all classes, ``[..., C]``.

        Args:
            inputs: ``[..., D]`` floating inputs.

        Returns:
            The logits ``[..., C]`` in the inputs' dtype.
        """
        out = ops.matmul(inputs, ops.transpose(ops.cast(self.kernel, inputs.dtype)))
        return out if self.bias is None else out + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, inputs_shape: tuple[Optional[int], ...],
                             labels_shape: Optional[tuple[Optional[int], ...]] = None
                             ) -> tuple[Optional[int], ...]:
        """The shape of :meth:`call`'s result (Keras calls it).

        Args:
            inputs_shape: The inputs' shape ``[..., D]``.
            labels_shape: The labels' shape, or None for the logits.

        Returns:
            ``[...]`` with labels, ``[..., C]`` without.
        """
        if labels_shape is None:
            return tuple(inputs_shape[:-1]) + (self.num_classes,)
        return tuple(inputs_shape[:-1])

    def compute_output_spec(self, inputs: Any, labels: Any = None,
                            training: Optional[bool] = None) -> Any:
        """The symbolic result of :meth:`call` (Keras calls it while building a model).

        Args:
            inputs: The symbolic inputs (a ``keras.KerasTensor``).
            labels: The symbolic labels, or None for the logits.
            training: Unused.

        Returns:
            A ``keras.KerasTensor``: float32 per-position losses with labels, the logits in the
            layer's compute dtype without.
        """
        shape = self.compute_output_shape(inputs.shape,
                                          None if labels is None else labels.shape)
        dtype = self.compute_dtype if labels is None else "float32"
        return keras.KerasTensor(shape, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """The layer's arguments, for ``model.save`` and ``from_config`` (Keras calls it).

        Returns:
            Keras's base config with every argument of :class:`SampledSoftmax`.
        """
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, num_sampled=self.num_sampled, num_true=self.num_true,
            sampler=self.sampler, unigrams=self.unigrams,
            remove_accidental_hits=self.remove_accidental_hits, use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            ignore_index=self.ignore_index, seed=self.seed,
        )
        return config

    def save_own_variables(self, store: Any) -> None:
        """Keras's saved variables plus the seed generator's state, so a loaded model goes on
        drawing where the saved one stopped (Keras itself saves no seed state).

        Args:
            store: Keras's variable store (a dict-like object).
        """
        super().save_own_variables(store)
        store[SEED_STATE] = ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store: Any) -> None:
        """Keras's saved variables, and the seed generator's state where the store has it.

        Args:
            store: Keras's variable store (a dict-like object).
        """
        keys = list(store.keys())
        if SEED_STATE in keys:
            self.seed_generator.state.assign(store[SEED_STATE])
            store = {k: store[k] for k in keys if k != SEED_STATE}
        super().load_own_variables(store)

    def _device(self, inputs: Any) -> Any:
        return get_backend(keras.backend.backend()).device_of(inputs)
