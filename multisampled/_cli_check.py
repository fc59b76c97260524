"""The cases of ``multisampled check``: one seeded problem, every public API on it, and the
comparison of each backend's results with NumPy's (the pass/fail matrix and its printout)."""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Sequence, TextIO

import numpy as np

import multisampled as ms


def _problem(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    B, D, C, S, T = 8, 16, 50, 10, 2
    labels = rng.integers(0, C, (B, T)).astype("int64")
    labels[0, 1] = labels[0, 0]  # a repeated true label
    return dict(
        B=B, D=D, C=C, S=S, T=T,
        weights=(rng.standard_normal((C, D)) * 0.3).astype("float32"),
        biases=(rng.standard_normal(C) * 0.1).astype("float32"),
        inputs=rng.standard_normal((B, D)).astype("float32"),
        labels=labels,
        logits=rng.standard_normal((B, C)).astype("float32"),
        # customized Paddle samples: true labels first, then per-row negatives with a hit
        custom_samples=np.concatenate(
            [labels[:, :1], rng.integers(0, C, (B, S)), labels[:, :1]], axis=1
        ).astype("int64"),
        custom_probs=rng.uniform(0.05, 0.9, (B, S + 2)).astype("float32"),
        candidates=np.array([3, 7, 7, 11, 2, 40, 41, 3, 9, 0], dtype="int64"),
    )


def _cases(p: dict) -> dict[str, Callable[[Callable], Any]]:
    """API name -> f(to_backend) returning a tuple of results."""
    return {**_sampler_cases(p), **_loss_cases(p)}


def _sampler_cases(p: dict) -> dict[str, Callable[[Callable], Any]]:
    """The candidate samplers and the accidental hits."""
    C, S, T = p["C"], p["S"], p["T"]
    return {
        "log_uniform_candidate_sampler": lambda to: tuple(
            ms.log_uniform_candidate_sampler(to(p["labels"]), T, S, True, C, seed=7)
        ),
        "uniform_candidate_sampler": lambda to: tuple(
            ms.uniform_candidate_sampler(to(p["labels"]), T, S, False, C, seed=7)
        ),
        "learned_unigram_candidate_sampler": lambda to: tuple(
            ms.LearnedUnigramSampler(C)(to(p["labels"]), T, S, True, seed=7)
        ),
        "fixed_unigram_candidate_sampler": lambda to: tuple(
            ms.fixed_unigram_candidate_sampler(
                to(p["labels"]), T, S, True, C, unigrams=list(range(1, C + 1)), seed=7
            )
        ),
        "all_candidate_sampler": lambda to: tuple(
            ms.all_candidate_sampler(to(p["labels"] % S), T, S, True)
        ),
        "compute_accidental_hits": lambda to: tuple(
            ms.compute_accidental_hits(to(p["labels"]), to(p["candidates"]), T)
        ),
    }


def _loss_cases(p: dict) -> dict[str, Callable[[Callable], Any]]:
    """The sampled logits and the TF and Paddle losses."""
    B, C, S, T = p["B"], p["C"], p["S"], p["T"]

    def sv(to: Callable) -> tuple:
        # explicit sampled values so the loss checks do not depend on the sampler
        counts = np.full(S, 0.5, "float32")
        true_counts = np.full((B, T), 0.25, "float32")
        return (to(p["candidates"]), to(true_counts), to(counts))

    def shards(to: Callable, arr: np.ndarray) -> list:
        # the "mod" layout: shard p holds ids p, p+3, p+6, ...
        return [to(np.ascontiguousarray(arr[p::3])) for p in range(3)]

    return {
        "compute_sampled_logits": lambda to: tuple(
            ms.compute_sampled_logits(
                to(p["weights"]), to(p["biases"]), to(p["labels"]), to(p["inputs"]), S, C,
                num_true=T, sampled_values=sv(to), remove_accidental_hits=True,
            )
        ),
        "sampled_softmax_loss": lambda to: (
            ms.sampled_softmax_loss(
                to(p["weights"]), to(p["biases"]), to(p["labels"]), to(p["inputs"]), S, C,
                num_true=T, seed=7,
            ),
        ),
        "v1.sampled_softmax_loss (mod shards)": lambda to: (
            ms.v1.sampled_softmax_loss(
                shards(to, p["weights"]), shards(to, p["biases"]), to(p["labels"]),
                to(p["inputs"]), S, C, num_true=T, sampled_values=sv(to),
            ),
        ),
        "nce_loss": lambda to: (
            ms.nce_loss(
                to(p["weights"]), to(p["biases"]), to(p["labels"]), to(p["inputs"]), S, C,
                num_true=T, seed=7,
            ),
        ),
        "rank_sampled_softmax_loss": lambda to: (
            ms.rank_sampled_softmax_loss(
                to(p["weights"]), to(p["biases"]), to(p["labels"]), to(p["inputs"]), S, 4, C,
                num_true=T, seed=7,
            ),
        ),
        "sampled_softmax_with_cross_entropy": lambda to: (
            ms.sampled_softmax_with_cross_entropy(
                to(p["logits"]), to(p["labels"][:, :1]), S, seed=7
            ),
        ),
        "sampled_softmax_with_cross_entropy (customized)": lambda to: (
            ms.sampled_softmax_with_cross_entropy(
                to(p["logits"]), to(p["labels"][:, :1]), S + 1,
                use_customized_samples=True,
                customized_samples=to(p["custom_samples"]),
                customized_probabilities=to(p["custom_probs"]),
            ),
        ),
    }


def _compare(ref: tuple, got: tuple) -> str:
    if len(ref) != len(got):
        return f"FAIL: {len(got)} outputs, expected {len(ref)}"
    for i, (r, g) in enumerate(zip(ref, got)):
        if r.shape != g.shape:
            return f"FAIL: output {i} shape {g.shape}, expected {r.shape}"
        if r.dtype.kind in "iub":
            if not np.array_equal(r, g):
                return f"FAIL: output {i} differs (integers must be identical)"
        elif not np.allclose(g.astype("float64"), r.astype("float64"), rtol=2e-5, atol=1e-5):
            err = float(np.max(np.abs(g.astype("float64") - r.astype("float64"))))
            return f"FAIL: output {i} max abs error {err:.3g}"
    return "pass"


def _status(name: str, ref: Any, got: Any) -> str:
    if isinstance(got, str):
        return got
    if name == "numpy":
        finite = all(np.all(np.isfinite(o)) for o in got if o.dtype.kind == "f")
        return "pass" if finite else "FAIL: non-finite values"
    if isinstance(ref, str):
        return "n/a (numpy failed)"
    return _compare(ref, got)


def numpy_only_note(names: Sequence[str], installed: Sequence[str]) -> Optional[str]:
    """The warning that a check of NumPy alone compares NumPy with itself."""
    if list(names) != ["numpy"]:
        return None
    others = [n for n in installed if n != "numpy"]
    if others:
        return ("note: only the numpy backend ran (--backend numpy), so this check compares "
                f"NumPy with itself; leave out --backend to compare with {', '.join(others)}")
    return ("note: numpy is the only installed backend, so this check compares NumPy with "
            "itself; install another to compare frameworks: pip install 'multisampled[torch]' "
            "(or [jax], [tensorflow])")


def _print_matrix(matrix: dict, out: Optional[TextIO] = None) -> None:
    out = out or sys.stdout
    names = list(next(iter(matrix.values())).keys())
    w0 = max(len(k) for k in matrix) + 2
    widths = [max(len(n), 6) + 2 for n in names]
    out.write("api".ljust(w0) + "".join(n.ljust(w) for n, w in zip(names, widths)) + "\n")
    details = []
    for api, row in matrix.items():
        cells = []
        for n, w in zip(names, widths):
            status = row.get(n, "-")
            short = "pass" if status == "pass" else status.split(":")[0]
            if status != "pass":
                details.append(f"  {api} on {n}: {status}")
            cells.append(short.ljust(w))
        out.write(api.ljust(w0) + "".join(cells) + "\n")
    if details:
        out.write("\nfailures:\n" + "\n".join(details) + "\n")
