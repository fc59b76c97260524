"""The PyTorch backend beyond registration, on the CPU: Threefry, ``SampledSoftmaxLoss``.

References are independent of the code under test: a float64 NumPy evaluation written from
SEMANTICS.md sections 2-4 and 11 (loss and gradients), the core's portable Threefry and samplers
(bit-identity of the device sampler), and real TensorFlow for one end-to-end check.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import array_api_compat.numpy as xnp  # noqa: E402
import array_api_compat.torch as xtorch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import multisampled as ms  # noqa: E402
from multisampled import _unique, kernels, layers, plugin  # noqa: E402
from multisampled._context import Ctx  # noqa: E402
from multisampled.backends import _torch_nodes  # noqa: E402
from multisampled.backends import torch as torch_backend  # noqa: E402
from multisampled.torch import SampledSoftmaxLoss  # noqa: E402

FLT_MAX = 3.4028234663852886e38
WORD = st.integers(0, 2**32 - 1)


# ------------------------------------------------------------------------------ references


def reference_loss_and_grads(W, b, x, labels, cand, true_q, sampled_q, remove_hits=True):
    """SEMANTICS 3 + 2.3 in float64: per-example loss and the gradients of its sum w.r.t.
    weights, biases and inputs (11: scatter-add into the gathered rows)."""
    W, b, x = (np.asarray(a, np.float64) for a in (W, b, x))
    labels, cand = np.asarray(labels, np.int64), np.asarray(cand, np.int64)
    true_q = np.broadcast_to(np.asarray(true_q, np.float64), labels.shape)
    sampled_q = np.broadcast_to(np.asarray(sampled_q, np.float64), cand.shape)
    B, T = labels.shape
    S = cand.shape[0]
    z_true = np.einsum("bd,btd->bt", x, W[labels]) + b[labels] - np.log(true_q)
    z_s = x @ W[cand].T + b[cand]
    if remove_hits:
        last = {int(v): j for j, v in enumerate(cand)}  # a value's LAST position (SEMANTICS 4)
        mask = np.zeros((B, S))
        for i in range(B):
            for t in range(T):
                j = last.get(int(labels[i, t]))
                if j is not None:
                    mask[i, j] = -FLT_MAX  # assigned, not summed
        z_s = z_s + mask
    z_s = z_s - np.log(sampled_q)
    z = np.concatenate([z_true, z_s], axis=1)
    soft = np.concatenate([np.full((B, T), 1.0 / T), np.zeros((B, S))], axis=1)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    loss = lse - z_true.mean(axis=1)
    dz = np.exp(z - lse[:, None]) - soft
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dx = np.zeros_like(x)
    for i in range(B):
        for t in range(T):
            dW[labels[i, t]] += dz[i, t] * x[i]
            db[labels[i, t]] += dz[i, t]
            dx[i] += dz[i, t] * W[labels[i, t]]
    dz_s = dz[:, T:]
    np.add.at(dW, cand, dz_s.T @ x)
    np.add.at(db, cand, dz_s.sum(axis=0))
    dx += dz_s @ W[cand]
    return loss, dW, db, dx


def full_softmax_reference(W, b, x, labels):
    W, b, x = (np.asarray(a, np.float64) for a in (W, b, x))
    z = x @ W.T + b
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return lse - np.take_along_axis(z, np.asarray(labels), axis=1).mean(axis=1)


def make_module(C=50, D=6, S=8, *, seed=3, init_seed=0, **kw):
    m = SampledSoftmaxLoss(C, D, S, seed=seed, **kw)
    g = torch.Generator().manual_seed(init_seed)
    with torch.no_grad():
        m.weight.copy_(torch.randn(C, D, generator=g, dtype=torch.float64).to(m.weight.dtype))
        if m.bias is not None:
            m.bias.copy_(torch.randn(C, generator=g, dtype=torch.float64).to(m.bias.dtype))
    return m


def portable_kernels(m):
    """Patch (through the monkeypatch ``m``) the torch backend's fast paths, the fused loss node
    and the per-class selection table, back to the portable kernels of ``plugin.Backend``: the
    "core path" the fast paths are compared with."""
    m.setattr(torch_backend.Torch, "sampled_softmax", plugin.Backend.sampled_softmax)
    m.setattr(torch_backend.Torch, "first_distinct", plugin.Backend.first_distinct)


@contextlib.contextmanager
def loss_path(fused):
    """``fused=True``: the backend's fast paths (the default); False: the portable kernels."""
    with pytest.MonkeyPatch.context() as m:
        if not fused:
            portable_kernels(m)
        yield


def grads(module, inputs, labels, **kw):
    x = inputs.detach().clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    loss = module(x, labels, **kw)
    loss.sum().backward()
    gw = module.weight.grad
    gb = None if module.bias is None else module.bias.grad
    gw = gw.to_dense() if gw.is_sparse else gw
    gb = gb.to_dense() if gb is not None and gb.is_sparse else gb
    return loss.detach(), gw, gb, x.grad


# ------------------------------------------------------------------------------ Threefry


