"""Signed integers of any width from 2 to 16 bits, packed end to end into bytes.

A layer held at b bits then costs b/8 bytes per weight (plus under a byte per tile), so its
bytes follow the bitwidth instead of jumping from int8 to int16 at 9 bits. numpy's
``packbits`` / ``unpackbits`` move the bits in C: torch has no bit-packing operation.

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

import math

import numpy as np
import torch
from torch import Tensor

WORD_BITS = 16  # widest value packed: the top of RCT's bitwidth range
_POWERS = (1 << np.arange(WORD_BITS)).astype(np.uint16)


def packed_bytes(count: int, bits: int) -> int:
    """Bytes that ``count`` values of ``bits`` bits occupy packed."""
    return math.ceil(count * bits / 8)


def pack(values: Tensor, bits: int) -> Tensor:
    """Pack integer ``values`` (any shape, each in [-2^(bits-1), 2^(bits-1))) into uint8."""
    _check(bits)
    offset = 1 << (bits - 1)  # offset binary: the bit pattern of a signed value, unsigned
    unsigned = (values.reshape(-1).to(torch.int32) + offset).numpy().astype("<u2")
    planes = np.unpackbits(unsigned.view(np.uint8).reshape(-1, 2), axis=1, bitorder="little")
    return torch.from_numpy(np.packbits(planes[:, :bits], bitorder="little"))


def unpack(packed: Tensor, bits: int, count: int) -> Tensor:
    """The ``count`` values that ``pack`` stored in ``packed`` (flat, int16)."""
    _check(bits)
    planes = np.unpackbits(packed.numpy(), count=count * bits, bitorder="little")
    # the bit planes weighted by powers of two: one small matrix product, 8x faster than
    # padding every value to 16 bits for packbits (measured, 73,728 values at 10 bits)
    unsigned = planes.reshape(count, bits).astype(np.uint16) @ _POWERS[:bits]
    # offset binary back to signed, modulo 2^16: an int16 tile, half an int32's bytes
    unsigned -= np.uint16(1 << (bits - 1))
    return torch.from_numpy(unsigned.view(np.int16))


def _check(bits: int) -> None:
    if not 2 <= bits <= WORD_BITS:
        raise ValueError(f"bits must be between 2 and {WORD_BITS}; got {bits}")
