"""The torch backend's Triton sampler kernels (``multisampled.backends._torch_triton``), bitwise.

Triton's interpreter (``TRITON_INTERPRET=1``) runs the kernels on CPU tensors. The variable
must be set before triton is imported, so :func:`test_triton_kernels_under_the_interpreter`
runs this file's kernel tests in a child pytest process with it set; in the test process
itself they skip. Every kernel is compared with the core's portable definition (through the
public :mod:`multisampled.kernels` functions or the NumPy backend's samplers) and with the
independent reference model (:mod:`multisampled.conformance.reference`); the conformance kit's
sampler-truth group also runs with the torch backend's capabilities routed to the kernels, and
:func:`test_triton_kernels_compile_for_a_hopper_gpu` compiles every kernel for sm_90.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import array_api_compat.numpy as xnp  # noqa: E402
import array_api_compat.torch as xtorch  # noqa: E402

import multisampled as ms  # noqa: E402
from multisampled import kernels  # noqa: E402
from multisampled.backends import _torch_nodes, _torch_triton, _torch_triton_ce  # noqa: E402
from multisampled.backends import torch as torch_backend  # noqa: E402
from multisampled.conformance import reference  # noqa: E402
from multisampled.conformance.base import SamplerTruthTests  # noqa: E402

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
in_interpreter = pytest.mark.skipif(
    not INTERPRETED,
    reason="runs in the TRITON_INTERPRET=1 child of test_triton_kernels_under_the_interpreter")

KEYS = [(0, 0), (1, 1), (0x12345678, 0x9ABCDEF0), (2**31 - 1, 2**31), (2**32 - 1, 2**32 - 1)]
CPU = torch.device("cpu")


@pytest.fixture
def triton():
    """Skips without triton. Only the interpreter children import it: this process may hold
    TensorFlow, beside which some triton releases abort at import (see .ci/constraints.txt)."""
    if not INTERPRETED:
        if importlib.util.find_spec("triton") is None:
            pytest.skip("triton is not installed")
        return None
    return pytest.importorskip("triton")


def test_triton_kernels_under_the_interpreter(triton, tmp_path):
    """This file's kernel tests in a child pytest process with ``TRITON_INTERPRET=1``."""
    if INTERPRETED:
        pytest.skip("already in the interpreter child")
    env = dict(os.environ, TRITON_INTERPRET="1")
    env.pop("MULTISAMPLED_BACKEND", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", __file__,
           "-k", "not under_the_interpreter and not without_triton and not compile_for"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    out = (result.stdout[-6000:] + result.stderr[-2000:]).strip()
    assert result.returncode == 0, out
    assert " passed" in result.stdout and "skipped" not in result.stdout, out


COMPILE_FOR_SM90 = """
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from multisampled.backends import _torch_triton, _torch_triton_ce

k = _torch_triton._kernels()
ptr, key = "*i64", lambda mem: "*i64" if mem else "i64"
variants = []
for mem in (False, True):
    variants.append((k.threefry, dict(k0=key(mem), k1=key(mem), c0_ptr=ptr, c1_ptr=ptr,
                                      y0_ptr=ptr, y1_ptr=ptr, n="i32"),
                     dict(K0_MEM=mem, K1_MEM=mem, BLOCK=_torch_triton.BLOCK)))
    for mode, steps in ((0, 0), (1, 20)):
        variants.append((k.draw_classes, dict(
            k0=key(mem), k1=key(mem), call=key(mem), start=key(mem), out_ptr=ptr, count="i32",
            n_hi="i32", n_lo="i64", keys_ptr=ptr, num_keys="i32"), dict(
            K0_MEM=mem, K1_MEM=mem, CALL_MEM=mem, START_MEM=mem, MODE=mode, STEPS=steps,
            BLOCK=_torch_triton.BLOCK)))
variants.append((k.first_positions, dict(classes_ptr=ptr, table_ptr="*i32", n="i32"),
                 dict(BLOCK=_torch_triton.BLOCK)))
variants.append((k.select_first, dict(classes_ptr=ptr, table_ptr="*i32", cand_ptr=ptr,
                                      tries_ptr=ptr, n="i32", s="i32"),
                 dict(BLOCK=_torch_triton.SELECT_BLOCK)))
ce, f32 = _torch_triton_ce._kernels(), "*fp32"
for t_block in (1, 4):
    blocks = dict(BLOCK=_torch_triton_ce.ROW_BLOCK, T_BLOCK=t_block)
    variants.append((ce.ce_forward, dict(z_ptr=f32, true_ptr=f32, lse_ptr=f32, loss_ptr=f32,
                                         S="i32", T="i32"), dict(blocks)))
    variants.append((ce.ce_backward, dict(z_ptr=f32, gz_ptr=f32, true_ptr=f32, d_true_ptr=f32,
                                          lse_ptr=f32, g_ptr=f32, S="i32", T="i32"),
                     dict(blocks)))
for fn, sig, constexprs in variants:
    sig.update({name: "constexpr" for name in constexprs})
    compiled = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs),
                              target=GPUTarget("cuda", 90, 32))
    assert ".target sm_90" in compiled.asm["ptx"] and compiled.asm["cubin"], fn
print("compiled", len(variants))
"""


def test_triton_kernels_compile_for_a_hopper_gpu(triton, tmp_path):
    """Every kernel, in the argument types the wrappers pass, compiles to sm_90 machine code
    (Triton's own compiler and ptxas; no GPU needed), in a child with a fresh kernel cache."""
    if INTERPRETED:
        pytest.skip("the interpreter compiles nothing")
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("TRITON_INTERPRET", None)
    result = subprocess.run([sys.executable, "-c", COMPILE_FOR_SM90], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "compiled 12" in result.stdout, (
        result.stdout[-3000:] + result.stderr[-3000:])


def _words(key, c0, c1):
    """The Triton kernel's words for int and for 0-d tensor keys (they must agree)."""
    a = _torch_triton.threefry2x32(key[0], key[1], torch.as_tensor(c0), torch.as_tensor(c1))
    b = _torch_triton.threefry2x32(torch.tensor(key[0]), torch.tensor(key[1]),
                                   torch.as_tensor(c0), torch.as_tensor(c1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].dtype == torch.int64 and a[0].shape == np.broadcast_shapes(np.shape(c0),
                                                                          np.shape(c1))
    return a[0].numpy(), a[1].numpy()


@in_interpreter
def test_triton_threefry_known_answers(triton):
    for key, (c0, c1), want in reference.THREEFRY2X32_KAT:
        x0, x1 = _words(key, np.array([c0], np.int64), np.array([c1], np.int64))
        assert (int(x0[0]), int(x1[0])) == want


@in_interpreter
@pytest.mark.parametrize("key", KEYS)
def test_triton_threefry_matches_core_and_reference(triton, key):
    rng = np.random.default_rng(key[0] ^ key[1])
    c0 = rng.integers(0, 2**32, (3, 1), dtype=np.int64)  # broadcast against c1
    c1 = np.concatenate([[0, 1, 2**31, 2**32 - 1], rng.integers(0, 2**32, 1500)])[None, :]
    x0, x1 = _words(key, c0, c1)
    core = kernels.threefry2x32(xnp, key[0], key[1], *np.broadcast_arrays(
        c0.astype(np.uint32), c1.astype(np.uint32)))
    ref = reference.threefry2x32_array(key[0], key[1], c0, c1)
    for got, c, r in zip((x0, x1), core, ref):
        assert np.array_equal(got, c.astype(np.int64))
        assert np.array_equal(got, r.astype(np.int64))


@in_interpreter
def test_triton_threefry_reads_counters_mod_2_32(triton):
    # the torch backend's int64 words: only the low 32 bits of a counter count, as in the core
    c = torch.tensor([5, 2**32 + 5, -(2**32) + 5])
    x0, x1 = _torch_triton.threefry2x32(7, 8, c, c)
    assert len(set(x0.tolist())) == 1 and len(set(x1.tolist())) == 1
    assert (int(x0[0]), int(x1[0])) == reference.threefry2x32(7, 8, 5, 5)


@in_interpreter
@pytest.mark.parametrize("range_max", [1, 2, 7, 1000, 793_472, 2**31 + 1, 2**32 - 1, 2**32,
                                       2**40 + 3, 2**63 - 1])
def test_triton_uniform_classes_match_core_and_reference(triton, range_max):
    key, call, count = (0x2468ACE0, 0x13579BDF), 3, 1200
    got = _torch_triton.draw_classes(*key, call, 0, count, device=CPU, uniform_range=range_max)
    want, tries = reference.reference_candidates("uniform", key, call, count, False, range_max)
    assert tries == count and np.array_equal(got.numpy(), want)
    # the core's portable mapping of the core's words (int64 torch words, as on every device)
    c1 = torch.arange(count, dtype=torch.int64)
    hi, lo = kernels.threefry2x32(xtorch, *key, torch.full_like(c1, call), c1)
    assert torch.equal(got, kernels.uniform_int(xtorch, hi, lo, range_max))


@in_interpreter
def test_triton_draw_classes_offsets_and_tensor_arguments(triton):
    key, call, start, count = (11, 12), 9, 700, 900
    whole = _torch_triton.draw_classes(*key, call, 0, start + count, device=CPU,
                                       uniform_range=10_007)
    part = _torch_triton.draw_classes(*key, call, start, count, device=CPU,
                                      uniform_range=10_007)
    traced = _torch_triton.draw_classes(*(torch.tensor(k) for k in key), torch.tensor(call),
                                        torch.tensor(start), count, device=CPU,
                                        uniform_range=10_007)
    assert torch.equal(part, whole[start:]) and torch.equal(traced, part)
    with pytest.raises(ValueError, match="32-bit draw counter"):
        _torch_triton.draw_classes(*key, call, 2**32 - 10, 11, device=CPU, uniform_range=5)
    with pytest.raises(ValueError, match="exactly one"):
        _torch_triton.draw_classes(*key, call, 0, 4, device=CPU)


def _log_uniform_keys(range_max):
    """The core's device table of the log-uniform CDF (int64 signed keys, as for torch)."""
    tables = kernels.table_plan("torch", CPU, ("log_uniform", range_max), "int64")[0]
    return tables[0]


@in_interpreter
@pytest.mark.parametrize("range_max", [1, 2, 10, 1000, 100_000])
def test_triton_log_uniform_classes_match_core_and_reference(triton, range_max):
    seed, s = 2**40 + 77, 1500
    key = (seed >> 32, seed & 0xFFFFFFFF)
    got = _torch_triton.draw_classes(*key, 0, 0, s, device=CPU,
                                     cdf_keys=_log_uniform_keys(range_max))
    want, _ = reference.reference_candidates("log_uniform", key, 0, s, False, range_max)
    assert np.array_equal(got.numpy(), want)
    core = ms.log_uniform_candidate_sampler(np.zeros((1, 1), np.int64), 1, s, False, range_max,
                                            seed=ms.Generator(seed), backend="numpy")
    assert np.array_equal(got.numpy(), core[0])


def _reference_signed_keys(unigrams):
    """The reference's fixed-unigram thresholds as int64 signed keys (threshold - 2**63)."""
    w = reference.fixed_unigram_weights_float32(unigrams)
    cum = np.cumsum(w.astype(np.float64))
    thresholds = reference.cdf_threshold_ints(cum[:-1] / cum[-1])
    return torch.tensor([t - 2**63 for t in thresholds], dtype=torch.int64)


@in_interpreter
def test_triton_fixed_unigram_classes_match_core_and_reference(triton):
    unigrams = [5.0, 0.0, 1.0, 3.0, 0.0, 0.0, 7.5, 2.0, 0.25, 9.0, 0.0]
    seed, s = 99, 2000
    key = (0, seed)
    got = _torch_triton.draw_classes(*key, 0, 0, s, device=CPU,
                                     cdf_keys=_reference_signed_keys(unigrams))
    want, _ = reference.reference_candidates("fixed_unigram", key, 0, s, False, len(unigrams),
                                             unigrams=unigrams)
    assert np.array_equal(got.numpy(), want)
    core = ms.fixed_unigram_candidate_sampler(np.zeros((1, 1), np.int64), 1, s, False,
                                              len(unigrams), unigrams=unigrams,
                                              seed=ms.Generator(seed), backend="numpy")
    assert np.array_equal(got.numpy(), core[0])
    assert not np.isin(got.numpy(), [1, 4, 5, 10]).any()  # zero weights are never drawn


@in_interpreter
def test_triton_cdf_search_counts_thresholds_equal_to_a_draw(triton):
    """A draw equal to a threshold is in the class after it (``threshold <= u``): thresholds
    made of the draws themselves, their neighbours and the ends of the range."""
    import bisect

    key, call, count = (3, 4), 1, 64
    draws = reference.sampler_draws(key, call, 0, count)  # X = u * 2**64, Python ints
    thresholds = sorted({0, 1, 2**64 - 1} | set(draws[::2]) | {x + 1 for x in draws[1::4]})
    keys = torch.tensor([t - 2**63 for t in thresholds], dtype=torch.int64)
    got = _torch_triton.draw_classes(*key, call, 0, count, device=CPU, cdf_keys=keys)
    assert got.tolist() == [bisect.bisect_right(thresholds, x) for x in draws]
    th = np.array(thresholds, dtype=np.uint64)
    hi, lo = kernels.threefry2x32(xnp, *key, np.full(count, call, np.uint32),
                                  np.arange(count, dtype=np.uint32))
    core = kernels.search_cdf(xnp, hi, lo, (th >> np.uint64(32)).astype(np.uint32),
                              (th & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    assert np.array_equal(got.numpy(), core.astype(np.int64))


@in_interpreter
@pytest.mark.parametrize("num_classes, n, s", [(1, 1, 1), (5, 40, 5), (50, 400, 1),
                                               (50, 400, 37), (3000, 5000, 1500),
                                               (40, 300, 45)])
def test_triton_first_distinct_matches_core_and_reference(triton, num_classes, n, s):
    rng = np.random.default_rng(n + s)
    draws = np.minimum(rng.geometric(min(1.0, 4.0 / num_classes), n) - 1, num_classes - 1)
    got, tries = _torch_triton.first_distinct(torch.from_numpy(draws), s, num_classes)
    core, core_tries = kernels.portable_first_distinct(xnp, draws, s, num_classes)
    assert got.dtype == torch.int64 and got.shape == (s,) and tries.shape == ()
    assert np.array_equal(got.numpy(), core) and int(tries) == int(core_tries)
    if len(np.unique(draws)) >= s:
        want, want_tries = reference.unique_sampling_trace(draws, s)
        assert np.array_equal(got.numpy(), want) and int(tries) == want_tries
    else:  # too few distinct classes: n + 1 tries (the caller's check fails on it)
        assert int(tries) == n + 1


@in_interpreter
@pytest.mark.parametrize("kind, range_max, s", [("log_uniform", 5000, 600),
                                                ("uniform", 3000, 1000)])
def test_triton_unique_sampler_kernels_match_core_and_reference(triton, kind, range_max, s):
    """Draws, classes and selection: the candidates and tries of one unique sampler call."""
    seed = 2**33 + 5
    key = (seed >> 32, seed & 0xFFFFFFFF)
    n = 1 << (kernels.block_bound((kind, range_max), s) - 1).bit_length()  # the core's block
    table = ({"cdf_keys": _log_uniform_keys(range_max)} if kind == "log_uniform"
             else {"uniform_range": range_max})
    classes = _torch_triton.draw_classes(*key, 0, 0, n, device=CPU, **table)
    got, tries = _torch_triton.first_distinct(classes, s, range_max)
    want, want_tries = reference.reference_candidates(kind, key, 0, s, True, range_max)
    assert np.array_equal(got.numpy(), want) and int(tries) == want_tries
    sampler = getattr(ms, f"{kind}_candidate_sampler")
    core = sampler(np.zeros((1, 1), np.int64), 1, s, True, range_max,
                   seed=ms.Generator(seed), backend="numpy")
    assert np.array_equal(got.numpy(), core[0])


@in_interpreter
@pytest.mark.parametrize("sampler", ["log_uniform", "uniform"])
def test_triton_kernels_behind_the_torch_backend_sample_as_numpy(triton, monkeypatch, sampler):
    """The torch backend's ``draw_classes``, ``threefry2x32`` and ``first_distinct`` routed to
    the kernels (here for CPU tensors, which the backend otherwise keeps on its CPU paths):
    the module's and the functional API's candidates equal the NumPy backend's, and the draws
    come from the fused kernel (the words alone from Threefry only where nothing else can)."""
    from multisampled.torch import SampledSoftmaxLoss

    calls = {"threefry2x32": 0, "first_distinct": 0, "draw_classes": 0}

    def counted(name):
        fn = getattr(_torch_triton, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(_torch_triton, "usable", lambda *values: True)
    for name in calls:
        monkeypatch.setattr(_torch_triton, name, counted(name))
    C, S, seed = 4000, 300, 2**35 + 3
    labels = torch.randint(0, C, (16, 1), generator=torch.Generator().manual_seed(0))
    module = SampledSoftmaxLoss(C, 8, S, sampler=sampler, seed=seed)
    fn = getattr(ms, f"{sampler}_candidate_sampler")
    numpy_stream, torch_stream = ms.Generator(seed), ms.Generator(seed)
    for _ in range(2):
        got = module.sample(labels)
        want = fn(labels.numpy(), 1, S, True, C, seed=numpy_stream, backend="numpy")
        assert np.array_equal(got[0].numpy(), want[0])
        np.testing.assert_array_max_ulp(got[2].numpy(), want[2], maxulp=2)
        functional = fn(labels, 1, S, True, C, seed=torch_stream)
        assert torch.equal(functional[0], got[0])
    assert calls["draw_classes"] >= 4 and calls["first_distinct"] >= 4, calls


def test_kernel_routing_keeps_cpu_tensors_on_todays_path():
    c = torch.arange(4)
    assert not _torch_triton.usable(c, c, 1, 2)
    assert not _torch_triton.usable(1, 2)  # no tensor, no device
    got = torch_backend.BACKEND.threefry2x32(xtorch, 3, 4, c, c)
    want = reference.threefry2x32_array(3, 4, c.numpy(), c.numpy())
    assert all(np.array_equal(g.numpy(), w.astype(np.int64)) for g, w in zip(got, want))


def test_kernel_module_and_torch_backend_work_without_triton(tmp_path):
    """With triton unimportable the kernel module imports, says it is unusable, and the torch
    backend samples as before (a child process, so no import state leaks)."""
    code = (
        "import sys\n"
        "sys.modules['triton'] = None\n"  # makes `import triton` raise ImportError
        "import torch\n"
        "import multisampled as ms\n"
        "from multisampled.backends import _torch_triton\n"
        "assert not _torch_triton.triton_available()\n"
        "labels = torch.zeros((2, 1), dtype=torch.int64)\n"
        "got = ms.log_uniform_candidate_sampler(labels, 1, 50, True, 1000, seed=ms.Generator(4))\n"
        "want = ms.log_uniform_candidate_sampler(labels.numpy(), 1, 50, True, 1000,\n"
        "                                        seed=ms.Generator(4), backend='numpy')\n"
        "assert (got[0].numpy() == want[0]).all()\n"
        "assert 'triton' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        "print('OK')\n"
    )
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr


@in_interpreter
class TestTritonKernelsSamplerTruth(SamplerTruthTests):
    """The conformance kit's sampler-truth group (Threefry words, every sampler's candidates
    and counts against the reference, seed streams) on the torch backend with its
    ``draw_classes``, ``threefry2x32`` and ``first_distinct`` served by the Triton kernels (CPU
    tensors here)."""

    backend = "torch"

    @pytest.fixture(autouse=True)
    def _route_to_triton_kernels(self, monkeypatch):
        pytest.importorskip("triton")
        calls = []

        def counted(real):
            def kernel(*args, **kwargs):
                calls.append(real.__name__)
                return real(*args, **kwargs)
            return kernel

        monkeypatch.setattr(_torch_triton, "usable", lambda *values: True)
        for name in ("threefry2x32", "draw_classes"):
            monkeypatch.setattr(_torch_triton, name, counted(getattr(_torch_triton, name)))
        yield
        assert calls, "no Triton kernel drew the words"


# ------------------------------------------------------------------------------ the loss kernels

FLT_MAX = float(np.finfo(np.float32).max)


def _logits(B, S, T, seed, scale=4.0):
    """Float32 ``z [B, S]`` with accidental hits applied as the node applies them, true logits
    ``[B, T]`` and an incoming gradient ``g [B]``: some rows hold hits, row 0 only hits (where
    ``S > 1``), row 1 logits of +-80 (where ``B > 1``)."""
    rng = np.random.default_rng(seed)
    z = torch.from_numpy((rng.standard_normal((B, S)) * scale).astype(np.float32))
    true = torch.from_numpy((rng.standard_normal((B, T)) * scale).astype(np.float32))
    hits = torch.from_numpy(rng.random((B, S)) < 0.1)
    if S > 1:
        hits[0] = True
    if B > 1:
        z[1] = torch.from_numpy(rng.choice([-80.0, 80.0], S).astype(np.float32))
        true[1] = torch.from_numpy(rng.choice([-80.0, 79.0], T).astype(np.float32))
    _torch_nodes._add_hits(z, hits)
    g = torch.from_numpy(rng.uniform(0.25, 2.0, B).astype(np.float32))
    return z, true, g


def _float64_softmax_ce(z, true, g):
    """``(loss, lse, gz, d_true)`` in float64 of the float32 inputs: the node's formula."""
    a = torch.cat([true, z], dim=1).double()
    lse = torch.logsumexp(a, dim=1)
    p = torch.exp(a - lse[:, None]) * g.double()[:, None]
    T = true.shape[1]
    return lse - true.double().mean(dim=1), lse, p[:, T:], p[:, :T] - g.double()[:, None] / T


def _assert_within_float32_rounding(got, want, spread, offset=0.0):
    """``|got - want| <= 16 eps32 ((1 + spread) |want - offset| + |offset|)`` elementwise
    (``spread``: the size of the exponent's terms, ``offset`` a term subtracted from the
    exponential), no NaN, exact zeros where ``want`` is 0."""
    eps = float(np.finfo(np.float32).eps)
    err = (got.double() - want).abs()
    bound = 16 * eps * ((1 + spread) * (want - offset).abs() + abs(offset)) + 1e-37
    assert not torch.isnan(got).any()
    assert (err <= bound).all(), float((err / bound).max())


def _identity_problem(z, true):
    """Inputs of the node's ``_forward`` whose logits are exactly ``z`` (hits applied) and
    ``true``: ``x`` the identity (D = B), the sampled rows ``z^T``, the true rows
    ``true[i, t] e_i``, zero biases and log Q, no hit mask."""
    B, S = z.shape
    T = true.shape[1]
    x = torch.eye(B)
    true_w = (true[:, :, None] * torch.eye(B)[:, None, :]).reshape(B * T, B)
    zeros = torch.zeros
    return (x, true_w, zeros(B * T), z.t().contiguous(), zeros(S), zeros(B, T), zeros(S),
            None, T, torch.float32)


@in_interpreter
@pytest.mark.parametrize("B, S", [(1, 1), (2, 16), (3, 17), (7, 300), (5, 64), (4, 2)])
@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.parametrize("block", [16, None])
def test_triton_softmax_ce_kernels_match_float64_and_the_torch_path(triton, B, S, T, block):
    z, true, g = _logits(B, S, T, seed=B * 1000 + S * 10 + T)
    loss, lse = _torch_triton_ce.softmax_ce_forward(z, true, block=block)
    want_loss, want_lse, want_gz, want_d_true = _float64_softmax_ce(z, true, g)
    spread = torch.maximum(want_lse.abs(), true.double().abs().amax(dim=1))
    _assert_within_float32_rounding(lse, want_lse, spread)
    # the loss subtracts the mean true logit: its rounding is the terms' size, not the result's
    err = (loss.double() - want_loss).abs()
    assert (err <= 16 * float(np.finfo(np.float32).eps) * (1 + spread)).all()
    kept = z.clone()
    gz, d_true = _torch_triton_ce.softmax_ce_backward(kept, true, lse, g, in_place=True,
                                                      block=block)
    assert gz.data_ptr() == kept.data_ptr()  # written over z
    finite = torch.where(z > -FLT_MAX / 2, z.abs().double(), 0.0)
    _assert_within_float32_rounding(gz, want_gz, finite + lse.double().abs()[:, None])
    assert torch.equal(gz[z <= -FLT_MAX / 2], torch.zeros_like(gz[z <= -FLT_MAX / 2]))
    d_spread = true.double().abs() + lse.double().abs()[:, None]
    offset = -g.double()[:, None] / T
    _assert_within_float32_rounding(d_true, want_d_true, d_spread, offset)
    # the torch path (the node's _forward and _backward on CPU) on the same logits
    problem = _identity_problem(z, true)
    torch_loss, e, e_true, total, fused = _torch_nodes._forward(*problem)
    assert not fused
    assert ((loss.double() - torch_loss.double()).abs()
            <= 16 * float(np.finfo(np.float32).eps) * (1 + spread)).all()
    grads = _torch_nodes._backward(g, *problem[:5], e, e_true, total, T, torch.float32)
    _assert_within_float32_rounding(gz, grads[3].t().double(), finite + lse.double().abs()[:, None])
    _assert_within_float32_rounding(d_true, grads[2].view(B, T).double(), d_spread, offset)


@in_interpreter
def test_triton_softmax_ce_backward_keeps_z_where_asked(triton):
    z, true, g = _logits(3, 40, 2, seed=5)
    _, lse = _torch_triton_ce.softmax_ce_forward(z, true)
    kept = z.clone()
    gz, _ = _torch_triton_ce.softmax_ce_backward(kept, true, lse, g, in_place=False)
    assert torch.equal(kept, z) and gz.data_ptr() != kept.data_ptr()
    again, _ = _torch_triton_ce.softmax_ce_backward(kept, true, lse, g, in_place=True)
    assert torch.equal(again, gz)
    with pytest.raises(ValueError, match="float32"):
        _torch_triton_ce.softmax_ce_forward(z.double(), true.double())


def _loss_and_grads(make_loss, params):
    """The loss and the dense gradients of ``params`` after one backward, and after a second
    backward of a retained graph (which must not see the first one's in-place writes)."""
    for p in params:
        p.grad = None
    loss = make_loss()
    loss.sum().backward(retain_graph=True)
    first = [p.grad.to_dense().clone() for p in params]
    for p in params:
        p.grad = None
    loss.mean().backward()
    second = [p.grad.to_dense() * loss.shape[0] for p in params]
    return loss.detach(), first, second


@in_interpreter
@pytest.mark.parametrize("num_true", [1, 3])
def test_triton_loss_kernels_behind_the_nodes_match_the_torch_path(triton, monkeypatch,
                                                                    num_true):
    """SampledSoftmaxLoss (dense and sparse) and the functional loss on CPU tensors, routed
    to the kernels: the same losses and gradients as the torch path, with accidental hits."""
    from multisampled.torch import SampledSoftmaxLoss

    C, D, S, B, seed = 60, 8, 40, 7, 2**34 + 9
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, C, (B, num_true), generator=gen)
    x = torch.randn(B, D, generator=gen, requires_grad=True)
    weights = torch.randn(C, D, generator=gen).requires_grad_(True)
    biases = torch.randn(C, generator=gen).requires_grad_(True)

    def runs():
        out = []
        for sparse in (False, True):
            module = SampledSoftmaxLoss(C, D, S, num_true=num_true, seed=seed, sparse=sparse)
            with torch.no_grad():
                module.weight.copy_(weights)
                module.bias.copy_(biases)
            out.append(_loss_and_grads(lambda: module(x, labels),
                                       [x, module.weight, module.bias]))
        out.append(_loss_and_grads(lambda: ms.sampled_softmax_loss(
            weights, biases, labels, x, S, C, num_true=num_true, seed=ms.Generator(seed)),
            [x, weights, biases]))
        return out

    calls = {"softmax_ce_forward": 0, "softmax_ce_backward": 0}
    for name in calls:
        def counted(*args, _fn=getattr(_torch_triton_ce, name), _name=name, **kwargs):
            calls[_name] += 1
            return _fn(*args, **kwargs)
        monkeypatch.setattr(_torch_triton_ce, name, counted)
    want = runs()
    assert calls == {"softmax_ce_forward": 0, "softmax_ce_backward": 0}  # CPU: the torch path
    monkeypatch.setattr(_torch_triton, "usable", lambda *values: True)
    got = runs()
    assert calls == {"softmax_ce_forward": 3, "softmax_ce_backward": 6}, calls
    for (loss, first, second), (want_loss, want_first, want_second) in zip(got, want):
        torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-6)
        for a, b, c in zip(first, second, want_first):
            torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6)
    assert any(bool((loss != 0).all()) for loss, _, _ in got)
