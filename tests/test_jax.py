"""The JAX backend: registry and tracers, conversions, values against NumPy and the independent
reference, bit-identical samplers, ``jax.grad`` and ``jax.jit``, and where value checks run.

Eager JAX compiles every operation for every new shape, so the cases below share one small
problem (a handful of shapes) and stay few. The whole conformance kit on JAX is opt-in (see
:class:`TestJaxConformance`).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import multisampled as ms  # noqa: E402
from multisampled import _registry, _rng  # noqa: E402
from multisampled._context import context  # noqa: E402
from multisampled.conformance import reference  # noqa: E402

plugin_module = importlib.import_module("multisampled.backends.jax")


def _ensure_registered() -> bool:
    """Register the plugin directly when no ``multisampled.backends`` entry point declares it.

    Returns whether the entry point already did."""
    if "jax" in {info.name for info in ms.backends()}:
        return True
    _registry.register_plugin(plugin_module)
    return False


REGISTERED_BY_ENTRY_POINT = _ensure_registered()


@pytest.fixture(autouse=True)
def _jax_registered():
    # a registry test elsewhere may have reset the registry since this module was imported
    if "jax" not in _registry._all():
        _registry.register_plugin(plugin_module)

# One small problem shared by most tests (few shapes: few compilations).
C, D, B, S = 20, 4, 3, 5
_rs = np.random.default_rng(1234)
W = _rs.standard_normal((C, D)).astype(np.float32)
BIAS = _rs.standard_normal(C).astype(np.float32)
X = _rs.standard_normal((B, D)).astype(np.float32)
Y = np.array([[2], [7], [11]], dtype=np.int64)
# 7 is sampled twice and is row 1's label: only its LAST copy (position 3) is an accidental hit
CANDIDATES = np.array([7, 0, 13, 7, 4], dtype=np.int64)
TRUE_COUNT = np.array([[0.3], [0.05], [1.2]], dtype=np.float32)
SAMPLED_COUNT = np.array([0.4, 1.5, 0.02, 0.4, 0.8], dtype=np.float32)
SAMPLED = (CANDIDATES, TRUE_COUNT, SAMPLED_COUNT)


def j(a):
    return jnp.asarray(a)


def jsampled(values=SAMPLED):
    return tuple(j(v) for v in values)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def ref_sampled(values=SAMPLED):
    return (np.asarray(values[0]), f64(values[1]), f64(values[2]))


def assert_jax_array(a, dtype):
    assert isinstance(a, jax.Array), type(a)
    assert a.dtype == dtype, a.dtype


def host(a):
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------------- registry


def test_backend_is_listed_with_the_jax_version():
    info = {i.name: i for i in ms.backends()}["jax"]
    assert info.available and info.version == jax.__version__
    assert info.extra == "jax"


def test_importing_the_plugin_imports_no_framework():
    code = textwrap.dedent(
        """
        import sys
        import multisampled
        import multisampled.backends.jax as plugin
        multisampled._registry.register_plugin(plugin) if "jax" not in [
            b.name for b in multisampled.backends()] else None
        assert "jax" in [b.name for b in multisampled.backends()]
        assert "jax" not in sys.modules, "registering imported jax"
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_concrete_arrays_and_tracers_are_claimed_by_the_jax_backend():
    assert _registry.backend_of(j(X)).name == "jax"
    seen = {}

    def record(where):
        def f(x):
            seen[where] = (type(x).__name__, _registry.backend_of(x, np.zeros(2)).name)
            return jnp.sum(x)

        return f

    jax.jit(record("jit"))(j(X))
    jax.grad(record("grad"))(j(X))
    jax.vmap(record("vmap"))(j(X))
    for where in ("jit", "grad", "vmap"):
        tracer_type, name = seen[where]
        assert "Tracer" in tracer_type and name == "jax", (where, seen[where])


def test_jax_and_torch_arrays_in_one_call_raise_type_error_naming_both():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"two frameworks.*jax.*torch"):
        ms.compute_accidental_hits(j(Y), torch.tensor(CANDIDATES), 1)
    with pytest.raises(TypeError, match=r"two frameworks.*torch.*jax"):
        ms.compute_accidental_hits(torch.tensor(Y), j(CANDIDATES), 1)

    def traced(labels):
        return ms.compute_accidental_hits(labels, torch.tensor(CANDIDATES), 1)

    with pytest.raises(TypeError, match=r"two frameworks.*jax.*torch"):
        jax.jit(traced)(j(Y))


