"""Counter-based random numbers that are bit-identical on every backend and device.

The generator is Threefry-2x32 with 20 rounds (Random123; the function behind ``jax.random``),
written once with Array API integer operations. Every sampler call draws from counters
``(c0, c1) = (call_index, draw_index)`` under a 64-bit key, so a draw depends only on the seed, the
call's position in its stream and the draw's position in the call: never on block sizes, devices
or libraries.

Random words become samples with integer operations only (no ``exp``/``log`` on the device, whose
last bit differs between libraries): a draw ``(x0, x1)`` is the 64-bit fixed-point number
``u = (x0 * 2**32 + x1) / 2**64`` in ``[0, 1)``;

* :func:`uniform_int` gives ``floor(u * R)`` exactly (16-bit limb multiplication);
* :func:`search_cdf` gives the number of CDF thresholds ``<= u``, thresholds being 64-bit
  fixed-point integers computed once on the host (:func:`cdf_thresholds`);
* :func:`multisampled._log_uniform.log_uniform_classes` gives ``floor((R+1)**u) - 1`` in 62-bit
  fixed point, for log-uniform ranges too large for a table.

Words are 32-bit values held in ``uint32`` or, on backends whose index dtype is int64, in
``int64`` masked to 32 bits after every addition and left shift (some libraries cannot shift
``uint32``); :func:`word_dtype` picks one and both give the same bits.

Seeds follow TensorFlow's op-seed contract (SEMANTICS.md 5.7): with ``seed=<int>`` the SEQUENCE of
samples is reproducible across program runs, while consecutive calls produce different samples.
Each ``(backend name, seed)`` pair owns one process-wide :class:`Generator` (:func:`stream_for`):
its first call uses call index 0, the next call index 1, and so on, whichever sampler makes the
call (TensorFlow instead keeps one generator per op kernel). ``seed=None`` takes 64 fresh
bits from :mod:`secrets` on every call. A :class:`Generator` may be passed as ``seed`` to own a
stream explicitly. :func:`reset_streams` forgets the process-wide streams, so the next call with
a given seed returns the first-call samples again.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, Optional, Tuple, Union

from ._arrays import device_of
from ._checks import check_seed_int
from ._types import Array

__all__ = [
    "Generator",
    "cdf_thresholds",
    "draw_words",
    "reset_streams",
    "search_cdf",
    "search_cdf_keys",
    "stream_for",
    "threefry2x32",
    "uniform_int",
    "word_dtype",
]

MASK32 = 0xFFFFFFFF
_PARITY = 0x1BD11BDA  # Threefry key-schedule constant
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
SEED_LIMIT = 2**64
CALL_LIMIT = 2**32  # call indices are one 32-bit counter word
DRAW_LIMIT = 2**32  # draw indices are the other counter word


# --------------------------------------------------------------------------- Threefry-2x32


def threefry2x32(xp: Any, key0: Union[int, Array], key1: Union[int, Array], c0: Array,
                 c1: Array) -> Tuple[Array, Array]:
    """Threefry-2x32 with 20 rounds: the counter ``(c0, c1)`` encrypted under ``(key0, key1)``.

    ``key0, key1``: Python ints in ``[0, 2**32)`` or 0-d arrays of the counters' dtype.
    ``c0, c1``: arrays of one dtype (broadcast against each other): ``uint32``, or a wider signed
    integer dtype holding 32-bit values. Returns ``(x0, x1)`` in that dtype, each in
    ``[0, 2**32)``. Known answer: key ``(0, 0)``, counter ``(0, 0)`` ->
    ``(0x6b200159, 0x99ba4efe)``.

    Args:
        xp: The Array API namespace of the counters.
        key0: The key's first word: a Python int in ``[0, 2**32)`` or a 0-d array of the
            counters' dtype.
        key1: The key's second word, as ``key0``.
        c0: The counters' first words (``uint32``, or a wider signed integer dtype holding
            32-bit values).
        c1: The counters' second words, of the dtype of ``c0`` (broadcasting against it).

    Returns:
        ``(x0, x1)``: the encrypted words, in the counters' dtype, each in ``[0, 2**32)``.
    """
    word = c0.dtype
    if word == xp.uint32:
        # uint32 arithmetic wraps by itself; Python ints >= 2**31 become uint32 arrays first
        # (some libraries read a bare Python int next to uint32 as int32)
        device = device_of(c0)

        def const(v):
            return xp.asarray(v, dtype=word, device=device) if isinstance(v, int) else v

        def wrap(x):
            return x

    else:

        def const(v):
            return v

        def wrap(x):
            return x & MASK32

    ks = [key0, key1, key0 ^ key1 ^ _PARITY]
    injections = []
    for block in range(5):  # the Python-int sums are reduced mod 2**32 before use
        k1 = ks[(block + 2) % 3]
        k1 = (k1 + block + 1) & MASK32 if isinstance(k1, int) else k1 + (block + 1)
        injections.append((const(ks[(block + 1) % 3]), const(k1)))
    x0 = wrap(c0 + const(ks[0]))
    x1 = wrap(c1 + const(ks[1]))
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = wrap(x0 + x1)
            x1 = (wrap(_shl(xp, x1, r)) | _shr(xp, x1, 32 - r)) ^ x0
        # key injection after every four rounds
        x0 = wrap(x0 + injections[block][0])
        x1 = wrap(x1 + injections[block][1])
    return x0, x1


def _shl(xp: Any, x: Any, r: int) -> Any:
    """``x << r`` for a Python int or an array: the operator where the array type has it (the
    standard's arrays do, and it takes ``r`` as a Python int on every device and inside CUDA
    graphs), else the namespace's ``bitwise_left_shift`` (TensorFlow's tensors lack ``<<``)."""
    if isinstance(x, int) or hasattr(type(x), "__lshift__"):
        return x << r
    return xp.bitwise_left_shift(x, r)


def _shr(xp: Any, x: Any, r: int) -> Any:
    """``x >> r`` for a Python int or an array (see :func:`_shl`)."""
    if isinstance(x, int) or hasattr(type(x), "__rshift__"):
        return x >> r
    return xp.bitwise_right_shift(x, r)


def word_dtype(ctx: Any) -> Any:
    """The dtype holding 32-bit words: int64 where the index dtype is int64, else uint32."""
    xp = ctx.xp
    return xp.int64 if ctx.index_dtype == xp.int64 else xp.uint32


def draw_words(ctx: Any, key0: Any, key1: Any, call_index: Any, start: int, count: int):
    """Draws ``start .. start+count-1`` of call ``call_index``: ``(x0, x1)``, each ``[count]``,
    through the backend's Threefry kernel. Keys and the call index are Python ints or 0-d word
    arrays (traced values too)."""
    xp = ctx.xp
    word = word_dtype(ctx)
    if isinstance(start, int):
        if start < 0 or start + count > DRAW_LIMIT:
            raise ValueError(
                f"draw indices [{start}, {start + count}) leave the 32-bit draw counter "
                "[0, 2**32)"
            )
        c1 = xp.arange(start, start + count, dtype=word, device=ctx.device)
    else:  # a traced start (the unique loop's)
        c1 = xp.arange(count, dtype=word, device=ctx.device) + xp.astype(start, word)
    if isinstance(call_index, int):
        c0 = xp.full((count,), call_index, dtype=word, device=ctx.device)
    else:
        c0 = xp.zeros_like(c1) + xp.astype(call_index, word)
    return ctx.backend.threefry2x32(xp, key0, key1, c0, c1)


# --------------------------------------------------------------------------- words -> samples


def uniform_int(xp: Any, hi: Array, lo: Array, n: Union[int, Array]) -> Array:
    """``floor(u * n)`` exactly, for ``u = (hi * 2**32 + lo) / 2**64``; result in ``[0, n)``.

    ``hi, lo``: words (see :func:`threefry2x32`). ``n``: a Python int in ``[1, 2**63)`` (at
    least ``2**32`` only with int64 words, whose results it must fit), or a 0-d array of the
    words' dtype holding a value below ``2**32``. 16-bit limbs keep every partial product and
    column sum below ``2**32``, so the same code is exact on ``uint32`` and on int64 words.

    Args:
        xp: The Array API namespace of the words.
        hi: The draws' high words (see :func:`threefry2x32`).
        lo: The draws' low words, of the dtype of ``hi``.
        n: The range: a Python int in ``[1, 2**63)`` (at least ``2**32`` only with int64 words),
            or a 0-d array of the words' dtype holding a value below ``2**32``.

    Returns:
        ``floor(u * n)`` for each draw, in the words' dtype, in ``[0, n)``.

    Raises:
        ValueError: An int ``n`` outside ``[1, 2**63)``, or at least ``2**32`` with ``uint32``
            words.
    """
    if isinstance(n, int):
        if not 1 <= n < 2**63:
            raise ValueError(f"uniform_int: n must be in [1, 2**63); got {n}")
        if n >= 2**32:
            if hi.dtype == xp.uint32:
                raise ValueError(
                    f"uniform_int: n={n} needs int64 words (results beyond 32 bits); got uint32 "
                    "words")
            return _floor_product(xp, _u_limbs(xp, hi, lo), _int_limbs(n, 4), 4)
    return _floor_product(xp, _u_limbs(xp, hi, lo), (n & 0xFFFF, _shr(xp, n, 16)), 4)


def _u_limbs(xp: Any, hi: Any, lo: Any) -> tuple:
    """The four 16-bit limbs of the 64-bit draw ``(hi, lo)``, low first."""
    return (lo & 0xFFFF, _shr(xp, lo, 16), hi & 0xFFFF, _shr(xp, hi, 16))


def _int_limbs(v: int, count: int) -> tuple:
    """The ``count`` 16-bit limbs of the Python int ``v``, low first."""
    return tuple((v >> (16 * i)) & 0xFFFF for i in range(count))


def _columns(xp: Any, a: tuple, b: tuple) -> list:
    """The column sums of the product of two numbers given as 16-bit limbs (low first): column
    ``k`` collects the pieces of weight ``2**(16*k)``.

    Limbs are arrays or Python ints (zero limbs cost nothing). Every partial product is below
    ``2**32`` and is split into halves before it is added to its column, so column sums stay
    below ``2**20``: exact on uint32 and on int64 words.
    """
    cols: list = [0] * (len(a) + len(b))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if (isinstance(x, int) and x == 0) or (isinstance(y, int) and y == 0):
                continue
            p = x * y
            cols[i + j] = cols[i + j] + (p & 0xFFFF)
            cols[i + j + 1] = cols[i + j + 1] + _shr(xp, p, 16)
    return cols


def _product_digits(xp: Any, a: tuple, b: tuple) -> list:
    """The 16-bit digits (low first) of the product of two numbers given as 16-bit limbs."""
    digits, carry = [], 0
    for c in _columns(xp, a, b):
        v = c + carry
        digits.append(v & 0xFFFF)
        carry = _shr(xp, v, 16)
    return digits


def _floor_product(xp: Any, a: tuple, b: tuple, drop: int) -> Any:
    """``floor(A * B / 2**(16 * drop))`` as one word-dtype value (it must fit the words)."""
    cols = _columns(xp, a, b)
    carry = 0
    for k in range(drop):  # the dropped digits only contribute their carry
        carry = _shr(xp, cols[k] + carry, 16)
    out = cols[drop] + carry
    for k in range(drop + 1, len(cols)):
        if not (isinstance(cols[k], int) and cols[k] == 0):
            out = out + _shl(xp, cols[k], 16 * (k - drop))
    return out


def _widen(xp: Any, t: Any, word: Any) -> Any:
    # tables of int64-word backends are stored as int32 bit patterns to halve their size
    if t.dtype == word:
        return t
    return xp.astype(t, word) & MASK32


def search_cdf(xp: Any, hi: Array, lo: Array, th_hi: Array, th_lo: Array,
               index_dtype: Any = None) -> Array:
    """The number of thresholds ``t`` with ``t <= u`` (the sampled class), for each draw.

    ``th_hi, th_lo``: the high and low 32-bit words of ascending 64-bit fixed-point thresholds
    (see :func:`cdf_thresholds`), in the words' dtype or, for int64 words, as int32 bit patterns.
    A fixed number of branch-free binary-search steps (``floor(log2(len)) + 1``) of ``take`` and
    a lexicographic integer comparison, so the result is exact everywhere.

    Args:
        xp: The Array API namespace of the words.
        hi: The draws' high words (see :func:`threefry2x32`).
        lo: The draws' low words, of the dtype of ``hi``.
        th_hi: ``[N]`` the thresholds' high words, in the words' dtype or, for int64 words, as
            int32 bit patterns.
        th_lo: ``[N]`` the thresholds' low words, as ``th_hi``.
        index_dtype: The dtype of the result; None: the words' dtype.

    Returns:
        The sampled class of each draw (the number of thresholds ``<= u``, in ``[0, N]``), of
        the shape of ``hi``, in ``index_dtype``.
    """
    n = th_hi.shape[0]
    idt = hi.dtype if index_dtype is None else index_dtype
    pos = xp.zeros_like(hi, dtype=idt)
    if n == 0:
        return pos
    step = 1 << (n.bit_length() - 1)
    while step:
        cand = pos + step
        idx = xp.clip(cand - 1, 0, n - 1)
        t_hi = _widen(xp, xp.take(th_hi, idx), hi.dtype)
        t_lo = _widen(xp, xp.take(th_lo, idx), hi.dtype)
        at_most_u = (t_hi < hi) | ((t_hi == hi) & (t_lo <= lo))
        pos = xp.where((cand <= n) & at_most_u, cand, pos)
        step >>= 1
    return pos


def signed_keys(xp: Any, hi: Any, lo: Any) -> Any:
    """int64 ``u - 2**63`` from the 32-bit words ``(hi, lo)`` held in int64.

    Flipping the sign bit maps unsigned 64-bit order onto signed int64 order, so one native
    ``searchsorted`` over keys made the same way is an exact 64-bit comparison.
    """
    return (hi - 2**31) * 2**32 + lo


def host_signed_keys(th_hi: Any, th_lo: Any) -> Any:
    """NumPy int64 keys of host thresholds (uint32 word arrays), as :func:`signed_keys`."""
    import numpy as np

    return (th_hi.astype(np.int64) - 2**31) * 2**32 + th_lo.astype(np.int64)


def search_cdf_keys(xp: Any, hi: Any, lo: Any, keys: Any) -> Any:
    """:func:`search_cdf` for int64 words: thresholds given as :func:`host_signed_keys`."""
    return xp.searchsorted(keys, signed_keys(xp, hi, lo), side="right")


def cdf_thresholds(cdf: Array) -> Tuple[Array, Array]:
    """Host (NumPy) thresholds for :func:`search_cdf` from an ascending float64 CDF.

    ``cdf[k]`` is ``P(class <= k)``. Each value is rounded to the nearest multiple of ``2**-64``;
    thresholds that reach 1 can never be ``<= u`` and are dropped (so classes after the last one
    with positive probability are never drawn). Returns ``(hi, lo)`` as uint32 arrays.

    Args:
        cdf: The ascending float64 CDF ``[C]`` (host data, read as a NumPy array).

    Returns:
        ``(hi, lo)``: NumPy uint32 arrays ``[N]`` (``N <= C``), the high and low 32-bit words of
        the thresholds below 1.

    Raises:
        ValueError: ``cdf`` not 1-D, holding a NaN, or decreasing somewhere.
    """
    import numpy as np

    cdf = np.asarray(cdf, dtype=np.float64)
    if cdf.ndim != 1 or np.any(np.isnan(cdf)) or np.any(np.diff(cdf) < 0):
        raise ValueError("cdf_thresholds: the CDF must be a non-decreasing 1-D float array")
    scaled = np.rint(np.clip(cdf, 0.0, 1.0) * 2.0**64)  # exact scaling by a power of two
    fixed = scaled[scaled < 2.0**64].astype(np.uint64)  # a suffix reaching 1 is dropped
    return (fixed >> np.uint64(32)).astype(np.uint32), (fixed & np.uint64(MASK32)).astype(np.uint32)


# --------------------------------------------------------------------------- seed streams


class Generator:
    """A stream of sampler calls under one 64-bit Threefry key.

    ``Generator(seed)``: ``seed`` an int in ``[0, 2**64)`` (high word -> ``key0``, low word ->
    ``key1``), or None for 64 fresh bits from :mod:`secrets`. Every sampler call consumes one
    call index (:meth:`next_call`); a call's draws use counters ``(call_index, 0, 1, 2, ...)``.
    Thread-safe.

    Args:
        seed: An int in ``[0, 2**64)``, or None for 64 fresh bits from :mod:`secrets`.

    Raises:
        TypeError: ``seed`` not an int (or a bool).
        ValueError: ``seed`` outside ``[0, 2**64)``.
    """

    CALL_LIMIT = CALL_LIMIT

    def __init__(self, seed: Optional[int] = None) -> None:
        if seed is None:
            seed = secrets.randbits(64)
        self.seed = check_seed_int(seed)
        self.key = (self.seed >> 32, self.seed & MASK32)
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        """How many call indices have been used."""
        return self._calls

    def next_call(self) -> Tuple[int, int, int]:
        """``(key0, key1, call_index)`` for the next sampler call.

        Returns:
            ``(key0, key1, call_index)``: the key's two 32-bit words and the call index the call
            uses (the calls so far).

        Raises:
            RuntimeError: The ``2**32`` call indices are used up.
        """
        with self._lock:
            if self._calls >= CALL_LIMIT:
                raise RuntimeError(
                    f"Generator(seed={self.seed}) has used all {CALL_LIMIT} call indices; "
                    "start a new stream with another seed"
                )
            index = self._calls
            self._calls += 1
        return self.key[0], self.key[1], index

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed}, calls={self._calls})"


_streams: dict = {}
_streams_lock = threading.Lock()


def stream_for(backend_name: str, seed: Any) -> Generator:
    """The generator a sampler call with ``seed`` uses on backend ``backend_name``.

    ``seed=None``: a fresh generator (fresh randomness every call). ``seed=<Generator>``: that
    generator. ``seed=<int>``: the process-wide stream of ``(backend_name, seed)``.
    """
    if seed is None:
        return Generator(None)
    if isinstance(seed, Generator):
        return seed
    seed = check_seed_int(seed)
    with _streams_lock:
        gen = _streams.get((backend_name, seed))
        if gen is None:
            gen = _streams[(backend_name, seed)] = Generator(seed)
        return gen


def reset_streams() -> None:
    """Forget every process-wide seeded stream: the next call with a seed starts afresh."""
    with _streams_lock:
        _streams.clear()
