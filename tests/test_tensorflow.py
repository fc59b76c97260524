"""The TensorFlow backend: registry, conversions, the Array API adapter against NumPy, values
against NumPy and against the real ``tf.nn`` functions, ``tf.GradientTape`` gradients against
real TensorFlow's, bit-identical samplers, dtypes, errors, and ``tf.function``.

Real TensorFlow is the reference for the TF-named APIs: both sides get the same
``sampled_values``. The whole conformance kit runs on this backend through
tests/test_conformance.py.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import multisampled as ms  # noqa: E402
from multisampled import _registry, _rng  # noqa: E402
from multisampled._context import context  # noqa: E402
from multisampled.conformance import reference  # noqa: E402

plugin_module = importlib.import_module("multisampled.backends.tensorflow")
BACKEND = plugin_module.BACKEND


@pytest.fixture(autouse=True)
def _tensorflow_registered():
    # a registry test elsewhere may have reset the registry, or no entry point declares it
    if "tensorflow" not in _registry._all():
        _registry.register_plugin(plugin_module)


@pytest.fixture(scope="module")
def xp():
    return BACKEND.namespace()


# One small problem shared by most tests.
C, D, B, S = 20, 4, 3, 5
_rs = np.random.default_rng(1234)
W = _rs.standard_normal((C, D)).astype(np.float32)
BIAS = _rs.standard_normal(C).astype(np.float32)
X = _rs.standard_normal((B, D)).astype(np.float32)
Y = np.array([[2], [7], [11]], dtype=np.int64)
Y2 = np.array([[2, 7], [7, 7], [11, 0]], dtype=np.int64)  # num_true = 2, a repeated label
# 7 is sampled twice and is row 1's label: only its LAST copy (position 3) is an accidental hit
CANDIDATES = np.array([7, 0, 13, 7, 4], dtype=np.int64)
TRUE_COUNT = np.array([[0.3], [0.05], [1.2]], dtype=np.float32)
TRUE_COUNT2 = np.array([[0.3, 0.05], [0.05, 0.05], [1.2, 0.7]], dtype=np.float32)
SAMPLED_COUNT = np.array([0.4, 1.5, 0.02, 0.4, 0.8], dtype=np.float32)
SAMPLED = (CANDIDATES, TRUE_COUNT, SAMPLED_COUNT)
SAMPLED2 = (CANDIDATES, TRUE_COUNT2, SAMPLED_COUNT)


def t(a, dtype=None):
    return tf.constant(a) if dtype is None else tf.constant(a, dtype=dtype)


def tsampled(values=SAMPLED):
    return tuple(t(v) for v in values)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def host(a):
    if isinstance(a, tf.IndexedSlices):
        a = tf.convert_to_tensor(a)
    if isinstance(a, (tf.Tensor, tf.Variable)):
        if a.dtype == tf.bfloat16:
            a = tf.cast(a, tf.float32)
        a = a.numpy()
    return np.asarray(a, dtype=np.float64)


def ref_sampled(values=SAMPLED):
    return (np.asarray(values[0]), f64(values[1]), f64(values[2]))


def assert_tf_tensor(a, dtype):
    assert isinstance(a, tf.Tensor), type(a)
    assert a.dtype == dtype, a.dtype


# --------------------------------------------------------------------------- registry


def test_backend_is_listed_with_the_tensorflow_version():
    info = {i.name: i for i in ms.backends()}["tensorflow"]
    assert info.available and info.version == tf.__version__
    assert info.extra == "tensorflow"  # pip install 'multisampled[tensorflow]'
    assert info.plugin == "multisampled.backends.tensorflow"


def test_importing_and_registering_the_plugin_imports_no_framework():
    code = textwrap.dedent(
        """
        import sys
        import multisampled
        import multisampled.backends.tensorflow as plugin
        if "tensorflow" not in [b.name for b in multisampled.backends()]:
            multisampled._registry.register_plugin(plugin)
        info = {b.name: b for b in multisampled.backends()}["tensorflow"]
        assert info.available and info.version, info
        assert "tensorflow" not in sys.modules, "registering imported tensorflow"
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_tensors_variables_and_traced_tensors_are_claimed_by_the_tensorflow_backend():
    assert _registry.backend_of(t(X)).name == "tensorflow"
    assert _registry.backend_of(tf.Variable(W), np.zeros(2)).name == "tensorflow"
    seen = {}

    @tf.function
    def record(x):
        seen["traced"] = (type(x).__name__, _registry.backend_of(x, [1, 2]).name)
        return tf.reduce_sum(x)

    record(t(X))
    assert seen["traced"][1] == "tensorflow", seen
    assert context(X, backend="tensorflow").name == "tensorflow"


def test_tensorflow_and_torch_arrays_in_one_call_raise_type_error_naming_both():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"two frameworks.*tensorflow.*torch"):
        ms.compute_accidental_hits(t(Y), torch.tensor(CANDIDATES), 1)
    with pytest.raises(TypeError, match=r"backend='numpy'.*tensorflow"):
        ms.compute_accidental_hits(t(Y), t(CANDIDATES), 1, backend="numpy")


