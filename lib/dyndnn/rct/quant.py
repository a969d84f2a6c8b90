"""Integer weight storage with a per-layer scale, rounding modes, and bitwidth changes.

>>> store = QuantisedWeight(torch.randn(16, 8), bits=8)
>>> store.q.dtype, store.bits, store.nbytes      # bit-packed: 8 bits = 1 byte per weight
(torch.int8, 8, 128)
>>> w = store.dequantise()                 # transient fp32 values, for one computation
>>> store.gain_bit(); store.nbytes         # 9 bits: 144 bytes packed, where int16 took 256
144
>>> QuantisedWeight(torch.randn(16, 8), bits=9, packed=False).nbytes   # containers
256
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from dyndnn.rct.packing import pack, unpack

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


def round_tensor(x: Tensor, mode: str, generator: torch.Generator | None = None,
                 factor: float = 1.0) -> Tensor:
    """Round ``x`` x ``factor`` to integers: ``nearest`` (ties to even) or ``stochastic``.

    Stochastic rounding is unbiased: it rounds up with probability equal to the fractional part.
    ``factor`` is fused into the pass that adds the noise (no scaled copy of ``x``).
    """
    if mode == "nearest":
        return torch.round(x if factor == 1.0 else x * factor)
    if mode == "stochastic":
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return noise.add_(x, alpha=factor).floor_()  # x x factor + noise, in the noise's buffer
    raise ValueError(f"rounding must be one of {ROUNDINGS}; got {mode!r}")


class TileStore:
    """A tensor's integers kept tile by tile (``tile_rows`` leading rows each).

    ``packed``: each tile bit-packed at ``bits`` (b/8 bytes per value); else each in the
    smallest integer container (int8 to 8 bits, int16 above). A tile is decoded for one
    computation and encoded again after an update, so only one tile's integers are ever
    unpacked at a time. ``tracker`` (optional) is told of every decoded tile.
    """

    def __init__(self, q: Tensor, bits: int, tile_rows: int = 0, packed: bool = True) -> None:
        container_dtype(bits)  # validates
        self.shape, self.bits, self.packed = tuple(q.shape), bits, packed
        self.tile_rows = min(tile_rows or q.shape[0], q.shape[0])
        self.tracker = None
        rows, size = self.shape[0], self.tile_rows
        # the layout never changes: made once (every read and write asks for it)
        self._slices = [slice(i, min(i + size, rows)) for i in range(0, rows, size)]
        self._index = {(s.start, s.stop): i for i, s in enumerate(self._slices)}
        self._tiles = [self._encode(q[rows], bits) for rows in self._slices]

    def slices(self) -> list[slice]:
        """The rows of every tile, in order."""
        return self._slices

    def tile_index(self, rows: slice) -> int | None:
        """The index of the tile whose rows are exactly ``rows``, else None."""
        return self._index.get((rows.start, rows.stop))

    def _encode(self, q: Tensor, bits: int) -> Tensor:
        if self.packed:
            return pack(q, bits)
        return q.to(container_dtype(bits)).contiguous()

    def _decode(self, index: int) -> Tensor:
        rows = self._slices[index]
        shape = (rows.stop - rows.start, *self.shape[1:])
        tile = self._tiles[index]
        if self.packed:
            tile = unpack(tile, self.bits, math.prod(shape)).view(shape)
            if self.tracker is not None:
                self.tracker.track(tile)
        return tile

    def _covering(self, rows: slice) -> range:
        start, stop, _ = rows.indices(self.shape[0])
        return range(start // self.tile_rows, -(-stop // self.tile_rows))

    def read(self, rows: slice = slice(None)) -> Tensor:
        """The integers of ``rows`` (a new tensor when packed; the container itself if not)."""
        whole = self._index.get((rows.start, rows.stop))
        if whole is not None:  # one whole tile: the common case, looked up
            return self._decode(whole)
        start, stop, _ = rows.indices(self.shape[0])
        tiles = self._covering(rows)
        if len(tiles) == 1 and self._slices[tiles[0]] == slice(start, stop):
            return self._decode(tiles[0])
        first = tiles[0] * self.tile_rows
        joined = torch.cat([self._decode(i).to(torch.int32) for i in tiles])
        return joined[start - first: stop - first]

    def write(self, rows: slice, values: Tensor) -> None:
        """Store integer-valued ``values`` (in range for ``bits``) as the rows ``rows``."""
        whole = self._index.get((rows.start, rows.stop))
        if whole is not None:
            self._tiles[whole] = self._encode(values, self.bits)
            return
        start, stop, _ = rows.indices(self.shape[0])
        for index in self._covering(rows):
            tile = self._slices[index]
            lo, hi = max(start, tile.start), min(stop, tile.stop)
            part = values[lo - start: hi - start]
            if (lo, hi) != (tile.start, tile.stop):  # a part of the tile: merge
                merged = self._decode(index).to(torch.int32).clone()
                merged[lo - tile.start: hi - tile.start] = part.to(torch.int32)
                part = merged
            self._tiles[index] = self._encode(part, self.bits)

    def remap(self, bits: int, change: Callable[[Tensor], Tensor]) -> None:
        """Every tile through ``change`` (int32 in, integer values out), stored at ``bits``."""
        decoded = (self._decode(i).to(torch.int32) for i in range(len(self._tiles)))
        # decoded lazily: one tile unpacked at a time, read at the old bits, stored at the new
        self._tiles = [self._encode(change(q), bits) for q in decoded]
        self.bits = bits

    @property
    def nbytes(self) -> int:
        """Bytes the stored tiles occupy."""
        return sum(t.numel() * t.element_size() for t in self._tiles)


class QuantisedWeight:
    """A layer's weights as integers ``q`` and one fp32 ``scale``: w = q x scale.

    No fp32 copy of the weights is kept: ``dequantise`` makes one for a single computation and
    the caller drops it. The integers live in a ``TileStore`` (bit-packed by default).
    """

    def __init__(self, weight: Tensor, bits: int, tile_rows: int = 0,
                 packed: bool = True) -> None:
        container_dtype(bits)  # validates
        self.saturated = 0  # values clipped at the range limit, for diagnostics
        self.rescales = 0  # times the range doubled to hold a grown weight
        peak = weight.detach().abs().max().item()
        self.scale = (peak / qmax(bits)) if peak > 0 else 1.0 / qmax(bits)
        self.tiles = TileStore(self._encode(weight.detach() / self.scale, "nearest", bits=bits),
                               bits, tile_rows, packed)

    @property
    def bits(self) -> int:
        """The current bitwidth (the store's)."""
        return self.tiles.bits

    @property
    def q(self) -> Tensor:
        """All the integers, in the smallest container (a new tensor when packed)."""
        return self.tiles.read().to(container_dtype(self.bits))

    @property
    def shape(self) -> tuple[int, ...]:
        """The weight's shape."""
        return self.tiles.shape

    def _encode(self, values: Tensor, rounding: str, generator=None,
                bits: int | None = None, peak: float | None = None) -> Tensor:
        """Round ``values`` to integers within the range; ``peak``: their largest magnitude.

        Rounding moves a value by less than 1, so with ``peak`` <= limit - 1 none can leave
        the range and the count of clipped values is skipped (it is 0).
        """
        limit = qmax(bits or self.bits)
        rounded = round_tensor(values, rounding, generator)
        if peak is None or peak > limit - 1:
            self.saturated += int((rounded.abs() > limit).sum())
        return rounded.clamp_(-limit, limit)

    def dequantise(self, rows: slice = slice(None)) -> Tensor:
        """fp32 weights (of output rows ``rows``), newly made: transient by contract."""
        return self.weights_of(self.tiles.read(rows))

    def weights_of(self, q: Tensor) -> Tensor:
        """fp32 weights of integers ``q`` read from this store (a new tensor)."""
        return q.to(torch.float32).mul_(self.scale)

    def integers_of(self, weight: Tensor) -> Tensor:
        """The integers behind ``weights_of``'s ``weight``, as fp32 values, in its place.

        Exact: q x scale rounds q's 16 bits at most 2^-8 away, and rounding undoes that.
        """
        return weight.div_(self.scale).round_()

    def apply_update(self, delta: Tensor, rounding: str,
                     generator: torch.Generator | None = None,
                     rows: slice = slice(None), integers: Tensor | None = None) -> None:
        """Add ``delta`` to the weights of output rows ``rows``: q += round(delta / scale).

        Dynamic fixed point: where a value would leave the range, the whole layer's scale doubles
        (its integers halve) until it fits, instead of clipping the update. ``integers``: the
        rows' integers as fp32 values, when the caller holds them (``integers_of``); they are
        updated in place, so the tile is not decoded again.
        """
        self.apply_step(delta, 1.0 / self.scale, rounding, generator, rows, integers)

    def apply_step(self, direction: Tensor, steps_per_unit: float, rounding: str,
                   generator: torch.Generator | None = None, rows: slice = slice(None),
                   integers: Tensor | None = None) -> None:
        """``apply_update`` of ``direction`` x ``steps_per_unit`` x scale: q += that, rounded.

        The update given in quantisation steps, so it is added in one fused pass.
        """
        values = self.tiles.read(rows).to(torch.float32) if integers is None else integers
        values.add_(direction, alpha=steps_per_unit)
        limit = qmax(self.bits)
        peak = values.abs().max().item()
        while peak > limit + 0.5:
            values /= 2
            peak /= 2
            self.scale *= 2
            self.tiles.remap(self.bits, lambda q: round_tensor(q / 2, "nearest"))
            self.rescales += 1
        self.tiles.write(rows, self._encode(values, rounding, generator, peak=peak))

    def gain_bit(self) -> None:
        """One more bit: halve the scale and double the integers, so no value changes."""
        if self.bits >= MAX_BITS:
            return
        self.tiles.remap(self.bits + 1, lambda q: q * 2)
        self.scale /= 2

    def lose_bit(self, rounding: str = "nearest") -> None:
        """One bit less: double the scale and halve the integers (rounded: lossy)."""
        if self.bits <= MIN_BITS:
            return
        bits = self.bits - 1
        self.scale *= 2
        self.tiles.remap(bits, lambda q: self._encode(q / 2, rounding, bits=bits))

    @property
    def nbytes(self) -> int:
        """Bytes the integers occupy as stored (packed, or in containers)."""
        return self.tiles.nbytes


class QuantisedMomentum:
    """SGD's momentum buffer as integers with one scale per tile: no fp32 buffer between steps.

    Each step reads a tile's buffer, updates it in fp32 for that step alone, and stores it
    again at ``bits`` with a scale fitted to the tile's largest value (block floating point),
    rounded stochastically so the stored buffer is unbiased.

    >>> m = QuantisedMomentum((64, 9), bits=8, tile_rows=32)
    >>> buf = m.update(slice(0, 32), torch.ones(32, 9), momentum=0.9)
    >>> bool(torch.equal(buf, torch.ones(32, 9))), m.nbytes   # 576 int8 values + 2 scales
    (True, 584)
    """

    def __init__(self, shape: tuple[int, ...], bits: int = 8, tile_rows: int = 0,
                 packed: bool = True) -> None:
        self.tiles = TileStore(torch.zeros(shape, dtype=torch.int32), bits, tile_rows, packed)
        self.scales = [0.0] * len(self.tiles.slices())

    def update(self, rows: slice, grad: Tensor, momentum: float,
               generator: torch.Generator | None = None) -> Tensor:
        """Buf = momentum x buf + grad for the tile ``rows``; returns this step's fp32 buf."""
        index = self.tiles.tile_index(rows)  # one whole tile: its scale is its own
        if index is None:
            raise ValueError(f"momentum is kept per tile: rows {rows} are not one tile")
        buf = self.tiles.read(rows).to(torch.float32).mul_(self.scales[index] * momentum)
        buf.add_(grad)
        limit = qmax(self.tiles.bits)
        peak = buf.abs().max().item()  # (vector_norm's inf norm is 6x slower here)
        scale = peak / limit if peak > 0 else 1.0
        self.tiles.write(rows, round_tensor(buf, "stochastic", generator, factor=1.0 / scale)
                         .clamp_(-limit, limit))
        self.scales[index] = scale
        return buf

    @property
    def nbytes(self) -> int:
        """Bytes of the integers and the per-tile scales (fp32)."""
        return self.tiles.nbytes + 4 * len(self.scales)
