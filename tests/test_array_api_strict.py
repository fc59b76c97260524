"""The whole public loss API on array-api-strict arrays gives NumPy's values.

array-api-strict rejects everything outside the standard; the loss hot path runs with the 2023.12
API and with data-dependent shapes and boolean indexing switched off.
"""

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import multisampled as ms
from multisampled import v1

xs = pytest.importorskip("array_api_strict")


def strict_flags(data_dependent_shapes=False):
    if not hasattr(xs, "ArrayAPIStrictFlags"):
        return contextlib.nullcontext()
    return xs.ArrayAPIStrictFlags(
        api_version="2023.12",
        data_dependent_shapes=data_dependent_shapes,
        boolean_indexing=data_dependent_shapes,
    )


def to_strict(value):
    if isinstance(value, (list, tuple)):
        return (
            type(value)(to_strict(v) for v in value)
            if not hasattr(value, "_fields")
            else tuple(to_strict(v) for v in value)
        )
    if isinstance(value, np.ndarray):
        return xs.asarray(value)
    return value


def assert_same(strict_out, numpy_out, rtol=1e-6):
    if isinstance(numpy_out, tuple):
        assert isinstance(strict_out, tuple) and len(strict_out) == len(numpy_out)
        for s, n in zip(strict_out, numpy_out):
            assert_same(s, n, rtol)
        return
    assert type(strict_out).__module__.startswith("array_api_strict")
    got = np.asarray(strict_out)
    assert got.shape == np.shape(numpy_out)
    assert str(got.dtype) == str(np.asarray(numpy_out).dtype)
    np.testing.assert_allclose(got, numpy_out, rtol=rtol, atol=1e-7)


def both(fn, *args, flags=None, **kwargs):
    expected = fn(*args, **kwargs)
    with flags if flags is not None else strict_flags():
        got = fn(*to_strict(args), **{k: to_strict(v) for k, v in kwargs.items()})
    assert_same(got, expected)
    return expected


@st.composite
def cases(draw):
    B, T, C, D = (
        draw(st.integers(1, 4)),
        draw(st.integers(1, 3)),
        draw(st.integers(3, 10)),
        draw(st.integers(1, 4)),
    )
    S = draw(st.integers(2, 8))
    cand = draw(st.lists(st.integers(0, C - 1), min_size=S, max_size=S))
    labels = draw(st.lists(st.integers(0, C - 1), min_size=B * T, max_size=B * T))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    P = draw(st.integers(1, 3))
    return dict(
        W=rng.standard_normal((C, D)).astype(dtype),
        b=rng.standard_normal(C).astype(dtype),
        x=rng.standard_normal((B, D)).astype(dtype),
        labels=np.asarray(labels, np.int64).reshape(B, T),
        T=T,
        C=C,
        S=S,
        sv=(
            np.asarray(cand, np.int64),
            rng.uniform(0.1, 2.0, (B, T)).astype(np.float32),
            rng.uniform(0.1, 2.0, S).astype(np.float32),
        ),
        P=P,
        remove=draw(st.booleans()),
    )


def div_shards(a, P):
    return np.array_split(a, P) if P > 1 else a


def mod_shards(a, P):
    return [a[p::P] for p in range(P)] if P > 1 else a


@given(cases())
def test_tf_family(case):
    c = case
    common = dict(num_true=c["T"], sampled_values=c["sv"], remove_accidental_hits=c["remove"])
    both(ms.compute_sampled_logits, c["W"], c["b"], c["labels"], c["x"], c["S"], c["C"], **common)
    both(
        ms.sampled_softmax_loss,
        div_shards(c["W"], c["P"]),
        div_shards(c["b"], c["P"]),
        c["labels"],
        c["x"],
        c["S"],
        c["C"],
        **common,
    )
    both(ms.nce_loss, c["W"], c["b"], c["labels"], c["x"], c["S"], c["C"], **common)
    both(
        v1.sampled_softmax_loss,
        mod_shards(c["W"], c["P"]),
        mod_shards(c["b"], c["P"]),
        c["labels"],
        c["x"],
        c["S"],
        c["C"],
        **common,
    )
    both(
        v1.nce_loss,
        mod_shards(c["W"], c["P"]),
        c["b"],
        c["labels"],
        c["x"],
        c["S"],
        c["C"],
        **common,
    )
    if c["S"] <= c["C"]:  # TF's rank loss requires num_sampled <= num_classes
        both(
            ms.rank_sampled_softmax_loss,
            c["W"],
            c["b"],
            c["labels"],
            c["x"],
            c["S"],
            c["S"] - 1,
            c["C"],
            **common,
            resampling_temperature=0.7,
        )


