"""Triton kernels of the torch backend's sampler, for CUDA tensors.

The same bits as the core's portable definitions, in a handful of kernel launches instead of
about 150 small torch operations:

* :func:`threefry2x32`: Threefry-2x32-20 of counter arrays, one kernel
  (:func:`multisampled.kernels.threefry2x32`);
* :func:`draw_classes`: the draws ``start .. start+count-1`` of one sampler call mapped to
  classes in the same kernel: ``floor(u * R)`` (:func:`multisampled.kernels.uniform_int`) or the
  number of CDF thresholds ``<= u`` (the log-uniform and fixed-unigram tables of
  :func:`multisampled.kernels.table_plan`, searched as ``search_cdf`` does);
* :func:`first_distinct`: TensorFlow's first-occurrence selection, two kernels
  (:func:`multisampled.kernels.portable_first_distinct`): every class's first draw position by
  ``atomic_min`` into a per-class table (the minimum does not depend on the order of the
  atomics), then one program that ranks the first occurrences in draw order and stops once
  ``num_sampled`` are kept.

Words are ``uint32`` inside the kernels and int64 holding 32-bit values outside, as the torch
backend keeps them. Keys, call indices and draw offsets are Python ints (kernel arguments) or
0-d tensors on the counters' device (read by the kernel, so nothing is copied to the host and a
CUDA graph replays with the tensors' current values).

Triton is imported on the first kernel call; :func:`usable` says whether the kernels serve a
set of tensors. Under ``TRITON_INTERPRET=1`` the kernels also run on CPU tensors (the tests).
"""

from __future__ import annotations

import functools
import threading
import types

import torch

