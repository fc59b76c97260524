"""The counter-based generator: Threefry known answers, equality with JAX's implementation, exact
integer mapping of words to samples, and the seed-stream contract."""

import bisect
import dataclasses
from fractions import Fraction

import array_api_compat.numpy as xnp
import array_api_strict as xs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from multisampled import _rng
from multisampled._context import context
from multisampled.backends import numpy as numpy_backend

U32 = st.integers(0, 2**32 - 1)

# Random123 known-answer vectors for Threefry-2x32, 20 rounds: (key, counter) -> output
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def _namespaces():
    """(namespace, asarray(list, dtype_name)) for NumPy and array-api-strict."""
    return [
        (xnp, lambda v, d: np.asarray(v, dtype=d)),
        (xs, lambda v, d: xs.asarray(np.asarray(v, dtype=d), dtype=getattr(xs, d))),
    ]


def _ints(a):
    return [int(v) for v in np.asarray(a).reshape(-1)]


@pytest.mark.parametrize("word", ["int64", "uint32"])
@pytest.mark.parametrize("ns", range(2), ids=["numpy", "array_api_strict"])
@pytest.mark.parametrize("key,counter,expected", KNOWN_ANSWERS)
def test_threefry_known_answers(ns, word, key, counter, expected):
    xp, asarray = _namespaces()[ns]
    c0 = asarray([counter[0]], word)
    c1 = asarray([counter[1]], word)
    x0, x1 = _rng.threefry2x32(xp, key[0], key[1], c0, c1)
    assert x0.dtype == c0.dtype and x1.dtype == c0.dtype
    assert (_ints(x0)[0], _ints(x1)[0]) == expected


def _jax_threefry():
    pytest.importorskip("jax")
    try:
        from jax._src.random.threefry2x32 import threefry2x32_p
    except ImportError:  # older JAX layout
        from jax._src.prng import threefry2x32_p
    import jax.numpy as jnp

    def reference(k0, k1, c0, c1):
        u = lambda v: jnp.asarray(np.asarray(v, dtype=np.uint32))  # noqa: E731
        out = threefry2x32_p.bind(u(k0), u(k1), u(c0), u(c1))
        return [int(v) for v in np.asarray(out[0])], [int(v) for v in np.asarray(out[1])]

    return reference


@given(key=st.tuples(U32, U32), counters=st.lists(st.tuples(U32, U32), min_size=1, max_size=40))
def test_threefry_equals_jax(key, counters):
    reference = _jax_threefry()
    c0 = [c[0] for c in counters]
    c1 = [c[1] for c in counters]
    r0, r1 = reference([key[0]] * len(c0), [key[1]] * len(c0), c0, c1)
    for xp, asarray in _namespaces():
        for word in ("int64", "uint32"):
            x0, x1 = _rng.threefry2x32(xp, key[0], key[1], asarray(c0, word), asarray(c1, word))
            assert _ints(x0) == r0 and _ints(x1) == r1, (xp.__name__, word)


@given(key=st.tuples(U32, U32), counters=st.lists(st.tuples(U32, U32), min_size=1, max_size=20))
def test_threefry_array_keys_equal_int_keys(key, counters):
    c0 = np.asarray([c[0] for c in counters], dtype=np.int64)
    c1 = np.asarray([c[1] for c in counters], dtype=np.int64)
    by_int = _rng.threefry2x32(xnp, key[0], key[1], c0, c1)
    for word in (np.int64, np.uint32):
        k0, k1 = np.asarray(key[0], dtype=word), np.asarray(key[1], dtype=word)
        by_array = _rng.threefry2x32(xnp, k0, k1, c0.astype(word), c1.astype(word))
        assert _ints(by_array[0]) == _ints(by_int[0]) and _ints(by_array[1]) == _ints(by_int[1])


def _floor_u_times_n(hi, lo, n):
    return ((hi << 32) | lo) * n >> 64  # exact big-int floor(u * n), u = (hi*2**32+lo) / 2**64


EDGE_U32 = st.sampled_from([0, 1, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1])


