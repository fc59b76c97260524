"""The cases of the sharded-table tests, shared by the ranks (tests/sharded_worker.py) and the
single-process reference (tests/test_sharded.py).

Each case builds one full ``[C, D]`` table and batch from its own NumPy seed. A rank holds the
rows of the classes it owns, listed here from the layouts' definition (TF's
``PartitionedVariable``), not from the library: "div" gives rank ``p`` the ``p``-th contiguous
range, the first ``C mod P`` ranges one longer; "mod" gives it the classes ``p, p+P, ...``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

import multisampled as ms
from multisampled import v1
from multisampled.torch import SampledSoftmaxLoss

D, B, S = 6, 5, 7


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    fn: str  # "softmax", "v1_softmax", "nce", "logits"
    num_classes: int
    num_true: int
    strategy: str
    sampled: str  # "key": the default sampler with a key; "hits": given candidates with hits
    remove: bool = True
    dtype: str = "float64"


CASES = [
    Case("softmax_div_t1_key", "softmax", 11, 1, "div", "key"),
    Case("softmax_mod_t2_key", "softmax", 11, 2, "mod", "key"),
    Case("softmax_div_t2_hits", "softmax", 13, 2, "div", "hits"),
    Case("softmax_mod_t1_hits", "softmax", 13, 1, "mod", "hits"),
    Case("softmax_mod_t2_hits_f32", "softmax", 10, 2, "mod", "hits", dtype="float32"),
    Case("softmax_div_no_removal", "softmax", 12, 2, "div", "hits", remove=False),
    Case("v1_softmax_mod_t2_hits", "v1_softmax", 11, 2, "mod", "hits"),
    Case("nce_div_t2_hits", "nce", 11, 2, "div", "hits"),
    Case("nce_mod_t1_key", "nce", 13, 1, "mod", "key"),
    Case("logits_div_t2_hits", "logits", 13, 2, "div", "hits"),
    Case("logits_mod_t1_key", "logits", 11, 1, "mod", "key"),
]


@dataclasses.dataclass(frozen=True)
class ModuleCase:
    name: str
    num_classes: int
    num_true: int
    strategy: str
    sparse: bool
    bias: bool = True


MODULE_CASES = [
    ModuleCase("module_div_dense", 11, 2, "div", False),
    ModuleCase("module_mod_sparse", 13, 1, "mod", True),
    ModuleCase("module_div_sparse_nobias", 10, 2, "div", True, bias=False),
]


def owned_ids(num_classes: int, world: int, rank: int, strategy: str) -> np.ndarray:
    """The classes of rank ``rank``'s shard, in the order of its rows."""
    if strategy == "mod":
        return np.arange(rank, num_classes, world)
    q, r = divmod(num_classes, world)
    sizes = [q + 1 if p < r else q for p in range(world)]
    start = sum(sizes[:rank])
    return np.arange(start, start + sizes[rank])


def data(case, index: int) -> dict:
    rng = np.random.default_rng(1000 + index)
    c, t = case.num_classes, case.num_true
    out = {
        "w": rng.normal(size=(c, D)),
        "b": rng.normal(size=(c,)),
        "x": rng.normal(size=(B, D)),
        "labels": np.stack([rng.choice(c, size=t, replace=False) for _ in range(B)]),
        "coef": rng.uniform(0.5, 1.5, size=(B,)),
        "key": np.array(rng.integers(0, 2**32, size=2), dtype=np.int64),
    }
    if getattr(case, "sampled", None) == "hits":
        # candidates holding labels (accidental hits), one of them twice
        labels = out["labels"]
        others = [k for k in range(c) if k not in labels[:2].ravel()][: S - 4]
        cand = np.array([labels[0, 0], labels[1, -1], *others, labels[0, 0], labels[2, 0]])[:S]
        out["sampled"] = (cand, rng.uniform(0.1, 0.9, size=(B, t)), rng.uniform(0.1, 0.9, size=(S,)))
    return out


def _tensor(a, dtype, grad=False):
    t = torch.tensor(a, dtype=getattr(torch, dtype))
    return t.requires_grad_(grad)