@settings(max_examples=10)
@given(key=st.tuples(WORD, WORD), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_backend_threefry_both_paths_match_core(key, seed, n):
    rng = np.random.default_rng(seed)
    c0 = torch.from_numpy(rng.integers(0, 2**32, n, dtype=np.int64))
    c1 = torch.from_numpy(rng.integers(0, 2**32, n, dtype=np.int64))
    # the core's Threefry on NumPy uint32 words: the reference
    core = [torch.from_numpy(w.astype(np.int64)) for w in kernels.threefry2x32(
        xnp, key[0], key[1], c0.numpy().astype(np.uint32), c1.numpy().astype(np.uint32))]
    host = torch_backend.BACKEND.threefry2x32(xtorch, key[0], key[1], c0, c1)  # CPU: NumPy path
    on_numpy = torch_backend._threefry_on_numpy(key[0], key[1], c0, c1)
    ops = kernels.threefry2x32(xtorch, key[0], key[1], c0, c1)  # the CUDA/compile path
    k0, k1 = torch.tensor(key[0]), torch.tensor(key[1])
    tensor_keys = kernels.threefry2x32(xtorch, k0, k1, c0, c1)
    backend_tensor_keys = torch_backend.BACKEND.threefry2x32(xtorch, k0, k1, c0, c1)
    for out in (host, on_numpy, ops, tensor_keys, backend_tensor_keys):
        for got, want in zip(out, core):
            assert got.dtype == torch.int64
            assert torch.equal(got, want)


def test_backend_threefry_known_answer_and_broadcast():
    zero = torch.zeros(1, dtype=torch.int64)
    for fn in (lambda *a: kernels.threefry2x32(xtorch, *a),  # the CUDA/compile path
               lambda *a: torch_backend.BACKEND.threefry2x32(xtorch, *a)):
        x0, x1 = fn(0, 0, zero, zero)
        assert (int(x0[0]), int(x1[0])) == (0x6B200159, 0x99BA4EFE)  # Random123 known answer
        call = torch.tensor(5)  # a 0-d call counter broadcast against the draw indices
        draws = torch.arange(7)
        got = fn(9, 11, call, draws)
        want = kernels.threefry2x32(xnp, 9, 11, np.full(7, 5, np.uint32),
                                 np.arange(7, dtype=np.uint32))
        for g, w in zip(got, want):
            assert np.array_equal(g.numpy(), w.astype(np.int64))


def test_backend_declares_threefry():
    assert type(torch_backend.BACKEND).threefry2x32 is not plugin.Backend.threefry2x32
    assert type(torch_backend.BACKEND).threefry2x32 is torch_backend.Torch.threefry2x32


# ------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize("sampler", ["log_uniform", "uniform"])
def test_module_negatives_are_the_core_stream_bit_for_bit(sampler):
    C, S, seed = 1000, 40, 2**40 + 17
    module = SampledSoftmaxLoss(C, 4, S, sampler=sampler, seed=seed)
    labels = torch.randint(0, C, (9, 1), generator=torch.Generator().manual_seed(1))
    fn = {"log_uniform": ms.log_uniform_candidate_sampler,
          "uniform": ms.uniform_candidate_sampler}[sampler]
    torch_stream, numpy_stream = ms.Generator(seed), ms.Generator(seed)
    for call in range(3):
        got = module.sample(labels)
        assert int(module.num_calls) == call + 1
        want = fn(labels, 1, S, True, C, seed=torch_stream)
        on_numpy = fn(labels.numpy(), 1, S, True, C, seed=numpy_stream, backend="numpy")
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            assert torch.equal(g, w)
        # the NumPy backend draws the same candidates; the expected counts go through each
        # library's float32 log1p/expm1, which may differ in the last place
        assert np.array_equal(got[0].numpy(), on_numpy[0])
        for g, n in zip(got[1:], on_numpy[1:]):
            np.testing.assert_array_max_ulp(g.numpy(), n, maxulp=2)


def test_module_host_refill_path_matches_core():
    # a block bounded for 1e-12 failure would be large here: the CPU refills like the core
    C, S = 1000, 999
    module = SampledSoftmaxLoss(C, 3, S, seed=5)
    dist = layers.distribution(layers.context("torch", torch.device("cpu")), module.spec)
    # the block bound exceeds the host's first block (the core's rule): the CPU refills
    assert kernels.block_size(dist.tail_masses(S), S) > max(4 * S, 2**16)
    labels = torch.tensor([[3], [998]])
    stream = ms.Generator(5)
    got = module.sample(labels)
    want = ms.log_uniform_candidate_sampler(labels, 1, S, True, C, seed=stream)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert torch.unique(got[0]).numel() == S


def test_block_path_matches_refill_path(monkeypatch):
    # the sync-free block path (CUDA, compile) and the host path give the same negatives
    C, S = 5000, 64
    labels = torch.randint(0, C, (16, 2), generator=torch.Generator().manual_seed(2))
    host = SampledSoftmaxLoss(C, 3, S, num_true=2, seed=9)
    block = SampledSoftmaxLoss(C, 3, S, num_true=2, seed=9)
    # the host path refills from 16 draws on; the block path draws its whole bound at once
    refill = _unique._sample_refill
    monkeypatch.setattr(_unique, "_sample_refill",
                        lambda ctx, dist, call, s, first: refill(ctx, dist, call, s, 16))

    class OffTheHost(torch_backend.Torch):  # values stay off the host, as on CUDA
        def may_read_values(self, device):
            return False

    off_the_host = OffTheHost()
    monkeypatch.setattr(block, "_ctx", lambda device: Ctx(off_the_host, off_the_host.namespace(),
                                                          device))
    for _ in range(3):
        a, b = host.sample(labels), block.sample(labels)
        for x, y in zip(a, b):
            assert torch.equal(x, y)


def test_int_seed_stream_and_state_dict():
    labels = torch.randint(0, 500, (8, 1), generator=torch.Generator().manual_seed(0))
    a, b = SampledSoftmaxLoss(500, 4, 20, seed=11), SampledSoftmaxLoss(500, 4, 20, seed=11)
    first = [a.sample(labels)[0] for _ in range(3)]
    assert not torch.equal(first[0], first[1])  # fresh negatives every call (TF's op seed)
    assert all(torch.equal(f, b.sample(labels)[0]) for f in first)  # reproducible sequence
    c = SampledSoftmaxLoss(500, 4, 20, seed=None)
    c.load_state_dict(a.state_dict())  # key and position travel with the state_dict
    assert torch.equal(c.sample(labels)[0], a.sample(labels)[0])
    assert set(a.state_dict()) == {"weight", "bias", "seed_key", "num_calls"}


def test_seed_none_draws_a_random_key():
    labels = torch.zeros(2, 1, dtype=torch.int64)
    a, b = SampledSoftmaxLoss(10**6, 2, 30), SampledSoftmaxLoss(10**6, 2, 30)
    assert not torch.equal(a.seed_key, b.seed_key)
    assert not torch.equal(a.sample(labels)[0], b.sample(labels)[0])


def test_torch_generator_seed():
    labels = torch.zeros(4, 1, dtype=torch.int64)
    gen = torch.Generator().manual_seed(123)
    module = SampledSoftmaxLoss(10**5, 2, 50, seed=gen)
    first, second = module.sample(labels)[0], module.sample(labels)[0]
    assert not torch.equal(first, second)
    gen.manual_seed(123)
    assert torch.equal(module.sample(labels)[0], first)
    # the key is two words drawn from the generator; the call index is 0
    gen.manual_seed(123)
    words = torch.randint(0, 2**32, (2,), generator=gen, dtype=torch.int64)
    stream = ms.Generator((int(words[0]) << 32) | int(words[1]))
    want = ms.log_uniform_candidate_sampler(labels, 1, 50, True, 10**5, seed=stream)
    assert torch.equal(first, want[0])


# ------------------------------------------------------------------------------ the loss


@settings(max_examples=15)
@given(
    data=st.data(),
    num_true=st.integers(1, 3),
    remove=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    sparse=st.booleans(),
    bias=st.booleans(),
    fused=st.booleans(),
)
def test_loss_and_gradients_match_float64_reference(data, num_true, remove, dtype, sparse, bias,
                                                    fused):
    C, D, B, S = 12, 5, 6, 7
    labels = np.asarray(data.draw(st.lists(st.lists(st.integers(0, C - 1), min_size=num_true,
                                                       max_size=num_true), min_size=B, max_size=B)))
    # user-supplied candidates may repeat (only the last copy of a hit is masked) and collide
    # with the labels (accidental hits)
    cand = np.asarray(data.draw(st.lists(st.integers(0, C - 1), min_size=S, max_size=S)))
    true_q = np.asarray(data.draw(st.lists(st.floats(0.05, 2.0), min_size=B * num_true,
                                           max_size=B * num_true))).reshape(B, num_true)
    sampled_q = np.asarray(data.draw(st.lists(st.floats(0.05, 2.0), min_size=S, max_size=S)))
    module = make_module(C, D, S, num_true=num_true, remove_accidental_hits=remove,
                         sparse=sparse, bias=bias, dtype=dtype)
    x = torch.randn(B, D, generator=torch.Generator().manual_seed(4), dtype=dtype)
    sv = (torch.from_numpy(cand), torch.from_numpy(true_q).float(),
          torch.from_numpy(sampled_q).float())
    with loss_path(fused):
        loss, gw, gb, gx = grads(module, x, torch.from_numpy(labels), sampled_values=sv)
    b_np = module.bias.detach().double().numpy() if bias else np.zeros(C)
    ref = reference_loss_and_grads(module.weight.detach().double().numpy(), b_np,
                                   x.double().numpy(), labels, cand, sv[1].double().numpy(),
                                   sv[2].double().numpy(), remove)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss.double().numpy(), ref[0], **tol)
    np.testing.assert_allclose(gw.double().numpy(), ref[1], **tol)
    if bias:
        np.testing.assert_allclose(gb.double().numpy(), ref[2], **tol)
    np.testing.assert_allclose(gx.double().numpy(), ref[3], **tol)


