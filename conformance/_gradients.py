"""Gradients vs the reference's analytic gradients, and no gradient into sampled values.

Every test differentiates ``sum(loss * upstream)`` with a random ``upstream`` (so a gradient
that is right only for an all-ones upstream fails) through the :meth:`KitBase.grad` hook; they
skip on backends without autodiff.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ._kit import KitBase, kit_given
from .strategies import paddle_problem, rank_problem, sampled_softmax_problem

_GRAD_DTYPES = ("float32", "float64")


def _split(flat, p):
    """Rebuild (weights, biases, inputs) from the flat list of differentiated arrays."""
    nw = len(p["weights"]) if isinstance(p["weights"], list) else 0
    nb = len(p["biases"]) if isinstance(p["biases"], list) else 0
    k = 0
    if nw:
        weights, k = list(flat[:nw]), nw
    else:
        weights, k = flat[0], 1
    if nb:
        biases, k = list(flat[k:k + nb]), k + nb
    else:
        biases, k = flat[k], k + 1
    return weights, biases, flat[k], list(flat[k + 1:])


def _flat(value):
    return list(value) if isinstance(value, list) else [value]


class GradientTests(KitBase):
    """Gradients for weights (every shard), biases and inputs; none for sampled values."""

    def _grad_dtype(self, data):
        choices = [d for d in _GRAD_DTYPES if d in self.dtype_list()] or ["float32"]
        return data.draw(st.sampled_from(choices), label="dtype")

    def _check_grads(self, p, grads, flat, want):
        dt = p["dtype"]
        rtol, atol = self.loss_tolerance(dt, p)
        got = [self.grad_to_numpy(g, f) for g, f in zip(grads, flat)]
        n_w = len(_flat(p["weights"]))
        n_b = len(_flat(p["biases"]))
        names = ([f"weights[{i}]" for i in range(n_w)] if isinstance(p["weights"], list)
                 else ["weights"])
        names += ([f"biases[{i}]" for i in range(n_b)] if isinstance(p["biases"], list)
                  else ["biases"])
        names += ["inputs"]
        expected = _flat(want["weights"]) + _flat(want["biases"]) + [want["inputs"]]
        for name, g, e, f, raw in zip(names, got, expected, flat, grads):
            e = np.asarray(e, dtype=np.float64)
            if raw is not None:
                self.assert_close(raw, e, dtype=dt, rtol=rtol, atol=atol, device=f,
                                  err_msg=f"gradient of {name}")
            else:
                np.testing.assert_allclose(g, e, rtol=rtol, atol=atol,
                                           err_msg=f"gradient of {name} (None: no gradient)")

    def _loss_fn(self, api, p, a, **kwargs):
        """The scalar ``sum(api(...) * upstream)`` as a function of the flat parameters."""
        upstream = np.random.default_rng(p["num_classes"] * 7 + p["num_sampled"]).uniform(
            0.5, 1.5, size=p["inputs"].shape[0])
        dt = p["dtype"]

        def fn(*flat):
            weights, biases, inputs, rest = _split(flat, p)
            sampled_values = a["sampled_values"]
            if rest:  # expected counts passed as differentiable arrays
                sampled_values = (sampled_values[0], rest[0], rest[1])
            loss = api(weights, biases, a["labels"], inputs, sampled_values=sampled_values,
                       num_classes=p["num_classes"], num_true=p["num_true"],
                       backend=self.backend, **kwargs)
            return self.weighted_sum(loss, upstream, dt)

        return fn, upstream

    # ------------------------------------------------------------------ TF losses

    @kit_given(data=st.data(), remove=st.booleans(), fraction=0.5)
    def test_sampled_softmax_loss_gradients(self, data, remove):
        """v1 ``sampled_softmax_loss`` (any shard layout): weights, biases and inputs."""
        p = data.draw(sampled_softmax_problem(dtype=self._grad_dtype(data), shards="any",
                                              shard_biases=None), label="problem")
        a = self.problem_arrays(p)
        fn, upstream = self._loss_fn(
            self.api.v1.sampled_softmax_loss, p, a, num_sampled=p["num_sampled"],
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"])
        flat = _flat(a["weights"]) + _flat(a["biases"]) + [a["inputs"]]
        grads = self.grad_or_skip(fn, *flat)
        want = self.reference.sampled_softmax_loss_grad(
            *self.reference_args(p), remove_accidental_hits=remove,
            partition_strategy=p["partition_strategy"], upstream=upstream)
        self._check_grads(p, grads, flat, want)

    @kit_given(data=st.data(), remove=st.booleans(), fraction=0.5)
    def test_nce_loss_gradients(self, data, remove):
        """v1 ``nce_loss`` (any shard layout): weights, biases and inputs."""
        p = data.draw(sampled_softmax_problem(dtype=self._grad_dtype(data), shards="any",
                                              shard_biases=None), label="problem")
        a = self.problem_arrays(p)
        fn, upstream = self._loss_fn(
            self.api.v1.nce_loss, p, a, num_sampled=p["num_sampled"],
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"])
        flat = _flat(a["weights"]) + _flat(a["biases"]) + [a["inputs"]]
        grads = self.grad_or_skip(fn, *flat)
        want = self.reference.nce_loss_grad(
            *self.reference_args(p), remove_accidental_hits=remove,
            partition_strategy=p["partition_strategy"], upstream=upstream)
        self._check_grads(p, grads, flat, want)

    @kit_given(data=st.data(), remove=st.booleans(), fraction=0.3)
    def test_rank_sampled_softmax_loss_gradients(self, data, remove):
        """``rank_sampled_softmax_loss``: no gradient through the resampling scores."""
        p = data.draw(rank_problem(dtype=self._grad_dtype(data), shards="any"), label="problem")
        a = self.problem_arrays(p)
        fn, upstream = self._loss_fn(
            self.api.rank_sampled_softmax_loss, p, a, num_sampled=p["num_sampled"],
            num_resampled=p["num_resampled"],
            resampling_temperature=p["resampling_temperature"],
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"])
        flat = _flat(a["weights"]) + _flat(a["biases"]) + [a["inputs"]]
        grads = self.grad_or_skip(fn, *flat)
        want = self.reference.rank_sampled_softmax_loss_grad(
            *self.reference_args(p), p["num_resampled"],
            resampling_temperature=p["resampling_temperature"],
            remove_accidental_hits=remove, partition_strategy=p["partition_strategy"],
            upstream=upstream)
        self._check_grads(p, grads, flat, want)

    @kit_given(
        p=sampled_softmax_problem(shards="none"),
        api=st.sampled_from(["sampled_softmax_loss", "nce_loss", "compute_sampled_logits"]),
        fraction=0.5,
    )
    def test_no_gradient_into_sampled_values(self, p, api):
        """Expected counts passed as differentiable arrays get no gradient (zero or None),
        while weights, biases and inputs still do."""
        a = self.problem_arrays(p)
        fn_api = getattr(self.api, api)
        if api == "compute_sampled_logits":
            def fn_api(*args, _f=fn_api, **kwargs):
                logits, _ = _f(*args, **kwargs)
                return self.xp.sum(logits, axis=1)

            kwargs = dict(num_sampled=p["num_sampled"], remove_accidental_hits=False)
        else:
            kwargs = dict(num_sampled=p["num_sampled"])
        fn, _ = self._loss_fn(fn_api, p, a, **kwargs)
        _, true_ec, sampled_ec = a["sampled_values"]
        flat = [a["weights"], a["biases"], a["inputs"], true_ec, sampled_ec]
        grads = self.grad_or_skip(fn, *flat)
        for name, g, like in (("true_expected_count", grads[3], true_ec),
                              ("sampled_expected_count", grads[4], sampled_ec)):
            got = self.grad_to_numpy(g, like)
            assert np.all(got == 0), (
                f"{api}: {name} must receive no gradient (stop_gradient on sampled_values), "
                f"got {got}"
            )
        assert grads[2] is not None, f"{api}: inputs must stay connected to the loss"

    @kit_given(data=st.data(), api=st.sampled_from(["sampled_softmax_loss", "nce_loss"]),
               remove=st.booleans(), fraction=0.5)
    def test_gathered_rows(self, data, api, remove):
        """``gathered=True`` on the rows of ``row_ids``: the reference's loss over the whole
        table, and the rows' gradients scatter-added at the ids (TF's ``IndexedSlices``) give
        the reference's table gradient."""
        p = data.draw(sampled_softmax_problem(dtype=self._grad_dtype(data), shards="none"),
                      label="problem")
        dt = p["dtype"]
        a = self.problem_arrays(p)
        ids = self.to_numpy(self.api.row_ids(a["labels"], a["sampled_values"],
                                             backend=self.backend))
        want_ids = np.concatenate([np.reshape(p["labels"], -1), p["sampled_candidates"]])
        np.testing.assert_array_equal(ids, want_ids, err_msg="row_ids")
        rows = dict(a, weights=self.arr(np.asarray(p["weights"])[want_ids], dt),
                    biases=self.arr(np.asarray(p["biases"])[want_ids], dt))
        kwargs = dict(num_sampled=p["num_sampled"], remove_accidental_hits=remove,
                      gathered=True)
        loss = getattr(self.api, api)(**rows, num_classes=p["num_classes"],
                                      num_true=p["num_true"], backend=self.backend, **kwargs)
        reference = getattr(self.reference, api)
        rtol, atol = self.loss_tolerance(dt, p)
        self.assert_close(loss, reference(*self.reference_args(p), remove_accidental_hits=remove),
                          dtype=dt, rtol=rtol, atol=atol, device=a["inputs"],
                          err_msg=f"{api}(gathered=True)")
        fn, upstream = self._loss_fn(getattr(self.api, api), p, rows, **kwargs)
        flat = [rows["weights"], rows["biases"], rows["inputs"]]
        grads = self.grad_or_skip(fn, *flat)
        want = getattr(self.reference, api + "_grad")(
            *self.reference_args(p), remove_accidental_hits=remove, upstream=upstream)
        for name, g, like, table in (("weights", grads[0], flat[0], want["weights"]),
                                     ("biases", grads[1], flat[1], want["biases"])):
            scattered = np.zeros(np.shape(table))
            np.add.at(scattered, want_ids, self.grad_to_numpy(g, like))
            np.testing.assert_allclose(scattered, table, rtol=rtol, atol=atol,
                                       err_msg=f"{api}: the gathered rows' gradients of {name}")
        self.assert_close(grads[2], np.asarray(want["inputs"], np.float64), dtype=dt, rtol=rtol,
                          atol=atol, device=flat[2], err_msg="gradient of inputs")

    # ------------------------------------------------------------------ Paddle

    @kit_given(data=st.data(), remove=st.booleans(), fraction=0.5)
    def test_sampled_softmax_with_cross_entropy_gradients(self, data, remove):
        """Paddle API: ``d logits`` is the scatter-add of ``d SampledLogits``; customized
        probabilities get no gradient."""
        p = data.draw(paddle_problem(dtype=self._grad_dtype(data)), label="problem")
        dt = p["dtype"]
        logits = self.arr(p["logits"], dt)
        probabilities = self.arr(p["customized_probabilities"], dt)
        label = self.arr(p["label"])
        samples = self.arr(p["customized_samples"])
        upstream = np.random.default_rng(p["num_classes"]).uniform(
            0.5, 1.5, size=(p["logits"].shape[0], 1))

        def fn(lg, prob):
            loss = self.api.sampled_softmax_with_cross_entropy(
                lg, label, p["num_samples"], num_true=p["num_true"],
                remove_accidental_hits=remove, use_customized_samples=True,
                customized_samples=samples, customized_probabilities=prob,
                backend=self.backend)
            return self.weighted_sum(loss, upstream, dt)

        grads = self.grad_or_skip(fn, logits, probabilities)
        want = self.reference.paddle_sampled_softmax_grad(
            np.asarray(p["logits"], np.float64), p["label"], p["customized_samples"],
            np.asarray(p["customized_probabilities"], np.float64),
            remove_accidental_hits=remove, upstream=upstream)
        rtol, atol = self.tolerances_paddle(dt, p)
        self.assert_close(grads[0], np.asarray(want, np.float64), dtype=dt, rtol=rtol, atol=atol,
                          device=logits, err_msg="gradient of logits")
        got_prob = self.grad_to_numpy(grads[1], probabilities)
        assert np.all(got_prob == 0), (
            f"customized_probabilities must receive no gradient, got {got_prob}"
        )
