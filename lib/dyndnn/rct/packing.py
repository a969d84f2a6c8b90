"""Signed integers of any width from 2 to 16 bits, packed end to end into bytes.

A layer held at b bits then costs b/8 bytes per weight (plus under a byte per tile), so its
bytes follow the bitwidth instead of jumping from int8 to int16 at 9 bits. The stream is
little-endian: value i holds bits [i*b, (i+1)*b), lowest bit first (numpy's ``packbits`` with
``bitorder="little"`` lays bits out the same way). Eight values of b bits fill exactly b bytes:
each run of eight is one 128-bit word, two uint64 halves (packing: two small products over
the runs; unpacking: eight shifts). Written by hand: torch has no bit packing, and going
through ``packbits`` needs a byte per bit first (1.5-3x slower at a tile's size, measured).
Eight bits is a byte a value: offset binary alone.

>>> q = torch.tensor([-3, 0, 3, -4, 1], dtype=torch.int16)
>>> packed = pack(q, bits=3)
>>> packed.dtype, packed.numel()           # 5 values x 3 bits = 15 bits: 2 bytes
(torch.uint8, 2)
>>> unpack(packed, bits=3, count=5).tolist()
[-3, 0, 3, -4, 1]
>>> packed_bytes(1000, bits=9)             # 9,000 bits
1125
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

WORD_BITS = 16  # widest value packed: the top of RCT's bitwidth range


def packed_bytes(count: int, bits: int) -> int:
    """Bytes that ``count`` values of ``bits`` bits occupy packed."""
    return math.ceil(count * bits / 8)


@functools.cache
def _layout(bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each of a run's eight values goes in the two halves: powers of two and shifts.

    Value i starts at bit o = i * bits: into the low half it is multiplied by 2^o (its bits
    past 64 fall off), into the high half shifted down by 64 - o (when it straddles) or
    multiplied by 2^(o - 64) (when it starts there). A shift of 64 gives 0 in numpy: no part.
    """
    offsets = np.arange(8, dtype=np.int64) * bits
    low_power = np.where(offsets < 64, np.left_shift(1, np.minimum(offsets, 63)).astype(
        np.uint64), 0).astype(np.uint64)
    straddles = (offsets < 64) & (offsets + bits > 64)
    down = np.where(straddles, 64 - offsets, np.where(offsets >= 64, 0, 64)).astype(np.uint64)
    high_power = np.where(offsets >= 64, np.left_shift(1, np.maximum(offsets - 64, 0)), 1
                          ).astype(np.uint64)
    return low_power, down, high_power


def pack(values: Tensor, bits: int) -> Tensor:
    """Pack integer ``values`` (any shape, each in [-2^(bits-1), 2^(bits-1))) into uint8."""
    _check(bits)
    if bits == 8:  # a byte a value: offset binary alone
        return (values.reshape(-1).to(torch.int16) + 128).to(torch.uint8)
    count = values.numel()
    runs = -(-count // 8)
    unsigned = np.zeros(runs * 8, np.uint64)  # offset binary: a signed value's bits, unsigned
    unsigned[:count] = (values.reshape(-1).to(torch.int32) + (1 << (bits - 1))).numpy()
    unsigned = unsigned.reshape(runs, 8)
    low_power, down, high_power = _layout(bits)
    words = np.empty((runs, 2), np.uint64)
    # disjoint bit ranges: a sum is an OR, and uint64 products wrap what passes bit 63
    np.matmul(unsigned, low_power, out=words[:, 0])
    np.matmul(unsigned >> down, high_power, out=words[:, 1])
    stream = words.view(np.uint8)[:, :bits]  # the run's 8 * bits bits = bits bytes
    return torch.from_numpy(np.ascontiguousarray(stream).reshape(-1)[:packed_bytes(count, bits)])


def unpack(packed: Tensor, bits: int, count: int) -> Tensor:
    """The ``count`` values that ``pack`` stored in ``packed`` (flat, int16)."""
    _check(bits)
    if bits == 8:
        return packed[:count].to(torch.int16) - 128
    runs = -(-count // 8)
    words = np.zeros((runs, 2), np.uint64)
    data = packed.numpy()
    full = data.size // bits  # whole runs; the last, partial one is padded with zeros
    as_bytes = words.view(np.uint8)
    as_bytes[:full, :bits] = data[:full * bits].reshape(full, bits)
    if full < runs:
        as_bytes[full, :data.size - full * bits] = data[full * bits:]
    low, high = words[:, 0], words[:, 1]
    out = np.empty((runs, 8), np.uint64)
    for i in range(8):
        offset = i * bits
        if offset < 64:
            np.right_shift(low, np.uint64(offset), out=out[:, i])
            if offset + bits > 64:
                out[:, i] |= high << np.uint64(64 - offset)
        else:
            np.right_shift(high, np.uint64(offset - 64), out=out[:, i])
    out &= np.uint64((1 << bits) - 1)
    # offset binary back to signed, modulo 2^16: an int16 tile, half an int32's bytes
    signed = out.reshape(-1)[:count].astype(np.uint16)
    signed -= np.uint16(1 << (bits - 1))
    return torch.from_numpy(signed.view(np.int16))


def _check(bits: int) -> None:
    if not 2 <= bits <= WORD_BITS:
        raise ValueError(f"bits must be between 2 and {WORD_BITS}; got {bits}")
