"""Accidental-hit conventions, dtype rules and device residency on fixed, readable examples."""

from __future__ import annotations

import numpy as np
import pytest

from ._kit import KitBase
from .strategies import FLOAT_DTYPES, example_paddle_problem, example_problem


class HitConventionTests(KitBase):
    """TF masks the LAST copy of a candidate per row (any of the T labels); Paddle masks every
    matching column of the row."""

    def test_tf_masks_last_duplicate_per_row(self):
        # row 0 hits 2 (positions 0 and 2: only 2 is masked) and 1 (position 1 and 5: only 5);
        # row 1 repeats label 3 (one mask at position 3); row 2 hits nothing
        labels = np.array([[1, 2], [3, 3], [0, 6]], dtype=np.int64)
        sampled = np.array([2, 1, 2, 3, 5, 1], dtype=np.int64)
        p = example_problem(batch=3, num_classes=7, num_true=2, num_sampled=6)
        p.update(labels=labels, sampled_candidates=sampled,
                 sampled_expected_count=np.full(6, 0.5, np.float32))
        a = self.problem_arrays(p)
        logits, _ = self.api.compute_sampled_logits(
            a["weights"], a["biases"], a["labels"], a["inputs"], num_sampled=6, num_classes=7,
            num_true=2, sampled_values=a["sampled_values"], remove_accidental_hits=True,
            backend=self.backend)
        masked = np.asarray(self.to_numpy(logits))[:, 2:] < -1e30
        want = np.zeros((3, 6), dtype=bool)
        want[0, 2] = want[0, 5] = want[1, 3] = True
        np.testing.assert_array_equal(masked, want, err_msg="masked (row, sampled position)")
        ref_logits, _ = self.reference.sampled_logits(*self.reference_args(p),
                                                      remove_accidental_hits=True)
        np.testing.assert_array_equal(np.asarray(ref_logits)[:, 2:] < -1e30, want)
        loss = self.api.sampled_softmax_loss(
            a["weights"], a["biases"], a["labels"], a["inputs"], num_sampled=6, num_classes=7,
            num_true=2, sampled_values=a["sampled_values"], backend=self.backend)
        self.assert_close(loss, self.reference.sampled_softmax_loss(*self.reference_args(p)),
                          dtype="float32", device=a["inputs"])

    def test_paddle_masks_every_matching_column(self):
        p = example_paddle_problem()
        samples = p["customized_samples"].copy()
        label0 = samples[0, 0]
        samples[0, 1:4] = label0  # three copies of row 0's label among its negatives
        samples[0, 4] = (label0 + 1) % p["num_classes"]
        samples[1, 2] = samples[1, 0]
        p["customized_samples"] = samples
        dt = p["dtype"]
        logits = self.arr(p["logits"], dt)
        got = self.api.sampled_softmax_with_cross_entropy(
            logits, self.arr(p["label"]), p["num_samples"], remove_accidental_hits=True,
            use_customized_samples=True, customized_samples=self.arr(samples),
            customized_probabilities=self.arr(p["customized_probabilities"], dt),
            backend=self.backend)
        want = self.reference.paddle_sampled_softmax(
            p["logits"], p["label"], samples, p["customized_probabilities"])
        self.assert_close(got, want, dtype=dt, device=logits)
        # the same loss as if the masked columns were not there at all
        keep = [0] + [c for c in range(1, samples.shape[1]) if samples[0, c] != label0]
        only0 = self.reference.paddle_sampled_softmax(
            p["logits"][:1], p["label"][:1], samples[:1, keep],
            p["customized_probabilities"][:1, keep])
        np.testing.assert_allclose(self.to_numpy(got)[:1], only0, rtol=3e-5, atol=3e-5)


