"""The PyTorch backend on CUDA: no host synchronisation, CUDA graphs, bit-identical sampling.

Every test is marked ``cuda`` and skipped where torch or a CUDA device is missing.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import array_api_compat.torch as xtorch  # noqa: E402

import multisampled as ms  # noqa: E402
from multisampled import kernels, layers, plugin  # noqa: E402
from multisampled.backends import _torch_nodes  # noqa: E402
from multisampled.backends import torch as torch_backend  # noqa: E402
from multisampled.conformance import BackendConformance  # noqa: E402
from multisampled.torch import SampledSoftmaxLoss  # noqa: E402

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

DEV = "cuda"


def pytest_generate_tests(metafunc):
    # the module-level tests run on both CUDA paths of the torch backend: the core's
    # operations (the default on CUDA) and the fused autograd node with the per-class selection
    # table (the CPU fast paths, off on CUDA until they have passed here); the conformance kit
    # below runs on the default
    if metafunc.cls is None:
        metafunc.parametrize("cuda_path", ["core", "fused"], indirect=True)


def _fused_sampled_softmax(self, xp, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                           log_q_sampled, hits, num_true):
    if log_q_true is not None and not self.is_compiling():
        return _torch_nodes.sampled_softmax(x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                                            log_q_sampled, hits, num_true)
    return plugin.Backend.sampled_softmax(self, xp, x, true_w, true_b, sampled_w, sampled_b,
                                          log_q_true, log_q_sampled, hits, num_true)


def _fused_first_distinct(self, xp, classes, num_sampled, num_classes):
    return _torch_nodes.first_distinct(classes, num_sampled, num_classes)


@pytest.fixture(autouse=True)
def cuda_path(request, monkeypatch):
    path = getattr(request, "param", "core")
    if path == "fused":  # the backend's CPU fast paths on every device
        monkeypatch.setattr(torch_backend.Torch, "sampled_softmax", _fused_sampled_softmax)
        monkeypatch.setattr(torch_backend.Torch, "first_distinct", _fused_first_distinct)
    return path


class TestConformanceOnCuda(BackendConformance):
    """The whole conformance kit with every array on the GPU.

    Bad VALUES are left out (``value_checks = False``): on CUDA they fail a device-side assert,
    which ends the process's CUDA context, so :func:`test_invalid_label_raises_asynchronously`
    checks that case in a subprocess of its own. Shape, dtype and type errors still run.
    """

    backend = "torch"
    devices = ["cuda"]
    value_checks = False


@contextlib.contextmanager
def sync_debug_error():
    """Any synchronising CUDA call inside the block raises."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


def module_on_cuda(C=20_000, D=32, S=256, **kw):
    torch.manual_seed(0)
    return SampledSoftmaxLoss(C, D, S, device=DEV, **kw)


def batch(C=20_000, D=32, B=64, T=1, dtype=torch.float32, seed=0):
    g = torch.Generator(device=DEV).manual_seed(seed)
    x = torch.randn(B, D, device=DEV, generator=g).to(dtype)
    labels = torch.randint(0, C, (B, T), device=DEV, generator=g)
    return x, labels


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("sampler", ["log_uniform", "uniform"])
def test_forward_backward_without_host_sync(sparse, sampler):
    module = module_on_cuda(sparse=sparse, sampler=sampler, seed=7, num_true=2)
    x, labels = batch(T=2)
    x.requires_grad_()
    module(x, labels).sum().backward()  # warm-up: kernels, cuBLAS handles, tables
    with sync_debug_error():
        for _ in range(3):
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x, labels).sum().backward()
    torch.cuda.synchronize()
    assert int(module.num_calls) == 4
    assert torch.isfinite(x.grad).all()


def test_functional_api_without_host_sync():
    C, S = 20_000, 128
    W = torch.randn(C, 16, device=DEV, requires_grad=True)
    b = torch.zeros(C, device=DEV, requires_grad=True)
    x, labels = batch(C=C, D=16)
    ms.sampled_softmax_loss(W, b, labels, x, S, C, seed=3).sum().backward()  # warm-up
    with sync_debug_error():
        ms.sampled_softmax_loss(W, b, labels, x, S, C, seed=3).sum().backward()


