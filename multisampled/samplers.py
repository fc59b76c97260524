"""TensorFlow's candidate samplers (``tf.random.*_candidate_sampler``), on any Array API backend.

Each sampler draws ONE set of ``num_sampled`` candidates shared by the whole batch and returns
``CandidateSamples(sampled_candidates [S] int64, true_expected_count [B, T] float32,
sampled_expected_count [S] float32)`` (SEMANTICS.md 5). Base distributions
(:mod:`multisampled._distributions`), unique sampling with rejection, ``num_tries`` and the
expected-count formula (:mod:`multisampled._unique`) follow TensorFlow's kernels exactly; the
random numbers are counter-based (Threefry, integer-only mapping to classes), so a seed or key
gives bit-identical candidates on every backend and device, but not TensorFlow's candidates
(TensorFlow uses Philox with its own mapping). ``seed`` takes a key, None, an int or a
Generator (:mod:`multisampled._seeds`); under ``jax.jit``, ``tf.function`` and
``torch.compile(fullgraph=True)`` it must be a key.

This module is where users import the samplers from. It holds the samplers of fixed
distributions (uniform, log-uniform, fixed unigram, all classes); the learned unigram sampler,
which keeps state, is :mod:`multisampled._learned`, and the steps every sampler shares (TF's
argument checks, the draw and the expected counts) are :mod:`multisampled._sampling`.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Optional, Sequence, Union

from . import _distributions as dists
from . import _rng, _seeds, _vocab
from ._checks import check_dense, check_int_in
from ._context import context
from ._docs import fill
from ._guard import public
from ._learned import (
    LearnedUnigramSampler,
    LearnedUnigramState,
    learned_unigram_candidate_sampler,
    learned_unigram_state,
)
from ._sampling import (
    INT32_MAX,
    CandidateSamples,
    check_counts,
    check_unigram_range,
    labels_for,
    run,
)
from ._types import Array, Seed

__all__ = [
    "CandidateSamples",
    "LearnedUnigramSampler",
    "LearnedUnigramState",
    "all_candidate_sampler",
    "fixed_unigram_candidate_sampler",
    "learned_unigram_candidate_sampler",
    "learned_unigram_state",
    "log_uniform_candidate_sampler",
    "uniform_candidate_sampler",
]


# --------------------------------------------------------------------------- public samplers


@public
@fill
def uniform_candidate_sampler(true_classes: Array, num_true: int, num_sampled: int,
                              unique: bool, range_max: int, seed: Optional[Seed] = None,
                              name: Optional[str] = None, *,
                              backend: Optional[str] = None) -> CandidateSamples:
    """``tf.random.uniform_candidate_sampler``: classes uniform in ``[0, range_max)``.

    ``P(k) = 1/range_max``. Returns ``CandidateSamples(sampled_candidates [S] int64,
    true_expected_count [B, num_true] float32, sampled_expected_count [S] float32)``.
    ``seed``: a key (an integer array of two 32-bit words, or a JAX key: the candidates are a
    pure function of it, also under ``jax.jit``/``tf.function``/``torch.compile``), None
    (fresh randomness), an int (the process-wide stream of that seed on this backend, shared
    by all samplers: reproducible across runs, different on each call) or a
    :class:`multisampled.Generator`. ``name`` is accepted and ignored.

    Args:
        true_classes: {sampler_true_classes}
        num_true: {sampler_num_true}
        num_sampled: {sampler_num_sampled}
        unique: {unique}
        range_max: The number of classes ``R`` (>= 1); candidates lie in ``[0, R)``.
        seed: {sampler_seed}
        name: {op_name}
        backend: {backend}

    Returns:
        {candidate_samples}

    Raises:
        TypeError: {sampler_types}; {bad_seed}.
        ValueError: {sampler_values}. {labels_on_host}
        ImportError: {import_error}
        RuntimeError: {runtime_errors}.
    """
    num_true, num_sampled, unique, range_max = check_counts(
        num_true, num_sampled, unique, range_max)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    tc = labels_for(ctx, true_classes, num_true, range_max, "uniform_candidate_sampler")
    return run(ctx, dists.Uniform(range_max), tc, num_sampled, unique, seed)


@public
@fill
def log_uniform_candidate_sampler(true_classes: Array, num_true: int, num_sampled: int,
                                  unique: bool, range_max: int, seed: Optional[Seed] = None,
                                  name: Optional[str] = None, *,
                                  backend: Optional[str] = None) -> CandidateSamples:
    """``tf.random.log_uniform_candidate_sampler``: Zipfian classes in ``[0, range_max)``.

    ``P(k) = ln((k+2)/(k+1)) / ln(range_max+1)`` (float64, returned as float32); suits class ids
    sorted by decreasing frequency. Returns and ``seed`` as :func:`uniform_candidate_sampler`.
    Builds (once per backend and device) a table of ``12 * range_max`` bytes.

    Args:
        true_classes: {sampler_true_classes}
        num_true: {sampler_num_true}
        num_sampled: {sampler_num_sampled}
        unique: {unique}
        range_max: The number of classes ``R`` (>= 1); candidates lie in ``[0, R)``.
        seed: {sampler_seed}
        name: {op_name}
        backend: {backend}

    Returns:
        {candidate_samples}

    Raises:
        TypeError: {sampler_types}; {bad_seed}.
        ValueError: {sampler_values}. {labels_on_host}
        ImportError: {import_error}
        RuntimeError: {runtime_errors}.
    """
    num_true, num_sampled, unique, range_max = check_counts(
        num_true, num_sampled, unique, range_max)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    tc = labels_for(ctx, true_classes, num_true, range_max, "log_uniform_candidate_sampler")
    return run(ctx, dists.log_uniform(ctx, range_max), tc, num_sampled, unique, seed)


# --------------------------------------------------------------------------- fixed unigram


def fixed_unigram_plan(backend_name: str, device: Any, word: str, range_max: int,
                       vocab_file: str, distortion: float, num_reserved_ids: int,
                       num_shards: int, shard: int, unigrams: Union[Sequence[float], Array],
                       ) -> tuple[tuple[Array, ...], Array, int, int, tuple]:
    """The fields of the fixed-unigram :class:`~multisampled._distributions.Table`: host work
    of constants (the weights read once, the tables built and cached), which tracing compilers
    evaluate at trace time (:data:`multisampled.kernels.HOST_WORK`).

    Args:
        backend_name: The registered name of the backend whose arrays are built.
        device: The device of the tables, as the backend's ``asarray`` takes it.
        word: The word dtype's name: ``"int64"`` or ``"uint32"``.
        range_max: The number of classes ``R``.
        vocab_file: A vocabulary file's path, or ``""`` to use ``unigrams``.
        distortion: The power each weight is raised to.
        num_reserved_ids: The ids before the file's or list's entries (weight 0).
        num_shards: The number of shards the classes are split into.
        shard: This shard's index in ``[0, num_shards)``.
        unigrams: The weights (host floats), or empty to read ``vocab_file``.

    Returns:
        ``(tables, p, range, support, key)``: the threshold tables, the float32 ``[R]``
        probabilities, ``R``, the classes of positive probability and the table's key.

    Raises:
        TypeError: ``unigrams`` not a sequence of floats; ``backend_name`` not a str.
        ValueError: Both or neither of ``vocab_file`` and ``unigrams`` given; ``unigrams`` not
            flat; weights not finite and >= 0, not finite after ``distortion``, or of a float32
            total that is not positive and finite; ``range_max`` not the number of weights of
            this shard; a line of ``vocab_file`` without a float weight; no backend registered
            as ``backend_name``.
        IsADirectoryError: ``vocab_file`` is a directory.
        FileNotFoundError: ``vocab_file`` cannot be read.
        ImportError: The backend is registered but its framework is not installed.
    """
    unigrams = _vocab.unigram_array(unigrams)
    n_unigrams = unigrams.shape[0]
    if not vocab_file and n_unigrams == 0:
        raise ValueError("Must provide either vocab_file or unigrams: both are empty")
    if vocab_file and n_unigrams:
        raise ValueError(
            f"Must only provide one of vocab_file and unigrams: got vocab_file={vocab_file!r} "
            f"and {n_unigrams} unigrams"
        )
    args = (range_max, vocab_file, distortion, num_reserved_ids, num_shards, shard, unigrams)
    key = ("fixed_unigram", range_max, distortion, num_reserved_ids, num_shards, shard,
           _vocab.source_key(vocab_file, unigrams))
    dists.register_builder(key, lambda: dists.fixed_unigram_host(
        _vocab.fixed_unigram_weights(*args)))
    tables, p, range_, support = dists.table_plan(backend_name, device, key, word)
    return tables, p, range_, support, key


@public
@fill
def fixed_unigram_candidate_sampler(
    true_classes: Array, num_true: int, num_sampled: int, unique: bool, range_max: int,
    vocab_file: Union[str, os.PathLike, None] = "", distortion: float = 1.0,
    num_reserved_ids: int = 0, num_shards: int = 1, shard: int = 0,
    unigrams: Union[Sequence[float], Array] = (), seed: Optional[Seed] = None,
    name: Optional[str] = None, *, backend: Optional[str] = None,
) -> CandidateSamples:
    """``tf.random.fixed_unigram_candidate_sampler``: classes by fixed weights.

    Weights come from ``unigrams`` or from ``vocab_file`` (CSV-like: the last comma field of each
    non-empty line), exactly one of the two. ``num_reserved_ids`` leading ids get weight 0; with
    ``num_shards > 1`` only ids with ``id % num_shards == shard`` are kept, and the running id of
    loaded entries starts at the number of reserved ids of THIS shard (TensorFlow's quirk). Each
    weight is raised to ``distortion``. ``range_max`` must equal the number of kept weights, and
    the candidates are shard-local indices in ``[0, range_max)``. ``P(k) = w[k] / sum(w)`` in
    float32. Returns and ``seed`` as :func:`uniform_candidate_sampler`; the weights are read on
    the host once (under a compiler, at trace time: under ``torch.compile`` pass ``unigrams``
    as a list).

    Args:
        true_classes: {sampler_true_classes}
        num_true: {sampler_num_true}
        num_sampled: {sampler_num_sampled}
        unique: {unique}
        range_max: The number of kept weights ``R`` (in ``[1, 2**31 - 1)``).
        vocab_file: A vocabulary file's path (an empty one or None: none).
        distortion: The finite power each weight is raised to.
        num_reserved_ids: Leading ids of weight 0 (>= 0).
        num_shards: The number of shards of the vocabulary (>= 1).
        shard: This shard's index, in ``[0, num_shards)``.
        unigrams: The classes' weights (a sequence of floats or a 1-D array), finite and >= 0.
        seed: {sampler_seed}
        name: {op_name}
        backend: {backend}

    Returns:
        {candidate_samples}

    Raises:
        TypeError: {sampler_types}; {bad_seed}; ``distortion`` not a real number, ``vocab_file``
            not a path, ``unigrams`` not a sequence of floats.
        ValueError: {sampler_values}; ``range_max >= 2**31 - 1`` or not the number of kept
            weights; ``shard`` or ``num_reserved_ids`` out of range, ``distortion`` not finite;
            both or neither of ``vocab_file`` and ``unigrams``; a weight negative, not finite, or
            not finite after ``distortion``; a vocabulary line whose last field is not a number;
            ``unique=True`` with fewer positive weights than ``num_sampled``. {labels_on_host}
        ImportError: {import_error}
        RuntimeError: {runtime_errors}.
        FileNotFoundError: ``vocab_file`` cannot be read.
        IsADirectoryError: ``vocab_file`` is a directory.
    """
    num_true, num_sampled, unique, range_max = check_counts(
        num_true, num_sampled, unique, range_max)
    check_unigram_range(range_max)
    num_reserved_ids = check_int_in("num_reserved_ids", num_reserved_ids, 0, INT32_MAX)
    num_shards = check_int_in("num_shards", num_shards, 1, INT32_MAX)
    shard = check_int_in("shard", shard, 0, INT32_MAX)
    if shard >= num_shards:
        raise ValueError(f"shard must be in [0, num_shards={num_shards}), got {shard}")
    if isinstance(distortion, bool) or not isinstance(distortion, numbers.Real):
        raise TypeError(
            f"distortion must be a float, got {distortion!r} of type {type(distortion).__name__}"
        )
    if not math.isfinite(float(distortion)):
        raise ValueError(f"distortion must be a finite float, got {distortion}")
    if vocab_file is None:
        vocab_file = ""
    if not isinstance(vocab_file, (str, os.PathLike)):
        raise TypeError(
            f"vocab_file must be a path (str), got {vocab_file!r} of type "
            f"{type(vocab_file).__name__}"
        )
    vocab_file = os.fspath(vocab_file)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    tc = labels_for(ctx, true_classes, num_true, range_max, "fixed_unigram_candidate_sampler")
    word = "int64" if _rng.word_dtype(ctx) == ctx.xp.int64 else "uint32"
    plan = fixed_unigram_plan(ctx.backend.name, dists.resolved_device(ctx), word, range_max,
                              vocab_file, float(distortion), num_reserved_ids, num_shards, shard,
                              unigrams)
    dist = dists.Table(*plan)
    if unique and dist.support < num_sampled:
        raise ValueError(
            f"unique=True needs num_sampled={num_sampled} distinct classes but only "
            f"{dist.support} classes of range_max={range_max} have a positive weight "
            "(TensorFlow would loop until it aborts)"
        )
    return run(ctx, dist, tc, num_sampled, unique, seed)

# --------------------------------------------------------------------------- all classes


@public
@fill
def all_candidate_sampler(true_classes: Array, num_true: int, num_sampled: int, unique: bool,
                          seed: Optional[Seed] = None, name: Optional[str] = None, *,
                          backend: Optional[str] = None) -> CandidateSamples:
    """``tf.random.all_candidate_sampler``: every class ``0 .. num_sampled-1``, in order.

    Every expected count is 1.0; ``unique`` and ``seed`` are validated and otherwise ignored.
    True classes must lie in ``[0, num_sampled)`` (recent TensorFlow kernels check this).
    Useful as an oracle: the sampled softmax over all classes equals the full softmax.

    Args:
        true_classes: ``[B, num_true]`` integer labels in ``[0, num_sampled)``.
        num_true: {sampler_num_true}
        num_sampled: The number of classes, all of them returned.
        unique: Validated, ignored.
        seed: Validated, ignored. {sampler_seed}
        name: {op_name}
        backend: {backend}

    Returns:
        ``CandidateSamples(arange(num_sampled), ones [B, num_true], ones [num_sampled])``: the
        candidates in the index dtype, float32 counts.

    Raises:
        TypeError: {sampler_types}; a seed of another type.
        ValueError: {sampler_counts}; ``true_classes`` not ``[B, num_true]``; an int seed outside
            ``[0, 2**64)``; an unknown ``backend``. {labels_on_host}
        ImportError: {import_error}
    """
    num_true, num_sampled, unique, _ = check_counts(num_true, num_sampled, unique)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    _seeds.check_seed(ctx, seed)
    tc = labels_for(ctx, true_classes, num_true, num_sampled, "all_candidate_sampler")
    xp = ctx.xp
    candidates = xp.arange(num_sampled, dtype=ctx.index_dtype, device=ctx.device)
    ones = xp.ones((num_sampled,), dtype=xp.float32, device=ctx.device)
    return CandidateSamples(candidates, xp.ones_like(tc, dtype=xp.float32), ones)
