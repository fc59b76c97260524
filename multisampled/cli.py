"""Command line: ``multisampled backends`` and ``multisampled check``.

``check`` runs every public API with the same seed on every installed backend and prints a
pass/fail matrix against the NumPy result: sampled candidates must be bit-identical, values
must agree to float32 precision.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any, Callable

import numpy as np

from . import _registry, _rng


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


def _cases(p: dict) -> dict[str, Callable[[Callable, Any], Any]]:
    """API name -> f(to_backend, ms) returning a tuple of results."""
    import multisampled as ms

    B, C, S, T = p["B"], p["C"], p["S"], p["T"]

    def sv(to):
        # explicit sampled values so the loss checks do not depend on the sampler
        counts = np.full(S, 0.5, "float32")
        true_counts = np.full((B, T), 0.25, "float32")
        return (to(p["candidates"]), to(true_counts), to(counts))

    def shards(to, arr):
        # the "mod" layout: shard p holds ids p, p+3, p+6, ...
        return [to(np.ascontiguousarray(arr[p::3])) for p in range(3)]

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


def run_check(backend_names: list[str] | None = None) -> tuple[dict, bool]:
    """Run every API on each backend; returns ({api: {backend: status}}, all_passed)."""
    infos = [i for i in _registry.backends() if i.available]
    names = backend_names or [i.name for i in infos]
    if "numpy" not in names:
        names = ["numpy", *names]
    p = _problem()
    matrix: dict[str, dict[str, str]] = {}
    ok = True
    for api, fn in _cases(p).items():
        row: dict[str, str] = {}
        ref = None
        for name in names:
            b = _registry.get_backend(name)

            def to(a, b=b):
                return b.asarray(a, dtype=str(np.asarray(a).dtype))

            try:
                _rng.reset_streams()
                out = tuple(b.to_numpy(o) for o in fn(to))
            except Exception as exc:  # report, do not stop the matrix
                row[name] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                ok = False
                continue
            if name == "numpy":
                ref = out
                finite = all(np.all(np.isfinite(o)) for o in out if o.dtype.kind == "f")
                row[name] = "pass" if finite else "FAIL: non-finite values"
            elif ref is None:
                row[name] = "n/a (numpy failed)"
            else:
                row[name] = _compare(ref, out)
            ok &= row[name] == "pass"
        matrix[api] = row
    return matrix, ok


def _print_matrix(matrix: dict, out=sys.stdout) -> None:
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


def _cmd_backends(args) -> int:
    rows = []
    for info in _registry.backends():
        devices: list = []
        if info.available:
            b = _registry.get_backend(info.name)
            try:
                devices = b.devices() if b.devices else []
            except Exception as exc:
                devices = [f"error: {exc}"]
        rows.append(dict(name=info.name, version=info.version, available=info.available,
                         devices=devices, install=f"pip install 'multisampled[{info.extra}]'"
                         if info.extra else "pip install multisampled"))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    default = _registry.default_backend().name
    for r in rows:
        mark = "*" if r["name"] == default else " "
        if r["available"]:
            print(f"{mark} {r['name']:<12} {r['version']:<16} devices: {', '.join(r['devices'])}")
        else:
            print(f"{mark} {r['name']:<12} {'not installed':<16} {r['install']}")
    print(f"(* = default for host data; set with {_registry.ENV_VAR} or use_backend())")
    return 0


def _cmd_check(args) -> int:
    names = args.backend or None
    matrix, ok = run_check(names)
    if args.json:
        print(json.dumps({"passed": ok, "matrix": matrix}, indent=1))
    else:
        _print_matrix(matrix)
        print("\nall passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multisampled", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pb = sub.add_parser("backends", help="list the registered backends, versions and devices")
    pb.add_argument("--json", action="store_true")
    pb.set_defaults(func=_cmd_backends)
    pc = sub.add_parser("check", help="run every API on every installed backend vs NumPy")
    pc.add_argument("--backend", action="append", help="limit to these backends (repeatable)")
    pc.add_argument("--json", action="store_true")
    pc.set_defaults(func=_cmd_check)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, ImportError, TypeError) as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"multisampled: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