@pytest.mark.parametrize("fused", [True, False])
def test_module_equals_functional_api_with_the_same_seed(fused, monkeypatch):
    C, D, B, S, T = 3000, 16, 32, 100, 2
    module = make_module(C, D, S, num_true=T, seed=77)
    if not fused:
        portable_kernels(monkeypatch)  # the core's operations, as on CUDA (module and reference)
    labels = torch.randint(0, C, (B, T), generator=torch.Generator().manual_seed(8))
    labels[0, 1] = labels[0, 0]  # a repeated label (SEMANTICS 13.3)
    x = torch.randn(B, D, generator=torch.Generator().manual_seed(9))
    stream = ms.Generator(77)
    for _ in range(3):
        loss, gw, gb, gx = grads(module, x, labels)
        w = module.weight.detach().clone().requires_grad_()
        b = module.bias.detach().clone().requires_grad_()
        xf = x.clone().requires_grad_()
        with loss_path(False):  # the reference: the functional API on the core's operations
            ref = ms.sampled_softmax_loss(w, b, labels, xf, S, C, num_true=T, seed=stream)
            ref.sum().backward()
        if not fused:
            # the core's math on rows the module gathers itself: bit-identical
            assert torch.equal(loss, ref.detach())
            for got, want in ((gw, w.grad), (gb, b.grad), (gx, xf.grad)):
                assert torch.equal(got, want)
        else:
            # the same negatives and the same function; the fused node sums in another order,
            # so float32 rounding differs in the last bits
            torch.testing.assert_close(loss, ref.detach(), rtol=1e-6, atol=1e-5)
            for got, want in ((gw, w.grad), (gb, b.grad), (gx, xf.grad)):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_accidental_hits_are_masked_per_row():
    module = make_module(C=10, D=3, S=3, num_true=1)
    labels = torch.tensor([[2], [5]])
    sv = (torch.tensor([2, 7, 5]), torch.ones(2, 1), torch.ones(3))
    x = torch.randn(2, 3, dtype=torch.float32)
    loss = module(x, labels, sampled_values=sv)
    W, b = module.weight.detach(), module.bias.detach()
    # row 0 sees candidates 7 and 5 only, row 1 sees 2 and 7 (log 1 = 0)
    for i, keep in ((0, [7, 5]), (1, [2, 7])):
        z = torch.stack([x[i] @ W[c] + b[c] for c in [int(labels[i, 0])] + keep])
        torch.testing.assert_close(loss[i], torch.logsumexp(z, 0) - z[0])