def test_host_data_with_backend_tensorflow_comes_back_as_tensors():
    loss = ms.sampled_softmax_loss(W, BIAS, Y, X, S, C, sampled_values=SAMPLED,
                                   backend="tensorflow")
    assert_tf_tensor(loss, tf.float32)
    with ms.use_backend("tensorflow"):
        drawn = ms.uniform_candidate_sampler(Y, 1, S, False, C, seed=1)
    assert_tf_tensor(drawn.sampled_candidates, tf.int64)
    assert_tf_tensor(drawn.true_expected_count, tf.float32)


# --------------------------------------------------------------------------- conversions


def test_asarray_dtypes_devices_and_to_numpy():
    a = BACKEND.asarray([[1, 2]])
    assert_tf_tensor(a, tf.int64)  # NumPy's int64, the index dtype (tf.constant would say int32)
    assert_tf_tensor(BACKEND.asarray([0.5, 1.0]), tf.float32)  # Python floats: TF's float32
    assert_tf_tensor(BACKEND.asarray(np.ones(2)), tf.float64)  # NumPy data keeps its dtype
    assert_tf_tensor(BACKEND.asarray(np.arange(3), dtype="uint32"), tf.uint32)
    bf = BACKEND.asarray([0.5, 3.0], dtype="bfloat16")
    assert_tf_tensor(bf, tf.bfloat16)
    back = BACKEND.to_numpy(bf)
    assert back.dtype == np.float32 and back.tolist() == [0.5, 3.0]
    assert BACKEND.asarray(t(X), dtype="float64").dtype == tf.float64
    var = tf.Variable(W)
    assert BACKEND.asarray(var) is var  # a Variable is used as it is (gradients reach it)
    with pytest.raises(TypeError, match=r"holds objects.*expected numbers"):
        BACKEND.asarray([object()])
    names = BACKEND.devices()
    assert "/device:CPU:0" in names
    on_cpu = BACKEND.asarray([1.0], device="CPU:0")
    assert BACKEND.device_of(on_cpu).endswith("device:CPU:0")
    assert BACKEND.asarray([1.0], device=on_cpu.device).device == on_cpu.device
    with pytest.raises(ValueError, match=r"device='TPU:7'.*/device:CPU:0"):
        BACKEND.asarray([1.0], device="TPU:7")
    grads = tf.IndexedSlices(t([[1.0, 2.0]]), t([1]), t([3, 2]))
    np.testing.assert_array_equal(BACKEND.to_numpy(grads), [[0, 0], [1, 2], [0, 0]])


def test_stop_gradient_blocks_the_tape():
    x = t(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(BACKEND.stop_gradient(x) * x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), X)


def test_host_data_becomes_an_eager_tensor_while_tf_function_traces():
    """The core caches constant tables built from host data; a symbolic one would leak."""
    made = {}

    @tf.function
    def f(x):
        made["host"] = BACKEND.asarray(np.arange(3), dtype="int64")
        return tf.reduce_sum(x)

    f(t(X))
    assert hasattr(made["host"], "numpy") and made["host"].numpy().tolist() == [0, 1, 2]


# --------------------------------------------------------------------------- the namespace


def test_namespace_dtypes_and_info(xp):
    for name in ("bool", "int8", "int32", "int64", "uint32", "float16", "bfloat16", "float32",
                 "float64"):
        assert getattr(xp, name) == tf.as_dtype(name)
    info = xp.__array_namespace_info__()
    assert info.default_dtypes()["indexing"] == tf.int64
    assert info.default_device().endswith("device:CPU:0")
    assert context(t(Y)).index_dtype == tf.int64
    assert xp.isdtype(tf.bfloat16, "real floating") and not xp.isdtype(tf.int64, "real floating")
    assert xp.isdtype(tf.uint32, ("bool", "unsigned integer"))
    assert not xp.isdtype(tf.bool, "integral")
    with pytest.raises(ValueError, match=r"kind must be.*'floating'"):
        xp.isdtype(tf.float32, "floating")
    assert xp.iinfo(tf.int64).max == 2**63 - 1 and xp.iinfo(t(Y)).min == -(2**63)


def test_argsort_and_sort_are_stable_and_exact_at_the_integer_extremes(xp):
    ints = np.array([3, -(2**63), 1, 2**63 - 1, 1, 3, 0, -(2**63)], dtype=np.int64)
    floats = np.array([0.5, -1.0, 0.5, np.inf, -np.inf, 0.0, -0.0, 0.5], dtype=np.float32)
    for values in (ints, floats, ints.astype(np.uint32), np.array([True, False, True, False])):
        for descending in (False, True):
            got = xp.argsort(t(values), descending=descending, stable=True)
            assert_tf_tensor(got, tf.int64)
            key = -values.astype(np.float64) if descending else values
            if values.dtype == np.int64 and descending:
                key = ~values  # exact order reversal for int64
            want = np.argsort(key, kind="stable")
            np.testing.assert_array_equal(got.numpy(), want, err_msg=f"{values.dtype} "
                                          f"descending={descending}")
            got_sorted = xp.sort(t(values), descending=descending)
            np.testing.assert_array_equal(got_sorted.numpy(), values[want])
    matrix = np.array([[3, 1, 3], [0, 2, 0]], dtype=np.int64)
    np.testing.assert_array_equal(xp.argsort(t(matrix), axis=0).numpy(),
                                  np.argsort(matrix, axis=0, kind="stable"))


