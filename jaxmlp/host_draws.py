"""The random bits of ``jaxmlp.nn.standard_normals`` drawn on the host, bit for bit JAX's.

A run's initialisation is a program of its own: JAX's threefry hash and the normal transform,
compiled once per shape. On a CPU its compile (XLA's code for the hash's rounds) costs more
than drawing a small model's bits with NumPy, and it competes with the training chunk's
compile for the same cores (BENCHMARKS.md, "Where the training chunk's compile goes"). So for
initialisations of at most ``HOST_DRAW_MAX`` weights the bits are drawn here and the program
only turns them into normals (``normals_from_bits``: the same operations as
``jax.random.normal``), which gives the same params as drawing inside the program (tested on
both paths). Larger ones, and JAX without its default partitionable threefry, draw in-program.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

_U32 = np.uint32
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = _U32(0x1BD11BDA)
#: Weights (summed over distinct draws) up to which the bits are drawn on the host: on the
#: benchmark's CPU NumPy's bits plus the smaller program cost less than compiling XLA's hash up
#: to a few million weights (BENCHMARKS.md, "Initialisation drawn on the host").
HOST_DRAW_MAX = 2**22


def threefry2x32(k1, k2, x1, x2) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 hash (20 rounds, as JAX's ``threefry2x32_p``) of the counter pairs
    ``(x1, x2)`` under the key ``(k1, k2)``; uint32 arrays, broadcast together."""
    k1, k2 = np.asarray(k1, _U32), np.asarray(k2, _U32)
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = np.asarray(x1, _U32) + ks[0], np.asarray(x2, _U32) + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ ((x2 << _U32(r)) | (x2 >> _U32(32 - r)))
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + _U32(i + 1)
    return x1, x2


def key_data(seed: int) -> np.ndarray:
    """The data of ``jax.random.PRNGKey(np.uint32(seed))`` (``jaxmlp.training.init_key``)."""
    return np.asarray([0, int(seed) & 0xFFFFFFFF], _U32)


def weight_bits(seed: int, sizes: Sequence[int]) -> list[np.ndarray]:
    """Per layer, the ``(fan_in, fan_out)`` uint32 bits that ``standard_normals(init_key(seed),
    sizes)`` turns into normals: row ``i`` of layer ``l`` is ``jax.random.bits`` of
    ``fold_in(split(key, L)[l], i)`` (JAX's partitionable threefry)."""
    k = key_data(seed)
    n_layers = len(sizes) - 1
    with np.errstate(over="ignore"):
        # split(key, L): one hash of the counters (0, l); fold_in(k_l, i): of (0, i)
        lk1, lk2 = threefry2x32(k[0], k[1], np.zeros(n_layers, _U32), np.arange(n_layers, dtype=_U32))
        out = []
        for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            rk1, rk2 = threefry2x32(lk1[l], lk2[l], np.zeros(fan_in, _U32),
                                    np.arange(fan_in, dtype=_U32))
            b1, b2 = threefry2x32(rk1[:, None], rk2[:, None], np.zeros((1, fan_out), _U32),
                                  np.arange(fan_out, dtype=_U32)[None, :])
            out.append(b1 ^ b2)
    return out


def on_host(n_weights: int) -> bool:
    """Whether an initialisation drawing ``n_weights`` values draws them here."""
    import jax
    return bool(jax.config.jax_threefry_partitionable) and n_weights <= HOST_DRAW_MAX


def normals_from_bits(bits, dtype=np.float32):
    """``jax.random.normal``'s transform of 32 random bits per value (traceable): the bits'
    mantissa as a uniform in (-1, 1), then ``sqrt(2) * erf_inv`` (32-bit floats only)."""
    import jax.numpy as jnp
    from jax import lax
    dtype = np.dtype(dtype)
    if dtype.itemsize != 4:
        raise ValueError(f"normals_from_bits draws 32-bit floats, not {dtype}")
    nbits, nmant = np.finfo(dtype).bits, np.finfo(dtype).nmant
    lo = lax.convert_element_type(np.nextafter(np.array(-1., dtype), np.array(0., dtype)), dtype)
    hi = lax.convert_element_type(np.array(1., dtype), dtype)
    mantissa = lax.shift_right_logical(bits, jnp.array(nbits - nmant, _U32))
    one = jnp.asarray(np.array(1.0, dtype).view(_U32), dtype=_U32)
    floats = lax.bitcast_convert_type(lax.bitwise_or(mantissa, one), dtype) - jnp.array(1., dtype)
    u = lax.max(lo, floats * (hi - lo) + lo)
    return lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(u))