class DtypeTests(KitBase):
    """Output dtype = input dtype; half precision rows with hits stay finite."""

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES)
    def test_output_dtype_follows_inputs(self, dtype):
        self.require_dtype(dtype)
        p = example_problem(dtype)
        a = self.problem_arrays(p)
        ref = self.reference
        common = dict(num_sampled=p["num_sampled"], num_classes=p["num_classes"],
                      num_true=p["num_true"], sampled_values=a["sampled_values"],
                      backend=self.backend)
        rtol, atol = self.loss_tolerance(dtype, p)
        for name, got, want in (
            ("sampled_softmax_loss",
             self.api.sampled_softmax_loss(a["weights"], a["biases"], a["labels"], a["inputs"],
                                          **common),
             ref.sampled_softmax_loss(*self.reference_args(p))),
            ("nce_loss",
             self.api.nce_loss(a["weights"], a["biases"], a["labels"], a["inputs"], **common),
             ref.nce_loss(*self.reference_args(p))),
            ("rank_sampled_softmax_loss",
             self.api.rank_sampled_softmax_loss(
                 a["weights"], a["biases"], a["labels"], a["inputs"], num_resampled=3,
                 resampling_temperature=1.0, remove_accidental_hits=True,
                 partition_strategy="div", **common),
             ref.rank_sampled_softmax_loss(*self.reference_args(p), 3)),
        ):
            self.assert_close(got, want, dtype=dtype, rtol=rtol, atol=atol * 4,
                              device=a["inputs"], err_msg=name)
        logits, labels = self.api.compute_sampled_logits(
            a["weights"], a["biases"], a["labels"], a["inputs"], **common)
        want_logits, _ = ref.sampled_logits(*self.reference_args(p))
        self.assert_close(logits, want_logits, dtype=dtype, rtol=rtol, atol=atol,
                          device=a["inputs"], err_msg="compute_sampled_logits")
        assert labels.dtype == logits.dtype, "soft labels must have the logits' dtype"

        q = example_paddle_problem(dtype)
        lg = self.arr(q["logits"], dtype)
        got = self.api.sampled_softmax_with_cross_entropy(
            lg, self.arr(q["label"]), q["num_samples"], use_customized_samples=True,
            customized_samples=self.arr(q["customized_samples"]),
            customized_probabilities=self.arr(q["customized_probabilities"], dtype),
            backend=self.backend)
        want = ref.paddle_sampled_softmax(q["logits"], q["label"], q["customized_samples"],
                                          q["customized_probabilities"])
        prt, pat = self.tolerances_paddle(dtype, q)
        self.assert_close(got, want, dtype=dtype, rtol=prt, atol=pat, device=lg,
                          err_msg="sampled_softmax_with_cross_entropy")

    @pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
    def test_half_precision_hit_rows_are_finite(self, dtype):
        """Rows with an accidental hit give a finite loss (and finite gradients) in half
        precision, equal to the reference (where the masked column contributes nothing)."""
        self.require_dtype(dtype)
        p = example_problem(dtype)
        assert p["hit_rows"] == [0, 1, 2]
        a = self.problem_arrays(p)
        kwargs = dict(num_sampled=p["num_sampled"], num_classes=p["num_classes"],
                      num_true=p["num_true"], sampled_values=a["sampled_values"],
                      remove_accidental_hits=True, backend=self.backend)
        loss = self.api.sampled_softmax_loss(a["weights"], a["biases"], a["labels"],
                                            a["inputs"], **kwargs)
        got = self.to_numpy(loss)
        assert np.all(np.isfinite(got)), f"{dtype} loss of rows with hits: {got}"
        rtol, atol = self.loss_tolerance(dtype, p)
        self.assert_close(loss, self.reference.sampled_softmax_loss(*self.reference_args(p)),
                          dtype=dtype, rtol=rtol, atol=atol, device=a["inputs"])

        def fn(w, b, x):
            out = self.api.sampled_softmax_loss(w, b, a["labels"], x, **kwargs)
            return self.xp.sum(out)

        grads = self.grad(fn, a["weights"], a["biases"], a["inputs"])
        if grads is not None:
            for name, g, like in zip(("weights", "biases", "inputs"), grads,
                                     (a["weights"], a["biases"], a["inputs"])):
                assert np.all(np.isfinite(self.grad_to_numpy(g, like))), (
                    f"{dtype} gradient of {name} is not finite")


class DeviceTests(KitBase):
    """Results live on the device of the inputs, for every device of the backend."""

    def test_results_on_input_device(self):
        for device in self.device_list():
            p = example_problem("float32")
            a = self.problem_arrays(p, device=device)
            what = f"device {device!r}"
            loss = self.ms.sampled_softmax_loss(
                a["weights"], a["biases"], a["labels"], a["inputs"],
                num_sampled=p["num_sampled"], num_classes=p["num_classes"],
                num_true=p["num_true"], sampled_values=a["sampled_values"],
                backend=self.backend)
            self.assert_close(loss, self.reference.sampled_softmax_loss(*self.reference_args(p)),
                              dtype="float32", device=a["inputs"], err_msg=what)
            logits, labels = self.ms.compute_sampled_logits(
                a["weights"], a["biases"], a["labels"], a["inputs"],
                num_sampled=p["num_sampled"], num_classes=p["num_classes"],
                num_true=p["num_true"], sampled_values=a["sampled_values"],
                backend=self.backend)
            for out in (logits, labels):
                self.assert_close(out, self.to_numpy(out), dtype="float32", device=a["inputs"],
                                  err_msg=what)
            # samplers put their outputs on the true classes' device
            out = self.ms.log_uniform_candidate_sampler(a["labels"], p["num_true"], 3, True, 50,
                                                        seed=1, backend=self.backend)
            for x in out:
                self.assert_equal(x, self.to_numpy(x), device=a["labels"], err_msg=what)
            hits = self.ms.compute_accidental_hits(a["labels"], a["sampled_values"][0],
                                                   p["num_true"], backend=self.backend)
            for x in hits:
                self.assert_equal(x, self.to_numpy(x), device=a["labels"], err_msg=what)
            q = example_paddle_problem("float32")
            lg = self.arr(q["logits"], "float32", device)
            for customized in (True, False):
                extra = dict(use_customized_samples=True,
                             customized_samples=self.arr(q["customized_samples"], None, device),
                             customized_probabilities=self.arr(
                                 q["customized_probabilities"], "float32", device)
                             ) if customized else dict(seed=3)
                got = self.ms.sampled_softmax_with_cross_entropy(
                    lg, self.arr(q["label"], None, device), q["num_samples"],
                    backend=self.backend, **extra)
                self.assert_close(got, self.to_numpy(got), dtype="float32", device=lg,
                                  err_msg=f"{what}, paddle customized={customized}")