def test_searchsorted_argmax_take_nonzero_and_reductions_follow_numpy(xp):
    edges = np.array([1, 3, 3, 7], dtype=np.int64)
    queries = np.array([[0, 3], [7, 9]], dtype=np.int64)
    for side in ("left", "right"):
        got = xp.searchsorted(t(edges), t(queries), side=side)
        assert_tf_tensor(got, tf.int64)
        np.testing.assert_array_equal(got.numpy(), np.searchsorted(edges, queries, side=side))
    ties = np.array([1, 5, 2, 5, 5], dtype=np.int8)
    assert int(xp.argmax(t(ties))) == 1  # the FIRST maximum
    assert int(xp.argmax(t(np.array([1.0, np.nan, 3.0, np.nan])))) == 1  # the first NaN, as NumPy
    m = np.array([[1, 4, 4], [9, 0, 9]])
    np.testing.assert_array_equal(xp.argmax(t(m), axis=1).numpy(), [1, 0])
    np.testing.assert_array_equal(xp.take(t(m), t(np.array([2, 0])), axis=1).numpy(),
                                  m[:, [2, 0]])
    rows, cols = xp.nonzero(t(m > 3))
    np.testing.assert_array_equal(rows.numpy(), np.nonzero(m > 3)[0])
    np.testing.assert_array_equal(cols.numpy(), np.nonzero(m > 3)[1])
    assert xp.sum(t(np.array([1, 2], np.int32))).dtype == tf.int64  # the default integer
    assert xp.sum(t(np.array([True, True]))).numpy() == 2
    got = xp.cumulative_sum(t(np.array([1, 2, 3], np.int32)), include_initial=True)
    assert got.dtype == tf.int64 and got.numpy().tolist() == [0, 1, 3, 6]
    x = np.array([-2.0, np.nan, 0.5, 9.0], np.float32)
    np.testing.assert_array_equal(xp.clip(t(x), -1.0, 1.0).numpy(), np.clip(x, -1.0, 1.0))
    assert xp.clip(t(np.array([-3, 9])), 0, 4).numpy().tolist() == [0, 4]
    assert bool(xp.any(t(np.array([0.0, np.nan])))) and not bool(xp.all(t(np.array([1, 0]))))
    np.testing.assert_array_equal(xp.isfinite(t(np.array([1, 2]))).numpy(), [True, True])
    full = xp.full((2, 3), 7, dtype=tf.int64)
    assert full.dtype == tf.int64 and full.numpy().tolist() == [[7, 7, 7]] * 2
    assert xp.arange(3, 6).numpy().tolist() == [3, 4, 5]
    assert xp.matmul(t(np.eye(2)), t(np.array([1.0, 2.0]))).numpy().tolist() == [1.0, 2.0]


def test_logaddexp_and_maximum_values_and_gradients(xp):
    a = np.array([0.0, -np.inf, np.inf, 1.0, -3.0, np.nan], np.float64)
    b = np.array([0.0, -np.inf, np.inf, -np.inf, 2.0, 1.0], np.float64)
    with np.errstate(invalid="ignore"):
        want = np.logaddexp(a, b)
    np.testing.assert_array_equal(xp.logaddexp(t(a), t(b)).numpy(), want)
    x1, x2 = t(np.array([0.3, 1.0, -2.0])), t(np.array([0.3, 0.0, 1.0]))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x1, x2])
        lae = tf.reduce_sum(xp.logaddexp(x1, x2))
        mx = tf.reduce_sum(xp.maximum(x1, x2))
    out = np.logaddexp(x1.numpy(), x2.numpy())
    g1, g2 = tape.gradient(lae, [x1, x2])
    np.testing.assert_allclose(g1.numpy(), np.exp(x1.numpy() - out))  # 0.5 at the tie
    np.testing.assert_allclose(g2.numpy(), np.exp(x2.numpy() - out))
    g1, g2 = tape.gradient(mx, [x1, x2])
    np.testing.assert_array_equal(g1.numpy(), [0.5, 1.0, 0.0])  # a tie splits the gradient
    np.testing.assert_array_equal(g2.numpy(), [0.5, 0.0, 1.0])
    nan = np.array([np.nan, 1.0])
    np.testing.assert_array_equal(xp.maximum(t(nan), t(np.array([0.0, np.nan]))).numpy(),
                                  np.maximum(nan, [0.0, np.nan]))


def _python_shift(values, r, left):
    """Shifts of ``values`` computed on Python ints, wrapped back to the array's dtype."""
    bits = values.dtype.itemsize * 8
    out = []
    for v in values.tolist():
        s = (v << r) % 2**bits if left else v >> r
        if values.dtype.kind == "i" and s >= 2 ** (bits - 1):
            s -= 2**bits
        out.append(s)
    return np.array(out, dtype=values.dtype)


