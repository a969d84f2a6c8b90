"""Integer weight storage with a per-layer scale, rounding modes, and bitwidth changes.

>>> store = QuantisedWeight(torch.randn(16, 8), bits=8)
>>> store.q.dtype, store.bits
(torch.int8, 8)
>>> w = store.dequantise()                 # transient fp32 values, for one computation
>>> store.gain_bit(); store.q.dtype       # 9 bits need an int16 container; values unchanged
torch.int16
"""

from __future__ import annotations

import torch
from torch import Tensor

MIN_BITS, MAX_BITS = 2, 16
ROUNDINGS = ("nearest", "stochastic")


def container_dtype(bits: int) -> torch.dtype:
    """The smallest integer type holding a signed ``bits``-bit value."""
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be between {MIN_BITS} and {MAX_BITS}; got {bits}")
    return torch.int8 if bits <= 8 else torch.int16


def qmax(bits: int) -> int:
    """Largest magnitude of a symmetric signed ``bits``-bit integer."""
    return 2 ** (bits - 1) - 1


def round_tensor(x: Tensor, mode: str, generator: torch.Generator | None = None) -> Tensor:
    """Round to integers: ``nearest`` (ties to even) or ``stochastic``.

    Stochastic rounding is unbiased: it rounds up with probability equal to the fractional part.
    """
    if mode == "nearest":
        return torch.round(x)
    if mode == "stochastic":
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return torch.floor(x + noise)
    raise ValueError(f"rounding must be one of {ROUNDINGS}; got {mode!r}")


class QuantisedWeight:
    """A layer's weights as integers ``q`` and one fp32 ``scale``: w = q x scale.

    No fp32 copy of the weights is kept: ``dequantise`` makes one for a single computation and
    the caller drops it.
    """

    def __init__(self, weight: Tensor, bits: int) -> None:
        self.bits = bits
        self.saturated = 0  # values clipped at the range limit, for diagnostics
        self.rescales = 0  # times the range doubled to hold a grown weight
        container_dtype(bits)  # validates
        peak = weight.detach().abs().max().item()
        self.scale = (peak / qmax(bits)) if peak > 0 else 1.0 / qmax(bits)
        self.q = self._encode(weight.detach() / self.scale, "nearest")

    def _encode(self, values: Tensor, rounding: str, generator=None) -> Tensor:
        limit = qmax(self.bits)
        rounded = round_tensor(values, rounding, generator)
        self.saturated += int((rounded.abs() > limit).sum())
        return rounded.clamp_(-limit, limit).to(container_dtype(self.bits))

    def dequantise(self, rows: slice = slice(None)) -> Tensor:
        """fp32 weights (of output rows ``rows``), newly made: transient by contract."""
        return self.q[rows].to(torch.float32) * self.scale

    def apply_update(self, delta: Tensor, rounding: str,
                     generator: torch.Generator | None = None,
                     rows: slice = slice(None)) -> None:
        """Add ``delta`` to the weights of output rows ``rows``: q += round(delta / scale).

        Dynamic fixed point: where a value would leave the range, the whole layer's scale doubles
        (its integers halve) until it fits, instead of clipping the update.
        """
        values = self.q[rows].to(torch.float32) + delta / self.scale
        limit = qmax(self.bits)
        while values.abs().max() > limit + 0.5:
            values /= 2
            self.scale *= 2
            self.q = round_tensor(self.q.to(torch.float32) / 2, "nearest").to(self.q.dtype)
            self.rescales += 1
        self.q[rows] = self._encode(values, rounding, generator)

    def gain_bit(self) -> None:
        """One more bit: halve the scale and double the integers, so no value changes."""
        if self.bits >= MAX_BITS:
            return
        self.bits += 1
        self.q = self.q.to(container_dtype(self.bits)) * 2
        self.scale /= 2

    def lose_bit(self, rounding: str = "nearest") -> None:
        """One bit less: double the scale and halve the integers (rounded: lossy)."""
        if self.bits <= MIN_BITS:
            return
        self.bits -= 1
        self.scale *= 2
        self.q = self._encode(self.q.to(torch.float32) / 2, rounding)

    @property
    def nbytes(self) -> int:
        """Bytes the integer tensor occupies."""
        return self.q.numel() * self.q.element_size()
