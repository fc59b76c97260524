"""Arguments and output of ``multisampled bench`` (the workloads and the timing are in
``_bench``): the argument types, the options and description, and the report written as a
table, JSON and a plot."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from . import _bench

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``multisampled bench`` (besides the common ones)."""
    parser.add_argument("--workload", choices=sorted(_bench.WORKLOADS), default="cpu-medium",
                        help="problem size (default: cpu-medium)")
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help="time only this backend (repeatable; default: every installed one)")
    parser.add_argument("--repeats", type=_positive_int, default=20, metavar="N",
                        help="timed steps per row (default: 20)")
    parser.add_argument("--warmup", type=_non_negative_int, default=3, metavar="N",
                        help="untimed steps before them (default: 3)")
    parser.add_argument("--json", metavar="PATH",
                        help="write the report as JSON to PATH (- for stdout)")
    parser.add_argument("--plot", type=_png_path, metavar="PATH.png",
                        help="plot step time against S (or --sweep C) to a PNG; "
                        "needs pip install 'multisampled[plot]'")
    parser.add_argument("--sweep", choices=_bench.SWEEP_AXES,
                        help="run the workload at several S (or C) values "
                        "(default with --plot or --sweep-values: S)")
    parser.add_argument("--sweep-values", type=_int_list, metavar="N,N,...",
                        help="the swept values (default: 1/4, 1/2, 1 and 2 times the workload's)")


# output


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


def write_report(
    report: dict, args: argparse.Namespace, axis: Optional[str], points: Sequence[_bench.Workload]
) -> int:
    """Write the finished ``report``: the table (stdout, or stderr when the JSON goes to
    stdout), the JSON and the plot asked for; the exit status (1 if a row failed)."""
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
