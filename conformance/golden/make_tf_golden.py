"""Write ``tf_cases.json``: golden outputs of the real TensorFlow's sampled losses and samplers.

Run with the project's environment (it needs ``tensorflow``)::

    python conformance/golden/make_tf_golden.py            # writes beside this script
    python conformance/golden/make_tf_golden.py OUT.json

Everything is seeded, so a rerun with the same TensorFlow gives the same file. The cases are
listed here; ``_tf_record.py`` runs each on TensorFlow and records it.

Schema (JSON; every float is written with Python's ``repr``, so it round-trips exactly; float32
data are stored as the exact float64 value of each float32 number)::

    {
      "framework": "tensorflow", "tensorflow_version": str, "numpy_version": str,
      "python_version": str, "generator": "conformance/golden/make_tf_golden.py",
      "cases": [CASE, ...]
    }

Loss cases (``kind`` in ``sampled_softmax_loss`` (``tf.nn``, v2), ``sampled_softmax_loss_v1``
(``tf.compat.v1.nn``), ``nce_loss`` (v2), ``nce_loss_v1``)::

    {
      "name": str, "kind": str, "dtype": "float32" | "float64",
      "params": {"num_true": T, "num_sampled": S, "num_classes": C,
                 "remove_accidental_hits": bool, "partition_strategy": "div" | "mod"},
      "sharded": bool,              # True: weights / biases / their grads are lists of shards
      "inputs": {"weights": [[...]] | [shard [[...]], ...], "biases": [...] | [shard [...], ...],
                 "labels": [[int]] (B x T), "inputs": [[...]] (B x D),
                 "upstream": [...] (B)},
      "sampled_values": {"candidates": [int] (S), "true_expected_count": [[...]] (B x T),
                         "sampled_expected_count": [...] (S)},
      "outputs": {"loss": [...] (B),
                  "sampled_logits": [[...]] (B x T+S),   # private _compute_sampled_logits,
                  "sampled_labels": [[...]] (B x T+S)},  # same arguments, subtract_log_q=True
      "grads": {"weights": like inputs.weights, "biases": like inputs.biases,
                "inputs": [[...]]}  # d sum(upstream * loss), IndexedSlices densified
    }

``partition_strategy`` is "div" for the v2 kinds (TF fixes it). Shards are laid out as the
strategy expects (section 6), unevenly where the class count does not divide. Candidates and
expected counts come from the real ``log_uniform_candidate_sampler`` (cast to float64 for float64
cases) or, in the duplicate-candidate cases, are chosen by hand with random counts; some labels
are then set equal to sampled candidates to plant accidental hits, so the recorded
``true_expected_count`` is input data, not necessarily the count of the final labels. ``sampled_logits`` is absent
when the private helper cannot be imported.

``compute_accidental_hits`` cases: ``inputs`` = ``{"true_classes": [[int]],
"sampled_candidates": [int]}``, ``params`` = ``{"num_true": T}``, ``outputs`` =
``{"indices": [int], "ids": [int], "weights": [float]}``.

Sampler cases (``kind`` in ``log_uniform_candidate_sampler``, ``uniform_candidate_sampler``,
``fixed_unigram_candidate_sampler``): ``params`` holds the Python keyword arguments (``num_true``,
``num_sampled``, ``unique``, ``range_max``, ``seed`` and for fixed unigram ``unigrams`` or
``vocab_lines`` (the lines of the vocabulary file that was written, one per line; an empty line is skipped
and a line outside the shard is never parsed), ``distortion``,
``num_reserved_ids``, ``num_shards``, ``shard``); ``inputs`` = ``{"true_classes": [[int]]}``;
``outputs`` = ``{"candidates", "true_expected_count", "sampled_expected_count"}`` (float32
values). For fixed unigram the true classes enumerate every shard-local id, so
``true_expected_count[k] / num_sampled`` is the local probability of ``k`` (``unique=False``).

``learned_unigram_candidate_sampler`` cases: ``params`` as above, ``calls`` =
``[{"true_classes": [[int]], "outputs": {...}}, ...]``, consecutive calls of one kernel.
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

from _output import write_golden
from _tf_record import hits_case, learned_unigram_case, loss_case, sampler_case

SEED = 20241123


def _softmax_v2_cases(rng):
    """``tf.nn.sampled_softmax_loss`` (v2, "div", single tensor)."""
    cases = []
    add = cases.append
    for dtype in ("float32", "float64"):
        for num_true in (1, 2, 3):
            add(loss_case(
                rng, f"ssl_v2_{dtype}_T{num_true}_sampler_hits", "sampled_softmax_loss", dtype,
                batch=4, dim=5, num_classes=20, num_true=num_true, num_sampled=6,
                remove_accidental_hits=True, sampler_seed=100 + num_true, force_hits=3,
            ))
    add(loss_case(
        rng, "ssl_v2_float32_T1_keep_hits", "sampled_softmax_loss", "float32",
        batch=3, dim=4, num_classes=12, num_true=1, num_sampled=5,
        remove_accidental_hits=False, sampler_seed=7, force_hits=2,
    ))
    add(loss_case(
        rng, "ssl_v2_float32_T2_duplicate_candidates", "sampled_softmax_loss", "float32",
        batch=4, dim=3, num_classes=10, num_true=2, num_sampled=6,
        remove_accidental_hits=True, candidates=[3, 7, 3, 1, 7, 9],
        labels=[[3, 0], [7, 7], [1, 3], [2, 4]],
    ))
    add(loss_case(
        rng, "ssl_v2_float64_T3_repeated_labels", "sampled_softmax_loss", "float64",
        batch=3, dim=4, num_classes=9, num_true=3, num_sampled=4,
        remove_accidental_hits=True, candidates=[5, 2, 8, 5],
        labels=[[5, 5, 1], [2, 2, 2], [0, 8, 5]],
    ))
    add(loss_case(
        rng, "ssl_v2_float64_T2_keep_hits_duplicates", "sampled_softmax_loss", "float64",
        batch=3, dim=4, num_classes=9, num_true=2, num_sampled=5,
        remove_accidental_hits=False, candidates=[4, 4, 0, 6, 1],
        labels=[[4, 1], [0, 0], [6, 3]],
    ))
    return cases


def _softmax_v1_cases(rng):
    """``tf.compat.v1.nn.sampled_softmax_loss`` with shard lists."""
    shard_specs = [
        ("float32", "mod", 3, 10, 1),
        ("float32", "div", 3, 11, 2),
        ("float64", "mod", 4, 13, 3),
        ("float64", "div", 5, 13, 1),
        ("float32", "div", 4, 14, 3),
        ("float64", "mod", 2, 7, 2),
    ]
    cases = []
    for k, (dtype, strategy, shards, classes, num_true) in enumerate(shard_specs):
        cases.append(loss_case(
            rng, f"ssl_v1_{dtype}_{strategy}{shards}_C{classes}_T{num_true}",
            "sampled_softmax_loss_v1", dtype,
            batch=3, dim=4, num_classes=classes, num_true=num_true, num_sampled=5,
            remove_accidental_hits=True, num_shards=shards, partition_strategy=strategy,
            sampler_seed=200 + k, force_hits=2,
        ))
    cases.append(loss_case(
        rng, "ssl_v1_float32_single_tensor_mod", "sampled_softmax_loss_v1", "float32",
        batch=3, dim=4, num_classes=8, num_true=2, num_sampled=4,
        remove_accidental_hits=True, partition_strategy="mod", sampler_seed=300, force_hits=1,
    ))
    return cases


def _nce_cases(rng):
    """``tf.nn.nce_loss`` and ``tf.compat.v1.nn.nce_loss``."""
    nce_specs = [
        ("float32", 1, False), ("float32", 2, True), ("float64", 3, False), ("float64", 1, True),
    ]
    cases = []
    add = cases.append
    for k, (dtype, num_true, hits) in enumerate(nce_specs):
        add(loss_case(
            rng, f"nce_v2_{dtype}_T{num_true}_remove{int(hits)}", "nce_loss", dtype,
            batch=4, dim=5, num_classes=15, num_true=num_true, num_sampled=5,
            remove_accidental_hits=hits, sampler_seed=400 + k, force_hits=2,
        ))
    add(loss_case(
        rng, "nce_v1_float32_mod3_T2_remove1", "nce_loss_v1", "float32",
        batch=3, dim=4, num_classes=10, num_true=2, num_sampled=4,
        remove_accidental_hits=True, num_shards=3, partition_strategy="mod",
        sampler_seed=410, force_hits=2,
    ))
    add(loss_case(
        rng, "nce_v1_float64_div4_T1_remove0", "nce_loss_v1", "float64",
        batch=3, dim=4, num_classes=11, num_true=1, num_sampled=4,
        remove_accidental_hits=False, num_shards=4, partition_strategy="div",
        sampler_seed=411, force_hits=1,
    ))
    add(loss_case(
        rng, "nce_v2_float64_T2_duplicate_candidates_remove1", "nce_loss", "float64",
        batch=3, dim=3, num_classes=8, num_true=2, num_sampled=5,
        remove_accidental_hits=True, candidates=[2, 6, 2, 0, 6],
        labels=[[2, 5], [6, 6], [1, 0]],
    ))
    return cases


def _hits_cases():
    """``tf.nn.compute_accidental_hits``."""
    return [
        hits_case("hits_T3_duplicates_and_repeats",
                  [[3, 3, 1], [7, 0, 7], [2, 4, 5], [1, 9, 3]], [3, 7, 1, 3, 9, 7, 8]),
        hits_case("hits_T1_none", [[0], [1], [2]], [5, 6, 7, 8]),
        hits_case("hits_T2_many", [[1, 2], [2, 1], [4, 4], [0, 3]], [0, 1, 2, 3, 4]),
    ]


def _log_uniform_and_uniform_cases():
    """The log-uniform sampler (with and without rejections, unique or not) and the uniform."""
    cases = []
    add = cases.append
    for seed in (1, 2, 3, 4, 5):
        add(sampler_case(
            f"log_uniform_R100000_S3_seed{seed}", "log_uniform_candidate_sampler",
            [[0, 17], [99999, 5], [1234, 3]],
            num_true=2, num_sampled=3, unique=True, range_max=100000, seed=seed,
        ))
    add(sampler_case(
        "log_uniform_R6_S4_unique_rejections", "log_uniform_candidate_sampler",
        [[0], [1], [2], [3], [4], [5]],
        num_true=1, num_sampled=4, unique=True, range_max=6, seed=11,
    ))
    add(sampler_case(
        "log_uniform_R10_S8_nonunique", "log_uniform_candidate_sampler",
        [[0, 9], [3, 4]], num_true=2, num_sampled=8, unique=False, range_max=10, seed=12,
    ))
    add(sampler_case(
        "uniform_R7_S5_nonunique", "uniform_candidate_sampler",
        [[0], [6]], num_true=1, num_sampled=5, unique=False, range_max=7, seed=13,
    ))
    return cases


def _unigram_cases():
    """The fixed-unigram sampler in five configurations, and one learned-unigram kernel."""
    fixed_specs = [
        ("fixed_unigram_shard1of2", dict(unigrams=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                                         num_shards=2, shard=1), 3),
        ("fixed_unigram_reserved2_shard1of2_quirk", dict(
            unigrams=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], num_reserved_ids=2, num_shards=2, shard=1), 4),
        ("fixed_unigram_reserved1_shard0of3_distortion05", dict(
            unigrams=[4.0, 9.0, 1.0, 16.0, 25.0, 2.0, 7.0], num_reserved_ids=1, num_shards=3,
            shard=0, distortion=0.5), 3),
        ("fixed_unigram_distortion0_zero_counts", dict(
            unigrams=[0.0, 3.0, 0.0, 5.0], num_reserved_ids=1, distortion=0.0), 5),
        ("fixed_unigram_vocab_file_shard0of2", dict(
            vocab_lines=["the,50", "junk,not-a-number", "", "a,b,7.5", "sat,2", "on,11"], num_shards=2,
            shard=0), 3),
    ]
    cases = []
    for k, (name, params, local_size) in enumerate(fixed_specs):
        params = dict(params)
        params.setdefault("distortion", 1.0)
        params.setdefault("num_reserved_ids", 0)
        params.setdefault("num_shards", 1)
        params.setdefault("shard", 0)
        cases.append(sampler_case(
            name, "fixed_unigram_candidate_sampler",
            [[local_id] for local_id in range(local_size)],
            num_true=1, num_sampled=4, unique=False, range_max=local_size, seed=20 + k, **params,
        ))
    cases.append(learned_unigram_case(
        "learned_unigram_two_calls", [[[0], [1], [1], [3]], [[2], [2], [5], [1]], [[4], [4], [4], [0]]],
        num_true=1, num_sampled=4, unique=False, range_max=6, seed=3,
    ))
    return cases


def build_cases():
    rng = np.random.default_rng(SEED)
    return (_softmax_v2_cases(rng) + _softmax_v1_cases(rng) + _nce_cases(rng) + _hits_cases()
            + _log_uniform_and_uniform_cases() + _unigram_cases())


def main(argv):
    write_golden(argv, file_name="tf_cases.json", framework="tensorflow",
                 version=tf.__version__, generator="conformance/golden/make_tf_golden.py",
                 seed=SEED, build_cases=build_cases)


if __name__ == "__main__":
    main(sys.argv)
