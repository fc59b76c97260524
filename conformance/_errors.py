"""Every bad input raises the documented error type, and the message names the argument.

Checks of array VALUES (label range, positive expected counts) are expected only where the
backend runs them (``may_read_values``, or ``check_async`` which may raise later: the kit then
reads the result back and accepts any exception); shape, dtype and size checks always.

Inputs at the edges that are NOT errors are held here too: unsigned labels (the same results
as int64 ones), empty batches (shape ``(0,)``), and ranges beyond ``2**32`` (valid ids where the
index dtype is int64, an error naming ``range_max`` where it is int32).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from ._kit import KitBase
from .strategies import example_paddle_problem, example_problem

# (id, api, change, exception type, pattern the message must contain, is a value check)
# ``api`` is "tf" (each TF-named loss), "v1" (v1 losses with shards), "rank", "sampler",
# "hits" or "paddle"; ``change`` edits the keyword arguments of a valid call.
_TF_LOSSES = ("sampled_softmax_loss", "nce_loss", "compute_sampled_logits",
              "v1.sampled_softmax_loss", "v1.nce_loss")


def _labels(rows, dtype):
    """A change that makes ``labels`` the ``[3, 2]`` array ``rows`` of ``dtype``."""
    def change(kw):
        kw["labels"] = np.array(rows, dtype=dtype)

    return change


def _sampled_member(member: int, edit):
    """A change that replaces ``sampled_values[member]`` by ``edit(kw, copy of it)``."""
    def change(kw):
        parts = list(kw["sampled_values"])
        parts[member] = edit(kw, None if parts[member] is None else parts[member].copy())
        kw["sampled_values"] = tuple(parts)

    return change


def _set_at(index, value):
    """An ``edit`` for :func:`_sampled_member` that sets ``array[index] = value(kw)``."""
    def edit(kw, array):
        array[index] = value(kw)
        return array

    return edit


_labels_out_of_range = _labels([[0, 1], [2, 7], [1, 1]], np.int64)  # 7 == num_classes
_labels_negative = _labels([[0, -1], [2, 3], [1, 1]], np.int64)


def _labels_rank1(kw):
    kw["labels"] = kw["labels"][:, 0]


def _labels_float(kw):
    kw["labels"] = kw["labels"].astype(np.float32)


def _num_true_mismatch(kw):
    kw["num_true"] = 3


def _inputs_rank1(kw):
    kw["inputs"] = kw["inputs"][0]


def _inputs_int(kw):
    kw["inputs"] = np.ones(kw["inputs"].shape, dtype=np.int64)


def _inputs_wrong_dim(kw):
    kw["inputs"] = np.ones((kw["inputs"].shape[0], kw["inputs"].shape[1] + 1), np.float32)


def _num_sampled_zero(kw):
    kw["num_sampled"] = 0


def _num_classes_zero(kw):
    kw["num_classes"] = 0


def _num_true_zero(kw):
    kw["num_true"] = 0


def _num_sampled_over_classes(kw):
    kw["sampled_values"] = None
    kw["num_sampled"] = kw["num_classes"] + 1


_candidates_out_of_range = _sampled_member(0, _set_at(0, lambda kw: kw["num_classes"]))
_candidates_float = _sampled_member(0, lambda kw, c: c.astype(np.float32))
_sampled_count_nan = _sampled_member(2, _set_at(1, lambda kw: np.nan))
_sampled_count_zero = _sampled_member(2, _set_at(0, lambda kw: 0.0))
_true_count_negative = _sampled_member(1, _set_at((0, 0), lambda kw: -0.5))


def _sampled_values_short(kw):
    kw["sampled_values"] = tuple(kw["sampled_values"][:2])


def _sampled_values_dict(kw):
    kw["sampled_values"] = {}


_sampled_values_member_none = _sampled_member(0, lambda kw, c: None)
_sampled_values_member_dict = _sampled_member(1, lambda kw, t: {})
_labels_unsigned_out_of_range = _labels([[0, 1], [2, 7], [1, 1]], np.uint16)  # 7 == num_classes
_labels_uint64_above_int64 = _labels([[0, 1], [2, 2**63 + 1], [1, 1]], np.uint64)


def _shards_off_layout(kw):
    w = kw["weights"]
    kw["weights"] = [w[:1], w[1:]]  # 1 + 6 rows is neither the "div" nor the "mod" layout
    kw["partition_strategy"] = "div"


def _unknown_partition_strategy(kw):
    w = kw["weights"]
    kw["weights"] = [w[0::2], w[1::2]]
    kw["partition_strategy"] = "modulo"


def _weights_int(kw):
    kw["weights"] = kw["weights"].astype(np.int64)


TF_CASES = [
    ("labels_out_of_range", _labels_out_of_range, ValueError, r"\blabels\b", True),
    ("labels_negative", _labels_negative, ValueError, r"\blabels\b", True),
    ("labels_rank1", _labels_rank1, ValueError, r"\blabels\b", False),
    ("labels_float", _labels_float, TypeError, r"\blabels\b", False),
    ("num_true_mismatch", _num_true_mismatch, ValueError, r"\bnum_true\b", False),
    ("num_true_zero", _num_true_zero, ValueError, r"\bnum_true\b", False),
    ("inputs_rank1", _inputs_rank1, ValueError, r"\binputs\b", False),
    ("inputs_int", _inputs_int, TypeError, r"\binputs\b", False),
    ("inputs_wrong_dim", _inputs_wrong_dim, ValueError, r"\b(inputs|weights)\b", False),
    ("weights_int", _weights_int, TypeError, r"\bweights\b", False),
    ("num_sampled_zero", _num_sampled_zero, ValueError, r"\bnum_sampled\b", False),
    ("num_classes_zero", _num_classes_zero, ValueError, r"\bnum_classes\b", False),
    ("num_sampled_over_num_classes", _num_sampled_over_classes, ValueError,
     r"\bnum_sampled\b", False),
    ("candidates_out_of_range", _candidates_out_of_range, ValueError,
     r"sampled_values|sampled_candidates", True),
    ("candidates_float", _candidates_float, TypeError, r"sampled_values|sampled_candidates",
     False),
    ("sampled_count_nan", _sampled_count_nan, ValueError,
     r"sampled_values|sampled_expected_count", True),
    ("sampled_count_zero", _sampled_count_zero, ValueError,
     r"sampled_values|sampled_expected_count", True),
    ("true_count_negative", _true_count_negative, ValueError,
     r"sampled_values|true_expected_count", True),
    ("sampled_values_short", _sampled_values_short, ValueError, r"\bsampled_values\b", False),
    ("sampled_values_dict", _sampled_values_dict, ValueError, r"\bsampled_values\b", False),
    ("sampled_values_member_none", _sampled_values_member_none, TypeError,
     r"sampled_values\[0\]", False),
    ("sampled_values_member_dict", _sampled_values_member_dict, TypeError,
     r"sampled_values\[1\]", False),
    ("labels_unsigned_out_of_range", _labels_unsigned_out_of_range, ValueError, r"\blabels\b",
     True),
    ("labels_uint64_above_int64", _labels_uint64_above_int64, ValueError, r"\blabels\b", True),
]
SHARD_CASES = [
    ("shards_off_layout", _shards_off_layout, ValueError, r"\bweights\b", False),
    ("unknown_partition_strategy", _unknown_partition_strategy, ValueError,
     r"\bpartition_strategy\b", False),
]


def _sampler_case(change, exc, pattern, value_check=False):
    return change, exc, pattern, value_check


SAMPLER_CASES = {
    "unique_num_sampled_over_range": _sampler_case(
        dict(num_sampled=8, unique=True, range_max=7), ValueError, r"num_sampled|range_max"),
    "true_classes_out_of_range": _sampler_case(
        dict(true_classes=np.array([[0, 9]], np.int64)), ValueError, r"true_classes", True),
    "range_max_zero": _sampler_case(dict(range_max=0), ValueError, r"\brange_max\b"),
    "num_sampled_zero": _sampler_case(dict(num_sampled=0), ValueError, r"\bnum_sampled\b"),
    "num_true_zero": _sampler_case(dict(num_true=0), ValueError, r"\bnum_true\b"),
    "true_classes_rank1": _sampler_case(
        dict(true_classes=np.array([0, 1], np.int64)), ValueError, r"true_classes"),
    "num_true_mismatch": _sampler_case(dict(num_true=3), ValueError, r"num_true|true_classes"),
    "true_classes_float": _sampler_case(
        dict(true_classes=np.array([[0.0, 1.0]], np.float32)), TypeError, r"true_classes"),
    "true_classes_uint64_above_int64": _sampler_case(
        dict(true_classes=np.array([[0, 2**63 + 1]], np.uint64)), ValueError, r"true_classes",
        True),
    "range_max_beyond_int64": _sampler_case(dict(range_max=2**63), ValueError, r"\brange_max\b"),
}

PADDLE_CASES = {
    "logits_rank1": (lambda kw: kw.update(logits=kw["logits"][0]), ValueError, r"\blogits\b",
                     False),
    "label_rank1": (lambda kw: kw.update(label=kw["label"][:, 0]), ValueError, r"\blabel\b",
                    False),
    "label_float": (lambda kw: kw.update(label=kw["label"].astype(np.float32)), TypeError,
                    r"\blabel\b", False),
    "label_out_of_range": (lambda kw: kw.update(label=kw["label"] + kw["logits"].shape[1],
                                                use_customized_samples=False),
                           ValueError, r"\blabel\b", True),
    "label_uint64_above_int64": (
        lambda kw: kw.update(label=np.full(kw["label"].shape, 2**63 + 1, np.uint64),
                             use_customized_samples=False),
        ValueError, r"\blabel\b", True),
    "num_samples_zero": (lambda kw: kw.update(num_samples=0), ValueError, r"\bnum_samples\b",
                         False),
    "num_samples_over_classes": (
        lambda kw: kw.update(num_samples=kw["logits"].shape[1] + 1,
                             use_customized_samples=False),
        ValueError, r"\bnum_samples\b", False),
    "num_true_mismatch": (lambda kw: kw.update(num_true=2), ValueError, r"\bnum_true\b", False),
    "customized_samples_wrong_shape": (
        lambda kw: kw.update(customized_samples=kw["customized_samples"][:, :-1]),
        ValueError, r"\bcustomized_samples\b", False),
    "customized_samples_missing": (
        lambda kw: kw.update(customized_samples=None), ValueError, r"customized_samples",
        False),
    "customized_samples_out_of_range": (
        lambda kw: kw["customized_samples"].__setitem__((0, 1), kw["logits"].shape[1]),
        ValueError, r"\bcustomized_samples\b", True),
    "customized_probabilities_negative": (
        lambda kw: kw["customized_probabilities"].__setitem__((1, 1), -0.25),
        ValueError, r"\bcustomized_probabilities\b", True),
    "customized_probabilities_nan": (
        lambda kw: kw["customized_probabilities"].__setitem__((1, 0), np.nan),
        ValueError, r"\bcustomized_probabilities\b", True),
}


def _first(out):
    """A loss's value: the first of a tuple (``compute_sampled_logits``), else ``out``."""
    return out[0] if isinstance(out, tuple) else out


