"""Write ``tf_cases.json``: golden outputs of the real TensorFlow's sampled losses and samplers.

Run with the project's environment (it needs ``tensorflow``)::

    python conformance/golden/make_tf_golden.py            # writes beside this script
    python conformance/golden/make_tf_golden.py OUT.json

Everything is seeded, so a rerun with the same TensorFlow gives the same file.

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

import json
import os
import platform
import sys
import tempfile

import numpy as np
import tensorflow as tf

try:  # private helper: recorded when available
    from tensorflow.python.ops.nn_impl import _compute_sampled_logits
except ImportError:  # pragma: no cover - depends on the TF version
    _compute_sampled_logits = None

SEED = 20241123
HERE = os.path.dirname(os.path.abspath(__file__))


def _floats(x):
    return np.asarray(x, dtype=np.float64).tolist()


def _ints(x):
    return np.asarray(x, dtype=np.int64).tolist()


def _dense(g, like):
    if g is None:
        return np.zeros(like.shape, like.dtype.as_numpy_dtype)
    return tf.convert_to_tensor(g).numpy()


def _shard_layout(num_classes, num_shards, strategy):
    """Global ids held by each shard, as TF's lookup expects them (section 6)."""
    if strategy == "mod":
        return [list(range(p, num_classes, num_shards)) for p in range(num_shards)]
    q, r = divmod(num_classes, num_shards)
    out, start = [], 0
    for p in range(num_shards):
        size = q + 1 if p < r else q
        out.append(list(range(start, start + size)))
        start += size
    return out


def loss_case(
    rng,
    name,
    kind,
    dtype,
    *,
    batch,
    dim,
    num_classes,
    num_true,
    num_sampled,
    remove_accidental_hits,
    num_shards=1,
    partition_strategy="div",
    candidates=None,
    labels=None,
    sampler_seed=None,
    force_hits=0,
):
    np_dtype = np.dtype(dtype)
    weights = (rng.standard_normal((num_classes, dim)) * 0.7).astype(np_dtype)
    biases = (rng.standard_normal(num_classes) * 0.3).astype(np_dtype)
    inputs = rng.standard_normal((batch, dim)).astype(np_dtype)
    upstream = rng.uniform(0.5, 1.5, batch).astype(np_dtype)
    if labels is None:
        labels = rng.integers(0, num_classes, (batch, num_true))
    labels = np.asarray(labels, dtype=np.int64)

    if candidates is None:
        # candidates and expected counts from the real default sampler
        cand, tec, sec = tf.random.log_uniform_candidate_sampler(
            true_classes=tf.constant(labels), num_true=num_true, num_sampled=num_sampled,
            unique=True, range_max=num_classes, seed=sampler_seed,
        )
        candidates = cand.numpy()
        true_count = tec.numpy().astype(np_dtype)
        sampled_count = sec.numpy().astype(np_dtype)
    else:
        candidates = np.asarray(candidates, dtype=np.int64)
        true_count = rng.uniform(0.05, 1.5, (batch, num_true)).astype(np_dtype)
        sampled_count = rng.uniform(0.05, 1.5, candidates.shape[0]).astype(np_dtype)
    # plant accidental hits: make some rows' labels equal to sampled candidates
    for h in range(force_hits):
        row = h % batch
        labels[row, h % num_true] = candidates[(2 * h + 1) % candidates.shape[0]]

    sharded = num_shards > 1
    if sharded:
        layout = _shard_layout(num_classes, num_shards, partition_strategy)
        w_arg = [tf.constant(weights[ids]) for ids in layout]
        b_arg = [tf.constant(biases[ids]) for ids in layout]
        watched = w_arg + b_arg
    else:
        w_arg = tf.constant(weights)
        b_arg = tf.constant(biases)
        watched = [w_arg, b_arg]
    x = tf.constant(inputs)
    sampled_values = (tf.constant(candidates), tf.constant(true_count), tf.constant(sampled_count))
    common = dict(
        weights=w_arg, biases=b_arg, labels=tf.constant(labels), inputs=x,
        num_sampled=num_sampled, num_classes=num_classes, num_true=num_true,
        sampled_values=sampled_values, remove_accidental_hits=remove_accidental_hits,
    )
    fn = {
        "sampled_softmax_loss": tf.nn.sampled_softmax_loss,
        "sampled_softmax_loss_v1": tf.compat.v1.nn.sampled_softmax_loss,
        "nce_loss": tf.nn.nce_loss,
        "nce_loss_v1": tf.compat.v1.nn.nce_loss,
    }[kind]
    if kind.endswith("_v1"):
        common["partition_strategy"] = partition_strategy
    else:
        assert not sharded and partition_strategy == "div"
    with tf.GradientTape() as tape:
        tape.watch(watched + [x])
        loss = fn(**common)
        total = tf.reduce_sum(tf.constant(upstream) * loss)
    grads = tape.gradient(total, watched + [x])
    grads = [_dense(g, v) for g, v in zip(grads, watched + [x])]
    if sharded:
        g_w = [_floats(g) for g in grads[:num_shards]]
        g_b = [_floats(g) for g in grads[num_shards : 2 * num_shards]]
        in_w = [_floats(w.numpy()) for w in w_arg]
        in_b = [_floats(b.numpy()) for b in b_arg]
    else:
        g_w, g_b = _floats(grads[0]), _floats(grads[1])
        in_w, in_b = _floats(weights), _floats(biases)

    outputs = {"loss": _floats(loss.numpy())}
    if _compute_sampled_logits is not None:
        logits, out_labels = _compute_sampled_logits(
            subtract_log_q=True, partition_strategy=partition_strategy, **common_no_strategy(common)
        )
        outputs["sampled_logits"] = _floats(logits.numpy())
        outputs["sampled_labels"] = _floats(out_labels.numpy())
    for value in outputs["loss"]:
        assert np.isfinite(value), (name, outputs["loss"])
    return {
        "name": name,
        "kind": kind,
        "dtype": dtype,
        "params": {
            "num_true": num_true,
            "num_sampled": num_sampled,
            "num_classes": num_classes,
            "remove_accidental_hits": remove_accidental_hits,
            "partition_strategy": partition_strategy,
        },
        "sharded": sharded,
        "inputs": {
            "weights": in_w,
            "biases": in_b,
            "labels": _ints(labels),
            "inputs": _floats(inputs),
            "upstream": _floats(upstream),
        },
        "sampled_values": {
            "candidates": _ints(candidates),
            "true_expected_count": _floats(true_count),
            "sampled_expected_count": _floats(sampled_count),
        },
        "outputs": outputs,
        "grads": {"weights": g_w, "biases": g_b, "inputs": _floats(grads[-1])},
    }