# --------------------------------------------------------------------------- conversions


def test_asarray_keeps_integer_values_in_32_bits_and_refuses_what_does_not_fit():
    backend = plugin_module.BACKEND
    if jax.config.jax_enable_x64:
        pytest.skip("64-bit mode is on: int64 stays int64")
    a = backend.asarray(np.array([0, 2**31 - 1, -(2**31)], dtype=np.int64))
    assert_jax_array(a, jnp.int32)
    np.testing.assert_array_equal(np.asarray(a), [0, 2**31 - 1, -(2**31)])
    assert backend.asarray([3, 4], dtype="int64").dtype == jnp.int32
    with pytest.raises(ValueError, match=r"2147483648 at flat position 1.*jax_enable_x64"):
        backend.asarray(np.array([1, 2**31], dtype=np.int64))
    with pytest.raises(ValueError, match=r"4294967296.*uint32"):
        backend.asarray(np.array([2**32], dtype=np.uint64))
    # labels given as host int64 reach the losses as int32, values unchanged
    loss = ms.sampled_softmax_loss(j(W), j(BIAS), Y, j(X), S, C, sampled_values=jsampled())
    np.testing.assert_allclose(
        host(loss), reference.sampled_softmax_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled()),
        rtol=1e-5, atol=1e-5)


def test_asarray_of_host_data_is_concrete_while_jit_traces():
    """The core caches constant tables made from host data; a cached tracer would leak."""
    made = {}

    def f(x):
        made["host"] = plugin_module.BACKEND.asarray(np.arange(3), dtype="uint32")
        made["cast"] = plugin_module.BACKEND.asarray(x, dtype="bfloat16")
        return jnp.sum(x)

    jax.jit(f)(j(X))
    assert not isinstance(made["host"], jax.core.Tracer)
    assert made["host"].dtype == jnp.uint32 and np.asarray(made["host"]).tolist() == [0, 1, 2]
    assert isinstance(made["cast"], jax.core.Tracer)  # a traced argument stays traced


def test_asarray_floats_bfloat16_devices_and_to_numpy():
    backend = plugin_module.BACKEND
    assert_jax_array(backend.asarray([0.5, 1.0]), jnp.float32)  # JAX's default float
    if not jax.config.jax_enable_x64:
        assert backend.asarray(np.ones(2)).dtype == jnp.float32  # float64 data: JAX's float32
    bf = backend.asarray([0.5, 3.0], dtype="bfloat16")
    assert_jax_array(bf, jnp.bfloat16)
    back = backend.to_numpy(bf)
    assert back.dtype == np.float32 and back.tolist() == [0.5, 3.0]
    # casting a JAX array
    assert backend.asarray(j(X), dtype="bfloat16").dtype == jnp.bfloat16
    names = backend.devices()
    assert "cpu:0" in names
    on_cpu = backend.asarray([1.0], device="cpu:0")
    assert plugin_module._device_name(backend.device_of(on_cpu)) == "cpu:0"
    assert backend.asarray([1.0], device=jax.devices("cpu")[0]).devices() == on_cpu.devices()
    with pytest.raises(ValueError, match=r"device='tpu:7'.*cpu:0"):
        backend.asarray([1.0], device="tpu:7")
    assert backend.stop_gradient is not None
    g = jax.grad(lambda v: jnp.sum(backend.stop_gradient(v) * v))(j(X))
    np.testing.assert_allclose(np.asarray(g), X)  # only the second factor is differentiated


# --------------------------------------------------------------------------- values


def test_sampled_softmax_loss_explicit_values_match_numpy_and_reference():
    loss = ms.sampled_softmax_loss(j(W), j(BIAS), j(Y), j(X), S, C, sampled_values=jsampled())
    assert_jax_array(loss, jnp.float32)
    on_numpy = ms.sampled_softmax_loss(W, BIAS, Y, X, S, C, sampled_values=SAMPLED,
                                       backend="numpy")
    np.testing.assert_allclose(host(loss), host(on_numpy), rtol=1e-6, atol=1e-6)
    expected = reference.sampled_softmax_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled())
    np.testing.assert_allclose(host(loss), expected, rtol=1e-5, atol=1e-5)


