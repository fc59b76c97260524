"""``multisampled.torch.SampledSoftmaxLoss`` as a PyTorch module: autocast, copies and
processes, double backward and ``torch.func``, ``torch.compile(dynamic=True)``, reductions,
ignored positions, sequence shapes and tied weights; and the functional API's ``biases=None``.

References: the functional API with the same negatives (on the portable kernel where a
derivative is compared), and explicit float32 computations for the autocast checks.
"""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import multisampled as ms  # noqa: E402
from multisampled import plugin  # noqa: E402
from multisampled.backends import torch as torch_backend  # noqa: E402
from multisampled.torch import SampledSoftmaxLoss  # noqa: E402

C, D, S = 300, 8, 24


def make(seed=5, dtype=torch.float32, **kw):
    m = SampledSoftmaxLoss(C, D, S, seed=seed, dtype=dtype, **kw)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        m.weight.copy_(torch.randn(C, D, generator=g, dtype=torch.float64).to(dtype))
        if m.bias is not None:
            m.bias.copy_(torch.randn(C, generator=g, dtype=torch.float64).to(dtype))
    return m


def batch(B=16, T=1, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, D, generator=g, dtype=dtype),
            torch.randint(0, C, (B, T), generator=g))


@pytest.fixture(params=["fused", "portable"])
def path(request, monkeypatch):
    """The CPU loss node (``fused``) or the core's portable kernel (the CUDA path)."""
    if request.param == "portable":
        monkeypatch.setattr(torch_backend.Torch, "sampled_softmax", plugin.Backend.sampled_softmax)
    return request.param


# ------------------------------------------------------------------------------ autocast