MASK32 = 0xFFFFFFFF
BLOCK = 1024  # draws per program of the elementwise kernels
SELECT_BLOCK = 2048  # draws per step of the selection program


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    """Whether ``triton`` imports (checked once)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


def usable(*values) -> bool:
    """Whether the kernels serve these values (tensors, devices and Python ints): every tensor
    a plain CUDA tensor, on one device with the devices given, outside a ``torch.compile``
    trace and ``torch.func`` transforms (CUDA-graph capture is fine), and triton importable."""
    if torch.compiler.is_compiling():
        return False
    devices = set()
    for v in values:
        if isinstance(v, torch.device):
            if v.type != "cuda":
                return False
            devices.add(torch.device("cuda", torch.cuda.current_device()) if v.index is None
                        else v)
        elif isinstance(v, torch.Tensor):
            if type(v) is not torch.Tensor or v.device.type != "cuda":
                return False
            devices.add(v.device)
    if len(devices) != 1:
        return False
    probe = getattr(torch._C, "_are_functorch_transforms_active", None)
    if probe is not None and probe():
        return False
    return triton_available()


def _word_arg(value, device):
    """A key word, call index or offset as a kernel argument: ``(value, in_memory)``. A Python
    int becomes ``2**32 + (value mod 2**32)``: always above 2**31, so triton types it int64 for
    every value (one compiled kernel, not one per argument type) and the kernel's truncation to
    32 bits gives back the word. A tensor becomes a 0-d int64 tensor on ``device``."""
    if isinstance(value, int):
        return (value & MASK32) | (1 << 32), False
    t = value.reshape(())
    if t.dtype != torch.int64:
        t = t.to(torch.int64)
    if t.device != device:
        raise ValueError(
            f"Triton sampler kernels: a key or counter tensor is on {t.device}, the counters "
            f"on {device}; expected one device")
    return t, True


def threefry2x32(key0, key1, c0: torch.Tensor, c1: torch.Tensor):
    """``(x0, x1)``: int64 tensors of the broadcast shape of ``c0, c1`` (int64 tensors holding
    32-bit counters), the words of :func:`multisampled.kernels.threefry2x32`."""
    k = _kernels()
    c0, c1 = torch.broadcast_tensors(c0, c1)
    shape, device = c0.shape, c0.device
    a0, a1 = c0.reshape(-1).contiguous(), c1.reshape(-1).contiguous()
    n = a0.numel()
    y0 = torch.empty(shape, dtype=torch.int64, device=device)
    y1 = torch.empty(shape, dtype=torch.int64, device=device)
    if n:
        k0, k0_mem = _word_arg(key0, device)
        k1, k1_mem = _word_arg(key1, device)
        grid = (k.cdiv(n, BLOCK),)
        k.threefry[grid](k0, k1, a0, a1, y0, y1, n, K0_MEM=k0_mem, K1_MEM=k1_mem, BLOCK=BLOCK)
    return y0, y1


def draw_classes(key0, key1, call_index, start, count: int, *, device, uniform_range=None,
                 cdf_keys=None) -> torch.Tensor:
    """The classes (int64 ``[count]``) of draws ``start .. start+count-1`` of the sampler call
    ``call_index`` under the key ``(key0, key1)``, in one kernel.

    Exactly one of ``uniform_range`` (``R`` in ``[1, 2**63)``: class ``floor(u * R)``) and
    ``cdf_keys`` (the int64 signed threshold keys of a table distribution, as
    ``kernels.table_plan(..., "int64")`` builds them: class = the number of thresholds
    ``<= u``). Keys, the call index and ``start`` are Python ints or 0-d tensors on ``device``.
    """
    if (uniform_range is None) == (cdf_keys is None):
        raise ValueError("draw_classes: pass exactly one of uniform_range and cdf_keys")
    k = _kernels()
    device = torch.device(device)
    out = torch.empty((count,), dtype=torch.int64, device=device)
    if count == 0:
        return out
    if isinstance(start, int) and (start < 0 or start + count > 2**32):
        raise ValueError(
            f"draw_classes: draw indices [{start}, {start + count}) leave the 32-bit draw "
            "counter [0, 2**32)")
    args = [_word_arg(v, device) for v in (key0, key1, call_index, start)]
    if uniform_range is not None:
        if not isinstance(uniform_range, int) or not 1 <= uniform_range < 2**63:
            raise ValueError(
                f"draw_classes: uniform_range must be an int in [1, 2**63); got {uniform_range!r}")
        n_hi, n_lo, table, num_keys, steps, mode = (
            uniform_range >> 32, uniform_range & MASK32, out, 0, 0, 0)
    else:
        if cdf_keys.dtype != torch.int64 or cdf_keys.ndim != 1 or cdf_keys.device != device:
            raise ValueError(
                "draw_classes: cdf_keys must be a 1-D int64 tensor on the draws' device; got "
                f"{cdf_keys.dtype} of shape {tuple(cdf_keys.shape)} on {cdf_keys.device}")
        num_keys = int(cdf_keys.shape[0])
        n_hi, n_lo, table, steps, mode = 0, 0, cdf_keys.contiguous(), num_keys.bit_length(), 1
    grid = (k.cdiv(count, BLOCK),)
    k.draw_classes[grid](
        args[0][0], args[1][0], args[2][0], args[3][0], out, count, n_hi, n_lo, table,
        max(num_keys, 1), K0_MEM=args[0][1], K1_MEM=args[1][1], CALL_MEM=args[2][1],
        START_MEM=args[3][1], MODE=mode, STEPS=steps, BLOCK=BLOCK)
    return out


def first_distinct(classes: torch.Tensor, s: int, num_classes: int):
    """``(candidates [s], num_tries 0-d int64)``: the first ``s`` distinct classes of the draws
    ``classes [n]`` (ids in ``[0, num_classes)``) in draw order, and the position of the
    ``s``-th plus 1; ``n + 1`` when the draws hold fewer, whose missing slots hold the last
    draw's class (:func:`multisampled.kernels.portable_first_distinct`)."""
    k = _kernels()
    n = int(classes.shape[0])
    if n == 0 or n >= 2**31 - 1:
        raise ValueError(f"first_distinct: expected 1 <= n < 2**31 - 1 draws; got n={n}")
    device = classes.device
    classes = classes.contiguous()
    table = torch.full((num_classes,), n, dtype=torch.int32, device=device)
    k.first_positions[(k.cdiv(n, BLOCK),)](classes, table, n, BLOCK=BLOCK)
    candidates = torch.empty((s,), dtype=classes.dtype, device=device)
    tries = torch.empty((1,), dtype=torch.int64, device=device)
    k.select_first[(1,)](classes, table, candidates, tries, n, s, BLOCK=SELECT_BLOCK,
                         num_warps=8)
    return candidates, tries[0]