def test_no_gradient_into_sampled_values_or_labels():
    module = make_module()
    labels = torch.randint(0, 50, (4, 1))
    counts_t = torch.full((4, 1), 0.5, requires_grad=True)
    counts_s = torch.full((8,), 0.25, requires_grad=True)
    sv = (torch.arange(8), counts_t, counts_s)
    x = torch.randn(4, 6, requires_grad=True)
    loss = module(x, labels, sampled_values=sv).sum()
    g = torch.autograd.grad(loss, [counts_t, counts_s, x], allow_unused=True)
    assert g[0] is None and g[1] is None and g[2] is not None
    own = module.sample(labels)
    assert not any(t.requires_grad for t in own)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_output_dtype_device_and_half_precision_hits(dtype):
    module = make_module(C=20, D=4, S=5, dtype=dtype)
    labels = torch.tensor([[1], [3], [4]])
    # every row has an accidental hit: TF gives NaN in half precision, here it is computed in
    # float32 and stays finite
    sv = (torch.tensor([1, 3, 4, 9, 11]), torch.full((3, 1), 0.2), torch.full((5,), 0.3))
    x = torch.randn(3, 4).to(dtype).requires_grad_()
    loss = module(x, labels, sampled_values=sv)
    assert loss.dtype == dtype and loss.device.type == "cpu" and loss.shape == (3,)
    loss.sum().backward()
    for t in (loss, x.grad, module.weight.grad, module.bias.grad):
        assert torch.isfinite(t.float()).all()
    assert module.weight.grad.dtype == dtype and x.grad.dtype == dtype
    # own sampler in every dtype: expected counts stay float32 (TF computes them in float32)
    own = module.sample(labels)
    assert own[1].dtype == torch.float32 and own[0].dtype == torch.int64
    assert module(x.detach(), labels).dtype == dtype


def test_module_to_dtype_keeps_sampler_tables_exact():
    module = SampledSoftmaxLoss(300, 4, 10, seed=1)
    labels = torch.tensor([[0], [299]])
    want = SampledSoftmaxLoss(300, 4, 10, seed=1).sample(labels)
    module.to(torch.float16)
    assert module.weight.dtype == torch.float16
    got = module.sample(labels)
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def test_sparse_gradients_equal_dense_ones_and_train():
    dense, sparse = make_module(seed=4), make_module(seed=4, sparse=True)
    labels = torch.randint(0, 50, (10, 1), generator=torch.Generator().manual_seed(3))
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(5))
    d = grads(dense, x, labels)
    sparse.zero_grad(set_to_none=True)
    sparse(x, labels).sum().backward()
    assert sparse.weight.grad.is_sparse and sparse.bias.grad.is_sparse
    assert sparse.weight.grad._nnz() == 10 + 8  # only the gathered rows
    torch.testing.assert_close(sparse.weight.grad.to_dense(), d[1])
    torch.testing.assert_close(sparse.bias.grad.to_dense(), d[2])
    # sparse optimisers accept them
    opt = torch.optim.SparseAdam(list(sparse.parameters()), lr=0.1)
    before = sparse.weight.detach().clone()
    opt.step()
    changed = (sparse.weight.detach() != before).any(dim=1)
    assert 0 < int(changed.sum()) <= 18
    opt = torch.optim.SGD(sparse.parameters(), lr=0.1)
    opt.zero_grad()
    sparse(x, labels).sum().backward()
    opt.step()
    # a dense grad kept by zero_grad(set_to_none=False) accumulates the sparse rows in place
    sparse.weight.grad = torch.zeros_like(sparse.weight)
    sparse.bias.grad = None
    sparse(x, labels).sum().backward()
    assert not sparse.weight.grad.is_sparse


def test_full_softmax_in_eval_mode():
    module = make_module(C=30, D=5, S=4, num_true=2)
    labels = torch.tensor([[1, 2], [7, 7], [29, 0]])
    x = torch.randn(3, 5, dtype=torch.float32)
    module.eval()
    loss = module(x, labels)
    ref = full_softmax_reference(module.weight.detach(), module.bias.detach(), x, labels.numpy())
    np.testing.assert_allclose(loss.detach().double().numpy(), ref, rtol=1e-5)
    assert int(module.num_calls) == 0  # no sampling in eval
    sampled = module(x, labels, full_softmax=False)
    assert int(module.num_calls) == 1 and not torch.allclose(sampled, loss)
    module.train()
    forced = module(x, labels, full_softmax=True)
    torch.testing.assert_close(forced, loss)
    logits = module.full_logits(x)
    assert logits.shape == (3, 30) and logits.dtype == torch.float32
    one = make_module(C=30, D=5, S=4).eval()
    y = torch.tensor([3, 8, 0])  # [B] labels accepted for num_true=1
    torch.testing.assert_close(one(x, y), torch.nn.functional.cross_entropy(
        one.full_logits(x), y, reduction="none"))


def test_all_classes_sampled_equals_full_softmax():
    # SEMANTICS 5.6: all classes as negatives with counts 1 is the full softmax (T = 1)
    C = 9
    module = make_module(C=C, D=3, S=C)
    labels = torch.tensor([[0], [4], [8]])
    x = torch.randn(3, 3)
    sv = ms.all_candidate_sampler(labels, 1, C, True)
    sampled = module(x, labels, sampled_values=sv)
    torch.testing.assert_close(sampled, module(x, labels, full_softmax=True))


def test_callable_sampler():
    C, S = 200, 12
    sampler = lambda y: ms.uniform_candidate_sampler(y, 1, S, True, C, seed=ms.Generator(6))  # noqa
    module = make_module(C=C, D=4, S=S, sampler=sampler)
    labels = torch.randint(0, C, (5, 1))
    x = torch.randn(5, 4)
    sv = ms.uniform_candidate_sampler(labels, 1, S, True, C, seed=ms.Generator(6))
    torch.testing.assert_close(module(x, labels), module(x, labels, sampled_values=sv))
    bad = make_module(C=C, D=4, S=S, sampler=lambda y: "nope")
    with pytest.raises(TypeError, match="CandidateSamples"):
        bad(x, labels)