@pytest.mark.parametrize("num_true, sparse", [(1, False), (2, True)])
def test_cpu_autocast_bfloat16_forward_backward(path, num_true, sparse):
    m = make(num_true=num_true, sparse=sparse)
    proj = torch.nn.Linear(D, D)
    x, labels = batch(T=num_true)
    sv = copy.deepcopy(m).sample(labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = proj(x)
        assert h.dtype == torch.bfloat16  # autocast is on: the layer below gets bf16 inputs
        loss = m(h, labels)
    assert loss.dtype == torch.float32  # autocast's rule for losses
    loss.mean().backward()
    assert m.weight.grad.dtype == torch.float32 and proj.weight.grad.dtype == torch.float32
    assert torch.isfinite(proj.weight.grad).all() and proj.weight.grad.abs().sum() > 0
    # the same negatives and function in float32, up to bfloat16's rounding of the GEMMs
    ref = ms.sampled_softmax_loss(m.weight.detach(), m.bias.detach(), labels, h.detach().float(),
                                  S, C, num_true=num_true, sampled_values=sv)
    torch.testing.assert_close(loss.detach(), ref, rtol=0.05, atol=0.1)
    m.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        full = m(proj(x), labels)
    assert full.dtype == torch.float32
    full.mean().backward()


def test_cpu_autocast_runs_the_sampled_gemm_in_bfloat16():
    """The fused node follows autocast: its logits are the bf16 product's, not float32's."""
    m = make()
    x, labels = batch(B=64)
    sv = copy.deepcopy(m).sample(labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = m(x, labels, sampled_values=sv)
    plain = m(x, labels, sampled_values=sv)
    assert not torch.equal(mixed, plain)
    torch.testing.assert_close(mixed, plain, rtol=0.05, atol=0.1)


@pytest.mark.cuda
def test_cuda_autocast_forward_backward():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for dtype in (torch.float16, torch.bfloat16):
        m = make().cuda()
        proj = torch.nn.Linear(D, D).cuda()
        x, labels = (t.cuda() for t in batch())
        with torch.autocast("cuda", dtype=dtype):
            h = proj(x)
            assert h.dtype == dtype
            loss = m(h, labels)
        assert loss.dtype == torch.float32
        loss.mean().backward()
        assert torch.isfinite(proj.weight.grad).all()
        assert m.weight.grad.dtype == torch.float32


# ------------------------------------------------------------------------------ copies


def _next(module, labels):
    return module.sample(labels).sampled_candidates


def _torch_save(m):
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


COPIES = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "torch.save": _torch_save,
    "AveragedModel": lambda m: torch.optim.swa_utils.AveragedModel(m).module,
}


@pytest.mark.parametrize("how", sorted(COPIES))
def test_a_copy_continues_the_same_stream_of_negatives(how):
    m = make(sampler="fixed_unigram", unigrams=np.arange(1, C + 1))
    x, labels = batch()
    m(x, labels)  # one call drawn before the copy
    c = COPIES[how](m)
    assert int(c.num_calls) == 1
    for _ in range(2):
        assert torch.equal(_next(c, labels), _next(m, labels))
    torch.testing.assert_close(c(x, labels), m(x, labels), rtol=0, atol=0)
    torch.testing.assert_close(c.weight, m.weight)


def test_averaged_model_trains_and_evaluates():
    m = make()
    swa = torch.optim.swa_utils.AveragedModel(m)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x, labels = batch()
    for _ in range(3):
        opt.zero_grad()
        m(x, labels).mean().backward()
        opt.step()
        swa.update_parameters(m)
    assert not torch.equal(swa.module.weight, make().weight)
    swa.eval()
    assert swa(x, labels).shape == (16,)


SPAWN_SCRIPT = textwrap.dedent('''
    import copy
    import multiprocessing as mp
    import torch
    from multisampled.torch import SampledSoftmaxLoss

    def child(module, labels, queue):
        queue.put(module.sample(labels).sampled_candidates.tolist())

    if __name__ == "__main__":
        ctx = mp.get_context("spawn")
        m = SampledSoftmaxLoss(300, 8, 24, seed=5)
        labels = torch.arange(16)[:, None]
        m.sample(labels)
        want = copy.deepcopy(m).sample(labels).sampled_candidates.tolist()
        queue = ctx.Queue()
        p = ctx.Process(target=child, args=(m, labels, queue))
        p.start()
        got = queue.get(timeout=100)
        p.join(timeout=20)
        # torch shares a module's tensors with the child: one counter, advanced by the child
        print("same" if got == want and p.exitcode == 0 else f"differ {got} {want}")
        print("calls", int(m.num_calls))
''')


def test_spawned_process_gets_the_module_and_continues_its_stream(tmp_path):
    script = tmp_path / "spawn_check.py"
    script.write_text(SPAWN_SCRIPT)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=150, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["same", "calls", "2"], r.stdout


# ------------------------------------------------------------------------------ derivatives


def _portable_functional(m, x, labels, sv, w=None):
    """The functional API's loss sum on the portable kernel, for the same sampled values."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch_backend.Torch, "sampled_softmax", plugin.Backend.sampled_softmax)
        w = m.weight if w is None else w
        return ms.sampled_softmax_loss(w, m.bias, labels, x, S, C, num_true=m.num_true,
                                       sampled_values=sv).sum()


@pytest.mark.parametrize("num_true", [1, 2])
def test_double_backward_equals_the_portable_kernels_derivatives(path, num_true):
    m = make(dtype=torch.float64, num_true=num_true)
    x, labels = batch(T=num_true, dtype=torch.float64)
    sv = copy.deepcopy(m).sample(labels)
    v = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def derivatives(loss_fn):
        xl = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(loss_fn(xl), xl, create_graph=True)
        assert gx.requires_grad
        (hv,) = torch.autograd.grad((gx * v).sum(), xl, retain_graph=True)
        (gw,) = torch.autograd.grad((gx * v).sum(), m.weight)  # mixed second derivative
        return gx.detach(), hv, gw

    mine = derivatives(lambda xl: m(xl, labels).sum())
    ref = derivatives(lambda xl: _portable_functional(m, xl, labels, sv))
    assert mine[1].abs().sum() > 0 and mine[2].abs().sum() > 0
    for got, want in zip(mine, ref):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_fused_node_hands_create_graph_to_the_portable_kernel(monkeypatch):
    from multisampled.backends import _torch_nodes

    calls = []
    real = _torch_nodes._portable_backward
    monkeypatch.setattr(_torch_nodes, "_portable_backward",
                        lambda *a: calls.append(1) or real(*a))
    m = make()
    x, labels = batch()
    x.requires_grad_()
    loss = m(x, labels).sum()
    torch.autograd.grad(loss, x, retain_graph=True)
    assert not calls  # a plain backward stays on the fused node's own formulas
    torch.autograd.grad(loss, x, create_graph=True)
    assert calls


def test_second_backward_with_a_retained_graph(path):
    m = make()
    x, labels = batch()
    x.requires_grad_()
    loss = m(x, labels).sum()
    loss.backward(retain_graph=True)
    first = (x.grad.clone(), m.weight.grad.clone())
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first[0])
    torch.testing.assert_close(m.weight.grad, 2 * first[1])


def test_torch_func_grad_over_the_module():
    m = make()
    x, labels = batch()
    with pytest.raises(RuntimeError, match="torch.func.grad.*sampled_values="):
        torch.func.grad(lambda t: m(t, labels).sum())(x)
    sv = m.sample(labels)
    got = torch.func.grad(lambda t: m(t, labels, sampled_values=sv).sum())(x)
    xl = x.clone().requires_grad_()
    m(xl, labels, sampled_values=sv).sum().backward()
    assert got.abs().sum() > 0
    torch.testing.assert_close(got, xl.grad, rtol=1e-5, atol=1e-6)
    params = dict(m.named_parameters())
    gp = torch.func.grad(lambda p: torch.func.functional_call(
        m, p, (x, labels), {"sampled_values": sv}).sum())(params)
    m.zero_grad()
    m(x, labels, sampled_values=sv).sum().backward()
    torch.testing.assert_close(gp["weight"], m.weight.grad, rtol=1e-5, atol=1e-6)


def test_vmap_over_the_module_shares_one_call_of_negatives():
    m = make()
    c = copy.deepcopy(m)
    g = torch.Generator().manual_seed(4)
    X, Y = torch.randn(3, 5, D, generator=g), torch.randint(0, C, (3, 5), generator=g)
    mapped = torch.func.vmap(m)(X, Y)
    assert int(m.num_calls) == 1
    torch.testing.assert_close(mapped, c(X, Y), rtol=1e-5, atol=1e-5)


def test_torch_compile_dynamic():
    """Dynamo and AOT autograd with symbolic batch sizes (inductor's code generation, a minute
    of C++ compilation on two cores, adds nothing that depends on this module)."""
    m = make()
    eager = copy.deepcopy(m)
    compiled = torch.compile(m, dynamic=True, backend="aot_eager")
    for n in (9, 13, 17):
        x, labels = batch(B=n, seed=n)
        torch.testing.assert_close(compiled(x, labels), eager(x, labels), rtol=1e-5, atol=1e-5)
    assert int(m.num_calls) == 3
    compiled(*batch(B=11)).sum().backward()
    assert m.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------ shapes, masks


def test_reductions(path):
    x, labels = batch()
    losses = {r: make(reduction=r)(x, labels) for r in ("none", "mean", "sum")}
    assert losses["none"].shape == (16,)
    torch.testing.assert_close(losses["mean"], losses["none"].mean())
    torch.testing.assert_close(losses["sum"], losses["none"].sum())
    with pytest.raises(ValueError, match=r"reduction must be one of \['none', 'mean', 'sum'\], "
                                         r"got 'avg'"):
        make(reduction="avg")


def test_ignore_index_masks_loss_mean_and_gradients(path):
    x, labels = batch()
    padded = labels.clone()
    padded[[2, 7]] = -100
    none = make(ignore_index=-100)
    xl = x.clone().requires_grad_()
    per = none(xl, padded)
    assert per[2] == 0 and per[7] == 0 and (per[[0, 1, 3]] != 0).all()
    per.sum().backward()
    assert xl.grad[[2, 7]].abs().sum() == 0 and xl.grad[0].abs().sum() > 0
    keep = [i for i in range(16) if i not in (2, 7)]
    full = make()(x, labels)  # same stream: the same negatives for the kept positions
    torch.testing.assert_close(per[keep], full[keep], rtol=1e-6, atol=1e-6)
    mean = make(ignore_index=-100, reduction="mean")(x, padded)
    torch.testing.assert_close(mean, full[keep].mean(), rtol=1e-6, atol=1e-6)
    ev = make(ignore_index=-100).eval()(x, padded)
    assert ev[2] == 0 and ev[0] > 0
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, 300\) \(or set "
                                         r"ignore_index="):
        make()(x, padded)
    with pytest.raises(TypeError, match="ignore_index must be None or an int"):
        make(ignore_index=-1.0)


def test_ignore_index_with_several_labels_per_position():
    m = make(num_true=2, ignore_index=-100)
    x, labels = batch(T=2)
    labels[3] = -100
    assert m(x, labels)[3] == 0
    labels[4, 0] = -100
    with pytest.raises(ValueError, match="a position's labels must be all ignore_index=-100 or "
                                         "none of them"):
        m(x, labels)


@pytest.mark.parametrize("num_true", [1, 2])
def test_sequence_inputs_equal_the_flattened_call(path, num_true):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 6, D, generator=g)
    labels = torch.randint(0, C, (4, 6, num_true), generator=g)
    seq = make(num_true=num_true)
    got = seq(x, labels if num_true > 1 else labels[..., 0])
    assert got.shape == (4, 6)
    flat = make(num_true=num_true)(x.reshape(-1, D), labels.reshape(-1, num_true))
    torch.testing.assert_close(got.reshape(-1), flat, rtol=0, atol=0)
    assert seq.full_logits(x).shape == (4, 6, C)
    with pytest.raises(ValueError, match=r"labels must have shape \[4, 6, num_true="):
        seq(x, labels[:, :5])


def test_tied_weights_share_the_embedding_parameter():
    embed = torch.nn.Embedding(C, D)
    before = embed.weight.detach().clone()
    loss = SampledSoftmaxLoss(C, D, S, seed=1, weight=embed.weight)
    assert loss.weight is embed.weight
    assert torch.equal(embed.weight, before)  # not re-initialised
    model = torch.nn.ModuleDict({"embed": embed, "loss": loss})
    assert sum(p.numel() for p in model.parameters()) == C * D + C  # counted once
    tokens = torch.randint(0, C, (16,))
    nxt = torch.randint(0, C, (16,))
    probe = copy.deepcopy(loss)
    sv = probe.sample(nxt)
    loss(embed(tokens), nxt, sampled_values=sv).sum().backward()
    # the gradient holds both uses: the embedding lookup and the class table
    e2 = torch.nn.Embedding(C, D)
    w2 = torch.nn.Parameter(before.clone())
    with torch.no_grad():
        e2.weight.copy_(before)
    lookup = e2(tokens)
    ms.sampled_softmax_loss(w2, loss.bias.detach(), nxt[:, None], lookup, S, C,
                            sampled_values=sv).sum().backward()
    torch.testing.assert_close(embed.weight.grad, e2.weight.grad + w2.grad, rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"weight must have shape \[num_classes=300, "
                                         r"embedding_dim=8\], got \[300, 4\]"):
        SampledSoftmaxLoss(C, D, S, weight=torch.nn.Parameter(torch.zeros(C, 4)))
    with pytest.raises(TypeError, match="weight must be an nn.Parameter"):
        SampledSoftmaxLoss(C, D, S, weight=torch.zeros(C, D))


def test_functional_api_biases_none_is_a_clear_error():
    x, labels = batch()
    with pytest.raises(TypeError, match=r"biases must be an array or a list of shards, got None "
                                        r"\(TF's losses have no no-bias mode"):
        ms.sampled_softmax_loss(torch.randn(C, D), None, labels, x, S, C)
    # the documented no-bias forms: zeros, or the module's bias=False
    zeros = ms.sampled_softmax_loss(torch.randn(C, D), torch.zeros(C), labels, x, S, C, seed=1)
    assert zeros.shape == (16,)
    assert SampledSoftmaxLoss(C, D, S, bias=False)(x, labels).shape == (16,)
