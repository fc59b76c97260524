"""The whole training step with the built-in sampler INSIDE each framework's compiler, against
TensorFlow's native ``tf.nn.sampled_softmax_loss`` in ``tf.function`` (the anchor), in one run.

Rows (forward + backward, float32, every step a fresh key and so fresh negatives):

  jax            jax.jit(jax.value_and_grad(...)) with seed=jax.random.fold_in(key, step)
  tensorflow     tf.function + GradientTape with seed=tf.constant([1, step])
  torch-compiled torch.compile(fullgraph=True) of the functional API with seed=torch.tensor(...)
  torch          the functional API eagerly (for reference)

Prints one JSON line: ``ratios`` (each row's median over the anchor's) and the targets of the
traceable-sampling work (jax <= 1.0, tensorflow <= 1.1, torch-compiled <= 1.0), plus the whole
report of ``multisampled bench``. Frameworks run at their defaults; the 1-minute load average
is recorded. ``--workload cpu-small`` for a quick run.
"""

from __future__ import annotations

import argparse
import json

import multisampled as ms
from multisampled import _bench

TARGETS = {"jax": 1.0, "tensorflow": 1.1, "torch-compiled": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="cpu-medium", choices=sorted(_bench.WORKLOADS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    workload = _bench.WORKLOADS[args.workload]
    installed = [i.name for i in ms.backends() if i.available]
    backends = [b for b in ("torch", "jax", "tensorflow") if b in installed]
    report = _bench.run(workload, backends, args.repeats, args.warmup, anchor=True,
                        points=[workload], progress=lambda message: None)
    ratios = {r["name"]: r["ratio"] for r in report["rows"] if r.get("ratio") is not None}
    print(json.dumps({
        "ratios": ratios,
        "targets": TARGETS,
        "meets_targets": {k: ratios.get(k) is not None and ratios[k] <= v
                          for k, v in TARGETS.items()},
        "report": report,
    }))


if __name__ == "__main__":
    main()
