"""Typed use of the public API; ``tests/test_typing.py`` runs mypy on it (it is not a test).

Every call below goes through an annotated signature: mypy checks the argument types (ints,
bools, strings, optionals) and that the results have the annotated types (arrays are ``Any``,
the alias :data:`multisampled._types.Array`). The variables are annotated with the types the
signatures promise, so a changed return annotation fails here.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

import multisampled as ms
from multisampled import CandidateSamples
from multisampled import layers
from multisampled.plugin import Backend


def draw(labels: np.ndarray, num_classes: int) -> CandidateSamples:
    return ms.log_uniform_candidate_sampler(labels, 1, 16, True, num_classes, seed=1)


def loss(weights: np.ndarray, biases: np.ndarray, labels: np.ndarray, inputs: np.ndarray) -> object:
    sampled = draw(labels, weights.shape[0])
    candidates = sampled.sampled_candidates
    out = ms.sampled_softmax_loss(
        weights, biases, labels, inputs, 16, weights.shape[0], sampled_values=sampled
    )
    return out, candidates


def tf_losses(weights: np.ndarray, biases: np.ndarray, labels: np.ndarray,
              inputs: np.ndarray) -> list[Any]:
    """The TF-named losses with their optional arguments, positional where TF has them."""
    c = weights.shape[0]
    pair: tuple[Any, Any] = ms.compute_sampled_logits(
        weights, biases, labels, inputs, 4, c, 1, None, True, False, "div", None, 7,
        backend="numpy", shard_group=None)
    logits, soft_labels = pair
    sharded = [weights[: c // 2], weights[c // 2:]]
    v2 = ms.sampled_softmax_loss(sharded, [biases[: c // 2], biases[c // 2:]], labels, inputs,
                                 4, c, 1, None, True, ms.Generator(3), "loss",
                                 partition_strategy="mod")
    nce = ms.nce_loss(weights, biases, labels, inputs, 4, c, remove_accidental_hits=True,
                      name=None, seed=np.array([0, 1], dtype=np.uint32))
    rank = ms.rank_sampled_softmax_loss(weights, biases, labels, inputs, 8, 4, c,
                                        resampling_temperature=0.5, seed=2)
    v1_softmax = ms.v1.sampled_softmax_loss(sharded, [biases[: c // 2], biases[c // 2:]],
                                            labels, inputs, 4, c, partition_strategy="mod",
                                            seed=None)
    v1_nce = ms.v1.nce_loss(weights, biases, labels, inputs, 4, c, 1, None, False, "div",
                            "nce", seed=5, backend=None)
    return [logits, soft_labels, v2, nce, rank, v1_softmax, v1_nce]


def paddle(logits: np.ndarray, label: np.ndarray) -> Any:
    samples = np.zeros((logits.shape[0], 3), dtype=np.int64)
    probs = np.full((logits.shape[0], 3), 0.5, dtype=np.float32)
    drawn = ms.sampled_softmax_with_cross_entropy(logits, label, 2, 1, True, seed=3)
    given = ms.sampled_softmax_with_cross_entropy(
        logits, label, 2, use_customized_samples=True, customized_samples=samples,
        customized_probabilities=probs)
    return drawn, given


def installed() -> list[str]:
    infos: list[ms.BackendInfo] = ms.backends()
    versions: dict[str, Optional[str]] = {info.name: info.version for info in infos}
    return [name for name, version in versions.items() if version is not None]


def describe(info: ms.BackendInfo) -> str:
    available: bool = info.available
    extra: str = info.extra
    plugin: str = info.plugin
    return f"{info.name} {available} {extra} {plugin}"


def selection() -> Iterator[str]:
    numpy_backend: Backend = ms.get_backend("numpy", source="backend")
    same: Backend = ms.get_backend(numpy_backend)
    from_env: Optional[str] = ms.env_backend_name()
    with ms.use_backend("numpy") as selected:
        chosen: Backend = selected
        yield chosen.name
    yield same.name
    if from_env is not None:
        yield from_env


def streams() -> ms.Generator:
    ms.reset_streams()
    return ms.Generator(7)


def backend_name(backend: Backend) -> str:
    return backend.name


def layer_logic(labels: Any, inputs: Any, weight: Any, bias: Any) -> Any:
    """The framework-free layer logic, as a front end calls it."""
    spec: layers.LayerSpec = layers.LayerSpec.checked(10, 4, 3, num_true=1, sampler="uniform")
    ctx = layers.context("numpy", None)
    key: tuple[int, int] = layers.seed_key(5)
    full: bool = layers.use_full_softmax(True, None)
    reduction: str = layers.check_reduction("mean")
    ignore: Optional[int] = layers.check_ignore_index(-100, spec.num_classes)
    x, y, lead = layers.positions(ctx, spec, inputs, labels)
    keep, y = layers.ignored_positions(ctx, y, ignore)
    y = layers.checked_labels(ctx, spec, y)
    sampled = layers.sample(ctx, spec, y, (key[0], key[1], 0))
    step = layers.sampled_softmax_step(
        ctx, spec, x, y, sampled, lambda ids: layers.rows(ctx, weight, bias, ids))
    evaluation = layers.full_softmax_loss(ctx, spec, x, weight, bias, y)
    chosen = evaluation if full else step
    return layers.reduce(ctx, chosen, keep, reduction, lead)


def samplers(labels: np.ndarray) -> list[CandidateSamples]:
    """Every sampler, with the learned unigram's two forms (one overload each)."""
    key = np.array([0, 3], dtype=np.uint32)
    uniform = ms.uniform_candidate_sampler(labels, 1, 4, True, 10, key, None, backend="numpy")
    fixed = ms.fixed_unigram_candidate_sampler(labels, 1, 4, False, 10, unigrams=[1.0] * 10,
                                               distortion=0.75, seed=ms.Generator(1))
    every = ms.all_candidate_sampler(labels, 1, 10, True, seed=None)
    stateful: CandidateSamples = ms.learned_unigram_candidate_sampler(labels, 1, 4, True, 10)
    state: ms.LearnedUnigramState = ms.learned_unigram_state(10, backend="numpy")
    pure: tuple[CandidateSamples, ms.LearnedUnigramState] = (
        ms.learned_unigram_candidate_sampler(labels, 1, 4, True, 10, seed=key, state=state))
    drawn, state = pure
    sampler = ms.LearnedUnigramSampler(10, backend=None)
    owned: CandidateSamples = sampler(labels, 1, 4, True, seed=2)
    counts: Any = sampler.counts
    total: int = sampler.total
    del counts, total
    return [uniform, fixed, every, stateful, drawn, owned]


