"""The graph generators' random stream: xoshiro256** seeded through splitmix64.

Both are ``njit`` functions over an explicit state array that the caller owns
(``uint64[4]`` for xoshiro, ``uint64[1]`` for splitmix64), never numba's
``np.random`` (one hidden stream per thread). A generator that draws only from
here is a pure function of its arguments and seed: the same graph in any
thread, process or batch order. The stream and the order in which a generator
consumes it are part of that generator's contract: a recorded seed must rebuild
the same graph later.

numba's ``cache=True`` keys a compiled function on its own file only: a caller
in another module (e.g. ``ba._ba_csr``) keeps its cached machine code when this
file changes. Clear ``__pycache__`` (or touch the callers) after editing here.
"""
from __future__ import annotations

import numba
import numpy as np

_U64 = np.uint64
# numba types ``uint64 <op> int64`` as float64, so every operand that meets a
# uint64 is a uint64 constant, shift counts included.
_SM_GAMMA = _U64(0x9E3779B97F4A7C15)
_SM_MUL1 = _U64(0xBF58476D1CE4E5B9)
_SM_MUL2 = _U64(0x94D049BB133111EB)
_U1 = _U64(1)
_U5 = _U64(5)
_U7 = _U64(7)
_U9 = _U64(9)
_U17 = _U64(17)
_U27 = _U64(27)
_U30 = _U64(30)
_U31 = _U64(31)
_U32 = _U64(32)
_U45 = _U64(45)
_MASK32 = _U64(0xFFFFFFFF)
_TWO32 = _U64(1 << 32)


@numba.njit(cache=True, nogil=True)
def splitmix64_next(sm):
    """Advance the splitmix64 state ``sm`` (uint64[1], in place); return the next output."""
    sm[0] += _SM_GAMMA
    z = sm[0]
    z = (z ^ (z >> _U30)) * _SM_MUL1
    z = (z ^ (z >> _U27)) * _SM_MUL2
    return z ^ (z >> _U31)


@numba.njit(cache=True, nogil=True)
def xoshiro_seed(seed):
    """xoshiro256** state (uint64[4]) for a uint64 ``seed``.

    Filled from splitmix64 as the xoshiro authors recommend: it spreads
    nearby seeds (0, 1, 2, ...) over unrelated states and, being a bijection
    of its counter, never yields the all-zero state xoshiro cannot leave.
    """
    sm = np.empty(1, dtype=np.uint64)
    sm[0] = seed
    s = np.empty(4, dtype=np.uint64)
    for i in range(4):
        s[i] = splitmix64_next(sm)
    return s


@numba.njit(cache=True, nogil=True)
def _rotl(x, k):
    return (x << k) | (x >> (_U64(64) - k))


@numba.njit(cache=True, nogil=True)
def xoshiro_next(s):
    """Advance the xoshiro256** state ``s`` (uint64[4], in place); return the next uint64."""
    result = _rotl(s[1] * _U5, _U7) * _U9
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], _U45)
    return result


@numba.njit(cache=True, nogil=True)
def uniform_below(s, bound):
    """Uniform integer in ``[0, bound)`` (``bound`` int64 >= 1), without modulo bias.

    Bounds below 2**32 (every realistic repeated-node list) use Lemire's
    multiply-shift on the top 32 bits of one draw: ``(x * bound) >> 32`` maps
    ``[0, 2**32)`` onto ``[0, bound)``; the few ``x`` whose low product half
    falls below ``2**32 mod bound`` are the excess that would bias small
    values, so they are redrawn. The modulo is only computed on that rare
    path. Larger bounds fall back to masking to the next power of two and
    rejecting values >= bound (at most half the draws).
    """
    b = _U64(bound)
    if b <= _MASK32:
        # The high bits of xoshiro256** are its best ones.
        prod = (xoshiro_next(s) >> _U32) * b
        low = prod & _MASK32
        if low < b:
            threshold = (_TWO32 - b) % b
            while low < threshold:
                prod = (xoshiro_next(s) >> _U32) * b
                low = prod & _MASK32
        return np.int64(prod >> _U32)
    mask = b - _U1
    shift = _U1
    while shift < _U64(64):
        mask |= mask >> shift
        shift <<= _U1
    while True:
        x = xoshiro_next(s) & mask
        if x < b:
            return np.int64(x)


_U11 = _U64(11)
_TWO_M53 = 2.0 ** -53


@numba.njit(cache=True, nogil=True)
def uniform01(s):
    """Uniform double in ``[0, 1)`` from one draw: its top 53 bits times 2**-53.

    Every value is a multiple of 2**-53, so ``1 - u`` is exact; comparisons
    ``u < p`` give probability ``p`` up to that grid.
    """
    return np.float64(xoshiro_next(s) >> _U11) * _TWO_M53


@numba.njit(cache=True, nogil=True)
def geometric_skip(s, log1mp):
    """Failures before the next success of Bernoulli(p) trials, as a float64 >= 0.

    ``log1mp`` is ``log(1 - p)`` (< 0; ``-inf`` for ``p = 1``, which gives 0).
    Inverse transform from one draw: ``floor(log(u) / log(1 - p))`` with
    ``u = 1 - uniform01`` in ``(0, 1]`` (never 0, so the log is finite). The
    result is returned as a float because for tiny ``p`` it can exceed any
    integer range; callers compare it with what is left before converting.
    Draws are capped at ``-log(2**-53) / -log(1 - p)``: the geometric tail
    beyond that has probability ``2**-53``.
    """
    u = 1.0 - uniform01(s)
    return np.floor(np.log(u) / log1mp)
