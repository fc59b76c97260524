"""One rank of the sharded-table tests (tests/test_sharded.py): ``python sharded_worker.py
RANK WORLD PORT OUT_DIR``. Joins a gloo group on localhost, runs every case of
:data:`sharded_cases.CASES` with this rank's shard of the table and saves the losses and the
gradients (inputs, this rank's weight and bias rows) to ``OUT_DIR/rank{RANK}.npz``."""

from __future__ import annotations

import datetime
import sys

import numpy as np
import torch
import torch.distributed as dist

import sharded_cases


def main(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        results = {}
        for case in sharded_cases.CASES:
            results.update(sharded_cases.run_rank(case, rank, world, dist.group.WORLD))
        for case in sharded_cases.MODULE_CASES:
            results.update(sharded_cases.run_module_rank(case, rank, world, dist.group.WORLD))
        np.savez(f"{out_dir}/rank{rank}.npz", **results)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