def _call(case, w, b, labels, x, d, group):
    kwargs = {"partition_strategy": case.strategy}
    if group is not None:
        kwargs["shard_group"] = group
    if case.sampled == "hits":
        cand, tq, sq = d["sampled"]
        kwargs["sampled_values"] = (torch.tensor(cand), _tensor(tq, case.dtype),
                                    _tensor(sq, case.dtype))
    else:
        kwargs["seed"] = torch.tensor(d["key"])
    args = (w, b, labels, x, S, case.num_classes)
    if case.fn == "softmax":
        return ms.sampled_softmax_loss(*args, num_true=case.num_true,
                                       remove_accidental_hits=case.remove, **kwargs)
    if case.fn == "v1_softmax":
        return v1.sampled_softmax_loss(*args, num_true=case.num_true,
                                       remove_accidental_hits=case.remove, **kwargs)
    if case.fn == "nce":
        return ms.nce_loss(*args, num_true=case.num_true, remove_accidental_hits=case.remove,
                           **kwargs)
    logits, _ = ms.compute_sampled_logits(*args, num_true=case.num_true,
                                          remove_accidental_hits=case.remove, **kwargs)
    return logits


def _results(name, out, coef, x, w, b) -> dict:
    weights = torch.tensor(coef, dtype=out.dtype)
    if out.ndim == 2:
        weights = weights[:, None] * torch.linspace(0.5, 1.5, out.shape[1], dtype=out.dtype)
    (out * weights).sum().backward()
    return {f"{name}/out": out.detach().numpy(), f"{name}/gx": x.grad.numpy(),
            f"{name}/gw": w.grad.numpy(), f"{name}/gb": b.grad.numpy()}


def run(case, index: int, rank=None, world=None, group=None) -> dict:
    """The case's outputs and gradients on one rank (``group`` given) or on one device."""
    d = data(case, index)
    w, b = d["w"], d["b"]
    if group is not None:
        ids = owned_ids(case.num_classes, world, rank, case.strategy)
        w, b = w[ids], b[ids]
    w, b = _tensor(w, case.dtype, True), _tensor(b, case.dtype, True)
    x = _tensor(d["x"], case.dtype, True)
    out = _call(case, w, b, torch.tensor(d["labels"]), x, d, group)
    return _results(case.name, out, d["coef"], x, w, b)


def run_rank(case, rank, world, group) -> dict:
    return run(case, CASES.index(case), rank, world, group)


def run_module(case, index: int, rank=None, world=None, group=None) -> dict:
    """Training-mode then eval-mode losses and gradients of a SampledSoftmaxLoss whose table is
    the case's, sharded over ``group`` or whole."""
    d = data(case, 100 + index)
    kwargs = {} if group is None else {"shard_group": group, "partition_strategy": case.strategy}
    module = SampledSoftmaxLoss(case.num_classes, D, S, num_true=case.num_true, seed=17,
                                sparse=case.sparse, bias=case.bias, dtype=torch.float64,
                                **kwargs)
    ids = slice(None) if group is None else owned_ids(case.num_classes, world, rank,
                                                      case.strategy)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(d["w"][ids]))
        if case.bias:
            module.bias.copy_(torch.tensor(d["b"][ids]))
    out = {f"{case.name}/rows": np.array(module.weight.shape[0])}
    for mode in ("train", "eval"):
        module.train(mode == "train")
        module.zero_grad(set_to_none=True)
        x = _tensor(d["x"], "float64", True)
        loss = module(x, torch.tensor(d["labels"]))
        (loss * torch.tensor(d["coef"])).sum().backward()
        name = f"{case.name}/{mode}"
        gw = module.weight.grad
        out.update({f"{name}/out": loss.detach().numpy(), f"{name}/gx": x.grad.numpy(),
                    f"{name}/gw": (gw.to_dense() if gw.is_sparse else gw).numpy(),
                    f"{name}/sparse": np.array(gw.is_sparse)})
        if case.bias:
            gb = module.bias.grad
            out[f"{name}/gb"] = (gb.to_dense() if gb.is_sparse else gb).numpy()
    return out


def run_module_rank(case, rank, world, group) -> dict:
    return run_module(case, MODULE_CASES.index(case), rank, world, group)