def test_shift_functions_match_numpy_and_tf_classes_are_left_alone(xp):
    """The core shifts 32-bit words with the standard's functions; the namespace gives NumPy's
    results, and TensorFlow's own classes gain nothing (no operator, no ``ndim``)."""
    words = np.array([0, 1, 0x89ABCDEF, 0xFFFFFFFF, 0x7FFFFFFF], dtype=np.int64)
    for dtype in (np.int64, np.uint32, np.int32):
        v = words.astype(dtype)
        for r in (0, 1, 13, 31, 32, 63, 64, 70):
            np.testing.assert_array_equal(xp.bitwise_left_shift(t(v), r).numpy(),
                                          _python_shift(v, r, True), err_msg=f"{v.dtype} << {r}")
            np.testing.assert_array_equal(xp.bitwise_right_shift(t(v), r).numpy(),
                                          _python_shift(v, r, False), err_msg=f"{v.dtype} >> {r}")
    assert xp.bitwise_right_shift(t(np.array([-8], np.int64)), 70).numpy().tolist() == [-1]
    assert not hasattr(tf.Tensor, "__lshift__") and not hasattr(tf.Tensor, "__rshift__")
    assert not hasattr(tf.Variable, "ndim")


def test_core_threefry_on_tensorflow_words_matches_numpy_and_the_fast_path(xp):
    """The core's portable Threefry on TF tensors (uint32 and int64 words: operators, shifts,
    wrap-around) and the backend's fast path give NumPy's bits; Random123's known answer."""
    import array_api_compat.numpy as npx

    rs = np.random.default_rng(5)
    c0 = rs.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    c1 = rs.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    for key in ((0, 0), (0x12345678, 0x9ABCDEF0), (2**32 - 1, 1)):
        want = _rng.threefry2x32(npx, key[0], key[1], c0, c1)
        for word in (np.uint32, np.int64):
            a0, a1 = t(c0.astype(word)), t(c1.astype(word))
            for impl in (_rng.threefry2x32, BACKEND.threefry2x32):
                got = impl(xp, key[0], key[1], a0, a1)
                for g, w in zip(got, want):
                    assert g.dtype == tf.as_dtype(word)
                    np.testing.assert_array_equal(g.numpy().astype(np.uint64), w)
    zero = t(np.zeros(1, np.int64))
    x0, x1 = BACKEND.threefry2x32(xp, 0, 0, zero, zero)
    assert (int(x0[0]), int(x1[0])) == (0x6B200159, 0x99BA4EFE)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_backend_threefry_in_tf_function_matches_numpy(xp, jit_compile):
    """Inside ``tf.function`` (and XLA) the backend computes on uint32 copies of int64 words:
    the bits and the dtype are the core's NumPy ones, with keys as ints or tensors."""
    import array_api_compat.numpy as npx

    rs = np.random.default_rng(6)
    c0 = rs.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    c1 = rs.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    for key in ((0, 0), (0x12345678, 0x9ABCDEF0), (2**32 - 1, 1)):
        want = _rng.threefry2x32(npx, key[0], key[1], c0, c1)
        for word in (np.uint32, np.int64):
            as_ints = tf.function(lambda a, b: BACKEND.threefry2x32(xp, key[0], key[1], a, b),
                                  autograph=False, jit_compile=jit_compile)
            as_tensors = tf.function(lambda k0, k1, a, b: BACKEND.threefry2x32(xp, k0, k1, a, b),
                                     autograph=False, jit_compile=jit_compile)
            a0, a1 = t(c0.astype(word)), t(c1.astype(word))
            k0, k1 = t(np.asarray(key[0], word)), t(np.asarray(key[1], word))
            for got in (as_ints(a0, a1), as_tensors(k0, k1, a0, a1)):
                for g, w in zip(got, want):
                    assert g.dtype == tf.as_dtype(word)
                    np.testing.assert_array_equal(g.numpy().astype(np.uint64), w)


@pytest.mark.parametrize("mode", ["eager", "tf.function", "xla"])
def test_backend_first_distinct_is_the_portable_selection(xp, mode):
    """The ``tf.unique`` selection (eager and ``tf.function``; the portable one under XLA)
    gives the portable selection's candidates, ``num_tries`` and dtypes, blocks holding fewer
    distinct classes than asked included (``num_tries = n + 1``, the last draw fills)."""
    import array_api_compat.numpy as npx

    from multisampled import kernels

    rs = np.random.default_rng(7)
    cases = [(np.array([3, 3, 3], np.int64), 2), (np.array([5], np.int64), 1),
             (np.array([1, 2, 1, 0, 2, 4], np.int64), 4)]
    for _ in range(30):
        n = int(rs.integers(1, 40))
        cases.append((rs.integers(0, int(rs.integers(1, 50)), n).astype(np.int64),
                      int(rs.integers(1, n + 1))))
    for classes, s in cases:
        want = [np.asarray(v) for v in kernels.portable_first_distinct(npx, classes, s, 50)]

        def select(c):
            return BACKEND.first_distinct(xp, c, s, 50)
        if mode != "eager":
            select = tf.function(select, autograph=False, jit_compile=mode == "xla")
        got = select(t(classes))
        assert got[0].dtype == tf.int64 and got[1].dtype == tf.int64 and got[1].shape == ()
        np.testing.assert_array_equal(got[0].numpy(), want[0], err_msg=f"{classes} {s}")
        assert int(got[1]) == int(want[1]), (classes, s)
        if len(np.unique(classes)) < s:
            assert int(got[1]) == len(classes) + 1