# ------------------------------------------------------------------------------ kernels
#
# Triton compiles a kernel from its source and resolves the names it calls (``tl``, the helper
# functions) in its module's globals. The kernels are therefore plain functions there, recorded
# by a :class:`LazyKernels`; calling it imports triton on first use and replaces each with its
# jitted version, which keeps triton an optional import.


class LazyKernels:
    """The kernels of one module: ``jit(**options)`` records a plain function, and calling the
    object returns a namespace of their jitted versions, each named without its leading
    underscore and ``_kernel`` suffix (triton is imported there, on first use; once, whichever
    thread asks first)."""

    def __init__(self, module_globals: dict):
        self._globals = module_globals
        self._options: dict = {}
        self._jitted = None
        self._lock = threading.Lock()

    def jit(self, **options):
        def record(fn):
            self._options[fn.__name__] = options
            return fn

        return record

    def __call__(self):
        with self._lock:
            if self._jitted is None:
                import triton
                import triton.language

                module = self._globals
                module["tl"] = triton.language
                names = {}
                for name, options in self._options.items():
                    module[name] = triton.jit(**options)(module[name])
                    names[name.strip("_").removesuffix("_kernel")] = module[name]
                self._jitted = types.SimpleNamespace(cdiv=triton.cdiv, **names)
            return self._jitted


_kernels = LazyKernels(globals())
_jit = _kernels.jit


@_jit()
def _mix4(x0, x1, ra: tl.constexpr, rb: tl.constexpr, rc: tl.constexpr, rd: tl.constexpr):
    # four Threefry rounds: x0 += x1; x1 = rotl(x1, r) ^ x0 (uint32 wraps and shifts
    # logically)
    x0 = x0 + x1
    x1 = ((x1 << ra) | (x1 >> (32 - ra))) ^ x0
    x0 = x0 + x1
    x1 = ((x1 << rb) | (x1 >> (32 - rb))) ^ x0
    x0 = x0 + x1
    x1 = ((x1 << rc) | (x1 >> (32 - rc))) ^ x0
    x0 = x0 + x1
    x1 = ((x1 << rd) | (x1 >> (32 - rd))) ^ x0
    return x0, x1


@_jit()
def _threefry20(k0, k1, x0, x1):
    # Random123's Threefry-2x32-20: key schedule (k0, k1, k0 ^ k1 ^ parity), an injection
    # after every four rounds, rotations (13, 15, 26, 6) and (17, 29, 16, 24) alternating
    k2 = k0 ^ k1 ^ 0x1BD11BDA
    x0 = x0 + k0
    x1 = x1 + k1
    x0, x1 = _mix4(x0, x1, 13, 15, 26, 6)
    x0 = x0 + k1
    x1 = x1 + k2 + 1
    x0, x1 = _mix4(x0, x1, 17, 29, 16, 24)
    x0 = x0 + k2
    x1 = x1 + k0 + 2
    x0, x1 = _mix4(x0, x1, 13, 15, 26, 6)
    x0 = x0 + k0
    x1 = x1 + k1 + 3
    x0, x1 = _mix4(x0, x1, 17, 29, 16, 24)
    x0 = x0 + k1
    x1 = x1 + k2 + 4
    x0, x1 = _mix4(x0, x1, 13, 15, 26, 6)
    x0 = x0 + k2
    x1 = x1 + k0 + 5
    return x0, x1


@_jit()
def _word(v, IN_MEMORY: tl.constexpr):
    if IN_MEMORY:
        w = tl.load(v).to(tl.uint32)
    else:
        w = v.to(tl.uint32)
    return w


