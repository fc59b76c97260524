"""Workloads and timing for ``multisampled bench``.

Every step draws fresh negatives with the built-in default sampler (log-uniform, unique,
accidental hits removed) from a seeded stream, and computes the summed
``sampled_softmax_loss`` forward and, where the framework has autodiff, its gradients with
respect to the weights, biases and inputs. Frameworks run at their defaults: no thread,
precision or allocator setting is changed. The anchor is TensorFlow's own
``tf.nn.sampled_softmax_loss`` inside ``tf.function`` with ``tf.GradientTape``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

import multisampled as ms

ANCHOR = "tensorflow-native"
ANCHOR_FORWARD = "tensorflow-native-forward"
BACKENDS = ("numpy", "torch", "jax", "tensorflow")
TORCH_COMPILED = "torch-compiled"
FORWARD = "forward"
FORWARD_BACKWARD = "forward+backward"
SWEEP_AXES = ("S", "C")
SWEEP_FACTORS = (0.25, 0.5, 1.0, 2.0)

Step = Callable[[], None]


@dataclasses.dataclass(frozen=True)
class Workload:
    """One problem size: batch B, dimension D, classes C, sampled classes S."""

    name: str
    B: int
    D: int
    C: int
    S: int
    dtype: str = "float32"

    def describe(self) -> str:
        return f"B={self.B:,} D={self.D:,} C={self.C:,} S={self.S:,} {self.dtype}"

    def shape(self) -> dict[str, int]:
        return {"B": self.B, "D": self.D, "C": self.C, "S": self.S}

    def with_size(self, axis: str, value: int) -> "Workload":
        size: dict[str, Any] = {axis: value}
        return dataclasses.replace(self, **size)


WORKLOADS = {
    "cpu-small": Workload("cpu-small", B=64, D=32, C=5_000, S=128),
    "cpu-medium": Workload("cpu-medium", B=512, D=128, C=100_000, S=1_024),
}


@dataclasses.dataclass
class Row:
    """The timings of one backend (or the anchor) at one workload size."""

    name: str
    point: Workload
    what: str
    note: str
    times_ms: list[float]
    error: Optional[str] = None
    ratio: Optional[float] = None
    ratio_to: Optional[str] = None

    @property
    def median_ms(self) -> Optional[float]:
        return statistics.median(self.times_ms) if self.times_ms else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, **self.point.shape(), "what": self.what,
            "median_ms": self.median_ms, "times_ms": self.times_ms, "ratio": self.ratio,
            "ratio_to": self.ratio_to, "note": self.note, "error": self.error,
        }


@dataclasses.dataclass
class HostData:
    weights: np.ndarray
    biases: np.ndarray
    inputs: np.ndarray
    labels: np.ndarray


def host_data(point: Workload) -> HostData:
    rng = np.random.default_rng(0)
    return HostData(
        weights=rng.standard_normal((point.C, point.D), dtype=np.float32) * np.float32(0.05),
        biases=np.zeros(point.C, np.float32),
        inputs=rng.standard_normal((point.B, point.D), dtype=np.float32),
        labels=rng.integers(0, point.C, (point.B, 1)).astype(np.int64),
    )


def sweep_points(
    base: Workload, axis: Optional[str], values: Optional[Sequence[int]]
) -> list[Workload]:
    """The workload sizes to run: the base alone, or the base with ``axis`` swept."""
    if axis is None:
        return [base]
    if axis not in SWEEP_AXES:
        raise ValueError(f"--sweep {axis!r}: expected one of {', '.join(SWEEP_AXES)}")
    start = getattr(base, axis)
    chosen = list(values) if values else [max(1, int(start * f)) for f in SWEEP_FACTORS]
    points = [base.with_size(axis, v) for v in sorted(set(chosen))]
    for p in points:
        if p.S > p.C:
            raise ValueError(
                f"--sweep {axis} value {getattr(p, axis):,}: S={p.S:,} must not exceed "
                f"C={p.C:,} (the sampler draws unique classes)"
            )
    return points


# steps: each builder returns (step, what, note) with the arrays already on the framework


def numpy_step(data: HostData, point: Workload) -> tuple[Step, str, str]:
    stream = ms.Generator(1)

    def step() -> None:
        ms.sampled_softmax_loss(
            data.weights, data.biases, data.labels, data.inputs, point.S, point.C, seed=stream
        )

    return step, FORWARD, f"forward only: NumPy has no autodiff; ratio vs {ANCHOR} forward"


def torch_step(data: HostData, point: Workload) -> tuple[Step, str, str]:
    import torch

    w = torch.from_numpy(data.weights).requires_grad_()
    b = torch.from_numpy(data.biases).requires_grad_()
    x = torch.from_numpy(data.inputs).requires_grad_()
    y = torch.from_numpy(data.labels)
    stream = ms.Generator(1)

    def step() -> None:
        w.grad = b.grad = x.grad = None
        ms.sampled_softmax_loss(w, b, y, x, point.S, point.C, seed=stream).sum().backward()

    return step, FORWARD_BACKWARD, f"functional API, eager, {torch_threads(torch)}"


def torch_compiled_step(data: HostData, point: Workload) -> tuple[Step, str, str]:
    import torch

    w = torch.from_numpy(data.weights).requires_grad_()
    b = torch.from_numpy(data.biases).requires_grad_()
    x = torch.from_numpy(data.inputs).requires_grad_()
    y = torch.from_numpy(data.labels)

    @torch.compile(fullgraph=True)
    def loss(key: Any) -> Any:
        return ms.sampled_softmax_loss(w, b, y, x, point.S, point.C, seed=key).sum()

    counter = iter(range(2**31))

    def step() -> None:  # a fresh key each step: fresh negatives, no recompile
        w.grad = b.grad = x.grad = None
        loss(torch.tensor([1, next(counter)])).backward()

    note = f"functional API, torch.compile(fullgraph=True), keyed, {torch_threads(torch)}"
    return step, FORWARD_BACKWARD, note


def torch_threads(torch: Any) -> str:
    """Torch's intra-op thread count and where it comes from (the benchmark never sets it)."""
    n = torch.get_num_threads()
    env = os.environ.get("OMP_NUM_THREADS")
    source = f"OMP_NUM_THREADS={env}" if env else "torch default"
    return f"{n} thread{'' if n == 1 else 's'} ({source})"