# --------------------------------------------------------------------------- values vs real TF


def _tf_compute_sampled_logits(weights, biases, labels, inputs, values, num_true, remove):
    from tensorflow.python.ops import nn_impl

    return nn_impl._compute_sampled_logits(
        weights, biases, labels, inputs, S, C, num_true=num_true, sampled_values=values,
        subtract_log_q=True, remove_accidental_hits=remove, partition_strategy="div")


@pytest.mark.parametrize("num_true", [1, 2])
@pytest.mark.parametrize("remove", [True, False])
def test_losses_and_logits_match_real_tensorflow_and_numpy(num_true, remove):
    labels = Y if num_true == 1 else Y2
    values = SAMPLED if num_true == 1 else SAMPLED2
    args = (t(W), t(BIAS), t(labels), t(X))
    kw = dict(num_true=num_true, sampled_values=tsampled(values), remove_accidental_hits=remove)
    np_kw = dict(num_true=num_true, sampled_values=values, remove_accidental_hits=remove,
                 backend="numpy")
    for name in ("sampled_softmax_loss", "nce_loss"):
        got = getattr(ms, name)(*args, S, C, **kw)
        assert_tf_tensor(got, tf.float32)
        real = getattr(tf.nn, name)(*args, S, C, **kw)
        np.testing.assert_allclose(host(got), host(real), rtol=2e-6, atol=2e-6, err_msg=name)
        on_numpy = getattr(ms, name)(W, BIAS, labels, X, S, C, **np_kw)
        np.testing.assert_allclose(host(got), host(on_numpy), rtol=1e-6, atol=1e-6)
    logits, out_labels = ms.compute_sampled_logits(*args, S, C, **kw)
    assert_tf_tensor(logits, tf.float32)
    real_logits, real_labels = _tf_compute_sampled_logits(*args, tsampled(values), num_true,
                                                          remove)
    np.testing.assert_allclose(host(logits), host(real_logits), rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(host(out_labels), host(real_labels))
    if remove:  # only the LAST copy of candidate 7 is masked, in the rows holding label 7
        assert host(logits)[1, num_true + 3] < -1e37 and host(logits)[1, num_true] > -1e37


def test_v1_losses_with_sharded_variables_match_real_tensorflow():
    shards = [tf.Variable(W[p::3]) for p in range(3)]  # the "mod" layout over 3 shards
    bias_shards = [tf.Variable(BIAS[p::3]) for p in range(3)]
    for name in ("sampled_softmax_loss", "nce_loss"):
        got = getattr(ms.v1, name)(shards, bias_shards, t(Y), t(X), S, C,
                                   sampled_values=tsampled(), partition_strategy="mod")
        real = getattr(tf.compat.v1.nn, name)(shards, bias_shards, t(Y), t(X), S, C,
                                              sampled_values=tsampled(),
                                              partition_strategy="mod")
        np.testing.assert_allclose(host(got), host(real), rtol=2e-6, atol=2e-6, err_msg=name)


def test_compute_accidental_hits_matches_real_tensorflow():
    got = ms.compute_accidental_hits(t(Y2), t(CANDIDATES), 2)
    real = tf.nn.compute_accidental_hits(t(Y2), t(CANDIDATES), 2)
    for g, r, dtype in zip(got, real, (tf.int32, tf.int64, tf.float32)):
        assert_tf_tensor(g, dtype)
        np.testing.assert_array_equal(g.numpy(), r.numpy())


def test_rank_and_paddle_match_numpy_and_the_reference():
    got = ms.rank_sampled_softmax_loss(t(W), t(BIAS), t(Y), t(X), S, 3, C,
                                       sampled_values=tsampled())
    assert_tf_tensor(got, tf.float32)
    expected = reference.rank_sampled_softmax_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled(), 3)
    np.testing.assert_allclose(host(got), expected, rtol=1e-5, atol=1e-5)
    logits = _rs.standard_normal((B, C)).astype(np.float32)
    samples = np.concatenate([Y, np.array([[2, 5, 9, 11, 0], [1, 7, 3, 3, 19],
                                           [4, 11, 6, 8, 2]])], axis=1)
    probs = np.linspace(0.05, 0.9, B * (1 + S), dtype=np.float32).reshape(B, 1 + S)
    loss = ms.sampled_softmax_with_cross_entropy(
        t(logits), t(Y), S, use_customized_samples=True, customized_samples=t(samples),
        customized_probabilities=t(probs))
    assert_tf_tensor(loss, tf.float32)
    assert tuple(loss.shape) == (B, 1)
    on_numpy = ms.sampled_softmax_with_cross_entropy(
        logits, Y, S, use_customized_samples=True, customized_samples=samples,
        customized_probabilities=probs, backend="numpy")
    np.testing.assert_allclose(host(loss), host(on_numpy), rtol=1e-6, atol=1e-6)
    expected = reference.paddle_sampled_softmax(f64(logits), Y, samples, f64(probs))
    np.testing.assert_allclose(host(loss), expected, rtol=1e-5, atol=1e-5)
    seeded = ms.sampled_softmax_with_cross_entropy(t(logits), t(Y), S, seed=5)
    np.testing.assert_allclose(
        host(seeded), host(ms.sampled_softmax_with_cross_entropy(logits, Y, S, seed=5,
                                                                 backend="numpy")),
        rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- gradients


def _tape_grads(fn, weights, biases, inputs, extra=()):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        for e in extra:
            tape.watch(e)
        out = tf.reduce_sum(fn(weights, biases, inputs) * t(np.array([0.7, 1.3, 0.9], np.float32)))
    return tape.gradient(out, [weights, biases, inputs, *extra])


@pytest.mark.parametrize("name", ["sampled_softmax_loss", "nce_loss"])
def test_gradient_tape_gradients_match_real_tensorflow(name):
    values = tsampled(SAMPLED2)

    def run(impl):
        weights, biases, inputs = tf.Variable(W), tf.Variable(BIAS), t(X)

        def fn(w, b, x):
            return impl(w, b, t(Y2), x, S, C, num_true=2, sampled_values=values,
                        remove_accidental_hits=True)

        return _tape_grads(fn, weights, biases, inputs)

    mine = run(getattr(ms, name))
    real = run(getattr(tf.nn, name))
    assert isinstance(mine[0], tf.IndexedSlices)  # gathered rows only, as TF's own
    for g, r, what in zip(mine, real, ("weights", "biases", "inputs")):
        np.testing.assert_allclose(host(g), host(r), rtol=1e-5, atol=1e-6, err_msg=what)
    assert np.any(host(mine[0]) != 0)


def test_no_gradient_into_labels_or_sampled_values_and_paddle_logits_gradient():
    candidates, true_count, sampled_count = tsampled()
    inputs = t(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([true_count, sampled_count, inputs])
        loss = tf.reduce_sum(ms.sampled_softmax_loss(
            t(W), t(BIAS), t(Y), inputs, S, C,
            sampled_values=(candidates, true_count, sampled_count)))
    for g in tape.gradient(loss, [true_count, sampled_count]):
        assert g is None or not np.any(host(g)), g
    assert tape.gradient(loss, inputs) is not None

    logits = t(_rs.standard_normal((B, C)).astype(np.float32))
    samples = np.concatenate([Y, np.broadcast_to(CANDIDATES, (B, S))], axis=1)
    probs = t(np.full((B, 1 + S), 0.4, dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch([logits, probs])
        loss = tf.reduce_sum(ms.sampled_softmax_with_cross_entropy(
            logits, t(Y), S, use_customized_samples=True, customized_samples=t(samples),
            customized_probabilities=probs))
    g_logits, g_probs = tape.gradient(loss, [logits, probs])
    want = reference.paddle_sampled_softmax_grad(host(logits), Y, samples, host(probs),
                                                 remove_accidental_hits=True,
                                                 upstream=np.ones((B, 1)))
    np.testing.assert_allclose(host(g_logits), want, rtol=1e-5, atol=1e-6)
    assert g_probs is None or not np.any(host(g_probs))


# --------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("sampler, unique", [("log_uniform", True), ("uniform", False),
                                             ("learned_unigram", True),
                                             ("fixed_unigram", False)])
def test_sampler_candidates_are_bit_identical_to_numpy(sampler, unique):
    fn = getattr(ms, f"{sampler}_candidate_sampler")
    extra = {"unigrams": list(np.linspace(0.5, 3.0, C))} if sampler == "fixed_unigram" else {}
    ms._learned.reset_learned_states()
    _rng.reset_streams()
    mine = [fn(t(Y), 1, S, unique, C, seed=99, **extra) for _ in range(2)]
    ms._learned.reset_learned_states()
    _rng.reset_streams()
    theirs = [fn(Y, 1, S, unique, C, seed=99, backend="numpy", **extra) for _ in range(2)]
    for got, want in zip(mine, theirs):
        assert_tf_tensor(got.sampled_candidates, tf.int64)
        assert_tf_tensor(got.true_expected_count, tf.float32)
        np.testing.assert_array_equal(got.sampled_candidates.numpy(),
                                      np.asarray(want.sampled_candidates))
        np.testing.assert_allclose(host(got.true_expected_count),
                                   host(want.true_expected_count), rtol=2e-6)
        np.testing.assert_allclose(host(got.sampled_expected_count),
                                   host(want.sampled_expected_count), rtol=2e-6)
    assert not np.array_equal(mine[0][0].numpy(), mine[1][0].numpy())
    if unique:
        assert len(set(mine[0][0].numpy().tolist())) == S


def test_default_sampler_loss_matches_numpy_with_the_same_seed():
    _rng.reset_streams()
    first = ms.sampled_softmax_loss(tf.Variable(W), t(BIAS), t(Y), t(X), S, C, seed=7)
    _rng.reset_streams()
    on_numpy = ms.sampled_softmax_loss(W, BIAS, Y, X, S, C, seed=7, backend="numpy")
    np.testing.assert_allclose(host(first), host(on_numpy), rtol=1e-6, atol=1e-6)
    _rng.reset_streams()
    drawn = ms.log_uniform_candidate_sampler(Y, 1, S, True, C, seed=7, backend="numpy")
    real = tf.nn.sampled_softmax_loss(W, BIAS, Y, X, S, C,
                                      sampled_values=tuple(t(np.asarray(v)) for v in drawn))
    np.testing.assert_allclose(host(first), host(real), rtol=2e-6, atol=2e-6)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_results_stay_in_the_inputs_dtype(dtype):
    dt = tf.as_dtype(dtype)
    w, b, x = (tf.cast(t(v), dt) for v in (W, BIAS, X))
    values = (t(CANDIDATES), tf.cast(t(TRUE_COUNT), dt), tf.cast(t(SAMPLED_COUNT), dt))
    # the reference sees the values the tensors actually hold
    ref_w, ref_b, ref_x = host(w), host(b), host(x)
    ref_values = (CANDIDATES, host(values[1]), host(values[2]))
    tol = {"float16": 2e-2, "bfloat16": 8e-2, "float32": 3e-5, "float64": 1e-9}[dtype]
    for name in ("sampled_softmax_loss", "nce_loss"):
        got = getattr(ms, name)(w, b, t(Y), x, S, C, sampled_values=values)
        assert_tf_tensor(got, dt)
        want = getattr(reference, name)(ref_w, ref_b, Y, ref_x, ref_values)
        np.testing.assert_allclose(host(got), want, rtol=tol, atol=tol, err_msg=name)
    logits, labels = ms.compute_sampled_logits(w, b, t(Y), x, S, C, sampled_values=values)
    assert logits.dtype == labels.dtype == dt
    probs = tf.cast(t(np.full((B, 1 + S), 0.4, np.float32)), dt)
    samples = np.concatenate([Y, np.broadcast_to(CANDIDATES, (B, S))], axis=1)
    paddle = ms.sampled_softmax_with_cross_entropy(
        tf.cast(t(np.outer(X[:, 0], BIAS)), dt), t(Y), S, use_customized_samples=True,
        customized_samples=t(samples), customized_probabilities=probs)
    assert_tf_tensor(paddle, dt)


# --------------------------------------------------------------------------- errors and checks


def test_bad_values_raise_eagerly_naming_argument_value_and_expectation():
    bad = np.array([[2], [25], [11]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, 20\).*max 25"):
        ms.sampled_softmax_loss(tf.Variable(W), t(BIAS), t(bad), t(X), S, C,
                                sampled_values=tsampled())
    with pytest.raises(ValueError, match=r"sampled_expected_count.*> 0"):
        ms.nce_loss(t(W), t(BIAS), t(Y), t(X), S, C,
                    sampled_values=tsampled((CANDIDATES, TRUE_COUNT, -SAMPLED_COUNT)))
    with pytest.raises(TypeError, match=r"labels must have an integer dtype.*float32"):
        ms.sampled_softmax_loss(t(W), t(BIAS), t(Y.astype(np.float32)), t(X), S, C,
                                sampled_values=tsampled())
    with pytest.raises(ValueError, match=r"true_classes values must be in \[0, 20\).*got 25"):
        ms.uniform_candidate_sampler(t(bad), 1, S, False, C, seed=1)


def test_host_checks_on_eager_cpu_only_and_assertions_elsewhere():
    assert context(t(X)).may_read_values is True
    assert context(X, backend="tensorflow").may_read_values is True
    assert BACKEND.may_read_values("/job:localhost/replica:0/task:0/device:GPU:0") is False
    assert BACKEND.may_read_values("/device:CPU:0") is True
    seen = {}

    @tf.function
    def f(x):
        seen["traced"] = context(x).may_read_values
        return tf.reduce_sum(x)

    f(t(X))
    assert seen["traced"] is False
    BACKEND.check_async(tf.constant(True), "fine")
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must hold"):
        BACKEND.check_async(tf.constant(False), "labels must hold values in [0, 3)")


# --------------------------------------------------------------------------- tf.function


def test_tf_function_with_given_sampled_values_traces_runs_and_differentiates():
    @tf.function
    def loss_and_grads(w, b, y, x, candidates, true_count, sampled_count):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = ms.sampled_softmax_loss(w, b, y, x, S, C,
                                           sampled_values=(candidates, true_count,
                                                           sampled_count))
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, x)

    other = (np.array([1, 19, 7, 5, 6]), TRUE_COUNT, SAMPLED_COUNT[::-1].copy())
    for values in (SAMPLED, other):
        loss, grad = loss_and_grads(tf.Variable(W), t(BIAS), t(Y), t(X), *tsampled(values))
        assert_tf_tensor(loss, tf.float32)
        expected = reference.sampled_softmax_loss(f64(W), f64(BIAS), Y, f64(X),
                                                  ref_sampled(values))
        np.testing.assert_allclose(host(loss), expected, rtol=1e-5, atol=1e-5)
        want = reference.sampled_softmax_loss_grad(f64(W), f64(BIAS), Y, f64(X),
                                                   ref_sampled(values))["inputs"]
        np.testing.assert_allclose(host(grad), want, rtol=1e-5, atol=1e-5)

    nce = tf.function(lambda x, c, tq, sq: ms.nce_loss(t(W), t(BIAS), t(Y), x, S, C,
                                                       sampled_values=(c, tq, sq)))
    np.testing.assert_allclose(
        host(nce(t(X), *tsampled())),
        reference.nce_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled()), rtol=1e-5, atol=1e-5)
    samples = np.concatenate([Y, np.broadcast_to(CANDIDATES, (B, S))], axis=1)
    probs = np.full((B, 1 + S), 0.4, dtype=np.float32)
    logits = _rs.standard_normal((B, C)).astype(np.float32)
    paddle = tf.function(lambda lg, s, p: ms.sampled_softmax_with_cross_entropy(
        lg, t(Y), S, use_customized_samples=True, customized_samples=s,
        customized_probabilities=p))
    np.testing.assert_allclose(
        host(paddle(t(logits), t(samples), t(probs))),
        reference.paddle_sampled_softmax(f64(logits), Y, samples, f64(probs)),
        rtol=1e-5, atol=1e-5)


def test_tf_function_checks_values_with_assertions_and_clips_ids():
    @tf.function
    def loss(y):
        return ms.sampled_softmax_loss(t(W), t(BIAS), y, t(X), S, C, sampled_values=tsampled())

    np.testing.assert_allclose(
        host(loss(t(Y))),
        reference.sampled_softmax_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled()),
        rtol=1e-5, atol=1e-5)
    bad = np.array([[2], [25], [11]], dtype=np.int64)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must hold values"):
        loss(t(bad))
    # XLA drops assertions: tracing stops unless value checks under XLA are switched off, and
    # then the ids are clipped into [0, C) before every gather
    from multisampled.backends import tensorflow as tf_backend

    compiled = tf.function(loss.python_function, jit_compile=True, autograph=False)
    with pytest.raises(RuntimeError, match=r"labels must hold values.*set_xla_value_checks"):
        compiled(t(bad))
    previous = tf_backend.set_xla_value_checks(False)
    try:
        compiled = tf.function(loss.python_function, jit_compile=True, autograph=False)
        np.testing.assert_allclose(
            host(compiled(t(bad))),
            reference.sampled_softmax_loss(f64(W), f64(BIAS), np.clip(bad, 0, C - 1), f64(X),
                                           ref_sampled()),
            rtol=1e-5, atol=1e-5)
    finally:
        tf_backend.set_xla_value_checks(previous)


