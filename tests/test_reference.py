"""Checks of the conformance kit's independent reference model (conformance/reference.py).

The reference is held against the real TensorFlow (live, on hypothesis-drawn inputs), against the
golden fixtures recorded from the real TensorFlow and the real Paddle, against central finite
differences, and against the worked examples of the semantics document.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "conformance" / "golden"


# the reference shares no code with the core (it imports only NumPy); importing it through the
# package keeps a single copy of the module in the test run
from multisampled.conformance import reference as ref  # noqa: E402

TF_DOC = json.loads((GOLDEN / "tf_cases.json").read_text())
PADDLE_DOC = json.loads((GOLDEN / "paddle_cases.json").read_text())
LOSS_KINDS = ("sampled_softmax_loss", "sampled_softmax_loss_v1", "nce_loss", "nce_loss_v1")


def _cases(doc, *kinds):
    return [pytest.param(c, id=c["name"]) for c in doc["cases"] if c["kind"] in kinds]


def _tolerances(dtype):
    return dict(rtol=3e-5, atol=3e-5) if dtype == "float32" else dict(rtol=1e-11, atol=1e-12)


def _params_of(case, key):
    value = case["inputs"][key]
    return [np.asarray(s) for s in value] if case["sharded"] else np.asarray(value)


def _flat(x):
    """All values of an array, a JSON nested list, or a list of shards, in order."""
    if isinstance(x, list):
        return np.concatenate([np.ravel(np.asarray(s, dtype=np.float64)) for s in x])
    return np.ravel(np.asarray(x, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# golden fixtures: TensorFlow


def test_tf_fixture_metadata():
    assert TF_DOC["framework"] == "tensorflow"
    assert TF_DOC["tensorflow_version"]
    assert len(TF_DOC["cases"]) >= 20


@pytest.mark.parametrize("case", _cases(TF_DOC, *LOSS_KINDS))
def test_tf_golden_losses_and_gradients(case):
    p = case["params"]
    weights, biases = _params_of(case, "weights"), _params_of(case, "biases")
    sv = case["sampled_values"]
    values = (sv["candidates"], sv["true_expected_count"], sv["sampled_expected_count"])
    args = (weights, biases, case["inputs"]["labels"], case["inputs"]["inputs"], values)
    kw = dict(
        remove_accidental_hits=p["remove_accidental_hits"],
        partition_strategy=p["partition_strategy"],
    )
    nce = case["kind"].startswith("nce")
    loss = (ref.nce_loss if nce else ref.sampled_softmax_loss)(*args, **kw)
    grads = (ref.nce_loss_grad if nce else ref.sampled_softmax_loss_grad)(
        *args, upstream=case["inputs"]["upstream"], **kw
    )
    tol = _tolerances(case["dtype"])
    np.testing.assert_allclose(loss, case["outputs"]["loss"], **tol)
    for key in ("weights", "biases"):
        assert isinstance(grads[key], list) == case["sharded"]
        np.testing.assert_allclose(_flat(grads[key]), _flat(case["grads"][key]), **tol)
    np.testing.assert_allclose(grads["inputs"], case["grads"]["inputs"], **tol)
    if "sampled_logits" in case["outputs"]:
        logits, labels = ref.sampled_logits(*args, subtract_log_q=True, **kw)
        np.testing.assert_allclose(logits, case["outputs"]["sampled_logits"], **tol)
        np.testing.assert_allclose(labels, case["outputs"]["sampled_labels"], **tol)


def test_tf_golden_exercises_masking_and_duplicates():
    # the fixture must keep covering the quirks it was built for
    masked = 0
    for case in TF_DOC["cases"]:
        if case["kind"] in LOSS_KINDS and case["params"]["remove_accidental_hits"]:
            masked += sum(v <= -1e38 for row in case["outputs"]["sampled_logits"] for v in row)
    assert masked >= 10
    dup = [c for c in TF_DOC["cases"] if c["name"] == "ssl_v2_float32_T2_duplicate_candidates"][0]
    logits = np.asarray(dup["outputs"]["sampled_logits"])
    # candidates [3, 7, 3, 1, 7, 9]; row 0 has label 3: only the LAST 3 (position 2) is masked
    assert logits[0, 2 + 2] < -1e38 and logits[0, 2 + 0] > -1e30


@pytest.mark.parametrize("case", _cases(TF_DOC, "compute_accidental_hits"))
def test_tf_golden_accidental_hits(case):
    indices, ids, weights = ref.accidental_hits(
        case["inputs"]["true_classes"], case["inputs"]["sampled_candidates"]
    )
    assert indices.tolist() == case["outputs"]["indices"]
    assert ids.tolist() == case["outputs"]["ids"]
    assert weights.astype(np.float64).tolist() == case["outputs"]["weights"]


def _probability_function(case):
    p = case["params"]
    if case["kind"] == "log_uniform_candidate_sampler":
        return lambda classes: ref.log_uniform_prob(classes, p["range_max"])
    if case["kind"] == "uniform_candidate_sampler":
        return lambda classes: ref.uniform_prob(classes, p["range_max"])
    w = ref.fixed_unigram_weights(
        p["range_max"], unigrams=p.get("unigrams"), vocab_lines=p.get("vocab_lines"),
        distortion=p["distortion"], num_reserved_ids=p["num_reserved_ids"],
        num_shards=p["num_shards"], shard=p["shard"],
    )
    return lambda classes: (w / w.sum())[np.asarray(classes)]


@pytest.mark.parametrize(
    "case",
    _cases(TF_DOC, "log_uniform_candidate_sampler", "uniform_candidate_sampler",
           "fixed_unigram_candidate_sampler"),
)
def test_tf_golden_sampler_expected_counts(case):
    p, out = case["params"], case["outputs"]
    prob = _probability_function(case)
    true_classes = np.asarray(case["inputs"]["true_classes"])
    candidates = np.asarray(out["candidates"])
    assert candidates.shape == (p["num_sampled"],)
    assert np.all((candidates >= 0) & (candidates < p["range_max"]))
    if p["unique"]:
        assert len(set(candidates.tolist())) == p["num_sampled"]
    s = p["num_sampled"]
    observed_true = np.asarray(out["true_expected_count"])
    observed_sampled = np.asarray(out["sampled_expected_count"])
    if case["kind"] == "fixed_unigram_candidate_sampler":
        # unique=False: num_tries == S, so Q = S * P; TF sums float32 weights
        np.testing.assert_allclose(observed_true, ref.expected_count(prob(true_classes), s, s),
                                   rtol=1e-6, atol=0)
        np.testing.assert_allclose(observed_sampled, ref.expected_count(prob(candidates), s, s),
                                   rtol=1e-6, atol=0)
        # reserved ids get weight exactly 0
        assert np.array_equal(observed_true == 0, prob(true_classes) == 0)
        return
    if case["name"].startswith("log_uniform_R100000") or not p["unique"]:
        # no rejection: TF reports exactly S * P (section 5.4), bit for bit
        assert np.array_equal(observed_true, ref.expected_count(prob(true_classes), s, s))
        assert np.array_equal(observed_sampled, ref.expected_count(prob(candidates), s, s))
        return
    # rejections happened; num_tries is not reported, but one value must reproduce every count
    def close(n):
        return np.allclose(ref.expected_count(prob(true_classes), n, s), observed_true,
                           rtol=3e-7, atol=0) and np.allclose(
            ref.expected_count(prob(candidates), n, s), observed_sampled, rtol=3e-7, atol=0)

    assert any(close(n) for n in range(s + 1, 2000))


def test_tf_golden_fixed_unigram_quirk_example():
    case = [c for c in TF_DOC["cases"] if c["name"] == "fixed_unigram_reserved2_shard1of2_quirk"][0]
    q = np.ravel(case["outputs"]["true_expected_count"]) / case["params"]["num_sampled"]
    np.testing.assert_allclose(q, [0, 1 / 9, 3 / 9, 5 / 9], rtol=1e-6)


@pytest.mark.parametrize("case", _cases(TF_DOC, "learned_unigram_candidate_sampler"))
def test_tf_golden_learned_unigram(case):
    p = case["params"]
    s = p["num_sampled"]
    previous = []
    for call in case["calls"]:
        w = ref.learned_unigram_weights(p["range_max"], previous)
        prob = (w / w.sum())
        tc = np.asarray(call["true_classes"])
        assert np.array_equal(
            call["outputs"]["true_expected_count"], ref.expected_count(prob[tc], s, s)
        )
        assert np.array_equal(
            call["outputs"]["sampled_expected_count"],
            ref.expected_count(prob[np.asarray(call["outputs"]["candidates"])], s, s),
        )
        previous.append(tc)


# ---------------------------------------------------------------------------------------------
# golden fixtures: Paddle


def test_paddle_fixture_metadata():
    assert PADDLE_DOC["framework"] == "paddle"
    assert PADDLE_DOC["paddle_version"].startswith("1.")


@pytest.mark.parametrize("case", _cases(PADDLE_DOC, "sampled_softmax_with_cross_entropy"))
def test_paddle_golden(case):
    inp, out, p = case["inputs"], case["outputs"], case["params"]
    samples, probabilities = np.asarray(out["samples"]), np.asarray(out["probabilities"])
    num_true = p["num_true"]
    label = np.asarray(inp["label"])
    if p["use_customized_samples"]:
        assert samples.tolist() == inp["customized_samples"]
        assert probabilities.tolist() == inp["customized_probabilities"]
    else:
        assert np.array_equal(samples[:, :num_true], label)
        negatives = samples[0, num_true:]
        assert np.all(samples[:, num_true:] == negatives)  # shared by every row
        assert len(set(negatives.tolist())) == p["num_samples"]  # always unique
        k = len(inp["logits"][0])
        rtol = 3e-7 if case["dtype"] == "float32" else 1e-14
        assert any(
            np.allclose(ref.paddle_samples(label, negatives, n, k, case["dtype"])[1],
                        probabilities, rtol=rtol, atol=0)
            for n in range(p["num_samples"], 2000)
        )
    kw = dict(remove_accidental_hits=p["remove_accidental_hits"])
    args = (inp["logits"], label, samples, probabilities)
    tol = _tolerances(case["dtype"])
    z = ref.paddle_sampled_logits(*args, **kw)
    np.testing.assert_allclose(z, out["sampled_logits"], **tol)
    np.testing.assert_allclose(ref.paddle_sampled_softmax(*args, **kw), out["loss"], **tol)
    np.testing.assert_allclose(
        ref.paddle_sampled_softmax_grad(*args, upstream=inp["upstream"], **kw),
        case["grads"]["logits"], **tol,
    )


def test_paddle_golden_probabilities_use_float32_log_range():
    # Paddle stores ln(K+1) in float32: its probabilities differ from TF's in the last bit for
    # some classes, and the float64 fixture cases show exactly Paddle's values
    distinguished = 0
    for case in PADDLE_DOC["cases"]:
        p = case["params"]
        if case["kind"] != "sampled_softmax_with_cross_entropy" or p["use_customized_samples"]:
            continue
        if case["dtype"] != "float64":
            continue
        samples = np.asarray(case["outputs"]["samples"])
        observed = np.asarray(case["outputs"]["probabilities"])
        k, s = len(case["inputs"]["logits"][0]), p["num_samples"]
        tries = [n for n in range(s, 2000) if np.array_equal(
            ref.paddle_samples(case["inputs"]["label"], samples[0, p["num_true"]:], n, k,
                               "float64")[1], observed)]
        assert len(tries) == 1
        tf_style = ref.paddle_adjust_prob(ref.log_uniform_prob(samples, k), s, tries[0],
                                          "float64")
        distinguished += not np.array_equal(tf_style, observed)
    assert distinguished >= 2


def test_paddle_golden_records_the_layer_failures():
    errors = [c for c in PADDLE_DOC["cases"] if c["kind"] == "num_true_error"]
    assert errors
    for case in errors:
        assert case["params"]["num_true"] > 1
        assert case["error"]["stage"] != "none"
        assert "soft_label" in case["error"]["message"]
    for case in [c for c in PADDLE_DOC["cases"] if c["kind"] == "layer_float64_error"]:
        assert "desires to be double" in case["error"]["message"]


def test_paddle_clip_example_exact():
    # section 10.3a, float32, as observed with the real Paddle
    logits = np.array([[-80.0, 80.0, 0.0, 1.0]])
    args = (logits, [[0]], [[0, 1, 2, 3]], [[1.0, 1.0, 1.0, 1.0]])
    loss = ref.paddle_sampled_softmax(*args)
    grad = ref.paddle_sampled_softmax_grad(*args)
    assert loss.shape == (1, 1) and np.float32(loss[0, 0]) == np.float32(64.0)
    expected = np.array([-1.0, 1.0, 1.6038109e-28, 1.6038109e-28], dtype=np.float32)
    assert np.array_equal(grad[0].astype(np.float32), expected)


# ---------------------------------------------------------------------------------------------
# live TensorFlow on hypothesis-drawn inputs

def _tf():
    return pytest.importorskip("tensorflow")


@st.composite
def sampled_problems(draw, max_shards=1):
    num_shards = draw(st.integers(1, max_shards))
    num_classes = draw(st.integers(max(2, num_shards), 12))
    batch = draw(st.integers(1, 4))
    dim = draw(st.integers(1, 4))
    num_true = draw(st.integers(1, 3))
    num_sampled = draw(st.integers(1, 6))
    ids = st.integers(0, num_classes - 1)
    labels = draw(st.lists(st.lists(ids, min_size=num_true, max_size=num_true),
                           min_size=batch, max_size=batch))
    candidates = draw(st.lists(ids, min_size=num_sampled, max_size=num_sampled))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return dict(
        weights=rng.standard_normal((num_classes, dim)),
        biases=rng.standard_normal(num_classes) * 0.5,
        labels=np.asarray(labels, dtype=np.int64),
        inputs=rng.standard_normal((batch, dim)),
        candidates=np.asarray(candidates, dtype=np.int64),
        true_count=rng.uniform(0.05, 2.0, (batch, num_true)),
        sampled_count=rng.uniform(0.05, 2.0, num_sampled),
        upstream=rng.uniform(0.5, 1.5, batch),
        num_shards=num_shards,
        strategy=draw(st.sampled_from(["div", "mod"])),
        remove=draw(st.booleans()),
    )


def _shard(weights, num_shards, strategy):
    n = weights.shape[0]
    if strategy == "mod":
        return [weights[p::num_shards] for p in range(num_shards)]
    q, r = divmod(n, num_shards)
    sizes = [q + 1 if p < r else q for p in range(num_shards)]
    return np.split(weights, np.cumsum(sizes)[:-1])


def _run_tf_loss(fn, prob, w, b, extra=None):
    tf = _tf()
    w_t = [tf.constant(s) for s in w] if isinstance(w, list) else tf.constant(w)
    b_t = [tf.constant(s) for s in b] if isinstance(b, list) else tf.constant(b)
    x = tf.constant(prob["inputs"])
    watched = (w_t if isinstance(w_t, list) else [w_t]) + (b_t if isinstance(b_t, list) else [b_t])
    with tf.GradientTape() as tape:
        tape.watch(watched + [x])
        loss = fn(
            weights=w_t, biases=b_t, labels=tf.constant(prob["labels"]), inputs=x,
            num_sampled=prob["candidates"].shape[0], num_classes=prob["weights"].shape[0],
            num_true=prob["labels"].shape[1],
            sampled_values=(tf.constant(prob["candidates"]), tf.constant(prob["true_count"]),
                            tf.constant(prob["sampled_count"])),
            remove_accidental_hits=prob["remove"], **(extra or {}),
        )
        total = tf.reduce_sum(tf.constant(prob["upstream"]) * loss)
    grads = tape.gradient(total, watched + [x])
    dense = [np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
             for g, v in zip(grads, watched + [x])]
    return loss.numpy(), dense


def _ref_args(prob, w, b):
    values = (prob["candidates"], prob["true_count"], prob["sampled_count"])
    return (w, b, prob["labels"], prob["inputs"], values)


TIGHT = dict(rtol=1e-9, atol=1e-11)


@settings(max_examples=12)
@given(prob=sampled_problems())
def test_live_tf_sampled_logits(prob):
    tf = _tf()
    try:
        from tensorflow.python.ops.nn_impl import _compute_sampled_logits
    except ImportError:
        pytest.skip("private _compute_sampled_logits not importable")
    logits, labels = _compute_sampled_logits(
        weights=tf.constant(prob["weights"]), biases=tf.constant(prob["biases"]),
        labels=tf.constant(prob["labels"]), inputs=tf.constant(prob["inputs"]),
        num_sampled=prob["candidates"].shape[0], num_classes=prob["weights"].shape[0],
        num_true=prob["labels"].shape[1],
        sampled_values=(tf.constant(prob["candidates"]), tf.constant(prob["true_count"]),
                        tf.constant(prob["sampled_count"])),
        subtract_log_q=True, remove_accidental_hits=prob["remove"], partition_strategy="div",
    )
    ref_logits, ref_labels = ref.sampled_logits(
        *_ref_args(prob, prob["weights"], prob["biases"]),
        subtract_log_q=True, remove_accidental_hits=prob["remove"],
    )
    np.testing.assert_allclose(ref_logits, logits.numpy(), **TIGHT)
    np.testing.assert_allclose(ref_labels, labels.numpy(), **TIGHT)


@settings(max_examples=12)
@given(prob=sampled_problems(), nce=st.booleans())
def test_live_tf_v2_losses_and_gradients(prob, nce):
    tf = _tf()
    fn = tf.nn.nce_loss if nce else tf.nn.sampled_softmax_loss
    loss, grads = _run_tf_loss(fn, prob, prob["weights"], prob["biases"])
    args = _ref_args(prob, prob["weights"], prob["biases"])
    kw = dict(remove_accidental_hits=prob["remove"])
    ref_loss = (ref.nce_loss if nce else ref.sampled_softmax_loss)(*args, **kw)
    ref_grads = (ref.nce_loss_grad if nce else ref.sampled_softmax_loss_grad)(
        *args, upstream=prob["upstream"], **kw
    )
    np.testing.assert_allclose(ref_loss, loss, **TIGHT)
    for got, key in zip(grads, ("weights", "biases", "inputs")):
        np.testing.assert_allclose(ref_grads[key], got, **TIGHT)


@settings(max_examples=12)
@given(prob=sampled_problems(max_shards=4), nce=st.booleans())
def test_live_tf_v1_sharded_losses_and_gradients(prob, nce):
    tf = _tf()
    fn = tf.compat.v1.nn.nce_loss if nce else tf.compat.v1.nn.sampled_softmax_loss
    strategy = prob["strategy"]
    w = _shard(prob["weights"], prob["num_shards"], strategy)
    b = _shard(prob["biases"], prob["num_shards"], strategy)
    w = list(w) if prob["num_shards"] > 1 else w[0]
    b = list(b) if prob["num_shards"] > 1 else b[0]
    loss, grads = _run_tf_loss(fn, prob, w, b, {"partition_strategy": strategy})
    args = _ref_args(prob, w, b)
    kw = dict(remove_accidental_hits=prob["remove"], partition_strategy=strategy)
    ref_loss = (ref.nce_loss if nce else ref.sampled_softmax_loss)(*args, **kw)
    ref_grads = (ref.nce_loss_grad if nce else ref.sampled_softmax_loss_grad)(
        *args, upstream=prob["upstream"], **kw
    )
    np.testing.assert_allclose(ref_loss, loss, **TIGHT)
    n = prob["num_shards"]
    np.testing.assert_allclose(_flat(ref_grads["weights"]), _flat(grads[:n] if n > 1 else grads[0]),
                               **TIGHT)
    np.testing.assert_allclose(_flat(ref_grads["biases"]),
                               _flat(grads[n : 2 * n] if n > 1 else grads[1]), **TIGHT)
    np.testing.assert_allclose(ref_grads["inputs"], grads[-1], **TIGHT)


@settings(max_examples=20)
@given(
    rows=st.integers(1, 5), num_true=st.integers(1, 3),
    data=st.data(),
)
def test_live_tf_compute_accidental_hits(rows, num_true, data):
    tf = _tf()
    ids = st.integers(0, 6)
    true_classes = np.asarray(
        data.draw(st.lists(st.lists(ids, min_size=num_true, max_size=num_true),
                           min_size=rows, max_size=rows)), dtype=np.int64)
    candidates = np.asarray(data.draw(st.lists(ids, min_size=1, max_size=8)), dtype=np.int64)
    got = tf.nn.compute_accidental_hits(tf.constant(true_classes), tf.constant(candidates),
                                        num_true=num_true)
    want = ref.accidental_hits(true_classes, candidates)
    for g, w in zip(got, want):
        assert g.numpy().tolist() == w.tolist()


def test_live_tf_embedding_lookup_div_and_mod():
    tf = _tf()
    table = np.arange(13 * 2, dtype=np.float64).reshape(13, 2)
    ids = np.array([0, 12, 3, 5, 9, 11, 2, 10, 6, 8])
    for strategy in ("div", "mod"):
        shards = _shard(table, 5, strategy)
        got = tf.nn.embedding_lookup([tf.constant(s) for s in shards], ids) if strategy == "div" \
            else tf.compat.v1.nn.embedding_lookup([tf.constant(s) for s in shards], ids,
                                                  partition_strategy="mod")
        np.testing.assert_array_equal(ref.embedding_lookup(list(shards), ids, strategy), got)
        np.testing.assert_array_equal(ref.embedding_lookup(list(shards), ids, strategy), table[ids])


# ---------------------------------------------------------------------------------------------
# finite differences (float64)


def _central_difference(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _fd_problem(seed, sharded):
    rng = np.random.default_rng(seed)
    c, d, b = 7, 3, 3
    w = rng.standard_normal((c, d))
    bias = rng.standard_normal(c) * 0.3
    x = rng.standard_normal((b, d))
    labels = np.array([[1, 4], [4, 4], [0, 6]])
    candidates = np.array([4, 2, 6, 2, 5])  # duplicates and accidental hits
    values = (candidates, rng.uniform(0.1, 1.5, (b, 2)), rng.uniform(0.1, 1.5, 5))
    up = rng.uniform(0.5, 1.5, b)
    if sharded:
        w, bias = _shard(w, 3, "mod"), _shard(bias, 3, "mod")
        w, bias = list(w), list(bias)
    return w, bias, labels, x, values, up


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize("remove", [False, True])
@pytest.mark.parametrize("kind", ["softmax", "nce", "rank"])
def test_reference_gradients_match_finite_differences(kind, remove, sharded):
    w, bias, labels, x, values, up = _fd_problem(7 + remove + 2 * sharded, sharded)
    strategy = "mod"
    kw = dict(remove_accidental_hits=remove, partition_strategy=strategy)
    if kind == "softmax":
        loss_fn, grad_fn = ref.sampled_softmax_loss, ref.sampled_softmax_loss_grad
    elif kind == "nce":
        loss_fn, grad_fn = ref.nce_loss, ref.nce_loss_grad
    else:
        def loss_fn(w_, b_, l_, x_, v_, **k):
            return ref.rank_sampled_softmax_loss(w_, b_, l_, x_, v_, 3,
                                                 resampling_temperature=0.7, **k)

        def grad_fn(w_, b_, l_, x_, v_, **k):
            return ref.rank_sampled_softmax_loss_grad(w_, b_, l_, x_, v_, 3,
                                                      resampling_temperature=0.7, **k)
    analytic = grad_fn(w, bias, labels, x, values, upstream=up, **kw)

    def total(w_, b_, x_):
        return float(np.sum(up * loss_fn(w_, b_, labels, x_, values, **kw)))

    def check(params, key, rebuild):
        shards = params if isinstance(params, list) else [params]
        got = analytic[key] if isinstance(params, list) else [analytic[key]]
        for s, (shard, g) in enumerate(zip(shards, got)):
            def f(v, s=s):
                return total(*rebuild(s, v))
            np.testing.assert_allclose(g, _central_difference(f, shard), rtol=1e-6, atol=1e-7)

    def replace(params, s, v):
        if isinstance(params, list):
            return [v if k == s else p for k, p in enumerate(params)]
        return v

    if kind == "rank":
        # the top-k selection is piecewise constant: make sure the perturbations keep it
        chosen = ref.rank_resample(w, bias, x, values, 3, 0.7, strategy)[0]
        assert sorted(chosen.tolist()) == sorted(
            ref.rank_resample(w, bias, x + 1e-6, values, 3, 0.7, strategy)[0].tolist())
    check(w, "weights", lambda s, v: (replace(w, s, v), bias, x))
    check(bias, "biases", lambda s, v: (w, replace(bias, s, v), x))
    check(x, "inputs", lambda s, v: (w, bias, v))


@pytest.mark.parametrize("num_true", [1, 2])
@pytest.mark.parametrize("remove", [False, True])
def test_paddle_gradient_matches_finite_differences(num_true, remove):
    rng = np.random.default_rng(11 + num_true)
    n, k = 3, 6
    logits = rng.standard_normal((n, k)) * 2.0
    label = rng.integers(0, k, (n, num_true))
    negatives = np.array([[1, 2, 1], [0, 5, 3], [4, 4, 2]])
    samples = np.concatenate([label, negatives], axis=1)
    samples[0, -1] = samples[0, 0]  # an accidental hit
    probabilities = rng.uniform(0.1, 1.2, samples.shape)
    up = rng.uniform(0.5, 1.5, (n, 1))
    kw = dict(remove_accidental_hits=remove)

    def f(lg):
        return float(np.sum(up * ref.paddle_sampled_softmax(lg, label, samples, probabilities, **kw)))

    analytic = ref.paddle_sampled_softmax_grad(logits, label, samples, probabilities,
                                               upstream=up, **kw)
    np.testing.assert_allclose(analytic, _central_difference(f, logits), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# worked examples and properties from the semantics document


def test_unique_sampling_trace_counts_rejections():
    candidates, tries = ref.unique_sampling_trace([3, 3, 1, 3, 0, 7, 9], 3)
    assert candidates.tolist() == [3, 1, 0] and tries == 5
    with pytest.raises(ValueError, match="draws"):
        ref.unique_sampling_trace([1, 1, 1], 2)


def test_expected_count_switches_formula_on_rejection():
    p = ref.log_uniform_prob([0, 1, 99], 100)
    assert np.array_equal(ref.expected_count(p, 3, 3), (np.float32(3) * p.astype(np.float32)))
    q = ref.expected_count(p, 5, 3)
    np.testing.assert_allclose(q, 1 - (1 - p) ** 5, rtol=1e-6)
    assert not np.allclose(q, 3 * p, rtol=1e-3)
    # without rejection the count is S * P, which can exceed 1
    assert ref.expected_count(ref.log_uniform_prob([0], 3), 3, 3)[0] == np.float32(1.5)


def test_log_uniform_probabilities():
    r = 1000
    k = np.arange(r)
    p = ref.log_uniform_prob(k, r)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-6)
    assert np.array_equal(p, p.astype(np.float32))
    np.testing.assert_allclose(ref.paddle_log_uniform_prob(k, r), p, rtol=1e-6)
    np.testing.assert_allclose(p[0], math.log(2) / math.log1p(r), rtol=1e-7)
    assert np.all(ref.uniform_prob(k[:3], 7) == np.float32(1 / 7))


def test_fixed_unigram_quirk_and_errors():
    w = ref.fixed_unigram_weights(4, unigrams=[1, 2, 3, 4, 5, 6], num_reserved_ids=2,
                                  num_shards=2, shard=1)
    np.testing.assert_allclose(w / w.sum(), [0, 1 / 9, 3 / 9, 5 / 9])
    w = ref.fixed_unigram_weights(3, unigrams=[0, 3, 0], distortion=0.0)
    assert w.tolist() == [1.0, 1.0, 1.0]
    w = ref.fixed_unigram_weights(2, vocab_lines=["a,4", "bad,x", "", "c,d,9"], num_shards=2)
    np.testing.assert_allclose(w, [4.0, 9.0])
    with pytest.raises(ValueError, match="range_max"):
        ref.fixed_unigram_weights(3, unigrams=[1, 2])
    with pytest.raises(ValueError, match="exactly one"):
        ref.fixed_unigram_weights(2)
    with pytest.raises(ValueError, match="vocabulary format"):
        ref.fixed_unigram_weights(2, vocab_lines=["a,4", "bad,x"])


def test_embedding_lookup_layouts_and_errors():
    table = np.arange(13.0)[:, None]
    shards = _shard(table, 5, "div")
    assert [s.shape[0] for s in shards] == [3, 3, 3, 2, 2]
    np.testing.assert_array_equal(ref.embedding_lookup(list(shards), np.arange(13), "div"), table)
    # the strategy string is ignored for a single shard
    np.testing.assert_array_equal(ref.embedding_lookup(table, [4], "nonsense"), [[4.0]])
    with pytest.raises(ValueError, match="partition_strategy"):
        ref.embedding_lookup(list(shards), [1], "nonsense")
    with pytest.raises(ValueError, match="ids"):
        # "div" with shard sizes [3, 3, 4] for 10 ids fails on id 3 (section 6)
        ref.embedding_lookup(np.split(np.arange(10.0), [3, 6]), [3], "div")
    with pytest.raises(ValueError, match="ids"):
        ref.embedding_lookup(table, [13])
    with pytest.raises(ValueError, match="div"):
        ref.embedding_lookup([np.zeros((1, 1)), np.zeros((0, 1)), np.zeros((0, 1))], [0])


def test_all_candidates_equal_full_softmax():
    rng = np.random.default_rng(3)
    c = 6
    w, b, x = rng.standard_normal((c, 4)), rng.standard_normal(c), rng.standard_normal((5, 4))
    labels = rng.integers(0, c, (5, 1))
    values = (np.arange(c), np.ones((5, 1)), np.ones(c))
    np.testing.assert_allclose(
        ref.sampled_softmax_loss(w, b, labels, x, values, remove_accidental_hits=True),
        ref.full_softmax_cross_entropy(w, b, labels, x), rtol=1e-12,
    )


def test_repeated_label_doubles_its_weight_in_the_denominator():
    w, b = np.eye(3), np.zeros(3)
    x = np.array([[0.3, -0.2, 0.5]])
    values = ([2], [[1.0, 1.0]], [1.0])
    z_c, z_s = x[0, 1], x[0, 2]
    loss = ref.sampled_softmax_loss(w, b, [[1, 1]], x, values)
    np.testing.assert_allclose(loss, [math.log(2 * math.exp(z_c) + math.exp(z_s)) - z_c])


def test_rank_resample_ties_toward_lower_position():
    w = np.array([[1.0], [1.0], [2.0], [1.0]])
    b = np.zeros(4)
    x = np.array([[1.0]])
    values = ([0, 1, 3, 2], [[1.0]], [0.1, 0.2, 0.3, 0.4])
    cand, true_count, sampled_count = ref.rank_resample(w, b, x, values, 2, 1.0)
    assert cand.tolist() == [2, 0] and sampled_count.tolist() == [0.4, 0.1]
    with pytest.raises(ValueError, match="num_resampled"):
        ref.rank_sampled_softmax_loss(w, b, [[0]], x, values, 4)


@pytest.mark.parametrize("tau, winner", [(0.5, 1), (2.0, 1), (4.0, 0)])
def test_rank_resample_temperature(tau, winner):
    # r(c) = lse_j(w_c . x_j / tau) + b_c / tau; candidate 0: w=0, b=0.2 -> ln 2 + 0.2/tau;
    # candidate 1: w=1, b=0 -> ln(e^(1/tau) + e^(-1/tau)); candidate 2 always last
    w = np.array([[0.0], [1.0], [0.0]])
    b = np.array([0.2, 0.0, -1.0])
    x = np.array([[1.0], [-1.0]])
    scores = [math.log(2) + 0.2 / tau, math.log(math.exp(1 / tau) + math.exp(-1 / tau))]
    assert (scores[1] > scores[0]) == (winner == 1)
    values = ([0, 1, 2], [[1.0], [1.0]], [0.3, 0.2, 0.1])
    cand, _, counts = ref.rank_resample(w, b, x, values, 1, tau)
    assert cand.tolist() == [winner] and counts.tolist() == [[0.3, 0.2][winner]]
    assert sorted(ref.rank_resample(w, b, x, values, 2, tau)[0].tolist()) == [0, 1]


@given(
    num_true=st.integers(1, 3), num_sampled=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
)
def test_paddle_matches_tf_formula_without_clip(num_true, num_sampled, seed):
    # Paddle's 1/T soft labels equal TF's sampled softmax when no clip or duplicate is involved
    rng = np.random.default_rng(seed)
    c, d, n = 9, 3, 4
    w, b, x = rng.standard_normal((c, d)), rng.standard_normal(c), rng.standard_normal((n, d))
    labels = rng.integers(0, c, (n, num_true))
    candidates = rng.choice(c, num_sampled, replace=False)
    true_count = rng.uniform(0.2, 1.5, (n, num_true))
    sampled_count = rng.uniform(0.2, 1.5, num_sampled)
    tf_loss = ref.sampled_softmax_loss(w, b, labels, x, (candidates, true_count, sampled_count))
    logits = x @ w.T + b
    samples = np.concatenate([labels, np.tile(candidates, (n, 1))], axis=1)
    probabilities = np.concatenate([true_count, np.tile(sampled_count, (n, 1))], axis=1)
    paddle_loss = ref.paddle_sampled_softmax(logits, labels, samples, probabilities)
    np.testing.assert_allclose(paddle_loss[:, 0], tf_loss, rtol=1e-10, atol=1e-12)
