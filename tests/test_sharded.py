"""The class table sharded across ranks (``shard_group=``): torch.distributed (gloo on
localhost, 2 and 3 processes) and JAX's ``shard_map`` (4 CPU devices in a subprocess) give the
loss and the gradients of the single-device call over the whole table, for "div" and "mod",
uneven shards, ``num_true > 1`` and accidental hits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

import multisampled as ms  # noqa: E402

import sharded_cases  # noqa: E402

HERE = Path(__file__).parent
TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")]))
    env.pop("MULTISAMPLED_BACKEND", None)
    return env


def _spawn(world: int, out_dir: Path) -> list:
    """Run tests/sharded_worker.py on ``world`` ranks; their saved results, by rank."""
    port = _free_port()
    env = _env()
    procs = [subprocess.Popen([sys.executable, str(HERE / "sharded_worker.py"), str(r),
                               str(world), str(port), str(out_dir)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r in range(world)]
    logs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=TIMEOUT)
            logs.append(out.decode(errors="replace"))
    finally:
        for p in procs:
            p.kill()
    for r, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} failed:\n{log[-4000:]}"
    return [dict(np.load(out_dir / f"rank{r}.npz")) for r in range(world)]


@pytest.fixture(scope="module", params=[2, 3], ids=["world2", "world3"])
def ranks(request, tmp_path_factory):
    world = request.param
    return world, _spawn(world, tmp_path_factory.mktemp(f"world{world}"))


def _close(got, want, dtype):
    tol = 1e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", sharded_cases.CASES, ids=lambda c: c.name)
def test_torch_gloo_equals_one_device(ranks, case):
    world, results = ranks
    want = sharded_cases.run(case, sharded_cases.CASES.index(case))
    n = case.name
    assert np.isfinite(want[f"{n}/out"]).all()
    for rank, got in enumerate(results):
        ids = sharded_cases.owned_ids(case.num_classes, world, rank, case.strategy)
        _close(got[f"{n}/out"], want[f"{n}/out"], case.dtype)
        _close(got[f"{n}/gx"], want[f"{n}/gx"], case.dtype)
        _close(got[f"{n}/gw"], want[f"{n}/gw"][ids], case.dtype)
        _close(got[f"{n}/gb"], want[f"{n}/gb"][ids], case.dtype)


@pytest.mark.parametrize("case", sharded_cases.MODULE_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_torch_module_shards_equal_one_module(ranks, case, mode):
    world, results = ranks
    want = sharded_cases.run_module(case, sharded_cases.MODULE_CASES.index(case))
    n = f"{case.name}/{mode}"
    for rank, got in enumerate(results):
        ids = sharded_cases.owned_ids(case.num_classes, world, rank, case.strategy)
        assert bool(got[f"{n}/sparse"]) == (case.sparse and mode == "train")
        _close(got[f"{n}/out"], want[f"{n}/out"], "float64")
        _close(got[f"{n}/gx"], want[f"{n}/gx"], "float64")
        _close(got[f"{n}/gw"], want[f"{n}/gw"][ids], "float64")
        if case.bias:
            _close(got[f"{n}/gb"], want[f"{n}/gb"][ids], "float64")


@pytest.mark.parametrize("case", sharded_cases.MODULE_CASES, ids=lambda c: c.name)
def test_sharded_module_owns_its_layout_rows(ranks, case):
    """Each rank's weight has the rows of its shard in the case's layout (uneven shards)."""
    world, results = ranks
    for rank, got in enumerate(results):
        ids = sharded_cases.owned_ids(case.num_classes, world, rank, case.strategy)
        assert int(got[f"{case.name}/rows"]) == len(ids)


# ----------------------------------------------------------------------------------- errors


@pytest.fixture
def group1(tmp_path):
    """A one-rank gloo group in this process."""
    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0,
                            world_size=1)
    try:
        yield dist.group.WORLD
    finally:
        dist.destroy_process_group()


def _args(c=5, rows=5):
    w = torch.randn(rows, 3)
    return (w, torch.randn(rows), torch.tensor([[0], [4]]), torch.randn(2, 3), 2, c)


def test_one_rank_group_equals_the_plain_call(group1):
    args = _args()
    key = torch.tensor([3, 4])
    got = ms.sampled_softmax_loss(*args, seed=key, shard_group=group1)
    want = ms.sampled_softmax_loss(*args, seed=key)
    torch.testing.assert_close(got, want)


def test_shard_group_needs_the_same_candidates_everywhere(group1):
    with pytest.raises(ValueError, match="seed=None with shard_group"):
        ms.sampled_softmax_loss(*_args(), shard_group=group1)


def test_shard_group_takes_one_array_per_rank(group1):
    w, b, *rest = _args()
    with pytest.raises(TypeError, match="weights must be this rank's shard .* list of 2 shards"):
        ms.sampled_softmax_loss([w[:3], w[3:]], b, *rest, seed=1, shard_group=group1)


def test_shard_group_checks_the_shard_size(group1):
    with pytest.raises(ValueError, match="rank 0's shard of the 6-row table has 6 rows"):
        ms.sampled_softmax_loss(*_args(c=6, rows=5), seed=1, shard_group=group1)


def test_shard_group_checks_the_strategy(group1):
    with pytest.raises(ValueError, match="partition_strategy must be one of"):
        ms.sampled_softmax_loss(*_args(), seed=1, shard_group=group1, partition_strategy="x")


def test_shard_group_must_be_a_process_group(group1):
    with pytest.raises(TypeError, match="shard_group must be a torch.distributed process group"):
        ms.sampled_softmax_loss(*_args(), seed=1, shard_group="s")


def test_shard_group_without_torch_distributed():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    with pytest.raises(RuntimeError, match="torch.distributed is not initialised"):
        ms.sampled_softmax_loss(*_args(), seed=1, shard_group=object())


def test_numpy_backend_has_no_collectives():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="the numpy backend has no collectives"):
        ms.sampled_softmax_loss(rng.normal(size=(5, 3)), np.zeros(5), np.array([[1]]),
                                rng.normal(size=(1, 3)), 2, 5, seed=1, shard_group="s")


def test_module_refuses_a_generator_and_a_tied_table(group1):
    from multisampled.torch import SampledSoftmaxLoss

    with pytest.raises(ValueError, match="torch.Generator draws different negatives"):
        SampledSoftmaxLoss(5, 3, 2, seed=torch.Generator(), shard_group=group1)
    with pytest.raises(ValueError, match="cannot be combined with shard_group"):
        SampledSoftmaxLoss(5, 3, 2, weight=torch.nn.Parameter(torch.randn(5, 3)),
                           shard_group=group1)


# ----------------------------------------------------------------------------------- JAX

JAX_SCRIPT = r"""
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import multisampled as ms
from multisampled import v1
import sharded_cases as sc

