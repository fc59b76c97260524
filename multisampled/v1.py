"""``tf.compat.v1.nn`` signatures: TF 1.x argument order and the "mod" partition default.

For a single (unsharded) ``weights`` array v1 and v2 give identical results; with a list of
shards "mod" and "div" read different rows (see ``multisampled._partition``). Pass
``partition_strategy="div"`` when the training loss must agree with a full softmax over the
concatenated shards.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _tf_losses as _losses
from ._docs import fill
from ._guard import public
from ._types import Array, ClassTable, SampledValues, Seed

__all__ = ["nce_loss", "sampled_softmax_loss"]


@public
@fill
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
        weights: {weights}
        biases: {biases}
        labels: {labels}
        inputs: {inputs}
        num_sampled: {loss_num_sampled}
        num_classes: {num_classes}
        num_true: {loss_num_true}
        sampled_values: {sampled_values}
        remove_accidental_hits: {softmax_hits}
        partition_strategy: {mod_layout}
        name: {op_name}
        seed: {loss_seed}
        backend: {backend}
        shard_group: {shard_group}

    Returns:
        {loss_returns}

    Raises:
        TypeError: {loss_types}
        ValueError: {loss_values}
        ImportError: {import_error}
        RuntimeError: {loss_runtime}
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
@fill
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
        weights: {weights}
        biases: {biases}
        labels: {labels}
        inputs: {inputs}
        num_sampled: {loss_num_sampled}
        num_classes: {num_classes}
        num_true: {loss_num_true}
        sampled_values: {sampled_values}
        remove_accidental_hits: {nce_hits}
        partition_strategy: {mod_layout}
        name: {op_name}
        seed: Keyword only. {loss_seed}
        backend: {backend}
        shard_group: {shard_group}

    Returns:
        {loss_returns}

    Raises:
        TypeError: {loss_types}
        ValueError: {loss_values}
        ImportError: {import_error}
        RuntimeError: {loss_runtime}
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