@given(cases())
def test_compute_accidental_hits(case):
    both(
        ms.compute_accidental_hits,
        case["labels"],
        case["sv"][0],
        case["T"],
        flags=strict_flags(data_dependent_shapes=True),
    )


@settings(max_examples=10)
@given(
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 5),
    st.integers(5, 30),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_paddle(N, T, S, K, remove, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((N, K)).astype(np.float32) * 20
    label = rng.integers(0, K, (N, T))
    both(
        ms.sampled_softmax_with_cross_entropy,
        logits,
        label,
        S,
        num_true=T,
        remove_accidental_hits=remove,
        seed=seed % 1000 + 1,
    )
    samples = rng.integers(0, K, (N, T + S))
    probs = rng.uniform(0.01, 1.0, (N, T + S)).astype(np.float32)
    both(
        ms.sampled_softmax_with_cross_entropy,
        logits,
        label,
        S,
        num_true=T,
        remove_accidental_hits=remove,
        use_customized_samples=True,
        customized_samples=samples,
        customized_probabilities=probs,
    )


def test_temperature_array():
    rng = np.random.default_rng(0)
    W, b, x = rng.standard_normal((6, 2)), rng.standard_normal(6), rng.standard_normal((3, 2))
    labels = np.array([[0], [2], [5]])
    sv = (np.array([1, 3, 4, 5]), np.ones((3, 1)), np.full(4, 0.5))
    both(
        ms.rank_sampled_softmax_loss,
        W,
        b,
        labels,
        x,
        4,
        2,
        6,
        sampled_values=sv,
        resampling_temperature=np.asarray(0.3),
    )


# --------------------------------------------------------------------------------------------
# default samplers: the same seeded stream gives the same samples on every backend


def _generator(seed):
    return ms.Generator(seed)


@pytest.mark.parametrize("fn", [ms.sampled_softmax_loss, ms.nce_loss, v1.sampled_softmax_loss])
def test_default_sampler(fn):
    rng = np.random.default_rng(1)
    W, b = rng.standard_normal((40, 3)).astype(np.float32), rng.standard_normal(40).astype(
        np.float32
    )
    x, labels = rng.standard_normal((5, 3)).astype(np.float32), rng.integers(0, 40, (5, 2))
    try:
        expected = fn(W, b, labels, x, 7, 40, num_true=2, seed=_generator(77))
    except NotImplementedError:
        pytest.skip("the default candidate sampler is not implemented yet")
    with strict_flags(data_dependent_shapes=True):
        got = fn(*to_strict((W, b, labels, x)), 7, 40, num_true=2, seed=_generator(77))
    assert_same(got, expected)


def test_rank_default_sampler():
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((40, 3)), rng.standard_normal(40)
    x, labels = rng.standard_normal((5, 3)), rng.integers(0, 40, (5, 1))
    try:
        expected = ms.rank_sampled_softmax_loss(W, b, labels, x, 8, 3, 40, seed=_generator(5))
    except NotImplementedError:
        pytest.skip("the default candidate sampler is not implemented yet")
    with strict_flags(data_dependent_shapes=True):
        got = ms.rank_sampled_softmax_loss(
            *to_strict((W, b, labels, x)), 8, 3, 40, seed=_generator(5)
        )
    assert_same(got, expected)