def test_sampled_softmax_loss_default_sampler_matches_numpy_with_the_same_seed():
    _rng.reset_streams()
    first = ms.sampled_softmax_loss(j(W), j(BIAS), j(Y), j(X), S, C, seed=7)
    second = ms.sampled_softmax_loss(j(W), j(BIAS), j(Y), j(X), S, C, seed=7)
    _rng.reset_streams()
    np_first = ms.sampled_softmax_loss(W, BIAS, Y, X, S, C, seed=7, backend="numpy")
    np_second = ms.sampled_softmax_loss(W, BIAS, Y, X, S, C, seed=7, backend="numpy")
    assert_jax_array(first, jnp.float32)
    np.testing.assert_allclose(host(first), host(np_first), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(host(second), host(np_second), rtol=1e-6, atol=1e-6)
    assert not np.allclose(host(first), host(second)), "consecutive seeded calls must differ"
    # and it is the seeded unique log-uniform sampler's draw
    _rng.reset_streams()
    drawn = ms.log_uniform_candidate_sampler(Y, 1, S, True, C, seed=7, backend="numpy")
    expected = reference.sampled_softmax_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled(drawn))
    np.testing.assert_allclose(host(first), expected, rtol=1e-5, atol=1e-5)


def test_nce_loss_matches_numpy_and_reference():
    loss = ms.nce_loss(j(W), j(BIAS), j(Y), j(X), S, C, sampled_values=jsampled())
    assert_jax_array(loss, jnp.float32)
    on_numpy = ms.nce_loss(W, BIAS, Y, X, S, C, sampled_values=SAMPLED, backend="numpy")
    np.testing.assert_allclose(host(loss), host(on_numpy), rtol=1e-6, atol=1e-6)
    expected = reference.nce_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled())
    np.testing.assert_allclose(host(loss), expected, rtol=1e-5, atol=1e-5)