@_jit(do_not_specialize=["k0", "k1", "n"])
def _threefry_kernel(k0, k1, c0_ptr, c1_ptr, y0_ptr, y1_ptr, n, K0_MEM: tl.constexpr,
                     K1_MEM: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    key0 = _word(k0, K0_MEM)
    key1 = _word(k1, K1_MEM)
    x0 = tl.load(c0_ptr + offs, mask=m, other=0).to(tl.uint32)
    x1 = tl.load(c1_ptr + offs, mask=m, other=0).to(tl.uint32)
    x0, x1 = _threefry20(key0, key1, x0, x1)
    tl.store(y0_ptr + offs, x0.to(tl.int64), mask=m)
    tl.store(y1_ptr + offs, x1.to(tl.int64), mask=m)


@_jit(do_not_specialize=["k0", "k1", "call", "start", "count", "n_hi", "n_lo", "num_keys"])
def _draw_classes_kernel(k0, k1, call, start, out_ptr, count, n_hi, n_lo, keys_ptr, num_keys,
                         K0_MEM: tl.constexpr, K1_MEM: tl.constexpr, CALL_MEM: tl.constexpr,
                         START_MEM: tl.constexpr, MODE: tl.constexpr, STEPS: tl.constexpr,
                         BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < count
    key0 = _word(k0, K0_MEM)
    key1 = _word(k1, K1_MEM)
    c0 = tl.zeros((BLOCK,), dtype=tl.uint32) + _word(call, CALL_MEM)
    c1 = offs.to(tl.uint32) + _word(start, START_MEM)
    hi, lo = _threefry20(key0, key1, c0, c1)
    hi64 = hi.to(tl.uint64)
    lo64 = lo.to(tl.uint64)
    if MODE == 0:
        # floor((hi * 2**32 + lo) * R / 2**64) with R = n_hi * 2**32 + n_lo, in 64-bit
        # pieces: every partial product is below 2**64 and the middle column is summed
        # from 32-bit halves, so nothing overflows
        r_hi = n_hi.to(tl.uint64)
        r_lo = n_lo.to(tl.uint64)
        m1 = hi64 * r_lo
        m2 = lo64 * r_hi
        mid = (m1 & 0xFFFFFFFF) + (m2 & 0xFFFFFFFF) + ((lo64 * r_lo) >> 32)
        cls = (hi64 * r_hi + (m1 >> 32) + (m2 >> 32) + (mid >> 32)).to(tl.int64)
    else:
        # the number of signed keys <= u - 2**63: STEPS branch-free binary-search steps
        u = ((hi64 << 32) | lo64) ^ 0x8000000000000000
        key = u.to(tl.int64, bitcast=True)
        pos = tl.zeros((BLOCK,), dtype=tl.int64)
        for i in tl.static_range(STEPS):
            cand = pos + (1 << (STEPS - 1 - i))
            idx = tl.minimum(cand - 1, num_keys - 1)
            t = tl.load(keys_ptr + idx, mask=m, other=0)
            pos = tl.where((cand <= num_keys) & (t <= key), cand, pos)
        cls = pos
    tl.store(out_ptr + offs, cls, mask=m)


@_jit(do_not_specialize=["n"])
def _first_positions_kernel(classes_ptr, table_ptr, n, BLOCK: tl.constexpr):
    # table[c] = min position of class c among the draws (the table starts at n)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    cls = tl.load(classes_ptr + offs, mask=m, other=0)
    tl.atomic_min(table_ptr + cls, offs, mask=m)


@_jit(do_not_specialize=["n", "s"])
def _select_first_kernel(classes_ptr, table_ptr, cand_ptr, tries_ptr, n, s,
                         BLOCK: tl.constexpr):
    # one program walks the draws in order: a draw is kept iff it is its class's first,
    # at slot (number of first draws before it); it stops once s are kept
    lanes = tl.arange(0, BLOCK)
    kept = s * 0
    tries = n + 1
    start = n * 0
    while (start < n) & (kept < s):
        offs = start + lanes
        m = offs < n
        cls = tl.load(classes_ptr + offs, mask=m, other=0)
        first = m & (tl.load(table_ptr + cls, mask=m, other=-1) == offs)
        rank = kept + tl.cumsum(first.to(tl.int32), 0)  # 1-based slot of a first draw
        tl.store(cand_ptr + (rank - 1), cls, mask=first & (rank <= s))
        last = tl.max(tl.where(first & (rank == s), offs + 1, 0), 0)
        tries = tl.where(last > 0, last, tries)
        kept = kept + tl.sum(first.to(tl.int32), 0)
        start = start + BLOCK
    # too few distinct classes: the missing slots hold the last draw's class
    filler = tl.load(classes_ptr + (n - 1))
    base = kept - kept % BLOCK
    while base < s:
        slots = base + lanes
        tl.store(cand_ptr + slots, tl.zeros((BLOCK,), dtype=filler.dtype) + filler,
                 mask=(slots >= kept) & (slots < s))
        base = base + BLOCK
    tl.store(tries_ptr, tries.to(tl.int64))