def test_functional_api_with_a_cuda_generator_without_host_sync():
    C, S = 20_000, 128
    W = torch.randn(C, 16, device=DEV, requires_grad=True)
    b = torch.zeros(C, device=DEV, requires_grad=True)
    x, labels = batch(C=C, D=16)
    g = torch.Generator(device=DEV).manual_seed(5)
    ms.sampled_softmax_loss(W, b, labels, x, S, C, seed=g).sum().backward()  # warm-up
    with sync_debug_error():
        loss = ms.sampled_softmax_loss(W, b, labels, x, S, C, seed=g)
        loss.sum().backward()
    torch.cuda.synchronize()
    assert loss.device.type == "cuda" and torch.isfinite(loss).all()


def test_candidates_bit_identical_to_numpy_backend():
    C, S, seed = 50_000, 300, 2**33 + 5
    module = module_on_cuda(C=C, S=S, seed=seed)
    labels = torch.randint(0, C, (32, 1), device=DEV)
    numpy_stream, cuda_stream = ms.Generator(seed), ms.Generator(seed)
    for _ in range(3):
        got = module.sample(labels)
        assert all(t.device.type == "cuda" for t in got)
        want = ms.log_uniform_candidate_sampler(labels.cpu().numpy(), 1, S, True, C,
                                                seed=numpy_stream, backend="numpy")
        assert np.array_equal(got[0].cpu().numpy(), want[0])
        np.testing.assert_array_max_ulp(got[2].cpu().numpy(), want[2], maxulp=2)
        functional = ms.log_uniform_candidate_sampler(labels, 1, S, True, C, seed=cuda_stream)
        assert torch.equal(functional[0], got[0])


def test_threefry_ops_on_cuda_match_core():
    rng = np.random.default_rng(0)
    c0 = rng.integers(0, 2**32, 1000, dtype=np.int64)
    c1 = rng.integers(0, 2**32, 1000, dtype=np.int64)
    want = kernels.threefry2x32(xtorch, 0x12345678, 0x9ABCDEF0, torch.from_numpy(c0),
                                torch.from_numpy(c1))
    got = torch_backend.BACKEND.threefry2x32(xtorch, 0x12345678, 0x9ABCDEF0,
                                             torch.from_numpy(c0).to(DEV),
                                             torch.from_numpy(c1).to(DEV))
    for g, w in zip(got, want):
        assert torch.equal(g.cpu(), w)