def test_compute_sampled_logits_matches_numpy_and_reference():
    logits, labels = ms.compute_sampled_logits(
        j(W), j(BIAS), j(Y), j(X), S, C, sampled_values=jsampled(), remove_accidental_hits=True)
    assert_jax_array(logits, jnp.float32)
    assert_jax_array(labels, jnp.float32)
    np_logits, np_labels = ms.compute_sampled_logits(
        W, BIAS, Y, X, S, C, sampled_values=SAMPLED, remove_accidental_hits=True,
        backend="numpy")
    np.testing.assert_allclose(host(logits), host(np_logits), rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(host(labels), host(np_labels))
    ref_logits, ref_labels = reference.sampled_logits(
        f64(W), f64(BIAS), Y, f64(X), ref_sampled(), remove_accidental_hits=True)
    np.testing.assert_allclose(host(logits), ref_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(host(labels), ref_labels)
    assert host(logits)[1, 1 + 3] < -1e38 and host(logits)[1, 1 + 0] > -1e38  # last copy only


def test_paddle_customized_samples_match_numpy_and_reference():
    logits = _rs.standard_normal((B, C)).astype(np.float32)
    samples = np.concatenate([Y, np.array([[2, 5, 9, 11, 0], [1, 7, 3, 3, 19],
                                           [4, 11, 6, 8, 2]])], axis=1)
    probs = np.linspace(0.05, 0.9, B * (1 + S), dtype=np.float32).reshape(B, 1 + S)
    loss = ms.sampled_softmax_with_cross_entropy(
        j(logits), j(Y), S, use_customized_samples=True, customized_samples=j(samples),
        customized_probabilities=j(probs))
    assert_jax_array(loss, jnp.float32)
    assert loss.shape == (B, 1)
    on_numpy = ms.sampled_softmax_with_cross_entropy(
        logits, Y, S, use_customized_samples=True, customized_samples=samples,
        customized_probabilities=probs, backend="numpy")
    np.testing.assert_allclose(host(loss), host(on_numpy), rtol=1e-6, atol=1e-6)
    expected = reference.paddle_sampled_softmax(f64(logits), Y, samples, f64(probs))
    np.testing.assert_allclose(host(loss), expected, rtol=1e-5, atol=1e-5)


def test_paddle_default_negatives_match_numpy_with_a_nonzero_seed():
    logits = _rs.standard_normal((B, C)).astype(np.float32)
    loss = ms.sampled_softmax_with_cross_entropy(j(logits), j(Y), S, seed=5)
    on_numpy = ms.sampled_softmax_with_cross_entropy(logits, Y, S, seed=5, backend="numpy")
    np.testing.assert_allclose(host(loss), host(on_numpy), rtol=1e-6, atol=1e-6)


def test_compute_accidental_hits_matches_reference():
    labels = np.array([[2, 7], [7, 7], [11, 0]], dtype=np.int64)
    indices, ids, weights = ms.compute_accidental_hits(j(labels), j(CANDIDATES), 2)
    assert_jax_array(indices, jnp.int32)
    assert_jax_array(ids, context(j(labels)).index_dtype)
    assert_jax_array(weights, jnp.float32)
    ref_indices, ref_ids, ref_weights = reference.accidental_hits(labels, CANDIDATES)
    np.testing.assert_array_equal(np.asarray(indices), ref_indices)
    np.testing.assert_array_equal(np.asarray(ids), ref_ids)
    np.testing.assert_array_equal(np.asarray(weights), ref_weights)


# --------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("sampler, unique", [("log_uniform", True), ("uniform", False)])
def test_sampler_candidates_are_bit_identical_to_numpy(sampler, unique):
    fn = getattr(ms, f"{sampler}_candidate_sampler")
    _rng.reset_streams()
    mine = [fn(j(Y), 1, S, unique, C, seed=99) for _ in range(2)]
    _rng.reset_streams()
    theirs = [fn(Y, 1, S, unique, C, seed=99, backend="numpy") for _ in range(2)]
    for got, want in zip(mine, theirs):
        assert_jax_array(got.sampled_candidates, context(j(Y)).index_dtype)
        np.testing.assert_array_equal(np.asarray(got.sampled_candidates),
                                      np.asarray(want.sampled_candidates))
        np.testing.assert_allclose(host(got.true_expected_count),
                                   host(want.true_expected_count), rtol=1e-6)
        np.testing.assert_allclose(host(got.sampled_expected_count),
                                   host(want.sampled_expected_count), rtol=1e-6)
    assert not np.array_equal(np.asarray(mine[0][0]), np.asarray(mine[1][0]))
    if unique:
        assert len(set(np.asarray(mine[0][0]).tolist())) == S


def test_threefry_is_jax_primitive_bit_identical_to_the_portable_core():
    import array_api_compat.numpy as npx

    rs = np.random.default_rng(5)
    c0 = rs.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    c1 = rs.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    fast = plugin_module.BACKEND.threefry2x32
    for key in ((0, 0), (0x12345678, 0x9ABCDEF0), (2**32 - 1, 1)):
        got = fast(jnp, key[0], key[1], j(c0), j(c1))
        want = _rng.threefry2x32(npx, key[0], key[1], c0, c1)
        for g, w in zip(got, want):
            assert g.dtype == jnp.uint32
            np.testing.assert_array_equal(np.asarray(g), w)
    # Random123's known answer
    zero = j(np.zeros(1, np.uint32))
    x0, x1 = fast(jnp, 0, 0, zero, zero)
    assert (int(x0[0]), int(x1[0])) == (0x6B200159, 0x99BA4EFE)


# --------------------------------------------------------------------------- autodiff and jit


def _reference_grads(sampled):
    g = reference.sampled_softmax_loss_grad(f64(W), f64(BIAS), Y, f64(X), ref_sampled(sampled))
    return g["weights"], g["biases"], g["inputs"]


def test_grad_of_sampled_softmax_loss_matches_the_analytic_reference():
    def total(w, b, x):
        return jnp.sum(ms.sampled_softmax_loss(w, b, j(Y), x, S, C, sampled_values=jsampled()))

    grads = jax.grad(total, argnums=(0, 1, 2))(j(W), j(BIAS), j(X))
    for got, want, name in zip(grads, _reference_grads(SAMPLED), ("weights", "biases", "inputs")):
        assert_jax_array(got, jnp.float32)
        np.testing.assert_allclose(host(got), want, rtol=1e-5, atol=1e-5, err_msg=name)
    jitted = jax.jit(jax.grad(total, argnums=(0, 1, 2)))(j(W), j(BIAS), j(X))
    for got, want in zip(jitted, grads):
        np.testing.assert_allclose(host(got), host(want), rtol=1e-6, atol=1e-6)


def test_grad_with_the_default_sampler_uses_the_seeded_stream():
    """Inside ``jax.grad`` (no jit) the sampler runs eagerly on the stream; without host checks
    it takes the one-block path, which must give the eager path's candidates."""
    _rng.reset_streams()
    drawn = ms.log_uniform_candidate_sampler(j(Y), 1, S, True, C, seed=11)
    _rng.reset_streams()

    def total(w, b, x):
        return jnp.sum(ms.sampled_softmax_loss(w, b, j(Y), x, S, C, seed=11))

    grads = jax.grad(total, argnums=(0, 1, 2))(j(W), j(BIAS), j(X))
    sampled = tuple(np.asarray(v) for v in drawn)
    for got, want in zip(grads, _reference_grads(sampled)):
        np.testing.assert_allclose(host(got), want, rtol=1e-5, atol=1e-5)


def test_jit_with_explicit_sampled_values_is_a_function_of_its_arguments():
    @jax.jit
    def loss(w, b, y, x, candidates, true_count, sampled_count):
        return ms.sampled_softmax_loss(w, b, y, x, S, C,
                                       sampled_values=(candidates, true_count, sampled_count))

    other = (np.array([1, 19, 7, 5, 6]), TRUE_COUNT, SAMPLED_COUNT[::-1].copy())
    for values in (SAMPLED, other):
        got = loss(j(W), j(BIAS), j(Y), j(X), *jsampled(values))
        assert_jax_array(got, jnp.float32)
        expected = reference.sampled_softmax_loss(f64(W), f64(BIAS), Y, f64(X),
                                                  ref_sampled(values))
        np.testing.assert_allclose(host(got), expected, rtol=1e-5, atol=1e-5)


def test_jit_of_nce_loss_and_paddle_customized_samples():
    nce = jax.jit(lambda w, b, x, c, tq, sq: ms.nce_loss(w, b, j(Y), x, S, C,
                                                         sampled_values=(c, tq, sq)))
    got = nce(j(W), j(BIAS), j(X), *jsampled())
    expected = reference.nce_loss(f64(W), f64(BIAS), Y, f64(X), ref_sampled())
    np.testing.assert_allclose(host(got), expected, rtol=1e-5, atol=1e-5)

    logits = _rs.standard_normal((B, C)).astype(np.float32)
    samples = np.concatenate([Y, np.broadcast_to(CANDIDATES, (B, S))], axis=1)
    probs = np.full((B, 1 + S), 0.4, dtype=np.float32)
    paddle = jax.jit(lambda lg, s, p: ms.sampled_softmax_with_cross_entropy(
        lg, j(Y), S, use_customized_samples=True, customized_samples=s,
        customized_probabilities=p))
    got = paddle(j(logits), j(samples), j(probs))
    expected = reference.paddle_sampled_softmax(f64(logits), Y, samples, f64(probs))
    np.testing.assert_allclose(host(got), expected, rtol=1e-5, atol=1e-5)


def test_samplers_refuse_to_be_traced_by_jit_and_leave_no_tracer_behind():
    def loss(w):
        return ms.sampled_softmax_loss(w, j(BIAS), j(Y), j(X), S, C, seed=3)

    with pytest.raises(TypeError, match=r"needs a key as seed.*jax\.random\.key.*same negatives"):
        jax.jit(loss)(j(W))
    with pytest.raises(TypeError, match=r"needs a key as seed.*jax\.random\.key"):
        jax.jit(lambda y: ms.uniform_candidate_sampler(y, 1, S, False, C, seed=3))(j(Y))
    with pytest.raises(TypeError, match=r"jax\.jit.*customized_samples"):
        jax.jit(lambda lg: ms.sampled_softmax_with_cross_entropy(lg, j(Y), S, seed=4))(
            j(np.zeros((B, C), np.float32)))
    # eager calls still work, also with host labels (no device: the same table cache entry as
    # the traced call)
    eager = loss(j(W))
    assert np.all(np.isfinite(host(eager)))
    drawn = ms.log_uniform_candidate_sampler(Y, 1, S, True, C, seed=3, backend="jax")
    assert isinstance(drawn.sampled_candidates, jax.Array)


# --------------------------------------------------------------------------- value checks


def test_host_checks_only_for_concrete_cpu_arrays_outside_transformations():
    assert context(j(X)).may_read_values is True
    assert context(X, backend="jax").may_read_values is True  # host data
    seen = {}

    def record(where):
        def f(x):
            seen[where] = context(x).may_read_values
            seen[where + "/concrete"] = context(j(Y)).may_read_values  # a concrete array inside
            return jnp.sum(x)

        return f

    jax.jit(record("jit"))(j(X))
    jax.grad(record("grad"))(j(X))
    jax.vmap(record("vmap"))(j(X))
    assert not any(seen.values()), seen


def test_host_checks_fallback_without_the_private_trace_state(monkeypatch):
    """Should ``jax._src.core.trace_state_clean`` go away, jit is still detected publicly."""
    monkeypatch.setattr(plugin_module, "_trace_state_clean", lambda: None)
    assert context(j(X)).may_read_values is True
    seen = {}

    def f(x):
        seen["jit"] = context(x).may_read_values
        return jnp.sum(x)

    jax.jit(f)(j(X))
    assert seen["jit"] is False


def test_bad_labels_raise_eagerly_and_are_clipped_under_jit():
    bad = np.array([[2], [25], [11]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, 20\).*max 25"):
        ms.sampled_softmax_loss(j(W), j(BIAS), j(bad), j(X), S, C, sampled_values=jsampled())
    with pytest.raises(ValueError, match=r"sampled_expected_count.*> 0"):
        ms.sampled_softmax_loss(j(W), j(BIAS), j(Y), j(X), S, C,
                                sampled_values=jsampled((CANDIDATES, TRUE_COUNT,
                                                         -SAMPLED_COUNT)))

    @jax.jit
    def loss(y, candidates):
        return ms.sampled_softmax_loss(j(W), j(BIAS), y, j(X), S, C,
                                       sampled_values=(candidates, j(TRUE_COUNT),
                                                       j(SAMPLED_COUNT)))

    # traced values cannot be read: no check, ids clipped into [0, C) before every gather
    bad_candidates = np.array([7, 0, 13, 7, -4])
    got = loss(j(bad), j(bad_candidates))
    clipped = (np.clip(bad_candidates, 0, C - 1), TRUE_COUNT, SAMPLED_COUNT)
    expected = reference.sampled_softmax_loss(f64(W), f64(BIAS), np.clip(bad, 0, C - 1), f64(X),
                                              ref_sampled(clipped))
    np.testing.assert_allclose(host(got), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- unique selection


def _first_distinct_rule(classes, s):
    """TF's rule, stated independently: keep a draw iff its class is new; ``(kept, tries)``
    with ``tries = n + 1`` when fewer than ``s`` classes are distinct."""
    seen, kept = set(), []
    for i, c in enumerate(classes):
        if c not in seen:
            seen.add(c)
            kept.append(c)
            if len(kept) == s:
                return kept, i + 1
    return kept, len(classes) + 1


@settings(max_examples=30, deadline=None)
@given(data=st.data(), num_classes=st.integers(1, 40), s=st.integers(1, 12),
       table=st.booleans())
def test_first_distinct_per_class_table_is_tf_rule(data, num_classes, s, table):
    """The backend's selection under jit (the per-class table; with ``table=False`` the
    portable sorts, past :func:`multisampled.kernels.table_fits`) keeps TF's first
    occurrences, and a short block gives ``num_tries = n + 1`` with the last draw filling."""
    from multisampled import kernels

    n = data.draw(st.integers(s, 60), label="n")  # a block holds at least s draws
    classes = data.draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n),
                        label="classes")
    backend = plugin_module.Jax()
    with pytest.MonkeyPatch.context() as m:
        if not table:
            m.setattr(kernels, "table_fits", lambda num, ids: False)
        got, tries = jax.jit(lambda c: backend.first_distinct(jnp, c, s, num_classes))(
            jnp.asarray(classes, dtype=jnp.int32))
    want, want_tries = _first_distinct_rule(classes, s)
    assert int(tries) == want_tries
    assert host(got).tolist() == want + [classes[-1]] * (s - len(want))
