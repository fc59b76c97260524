"""Fixed examples: one deterministic, known-good input of each problem shape, for tests that
need an input rather than a search.

Public through :mod:`multisampled.conformance.strategies`, which re-exports both.
"""

from __future__ import annotations

import numpy as np

from ._primitives import round_to_dtype


def example_problem(
    dtype: str = "float32",
    *,
    batch: int = 3,
    dim: int = 4,
    num_classes: int = 7,
    num_true: int = 2,
    num_sampled: int = 4,
    hits_in_every_row: bool = True,
    seed: int = 0,
) -> dict:
    """One deterministic :func:`~.strategies.sampled_softmax_problem`-shaped dict (unsharded
    weights).

    With ``hits_in_every_row`` the candidates contain the first label of every row, so each
    row has an accidental hit (needs ``num_sampled >= batch``).

    Args:
        dtype: The payloads' dtype name.
        batch: ``B``.
        dim: ``D``.
        num_classes: ``C``.
        num_true: ``T``.
        num_sampled: ``S`` distinct candidates (at most ``C``).
        hits_in_every_row: Whether the candidates hold every row's first label.
        seed: The NumPy generator's seed.

    Returns:
        The problem dict, with the keys of :func:`~.strategies.sampled_softmax_problem`.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=(batch, num_true), dtype=np.int64)
    sampled = rng.permutation(num_classes)[:num_sampled].astype(np.int64)
    if hits_in_every_row:
        firsts = list(dict.fromkeys(labels[:, 0].tolist()))
        others = [c for c in sampled.tolist() if c not in firsts]
        sampled = np.array((firsts + others)[:num_sampled], dtype=np.int64)
        if len(set(sampled.tolist())) < num_sampled:
            extra = [c for c in range(num_classes) if c not in sampled.tolist()]
            sampled = np.array(list(dict.fromkeys(sampled.tolist())) + extra, np.int64)[
                :num_sampled]
    full_w = round_to_dtype(rng.standard_normal((num_classes, dim)), dtype)
    full_b = round_to_dtype(rng.standard_normal(num_classes), dtype)
    inputs = round_to_dtype(rng.standard_normal((batch, dim)), dtype)
    class_ec = rng.uniform(0.05, 2.0, size=num_classes)
    hit_rows = sorted({i for i in range(batch) if set(labels[i].tolist()) & set(sampled.tolist())})
    return dict(
        weights=full_w,
        biases=full_b,
        full_weights=full_w,
        full_biases=full_b,
        labels=labels,
        inputs=inputs,
        sampled_candidates=sampled,
        true_expected_count=round_to_dtype(rng.uniform(0.05, 2.0, size=(batch, num_true)), dtype),
        sampled_expected_count=round_to_dtype(class_ec[sampled], dtype),
        num_sampled=num_sampled,
        num_classes=num_classes,
        num_true=num_true,
        partition_strategy="div",
        num_shards=1,
        dtype=dtype,
        unique=True,
        hit_rows=hit_rows,
    )


def example_paddle_problem(dtype: str = "float32", *, batch: int = 3, num_classes: int = 8,
                           num_samples: int = 4, seed: int = 0) -> dict:
    """One deterministic :func:`~.strategies.paddle_problem`-shaped dict with a hit in row 0
    (twice).

    Args:
        dtype: The payloads' dtype name.
        batch: ``N``.
        num_classes: ``K``.
        num_samples: ``S`` negatives per row (at most ``K``; the hit fills the first two).
        seed: The NumPy generator's seed.

    Returns:
        The problem dict, with the keys of :func:`~.strategies.paddle_problem` (``num_true`` 1).
    """
    rng = np.random.default_rng(seed)
    label = rng.integers(0, num_classes, size=(batch, 1), dtype=np.int64)
    negatives = np.stack([rng.permutation(num_classes)[:num_samples] for _ in range(batch)])
    negatives[0, :2] = label[0, 0]
    samples = np.concatenate([label, negatives.astype(np.int64)], axis=1)
    return dict(
        logits=round_to_dtype(rng.standard_normal((batch, num_classes)) * 2.0, dtype),
        label=label,
        num_samples=num_samples,
        num_true=1,
        customized_samples=samples,
        customized_probabilities=round_to_dtype(
            rng.uniform(0.02, 1.0, size=(batch, 1 + num_samples)), dtype),
        dtype=dtype,
        num_classes=num_classes,
    )