class ErrorTests(KitBase):
    """Bad inputs: the right exception type, and the argument named in the message."""

    def _expect(self, thunk, exc, pattern, value_check, what):
        if value_check and not self.checks_values():
            pytest.skip(f"backend {self.backend!r} does not check array values")
        if value_check and not self.host_checks_on():
            # check_async may raise later, as whatever the framework raises: force the result
            with pytest.raises(Exception):
                out = thunk()
                for x in out if isinstance(out, tuple) else (out,):
                    self.to_numpy(x)
            return
        with pytest.raises(exc) as info:
            thunk()
        message = str(info.value)
        assert re.search(pattern, message), (
            f"{what}: the {exc.__name__} must name the argument (/{pattern}/), got: {message}")

    def _tf_call(self, api, kw):
        fn = self.ms
        for part in api.split("."):
            fn = getattr(fn, part)
        kw = dict(kw)

        def conv(v):
            if isinstance(v, (list, tuple)):
                return type(v)(conv(x) for x in v)
            if not isinstance(v, np.ndarray) or v.dtype.kind == "u":
                return v  # unsigned ids stay host data: the API converts them itself
            return self.arr(v, "float32" if v.dtype.kind == "f" else None)

        for key in ("weights", "biases", "inputs", "labels", "sampled_values"):
            kw[key] = conv(kw[key])
        return fn(**kw, backend=self.backend)

    def _tf_kwargs(self):
        p = example_problem("float32", batch=3, num_classes=7, num_true=2, num_sampled=4)
        return dict(weights=p["weights"], biases=p["biases"], labels=p["labels"],
                    inputs=p["inputs"], num_sampled=4, num_classes=7, num_true=2,
                    sampled_values=(p["sampled_candidates"], p["true_expected_count"],
                                    p["sampled_expected_count"]),
                    partition_strategy="div")

    def _expect_tf_case(self, cases, case, api):
        _, change, exc, pattern, value_check = next(c for c in cases if c[0] == case)
        kw = self._tf_kwargs()
        change(kw)
        self._expect(lambda: self._tf_call(api, kw), exc, pattern, value_check, f"{api}/{case}")

    @pytest.mark.parametrize("api", _TF_LOSSES)
    @pytest.mark.parametrize("case", [c[0] for c in TF_CASES])
    def test_tf_loss_rejects(self, case, api):
        self._expect_tf_case(TF_CASES, case, api)

    @pytest.mark.parametrize("api", ["compute_sampled_logits", "v1.sampled_softmax_loss",
                                     "v1.nce_loss"])
    @pytest.mark.parametrize("case", [c[0] for c in SHARD_CASES])
    def test_sharded_weights_rejects(self, case, api):
        self._expect_tf_case(SHARD_CASES, case, api)

    @pytest.mark.parametrize("case", ["num_resampled_not_below_num_sampled",
                                      "temperature_not_positive",
                                      "unknown_partition_strategy"])
    def test_rank_sampled_softmax_loss_rejects(self, case):
        kw = self._tf_kwargs()
        kw.update(num_resampled=2, resampling_temperature=1.0, remove_accidental_hits=True)
        pattern = {"num_resampled_not_below_num_sampled": r"\bnum_resampled\b",
                   "temperature_not_positive": r"\bresampling_temperature\b",
                   "unknown_partition_strategy": r"\bpartition_strategy\b"}[case]
        if case == "num_resampled_not_below_num_sampled":
            kw["num_resampled"] = 4
        elif case == "temperature_not_positive":
            kw["resampling_temperature"] = 0.0
        else:
            kw["partition_strategy"] = "modulo"
        self._expect(lambda: self._tf_call("rank_sampled_softmax_loss", kw), ValueError,
                     pattern, False, f"rank_sampled_softmax_loss/{case}")

    @pytest.mark.parametrize("sampler", ["log_uniform_candidate_sampler",
                                         "uniform_candidate_sampler"])
    @pytest.mark.parametrize("case", sorted(SAMPLER_CASES))
    def test_sampler_rejects(self, case, sampler):
        change, exc, pattern, value_check = SAMPLER_CASES[case]
        kw = dict(true_classes=np.array([[0, 1]], np.int64), num_true=2, num_sampled=3,
                  unique=True, range_max=7)
        kw.update(change)
        if kw["true_classes"].dtype.kind != "u":  # unsigned ids: converted by the API
            kw["true_classes"] = self.arr(kw["true_classes"])
        fn = getattr(self.ms, sampler)
        self._expect(lambda: fn(**kw, seed=1, backend=self.backend), exc, pattern, value_check,
                     f"{sampler}/{case}")

    @pytest.mark.parametrize("case", ["num_true_mismatch", "candidates_rank2", "float_classes"])
    def test_compute_accidental_hits_rejects(self, case):
        tc = np.array([[0, 1], [2, 3]], np.int64)
        cands = np.array([1, 2, 5], np.int64)
        num_true = 2
        exc, pattern = ValueError, r"num_true|true_classes"
        if case == "num_true_mismatch":
            num_true = 3
        elif case == "candidates_rank2":
            cands = cands[None, :]
            pattern = r"sampled_candidates"
        else:
            tc = tc.astype(np.float32)
            exc, pattern = TypeError, r"true_classes"
        self._expect(lambda: self.ms.compute_accidental_hits(
            self.arr(tc), self.arr(cands), num_true, backend=self.backend), exc, pattern, False,
            f"compute_accidental_hits/{case}")

    @pytest.mark.parametrize("case", sorted(PADDLE_CASES))
    def test_sampled_softmax_with_cross_entropy_rejects(self, case):
        change, exc, pattern, value_check = PADDLE_CASES[case]
        q = example_paddle_problem("float32")
        kw = dict(logits=q["logits"].copy(), label=q["label"].copy(),
                  num_samples=q["num_samples"], num_true=1, use_customized_samples=True,
                  customized_samples=q["customized_samples"].copy(),
                  customized_probabilities=q["customized_probabilities"].copy())
        change(kw)
        for key in ("logits", "customized_probabilities"):
            if kw.get(key) is not None:
                kw[key] = self.arr(kw[key], "float32")
        for key in ("label", "customized_samples"):
            if kw.get(key) is not None and kw[key].dtype.kind != "u":
                kw[key] = self.arr(kw[key])
        if not kw["use_customized_samples"]:
            kw.pop("customized_samples")
            kw.pop("customized_probabilities")
            kw["seed"] = 1
        self._expect(lambda: self.ms.sampled_softmax_with_cross_entropy(
            **kw, backend=self.backend), exc, pattern, value_check,
            f"sampled_softmax_with_cross_entropy/{case}")

    # ------------------------------------------------------------------ edges that are not errors

    def _unsigned_or_skip(self, labels, dtype):
        try:
            return self.arr(labels.astype(dtype))
        except (TypeError, ValueError):
            pytest.skip(f"backend {self.backend!r} has no {dtype} arrays")

    @pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
    @pytest.mark.parametrize("api", _TF_LOSSES + ("rank_sampled_softmax_loss",))
    def test_unsigned_labels_equal_int64_labels(self, api, dtype):
        kw = self._tf_kwargs()
        if api == "rank_sampled_softmax_loss":
            kw.update(num_resampled=2)
        labels = kw.pop("labels")
        want = self._tf_call(api, dict(kw, labels=labels))
        got = self._tf_call(api, dict(kw, labels=self._unsigned_or_skip(labels, dtype)))
        want, got = _first(want), _first(got)
        np.testing.assert_allclose(self.to_numpy(got), self.to_numpy(want), rtol=1e-6,
                                   err_msg=f"{api} with {dtype} labels")

    @pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
    def test_unsigned_true_classes_and_paddle_labels(self, dtype):
        tc = np.array([[0, 1], [5, 6]], np.int64)
        call = (lambda t: self.ms.uniform_candidate_sampler(
            t, 2, 3, True, 7, seed=self.ms.Generator(1), backend=self.backend))
        want, got = call(self.arr(tc)), call(self._unsigned_or_skip(tc, dtype))
        for w, g in zip(want, got):
            np.testing.assert_array_equal(self.to_numpy(g), self.to_numpy(w))
        q = example_paddle_problem("float32")
        logits = self.arr(q["logits"], "float32")
        paddle = (lambda label: self.ms.sampled_softmax_with_cross_entropy(
            logits, label, q["num_samples"], seed=3, backend=self.backend))
        np.testing.assert_allclose(
            self.to_numpy(paddle(self._unsigned_or_skip(q["label"], dtype))),
            self.to_numpy(paddle(self.arr(q["label"]))), rtol=1e-6)

    @pytest.mark.parametrize("api", _TF_LOSSES + ("rank_sampled_softmax_loss",))
    def test_empty_batch_gives_an_empty_loss(self, api):
        kw = self._tf_kwargs()
        c, _, s = kw["sampled_values"]
        kw.update(labels=kw["labels"][:0], inputs=kw["inputs"][:0],
                  sampled_values=(c, np.ones((0, 2), np.float32), s))
        if api == "rank_sampled_softmax_loss":
            kw.update(num_resampled=2)
        out = _first(self._tf_call(api, kw))
        expected = (0, 2 + 4) if api == "compute_sampled_logits" else (0,)
        assert tuple(self.to_numpy(out).shape) == expected, f"{api} with an empty batch"
        kw.update(sampled_values=None, seed=1)
        out = _first(self._tf_call(api, kw))
        assert tuple(self.to_numpy(out).shape) == expected, f"{api}, default sampler, B=0"

    @pytest.mark.parametrize("sampler", ["uniform_candidate_sampler",
                                         "log_uniform_candidate_sampler"])
    def test_ranges_beyond_2_32(self, sampler):
        fn = getattr(self.ms, sampler)
        tc = self.arr(np.zeros((1, 1), np.int64))
        small = fn(tc, 1, 2, True, 7, seed=1, backend=self.backend).sampled_candidates
        r = 2**32 + 1  # TensorFlow's testLargeUniformRange
        if "int32" in str(small.dtype):
            with pytest.raises(ValueError, match=r"\brange_max\b"):
                fn(tc, 1, 2, False, r, seed=123, backend=self.backend)
            r = 2**30 + 3  # beyond the log-uniform table, within int32
        out = fn(tc, 1, 64, True, r, seed=self.ms.Generator(5), backend=self.backend)
        ref = fn(np.zeros((1, 1), np.int64), 1, 64, True, r, seed=self.ms.Generator(5),
                 backend="numpy")
        got = self.to_numpy(out.sampled_candidates).astype(np.int64)
        assert np.all((got >= 0) & (got < r))
        np.testing.assert_array_equal(got, np.asarray(ref.sampled_candidates),
                                      err_msg=f"{sampler}(range_max={r}): NumPy's candidates")
