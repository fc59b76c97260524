"""Write ``paddle_cases.json``: golden outputs of the real Paddle's sampled softmax layer.

``paddle.fluid.layers.sampled_softmax_with_cross_entropy`` exists only in Paddle 1.x (the
``sample_logits`` operator is gone from Paddle 2.6), which needs Python 3.8::

    ~/.pyenv/versions/3.8.18/bin/python -m venv /work/paddle-venv
    /work/paddle-venv/bin/pip install paddlepaddle==1.8.5 'numpy<1.20' 'protobuf<3.21'
    /work/paddle-venv/bin/python conformance/golden/make_paddle_golden.py        # beside this script
    /work/paddle-venv/bin/python conformance/golden/make_paddle_golden.py OUT.json

The layer runs in static-graph mode on the CPU; the gradient is that of
``sum(upstream * loss)`` with respect to ``logits`` (``fluid.gradients``). Everything is seeded.

Schema (JSON; floats written with Python's ``repr``; float32 data stored as the exact float64
value of each float32 number)::

    {
      "framework": "paddle", "paddle_version": str, "numpy_version": str,
      "python_version": str, "generator": "conformance/golden/make_paddle_golden.py",
      "cases": [CASE, ...]
    }

Layer cases (``kind`` = ``"sampled_softmax_with_cross_entropy"``)::

    {
      "name": str, "kind": str, "dtype": "float32" | "float64",
      "graph": "layer" | "layer_ops_typed_one_hot",
      "params": {"num_samples": S, "num_true": T, "remove_accidental_hits": bool,
                 "use_customized_samples": bool, "seed": int},
      "inputs": {"logits": [[...]] (N x K), "label": [[int]] (N x T),
                 "customized_samples": [[int]] (N x T+S),        # customized cases only
                 "customized_probabilities": [[...]] (N x T+S),  # customized cases only
                 "upstream": [[...]] (N x 1)},
      "outputs": {"loss": [[...]] (N x 1),
                  "samples": [[int]], "probabilities": [[...]],  # the op's Samples/Probabilities
                  "sampled_logits": [[...]]},                    # the op's SampledLogits
      "grads": {"logits": [[...]] (N x K)}                     # d sum(upstream * loss) / d logits
    }

``graph``: float32 cases run the layer itself. The layer FAILS for float64 logits in Paddle 1.8.5
(its ``one_hot`` emits float32 soft labels, which the float64 ``softmax_with_cross_entropy``
kernel rejects at run time; recorded in the ``layer_float64_error`` cases), so float64 cases run
the layer's three operators exactly as the layer appends them, except that ``one_hot`` is given
``dtype`` = the logits dtype (``layer_ops_typed_one_hot``).

In customized cases the label VALUES are deliberately not always equal to
``customized_samples[:, :T]``: Paddle ignores them (only the shape is used).

Failure cases record what the real layer does where it fails: ``kind`` = ``"num_true_error"``
(label ``[N, 2]``) and ``"layer_float64_error"`` (float64 logits, ``T = 1``)::

    {"name": str, "kind": str, "dtype": str,
     "params": {"num_samples": S, "num_true": T, "use_customized_samples": bool},
     "error": {"stage": "graph construction" | "run" | "none", "type": str, "message": str}}
"""

from __future__ import annotations

import sys

import numpy as np
import paddle
import paddle.fluid as fluid
from paddle.fluid.layer_helper import LayerHelper

from _output import floats as _floats, ints as _ints, write_golden

SEED = 20241123


def _layer_ops_with_typed_one_hot(logits, label, num_samples, num_true, remove_accidental_hits,
                                  customized_samples, customized_probabilities, seed):
    """The layer's own graph (loss.py, Paddle 1.8.5), except that ``one_hot`` is told to emit the
    logits dtype. The layer leaves it at float32, which fails for float64 logits."""
    helper = LayerHelper("sample_logits")
    customized = customized_samples is not None
    samples = customized_samples if customized else helper.create_variable_for_type_inference("int64")
    probabilities = (
        customized_probabilities if customized
        else helper.create_variable_for_type_inference(logits.dtype)
    )
    sampled_logits = helper.create_variable_for_type_inference(logits.dtype)
    sampled_label = helper.create_variable_for_type_inference("int64")
    sampled_softlabel = helper.create_variable_for_type_inference(logits.dtype)
    logits_dim = helper.create_variable_for_type_inference(logits.dtype)
    labels_dim = helper.create_variable_for_type_inference(label.type)
    helper.append_op(
        type="sample_logits",
        inputs={"Logits": logits, "Labels": label, "CustomizedSamples": customized_samples,
                "CustomizedProbabilities": customized_probabilities},
        outputs={"Samples": samples, "Probabilities": probabilities,
                 "SampledLabels": sampled_label, "SampledLogits": sampled_logits,
                 "LogitsDim": logits_dim, "LabelsDim": labels_dim},
        attrs={"use_customized_samples": customized, "uniq": True,
               "remove_accidental_hits": remove_accidental_hits, "num_samples": num_samples,
               "seed": seed},
    )
    loss = helper.create_variable_for_type_inference(logits.dtype)
    softmax = helper.create_variable_for_type_inference(logits.dtype)
    helper.append_op(
        type="one_hot", inputs={"X": sampled_label},
        attrs={"depth": num_samples + 1, "dtype": logits.dtype},
        outputs={"Out": sampled_softlabel},
    )
    helper.append_op(
        type="softmax_with_cross_entropy",
        inputs={"Logits": sampled_logits, "Label": sampled_softlabel},
        outputs={"Softmax": softmax, "Loss": loss},
        attrs={"soft_label": True, "ignore_index": False, "numeric_stable_mode": False},
    )
    return loss / num_true