def common_no_strategy(common):
    return {k: v for k, v in common.items() if k != "partition_strategy"}


def hits_case(name, true_classes, candidates):
    true_classes = np.asarray(true_classes, dtype=np.int64)
    indices, ids, weights = tf.nn.compute_accidental_hits(
        tf.constant(true_classes), tf.constant(candidates, dtype=tf.int64),
        num_true=true_classes.shape[1],
    )
    return {
        "name": name,
        "kind": "compute_accidental_hits",
        "params": {"num_true": int(true_classes.shape[1])},
        "inputs": {"true_classes": _ints(true_classes), "sampled_candidates": _ints(candidates)},
        "outputs": {
            "indices": _ints(indices.numpy()),
            "ids": _ints(ids.numpy()),
            "weights": _floats(weights.numpy()),
        },
    }


def _sampler_outputs(result):
    cand, tec, sec = result
    return {
        "candidates": _ints(cand.numpy()),
        "true_expected_count": _floats(tec.numpy()),
        "sampled_expected_count": _floats(sec.numpy()),
    }


def sampler_case(name, kind, true_classes, **params):
    true_classes = np.asarray(true_classes, dtype=np.int64)
    fn = getattr(tf.random, kind)
    tf_params = dict(params)
    vocab_lines = tf_params.pop("vocab_lines", None)
    tmp = None
    if vocab_lines is not None:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        tmp.write("\n".join(vocab_lines) + "\n")
        tmp.close()
        tf_params["vocab_file"] = tmp.name
    try:
        # a fresh tf.function gives a fresh kernel instance (samplers keep state per kernel)
        run = tf.function(lambda t: fn(true_classes=t, **tf_params))
        outputs = _sampler_outputs(run(tf.constant(true_classes)))
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    return {
        "name": name,
        "kind": kind,
        "params": params,
        "inputs": {"true_classes": _ints(true_classes)},
        "outputs": outputs,
    }


