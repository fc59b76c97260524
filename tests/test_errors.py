"""Every bad input raises a clear error naming the argument (ValueError for values and shapes,
TypeError for types and dtypes)."""

import numpy as np
import pytest

import multisampled as ms
from multisampled import v1

C, D, B = 6, 3, 2


def params(dtype=np.float32):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((C, D)).astype(dtype),
        rng.standard_normal(C).astype(dtype),
        rng.standard_normal((B, D)).astype(dtype),
    )


LABELS = np.array([[1], [4]])


def values(S=3, cand=None, tq=None, sq=None):
    return (
        np.arange(S) if cand is None else np.asarray(cand),
        np.ones((B, 1), np.float32) if tq is None else np.asarray(tq),
        np.ones(S, np.float32) if sq is None else np.asarray(sq),
    )


TF_LOSSES = [
    ms.sampled_softmax_loss,
    v1.sampled_softmax_loss,
    ms.nce_loss,
    v1.nce_loss,
    lambda *a, **k: ms.compute_sampled_logits(*a, **k)[0],
]


def call(
    fn,
    labels=LABELS,
    num_sampled=3,
    num_classes=C,
    weights=None,
    biases=None,
    inputs=None,
    **kwargs,
):
    W, b, x = params()
    kwargs.setdefault(
        "sampled_values",
        values(num_sampled if isinstance(num_sampled, int) and num_sampled > 0 else 3),
    )
    return fn(
        W if weights is None else weights,
        b if biases is None else biases,
        labels,
        x if inputs is None else inputs,
        num_sampled,
        num_classes,
        **kwargs,
    )


