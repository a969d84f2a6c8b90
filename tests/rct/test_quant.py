import pytest
import torch

from dyndnn.rct.quant import QuantisedWeight, container_dtype, round_tensor


def test_container_is_the_smallest_integer_type():
    assert container_dtype(4) == torch.int8 and container_dtype(8) == torch.int8
    assert container_dtype(9) == torch.int16 and container_dtype(16) == torch.int16
    for bad in (1, 17):
        with pytest.raises(ValueError, match="between 2 and 16"):
            container_dtype(bad)


def test_stochastic_rounding_is_unbiased_and_nearest_is_exact():
    x = torch.full((200_000,), 0.3)
    g = torch.Generator().manual_seed(0)
    rounded = round_tensor(x, "stochastic", g)
    assert set(rounded.unique().tolist()) == {0.0, 1.0}
    assert abs(rounded.mean().item() - 0.3) < 0.005  # E[round(x)] = x
    assert round_tensor(torch.tensor([0.4, 0.6, -1.6, 2.5]), "nearest").tolist() == [0, 1, -2, 2]
    with pytest.raises(ValueError, match="rounding must be one of"):
        round_tensor(x, "up")


def test_gaining_a_bit_never_changes_a_value():
    store = QuantisedWeight(torch.randn(64, 32), bits=8)
    before = store.dequantise()
    for _ in range(8):  # 8 -> 16 bits, through the int8 -> int16 container change
        store.gain_bit()
        assert torch.equal(store.dequantise(), before)
    assert store.bits == 16 and store.q.dtype == torch.int16
    store.gain_bit()  # at the bound: nothing changes
    assert store.bits == 16 and torch.equal(store.dequantise(), before)


def test_losing_a_bit_halves_resolution():
    w = torch.randn(16, 16)
    store = QuantisedWeight(w, bits=8)
    assert (store.dequantise() - w).abs().max() <= store.scale / 2 + 1e-7
    scale = store.scale
    store.lose_bit()
    assert store.bits == 7 and store.q.abs().max() <= 63 and store.scale == 2 * scale


def test_updates_land_on_the_integers_and_underflow_is_lost():
    store = QuantisedWeight(torch.randn(16, 16), bits=8)
    q0 = store.q.long()
    mask = (q0.abs() < 100).float()
    store.apply_update(3 * store.scale * mask, "nearest")
    assert torch.equal(store.q.long(), q0 + 3 * mask.long())
    before = store.q.clone()
    store.apply_update(torch.full((16, 16), 0.1 * store.scale), "nearest")  # underflows
    assert torch.equal(store.q, before)


def test_growth_beyond_the_range_rescales_instead_of_clipping():
    store = QuantisedWeight(torch.randn(8, 8), bits=8)
    before = store.dequantise()
    delta = torch.zeros(8, 8)
    delta[0, 0] = before.abs().max() * 1.5  # one weight grows past the range
    store.apply_update(delta, "nearest")
    assert store.rescales == 1 and store.saturated == 0
    assert (store.dequantise() - (before + delta)).abs().max() <= store.scale
