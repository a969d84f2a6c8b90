import pytest
import torch

from dyndnn.rct.packing import pack, packed_bytes, unpack
from dyndnn.rct.quant import QuantisedMomentum, QuantisedWeight, TileStore


@pytest.mark.parametrize("bits", range(2, 17))
def test_every_value_of_every_width_round_trips(bits):
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)
    values = torch.cat([torch.arange(low, high)[:5000], torch.randint(low, high, (997,))])
    packed = pack(values, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == packed_bytes(len(values), bits)
    unpacked = unpack(packed, bits, len(values))
    assert unpacked.dtype == torch.int16 and torch.equal(unpacked.int(), values.int())


def test_bad_widths_are_refused():
    for bits in (1, 17):
        with pytest.raises(ValueError, match="between 2 and 16"):
            pack(torch.zeros(4, dtype=torch.int32), bits)


def test_weight_bytes_follow_the_bitwidth_when_packed():
    weight = torch.randn(64, 72)  # 4,608 values, 2 tiles of 32 rows
    store = QuantisedWeight(weight, 4, tile_rows=32)
    containers = QuantisedWeight(weight, 4, tile_rows=32, packed=False)
    for bits in range(4, 17):
        assert store.nbytes == 2 * packed_bytes(32 * 72, bits)  # b/8 bytes a weight
        assert containers.nbytes == 4608 * (1 if bits <= 8 else 2)
        assert torch.equal(store.dequantise(), containers.dequantise())  # same values
        store.gain_bit()
        containers.gain_bit()


def test_packed_and_container_stores_train_identically():
    weight, generator = torch.randn(40, 9), torch.Generator()
    stores = [QuantisedWeight(weight, 7, tile_rows=16, packed=p) for p in (True, False)]
    for store in stores:
        generator.manual_seed(0)
        for step in range(6):
            rows = slice(16 * (step % 3), min(40, 16 * (step % 3) + 16))
            store.apply_update(torch.randn(rows.stop - rows.start, 9,
                                           generator=generator) * 0.05,
                               "stochastic", generator, rows)
            if step == 3:
                store.lose_bit()
    assert stores[0].bits == stores[1].bits == 6
    assert torch.equal(stores[0].dequantise(), stores[1].dequantise())


def test_tile_store_writes_part_of_a_tile_and_reads_across_tiles():
    q = torch.arange(-50, 50).reshape(20, 5)
    store = TileStore(q, bits=8, tile_rows=8)
    assert [s.stop - s.start for s in store.slices()] == [8, 8, 4]
    store.write(slice(6, 11), torch.zeros(5, 5))  # the end of tile 0, the start of tile 1
    expected = q.clone()
    expected[6:11] = 0
    assert torch.equal(store.read(), expected.int())
    assert torch.equal(store.read(slice(5, 13)), expected[5:13].int())


def test_quantised_momentum_tracks_fp32_momentum_without_bias():
    torch.manual_seed(0)
    shape, momentum = (32, 50), 0.9
    exact = torch.zeros(shape)
    quantised = QuantisedMomentum(shape, bits=8, tile_rows=32)
    generator = torch.Generator().manual_seed(1)
    for _ in range(40):
        grad = torch.randn(shape)
        exact.mul_(momentum).add_(grad)
        got = quantised.update(slice(0, 32), grad, momentum, generator)
    # this step's buffer is within a few steps of the 8-bit grid of the exact one
    error = (got - exact).abs().max() / exact.abs().max()
    assert error < 0.03
    assert quantised.nbytes == 32 * 50 + 4  # int8 values and one fp32 scale


def test_quantised_momentum_needs_whole_tiles():
    quantised = QuantisedMomentum((64, 4), bits=8, tile_rows=32)
    with pytest.raises(ValueError):
        quantised.update(slice(0, 16), torch.ones(16, 4), 0.9)
