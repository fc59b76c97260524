"""The ``multisampled`` command: ``backends``, ``check`` and ``bench``.

``check`` runs every public API with the same seed on every installed backend and prints a
pass/fail matrix against the NumPy result: sampled candidates must be bit-identical, values
must agree to float32 precision. ``bench`` times the sampled softmax loss on every installed
backend against TensorFlow's own ``tf.nn.sampled_softmax_loss``.

Progress goes to stderr (a tqdm bar on a terminal when tqdm is installed, plain lines
otherwise), so that ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import traceback
from typing import Any, Callable, Optional, Sequence, TextIO

import numpy as np

import multisampled as ms

from . import _bench

ENV_VAR = "MULTISAMPLED_BACKEND"

DESCRIPTION = """\
TensorFlow's and Paddle's sampled softmax, NCE and candidate samplers on NumPy, PyTorch,
JAX, TensorFlow and plugin backends.
"""

EPILOG = """\
examples:
  multisampled backends
  multisampled check --backend torch
  multisampled check --json > check.json
  multisampled bench --workload cpu-small --repeats 5
  multisampled bench --json bench.json --plot bench.png --sweep C
"""


# registry access: the only places the CLI reaches behind the public API


def _get_backend(name: str) -> Any:
    """The registered backend object ``name``; an error naming ``--backend`` if unknown."""
    from . import _registry

    return _registry.get_backend(name, source="--backend")


def _default_backend_name() -> str:
    """The backend host data goes to (validates ``$MULTISAMPLED_BACKEND``)."""
    from . import _registry

    return str(_registry.default_backend().name)


def _installed_backend_names() -> list[str]:
    return [info.name for info in ms.backends() if info.available]


# progress on stderr


def _stderr_is_tty() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _tqdm_bar(desc: str, total: int) -> Any:
    """A tqdm bar on stderr, or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="step",
                dynamic_ncols=True)


class Progress:
    """Progress of ``total`` steps on stderr.

    On a terminal with tqdm installed: a bar. Otherwise one plain line per phase (a phase is
    a group of steps, such as all the APIs on one backend), which reads well in logs too.
    """

    def __init__(self, desc: str, total: int, enabled: bool = True) -> None:
        self.desc, self.total, self.count = desc, total, 0
        self._bar = _tqdm_bar(desc, total) if enabled and _stderr_is_tty() else None
        self._plain = enabled and self._bar is None
        self._phase: Optional[str] = None

    def advance(self, label: str, phase: Optional[str] = None) -> None:
        """Report that the step ``label`` starts."""
        self.count += 1
        if self._bar is not None:
            if self.count > 1:
                self._bar.update(1)
            self._bar.set_postfix_str(label)
        elif self._plain and (phase is None or phase != self._phase):
            self._phase = phase
            print(f"{self.desc}: [{self.count}/{self.total}] {label}", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self.total - self._bar.n)
            self._bar.close()


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


def _run_backend(name: str, cases: dict, progress: Progress) -> dict[str, Any]:
    """Every case on backend ``name``: {api: tuple of NumPy arrays, or the error text}."""
    b = _get_backend(name)

    def to(a: Any, b: Any = b) -> Any:
        return b.asarray(a, dtype=str(np.asarray(a).dtype))

    results: dict[str, Any] = {}
    for api, fn in cases.items():
        progress.advance(f"{name}: {api}", phase=name)
        try:
            ms.reset_streams()
            results[api] = tuple(b.to_numpy(o) for o in fn(to))
        except Exception as exc:  # report, do not stop the matrix
            results[api] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    return results


def _status(name: str, ref: Any, got: Any) -> str:
    if isinstance(got, str):
        return got
    if name == "numpy":
        finite = all(np.all(np.isfinite(o)) for o in got if o.dtype.kind == "f")
        return "pass" if finite else "FAIL: non-finite values"
    if isinstance(ref, str):
        return "n/a (numpy failed)"
    return _compare(ref, got)