def jax_step(data: HostData, point: Workload) -> tuple[Step, str, str]:
    import jax

    w, b, x = (jax.numpy.asarray(a) for a in (data.weights, data.biases, data.inputs))
    y = jax.numpy.asarray(data.labels.astype(np.int32))
    S, C = point.S, point.C

    def loss(w: Any, b: Any, x: Any, key: Any) -> Any:
        return ms.sampled_softmax_loss(w, b, y, x, S, C, seed=key).sum()

    jitted = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    base = jax.random.key(1)
    counter = iter(range(2**31))

    def step() -> None:  # a fresh key each step: fresh negatives
        jax.block_until_ready(jitted(w, b, x, jax.random.fold_in(base, next(counter))))

    return step, FORWARD_BACKWARD, "jax.jit(jax.value_and_grad(...)), sampler inside jit (keyed)"


def tensorflow_step(data: HostData, point: Workload) -> tuple[Step, str, str]:
    import tensorflow as tf

    W, b = tf.Variable(data.weights), tf.Variable(data.biases)
    x, y = tf.constant(data.inputs), tf.constant(data.labels)
    S, C = point.S, point.C

    @tf.function
    def gradients(key: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(ms.sampled_softmax_loss(W, b, y, x, S, C, seed=key))
        return tape.gradient(loss, [W, b, x])

    counter = iter(range(2**31))

    def step() -> None:  # a fresh key each step: fresh negatives
        gradients(tf.constant([1, next(counter)], tf.int64))

    return step, FORWARD_BACKWARD, "tf.function + GradientTape, sampler inside (keyed)"


def native_step(data: HostData, point: Workload, backward: bool = True) -> tuple[Step, str, str]:
    import tensorflow as tf

    W, b = tf.Variable(data.weights), tf.Variable(data.biases)
    x, y = tf.constant(data.inputs), tf.constant(data.labels)
    S, C = point.S, point.C

    def forward() -> Any:
        return tf.reduce_sum(tf.nn.sampled_softmax_loss(W, b, y, x, S, C, seed=1))

    def forward_backward() -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = forward()
        return tape.gradient(loss, [W, b, x])

    if backward:
        note = f"tf.nn.sampled_softmax_loss in tf.function + GradientTape, TF {tf.__version__}"
        return tf.function(forward_backward), FORWARD_BACKWARD, note
    return tf.function(forward), FORWARD, "tf.nn.sampled_softmax_loss in tf.function, forward only"


STEPS: dict[str, Callable[[HostData, Workload], tuple[Step, str, str]]] = {
    "numpy": numpy_step,
    "torch": torch_step,
    TORCH_COMPILED: torch_compiled_step,
    "jax": jax_step,
    "tensorflow": tensorflow_step,
    ANCHOR: native_step,
    ANCHOR_FORWARD: lambda data, point: native_step(data, point, backward=False),
}


# timing


def time_step(step: Step, repeats: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - t0))
    return times