def _build(dtype, n, k, t, s, remove, customized, seed, graph="layer"):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        logits = fluid.data(name="logits", shape=[n, k], dtype=dtype)
        logits.stop_gradient = False
        label = fluid.data(name="label", shape=[n, t], dtype="int64")
        upstream = fluid.data(name="upstream", shape=[n, 1], dtype=dtype)
        kwargs = {}
        if customized:
            kwargs = dict(
                use_customized_samples=True,
                customized_samples=fluid.data(name="cs", shape=[n, t + s], dtype="int64"),
                customized_probabilities=fluid.data(name="cp", shape=[n, t + s], dtype=dtype),
            )
        if graph == "layer":
            loss = fluid.layers.sampled_softmax_with_cross_entropy(
                logits, label, s, num_true=t, remove_accidental_hits=remove, seed=seed, **kwargs
            )
        else:
            loss = _layer_ops_with_typed_one_hot(
                logits, label, s, t, remove, kwargs.get("customized_samples"),
                kwargs.get("customized_probabilities"), seed,
            )
        total = fluid.layers.reduce_sum(loss * upstream)
        (grad,) = fluid.gradients([total], [logits])
    op = [o for o in main.global_block().ops if o.type == "sample_logits"][0]
    extra = [op.output(name)[0] for name in ("Samples", "Probabilities", "SampledLogits")]
    return main, startup, loss, grad, extra


def layer_case(name, dtype, logits, label, num_samples, *, remove=True, samples=None,
               probabilities=None, upstream=None, seed=0):
    logits = np.asarray(logits, dtype=dtype)
    label = np.asarray(label, dtype=np.int64)
    n, k = logits.shape
    t = label.shape[1]
    customized = samples is not None
    if upstream is None:
        upstream = np.ones((n, 1))
    upstream = np.asarray(upstream, dtype=dtype).reshape(n, 1)
    # the layer itself fails for float64 (its one_hot emits float32 labels; see the
    # "layer_float64_error" cases), so float64 runs the layer's ops with a typed one_hot
    graph = "layer" if dtype == "float32" else "layer_ops_typed_one_hot"
    main, startup, loss, grad, extra = _build(
        dtype, n, k, t, num_samples, remove, customized, seed, graph=graph
    )
    feed = {"logits": logits, "label": label, "upstream": upstream}
    inputs = {"logits": _floats(logits), "label": _ints(label)}
    if customized:
        samples = np.asarray(samples, dtype=np.int64)
        probabilities = np.asarray(probabilities, dtype=dtype)
        feed["cs"] = samples
        feed["cp"] = probabilities
        inputs["customized_samples"] = _ints(samples)
        inputs["customized_probabilities"] = _floats(probabilities)
    inputs["upstream"] = _floats(upstream)
    exe = fluid.Executor(fluid.CPUPlace())
    exe.run(startup)
    loss_v, grad_v, samples_v, probs_v, sampled_logits_v = exe.run(
        main, feed=feed, fetch_list=[loss, grad] + extra
    )
    for arr in (loss_v, grad_v, probs_v, sampled_logits_v):
        assert np.all(np.isfinite(arr)), (name, arr)
    return {
        "name": name,
        "kind": "sampled_softmax_with_cross_entropy",
        "dtype": dtype,
        "graph": graph,
        "params": {
            "num_samples": num_samples,
            "num_true": t,
            "remove_accidental_hits": remove,
            "use_customized_samples": customized,
            "seed": seed,
        },
        "inputs": inputs,
        "outputs": {
            "loss": _floats(loss_v),
            "samples": _ints(samples_v),
            "probabilities": _floats(probs_v),
            "sampled_logits": _floats(sampled_logits_v),
        },
        "grads": {"logits": _floats(grad_v)},
    }


def _error_record(stage, exc):
    """Paddle's message without the Python/C++ call stacks (which name local paths)."""
    text = str(exc)
    marker = "Error Message Summary:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.splitlines()]
    text = "\n".join(line for line in lines if line and set(line) != {"-"})
    return {"stage": stage, "type": type(exc).__name__, "message": text}