@pytest.mark.parametrize("fn", TF_LOSSES)
class TestTensorFlowFamily:
    def test_labels_out_of_range(self, fn):
        with pytest.raises(
            ValueError, match=r"labels must hold values in \[0, 6\); got values with min 1, max 6"
        ):
            call(fn, labels=np.array([[1], [6]]))
        with pytest.raises(ValueError, match=r"labels must hold values in \[0, 6\)"):
            call(fn, labels=np.array([[-1], [0]]))

    def test_labels_rank_1(self, fn):
        with pytest.raises(
            ValueError,
            match=r"labels must be a rank-2 array \[batch_size, num_true\], got shape \(2,\)",
        ):
            call(fn, labels=np.array([1, 4]))

    def test_labels_batch_mismatch(self, fn):
        with pytest.raises(
            ValueError,
            match=r"labels must have shape \[batch_size of inputs, num_true\] = \[2, 1\]",
        ):
            call(fn, labels=np.array([[1], [4], [0]]))

    def test_num_true_mismatch(self, fn):
        with pytest.raises(ValueError, match=r"labels must have num_true=2 columns"):
            call(fn, num_true=2, sampled_values=values(tq=np.ones((B, 2), np.float32)))

    def test_float_labels(self, fn):
        with pytest.raises(TypeError, match=r"labels must have an integer dtype.*float64"):
            call(fn, labels=np.array([[1.0], [4.0]]))

    def test_swapped_arguments(self, fn):
        W, b, x = params()
        with pytest.raises(TypeError, match=r"labels.*inputs.*look swapped \(TF 0\.x order"):
            fn(W, b, x, LABELS, 3, C, sampled_values=values())

    def test_integer_inputs(self, fn):
        with pytest.raises(TypeError, match=r"inputs must have a real floating dtype"):
            call(fn, inputs=np.ones((B, D), np.int64))

    @pytest.mark.parametrize("name", ["num_sampled", "num_classes", "num_true"])
    @pytest.mark.parametrize("bad", [0, -2])
    def test_non_positive_sizes(self, fn, name, bad):
        kwargs = {name: bad}
        with pytest.raises(ValueError, match=rf"{name} must be a positive int \(>= 1\), got {bad}"):
            call(fn, **kwargs)

    def test_non_int_sizes(self, fn):
        with pytest.raises(TypeError, match=r"num_sampled must be an int, got 2.5"):
            call(fn, num_sampled=2.5)
        with pytest.raises(TypeError, match=r"num_classes must be an int, got the bool True"):
            call(fn, num_classes=True)

    def test_width_mismatch(self, fn):
        with pytest.raises(
            ValueError,
            match=r"weights must have shape \[num_classes, dim\] with dim = inputs.shape\[1\] = 3",
        ):
            call(fn, weights=np.zeros((C, D + 1), np.float32))

    def test_fewer_rows_than_classes(self, fn):
        with pytest.raises(ValueError, match=r"weights has 6 rows in total but num_classes=7"):
            call(fn, num_classes=7)
        with pytest.raises(ValueError, match=r"biases has 5 rows in total but num_classes=6"):
            call(fn, biases=np.zeros(5, np.float32))

    def test_biases_rank(self, fn):
        with pytest.raises(ValueError, match=r"biases must be a rank-1 array"):
            call(fn, biases=np.zeros((C, 1), np.float32))

    def test_shard_sizes(self, fn):
        W, b, _ = params()
        with pytest.raises(ValueError, match=r"weights: shard sizes \[2, 4\] do not follow"):
            call(fn, weights=[W[:2], W[2:]], biases=[b[:3], b[3:]], partition_strategy="mod")
        with pytest.raises(ValueError, match=r"biases: shard sizes \[1, 5\] do not follow"):
            call(fn, weights=[W[:3], W[3:]], biases=[b[:1], b[1:]], partition_strategy="div")

    def test_unknown_partition_strategy(self, fn):
        W, b, _ = params()
        with pytest.raises(
            ValueError, match=r"partition_strategy must be one of \['mod', 'div'\].*got 'bogus'"
        ):
            call(fn, weights=[W[:3], W[3:]], biases=b, partition_strategy="bogus")
        call(fn, partition_strategy="bogus")  # one shard: ignored, as in TF

    @pytest.mark.parametrize(
        "slot,bad", [(1, 0.0), (1, np.nan), (1, -1.0), (2, 0.0), (2, np.nan), (2, np.inf)]
    )
    def test_bad_expected_counts(self, fn, slot, bad):
        sv = list(values())
        sv[slot] = sv[slot].copy()
        sv[slot][0] = bad
        name = "true_expected_count" if slot == 1 else "sampled_expected_count"
        with pytest.raises(
            ValueError, match=rf"sampled_values\[{slot}\] \({name}\) must be finite and > 0"
        ):
            call(fn, sampled_values=tuple(sv))

    def test_expected_count_shapes_and_dtypes(self, fn):
        with pytest.raises(
            ValueError, match=r"true_expected_count\) must broadcast to \[batch_size, num_true\]"
        ):
            call(fn, sampled_values=values(tq=np.ones((3, 1), np.float32)))
        with pytest.raises(
            ValueError, match=r"sampled_expected_count\) must broadcast to \[num_sampled\]"
        ):
            call(fn, sampled_values=values(sq=np.ones(4, np.float32)))
        with pytest.raises(
            TypeError, match=r"sampled_expected_count\) must have a real floating dtype"
        ):
            call(fn, sampled_values=values(sq=np.ones(3, np.int64)))

    def test_sampled_candidates(self, fn):
        with pytest.raises(ValueError, match=r"sampled_candidates\) must hold values in \[0, 6\)"):
            call(fn, sampled_values=values(cand=[0, 1, 6]))
        with pytest.raises(TypeError, match=r"sampled_candidates\) must have an integer dtype"):
            call(fn, sampled_values=values(cand=[0.0, 1.0, 2.0]))
        with pytest.raises(ValueError, match=r"sampled_candidates\) must be a rank-1"):
            call(fn, sampled_values=values(cand=[[0, 1, 2]]))

    def test_sampled_values_not_a_triple(self, fn):
        with pytest.raises(TypeError, match=r"sampled_values must be a tuple.*length 2"):
            call(fn, sampled_values=values()[:2])
        with pytest.raises(TypeError, match=r"sampled_values must be a tuple.*got ndarray"):
            call(fn, sampled_values=np.arange(3))

    def test_num_sampled_length_mismatch_with_hit_removal(self, fn):
        with pytest.raises(
            ValueError, match=r"num_sampled=4 but sampled_values\[0\] \(sampled_candidates\) has 3"
        ):
            call(fn, num_sampled=4, sampled_values=values(), remove_accidental_hits=True)

    def test_remove_accidental_hits_must_be_bool(self, fn):
        with pytest.raises(TypeError, match=r"remove_accidental_hits must be a bool"):
            call(fn, remove_accidental_hits="yes")
        call(fn, remove_accidental_hits=np.True_)  # NumPy bools are bools


def test_num_sampled_greater_than_num_classes_with_default_sampler():
    W, b, x = params()
    for fn in (ms.sampled_softmax_loss, ms.nce_loss, v1.sampled_softmax_loss):
        with pytest.raises(ValueError, match=r"num_sampled=7 cannot be greater than num_classes=6"):
            fn(W, b, LABELS, x, 7, C)


def test_div_with_fewer_rows_than_shards():
    W, b, x = params()
    with pytest.raises(
        ValueError, match=r"weights: the 'div' partition strategy needs at least one row per shard"
    ):
        ms.sampled_softmax_loss(
            [W[:1], W[1:1], W[1:1]],
            b,
            np.array([[0], [0]]),
            x,
            1,
            1,
            sampled_values=(np.array([0]), np.ones((2, 1), np.float32), np.ones(1, np.float32)),
        )