@given(
    words=st.lists(st.tuples(U32 | EDGE_U32, U32 | EDGE_U32), min_size=1, max_size=30),
    n=st.integers(1, 2**32 - 1) | st.sampled_from([1, 2, 3, 2**16, 2**31 - 1, 2**31, 2**32 - 1]),
)
def test_uniform_int_is_exact_floor(words, n):
    hi = [w[0] for w in words]
    lo = [w[1] for w in words]
    expected = [_floor_u_times_n(h, l, n) for h, l in zip(hi, lo)]
    for xp, asarray in _namespaces():
        for word in ("int64", "uint32"):
            got = _rng.uniform_int(xp, asarray(hi, word), asarray(lo, word), n)
            assert _ints(got) == expected
            as_array = _rng.uniform_int(xp, asarray(hi, word), asarray(lo, word),
                                        asarray(n, word))
            assert _ints(as_array) == expected


def test_uniform_int_rejects_out_of_range_n():
    w = np.zeros(3, dtype=np.int64)
    for n in (0, 2**63):
        with pytest.raises(ValueError, match="n must be in"):
            _rng.uniform_int(xnp, w, w, n)
    # results of 32 bits and more need int64 words
    u = np.zeros(3, dtype=np.uint32)
    with pytest.raises(ValueError, match="needs int64 words"):
        _rng.uniform_int(xnp, u, u, 2**32)


THRESHOLD = st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1])


@given(
    thresholds=st.lists(THRESHOLD, min_size=0, max_size=40).map(sorted),
    probes=st.lists(THRESHOLD, min_size=1, max_size=30),
    reuse=st.booleans(),
)
def test_search_cdf_equals_bisect(thresholds, probes, reuse):
    if reuse and thresholds:  # probe exactly at thresholds too
        probes = probes + thresholds[:10]
    expected = [bisect.bisect_right(thresholds, u) for u in probes]
    th_hi = [t >> 32 for t in thresholds]
    th_lo = [t & 0xFFFFFFFF for t in thresholds]
    hi = [u >> 32 for u in probes]
    lo = [u & 0xFFFFFFFF for u in probes]
    for xp, asarray in _namespaces():
        for word in ("int64", "uint32"):
            h, lw = asarray(hi, word), asarray(lo, word)
            got = _rng.search_cdf(xp, h, lw, asarray(th_hi, word), asarray(th_lo, word))
            assert _ints(got) == expected
        # int64 words with tables stored as int32 bit patterns
        t_hi = np.asarray(th_hi, dtype=np.uint32).view(np.int32)
        t_lo = np.asarray(th_lo, dtype=np.uint32).view(np.int32)
        got = _rng.search_cdf(xp, asarray(hi, "int64"), asarray(lo, "int64"),
                              asarray(t_hi, "int32"), asarray(t_lo, "int32"))
        assert _ints(got) == expected


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30).map(sorted))
def test_cdf_thresholds_round_to_2_pow_minus_64(cdf):
    hi, lo = _rng.cdf_thresholds(np.asarray(cdf))
    got = [(int(h) << 32) | int(l) for h, l in zip(hi, lo)]
    expected = []
    for c in cdf:
        v = round(Fraction(c) * 2**64)  # round half to even, as np.rint
        if v < 2**64:
            expected.append(v)
    assert got == expected


def test_cdf_thresholds_rejects_decreasing():
    with pytest.raises(ValueError, match="non-decreasing"):
        _rng.cdf_thresholds(np.asarray([0.5, 0.25]))


def test_word_dtype_follows_index_dtype():
    assert _rng.word_dtype(context(np.zeros(1))) == xnp.int64
    pytest.importorskip("jax")
    import jax.numpy as jnp

    ctx = context(jnp.zeros(1))
    expected = ctx.xp.int64 if ctx.index_dtype == ctx.xp.int64 else ctx.xp.uint32
    assert _rng.word_dtype(ctx) == expected


def test_draw_words_are_counters_call_and_draw_index():
    ctx = context(np.zeros(1))
    x0, x1 = _rng.draw_words(ctx, 7, 9, 3, 5, 4)
    for i in range(4):
        e0, e1 = _rng.threefry2x32(xnp, 7, 9, np.asarray([3]), np.asarray([5 + i]))
        assert (int(x0[i]), int(x1[i])) == (int(e0[0]), int(e1[0]))
    # a block split does not change the draws
    a0, a1 = _rng.draw_words(ctx, 7, 9, 3, 0, 12)
    b0, b1 = _rng.draw_words(ctx, 7, 9, 3, 5, 7)
    assert _ints(a0[5:]) == _ints(b0) and _ints(a1[5:]) == _ints(b1)