def run_check(
    backend_names: Optional[list[str]] = None, progress: Optional[Progress] = None
) -> tuple[dict, bool]:
    """Run every API on each backend; returns ({api: {backend: status}}, all_passed)."""
    names = list(backend_names or _installed_backend_names())
    if "numpy" not in names:
        names = ["numpy", *names]
    names = list(dict.fromkeys(names))
    for name in names:
        _get_backend(name)  # an unknown name fails before anything runs
    cases = _cases(_problem())
    progress = progress or Progress("multisampled check", 0, enabled=False)
    results = {name: _run_backend(name, cases, progress) for name in names}
    matrix = {
        api: {name: _status(name, results["numpy"][api], results[name][api]) for name in names}
        for api in cases
    }
    ok = all(status == "pass" for row in matrix.values() for status in row.values())
    return matrix, ok


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


def _devices(name: str) -> list[str]:
    b = _get_backend(name)
    try:
        return list(b.devices()) if b.devices else []
    except Exception as exc:
        return [f"error: {exc}"]


def _cmd_backends(args: argparse.Namespace) -> int:
    infos = ms.backends()
    progress = Progress("multisampled backends", len(infos), enabled=not args.quiet)
    rows: list[dict[str, Any]] = []
    for info in infos:
        progress.advance(f"{info.name}: devices")
        rows.append(dict(
            name=info.name, version=info.version, available=info.available,
            devices=_devices(info.name) if info.available else [],
            install=f"pip install 'multisampled[{info.extra}]'" if info.extra
            else "pip install multisampled",
        ))
    progress.close()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    default = _default_backend_name()
    for r in rows:
        mark = "*" if r["name"] == default else " "
        if r["available"]:
            print(f"{mark} {r['name']:<12} {r['version']:<16} devices: {', '.join(r['devices'])}")
        else:
            print(f"{mark} {r['name']:<12} {'not installed':<16} {r['install']}")
    print(f"(* = default for host data; set with {ENV_VAR} or use_backend())")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    installed = _installed_backend_names()
    names = list(dict.fromkeys(["numpy", *(args.backend or installed)]))
    progress = Progress("multisampled check", len(names) * len(_cases(_problem())),
                        enabled=not args.quiet)
    matrix, ok = run_check(names, progress)
    progress.close()
    note = numpy_only_note(names, installed)
    if args.json:
        report: dict[str, Any] = {"passed": ok, "matrix": matrix}
        if note:
            report["note"] = note
            print(note, file=sys.stderr)
        print(json.dumps(report, indent=1))
    else:
        _print_matrix(matrix)
        if note:
            print("\n" + note)
        print("\nall passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


# bench


def _bench_backends(requested: Optional[list[str]]) -> list[str]:
    """The backends to time: those asked for (validated), else every installed one bench knows."""
    if not requested:
        return [n for n in _installed_backend_names() if n in _bench.BACKENDS]
    for name in requested:
        _get_backend(name)
        if name not in _bench.BACKENDS:
            raise ValueError(
                f"--backend {name!r}: bench has steps for {', '.join(_bench.BACKENDS)} only"
            )
    return list(dict.fromkeys(requested))


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(
            "--plot needs matplotlib, which is not installed; install it with: "
            "pip install 'multisampled[plot]'"
        ) from None


def _write_json(report: dict, path: str) -> None:
    text = json.dumps(report, indent=1)
    if path == "-":
        print(text)
        return
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"wrote {path}", file=sys.stderr)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.plot:
        _require_matplotlib()
    workload = _bench.WORKLOADS[args.workload]
    backends = _bench_backends(args.backend)
    anchor = importlib.util.find_spec("tensorflow") is not None
    axis = args.sweep or ("S" if args.plot or args.sweep_values else None)
    points = _bench.sweep_points(workload, axis, args.sweep_values)
    names = _bench.row_names(backends, anchor)
    progress = Progress("multisampled bench", len(points) * len(names), enabled=not args.quiet)
    report = _bench.run(workload, backends, args.repeats, args.warmup, anchor, points,
                        progress.advance)
    progress.close()
    report["sweep"] = None if axis is None else {"axis": axis, "values": [
        getattr(p, axis) for p in points]}
    lines = _bench.table_lines(report, axis)
    report["summary"] = lines[-1]
    if args.json:
        _write_json(report, args.json)
    if args.plot:
        _bench.plot(report, args.plot, axis or "S")
        print(f"wrote {args.plot}", file=sys.stderr)
    table_out = sys.stderr if args.json == "-" else sys.stdout
    print("\n".join(lines), file=table_out)
    return 1 if any(r["error"] for r in report["rows"]) else 0


# arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 256,512,1024, got {text!r}"
        )
    return values


def _png_path(text: str) -> str:
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(f"expected a file name ending in .png, got {text!r}")
    return text


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress output on stderr")
    common.add_argument("--debug", action="store_true",
                        help="print the full traceback of an error")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multisampled", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"multisampled {ms.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options()]

    pb = sub.add_parser("backends", parents=common,
                        help="list the registered backends, their versions and devices",
                        description="List the registered backends, their framework versions "
                        "and devices; * marks the default for host data.")
    pb.add_argument("--json", action="store_true", help="print JSON on stdout")
    pb.set_defaults(func=_cmd_backends)

    pc = sub.add_parser("check", parents=common,
                        help="run every API on every installed backend and compare with NumPy",
                        description="Run every public API with the same seed on every installed "
                        "backend and compare with NumPy: sampled candidates must be "
                        "bit-identical, values must agree to float32 precision.")
    pc.add_argument("--backend", action="append", metavar="NAME",
                    help="check only this backend besides numpy (repeatable)")
    pc.add_argument("--json", action="store_true", help="print JSON on stdout")
    pc.set_defaults(func=_cmd_check)

    pn = sub.add_parser(
        "bench", parents=common, help="time the sampled softmax loss against TensorFlow's own",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_BENCH_DESCRIPTION,
    )
    pn.add_argument("--workload", choices=sorted(_bench.WORKLOADS), default="cpu-medium",
                    help="problem size (default: cpu-medium)")
    pn.add_argument("--backend", action="append", metavar="NAME",
                    help="time only this backend (repeatable; default: every installed one)")
    pn.add_argument("--repeats", type=_positive_int, default=20, metavar="N",
                    help="timed steps per row (default: 20)")
    pn.add_argument("--warmup", type=_non_negative_int, default=3, metavar="N",
                    help="untimed steps before them (default: 3)")
    pn.add_argument("--json", metavar="PATH",
                    help="write the report as JSON to PATH (- for stdout)")
    pn.add_argument("--plot", type=_png_path, metavar="PATH.png",
                    help="plot step time against S (or --sweep C) to a PNG; "
                    "needs pip install 'multisampled[plot]'")
    pn.add_argument("--sweep", choices=_bench.SWEEP_AXES,
                    help="run the workload at several S (or C) values "
                    "(default with --plot or --sweep-values: S)")
    pn.add_argument("--sweep-values", type=_int_list, metavar="N,N,...",
                    help="the swept values (default: 1/4, 1/2, 1 and 2 times the workload's)")
    pn.set_defaults(func=_cmd_bench)
    return parser


_BENCH_DESCRIPTION = f"""\
Time one training step of sampled_softmax_loss (float32 forward and backward, the built-in
log-uniform sampler drawing fresh negatives inside every step) on each installed backend,
and TensorFlow's own tf.nn.sampled_softmax_loss in tf.function with GradientTape as the
anchor. NumPy has no autodiff: its row is the forward alone, compared with the anchor's
forward. Frameworks run at their defaults (thread counts included).

workloads:
{chr(10).join(f"  {name:<11} {wl.describe()}" for name, wl in _bench.WORKLOADS.items())}

The table gives median milliseconds and the ratio to the anchor; its last line lists the
ratios. The JSON report adds every step's time, versions and the 1-minute load average.
"""


# entry point


def _detach_stdout() -> None:
    """Point stdout and stderr at devnull, so the interpreter's final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


def _dispatch(args: argparse.Namespace) -> int:
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ValueError, ImportError, TypeError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"multisampled: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        finally:
            sys.stdout.flush()  # --help and --version have printed
        code = _dispatch(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader went away (`multisampled check --json | head -1`): stop quietly
        _detach_stdout()
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