def test_cuda_graph_capture_and_replay_draw_fresh_negatives():
    C, S = 20_000, 256
    graphed, eager = module_on_cuda(seed=5), module_on_cuda(seed=5)
    x, labels = batch()
    opt_g = torch.optim.SGD(graphed.parameters(), lr=0.5)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.5)

    def step(module, opt):
        opt.zero_grad(set_to_none=False)
        loss = module(x, labels).sum()
        loss.backward()
        opt.step()
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step(graphed, opt_g)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = step(graphed, opt_g)
    for _ in range(3):
        step(eager, opt_e)
    losses = []
    for _ in range(3):
        graph.replay()
        losses.append(static_loss.item())
        want = step(eager, opt_e)
        assert abs(losses[-1] - want.item()) <= 1e-3 * max(1.0, abs(want.item()))
    assert int(graphed.num_calls) == 6  # 3 warm-up calls + 3 replays; capture itself draws none
    torch.testing.assert_close(graphed.weight, eager.weight, rtol=1e-4, atol=1e-5)

    # a captured sampler call yields the next negatives of the stream on every replay
    sampler = module_on_cuda(C=C, S=S, seed=8)
    sampler.sample(labels)
    sampler.num_calls.zero_()
    g2 = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g2):
        static = sampler.sample(labels)
    stream = ms.Generator(8)
    for _ in range(3):
        g2.replay()
        want = ms.log_uniform_candidate_sampler(labels.cpu().numpy(), 1, S, True, C,
                                                seed=stream, backend="numpy")
        assert np.array_equal(static[0].cpu().numpy(), want[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("sparse", [False, True])
def test_device_residency_and_dtypes(dtype, sparse):
    module = SampledSoftmaxLoss(1000, 8, 20, seed=1, sparse=sparse).to(DEV, dtype)
    assert module.seed_key.device.type == "cuda" and module.num_calls.device.type == "cuda"
    # the sampler's tables are the core's (not module buffers): .to(dtype) leaves P float32
    dist = layers.distribution(layers.context("torch", module.num_calls.device), module.spec)
    assert dist.p.dtype == torch.float32 and dist.p.device.type == "cuda"
    x, labels = batch(C=1000, D=8, B=16, dtype=dtype)
    cand = torch.unique(labels[:5, 0])  # guaranteed accidental hits
    cand = torch.cat([cand, torch.arange(1000, device=DEV)[~torch.isin(
        torch.arange(1000, device=DEV), cand)][: 20 - cand.numel()]])
    sv = (cand, torch.full((16, 1), 0.1, device=DEV), torch.full((20,), 0.2, device=DEV))
    x.requires_grad_()
    loss = module(x, labels, sampled_values=sv)
    assert loss.device.type == "cuda" and loss.dtype == dtype and loss.shape == (16,)
    loss.sum().backward()
    for t in (loss, x.grad, module.weight.grad.to_dense(), module.bias.grad.to_dense()):
        assert t.device.type == "cuda" and torch.isfinite(t.float()).all()
    assert module(x.detach(), labels).device.type == "cuda"
    module.eval()
    assert module(x.detach(), labels).device.type == "cuda"


def test_generator_seed_on_cuda():
    gen = torch.Generator(device=DEV).manual_seed(4)
    module = module_on_cuda(seed=gen)
    x, labels = batch()
    first = module.sample(labels)[0]
    gen.manual_seed(4)
    assert torch.equal(module.sample(labels)[0], first)
    on_cpu = module_on_cuda(seed=torch.Generator().manual_seed(4))
    with pytest.raises(ValueError, match="pass a generator of the tensors' device"):
        on_cpu.sample(labels)


def test_module_moved_to_cuda_keeps_its_stream():
    cpu = SampledSoftmaxLoss(5000, 8, 64, seed=12)
    moved = SampledSoftmaxLoss(5000, 8, 64, seed=12).to(DEV)
    labels = torch.randint(0, 5000, (8, 1))
    for _ in range(2):
        assert torch.equal(moved.sample(labels.to(DEV))[0].cpu(), cpu.sample(labels)[0])


@pytest.mark.slow
def test_torch_compile_fullgraph_on_cuda():
    import torch._dynamo

    torch._dynamo.reset()
    compiled_module, eager = module_on_cuda(seed=2), module_on_cuda(seed=2)
    x, labels = batch()

    def step(module):
        return module(x, labels).sum()

    compiled = torch.compile(step, fullgraph=True)
    for _ in range(2):
        torch.testing.assert_close(compiled(compiled_module), step(eager), rtol=1e-4, atol=1e-4)


def test_invalid_label_raises_asynchronously():
    # a device-side assert poisons the CUDA context: run it in a child process
    code = textwrap.dedent(
        """
        import torch
        from multisampled.torch import SampledSoftmaxLoss
        m = SampledSoftmaxLoss(100, 4, 8, device="cuda", seed=0)
        x = torch.randn(3, 4, device="cuda")
        y = torch.tensor([[1], [100], [2]], device="cuda")
        m(x, y).sum().backward()
        torch.cuda.synchronize()
        print("NO ERROR")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "NO ERROR" not in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("num_true", [1, 2])
def test_cuda_loss_and_gradients_match_float64_cpu(dtype, sparse, num_true):
    """The CUDA path (Triton kernels, half-precision GEMMs) against the CPU module in float64
    (itself checked against an independent float64 reference in test_torch.py), with repeated
    candidates and many accidental hits, some repeated within a row."""
    C, D, B, S = 5000, 64, 96, 300
    g = torch.Generator().manual_seed(11)
    gpu = SampledSoftmaxLoss(C, D, S, num_true=num_true, sparse=sparse, device=DEV, dtype=dtype)
    cpu = SampledSoftmaxLoss(C, D, S, num_true=num_true, sparse=sparse, dtype=torch.float64)
    with torch.no_grad():
        cpu.weight.copy_(gpu.weight.double().cpu())  # the same (rounded) parameters
        cpu.bias.copy_(gpu.bias.double().cpu())
    labels = torch.randint(0, 60, (B, num_true), generator=g)
    if num_true == 2:
        labels[::3, 1] = labels[::3, 0]  # a label repeated in its row
    cand = torch.randint(0, 60, (S,), generator=g)  # repeats and hits everywhere
    true_q = torch.rand(B, num_true, generator=g) + 0.05
    sampled_q = torch.rand(S, generator=g) + 0.05
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    results = []
    for module, dev, dt in ((cpu, "cpu", torch.float64), (gpu, DEV, dtype)):
        xi = x.clone().to(dt).to(dev).requires_grad_()
        sv = (cand.to(dev), true_q.to(dev), sampled_q.to(dev))
        loss = module(xi, labels.to(dev), sampled_values=sv)
        assert loss.dtype == dt and loss.device.type == torch.device(dev).type
        loss.sum().backward()
        gw = module.weight.grad.to_dense() if sparse else module.weight.grad
        gb = module.bias.grad.to_dense() if sparse else module.bias.grad
        results.append([t.detach().double().cpu() for t in (loss, gw, gb, xi.grad)])
    tol = {
        torch.float64: dict(rtol=1e-10, atol=1e-10),
        torch.float32: dict(rtol=1e-4, atol=1e-5),
        torch.float16: dict(rtol=1e-2, atol=1e-2),  # row gradients accumulate in float16
        torch.bfloat16: dict(rtol=2e-2, atol=2e-2),
    }[dtype]
    for want, got in zip(*results):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, **tol)


def test_next_token_example_trains_on_cuda():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "torch_next_token.py"
    spec = importlib.util.spec_from_file_location("torch_next_token", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.main(["--vocab", "5000", "--steps", "120", "--batch", "128", "--device", DEV])
    assert out["eval_loss_after"] < out["eval_loss_before"] - 2.0


@pytest.fixture
def nccl_group(tmp_path):
    """A one-rank NCCL group in this process (the device machine has one GPU)."""
    import torch.distributed as dist

    if not dist.is_nccl_available():
        pytest.skip("torch was built without NCCL")
    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    dist.init_process_group("nccl", init_method=f"file://{tmp_path}/rendezvous", rank=0,
                            world_size=1, device_id=torch.device(DEV, 0))
    try:
        yield dist.group.WORLD
    finally:
        dist.destroy_process_group()


def test_sharded_table_on_nccl_without_host_sync(nccl_group):
    """shard_group= on NCCL: collectives enqueued on the stream, no host synchronisation; one
    rank gives the plain call's loss and gradients."""
    C, S, key = 20_000, 128, torch.tensor([5, 6], device=DEV)
    x, labels = batch(C=C, D=16, T=2)
    grads = []
    for group in (nccl_group, None):
        W = torch.randn(C, 16, device=DEV, generator=torch.Generator(DEV).manual_seed(1))
        W.requires_grad_()
        xi = x.clone().requires_grad_()
        kw = {} if group is None else {"shard_group": group}
        ms.sampled_softmax_loss(W, torch.zeros(C, device=DEV), labels, xi, S, C, num_true=2,
                                seed=key, **kw).sum().backward()  # warm-up
        W.grad = xi.grad = None
        with sync_debug_error():
            loss = ms.sampled_softmax_loss(W, torch.zeros(C, device=DEV), labels, xi, S, C,
                                           num_true=2, seed=key, **kw)
            loss.sum().backward()
        grads.append((loss.detach(), W.grad, xi.grad))
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_sharded_module_on_nccl_without_host_sync(nccl_group):
    module = module_on_cuda(seed=7, num_true=2, sparse=True, shard_group=nccl_group)
    x, labels = batch(T=2)
    x.requires_grad_()
    module(x, labels).sum().backward()  # warm-up
    with sync_debug_error():
        module.zero_grad(set_to_none=True)
        module(x, labels).sum().backward()
    torch.cuda.synchronize()
    assert module.weight.grad.is_sparse and torch.isfinite(x.grad).all()