def learned_unigram_case(name, batches, **params):
    run = tf.function(
        lambda t: tf.random.learned_unigram_candidate_sampler(true_classes=t, **params)
    )
    calls = []
    for batch in batches:
        batch = np.asarray(batch, dtype=np.int64)
        calls.append(
            {"true_classes": _ints(batch), "outputs": _sampler_outputs(run(tf.constant(batch)))}
        )
    return {
        "name": name,
        "kind": "learned_unigram_candidate_sampler",
        "params": params,
        "calls": calls,
    }


def build_cases():
    rng = np.random.default_rng(SEED)
    cases = []
    add = cases.append

    # --- tf.nn.sampled_softmax_loss (v2, "div", single tensor)
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

    # --- tf.compat.v1.nn.sampled_softmax_loss with shard lists
    shard_specs = [
        ("float32", "mod", 3, 10, 1),
        ("float32", "div", 3, 11, 2),
        ("float64", "mod", 4, 13, 3),
        ("float64", "div", 5, 13, 1),
        ("float32", "div", 4, 14, 3),
        ("float64", "mod", 2, 7, 2),
    ]
    for k, (dtype, strategy, shards, classes, num_true) in enumerate(shard_specs):
        add(loss_case(
            rng, f"ssl_v1_{dtype}_{strategy}{shards}_C{classes}_T{num_true}",
            "sampled_softmax_loss_v1", dtype,
            batch=3, dim=4, num_classes=classes, num_true=num_true, num_sampled=5,
            remove_accidental_hits=True, num_shards=shards, partition_strategy=strategy,
            sampler_seed=200 + k, force_hits=2,
        ))
    add(loss_case(
        rng, "ssl_v1_float32_single_tensor_mod", "sampled_softmax_loss_v1", "float32",
        batch=3, dim=4, num_classes=8, num_true=2, num_sampled=4,
        remove_accidental_hits=True, partition_strategy="mod", sampler_seed=300, force_hits=1,
    ))

    # --- nce_loss
    nce_specs = [
        ("float32", 1, False), ("float32", 2, True), ("float64", 3, False), ("float64", 1, True),
    ]
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

    # --- compute_accidental_hits
    add(hits_case("hits_T3_duplicates_and_repeats",
                  [[3, 3, 1], [7, 0, 7], [2, 4, 5], [1, 9, 3]], [3, 7, 1, 3, 9, 7, 8]))
    add(hits_case("hits_T1_none", [[0], [1], [2]], [5, 6, 7, 8]))
    add(hits_case("hits_T2_many", [[1, 2], [2, 1], [4, 4], [0, 3]], [0, 1, 2, 3, 4]))

    # --- samplers
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
    for k, (name, params, local_size) in enumerate(fixed_specs):
        params = dict(params)
        params.setdefault("distortion", 1.0)
        params.setdefault("num_reserved_ids", 0)
        params.setdefault("num_shards", 1)
        params.setdefault("shard", 0)
        add(sampler_case(
            name, "fixed_unigram_candidate_sampler",
            [[local_id] for local_id in range(local_size)],
            num_true=1, num_sampled=4, unique=False, range_max=local_size, seed=20 + k, **params,
        ))
    add(learned_unigram_case(
        "learned_unigram_two_calls", [[[0], [1], [1], [3]], [[2], [2], [5], [1]], [[4], [4], [4], [0]]],
        num_true=1, num_sampled=4, unique=False, range_max=6, seed=3,
    ))
    return cases


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(HERE, "tf_cases.json")
    doc = {
        "framework": "tensorflow",
        "tensorflow_version": tf.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "generator": "conformance/golden/make_tf_golden.py",
        "seed": SEED,
        "cases": build_cases(),
    }
    with open(out, "w") as f:
        json.dump(doc, f, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(doc['cases'])} cases to {out} (tensorflow {tf.__version__})")


if __name__ == "__main__":
    main(sys.argv)