VERSION: str = ms.__version__


def kernel_calls(xp: Any, x: Any, w: Any, b: Any, labels: Any, candidates: Any) -> Any:
    """The kernel API (:mod:`multisampled.kernels`), as a backend reuses it."""
    from multisampled import kernels

    x0, x1 = kernels.threefry2x32(xp, 0, 1, candidates, candidates)
    classes = kernels.uniform_int(xp, x0, x1, 10)
    hi, lo = kernels.cdf_thresholds(np.linspace(0.1, 1.0, 10))
    found = kernels.search_cdf(xp, x0, x1, hi, lo, index_dtype=None)
    block: int = kernels.block_size(np.ones(4), 4)
    first = kernels.first_new_positions(xp, classes, seen=None)
    distinct, num_tries = kernels.portable_first_distinct(xp, classes, 4, 10)
    counts = kernels.expected_count(xp, found, 4, num_tries)
    dtype = kernels.compute_dtype(xp, x.dtype)
    hits = kernels.hit_mask(xp, labels, candidates)
    last = kernels.last_occurrence(xp, candidates)
    true_logits, sampled_logits = kernels.sampled_logit_parts(
        xp, x, w, b, w, b, None, None, hits, 1)
    entropy = kernels.softmax_cross_entropy(xp, true_logits, sampled_logits)
    lse = kernels.logsumexp(xp, sampled_logits)
    terms = kernels.sigmoid_terms(xp, sampled_logits, 0.0, keep=None)
    nce = kernels.nce(xp, true_logits, sampled_logits)
    softmax = kernels.sampled_softmax(xp, x, w, b, w, b, None, None, None, 1)
    plan = kernels.table_plan("numpy", None, ("log_uniform", 10), "uint32")
    indices, ids, weights = ms.compute_accidental_hits(labels, candidates, 1, backend="numpy")
    flag: bool = layers.check_bool("flag", True)
    del block, first, distinct, counts, dtype, last, lse, terms, plan, ids, weights, flag
    return entropy + nce + softmax + indices
