import pytest
import torch
from torch import nn

from dyndnn.errors import ConfigError
from dyndnn.rct import RctSettings, convert, to_plain
from dyndnn.rct.controller import BitwidthController
from dyndnn.rct.layers import RctConv, RctLinear


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 6 * 6, 10))


def test_forward_matches_the_plain_layer_on_quantised_values():
    plain = net()
    rct = convert(net(), "rct", RctSettings(bits_init=16, bits_max=16, act_bits=16, tile_rows=3))
    x = torch.randn(4, 1, 6, 6)
    with torch.no_grad():
        assert torch.allclose(rct(x), plain(x), atol=2e-3)
    assert isinstance(rct[0], RctConv) and isinstance(rct[3], RctLinear)


def test_backward_updates_integers_like_sgd():
    settings = RctSettings(bits_init=16, bits_max=16, act_bits=16, err_bits=16, tile_rows=4,
                           rounding="nearest")
    plain, rct = net(), convert(net(), "rct", settings)
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 10, (8,))
    lr = 0.5
    torch.nn.functional.cross_entropy(plain(x), y).backward()
    expected = plain[3].weight.detach() - lr * plain[3].weight.grad
    rct[3].hyper = {"lr": lr, "momentum": 0.0, "weight_decay": 0.0}
    rct[0].hyper = dict(rct[3].hyper)
    torch.nn.functional.cross_entropy(rct(x), y).backward()
    got = rct[3].store.dequantise()
    assert torch.allclose(got, expected, atol=4 * rct[3].store.scale + 1e-3)
    assert not torch.allclose(got, plain[3].weight.detach(), atol=1e-4)  # it moved


def test_no_fp32_weight_exists_in_the_converted_module():
    rct = convert(net(), "rct", RctSettings())
    floats = [t for t in list(rct.parameters()) + list(rct.buffers()) if t.dim() >= 2]
    assert floats == []
    assert all(m.store.q.dtype == torch.int8 for m in (rct[0], rct[3]))


def test_to_plain_round_trip():
    rct = convert(net(), "rct", RctSettings())
    expected = [rct[0].store.dequantise(), rct[3].store.dequantise(), rct[3].bias.detach()]
    plain = to_plain(rct)
    assert isinstance(plain[0], nn.Conv2d) and isinstance(plain[3], nn.Linear)
    got = [plain[0].weight.detach(), plain[3].weight.detach(), plain[3].bias.detach()]
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))


class FakeLayer:
    def __init__(self, gavg, bits=8):
        from dyndnn.rct.quant import QuantisedWeight
        self.gavg, self.store = gavg, QuantisedWeight(torch.randn(4, 4), bits)

    def take_gavg(self):
        return self.gavg


def test_bitwidth_rule_follows_gavg():
    settings = RctSettings(t_min=0.1, t_max=2.0, bits_min=6, bits_max=10)
    controller = BitwidthController(settings)
    layers = {"small": FakeLayer(0.01), "ok": FakeLayer(0.5), "big": FakeLayer(5.0),
              "floor": FakeLayer(5.0, bits=6), "ceiling": FakeLayer(0.01, bits=10)}
    controller.check(50, layers)
    bits = {name: layer.store.bits for name, layer in layers.items()}
    assert bits == {"small": 9, "ok": 8, "big": 7, "floor": 6, "ceiling": 10}
    assert [r["change"] for r in controller.trajectory] == [1, 0, -1, -1, 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"bits_init": 1}, "between 2 and 16"),
    ({"bits_max": 17}, "between 2 and 16"),
    ({"t_min": 3.0, "t_max": 1.0}, "0 < t_min < t_max"),
    ({"bits_min": 10, "bits_init": 8}, "bits_min <= bits_init <= bits_max"),
    ({"rounding": "up"}, "rounding must be one of"),
    ({"interval": 0}, "interval must be >= 1"),
])
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RctSettings(**kwargs)


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_fake_quant_gives_torchs_fake_quantize_values_and_a_straight_through_gradient(bits):
    from dyndnn.rct.qat import fake_quant
    from dyndnn.rct.quant import qmax

    generator = torch.Generator().manual_seed(bits)
    for shape, magnitude in (((64, 24, 14, 14), 1.0), ((32, 64), 50.0), ((7,), 1e-3)):
        x = torch.randn(shape, generator=generator) * magnitude
        scale = (x.abs().max() / qmax(bits)).item()
        reference = torch.fake_quantize_per_tensor_affine(x, scale, 0, -qmax(bits), qmax(bits))
        assert torch.equal(fake_quant(x, bits), reference)
    x = torch.randn(10, requires_grad=True)
    (fake_quant(x, bits) * torch.arange(10.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(10.0))
    assert torch.equal(fake_quant(torch.zeros(3), bits), torch.zeros(3))