@pytest.mark.slow
def test_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    module = make_module(C=40, D=6, S=6, num_true=2, dtype=torch.float32)
    labels = np.array([[1, 5], [5, 5], [30, 2], [7, 8]])
    cand = np.array([5, 9, 2, 33, 9, 1])  # hits, and a repeated candidate
    tq = np.linspace(0.1, 0.9, 8, dtype=np.float32).reshape(4, 2)
    sq = np.linspace(0.2, 1.7, 6, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    W, b = module.weight.detach().numpy(), module.bias.detach().numpy()
    want = tf.nn.sampled_softmax_loss(W, b, labels, x, 6, 40, num_true=2,
                                      sampled_values=(cand, tq, sq)).numpy()
    got = module(torch.from_numpy(x), torch.from_numpy(labels),
                 sampled_values=tuple(torch.from_numpy(a) for a in (cand, tq, sq)))
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ errors


def test_constructor_errors():
    with pytest.raises(ValueError, match="num_sampled=20 cannot be greater than num_classes=10"):
        SampledSoftmaxLoss(10, 3, 20)
    with pytest.raises(ValueError, match="sampler must be one of"):
        SampledSoftmaxLoss(10, 3, 2, sampler="zipf")
    with pytest.raises(TypeError, match="sampler must be"):
        SampledSoftmaxLoss(10, 3, 2, sampler=3)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        SampledSoftmaxLoss(10.0, 3, 2)
    with pytest.raises(ValueError, match="embedding_dim must be a positive int"):
        SampledSoftmaxLoss(10, 0, 2)
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*64\)"):
        SampledSoftmaxLoss(10, 3, 2, seed=-1)
    with pytest.raises(TypeError, match="sparse must be a bool"):
        SampledSoftmaxLoss(10, 3, 2, sparse=1)
    with pytest.raises(TypeError, match="dtype must be"):
        SampledSoftmaxLoss(10, 3, 2, dtype=torch.int32)


