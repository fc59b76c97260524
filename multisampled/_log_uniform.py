"""The log-uniform inverse without a per-class table, in integer fixed point.

A log-uniform draw is class ``floor((R+1)**u) - 1`` (TF: ``floor(exp(u * log1p(R))) - 1``).
Without a per-class table it is evaluated in 62-bit fixed point with integer operations only,
so every backend and device gives the same class: ``y = u * log2(R+1)`` (one exact limb
product with a 70-bit constant), then ``2**y = 2**e * 2**f`` with ``2**f`` the product of four
tabulated factors ``2**(b_j / 256**(j+1))`` (the 8-bit chunks of the fraction's top 32 bits)
and ``1 + t * ln 2`` for the remaining 32 bits ``t < 2**-32`` (the quadratic term is below
``2**-65``). Factors are rounded down and products truncated, so every partial product stays
below the exact one, hence below 2 (their exponents sum to ``f < 1``); each step costs at most
``2**-62``, so ``2**y`` carries a relative error below ``2**-58``: a class boundary moves by
less than one step of ``u`` (``2**-64``) for ``R > 2**28``, where this mapping is used.

The draws' words and their 16-bit limb arithmetic come from :mod:`multisampled._rng`.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from ._rng import _int_limbs, _product_digits, _shl, _shr, _u_limbs, _widen

__all__ = ["exp2_limb_tables", "ln2_constant", "log2_constant", "log_uniform_classes"]

EXP2_FRACTION_BITS = 62
EXP2_CHUNKS = 4  # 8-bit chunks looked up in tables; the rest is linear


def _decimal_context():
    import decimal

    return decimal.Context(prec=60, rounding=decimal.ROUND_FLOOR)


@functools.lru_cache(maxsize=64)
def log2_constant(range_max: int) -> int:
    """``floor(log2(range_max + 1) * 2**64)`` (at most 70 bits), computed with 60-digit
    decimal arithmetic: the same integer on every machine."""
    import decimal

    ctx = _decimal_context()
    value = ctx.divide(ctx.ln(decimal.Decimal(range_max + 1)), ctx.ln(decimal.Decimal(2)))
    return int(ctx.to_integral_value(ctx.multiply(value, decimal.Decimal(2**64))))


def _scaled_floor(ctx, value) -> int:
    import decimal

    scaled = ctx.multiply(value, decimal.Decimal(2**EXP2_FRACTION_BITS))
    return int(ctx.to_integral_value(scaled))


@functools.lru_cache(maxsize=1)
def ln2_constant() -> int:
    """``floor(ln 2 * 2**62)``."""
    import decimal

    ctx = _decimal_context()
    return _scaled_floor(ctx, ctx.ln(decimal.Decimal(2)))


@functools.lru_cache(maxsize=1)
def exp2_tables() -> list:
    """``EXP2_CHUNKS * 256`` mantissas ``floor(2**(b / 256**(j+1)) * 2**62)``, entry
    ``256 * j + b``: Python ints (decimal arithmetic, the same on every machine)."""
    import decimal

    ctx = _decimal_context()
    ln2 = ctx.ln(decimal.Decimal(2))
    out = []
    for j in range(EXP2_CHUNKS):
        step = ctx.divide(ln2, decimal.Decimal(256 ** (j + 1)))
        out.extend(_scaled_floor(ctx, ctx.exp(ctx.multiply(step, decimal.Decimal(b))))
                   for b in range(256))
    return tuple(out)


def exp2_limb_tables() -> list:
    """:func:`exp2_tables` as four NumPy int64 arrays of 16-bit limbs, low limb first."""
    import numpy as np

    values = exp2_tables()
    return [np.array([(v >> (16 * i)) & 0xFFFF for v in values], dtype=np.int64)
            for i in range(4)]



def _mul62(xp: Any, a: list, b: list) -> list:
    """``floor(A * B / 2**62)`` of two 62-bit fixed-point mantissas in ``[1, 2)`` given as four
    16-bit limbs (low first); the result, below ``2**63``, as four limbs."""
    d = _product_digits(xp, a, b)
    return [_shr(xp, d[k + 3], 14) | _shl(xp, d[k + 4] & 0x3FFF, 2) for k in range(4)]


def log_uniform_classes(xp: Any, hi: Any, lo: Any, range_max: int, tables: tuple,
                        constants: Optional[tuple] = None) -> Any:
    """The log-uniform class ``floor((R+1)**u) - 1`` (then ``mod R``, TF's guard) of each draw,
    in integer fixed point (see :data:`EXP2_FRACTION_BITS`); words' dtype.

    ``tables``: the four limb arrays of :func:`exp2_limb_tables` in the words' dtype;
    ``constants``: ``(log2_constant(range_max), ln2_constant())``, computed here when None
    (callers under a tracing compiler pass them: they come from host work). With uint32 words
    ``range_max`` must be below ``2**31``.
    """
    word = hi.dtype
    log2_c, ln2_c = constants or (log2_constant(range_max), ln2_constant())
    y = _product_digits(xp, _u_limbs(xp, hi, lo), _int_limbs(log2_c, 5))
    e = y[8]  # the integer part of u * log2(R+1), in [0, 62]
    chunks = (_shr(xp, y[7], 8), y[7] & 0xFF, _shr(xp, y[6], 8), y[6] & 0xFF)

    def factor(j):
        idx = chunks[j] + 256 * j
        return [_widen(xp, xp.take(t, idx), word) for t in tables]

    m = factor(0)
    for j in range(1, EXP2_CHUNKS):
        m = _mul62(xp, m, factor(j))
    # 1 + t ln 2 for the low 32 bits T = t * 2**64 of the fraction: 2**62 plus
    # floor(T * floor(ln2 * 2**62) / 2**64), which is below 2**30
    tail = _product_digits(xp, (y[4], y[5]), _int_limbs(ln2_c, 4))
    m = _mul62(xp, m, [tail[4], tail[5], 0, 1 << 14])
    if word == xp.uint32:
        top = _shr(xp, m[1], 15) | _shl(xp, m[2], 1) | _shl(xp, m[3], 17)  # floor(M / 2**31)
        k = _shr(xp, top, 31 - e) - 1
    else:
        mant = m[0] + _shl(xp, m[1], 16) + _shl(xp, m[2], 32) + _shl(xp, m[3], 48)
        k = _shr(xp, mant, EXP2_FRACTION_BITS - e) - 1
    return xp.where(k >= range_max, k - range_max, k)
