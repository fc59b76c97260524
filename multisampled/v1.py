"""``tf.compat.v1.nn`` signatures: TF 1.x argument order and the "mod" partition default.

For a single (unsharded) ``weights`` array v1 and v2 give identical results; with a list of
shards "mod" and "div" read different rows (see ``multisampled._partition``). Pass
``partition_strategy="div"`` when the training loss must agree with a full softmax over the
concatenated shards.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _tf_losses as _losses
from ._guard import public
from ._types import Array, ClassTable, SampledValues, Seed

__all__ = ["nce_loss", "sampled_softmax_loss"]


@public
def sampled_softmax_loss(
    weights: ClassTable,
    biases: ClassTable,
    labels: Array,
    inputs: Array,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Optional[SampledValues] = None,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "mod",
    name: Optional[str] = "sampled_softmax_loss",
    seed: Optional[Seed] = None,
    *,
    backend: Optional[str] = None,
    shard_group: Any = None,
) -> Array:
    """``tf.compat.v1.nn.sampled_softmax_loss(weights, biases, labels, inputs, num_sampled,
    num_classes, num_true=1, sampled_values=None, remove_accidental_hits=True,
    partition_strategy="mod", name="sampled_softmax_loss", seed=None)``, ``[B]``.

    Same computation as :func:`multisampled.sampled_softmax_loss`. TF 0.x put ``inputs`` before
    ``labels``; a call in that order (floating ``labels``, integer ``inputs``) raises a
    ``TypeError`` saying so.

    Args:
        weights: ``[C, D]`` floating class embeddings, or a list of shards of it in the
            ``partition_strategy`` layout. With ``shard_group``: this rank's shard of the table
            (one array).
        biases: ``[C]`` floating class biases, or shards laid out as ``weights`` (with
            ``shard_group``: this rank's shard).
        labels: ``[B, T]`` integer true classes, in ``[0, num_classes)``.
        inputs: ``[B, D]`` floating input activations; the result has their dtype.
        num_sampled: The number of classes the default sampler draws (>= 1); with
            ``sampled_values`` and ``remove_accidental_hits`` it must equal their number of
            candidates.
        num_classes: The number of classes ``C`` (>= 1); ids lie in ``[0, num_classes)``.
        num_true: The number of true classes per example, ``T = labels.shape[1]`` (>= 1).
        sampled_values: A ``(sampled_candidates [S], true_expected_count [B, T],
            sampled_expected_count [S])`` triple (a tuple or list, such as the
            :class:`~multisampled.CandidateSamples` of a sampler), or None to draw with
            ``log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
            seed=seed)``.
        remove_accidental_hits: Whether to mask the sampled classes equal to one of the row's
            labels (TF's default, True).
        partition_strategy: ``"mod"`` (TF 1.x's default) or ``"div"``: the layout of a sharded
            ``weights`` and ``biases`` (read with more than one shard or with ``shard_group``).
        name: Accepted and ignored (TF's op name).
        seed: The default sampler's seed, read only when ``sampled_values`` is None: None (fresh
            randomness), an int in ``[0, 2**64)`` (that seed's process-wide stream), a
            :class:`~multisampled.Generator`, or a key (a 1-D integer array of two 32-bit words, or
            a JAX key), which ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``
            need.
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.
        shard_group: A ``torch.distributed`` process group or a JAX mesh axis name, over which the
            ``num_classes``-row class table is sharded (``weights`` and ``biases`` are this rank's
            shard, and every rank gets the whole result); None: one table.

    Returns:
        The loss of each example, ``[B]``, in the inputs' dtype and backend.

    Raises:
        TypeError: An int argument that is not an int (a float, a bool) or a bool argument that is
            not a bool; ``labels`` not of an integer dtype, or ``inputs``, ``weights``, ``biases``
            or the expected counts not floating (floating ``labels`` with integer ``inputs``: named
            as TF 0.x's swapped order); ragged or sparse ``labels``, ``inputs`` or
            ``sampled_values`` members; with ``shard_group``, ``weights`` or ``biases`` given as a
            list; ``biases`` None; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call.
        ValueError: ``num_sampled``, ``num_classes`` or ``num_true`` below 1; shapes that do not
            fit (``inputs`` not ``[B, D]``, ``labels`` not ``[B, num_true]``, ``weights`` rows not
            of width ``D``, fewer than ``num_classes`` rows, shard sizes off the layout, an unknown
            ``partition_strategy`` with more than one shard); ``sampled_values`` not a triple (a
            ``ValueError`` that is also a ``TypeError``), with no candidates, or with counts that
            do not broadcast to ``[B, T]`` and ``[S]``; with ``shard_group``: ``seed=None`` without
            ``sampled_values``, a shard that is not this rank's size, or fewer classes than ranks;
            ``num_sampled > num_classes`` for the default sampler; an int seed outside ``[0,
            2**64)`` or a key not of two 32-bit words; an unknown ``backend``. Also, where the
            backend reads values on the host (NumPy, CPU tensors): ids outside ``[0, num_classes)``
            and expected counts not finite and > 0; elsewhere the framework reports those checks
            its way (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: Under TensorFlow's XLA (``tf.function(jit_compile=True)``) with its value
            checks on, a call that needs a value check; a :class:`~multisampled.Generator` seed
            whose ``2**32`` calls are used up; a torch ``shard_group`` before
            ``torch.distributed.init_process_group``.
    """
    return _losses.sampled_softmax_loss(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true=num_true,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_accidental_hits,
        seed=seed,
        name=name,
        partition_strategy=partition_strategy,
        backend=backend,
        shard_group=shard_group,
    )


@public
def nce_loss(
    weights: ClassTable,
    biases: ClassTable,
    labels: Array,
    inputs: Array,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Optional[SampledValues] = None,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "mod",
    name: Optional[str] = "nce_loss",
    *,
    seed: Optional[Seed] = None,
    backend: Optional[str] = None,
    shard_group: Any = None,
) -> Array:
    """``tf.compat.v1.nn.nce_loss(weights, biases, labels, inputs, num_sampled, num_classes,
    num_true=1, sampled_values=None, remove_accidental_hits=False, partition_strategy="mod",
    name="nce_loss")``, ``[B]``. ``seed`` (default sampler) is a keyword-only extension.

    Args:
        weights: ``[C, D]`` floating class embeddings, or a list of shards of it in the
            ``partition_strategy`` layout. With ``shard_group``: this rank's shard of the table
            (one array).
        biases: ``[C]`` floating class biases, or shards laid out as ``weights`` (with
            ``shard_group``: this rank's shard).
        labels: ``[B, T]`` integer true classes, in ``[0, num_classes)``.
        inputs: ``[B, D]`` floating input activations; the result has their dtype.
        num_sampled: The number of classes the default sampler draws (>= 1); with
            ``sampled_values`` and ``remove_accidental_hits`` it must equal their number of
            candidates.
        num_classes: The number of classes ``C`` (>= 1); ids lie in ``[0, num_classes)``.
        num_true: The number of true classes per example, ``T = labels.shape[1]`` (>= 1).
        sampled_values: A ``(sampled_candidates [S], true_expected_count [B, T],
            sampled_expected_count [S])`` triple (a tuple or list, such as the
            :class:`~multisampled.CandidateSamples` of a sampler), or None to draw with
            ``log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
            seed=seed)``.
        remove_accidental_hits: Whether to mask the sampled classes equal to one of the row's
            labels (TF's default for NCE, False).
        partition_strategy: ``"mod"`` (TF 1.x's default) or ``"div"``: the layout of a sharded
            ``weights`` and ``biases`` (read with more than one shard or with ``shard_group``).
        name: Accepted and ignored (TF's op name).
        seed: Keyword only. The default sampler's seed, read only when ``sampled_values`` is None:
            None (fresh randomness), an int in ``[0, 2**64)`` (that seed's process-wide stream), a
            :class:`~multisampled.Generator`, or a key (a 1-D integer array of two 32-bit words, or
            a JAX key), which ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``
            need.
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.
        shard_group: A ``torch.distributed`` process group or a JAX mesh axis name, over which the
            ``num_classes``-row class table is sharded (``weights`` and ``biases`` are this rank's
            shard, and every rank gets the whole result); None: one table.

    Returns:
        The loss of each example, ``[B]``, in the inputs' dtype and backend.

    Raises:
        TypeError: An int argument that is not an int (a float, a bool) or a bool argument that is
            not a bool; ``labels`` not of an integer dtype, or ``inputs``, ``weights``, ``biases``
            or the expected counts not floating (floating ``labels`` with integer ``inputs``: named
            as TF 0.x's swapped order); ragged or sparse ``labels``, ``inputs`` or
            ``sampled_values`` members; with ``shard_group``, ``weights`` or ``biases`` given as a
            list; ``biases`` None; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call.
        ValueError: ``num_sampled``, ``num_classes`` or ``num_true`` below 1; shapes that do not
            fit (``inputs`` not ``[B, D]``, ``labels`` not ``[B, num_true]``, ``weights`` rows not
            of width ``D``, fewer than ``num_classes`` rows, shard sizes off the layout, an unknown
            ``partition_strategy`` with more than one shard); ``sampled_values`` not a triple (a
            ``ValueError`` that is also a ``TypeError``), with no candidates, or with counts that
            do not broadcast to ``[B, T]`` and ``[S]``; with ``shard_group``: ``seed=None`` without
            ``sampled_values``, a shard that is not this rank's size, or fewer classes than ranks;
            ``num_sampled > num_classes`` for the default sampler; an int seed outside ``[0,
            2**64)`` or a key not of two 32-bit words; an unknown ``backend``. Also, where the
            backend reads values on the host (NumPy, CPU tensors): ids outside ``[0, num_classes)``
            and expected counts not finite and > 0; elsewhere the framework reports those checks
            its way (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: Under TensorFlow's XLA (``tf.function(jit_compile=True)``) with its value
            checks on, a call that needs a value check; a :class:`~multisampled.Generator` seed
            whose ``2**32`` calls are used up; a torch ``shard_group`` before
            ``torch.distributed.init_process_group``.
    """
    return _losses.nce_loss(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true=num_true,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_accidental_hits,
        name=name,
        seed=seed,
        partition_strategy=partition_strategy,
        backend=backend,
        shard_group=shard_group,
    )