def run_row(name: str, data: HostData, point: Workload, repeats: int, warmup: int) -> Row:
    """Build and time one row; an exception becomes the row's error, not the run's."""
    try:
        step, what, note = STEPS[name](data, point)
        times = time_step(step, repeats, warmup)
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0][:160]
        return Row(name, point, "", "", [], error=f"{type(exc).__name__}: {first_line}")
    return Row(name, point, what, note, times)


def load_average() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def row_names(backends: Sequence[str], anchor: bool) -> list[str]:
    """The rows to run, in table order: the backends, then the anchor rows they need."""
    names = [b for b in BACKENDS if b in backends]
    if "torch" in names:
        names.insert(names.index("torch") + 1, TORCH_COMPILED)
    if anchor:
        names.append(ANCHOR)
        if "numpy" in names:
            names.append(ANCHOR_FORWARD)
    return names


def add_ratios(rows: list[Row]) -> None:
    """Each row's median over its anchor's at the same size (forward rows: the forward anchor)."""
    anchors = {(r.name, r.point): r.median_ms for r in rows if r.name in (ANCHOR, ANCHOR_FORWARD)}
    for r in rows:
        to = ANCHOR_FORWARD if r.what == FORWARD else ANCHOR
        ref = anchors.get((to, r.point))
        if r.median_ms is not None and ref:
            r.ratio, r.ratio_to = r.median_ms / ref, to