def test_subtract_log_q_must_be_bool():
    with pytest.raises(TypeError, match=r"subtract_log_q must be a bool"):
        call(ms.compute_sampled_logits, subtract_log_q=None)


# --------------------------------------------------------------------------------------------
# rank_sampled_softmax_loss: TF's three ValueErrors, in TF's order


def rank(num_sampled=4, num_resampled=2, num_classes=C, partition_strategy="div", **kwargs):
    W, b, x = params()
    kwargs.setdefault("sampled_values", values(num_sampled if num_sampled <= C else 3))
    return ms.rank_sampled_softmax_loss(
        W,
        b,
        LABELS,
        x,
        num_sampled,
        num_resampled,
        num_classes,
        partition_strategy=partition_strategy,
        **kwargs,
    )


def test_rank_validation_order():
    with pytest.raises(
        ValueError, match=r"num_sampled \(7\) cannot be greater than num_classes \(6\)"
    ):
        rank(num_sampled=7, num_resampled=9, partition_strategy="bogus")
    with pytest.raises(
        ValueError, match=r"num_resampled \(4\) must be less than num_sampled \(4\)"
    ):
        rank(num_sampled=4, num_resampled=4, partition_strategy="bogus")
    with pytest.raises(ValueError, match=r"unsupported partition_strategy \('bogus'\)"):
        rank(partition_strategy="bogus")


def test_rank_other_errors():
    with pytest.raises(ValueError, match=r"resampling_temperature must be nonzero and not NaN, "
                                         r"got 0"):
        rank(resampling_temperature=0)
    with pytest.raises(TypeError, match=r"resampling_temperature must be a real number"):
        rank(resampling_temperature="hot")
    with pytest.raises(ValueError, match=r"resampling_temperature must be nonzero and not NaN"):
        rank(resampling_temperature=np.asarray(np.nan))
    with pytest.raises(ValueError, match=r"resampling_temperature must be a rank-0 array"):
        rank(resampling_temperature=np.ones(2))
    with pytest.raises(ValueError, match=r"has 1 entries but num_resampled=2"):
        rank(sampled_values=values(1))
    with pytest.raises(ValueError, match=r"num_resampled must be a non-negative int"):
        rank(num_resampled=-1)


# --------------------------------------------------------------------------------------------
# Paddle


def paddle(logits=None, label=None, num_samples=2, **kwargs):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 5)).astype(np.float32) if logits is None else logits
    label = np.array([[1], [3]]) if label is None else label
    return ms.sampled_softmax_with_cross_entropy(logits, label, num_samples, **kwargs)


def customized(samples=None, probs=None, **kwargs):
    samples = np.array([[1, 0, 2], [3, 4, 3]]) if samples is None else samples
    probs = np.full((2, 3), 0.5, np.float32) if probs is None else probs
    return paddle(
        use_customized_samples=True,
        customized_samples=samples,
        customized_probabilities=probs,
        **kwargs,
    )


def test_paddle_errors():
    with pytest.raises(ValueError, match=r"num_true=2 must equal the number of label columns"):
        paddle(num_true=2)
    with pytest.raises(
        ValueError,
        match=r"num_samples=6 cannot be greater than the number of classes K = logits.shape\[1\]",
    ):
        paddle(num_samples=6)
    with pytest.raises(ValueError, match=r"label must hold values in \[0, 5\)"):
        paddle(label=np.array([[1], [5]]))
    with pytest.raises(TypeError, match=r"label must have an integer dtype"):
        paddle(label=np.array([[1.0], [2.0]]))
    with pytest.raises(ValueError, match=r"label must be a rank-2 array"):
        paddle(label=np.array([1, 2]))
    with pytest.raises(ValueError, match=r"label must have shape \[2, 1\]"):
        paddle(label=np.array([[1], [2], [0]]))
    with pytest.raises(ValueError, match=r"logits must be a rank-2 array"):
        paddle(logits=np.zeros(5, np.float32))
    with pytest.raises(TypeError, match=r"logits must have a real floating dtype"):
        paddle(logits=np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match=r"num_samples must be a positive int"):
        paddle(num_samples=0)
    with pytest.raises(ValueError, match=r"seed must be a non-negative int"):
        paddle(seed=-1)
    with pytest.raises(TypeError, match=r"use_customized_samples must be a bool"):
        paddle(use_customized_samples=1)


