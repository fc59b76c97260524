"""How ``make_tf_golden.py`` runs one case on the real TensorFlow and records it: the losses
and their gradients, ``compute_accidental_hits``, and the candidate samplers. Each function
returns one case of the schema documented at the top of that script.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf

from _output import floats as _floats, ints as _ints

try:  # private helper: recorded when available
    from tensorflow.python.ops.nn_impl import _compute_sampled_logits
except ImportError:  # pragma: no cover - depends on the TF version
    _compute_sampled_logits = None


LOSSES = {
    "sampled_softmax_loss": tf.nn.sampled_softmax_loss,
    "sampled_softmax_loss_v1": tf.compat.v1.nn.sampled_softmax_loss,
    "nce_loss": tf.nn.nce_loss,
    "nce_loss_v1": tf.compat.v1.nn.nce_loss,
}


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


def _loss_data(rng, np_dtype, batch, dim, num_classes, num_true, labels):
    """``weights, biases, inputs, upstream, labels`` drawn from ``rng`` (labels unless given)."""
    weights = (rng.standard_normal((num_classes, dim)) * 0.7).astype(np_dtype)
    biases = (rng.standard_normal(num_classes) * 0.3).astype(np_dtype)
    inputs = rng.standard_normal((batch, dim)).astype(np_dtype)
    upstream = rng.uniform(0.5, 1.5, batch).astype(np_dtype)
    if labels is None:
        labels = rng.integers(0, num_classes, (batch, num_true))
    return weights, biases, inputs, upstream, np.asarray(labels, dtype=np.int64)


def _sampled_values(rng, np_dtype, labels, num_sampled, num_classes, candidates, sampler_seed):
    """``(candidates, true_count, sampled_count)``: the real default sampler's, or the given
    candidates with random counts."""
    batch, num_true = labels.shape
    if candidates is None:
        # candidates and expected counts from the real default sampler
        cand, tec, sec = tf.random.log_uniform_candidate_sampler(
            true_classes=tf.constant(labels), num_true=num_true, num_sampled=num_sampled,
            unique=True, range_max=num_classes, seed=sampler_seed,
        )
        return cand.numpy(), tec.numpy().astype(np_dtype), sec.numpy().astype(np_dtype)
    candidates = np.asarray(candidates, dtype=np.int64)
    true_count = rng.uniform(0.05, 1.5, (batch, num_true)).astype(np_dtype)
    sampled_count = rng.uniform(0.05, 1.5, candidates.shape[0]).astype(np_dtype)
    return candidates, true_count, sampled_count


def _plant_hits(labels, candidates, force_hits):
    """Make some rows' labels equal to sampled candidates (accidental hits), in place."""
    batch, num_true = labels.shape
    for h in range(force_hits):
        row = h % batch
        labels[row, h % num_true] = candidates[(2 * h + 1) % candidates.shape[0]]


def _tf_params(weights, biases, num_shards, partition_strategy):
    """``(weights, biases, watched)`` as TF arguments: tensors, or shard lists laid out for
    ``partition_strategy``; ``watched`` lists the tensors to differentiate."""
    if num_shards > 1:
        layout = _shard_layout(weights.shape[0], num_shards, partition_strategy)
        w_arg = [tf.constant(weights[ids]) for ids in layout]
        b_arg = [tf.constant(biases[ids]) for ids in layout]
        return w_arg, b_arg, w_arg + b_arg
    w_arg = tf.constant(weights)
    b_arg = tf.constant(biases)
    return w_arg, b_arg, [w_arg, b_arg]


def _loss_and_grads(kind, common, watched, x, upstream):
    """The loss ``kind`` on ``common`` and the dense gradients of ``sum(upstream * loss)``
    with respect to ``watched`` and then ``x``."""
    with tf.GradientTape() as tape:
        tape.watch(watched + [x])
        loss = LOSSES[kind](**common)
        total = tf.reduce_sum(tf.constant(upstream) * loss)
    grads = tape.gradient(total, watched + [x])
    return loss, [_dense(g, v) for g, v in zip(grads, watched + [x])]


def _recorded_params(sharded, num_shards, grads, w_arg, b_arg, weights, biases):
    """``(grad weights, grad biases, weights, biases)`` as JSON, per shard when ``sharded``."""
    if sharded:
        g_w = [_floats(g) for g in grads[:num_shards]]
        g_b = [_floats(g) for g in grads[num_shards : 2 * num_shards]]
        return g_w, g_b, [_floats(w.numpy()) for w in w_arg], [_floats(b.numpy()) for b in b_arg]
    return _floats(grads[0]), _floats(grads[1]), _floats(weights), _floats(biases)


def _loss_outputs(name, loss, common, partition_strategy):
    """The recorded loss, and the private ``_compute_sampled_logits`` for the same arguments."""
    outputs = {"loss": _floats(loss.numpy())}
    if _compute_sampled_logits is not None:
        logits, out_labels = _compute_sampled_logits(
            subtract_log_q=True, partition_strategy=partition_strategy, **common_no_strategy(common)
        )
        outputs["sampled_logits"] = _floats(logits.numpy())
        outputs["sampled_labels"] = _floats(out_labels.numpy())
    for value in outputs["loss"]:
        assert np.isfinite(value), (name, outputs["loss"])
    return outputs


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
    weights, biases, inputs, upstream, labels = _loss_data(
        rng, np_dtype, batch, dim, num_classes, num_true, labels)
    candidates, true_count, sampled_count = _sampled_values(
        rng, np_dtype, labels, num_sampled, num_classes, candidates, sampler_seed)
    _plant_hits(labels, candidates, force_hits)

    sharded = num_shards > 1
    w_arg, b_arg, watched = _tf_params(weights, biases, num_shards, partition_strategy)
    x = tf.constant(inputs)
    sampled_values = (tf.constant(candidates), tf.constant(true_count), tf.constant(sampled_count))
    common = dict(
        weights=w_arg, biases=b_arg, labels=tf.constant(labels), inputs=x,
        num_sampled=num_sampled, num_classes=num_classes, num_true=num_true,
        sampled_values=sampled_values, remove_accidental_hits=remove_accidental_hits,
    )
    if kind.endswith("_v1"):
        common["partition_strategy"] = partition_strategy
    else:
        assert not sharded and partition_strategy == "div"
    loss, grads = _loss_and_grads(kind, common, watched, x, upstream)
    g_w, g_b, in_w, in_b = _recorded_params(sharded, num_shards, grads, w_arg, b_arg, weights,
                                            biases)
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
        "outputs": _loss_outputs(name, loss, common, partition_strategy),
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
