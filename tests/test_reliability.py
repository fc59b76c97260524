"""Reliability and scale: ranges beyond 2**32 without per-class memory, labels of other dtypes
and layouts, empty batches, the counts compute_sampled_logits ignores, argument names in
messages, value checks under compilers, and TensorFlow's own answers where it computes."""

import decimal
import math
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.stats

import multisampled as ms
from multisampled import _distributions, _log_uniform, _rng, v1
from multisampled._tf_args import SampledValuesError

C, D, B, S = 10, 4, 2, 4
RNG = np.random.default_rng(0)
W = RNG.standard_normal((C, D)).astype(np.float32)
BIAS = RNG.standard_normal(C).astype(np.float32)
X = RNG.standard_normal((B, D)).astype(np.float32)
Y = np.array([[3], [1]], np.int64)
SV = (np.array([1, 0, 2, 3], np.int64), np.full((B, 1), 0.5, np.float32),
      np.full(S, 0.25, np.float32))


def host(a):
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _backends():
    """The installed array backends with int64 ids (JAX without x64 has int32 ids)."""
    names = ["numpy"]
    for name in ("torch", "tensorflow"):
        try:
            __import__(name)
            names.append(name)
        except ImportError:
            pass
    return names


INT64_BACKENDS = _backends()


def _words(n, seed):
    rng = np.random.default_rng(seed)
    hi = rng.integers(0, 2**32, n, dtype=np.int64)
    lo = rng.integers(0, 2**32, n, dtype=np.int64)
    hi[:3], lo[:3] = [0, 2**32 - 1, 2**32 - 1], [0, 2**32 - 1, 2**32 - 2]  # u = 0 and u near 1
    return hi, lo


# --------------------------------------------------------------------------- 1. large ranges


@pytest.mark.parametrize("backend", INT64_BACKENDS)
def test_uniform_range_beyond_2_32_as_tf_test_large_uniform_range(backend):
    # TensorFlow's testLargeUniformRange: valid ids for range_max = 2**32 + 1
    r = 2**32 + 1
    out = ms.uniform_candidate_sampler([[0]], 1, 2, False, r, seed=123, backend=backend)
    c = host(out.sampled_candidates)
    assert c.dtype == np.int64 and c.shape == (2,)
    assert np.all((c >= 0) & (c < r))
    assert host(out.sampled_expected_count).tolist() == [float(np.float32(2 / r))] * 2


@pytest.mark.parametrize("n", [2**32, 2**32 + 1, 3 * 2**40 + 7, 2**62 + 1, 2**63 - 1])
def test_uniform_int_with_a_64_bit_range_is_the_exact_floor(n):
    import array_api_compat.numpy as xnp

    hi, lo = _words(4000, n % 1000)
    expected = [((int(h) << 32 | int(w)) * n) >> 64 for h, w in zip(hi, lo)]
    namespaces = [(xnp, lambda a: a)]
    try:
        import array_api_compat.torch as xtorch
        import torch

        namespaces.append((xtorch, torch.from_numpy))
    except ImportError:
        pass
    for xp, conv in namespaces:
        got = host(_rng.uniform_int(xp, conv(hi), conv(lo), n))
        assert got.tolist() == expected


@pytest.mark.parametrize("r", [2**40 + 3, 2**62 + 1])
@pytest.mark.parametrize("unique", [False, True])
def test_large_uniform_range_is_bit_identical_across_backends(r, unique):
    runs = [ms.uniform_candidate_sampler([[r - 1]], 1, 500, unique, r, seed=ms.Generator(7),
                                         backend=b) for b in INT64_BACKENDS]
    first = [host(v) for v in runs[0]]
    for out in runs[1:]:
        for want, got in zip(first, out):
            np.testing.assert_array_equal(host(got), want)