mesh = jax.make_mesh((4,), ("s",))
world = 4


def padded(table, case):
    # each device's rows of the layout, padded with zero rows to the largest shard
    parts = [table[sc.owned_ids(case.num_classes, world, r, case.strategy)] for r in range(world)]
    n = max(len(p) for p in parts)
    pad = lambda p: np.concatenate([p, np.zeros((n - len(p),) + p.shape[1:], p.dtype)])
    return np.concatenate([pad(p) for p in parts]), parts


def call(case, w, b, x, d, group):
    kw = dict(partition_strategy=case.strategy, num_true=case.num_true,
              remove_accidental_hits=case.remove)
    if group is not None:
        kw["shard_group"] = group
    if case.sampled == "hits":
        cand, tq, sq = d["sampled"]
        kw["sampled_values"] = (jnp.asarray(cand), jnp.asarray(tq, "float32"),
                                jnp.asarray(sq, "float32"))
    else:
        kw["seed"] = jax.random.wrap_key_data(jnp.asarray(d["key"], "uint32"))
    args = (w, b, jnp.asarray(d["labels"]), x, sc.S, case.num_classes)
    if case.fn == "softmax":
        return ms.sampled_softmax_loss(*args, **kw)
    if case.fn == "v1_softmax":
        return v1.sampled_softmax_loss(*args, **kw)
    if case.fn == "nce":
        return ms.nce_loss(*args, **kw)
    return ms.compute_sampled_logits(*args, **kw)[0]


def objective(out, coef):
    if out.ndim == 2:
        coef = coef[:, None] * jnp.linspace(0.5, 1.5, out.shape[1])
    return jnp.sum(out * coef)


worst = 0.0
for i, case in enumerate(sc.CASES):
    d = sc.data(case, i)
    w, b, x = (np.asarray(d[k], "float32") for k in ("w", "b", "x"))
    coef = jnp.asarray(d["coef"], "float32")
    single = jax.jit(lambda w, b, x: call(case, w, b, x, d, None))
    want = single(w, b, x)
    gwant = jax.jit(jax.grad(lambda w, b, x: objective(single(w, b, x), coef), (0, 1, 2)))(w, b, x)
    wp, _ = padded(w, case)
    bp, _ = padded(b, case)
    put = lambda a, spec: jax.device_put(a, NamedSharding(mesh, spec))
    wp, bp, xs = put(wp, P("s")), put(bp, P("s")), put(x, P())
    body = lambda wl, bl, x: call(case, wl, bl, x, d, "s")
    sharded = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(P("s"), P("s"), P()),
                                    out_specs=P()))
    got = sharded(wp, bp, xs)
    ggot = jax.jit(jax.grad(lambda w, b, x: objective(sharded(w, b, x), coef), (0, 1, 2)))(wp, bp, xs)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=case.name)
    np.testing.assert_allclose(ggot[2], gwant[2], rtol=2e-5, atol=2e-5, err_msg=case.name)
    for which in (0, 1):
        rows = np.asarray(ggot[which]).reshape((world, -1) + np.shape(gwant[which])[1:])
        for r in range(world):
            ids = sc.owned_ids(case.num_classes, world, r, case.strategy)
            np.testing.assert_allclose(rows[r][: len(ids)], np.asarray(gwant[which])[ids],
                                       rtol=2e-5, atol=2e-5, err_msg=case.name)
            assert not np.any(rows[r][len(ids):]), "padding rows got a gradient"
    print("ok", case.name)
print("all ok")
"""


def test_jax_shard_map_equals_one_device():
    pytest.importorskip("jax")
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=_env(), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0 and "all ok" in result.stdout, (
        result.stdout[-3000:] + result.stderr[-3000:])


def test_sharded_example_trains_under_torchrun():
    """examples/sharded_torch.py, as the README runs it (2 processes, gloo on localhost)."""
    import json

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(HERE.parent / "examples" / "sharded_torch.py"), "--steps", "40"]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["world"] == 2 and out["rows_here"] == 2500
    # log(5000) = 8.5 for a random table; the toy task is learnable
    assert out["eval_loss_before"] > 8.0
    assert out["eval_loss_after"] < out["eval_loss_before"] - 3.0