def layer_error_case(name, kind, dtype, num_true, customized):
    """Run the real layer where it is expected to fail and record how it fails."""
    n, k, s = 2, 8, 3
    t = num_true
    record = {"stage": "none", "type": "", "message": ""}
    try:
        main, startup, loss, grad, extra = _build(dtype, n, k, t, s, True, customized, 1)
    except Exception as exc:  # graph construction failed
        record = _error_record("graph construction", exc)
    else:
        feed = {
            "logits": np.zeros((n, k), dtype),
            "label": np.arange(1, 1 + n * t, dtype=np.int64).reshape(n, t),
            "upstream": np.ones((n, 1), dtype),
        }
        if customized:
            feed["cs"] = np.concatenate(
                [feed["label"], np.tile(np.array([5, 6, 7], np.int64), (n, 1))], axis=1
            )
            feed["cp"] = np.full((n, t + s), 0.5, dtype)
        try:
            exe = fluid.Executor(fluid.CPUPlace())
            exe.run(startup)
            exe.run(main, feed=feed, fetch_list=[loss])
        except Exception as exc:
            record = _error_record("run", exc)
    return {
        "name": name,
        "kind": kind,
        "dtype": dtype,
        "params": {"num_samples": s, "num_true": t, "use_customized_samples": customized},
        "error": record,
    }


def build_cases():
    rng = np.random.default_rng(SEED)
    cases = []
    add = cases.append

    # 10.3a: the -64 clip of Paddle's cross entropy
    for dtype in ("float32", "float64"):
        add(layer_case(
            f"clip64_{dtype}", dtype, [[-80.0, 80.0, 0.0, 1.0]], [[0]], 3,
            samples=[[0, 1, 2, 3]], probabilities=[[1.0, 1.0, 1.0, 1.0]],
        ))

    for dtype in ("float32", "float64"):
        n, k, s = 5, 10, 4
        logits = rng.standard_normal((n, k)) * 2.0
        label = rng.integers(0, k, (n, 1))
        samples = np.zeros((n, 1 + s), np.int64)
        for i in range(n):
            samples[i, 0] = label[i, 0]
            samples[i, 1:] = rng.choice(k, s, replace=False)
        # accidental hits: one, and several copies of the true label, in some rows
        samples[0, 2] = samples[0, 0]
        samples[2, 1] = samples[2, 0]
        samples[2, 4] = samples[2, 0]
        samples[3, 3] = samples[3, 1]  # duplicated negative, not a hit
        probabilities = rng.uniform(0.05, 1.2, (n, 1 + s))
        upstream = rng.uniform(0.5, 1.5, (n, 1))
        for remove in (True, False):
            add(layer_case(
                f"customized_{dtype}_remove{int(remove)}", dtype, logits, label, s,
                remove=remove, samples=samples, probabilities=probabilities, upstream=upstream,
            ))
        # label values that disagree with customized_samples[:, 0]: Paddle ignores them
        add(layer_case(
            f"customized_{dtype}_label_ignored", dtype, logits, (label + 1) % k, s,
            samples=samples, probabilities=probabilities, upstream=upstream,
        ))
        # a zero probability: ln 0 is clamped, so the column gets +1e20 instead of +inf
        zero_p = probabilities.copy()
        zero_p[1, 3] = 0.0
        add(layer_case(
            f"customized_{dtype}_zero_probability", dtype, logits, label, s,
            samples=samples, probabilities=zero_p, upstream=upstream,
        ))
        # large spread: the true logit sits far below the row maximum in some rows
        wide = logits.copy()
        wide[1, samples[1, 0]] = -70.0
        wide[4, samples[4, 2]] = 75.0
        add(layer_case(
            f"customized_{dtype}_wide_logits", dtype, wide, label, s,
            samples=samples, probabilities=probabilities, upstream=upstream,
        ))

    # non-customized: the layer's own log-uniform sampler, shared negatives
    for seed in (1, 2, 3):
        for dtype in ("float32", "float64"):
            # K = 100: classes 3 and 8 (among others) have a log-uniform probability that
            # differs in the last float32 bit between Paddle (ln(K+1) in float32) and TF
            n, k, s = 3, 100, 5
            logits = rng.standard_normal((n, k))
            label = rng.integers(0, k, (n, 1))
            label[0, 0], label[1, 0] = 3, 8
            add(layer_case(
                f"sampler_{dtype}_seed{seed}", dtype, logits, label, s, seed=seed,
                upstream=rng.uniform(0.5, 1.5, (n, 1)),
            ))
    # a small range forces rejections (num_tries > S)
    n, k, s = 4, 6, 4
    for dtype in ("float32", "float64"):
        add(layer_case(
            f"sampler_{dtype}_small_range_seed9", dtype, rng.standard_normal((n, k)),
            [[3], [5], [2], [1]], s, seed=9,
        ))

    for dtype in ("float32", "float64"):
        for customized in (True, False):
            add(layer_error_case(
                f"num_true_2_{dtype}_customized{int(customized)}", "num_true_error", dtype, 2,
                customized,
            ))
    for customized in (True, False):
        add(layer_error_case(
            f"layer_float64_customized{int(customized)}", "layer_float64_error", "float64", 1,
            customized,
        ))
    return cases


def main(argv):
    write_golden(argv, file_name="paddle_cases.json", framework="paddle",
                 version=paddle.__version__, generator="conformance/golden/make_paddle_golden.py",
                 seed=SEED, build_cases=build_cases)


if __name__ == "__main__":
    main(sys.argv)