def test_samplers_refuse_tf_function_tracing_and_leave_nothing_symbolic_behind():
    @tf.function
    def loss(w):
        return ms.sampled_softmax_loss(w, t(BIAS), t(Y), t(X), S, C, seed=3)

    with pytest.raises(TypeError,
                       match=r"needs a key as seed.*tf\.constant\(\[0, step\]\).*same negatives"):
        loss(t(W))
    with pytest.raises(TypeError, match=r"needs a key as seed.*tf\.constant"):
        tf.function(lambda y: ms.uniform_candidate_sampler(y, 1, S, False, C, seed=3))(t(Y))
    with pytest.raises(TypeError, match=r"needs a key as seed.*tf\.constant"):
        tf.function(lambda y: ms.learned_unigram_candidate_sampler(y, 1, S, True, C))(t(Y))
    with pytest.raises(TypeError, match=r"tf\.function.*customized_samples"):
        tf.function(lambda lg: ms.sampled_softmax_with_cross_entropy(lg, t(Y), S, seed=4))(
            t(np.zeros((B, C), np.float32)))
    # eager calls still work (the tables cached during the trace are eager tensors)
    assert np.all(np.isfinite(host(ms.sampled_softmax_loss(t(W), t(BIAS), t(Y), t(X), S, C,
                                                           seed=3))))
    drawn = ms.log_uniform_candidate_sampler(Y, 1, S, True, C, seed=3, backend="tensorflow")
    assert_tf_tensor(drawn.sampled_candidates, tf.int64)
    # the all-classes sampler draws nothing and is allowed under tf.function
    every = tf.function(lambda y: ms.all_candidate_sampler(y, 1, C, True))(t(Y))
    assert every.sampled_candidates.numpy().tolist() == list(range(C))
