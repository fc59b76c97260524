"""NumPy forward vs TensorFlow's eager ``tf.nn.sampled_softmax_loss`` forward, same run.

Shape (default): B=512, D=128, C=100,000, S=1,024, float32, default log-uniform unique sampler,
accidental hits removed. Both sides sample inside the timed call. Frameworks at their defaults
(no thread or precision settings are changed). Prints one JSON line; ``meets_target`` is
``numpy_fwd_ms <= tf_eager_fwd_ms``. The 1-minute load average is recorded before and after:
timings on a shared machine are noisy, so compare rows of one run.

Usage: python benchmarks/bench_numpy.py [B D C S] [--repeat N]
Needs ``tensorflow-cpu`` for the anchor (otherwise the anchor fields are null).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

import multisampled


def _load():
    # other work on the machine skews every row: record it (compare rows of one run only)
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def median_ms(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", nargs="*", type=int, default=[512, 128, 100_000, 1024])
    ap.add_argument("--repeat", type=int, default=21)
    args = ap.parse_args()
    B, D, C, S = args.shape
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((C, D), dtype=np.float32) * 0.05)
    b = np.zeros(C, np.float32)
    x = rng.standard_normal((B, D), dtype=np.float32)
    y = rng.integers(0, C, (B, 1)).astype(np.int64)

    res: dict = {
        "benchmark": "sampled_softmax_loss forward",
        "B": B, "D": D, "C": C, "S": S, "dtype": "float32",
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "numpy": np.__version__, "multisampled": multisampled.__version__,
        "loadavg_1m_before": _load(),
    }
    res["numpy_fwd_ms"] = median_ms(
        lambda: multisampled.sampled_softmax_loss(W, b, y, x, S, C, seed=1), args.repeat
    )
    try:
        import tensorflow as tf
    except ImportError:
        res.update(tf=None, tf_eager_fwd_ms=None, meets_target=None)
    else:
        tW, tb = tf.Variable(W), tf.Variable(b)
        tx, ty = tf.constant(x), tf.constant(y)
        res["tf"] = tf.__version__
        res["tf_eager_fwd_ms"] = median_ms(
            lambda: tf.nn.sampled_softmax_loss(tW, tb, ty, tx, S, C, seed=1).numpy(), args.repeat
        )
        res["meets_target"] = res["numpy_fwd_ms"] <= res["tf_eager_fwd_ms"]
    res["loadavg_1m_after"] = _load()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