def run(
    workload: Workload,
    backends: Sequence[str],
    repeats: int,
    warmup: int,
    anchor: bool,
    points: Sequence[Workload],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Time every row at every size; returns the JSON report."""
    before = load_average()
    names = row_names(backends, anchor)
    rows = []
    for point in points:
        data = host_data(point)
        for name in names:
            progress(f"{name} at {point.describe()}")
            rows.append(run_row(name, data, point, repeats, warmup))
    add_ratios(rows)
    return {
        "multisampled": ms.__version__,
        "workload": {"name": workload.name, **workload.shape(), "dtype": workload.dtype},
        "repeats": repeats,
        "warmup": warmup,
        "anchor": ANCHOR if anchor else None,
        "platform": {"machine": platform.machine(), "system": platform.system(),
                     "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": framework_versions(),
        "loadavg_1m_before": before,
        "loadavg_1m_after": load_average(),
        "rows": [r.to_json() for r in rows],
    }


def framework_versions() -> dict[str, Any]:
    """Versions of the frameworks that are already imported (the run imported them)."""
    out: dict[str, Any] = {"numpy": np.__version__}
    for module in ("torch", "jax", "tensorflow"):
        m = sys.modules.get(module)
        out[module] = getattr(m, "__version__", None) if m is not None else None
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_num_threads"] = torch.get_num_threads()
    return out


# reports


def _size(axis: Optional[str], row: dict[str, Any]) -> str:
    return f"{row[axis]:,}" if axis else ""


def table_lines(report: dict[str, Any], axis: Optional[str]) -> list[str]:
    """The table of median step times; its last line gives the ratios to the anchor."""
    wl = report["workload"]
    title = Workload(wl["name"], wl["B"], wl["D"], wl["C"], wl["S"], wl["dtype"]).describe()
    lines = [
        f"multisampled bench {wl['name']}: {title}, median of {report['repeats']} steps "
        f"after {report['warmup']} warm-up steps",
        "ratio = median / the anchor's median at the same size (below 1x: faster than the anchor)",
        "",
    ]
    header = ([axis] if axis else []) + ["row", "what", "median ms", "ratio", "note"]
    cells = [header]
    for row in report["rows"]:
        median = "error" if row["median_ms"] is None else f"{row['median_ms']:.2f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        note = row["error"] or row["note"]
        if row["name"] in (ANCHOR, ANCHOR_FORWARD):
            note = f"anchor: {note}"
        cells.append(([_size(axis, row)] if axis else []) + [row["name"], row["what"], median,
                                                             ratio, note])
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths)) + "  " + c[-1])
    lines += ["", f"load average (1 min): {report['loadavg_1m_before']} before, "
                  f"{report['loadavg_1m_after']} after", ratio_line(report)]
    return lines


def ratio_line(report: dict[str, Any]) -> str:
    """``ratios vs tensorflow-native: torch 0.85x, ...`` at the workload's own size."""
    wl = report["workload"]
    if report["anchor"] is None:
        return (f"ratios vs {ANCHOR}: none (TensorFlow is not installed: "
                "pip install 'multisampled[tensorflow]' or tensorflow-cpu)")
    at_base = [r for r in report["rows"]
               if all(r[k] == wl[k] for k in ("B", "D", "C", "S"))
               and r["name"] not in (ANCHOR, ANCHOR_FORWARD)]
    parts = []
    for r in at_base:
        value = "error" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        parts.append(f"{r['name']} {value}" + (" (forward)" if r["what"] == FORWARD else ""))
    anchor = next((r for r in report["rows"] if r["name"] == ANCHOR
                   and all(r[k] == wl[k] for k in ("B", "D", "C", "S"))), None)
    if anchor is None or anchor["median_ms"] is None:
        return f"ratios vs {ANCHOR}: none (the anchor failed: {anchor and anchor['error']})"
    return f"ratios vs {ANCHOR}: " + (", ".join(parts) if parts else "no backend rows")


def plot(report: dict[str, Any], path: str, axis: str) -> None:
    """Median step time against ``axis`` (S or C), one line per row, written as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = list(dict.fromkeys(r["name"] for r in report["rows"]))
    for name in names:
        rows = [r for r in report["rows"] if r["name"] == name and r["median_ms"] is not None]
        if rows:
            xs, ys = zip(*sorted((r[axis], r["median_ms"]) for r in rows))
            style = "--" if rows[0]["what"] == FORWARD else "-"
            ax.plot(xs, ys, style, marker="o", label=f"{name} ({rows[0]['what']})")
    wl = report["workload"]
    fixed = ", ".join(f"{k}={wl[k]:,}" for k in ("B", "D", "C", "S") if k != axis)
    sizes = sorted({r[axis] for r in report["rows"]})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [f"{v:,}" for v in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(axis)
    ax.set_ylabel("median step time (ms)")
    ax.set_title(f"multisampled bench {wl['name']}: {fixed}, {wl['dtype']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png")
