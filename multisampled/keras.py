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
    with the model (``model.save``), so a loaded model continues the stream. ``ignore_index`` (an extension; TF has none): positions whose labels all
    equal it get loss 0 and no gradient, and are left out of the mean.
    """

    def __init__(self, num_classes: int, num_sampled: int, *, num_true: int = 1,
                 sampler: str = "log_uniform", unigrams: Any = None,
                 remove_accidental_hits: bool = True, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 ignore_index: Optional[int] = None, seed: Optional[int] = None, **kwargs):
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

    def build(self, inputs_shape, labels_shape=None):
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

    def call(self, inputs, labels=None, training=None):
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

    def logits(self, inputs):
        """``inputs [..., D] @ kernel.T + bias``: the logits of all classes, ``[..., C]``."""
        out = ops.matmul(inputs, ops.transpose(ops.cast(self.kernel, inputs.dtype)))
        return out if self.bias is None else out + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, inputs_shape, labels_shape=None):
        if labels_shape is None:
            return tuple(inputs_shape[:-1]) + (self.num_classes,)
        return tuple(inputs_shape[:-1])

    def compute_output_spec(self, inputs, labels=None, training=None):
        shape = self.compute_output_shape(inputs.shape,
                                          None if labels is None else labels.shape)
        dtype = self.compute_dtype if labels is None else "float32"
        return keras.KerasTensor(shape, dtype=dtype)

    def get_config(self):
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

    def save_own_variables(self, store):
        """Keras's saved variables plus the seed generator's state, so a loaded model goes on
        drawing where the saved one stopped (Keras itself saves no seed state)."""
        super().save_own_variables(store)
        store[SEED_STATE] = ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if SEED_STATE in keys:
            self.seed_generator.state.assign(store[SEED_STATE])
            store = {k: store[k] for k in keys if k != SEED_STATE}
        super().load_own_variables(store)

    def _device(self, inputs):
        return get_backend(keras.backend.backend()).device_of(inputs)