def test_large_uniform_range_frequencies():
    r = 2**62 + 2**40 + 3
    bins = 16
    width = -(-r // bins)
    c = host(ms.uniform_candidate_sampler([[0]], 1, 40000, False, r, seed=ms.Generator(11))
             .sampled_candidates)
    counts = np.bincount([int(k) // width for k in c], minlength=bins)
    sizes = np.array([min((j + 1) * width, r) - j * width for j in range(bins)], np.float64)
    expected = sizes / r * counts.sum()
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-4


def _exact_log_uniform(h, w, r):
    ctx = decimal.Context(prec=50)
    u = decimal.Decimal(int(h) * 2**32 + int(w)) / decimal.Decimal(2**64)
    v = ctx.exp(u * ctx.ln(decimal.Decimal(r + 1)))
    k = int(v) - 1
    frac = v - int(v)
    near = min(frac, 1 - frac) / v  # relative distance to a class boundary
    return (k - r if k >= r else k), near


@pytest.mark.parametrize("r", [2**28 + 1, 2**31 - 1, 2**40 + 7, 2**53 + 3, 2**63 - 1])
def test_log_uniform_without_a_table_is_the_exact_inverse_cdf(r):
    import array_api_compat.numpy as xnp

    hi, lo = _words(1500, r % 997)
    got = _log_uniform.log_uniform_classes(xnp, hi, lo, r, _log_uniform.exp2_limb_tables())
    for h, w, k in zip(hi, lo, got):
        want, near = _exact_log_uniform(h, w, r)
        # equal except within the fixed point's relative error (2**-58) of a class boundary
        assert int(k) == want or near < decimal.Decimal(2) ** -57, (h, w, int(k), want)
    if r < 2**31:  # uint32 words (JAX without x64) give the same classes
        u32 = [t.astype(np.uint32) for t in _log_uniform.exp2_limb_tables()]
        k32 = _log_uniform.log_uniform_classes(xnp, hi.astype(np.uint32), lo.astype(np.uint32), r, u32)
        np.testing.assert_array_equal(k32.astype(np.int64), got)


def _jax_available():
    try:
        import jax  # noqa: F401

        return True
    except ImportError:
        return False


@pytest.mark.parametrize("r", [2**28 + 3, 2**31 + 5, 2**45 + 1])
@pytest.mark.parametrize("unique", [False, True])
def test_log_uniform_beyond_the_table_limit_is_bit_identical_across_backends(r, unique):
    names = list(INT64_BACKENDS)
    if r < 2**31 and _jax_available():
        names.append("jax")
    tc = np.array([[0], [5], [r - 1]], np.int64)
    runs = {b: ms.log_uniform_candidate_sampler(tc, 1, 300, unique, r, seed=ms.Generator(5),
                                                backend=b) for b in names}
    first = runs["numpy"]
    for b, out in runs.items():
        np.testing.assert_array_equal(host(out.sampled_candidates).astype(np.int64),
                                      host(first.sampled_candidates), err_msg=b)
        # expected counts: TF's formula in float64 (float32 on JAX without x64)
        np.testing.assert_allclose(host(out.sampled_expected_count),
                                   host(first.sampled_expected_count), rtol=1e-6, err_msg=b)
        np.testing.assert_allclose(host(out.true_expected_count),
                                   host(first.true_expected_count), rtol=1e-6, err_msg=b)


@pytest.mark.parametrize("compiler", ["tf.function", "torch.compile", "jax.jit"])
def test_log_uniform_beyond_the_table_limit_traces_with_a_key(compiler):
    # the fixed-point constants and tables are host work: a compiler takes them as constants
    r = 2**31 + 5
    key = np.array([3, 9], np.int64)

    def draw(y, k):
        return ms.log_uniform_candidate_sampler(y, 1, 40, True, r, seed=k).sampled_candidates

    if compiler == "tf.function":
        tf = pytest.importorskip("tensorflow")
        got = tf.function(draw, autograph=False)(tf.constant([[0]], tf.int64), tf.constant(key))
    elif compiler == "torch.compile":
        torch = pytest.importorskip("torch")
        got = torch.compile(draw, fullgraph=True, backend="eager")(
            torch.zeros((1, 1), dtype=torch.int64), torch.from_numpy(key))
    else:
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        if not jax.config.jax_enable_x64:
            r = 2**30 + 3  # int32 ids
        got = jax.jit(draw)(jnp.zeros((1, 1), jnp.int32), jnp.asarray(key, jnp.uint32))
    want = ms.log_uniform_candidate_sampler(np.zeros((1, 1), np.int64), 1, 40, True, r,
                                            seed=key).sampled_candidates
    np.testing.assert_array_equal(host(got).astype(np.int64), want)


def _log_uniform_bin_masses(r, first):
    """Masses of the classes 0..first-1, then of the classes k with floor(log2(k+1)) = j."""
    lr = math.log1p(r)
    masses = [math.log((k + 2) / (k + 1)) / lr for k in range(first)]
    j = first.bit_length() - 1
    while 2**j <= r:
        top = min(2 ** (j + 1), r + 1)
        masses.append((math.log(top) - math.log(2**j)) / lr)
        j += 1
    return np.array(masses)


def _log_uniform_bins(c, first):
    return np.array([int(k) if k < first else first + (int(k) + 1).bit_length() - 1
                     - (first.bit_length() - 1) for k in c])


@pytest.mark.parametrize("r", [2**29 + 17, 2**40 + 1])
def test_log_uniform_beyond_the_table_limit_frequencies(r):
    first = 16
    c = host(ms.log_uniform_candidate_sampler([[0]], 1, 200000, False, r, seed=ms.Generator(3))
             .sampled_candidates)
    assert c.min() >= 0 and c.max() < r
    masses = _log_uniform_bin_masses(r, first)
    counts = np.bincount(_log_uniform_bins(c, first), minlength=len(masses))
    assert counts.shape[0] == len(masses)
    expected = masses / masses.sum() * counts.sum()
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-4


def test_log_uniform_expected_counts_beyond_the_table_limit_are_tfs():
    tf = pytest.importorskip("tensorflow")
    r = 2**31 + 5
    tc = np.array([[0], [5], [70000], [2**31], [2**31 + 4]], np.int64)
    theirs = tf.random.log_uniform_candidate_sampler(tc, 1, 3, False, r, seed=1)
    ours = ms.log_uniform_candidate_sampler(tc, 1, 3, False, r, seed=1)
    np.testing.assert_allclose(host(ours.true_expected_count),
                               theirs.true_expected_count.numpy(), rtol=2e-7)


def test_log_uniform_probabilities_stay_positive_where_tfs_ratio_rounds_to_one():
    r = 2**62
    ctx = _context("numpy")
    k = np.array([0, 2**40, 2**53 + 2, 2**61], np.int64)
    p = _distributions.log_uniform_prob(ctx, k, r)
    assert np.all(p > 0)
    # TF's log((k+2)/(k+1)) is 0 at the last two: log1p(1/(k+1)) / log1p(R) there
    want = [math.log1p(1 / (int(v) + 1)) / math.log1p(r) for v in k]
    np.testing.assert_allclose(p, want, rtol=1e-6)


def _context(backend):
    from multisampled._context import context

    return context(backend=backend)


@pytest.mark.parametrize("sampler", ["uniform", "log_uniform"])
def test_huge_ranges_take_memory_independent_of_the_range(sampler):
    fn = getattr(ms, f"{sampler}_candidate_sampler")
    fn([[0]], 1, 64, True, 2**20, seed=1)  # warm-up: imports, caches
    tracemalloc.start()
    try:
        out = fn(np.zeros((1, 1), np.int64), 1, 5, True, 2**31 + 5, seed=1)
        out = fn(np.zeros((1, 1), np.int64), 1, 5, True, 2**62 + 5, seed=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert np.all(host(out.sampled_candidates) < 2**62 + 5)


@pytest.mark.parametrize("sampler", ["uniform", "log_uniform"])
def test_torch_unique_sampling_over_a_huge_range_keeps_no_per_class_table(sampler):
    torch = pytest.importorskip("torch")
    fn = getattr(ms, f"{sampler}_candidate_sampler")
    r = 2**50 + 3  # a per-class table would be 8 PiB
    # fresh streams: the process-wide int-seed streams hold whatever earlier tests drew
    out = fn(torch.zeros((1, 1), dtype=torch.int64), 1, 50, True, r, seed=ms.Generator(2))
    ref = fn(np.zeros((1, 1), np.int64), 1, 50, True, r, seed=ms.Generator(2))
    np.testing.assert_array_equal(host(out.sampled_candidates), host(ref.sampled_candidates))
    assert len(set(host(out.sampled_candidates).tolist())) == 50


def test_range_max_must_fit_the_index_dtype():
    with pytest.raises(ValueError, match=r"range_max=9223372036854775808 .*int64.*at most "
                                         r"9223372036854775807"):
        ms.uniform_candidate_sampler([[0]], 1, 2, False, 2**63, seed=1)


def test_range_max_beyond_int32_on_jax_without_x64_names_range_max():
    jax = pytest.importorskip("jax")
    if jax.config.jax_enable_x64:
        pytest.skip("x64 enabled")
    with pytest.raises(ValueError, match=r"range_max=4294967297 .*int32"):
        ms.uniform_candidate_sampler([[0]], 1, 2, False, 2**32 + 1, seed=1, backend="jax")


# --------------------------------------------------------------------------- 2. label dtypes


def _loss_calls(labels, backend):
    kw = dict(sampled_values=SV, backend=backend)
    return {
        "sampled_softmax_loss": lambda: ms.sampled_softmax_loss(W, BIAS, labels, X, S, C, **kw),
        "nce_loss": lambda: ms.nce_loss(W, BIAS, labels, X, S, C, **kw),
        "compute_sampled_logits": lambda: ms.compute_sampled_logits(
            W, BIAS, labels, X, S, C, **kw)[0],
        "v1.sampled_softmax_loss": lambda: v1.sampled_softmax_loss(
            W, BIAS, labels, X, S, C, **kw),
        "rank_sampled_softmax_loss": lambda: ms.rank_sampled_softmax_loss(
            W, BIAS, labels, X, S, 2, C, **kw),
        "paddle label": lambda: ms.sampled_softmax_with_cross_entropy(
            np.tile(BIAS, (B, 1)), labels, 3, seed=4, backend=backend),
        "sampler true_classes": lambda: ms.uniform_candidate_sampler(
            labels, 1, 3, True, C, seed=ms.Generator(1), backend=backend).true_expected_count,
    }


def _unsigned_labels(kind, dtype):
    torch = pytest.importorskip("torch")
    if kind == "numpy":
        return Y.astype(dtype)
    return torch.from_numpy(Y).to(getattr(torch, dtype))


@pytest.mark.parametrize("kind", ["torch", "numpy"])
@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_unsigned_labels_on_torch_equal_int64_labels(kind, dtype):
    labels = _unsigned_labels(kind, dtype)
    want = _loss_calls(Y, "torch")
    for name, call in _loss_calls(labels, "torch").items():
        np.testing.assert_allclose(host(call()), host(want[name]()), rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_uint64_labels_above_2_63_hit_the_range_error(kind):
    torch = pytest.importorskip("torch")
    big = np.array([[2**63 + 1], [1]], np.uint64)
    labels = big if kind == "numpy" else torch.from_numpy(big.astype(np.int64)).to(torch.uint64)
    calls = _loss_calls(labels, "torch")
    for name in ("sampled_softmax_loss", "nce_loss", "compute_sampled_logits",
                 "rank_sampled_softmax_loss"):
        with pytest.raises(ValueError, match=r"labels must hold values in \[0, 10\); got values "
                                             r"with min 1, max 9223372036854775809"):
            calls[name]()
    with pytest.raises(ValueError, match=r"\blabel must hold values in \[0, 10\).*"
                                         r"max 9223372036854775809"):
        calls["paddle label"]()
    with pytest.raises(ValueError, match=r"true_classes values must be in \[0, 10\).*got "
                                         r"9223372036854775809 at flat position 0"):
        calls["sampler true_classes"]()


def test_unsigned_sampled_candidates_on_torch():
    torch = pytest.importorskip("torch")
    cands = torch.from_numpy(SV[0]).to(torch.uint32)
    got = ms.sampled_softmax_loss(torch.from_numpy(W), torch.from_numpy(BIAS), Y,
                                  torch.from_numpy(X), S, C, sampled_values=(cands, *SV[1:]))
    want = ms.sampled_softmax_loss(W, BIAS, Y, X, S, C, sampled_values=SV)
    np.testing.assert_allclose(host(got), want, rtol=1e-6)


def test_numpy_arrays_with_negative_strides_on_torch():
    pytest.importorskip("torch")
    w, b, x, y = W[::-1], BIAS[::-1], X[::-1], Y[::-1]
    got = ms.sampled_softmax_loss(w, b, y, x, S, C, sampled_values=SV, backend="torch")
    want = ms.sampled_softmax_loss(w.copy(), b.copy(), y.copy(), x.copy(), S, C,
                                   sampled_values=SV)
    np.testing.assert_allclose(host(got), want, rtol=1e-6)


# --------------------------------------------------------------------------- 3. empty batches


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
def test_rank_sampled_softmax_loss_of_an_empty_batch(backend):
    pytest.importorskip(backend)
    y, x = np.zeros((0, 1), np.int64), np.zeros((0, D), np.float32)
    out = ms.rank_sampled_softmax_loss(W, BIAS, y, x, S, 2, C, seed=1, backend=backend)
    assert tuple(host(out).shape) == (0,)
    tq = np.ones((0, 1), np.float32)
    out = ms.rank_sampled_softmax_loss(W, BIAS, y, x, S, 2, C, sampled_values=(SV[0], tq, SV[2]),
                                       backend=backend)
    assert tuple(host(out).shape) == (0,)


# --------------------------------------------------------------------------- 4. no log Q


def test_compute_sampled_logits_without_log_q_ignores_the_counts_as_tf():
    tf = pytest.importorskip("tensorflow")
    from tensorflow.python.ops.nn_impl import _compute_sampled_logits

    cases = [
        (np.array([1, 0, 2, 3]), np.ones(4, np.float32), np.ones(4, np.float32)),  # wrong shape
        (np.array([1, 0, 2, 3]), np.zeros((B, 1), np.float32), np.zeros(4, np.float32)),
        (np.array([1, 0, 2, 3]), np.full((B, 1), -1.0, np.float32), np.full(7, np.nan,
                                                                             np.float32)),
    ]
    for sv in cases:
        theirs, _ = _compute_sampled_logits(tf.constant(W), tf.constant(BIAS), Y, tf.constant(X),
                                            4, C, sampled_values=tuple(tf.constant(v) for v in sv),
                                            subtract_log_q=False, partition_strategy="div")
        ours, _ = ms.compute_sampled_logits(W, BIAS, Y, X, 4, C, sampled_values=sv,
                                            subtract_log_q=False)
        assert np.all(np.isfinite(ours))
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match=r"sampled_values\[1\] \(true_expected_count\) must "
                                        r"have a real floating dtype"):
        ms.compute_sampled_logits(W, BIAS, Y, X, 4, C, subtract_log_q=False,
                                  sampled_values=(SV[0], np.ones((B, 1), np.int64), SV[2]))


# --------------------------------------------------------------------------- 5. triples


@pytest.mark.parametrize("bad", [(SV[0],), SV[:2], SV + (SV[2],), {}, {"a": 1}, "abc"])
def test_sampled_values_that_are_not_a_triple_raise_tfs_value_error(bad):
    for fn in (ms.sampled_softmax_loss, ms.nce_loss, v1.nce_loss):
        with pytest.raises(ValueError, match=r"sampled_values must be a tuple") as info:
            fn(W, BIAS, Y, X, S, C, sampled_values=bad)
        assert isinstance(info.value, (SampledValuesError, TypeError))
    with pytest.raises(ValueError, match=r"sampled_values must be a tuple"):
        ms.compute_sampled_logits(W, BIAS, Y, X, S, C, sampled_values=bad)


# --------------------------------------------------------------------------- 6. names


def test_jax_host_labels_beyond_int32_name_the_argument():
    jax = pytest.importorskip("jax")
    if jax.config.jax_enable_x64:
        pytest.skip("x64 enabled")
    import jax.numpy as jnp

    y = np.array([[2**40], [1]], np.int64)
    with pytest.raises(ValueError, match=r"^labels: int64 data holds 1099511627776 at flat "
                                         r"position 0"):
        ms.sampled_softmax_loss(jnp.asarray(W), jnp.asarray(BIAS), y, jnp.asarray(X), S, C,
                                sampled_values=SV)
    with pytest.raises(ValueError, match=r"^true_classes: int64 data holds 1099511627776"):
        ms.uniform_candidate_sampler(y, 1, 2, True, C, seed=1, backend="jax")
    with pytest.raises(ValueError, match=r"^sampled_values\[0\] \(sampled_candidates\): int64 "
                                         r"data holds"):
        ms.sampled_softmax_loss(jnp.asarray(W), jnp.asarray(BIAS), Y, jnp.asarray(X), S, C,
                                sampled_values=(SV[0] + 2**40, *SV[1:]))


def _framework_arrays(name):
    if name == "torch":
        torch = pytest.importorskip("torch")
        return lambda a: torch.from_numpy(np.ascontiguousarray(a))
    if name == "jax":
        jnp = pytest.importorskip("jax.numpy")
        return jnp.asarray
    tf = pytest.importorskip("tensorflow")
    return tf.constant


@pytest.mark.parametrize("framework", ["torch", "tensorflow", "jax"])
def test_sampled_values_members_and_dicts_are_named(framework):
    a = _framework_arrays(framework)
    args = (a(W), a(BIAS), a(Y), a(X), S, C)
    for i, name in enumerate(("sampled_candidates", "true_expected_count",
                              "sampled_expected_count")):
        for bad in (None, {}):
            sv = [a(v) for v in SV]
            sv[i] = bad
            with pytest.raises(TypeError, match=rf"sampled_values\[{i}\] \({name}\) must be an "
                                                rf"array, got {type(bad).__name__}"):
                ms.sampled_softmax_loss(*args, sampled_values=tuple(sv))
    with pytest.raises(ValueError, match=r"sampled_values must be a tuple .* got dict"):
        ms.sampled_softmax_loss(*args, sampled_values={})
    with pytest.raises(ValueError, match=r"sampled_values must be a tuple .* got dict"):
        ms.rank_sampled_softmax_loss(*args[:4], S, 2, C, sampled_values={"a": 1})


def test_ragged_and_sparse_labels_must_be_dense():
    tf = pytest.importorskip("tensorflow")
    ragged = tf.ragged.constant([[3], [1]], dtype=tf.int64)
    sparse = tf.sparse.from_dense(tf.constant(Y))
    w, b, x = tf.constant(W), tf.constant(BIAS), tf.constant(X)
    for labels, what in ((ragged, r"tf\.RaggedTensor.*to_tensor"),
                         (sparse, r"tf\.SparseTensor.*to_dense")):
        with pytest.raises(TypeError, match=rf"^labels must be a dense array, got a {what}"):
            ms.sampled_softmax_loss(w, b, labels, x, S, C)
        with pytest.raises(TypeError, match=rf"^labels must be a dense array, got a {what}"):
            ms.rank_sampled_softmax_loss(w, b, labels, x, S, 2, C)
        with pytest.raises(TypeError, match=rf"^true_classes must be a dense array, got a {what}"):
            ms.log_uniform_candidate_sampler(labels, 1, 2, True, C)
    with pytest.raises(TypeError, match=r"^sampled_values\[0\] \(sampled_candidates\) must be a "
                                        r"dense array"):
        ms.sampled_softmax_loss(w, b, tf.constant(Y), x, S, C,
                                sampled_values=(tf.sparse.from_dense(tf.constant(SV[0])),
                                                tf.constant(SV[1]), tf.constant(SV[2])))


def test_sparse_torch_labels_must_be_dense():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"^labels must be a dense array, got a torch tensor of "
                                        r"layout torch\.sparse_coo"):
        ms.sampled_softmax_loss(torch.from_numpy(W), torch.from_numpy(BIAS),
                                torch.from_numpy(Y).to_sparse(), torch.from_numpy(X), S, C)


def test_vocab_file_naming_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"vocab_file=.* is a directory"):
        ms.fixed_unigram_candidate_sampler([[1]], 1, 2, True, 3, vocab_file=str(tmp_path))


# --------------------------------------------------------------------------- 7. compilers


def test_checkified_jitted_loss_reports_a_bad_label():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from jax.experimental import checkify

    sv = tuple(jnp.asarray(v) for v in SV)

    def loss(y):
        return ms.sampled_softmax_loss(jnp.asarray(W), jnp.asarray(BIAS), y, jnp.asarray(X), S,
                                       C, sampled_values=sv)

    checked = checkify.checkify(jax.jit(loss))
    err, _ = checked(jnp.asarray([[3], [C + 2]]))
    assert err.get() is not None and "labels must hold values in [0, 10)" in err.get()
    with pytest.raises(Exception, match=r"labels must hold values in \[0, 10\)"):
        err.throw()
    err, out = checked(jnp.asarray(Y))
    assert err.get() is None
    np.testing.assert_allclose(out, ms.sampled_softmax_loss(W, BIAS, Y, X, S, C,
                                                            sampled_values=SV), rtol=1e-5)
    # a keyed sampler's label check too
    err, _ = checkify.checkify(jax.jit(
        lambda y, k: ms.uniform_candidate_sampler(y, 1, 3, True, C, seed=k)))(
        jnp.asarray([[C]]), jax.random.key(0))
    assert "true_classes values must be in [0, 10)" in err.get()


def test_xla_value_checks_are_an_explicit_switch():
    tf = pytest.importorskip("tensorflow")
    from multisampled.backends import tensorflow as tf_backend

    sv = tuple(tf.constant(v) for v in SV)

    def loss(y):
        return ms.sampled_softmax_loss(tf.constant(W), tf.constant(BIAS), y, tf.constant(X), S,
                                       C, sampled_values=sv)

    bad = tf.constant(np.array([[3], [C + 2]], np.int64))
    assert tf_backend.xla_value_checks() is True
    with pytest.raises(RuntimeError, match=r"labels must hold values in \[0, 10\): this value "
                                           r"check cannot run under XLA.*"
                                           r"set_xla_value_checks\(False\)"):
        tf.function(loss, jit_compile=True)(bad)
    # plain tf.function keeps its assertion
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must hold values"):
        tf.function(loss)(bad)
    previous = tf_backend.set_xla_value_checks(False)
    try:
        assert previous is True and tf_backend.xla_value_checks() is False
        got = tf.function(loss, jit_compile=True)(bad)
        clipped = ms.sampled_softmax_loss(W, BIAS, np.array([[3], [C - 1]]), X, S, C,
                                          sampled_values=SV)
        np.testing.assert_allclose(got.numpy(), clipped, rtol=1e-5)
    finally:
        tf_backend.set_xla_value_checks(previous)
    with pytest.raises(TypeError, match=r"enabled must be a bool"):
        tf_backend.set_xla_value_checks("off")


# --------------------------------------------------------------------------- 8. TF's answers


def _tf_rank(tf, tau, k, sv=SV):
    """TF 1.x contrib's rank_sampled_softmax_loss, written with TF 2.21's ops (single shard)."""
    sampled = tf.constant(sv[0], tf.int64)
    scaled = tf.constant(X) / tau
    scores = tf.reduce_logsumexp(tf.matmul(tf.gather(tf.constant(W), sampled), scaled,
                                           transpose_b=True), axis=1)
    scores += tf.gather(tf.constant(BIAS), sampled) / tau
    _, idx = tf.nn.top_k(scores, k=k, sorted=False)
    resampled = (tf.gather(sampled, idx), tf.constant(sv[1]), tf.gather(tf.constant(sv[2]), idx))
    return tf.compat.v1.nn.sampled_softmax_loss(
        W, BIAS, Y, X, k, C, 1, sampled_values=resampled, remove_accidental_hits=True,
        partition_strategy="div").numpy()


@pytest.mark.parametrize("tau, k", [(-1.0, 2), (-0.25, 3), (math.inf, 2), (-math.inf, 2),
                                    (1.0, 0), (-1.0, 0)])
def test_rank_loss_where_tf_is_finite(tau, k):
    tf = pytest.importorskip("tensorflow")
    sv = (np.array([1, 0, 2, 3, 8]), SV[1], np.full(5, 0.25, np.float32))
    want = _tf_rank(tf, tau, k, sv)
    assert np.all(np.isfinite(want))
    got = ms.rank_sampled_softmax_loss(W, BIAS, Y, X, 5, k, C, sampled_values=sv,
                                       resampling_temperature=tau)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    got = ms.rank_sampled_softmax_loss(W, BIAS, Y, X, 5, k, C, sampled_values=sv,
                                       resampling_temperature=np.float32(tau), backend="torch")
    np.testing.assert_allclose(host(got), want, rtol=1e-5, atol=1e-6)


def test_rank_loss_refuses_the_temperatures_that_make_every_score_nan():
    for tau in (0.0, math.nan, np.asarray(0.0, np.float32), np.asarray(np.nan, np.float32)):
        with pytest.raises(ValueError, match=r"resampling_temperature must be nonzero and not "
                                             r"NaN"):
            ms.rank_sampled_softmax_loss(W, BIAS, Y, X, S, 2, C, sampled_values=SV,
                                         resampling_temperature=tau)


def test_rank_loss_with_empty_sampled_values_draws_the_default_sampler():
    # TF: `if not sampled_values:` draws the learned unigram for (), [] and {}
    from multisampled import _learned

    for empty in ((), [], {}):
        _learned.reset_learned_states()
        got = ms.rank_sampled_softmax_loss(W, BIAS, Y, X, S, 2, C, sampled_values=empty,
                                           seed=ms.Generator(9))
        _learned.reset_learned_states()
        want = ms.rank_sampled_softmax_loss(W, BIAS, Y, X, S, 2, C, seed=ms.Generator(9))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("wdt, bdt", [("float64", "float64"), ("float64", "float32"),
                                      ("float32", "float64"), ("float16", "float32")])
def test_mixed_weight_dtypes_are_cast_to_the_inputs_dtype_as_tf(wdt, bdt):
    tf = pytest.importorskip("tensorflow")
    w, b = W.astype(wdt), BIAS.astype(bdt)
    theirs = tf.nn.sampled_softmax_loss(tf.constant(w), tf.constant(b), Y, tf.constant(X), S, C,
                                        sampled_values=tuple(tf.constant(v) for v in SV))
    for backend in INT64_BACKENDS:
        ours = ms.sampled_softmax_loss(w, b, Y, X, S, C, sampled_values=SV, backend=backend)
        assert host(ours).dtype == np.float32
        np.testing.assert_allclose(host(ours), theirs.numpy(), rtol=1e-6, err_msg=backend)


# --------------------------------------------------------------------------- 9. Paddle


def test_paddle_zero_probabilities_emit_no_numpy_warning():
    logits = RNG.standard_normal((B, C)).astype(np.float32)
    samples = np.array([[3, 0, 1, 2], [1, 4, 5, 6]], np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ms.sampled_softmax_with_cross_entropy(
            logits, Y, 3, use_customized_samples=True, customized_samples=samples,
            customized_probabilities=np.zeros((B, 4), np.float32))
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("sampler", ["uniform", "log_uniform"])
def test_layers_sample_ranges_beyond_2_32_as_the_functional_sampler(sampler):
    """The layers' sampler (torch module, Keras, Flax) takes any range the index dtype holds,
    and a key gives the functional sampler's candidates."""
    from multisampled import layers

    c = 2**40 + 3
    spec = layers.LayerSpec.checked(c, 4, 8, sampler=sampler)
    ctx = layers.context("numpy", None)
    key = np.array([5, 6], dtype=np.uint32)
    labels = np.array([[2**39], [7]], dtype=np.int64)
    got = layers.sample(ctx, spec, labels, layers.key_call(ctx, key))
    want = getattr(ms, f"{sampler}_candidate_sampler")(labels, 1, 8, True, c, seed=key)
    np.testing.assert_array_equal(got[0], want.sampled_candidates)
    np.testing.assert_allclose(got[1], want.true_expected_count, rtol=1e-6)
    assert host(got[0]).max() >= 2**32
    with pytest.raises(ValueError, match=r"num_classes must be below 2\*\*63"):
        layers.LayerSpec.checked(2**63, 4, 8)