def test_forward_errors():
    module = make_module(C=10, D=3, S=2)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"inputs must have shape \[batch_size, embedding_dim=3\]"):
        module(torch.randn(4, 5), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(TypeError, match="inputs must have a floating dtype"):
        module(torch.ones(4, 3, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        module(x, torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"labels must have shape \[batch_size=4, num_true=1\]"):
        module(x, torch.zeros(3, 1, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, 10\).*max 10"):
        module(x, torch.tensor([[0], [1], [10], [2]]))
    with pytest.raises(ValueError, match="num_sampled=2 but sampled_values"):
        module(x, torch.zeros(4, 1, dtype=torch.int64),
               sampled_values=(torch.arange(3), torch.ones(4, 1), torch.ones(3)))
    with pytest.raises(ValueError, match="sampled_candidates"):
        module(x, torch.zeros(4, 1, dtype=torch.int64),
               sampled_values=(torch.tensor([0, 12]), torch.ones(4, 1), torch.ones(2)))
    with pytest.raises(TypeError, match="inputs must be a torch.Tensor"):
        module(np.zeros((4, 3), np.float32), torch.zeros(4, 1, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, 10\)"):
        module.sample(torch.tensor([[-1]]))
    with pytest.raises(ValueError, match=r"labels must have shape \[batch_size, num_true=1\]"):
        module.sample(torch.zeros(2, 2, dtype=torch.int64))
    assert int(module.num_calls) == 0  # failed calls draw nothing


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dense_row_gradients_equal_index_select_bit_for_bit(dtype):
    """The module's dense gather gives PyTorch's own index_select gradient (zeros + index_add_),
    whatever allocator the zeros come from (numpy.zeros on CPU for the numpy dtypes)."""
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(50, 6, generator=gen).to(dtype)
    ids = torch.tensor([3, 7, 3, 49, 0, 7, 7])  # repeats accumulate
    up = torch.randn(7, 6, generator=gen).to(dtype)
    mine = table.clone().requires_grad_()
    theirs = table.clone().requires_grad_()
    (_torch_nodes.take_rows(mine, ids) * up).sum().backward()
    (theirs.index_select(0, ids) * up).sum().backward()
    assert mine.grad.dtype == dtype and mine.grad.is_contiguous()
    assert torch.equal(mine.grad, theirs.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_a_kept_dense_gradient_takes_the_rows_in_place(dtype):
    """With ``.grad`` already dense (``zero_grad(set_to_none=False)``, accumulation) the rows
    are added into it in place, as a sparse gradient: the same values as PyTorch's
    index_select gradient up to the order in which a repeated id's rows are added, in the same
    storage. A tensor hook keeps seeing PyTorch's dense gradient."""
    gen = torch.Generator().manual_seed(1)
    table = torch.randn(50, 6, generator=gen).to(dtype)
    ids = torch.tensor([3, 7, 3, 49, 0, 7, 7])
    ups = [torch.randn(7, 6, generator=gen).to(dtype) for _ in range(3)]
    mine = table.clone().requires_grad_()
    theirs = table.clone().requires_grad_()
    arriving = []  # what autograd hands the leaf's AccumulateGrad node
    accumulate = mine.expand_as(mine).grad_fn.next_functions[0][0]
    accumulate.register_prehook(lambda grads: arriving.append(grads[0].layout))
    (_torch_nodes.take_rows(mine, ids) * ups[0]).sum().backward()
    assert arriving == [torch.strided]  # no .grad yet: a dense gradient, as PyTorch's
    mine.grad = torch.randn(50, 6, generator=gen).to(dtype)  # an accumulated gradient
    theirs.grad = mine.grad.clone()
    storage = mine.grad.data_ptr()
    for up in ups:
        (_torch_nodes.take_rows(mine, ids) * up).sum().backward()
        (theirs.index_select(0, ids) * up).sum().backward()
    assert arriving[1:] == [torch.sparse_coo] * len(ups)  # the rows only, added in place
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(dtype, 1e-6)
    assert mine.grad.layout == torch.strided and mine.grad.data_ptr() == storage
    torch.testing.assert_close(mine.grad, theirs.grad, rtol=tol, atol=tol)
    untouched = torch.ones(50, dtype=torch.bool)
    untouched[ids] = False
    assert torch.equal(mine.grad[untouched], theirs.grad[untouched])
    seen = []
    mine.register_hook(lambda g: seen.append(g.layout))
    (_torch_nodes.take_rows(mine, ids) * ups[0]).sum().backward()
    assert seen == [torch.strided] and mine.grad.layout == torch.strided
    assert arriving[-1] == torch.strided


def test_the_module_writes_a_kept_dense_gradient_once():
    """The module's dense row gradient with ``zero_grad(set_to_none=False)``: what a fresh
    gradient gives, in the kept storage, step after step."""
    fresh = make_module(C=300, D=6, S=20, seed=3)
    kept = make_module(C=300, D=6, S=20, seed=3)
    kept.load_state_dict(fresh.state_dict())
    x = torch.randn(9, 6, generator=torch.Generator().manual_seed(2))
    labels = torch.randint(0, 300, (9,), generator=torch.Generator().manual_seed(3))
    kept.zero_grad(set_to_none=False)
    for module in (fresh, kept):  # make_module leaves .grad None: the first step allocates
        module(x, labels).sum().backward()
    kept.zero_grad(set_to_none=False)
    storage = kept.weight.grad.data_ptr()
    for _ in range(2):
        fresh.zero_grad(set_to_none=True)
        kept.zero_grad(set_to_none=False)
        fresh(x, labels).sum().backward()
        kept(x, labels).sum().backward()
        assert kept.weight.grad.data_ptr() == storage
        torch.testing.assert_close(kept.weight.grad, fresh.weight.grad, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(kept.bias.grad, fresh.bias.grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("sparse", [False, True])
def test_training_step_never_builds_batch_by_classes_tensors(sparse):
    """The issue's memory bound: a training step's tensors stay about the ``[B, S]`` logits and
    never reach ``[B, C]``; every ATen output of forward and backward is recorded. Eval mode
    (the full softmax) builds ``[B, C]`` on purpose: the positive control of the recorder."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class LargestOutput(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.largest = max(self.largest, t.numel())
            return out

    C, D, B, S = 20_000, 8, 64, 128  # B*C = 1.28M elements; C*D (a dense gradient) = 160k
    module = make_module(C=C, D=D, S=S, sparse=sparse, seed=4)
    x = torch.randn(B, D, requires_grad=True)
    labels = torch.randint(0, C, (B, 1))
    with LargestOutput() as rec:
        module(x, labels).sum().backward()
    assert rec.largest <= max(C * D, C), rec.largest
    w = module.weight.detach().clone().requires_grad_()
    b = module.bias.detach().clone().requires_grad_()
    with LargestOutput() as rec:  # the functional API, the core's operations
        ms.sampled_softmax_loss(w, b, labels, x, S, C, seed=2).sum().backward()
    assert rec.largest <= max(C * D, C), rec.largest
    module.eval()
    with LargestOutput() as rec, torch.no_grad():
        module(x, labels)
    assert rec.largest >= B * C


def _functional_loss(w, b, x, labels):
    sampled = ms.log_uniform_candidate_sampler(labels, 1, 16, True, 300, seed=ms.Generator(5))
    return ms.sampled_softmax_loss(w, b, labels, x, 16, 300, sampled_values=sampled).sum()


def test_functional_row_gathers_keep_torch_func_and_double_backward(monkeypatch):
    """The backend's take_rows (zeros from numpy.zeros in a plain CPU backward) changes no
    gradient: first and second derivatives, under autograd and torch.func, equal those of
    index_select's own gradient."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(300, 8, generator=gen, dtype=torch.float64)
    b = torch.randn(300, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 8, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 300, (6, 1), generator=gen)
    v = torch.randn(300, 8, generator=gen, dtype=torch.float64)

    def derivatives():
        wl = w.clone().requires_grad_()
        (gw,) = torch.autograd.grad(_functional_loss(wl, b, x, labels), wl, create_graph=True)
        (hv,) = torch.autograd.grad((gw * v).sum(), wl)  # a Hessian-vector product
        fg = torch.func.grad(lambda t: _functional_loss(t, b, x, labels))(w)
        wl2 = w.clone().requires_grad_()
        _functional_loss(wl2, b, x, labels).backward()  # the plain backward (numpy zeros)
        return gw.detach(), hv, fg, wl2.grad

    calls = []
    real = _torch_nodes.TakeRows.apply
    monkeypatch.setattr(_torch_nodes.TakeRows, "apply",
                        lambda *a: calls.append(1) or real(*a))
    mine = derivatives()
    assert calls  # the functional API did gather through TakeRows
    monkeypatch.setattr(_torch_nodes, "take_rows", lambda t, ids: t.index_select(0, ids))
    theirs = derivatives()
    for m, t in zip(mine, theirs):
        torch.testing.assert_close(m, t, rtol=0, atol=0)
    assert mine[1].abs().sum() > 0


# ------------------------------------------------------------------------------ no host sync


@contextlib.contextmanager
def device_like_host_rules(monkeypatch):
    """Run CPU tensors under the rules of an accelerator: value checks asynchronous, and any
    host read of a tensor (``item``, ``bool``, ``nonzero``, ``.numpy()``), conversion of host
    data into a tensor or tensor creation without an explicit device fails. A CPU stand-in for
    ``torch.cuda.set_sync_debug_mode("error")`` and for mixed-device errors."""
    monkeypatch.setattr(Ctx, "may_read_values", property(lambda self: False))
    monkeypatch.setattr(torch_backend, "_threefry_on_numpy", lambda *a: None)
    # the dense gradient's zeros come from the device's allocator there, not from numpy.zeros
    monkeypatch.setattr(_torch_nodes, "NUMPY_FLOATS", {})

    def forbidden(name):
        def fail(*args, **kwargs):
            raise AssertionError(f"host read or host-to-device conversion: {name}")
        return fail

    def on_a_device(name, factory):
        # on an accelerator, an array created without a device lands on the CPU: refuse it
        def create(*args, **kwargs):
            if kwargs.get("device") is None:
                raise AssertionError(f"torch.{name} called without a device")
            return factory(*args, **kwargs)
        return create

    with monkeypatch.context() as m:
        for name in ("item", "__bool__", "__int__", "__float__", "__index__", "tolist", "numpy",
                     "nonzero"):
            m.setattr(torch.Tensor, name, forbidden(f"Tensor.{name}"))
        for name in ("nonzero", "as_tensor", "asarray", "tensor", "from_numpy"):
            m.setattr(torch, name, forbidden(f"torch.{name}"))
        for name in ("zeros", "ones", "full", "empty", "arange"):
            m.setattr(torch, name, on_a_device(name, getattr(torch, name)))
        yield


@pytest.mark.parametrize("sparse", [False, True])
def test_forward_backward_reads_nothing_on_the_host(monkeypatch, sparse):
    module = make_module(C=400, D=8, S=32, num_true=2, sparse=sparse)
    labels = torch.randint(0, 400, (16, 2))
    x = torch.randn(16, 8, requires_grad=True)
    module(x, labels).sum().backward()  # warm-up (tables, caches)
    ms.sampled_softmax_loss(module.weight, module.bias, labels, x, 32, 400, num_true=2, seed=3)
    want = None
    with device_like_host_rules(monkeypatch):
        module(x, labels).sum().backward()
        module.eval()
        module(x, labels).sum().backward()
        module.train()
        w = module.weight.detach().clone().requires_grad_()
        b = module.bias.detach().clone().requires_grad_()
        ms.sampled_softmax_loss(w, b, labels, x, 32, 400, num_true=2, seed=3).sum().backward()
        want = module.sample(labels)
    assert int(module.num_calls) == 3 and want is not None


# ------------------------------------------------------------------------------ torch.compile


def _compiled_matches_eager(backend):
    import torch._dynamo

    torch._dynamo.reset()
    eager = make_module(C=300, D=8, S=16, seed=21)
    compiled_module = make_module(C=300, D=8, S=16, seed=21)
    labels = torch.randint(0, 300, (12, 1), generator=torch.Generator().manual_seed(0))
    x = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))

    def step(module, x, labels):
        return module(x, labels).sum()

    compiled = torch.compile(step, fullgraph=True, backend=backend)
    for call in range(2):
        got = compiled(compiled_module, x, labels)
        got.backward()
        want = step(eager, x, labels)
        want.backward()
        assert int(compiled_module.num_calls) == call + 1  # the counter buffer advances
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(compiled_module.weight.grad, eager.weight.grad,
                                   rtol=1e-5, atol=1e-6)


def test_torch_compile_fullgraph_traces_the_training_step():
    _compiled_matches_eager("aot_eager")


@pytest.mark.slow
def test_torch_compile_fullgraph_inductor():
    _compiled_matches_eager("inductor")


def test_functional_api_under_torch_compile_is_one_graph_break_with_fresh_negatives():
    """Every public function leaves Dynamo's trace (Backend.outside_trace): it runs eagerly on
    each call of the compiled code, so the seed stream advances, and nothing recompiles."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    C, D, B, S = 500, 8, 6, 20
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(C, D, generator=gen).requires_grad_()
    b = torch.randn(C, generator=gen).requires_grad_()
    x = torch.randn(B, D, generator=gen)
    labels = torch.randint(0, C, (B, 1), generator=gen)

    def step(stream):
        h = torch.tanh(2 * x)
        return ms.sampled_softmax_loss(w, b, labels, h, S, C, seed=stream).sum()

    def draw(stream):
        return ms.uniform_candidate_sampler(labels + 0, 1, S, True, C, seed=stream)[0]

    counter = CompileCounter()
    compiled, compiled_draw = torch.compile(step, backend=counter), torch.compile(draw)
    streams = [ms.Generator(11) for _ in range(4)]
    losses = []
    for _ in range(4):
        got = compiled(streams[0])
        got_grads = torch.autograd.grad(got, (w, b))
        want = step(streams[1])  # eager, the same stream position
        want_grads = torch.autograd.grad(want, (w, b))
        torch.testing.assert_close(got, want)
        for g, e in zip(got_grads, want_grads):
            torch.testing.assert_close(g, e)
        losses.append(float(got))
        assert torch.equal(compiled_draw(streams[2]), draw(streams[3]))
    assert len(set(losses)) == 4  # every compiled call drew fresh negatives
    # the graphs around the break (tanh before it, sum after it), compiled once: no recompiles
    assert counter.frame_count == 2


# ------------------------------------------------------------------------------ functional API


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_functional_api_keeps_torch_dtype_and_gradients(dtype):
    g = torch.Generator().manual_seed(0)
    W = torch.randn(40, 6, generator=g).to(dtype).requires_grad_()
    b = torch.randn(40, generator=g).to(dtype).requires_grad_()
    x = torch.randn(5, 6, generator=g).to(dtype).requires_grad_()
    labels = torch.tensor([[1], [3], [5], [7], [9]])
    sv = (torch.tensor([3, 11, 12, 13]), torch.full((5, 1), 0.2), torch.full((4,), 0.3))
    loss = ms.sampled_softmax_loss(W, b, labels, x, 4, 40, sampled_values=sv)
    assert isinstance(loss, torch.Tensor) and loss.dtype == dtype and loss.shape == (5,)
    loss.sum().backward()
    for t in (W.grad, b.grad, x.grad):
        assert t.dtype == dtype and torch.isfinite(t.float()).all()
    touched = (W.grad != 0).any(dim=1).nonzero().flatten().tolist()
    assert set(touched) <= {1, 3, 5, 7, 9, 11, 12, 13}  # only the gathered rows


def test_paddle_api_gradients_reach_logits_only_at_sampled_columns():
    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(1), requires_grad=True)
    label = torch.tensor([[2], [5], [5], [29]])
    loss = ms.sampled_softmax_with_cross_entropy(logits, label, 6, seed=4)
    assert loss.shape == (4, 1) and loss.dtype == torch.float32
    loss.sum().backward()
    nonzero_columns = (logits.grad != 0).sum(dim=1)
    assert (nonzero_columns <= 1 + 6).all() and (nonzero_columns >= 1).all()
    torch.testing.assert_close(logits.grad.sum(dim=1), torch.zeros(4), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- torch.Generator seeds
# in the functional API (the backend's key_from_seed seam)


def test_functional_samplers_accept_a_torch_generator():
    labels = torch.tensor([[1], [5], [7]])
    g = torch.Generator().manual_seed(3)
    first = ms.log_uniform_candidate_sampler(labels, 1, 6, True, 200, seed=g)
    second = ms.log_uniform_candidate_sampler(labels, 1, 6, True, 200, seed=g)
    again = ms.log_uniform_candidate_sampler(
        labels, 1, 6, True, 200, seed=torch.Generator().manual_seed(3)
    )
    assert torch.equal(first.sampled_candidates, again.sampled_candidates)  # reproducible
    assert not torch.equal(first.sampled_candidates, second.sampled_candidates)  # advances
    assert len(set(first.sampled_candidates.tolist())) == 6


def test_functional_generator_seed_matches_the_module_and_the_core_stream():
    """Both draw two key words from the generator and use call index 0 under that key, so the
    candidates equal the core stream of that 64-bit key (an independent path to the same draw)."""
    num_classes, num_sampled = 300, 8
    labels = torch.tensor([[2], [9]])
    functional = ms.log_uniform_candidate_sampler(
        labels, 1, num_sampled, True, num_classes, seed=torch.Generator().manual_seed(11)
    )
    module = SampledSoftmaxLoss(
        num_classes, 4, num_sampled, seed=torch.Generator().manual_seed(11)
    )
    assert torch.equal(functional.sampled_candidates, module.sample(labels).sampled_candidates)
    words = torch.randint(
        0, 2**32, (2,), generator=torch.Generator().manual_seed(11), dtype=torch.int64
    )
    key = (int(words[0]) << 32) | int(words[1])
    core = ms.log_uniform_candidate_sampler(
        labels.numpy(), 1, num_sampled, True, num_classes, seed=ms.Generator(key)
    )
    assert functional.sampled_candidates.tolist() == core.sampled_candidates.tolist()


def test_losses_accept_a_torch_generator_seed():
    W = torch.randn(100, 8, requires_grad=True)
    b = torch.zeros(100, requires_grad=True)
    x, y = torch.randn(3, 8), torch.tensor([[1], [4], [9]])
    a = ms.sampled_softmax_loss(W, b, y, x, 5, 100, seed=torch.Generator().manual_seed(2))
    c = ms.sampled_softmax_loss(W, b, y, x, 5, 100, seed=torch.Generator().manual_seed(2))
    assert torch.equal(a, c) and torch.isfinite(a).all()
    a.sum().backward()
    assert W.grad is not None


def test_torch_generator_with_host_data_on_numpy_is_a_clear_error():
    with pytest.raises(TypeError, match=r"seed must be None, a Generator, a key or an int"):
        ms.log_uniform_candidate_sampler(
            np.array([[1]]), 1, 4, True, 100, seed=torch.Generator()
        )


# ------------------------------------------------------------------------------ fused CPU path


@settings(max_examples=40, deadline=None)
@given(data=st.data(), num_classes=st.integers(1, 40), s=st.integers(1, 12))
def test_first_distinct_equals_the_core_sort_based_selection(data, num_classes, s):
    from multisampled._context import context

    n = data.draw(st.integers(1, 60))
    classes = torch.tensor(data.draw(st.lists(st.integers(0, num_classes - 1), min_size=n,
                                              max_size=n)), dtype=torch.int64)
    got, tries = _torch_nodes.first_distinct(classes, s, num_classes)
    # an independent statement of TF's rule: keep a draw iff its class is new
    seen, want, want_tries = set(), [], n + 1
    for i, c in enumerate(classes.tolist()):
        if c not in seen:
            seen.add(c)
            want.append(c)
            if len(want) == s:
                want_tries = i + 1
                break
    assert int(tries) == want_tries
    assert got.tolist()[: len(want)] == want
    if want_tries <= n:  # enough distinct classes: the core's selection agrees
        pos = kernels.first_new_positions(context(backend="torch").xp, classes, None)[:s]
        assert torch.equal(got, classes[pos])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_on_cpu_match_the_core_path(dtype):
    C, D, B, S = 500, 8, 16, 40
    labels = torch.randint(0, C, (B, 2), generator=torch.Generator().manual_seed(1))
    x = torch.randn(B, D, generator=torch.Generator().manual_seed(2)).to(dtype)
    out = []
    for fused in (True, False):
        module = make_module(C, D, S, num_true=2, seed=3, dtype=dtype)
        with loss_path(fused):
            out.append(grads(module, x, labels))
    for got, want in zip(*out):
        assert got.dtype == want.dtype == dtype
        # both compute in float32 from the same half-precision values; one rounding at the end
        torch.testing.assert_close(got.float(), want.float(), rtol=1e-2, atol=1e-3)


def test_fused_path_with_a_hit_repeated_in_a_row_equals_the_core_path():
    """A label repeated in its row that is also a (repeated) candidate: the fused path adds the
    mask once per copy, TF once; the loss and gradients are the same and finite."""
    labels = torch.tensor([[3, 3], [1, 4]])
    # distinct Q per column: masking the first copy of 3 instead of the last would show
    sv = (torch.tensor([3, 0, 3, 4, 2]), torch.full((2, 2), 0.5),
          torch.tensor([0.9, 0.4, 0.05, 0.3, 0.2]))
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(5))
    out = []
    for fused in (True, False):
        module = make_module(10, 6, 5, num_true=2)
        with loss_path(fused):
            out.append(grads(module, x, labels, sampled_values=sv))
    for got, want in zip(*out):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
