"""``multisampled.keras.SampledSoftmax`` on each Keras backend (tensorflow, jax, torch).

Keras reads ``KERAS_BACKEND`` once, at import, so each backend runs in its own subprocess: the
script below trains a tiny next-token model with ``model.fit`` (a partial last batch, compiled
where Keras compiles), saves and reloads it, and compares the layer with the functional API for
the same key and with a NumPy full softmax. It prints one JSON line the tests read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("keras")

BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    import keras
    import multisampled as ms
    from multisampled.keras import SampledSoftmax

    out = {"backend": keras.backend.backend()}
    if out["backend"] == "tensorflow":
        # XLA drops TensorFlow's assertions: the labels here are valid, compile without checks
        from multisampled.backends import tensorflow as tf_backend
        tf_backend.set_xla_value_checks(False)
    V, D, S, N = 500, 16, 32, 70
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, V, (N, 1)).astype("int32")
    following = ((tokens * 7 + 3) % V).astype("int32")   # a learnable next token

    tok_in = keras.Input((1,), dtype="int32")
    nxt_in = keras.Input((1,), dtype="int32")
    h = keras.layers.Flatten()(keras.layers.Embedding(V, D)(tok_in))
    h = keras.layers.Dense(D)(h)
    loss_out = SampledSoftmax(V, S, seed=7, name="sampled")(h, nxt_in)
    model = keras.Model([tok_in, nxt_in], loss_out)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  jit_compile=keras.backend.backend() != "torch")
    layer = model.get_layer("sampled")
    before = float(model.evaluate([tokens, following], verbose=0))
    history = model.fit([tokens, following], batch_size=32, epochs=6, verbose=0)  # 32+32+6
    out["loss"] = [float(v) for v in history.history["loss"]]
    out["eval_before"], out["eval_after"] = before, float(model.evaluate([tokens, following],
                                                                         verbose=0))
    out["seed_state"] = keras.ops.convert_to_numpy(layer.seed_generator.state.value).tolist()

    path = os.path.join(sys.argv[1], "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    lay2 = loaded.get_layer("sampled")
    out["reload_same_eval"] = bool(np.allclose(
        loaded.predict([tokens, following], verbose=0),
        model.predict([tokens, following], verbose=0), rtol=1e-5, atol=1e-5))
    out["reload_seed_state"] = keras.ops.convert_to_numpy(lay2.seed_generator.state.value).tolist()
    out["reload_config"] = lay2.get_config()["num_sampled"] == S and type(lay2) is SampledSoftmax

    # the layer against the functional API for the same key, and a NumPy full softmax
    x = keras.ops.convert_to_tensor(rng.standard_normal((9, D)).astype("float32"))
    y = keras.ops.convert_to_tensor(rng.integers(0, V, (9, 2)).astype("int32"))
    two = SampledSoftmax(V, S, num_true=2, seed=11)
    two(x, y)  # builds
    key = keras.ops.convert_to_tensor(keras.ops.convert_to_numpy(two.seed_generator.state.value))
    got = keras.ops.convert_to_numpy(two(x, y, training=True))
    want = keras.ops.convert_to_numpy(ms.sampled_softmax_loss(
        two.kernel.value, two.bias.value, y, x, S, V, num_true=2, seed=key))
    out["functional_max_diff"] = float(np.abs(got - want).max())
    out["key_advanced"] = keras.ops.convert_to_numpy(two.seed_generator.state.value).tolist()
    w = keras.ops.convert_to_numpy(two.kernel.value).astype("float64")
    b = keras.ops.convert_to_numpy(two.bias.value).astype("float64")
    xn, yn = keras.ops.convert_to_numpy(x).astype("float64"), keras.ops.convert_to_numpy(y)
    z = xn @ w.T + b
    ref = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1) \\
        - np.take_along_axis(z, yn, 1).mean(1)
    full = keras.ops.convert_to_numpy(two(x, y))
    out["full_max_diff"] = float(np.abs(full - ref).max())
    out["logits_shape"] = list(keras.ops.shape(two(x)))

    # sequences: inputs [B, L, D] with labels [B, L], and padding left out with ignore_index
    seq = SampledSoftmax(V, S, seed=5, ignore_index=-1)
    xs = keras.ops.convert_to_tensor(rng.standard_normal((3, 4, D)).astype("float32"))
    ys = rng.integers(0, V, (3, 4)).astype("int32")
    ys[1, 2] = -1
    per = keras.ops.convert_to_numpy(seq(xs, keras.ops.convert_to_tensor(ys), training=True))
    out["seq_shape"] = list(per.shape)
    out["seq_padding_zero"] = bool(per[1, 2] == 0 and np.all(per[0] > 0))
    out["seq_added_mean"] = float(abs(float(keras.ops.convert_to_numpy(seq.losses[0]))
                                     - per.sum() / 11))
    print("RESULT " + json.dumps(out))
''')


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def result(request, tmp_path_factory):
    backend = request.param
    if not _installed(BACKENDS[backend]):
        pytest.skip(f"{backend} is not installed")
    tmp = tmp_path_factory.mktemp(f"keras_{backend}")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp)], capture_output=True, text=True,
                       env=env, cwd=tmp, timeout=300)
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_runs_on_the_requested_keras_backend(result):
    assert result["backend"] in BACKENDS


def test_fit_lowers_the_loss_with_fresh_negatives_each_step(result):
    loss = result["loss"]
    assert all(v == v for v in loss)  # finite, no NaN
    assert loss[-1] < loss[0] - 0.5, loss
    # the full-softmax evaluation loss falls too (log(500) = 6.2 before training)
    assert result["eval_before"] > 5.5
    assert result["eval_after"] < result["eval_before"] - 1.0, result
    # one key per step: 3 batches (the last one partial) in each of 6 epochs
    assert result["seed_state"] == [7, 18]


def test_save_and_load_round_trip(result):
    assert result["reload_same_eval"]
    assert result["reload_config"]
    assert result["reload_seed_state"] == result["seed_state"]


def test_layer_equals_the_functional_api_for_the_same_key(result):
    assert result["functional_max_diff"] < 1e-5
    assert result["key_advanced"] == [11, 1]


def test_inference_is_the_full_softmax(result):
    assert result["full_max_diff"] < 1e-4
    assert result["logits_shape"] == [9, 500]


def test_sequences_and_ignored_positions(result):
    assert result["seq_shape"] == [3, 4]
    assert result["seq_padding_zero"]
    assert result["seq_added_mean"] < 1e-5


def test_constructor_errors():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() not in BACKENDS or not _installed(keras.backend.backend()):
        pytest.skip("Keras's backend here is not one of multisampled's")
    from multisampled.keras import SampledSoftmax

    with pytest.raises(ValueError, match="num_sampled=20 cannot be greater than num_classes=10"):
        SampledSoftmax(10, 20)
    with pytest.raises(TypeError, match="sampler must be one of"):
        SampledSoftmax(10, 2, sampler=lambda labels: None)
    with pytest.raises(TypeError, match="use_bias must be a bool"):
        SampledSoftmax(10, 2, use_bias="yes")