def test_paddle_customized_errors():
    with pytest.raises(
        ValueError, match=r"needs both customized_samples and customized_probabilities"
    ):
        paddle(use_customized_samples=True, customized_samples=np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"customized_samples must have shape \[2, 3\]"):
        customized(samples=np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match=r"customized_samples must have an integer dtype"):
        customized(samples=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"customized_samples must hold values in \[0, 5\)"):
        customized(samples=np.array([[1, 0, 5], [3, 4, 3]]))
    with pytest.raises(ValueError, match=r"customized_probabilities must have shape \[2, 3\]"):
        customized(probs=np.ones((2, 2), np.float32))
    with pytest.raises(
        TypeError, match=r"customized_probabilities must have a real floating dtype"
    ):
        customized(probs=np.ones((2, 3), np.int64))
    for bad in (-0.5, np.nan):  # Paddle returns NaN for these: refused
        probs = np.full((2, 3), 0.5, np.float32)
        probs[1, 2] = bad
        with pytest.raises(ValueError, match=r"customized_probabilities must be >= 0 and not NaN"):
            customized(probs=probs)
    # label values are not used with customized samples, so out-of-range labels are accepted
    out = customized(label=np.array([[9], [9]]))
    assert out.shape == (2, 1) and np.all(np.isfinite(out))


@pytest.mark.parametrize("edge", [0.0, np.inf])
def test_paddle_zero_or_infinite_probability_is_clamped_as_paddle_does(edge):
    """Paddle clamps ln(0) / ln(inf) to -/+1e20 and returns a finite loss: reproduced, and
    equal to the independent reference (conformance/reference.py)."""
    from multisampled.conformance import reference

    logits = np.array([[0.3, -1.2, 2.0, 0.7, 0.1], [1.5, 0.2, -0.4, 0.0, 0.9]], np.float32)
    samples = np.array([[2, 4, 0], [3, 1, 3]], np.int64)
    probs = np.full((2, 3), 0.5, np.float32)
    probs[1, 2] = edge
    got = ms.sampled_softmax_with_cross_entropy(
        logits, samples[:, :1], 2, use_customized_samples=True, customized_samples=samples,
        customized_probabilities=probs,
    )
    want = reference.paddle_sampled_softmax(logits, samples[:, :1], samples, probs)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# value checks off the host: handed to the backend's assert_async, never read eagerly


@pytest.fixture
def async_backend(monkeypatch):
    """NumPy arrays through a backend that forbids host reads and records check_async calls."""
    from multisampled import _context, _paddle, _tf_losses

    recorded = []
    original = _context.context

    def context(*arrays, backend=None):
        ctx = original(*arrays, backend=backend)

        class Async(type(ctx.backend)):  # the same backend (and name), posing as an accelerator
            async_checks = True

            def may_read_values(self, device):
                return False

            def check_async(self, cond, msg):
                recorded.append((bool(cond), msg))

        return _context.Ctx(Async(), ctx.xp, ctx.device)

    monkeypatch.setattr(_tf_losses, "context", context)
    monkeypatch.setattr(_paddle, "context", context)
    return recorded


def test_value_checks_go_through_assert_async(async_backend):
    W, b, x = params()
    sv = values(tq=np.array([[1.0], [0.0]], np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):  # the checks do not stop the call
        ms.sampled_softmax_loss(W, b, np.array([[1], [5]]), x, 3, 5, sampled_values=sv)
    failed = [msg for ok, msg in async_backend if not ok]
    assert any(msg.startswith("labels must hold values in [0, 5)") for msg in failed)
    assert any("true_expected_count" in msg for msg in failed)
    assert all("got values" not in msg for msg in failed)  # the message never reads values
    passed = [msg for ok, msg in async_backend if ok]
    assert any("sampled_candidates" in msg for msg in passed)


def test_ids_are_kept_in_bounds_when_checks_are_asynchronous(async_backend):
    W, b, x = params()
    # label 9 and candidate 7 are outside [0, 6): reported through assert_async, and clipped so
    # that the gathers stay in bounds instead of failing (or reading garbage) on a device
    sv = values(cand=[0, 7, 2])
    loss = ms.sampled_softmax_loss(W, b, np.array([[1], [9]]), x, 3, C, sampled_values=sv)
    assert np.all(np.isfinite(loss))
    failed = [msg for ok, msg in async_backend if not ok]
    assert any(msg.startswith("labels must hold values in [0, 6)") for msg in failed)
    assert any(msg.startswith("sampled_values[0] (sampled_candidates)") for msg in failed)
    out = ms.sampled_softmax_with_cross_entropy(
        np.zeros((2, 5), np.float32), np.array([[1], [8]]), 2, seed=3
    )
    assert np.all(np.isfinite(out))
    assert any(
        msg.startswith("label must hold values in [0, 5)") for ok, msg in async_backend if not ok
    )
