"""Values of every API against the float64 reference, on strategy-drawn inputs with explicit
sampled values (no sampler involved, so the comparison is exact up to rounding)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ._kit import KitBase, kit_given
from .strategies import (
    accidental_hit_case,
    paddle_problem,
    rank_problem,
    sampled_softmax_problem,
    shard_weights,
)


class ValueTests(KitBase):
    """Loss values, logits, soft labels and accidental hits vs the reference model."""

    # ------------------------------------------------------------------ sampled softmax

    @kit_given(data=st.data(), remove=st.booleans())
    def test_sampled_softmax_loss_values(self, data, remove):
        """v2 ``sampled_softmax_loss`` ("div" when weights are sharded) equals the reference,
        in every supported dtype."""
        p = data.draw(sampled_softmax_problem(dtype=None, dtypes=self.dtype_list(),
                                              shards=("none", "div"), shard_biases=None,
                                              extreme=None), label="problem")
        a = self.problem_arrays(p)
        got = self.api.sampled_softmax_loss(
            a["weights"], a["biases"], a["labels"], a["inputs"],
            num_sampled=p["num_sampled"], num_classes=p["num_classes"], num_true=p["num_true"],
            sampled_values=a["sampled_values"], remove_accidental_hits=remove,
            backend=self.backend,
        )
        want = self.reference.sampled_softmax_loss(
            *self.reference_args(p), remove_accidental_hits=remove, partition_strategy="div"
        )
        rtol, atol = self.loss_tolerance(p["dtype"], p)
        self.assert_close(got, want, dtype=p["dtype"], rtol=rtol, atol=atol, device=a["inputs"])

    @kit_given(
        p=sampled_softmax_problem(shards="any", shard_biases=None, extreme=None),
        remove=st.booleans(),
    )
    def test_v1_sampled_softmax_loss_values(self, p, remove):
        """v1 ``sampled_softmax_loss`` with sharded weights under "mod" and "div"."""
        a = self.problem_arrays(p)
        got = self.api.v1.sampled_softmax_loss(
            a["weights"], a["biases"], a["labels"], a["inputs"],
            num_sampled=p["num_sampled"], num_classes=p["num_classes"], num_true=p["num_true"],
            sampled_values=a["sampled_values"], remove_accidental_hits=remove,
            partition_strategy=p["partition_strategy"], backend=self.backend,
        )
        want = self.reference.sampled_softmax_loss(
            *self.reference_args(p), remove_accidental_hits=remove,
            partition_strategy=p["partition_strategy"],
        )
        rtol, atol = self.loss_tolerance(p["dtype"], p)
        self.assert_close(got, want, dtype=p["dtype"], rtol=rtol, atol=atol, device=a["inputs"])

    @kit_given(
        p=sampled_softmax_problem(shards="any", shard_biases=None),
        subtract_log_q=st.booleans(),
        remove=st.booleans(),
    )
    def test_compute_sampled_logits_values(self, p, subtract_log_q, remove):
        """Logits ``[B, T+S]`` (masked columns very negative) and soft labels ``1/T``."""
        a = self.problem_arrays(p)
        logits, labels = self.api.compute_sampled_logits(
            a["weights"], a["biases"], a["labels"], a["inputs"],
            num_sampled=p["num_sampled"], num_classes=p["num_classes"], num_true=p["num_true"],
            sampled_values=a["sampled_values"], subtract_log_q=subtract_log_q,
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"],
            backend=self.backend,
        )
        want_logits, want_labels = self.reference.sampled_logits(
            *self.reference_args(p), subtract_log_q=subtract_log_q,
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"],
        )
        want_logits = np.asarray(want_logits, dtype=np.float64)
        dt = p["dtype"]
        # soft labels: exactly 1/T on the true columns (rounded to the dtype), 0 elsewhere
        self.assert_close(labels, self.rounded(want_labels, dt), dtype=dt, rtol=0, atol=0,
                          device=a["inputs"], err_msg="soft labels must be 1/T, then zeros")
        got = np.asarray(self.to_numpy(logits), dtype=np.float64)
        masked = want_logits < -1e30
        self.assert_close(logits, np.where(masked, got, want_logits), dtype=dt,
                          rtol=self.loss_tolerance(dt, p)[0],
                          atol=self.loss_tolerance(dt, p)[1], device=a["inputs"],
                          err_msg="logits (unmasked columns)")
        lowest = float(np.finfo(np.float16).min) / 2 if dt in ("float16", "bfloat16") else -1e30
        assert np.all(got[masked] <= lowest), (
            f"accidental hits must be masked to a very negative value, got {got[masked]}"
        )
        assert np.all(np.isfinite(got[masked])) or dt in ("float16", "bfloat16"), (
            "masked float32/float64 logits are -FLT_MAX - ln Q (finite), got "
            f"{got[masked]}"
        )

    # ------------------------------------------------------------------ NCE and rank

    @kit_given(data=st.data(), remove=st.booleans(), v1=st.booleans())
    def test_nce_loss_values(self, data, remove, v1):
        """``nce_loss`` (v2 "div", v1 with the problem's layout) equals the reference, in every
        supported dtype."""
        p = data.draw(sampled_softmax_problem(dtype=None, dtypes=self.dtype_list(), shards="any",
                                              shard_biases=None, extreme=None), label="problem")
        a = self.problem_arrays(p)
        strategy = p["partition_strategy"]
        common = dict(
            num_sampled=p["num_sampled"], num_classes=p["num_classes"], num_true=p["num_true"],
            sampled_values=a["sampled_values"], remove_accidental_hits=remove,
            backend=self.backend,
        )
        if v1:
            got = self.api.v1.nce_loss(a["weights"], a["biases"], a["labels"], a["inputs"],
                                      partition_strategy=strategy, **common)
        else:
            if strategy == "mod" and p["num_shards"] > 1:
                strategy = "div"
                p = dict(p)
                # v2 is always "div": rebuild the shard lists in that layout
                p["weights"] = shard_weights(p["full_weights"], p["num_shards"], "div")
                if isinstance(p["biases"], list):
                    p["biases"] = shard_weights(p["full_biases"], p["num_shards"], "div")
                a = self.problem_arrays(p)
                common["sampled_values"] = a["sampled_values"]
            got = self.api.nce_loss(a["weights"], a["biases"], a["labels"], a["inputs"], **common)
        want = self.reference.nce_loss(*self.reference_args(p), remove_accidental_hits=remove,
                                       partition_strategy=strategy)
        rtol, atol = self.loss_tolerance(p["dtype"], p)
        self.assert_close(got, want, dtype=p["dtype"], rtol=rtol, atol=atol * p["num_sampled"],
                          device=a["inputs"])

    @kit_given(p=rank_problem(shards="any", shard_biases=None), remove=st.booleans(),
               fraction=0.5)
    def test_rank_sampled_softmax_loss_values(self, p, remove):
        """``rank_sampled_softmax_loss`` (TAPAS resampling, then v1 loss)."""
        a = self.problem_arrays(p)
        got = self.api.rank_sampled_softmax_loss(
            a["weights"], a["biases"], a["labels"], a["inputs"],
            num_sampled=p["num_sampled"], num_resampled=p["num_resampled"],
            num_classes=p["num_classes"], num_true=p["num_true"],
            sampled_values=a["sampled_values"],
            resampling_temperature=p["resampling_temperature"],
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"],
            backend=self.backend,
        )
        want = self.reference.rank_sampled_softmax_loss(
            *self.reference_args(p), p["num_resampled"],
            resampling_temperature=p["resampling_temperature"],
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"],
        )
        rtol, atol = self.loss_tolerance(p["dtype"], p)
        self.assert_close(got, want, dtype=p["dtype"], rtol=rtol, atol=atol, device=a["inputs"])

    # ------------------------------------------------------------------ Paddle

    @kit_given(p=paddle_problem(num_true=None), remove=st.booleans())
    def test_sampled_softmax_with_cross_entropy_customized_values(self, p, remove):
        """Paddle API with per-row customized samples and probabilities, ``[N, 1]`` output."""
        dt = p["dtype"]
        logits = self.arr(p["logits"], dt)
        got = self.api.sampled_softmax_with_cross_entropy(
            logits, self.arr(p["label"]), p["num_samples"], num_true=p["num_true"],
            remove_accidental_hits=remove, use_customized_samples=True,
            customized_samples=self.arr(p["customized_samples"]),
            customized_probabilities=self.arr(p["customized_probabilities"], dt),
            backend=self.backend,
        )
        want = self.reference.paddle_sampled_softmax(
            np.asarray(p["logits"], np.float64), p["label"], p["customized_samples"],
            np.asarray(p["customized_probabilities"], np.float64),
            remove_accidental_hits=remove,
        )
        rtol, atol = self.tolerances_paddle(dt, p)
        self.assert_close(got, want, dtype=dt, rtol=rtol, atol=atol, device=logits)

    # ------------------------------------------------------------------ hits and oracle

    @kit_given(case=accidental_hit_case())
    def test_backend_hit_mask_is_tfs(self, case):
        """The backend's ``hit_mask`` capability (its own kernel, or the portable default) is
        TF's mask: true at the LAST position of each candidate equal to one of the row's
        labels."""
        labels = self.arr(case["true_classes"])
        got = self.backend_spec.hit_mask(self.xp, labels, self.arr(case["sampled_candidates"]),
                                         case["num_classes"])
        rows, cols, _ = self.reference.accidental_hits(case["true_classes"],
                                                       case["sampled_candidates"])
        want = np.zeros((len(case["true_classes"]), len(case["sampled_candidates"])), bool)
        want[np.asarray(rows), np.asarray(cols)] = True
        np.testing.assert_array_equal(np.asarray(self.to_numpy(got)).astype(bool), want)

    @kit_given(case=accidental_hit_case())
    def test_compute_accidental_hits_values(self, case):
        """TF convention: per row, any of the T labels, only the LAST copy of a candidate."""
        true_classes = self.arr(case["true_classes"])
        indices, ids, weights = self.api.compute_accidental_hits(
            true_classes, self.arr(case["sampled_candidates"]), num_true=case["num_true"],
            backend=self.backend,
        )
        want_indices, want_ids, want_weights = self.reference.accidental_hits(
            case["true_classes"], case["sampled_candidates"]
        )
        xp = self.xp
        assert xp.isdtype(ids.dtype, "integral"), f"ids must be integers, got {ids.dtype}"
        self.assert_equal(indices, np.asarray(want_indices), dtype="int32", device=true_classes,
                          err_msg="indices (rows)")
        self.assert_equal(ids, np.asarray(want_ids), device=true_classes,
                          err_msg="ids (positions in sampled_candidates)")
        self.assert_equal(weights, np.asarray(want_weights, dtype=np.float32), dtype="float32",
                          device=true_classes, err_msg="weights (-FLT_MAX)")

    @kit_given(p=sampled_softmax_problem(num_true=1, max_classes=10), fraction=0.5)
    def test_all_candidates_give_full_softmax(self, p):
        """With every class sampled (``all_candidate_sampler``) and hits removed, the sampled
        loss equals the full softmax cross entropy (SEMANTICS 5.6)."""
        a = self.problem_arrays(p)
        C = p["num_classes"]
        values = self.api.all_candidate_sampler(a["labels"], 1, C, True, backend=self.backend)
        got = self.api.sampled_softmax_loss(
            a["weights"], a["biases"], a["labels"], a["inputs"], num_sampled=C, num_classes=C,
            num_true=1, sampled_values=tuple(values), remove_accidental_hits=True,
            backend=self.backend,
        )
        want = self.reference.full_softmax_cross_entropy(
            self.f64(p["full_weights"]), self.f64(p["full_biases"]), p["labels"],
            self.f64(p["inputs"]),
        )
        rtol, atol = self.loss_tolerance(p["dtype"], p)
        self.assert_close(got, want, dtype=p["dtype"], rtol=rtol, atol=atol, device=a["inputs"])
