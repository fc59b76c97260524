"""The torch backend's table-built accidental-hit mask and what its fused loss node does with it:
the mask against a reference written from SEMANTICS 4 (TF reports a value sampled several times
at its LAST position), the node's hit positions and joined row tensors against the same node on
a plain dense mask and on separate row tensors, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import array_api_compat.torch as xtorch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from multisampled import _unique, plugin  # noqa: E402
from multisampled.backends import _torch_nodes  # noqa: E402
from multisampled.backends import torch as torch_backend  # noqa: E402


def mask_reference(labels, candidates):
    """``[B][S]`` bools: candidate ``j`` is the last copy of its value and one of row ``i``'s
    labels."""
    last = {}
    for j, value in enumerate(candidates):
        last[value] = j
    return [[value in row and last[value] == j for j, value in enumerate(candidates)]
            for row in labels]


@st.composite
def ids(draw, max_class=9):
    b, t, s = draw(st.integers(0, 5)), draw(st.integers(1, 3)), draw(st.integers(0, 8))
    cls = st.integers(0, max_class)
    labels = draw(st.lists(st.lists(cls, min_size=t, max_size=t), min_size=b, max_size=b))
    candidates = draw(st.lists(cls, min_size=s, max_size=s))
    return labels, candidates, t, max_class + 1


@given(ids())
@settings(deadline=None)
def test_the_table_mask_is_the_reference_mask(case):
    labels, candidates, t, num_classes = case
    lab = torch.tensor(labels, dtype=torch.int64).reshape(len(labels), t)
    cand = torch.tensor(candidates, dtype=torch.int64)
    got = torch_backend.BACKEND.hit_mask(xtorch, lab, cand, num_classes)
    assert got.dtype == torch.bool and tuple(got.shape) == (len(labels), len(candidates))
    expected = np.array(mask_reference(labels, candidates), dtype=bool).reshape(got.shape)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_the_portable_default_is_the_kernel_mask():
    lab = torch.tensor([[3, 1], [2, 2]])
    cand = torch.tensor([2, 3, 2, 7])
    got = plugin.Backend.hit_mask(torch_backend.BACKEND, xtorch, lab, cand, 8)
    expected = np.array(mask_reference(lab.tolist(), cand.tolist()))
    np.testing.assert_array_equal(got.numpy(), expected)


def test_ids_beyond_the_table_bound_use_the_portable_mask(monkeypatch):
    lab = torch.tensor([[100], [5]])
    cand = torch.tensor([5, 100, 7])
    assert hasattr(torch_backend.BACKEND.hit_mask(xtorch, lab, cand, 200),
                   "_multisampled_hit_positions")  # within the bound: the table
    # with the bound at 4, 200 classes exceed it and the ids' 16 * 5: the table is not built
    monkeypatch.setattr(_unique, "TABLE_CLASSES", 4)
    got = torch_backend.BACKEND.hit_mask(xtorch, lab, cand, 200)
    assert not hasattr(got, "_multisampled_hit_positions")
    np.testing.assert_array_equal(got.numpy(), mask_reference(lab.tolist(), cand.tolist()))


def _problem(seed, B=6, T=2, S=9, D=5, C=12, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (B, T), generator=g)
    candidates = torch.randint(0, C, (S,), generator=g)
    candidates[:3] = labels[:3, 0]  # hits, and a repeated label in row 0
    labels[0, 1] = labels[0, 0]
    x = torch.randn(B, D, generator=g, dtype=dtype)
    rows_w = torch.randn(B * T + S, D, generator=g, dtype=dtype)
    rows_b = torch.randn(B * T + S, generator=g, dtype=dtype)
    log_q = torch.log(torch.rand(B * T + S, generator=g, dtype=dtype) * 0.5 + 0.01)
    return labels, candidates, x, rows_w, rows_b, log_q, C


def _loss_and_grads(x, rows_w, rows_b, log_q, hits, T, joined):
    """The loss and the gradients of ``x`` and the row tensors, with the rows passed as two
    slices of one tensor each (``joined``) or as four separate tensors."""
    x, rows_w, rows_b = (t.detach().clone().requires_grad_() for t in (x, rows_w, rows_b))
    n = x.shape[0] * T
    parts = (rows_w[:n], rows_b[:n], rows_w[n:], rows_b[n:])
    if not joined:
        parts = tuple(p.clone() for p in parts)
    loss = _torch_nodes.sampled_softmax(x, *parts, log_q[:n].view(-1, T), log_q[n:], hits, T)
    assert ("JoinedRowsCE" in type(loss.grad_fn).__name__) == joined
    loss.sum().backward()
    return loss, (x.grad, rows_w.grad, rows_b.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(4))
def test_hit_positions_and_joined_rows_change_no_bit(seed, dtype):
    labels, candidates, x, rows_w, rows_b, log_q, C = _problem(seed, dtype=dtype)
    T = labels.shape[1]
    table = _torch_nodes.hit_mask(labels, candidates, C)
    dense = table.clone()  # the same mask without the kept positions
    assert _torch_nodes._hit_positions(table) is not None
    assert _torch_nodes._hit_positions(dense) is None
    expected = _loss_and_grads(x, rows_w, rows_b, log_q, dense, T, joined=False)
    for hits, joined in ((table, False), (dense, True), (table, True)):
        got = _loss_and_grads(x, rows_w, rows_b, log_q, hits, T, joined)
        assert torch.equal(got[0], expected[0])
        for a, b in zip(got[1], expected[1]):
            assert torch.equal(a, b)


def test_joined_finds_the_tensor_of_two_adjacent_slices_only():
    t = torch.randn(5, 3)
    assert _torch_nodes._joined(t[:2], t[2:]) is t
    assert _torch_nodes._joined(t[:2].clone(), t[2:]) is None
    assert _torch_nodes._joined(t[:2], t[3:]) is None
    assert _torch_nodes._joined(t[1:3], t[3:]) is None
    assert _torch_nodes._joined(t[2:], t[:2]) is None
    assert _torch_nodes._joined(t[:, :2], t[:, 2:]) is None


def test_a_modified_mask_is_read_as_it_is_now():
    labels, candidates, x, rows_w, rows_b, log_q, C = _problem(7)
    T = labels.shape[1]
    table = _torch_nodes.hit_mask(labels, candidates, C)
    before = _loss_and_grads(x, rows_w, rows_b, log_q, table.clone(), T, joined=False)
    i, j = (~table).nonzero()[0].tolist()
    table[i, j] = True  # in place: the kept positions no longer describe the mask
    assert _torch_nodes._hit_positions(table) is None
    got = _loss_and_grads(x, rows_w, rows_b, log_q, table, T, joined=True)
    expected = _loss_and_grads(x, rows_w, rows_b, log_q, table.clone(), T, joined=False)
    assert torch.equal(got[0], expected[0])
    assert not torch.equal(got[0], before[0])


@pytest.mark.parametrize("joined", [False, True])
def test_a_retained_graph_gives_the_same_gradients_twice(joined):
    labels, candidates, x, rows_w, rows_b, log_q, C = _problem(3)
    T = labels.shape[1]
    hits = _torch_nodes.hit_mask(labels, candidates, C)
    x = x.clone().requires_grad_()
    n = x.shape[0] * T
    w = rows_w.clone().requires_grad_()
    parts = (w[:n], rows_b[:n], w[n:], rows_b[n:]) if joined else (
        w[:n].clone(), rows_b[:n].clone(), w[n:].clone(), rows_b[n:].clone())
    loss = _torch_nodes.sampled_softmax(x, *parts, log_q[:n].view(-1, T), log_q[n:], hits, T)
    loss.sum().backward(retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    loss.sum().backward()
    assert torch.equal(x.grad, first)