def test_backend_threefry_is_dispatched():
    seen = []

    def fast(xp, k0, k1, c0, c1):
        seen.append((k0, k1))
        return _rng.threefry2x32(xp, k0, k1, c0, c1)

    class NumpyFast(type(numpy_backend.BACKEND)):
        name = "numpy-fast"

        def threefry2x32(self, xp, k0, k1, c0, c1):
            return fast(xp, k0, k1, c0, c1)

    backend = NumpyFast()
    ctx = context(np.zeros(1), backend=None)
    ctx = dataclasses.replace(ctx, backend=backend)
    x0, _ = _rng.draw_words(ctx, 1, 2, 0, 0, 3)
    assert seen == [(1, 2)] and x0.shape == (3,)


# --------------------------------------------------------------------------- seed streams


def test_generator_key_is_the_seed_split_in_two_words():
    g = _rng.Generator(0x0123456789ABCDEF)
    assert g.next_call() == (0x01234567, 0x89ABCDEF, 0)
    assert g.next_call() == (0x01234567, 0x89ABCDEF, 1)
    assert g.calls == 2


def test_generator_none_takes_fresh_bits():
    keys = {_rng.Generator().key for _ in range(8)}
    assert len(keys) == 8


@pytest.mark.parametrize("seed", [-1, 2**64, 2**70])
def test_generator_rejects_out_of_range_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*64\); got"):
        _rng.Generator(seed)


@pytest.mark.parametrize("seed", [True, 1.0, "1", b"1", [1]])
def test_generator_rejects_non_int_seed(seed):
    with pytest.raises(TypeError, match="seed must be None, a Generator, a key or an int"):
        _rng.Generator(seed)


def test_generator_accepts_numpy_int_seed():
    assert _rng.Generator(np.uint64(2**64 - 1)).key == (0xFFFFFFFF, 0xFFFFFFFF)


def test_stream_for_same_seed_continues_and_reset_restarts():
    _rng.reset_streams()
    first = [_rng.stream_for("numpy", 42).next_call() for _ in range(3)]
    assert [c[2] for c in first] == [0, 1, 2]  # consecutive calls use new call indices
    assert _rng.stream_for("other-backend", 42).next_call()[2] == 0  # one stream per backend
    assert _rng.stream_for("numpy", 43).next_call()[2] == 0  # and per seed
    _rng.reset_streams()
    again = [_rng.stream_for("numpy", 42).next_call() for _ in range(3)]
    assert again == first  # a fresh stream repeats the sequence
    _rng.reset_streams()


def test_stream_for_none_and_generator():
    assert _rng.stream_for("numpy", None) is not _rng.stream_for("numpy", None)
    g = _rng.Generator(5)
    assert _rng.stream_for("numpy", g) is g
    with pytest.raises(ValueError, match="seed"):
        _rng.stream_for("numpy", -3)
    with pytest.raises(TypeError, match="seed"):
        _rng.stream_for("numpy", 2.5)


def test_generator_call_limit(monkeypatch):
    monkeypatch.setattr(_rng, "CALL_LIMIT", 2)
    g = _rng.Generator(1)
    g.next_call()
    g.next_call()
    with pytest.raises(RuntimeError, match="call indices"):
        g.next_call()


def test_public_reset_streams_restarts_seeded_sequences():
    """``multisampled.reset_streams()`` (the name the README gives) restarts every seeded stream."""
    import multisampled as ms

    labels = np.array([[1]])
    ms.reset_streams()
    first = ms.uniform_candidate_sampler(labels, 1, 8, False, 1000, seed=42).sampled_candidates
    second = ms.uniform_candidate_sampler(labels, 1, 8, False, 1000, seed=42).sampled_candidates
    assert not np.array_equal(first, second)  # consecutive calls advance the stream (TF)
    ms.reset_streams()
    again = ms.uniform_candidate_sampler(labels, 1, 8, False, 1000, seed=42).sampled_candidates
    np.testing.assert_array_equal(first, again)
