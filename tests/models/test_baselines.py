"""The three baselines (independent, Tann, slimmable): the shared interface and their invariants."""

from itertools import pairwise

import pytest
import torch

from dyndnn.config import TrainSection
from dyndnn.evaluation import switch_costs
from dyndnn.models import (
    BASELINES,
    FAMILIES,
    GroupNet,
    IndependentModels,
    SlimmableNet,
    TannNet,
    build_model,
    matched_fractions,
)
from dyndnn.models.sizing import cumulative_channels, group_full_macs
from dyndnn.models.slim_layers import SwitchableBatchNorm2d
from dyndnn.models.tann_layers import TannConv2d
from dyndnn.record.checkpoint import load_checkpoint, save_checkpoint
from dyndnn.training.trainer import IncrementalTrainer, joint_step

CFG = TrainSection(epochs_per_stage=1, lr=0.05)
SPEC = {"groups": 3, "width": 0.125, "in_channels": 1, "image_size": 28}


def new(family, **changes):
    torch.manual_seed(0)
    return build_model({"family": family, **SPEC, **changes})


def images(dataset, n=40):
    return dataset.test_x[:n].float() / 255


def outputs(model, x, k):
    model.eval()
    with torch.no_grad(), model.active_groups(k):
        return model(x)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_has_the_group_models_interface(family, tmp_path):
    model = new(family).eval()
    with torch.no_grad():  # distinct BN per configuration, so a wrong BN in export shows
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(3, 1, 28, 28)
    macs = [model.macs(k) for k in (1, 2, 3)]
    assert macs == sorted(macs) and len(set(macs)) == 3
    assert [model.param_bytes(k) for k in (1, 2, 3)] == sorted(
        model.param_bytes(k) for k in (1, 2, 3))
    for k in (1, 2, 3):
        model.set_active_groups(k)
        assert torch.allclose(model.export(k)(x), model(x), atol=1e-5), k
    with pytest.raises(ValueError, match="between 1 and 3"):
        model.set_active_groups(4)
    # a checkpoint rebuilds the same family with the same outputs
    save_checkpoint(tmp_path / "m.pt", model, stage=3)
    again, _ = load_checkpoint(tmp_path / "m.pt")
    assert type(again) is type(model)
    assert torch.equal(outputs(again, x, 2), outputs(model, x, 2))


@pytest.mark.parametrize("family", sorted(BASELINES))
def test_baselines_are_sized_to_the_group_models_compression_rate(family):
    group = GroupNet(groups=4, width=0.25, in_channels=1, image_size=28)
    model = build_model({"family": family, "groups": 4, "width": 0.25, "in_channels": 1,
                         "image_size": 28})
    for k in (1, 2, 3):
        mine, theirs = model.macs(k) / model.macs(4), group.macs(k) / group.macs(4)
        assert mine == pytest.approx(theirs, abs=0.02), k  # whole channels: within 2 points


@pytest.mark.parametrize("family", sorted(BASELINES))
def test_baseline_budgets_macs_and_width(family):
    group = GroupNet(groups=4, width=0.25, in_channels=1, image_size=28)
    base = {"family": family, "groups": 4, "width": 0.25, "in_channels": 1, "image_size": 28}
    same_cost = build_model({**base, "budget": "macs"})
    assert same_cost.macs(4) == pytest.approx(group.macs(4), rel=0.01)
    same_widths = build_model({**base, "budget": "width"})
    assert same_widths.macs(4) > 2 * group.macs(4)  # dense-ish at the group model's widths
    assert group_full_macs(same_cost.spec) == group.macs(4)
    with pytest.raises(ValueError, match="budget must be one of"):
        build_model({**base, "budget": "flops"})


def test_independent_memory_against_the_group_model_under_each_budget():
    """Same full MACs: memory is about 1 + 3/4 + 1/2 + 1/4 = 2.5 times the group model's."""
    group = GroupNet(groups=4, width=0.25, in_channels=1, image_size=28)
    base = {"family": "independent", "groups": 4, "width": 0.25, "in_channels": 1,
            "image_size": 28}
    ratio = build_model(base).serving_bytes() / group.serving_bytes()
    assert 2.3 < ratio < 2.8
    assert build_model({**base, "budget": "width"}).serving_bytes() > 3 * ratio * \
        group.serving_bytes()


def test_matched_fractions_solve_a_quadratic_cost():
    fractions = matched_fractions(lambda f: f[-1] ** 2, 4)
    assert [round(f, 3) for f in fractions] == [0.5, 0.707, 0.866, 1.0]
    # a cost that depends on the whole split (lower-triangular) is solved against its own total
    tri = matched_fractions(lambda f: sum((b - a) * b for a, b in pairwise([0, *f])), 3)
    total = sum((b - a) * b for a, b in pairwise([0, *tri]))
    for k in (1, 2):
        part = sum((b - a) * b for a, b in pairwise([0, *tri[:k]]))
        assert part / total == pytest.approx(k / 3, abs=1e-6)
    assert cumulative_channels(4, (0.1, 0.2, 0.3, 1.0)) == (1, 2, 3, 4)  # never an empty block
    with pytest.raises(ValueError, match="raise model.width"):
        cumulative_channels(2, (0.5, 0.7, 1.0))


def test_tann_pruned_outputs_unchanged_after_a_later_stage(mini_dataset):
    """Block g reads only blocks 1..g: training block k+1 leaves configurations 1..k alone."""
    model = new("tann")
    trainer = IncrementalTrainer(model, mini_dataset, CFG, batch_size=64, progress=False)
    x = images(mini_dataset)
    seen = {}
    for stage in (1, 2, 3):
        trainer.train_stage(stage)
        for k in range(1, stage + 1):
            out = outputs(model, x, k)
            if k in seen:
                assert torch.equal(out, seen[k]), f"configuration {k} moved in stage {stage}"
            seen[k] = out
    assert not torch.equal(seen[3], seen[2])


def test_tann_blocks_read_every_earlier_block():
    model = new("tann")
    convs = [m for m in model.modules() if isinstance(m, TannConv2d)]
    first = [block.out_channels for block in convs[0].blocks]
    second = convs[1].blocks  # block g of conv 2 reads blocks 1..g of conv 1
    assert [block.in_channels for block in second] == [sum(first[:g + 1]) for g in range(3)]
    # stored and computed: the lower triangle, between block-diagonal and dense
    kernel = second[0].kernel_size[0] ** 2
    outs = [block.out_channels for block in second]
    triangle = sum(block.weight.numel() for block in second)
    diagonal = sum(o * i for o, i in zip(outs, first, strict=True)) * kernel
    dense = sum(outs) * sum(first) * kernel
    assert diagonal < triangle < dense


def test_slimmable_each_width_keeps_its_own_bn_statistics(mini_dataset):
    model = new("slimmable")
    norms = [m.norms for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]
    x = images(mini_dataset, 64)
    stats = lambda: [bn.running_mean.clone() for layer in norms for bn in layer]  # noqa: E731
    before = stats()
    model.train()
    with torch.no_grad(), model.active_groups(1):
        model(x)  # a training-mode pass at width 1 updates width 1's BN only
    after = stats()
    per_width = len(norms[0])
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        assert torch.equal(a, b) == (i % per_width != 0), (i // per_width, i % per_width + 1)
    # serving width 1 reads width 1's BN: changing width 2's statistics leaves it alone
    base = outputs(model, x, 1)
    norms[2][1].running_mean.add_(1.0)
    assert torch.equal(outputs(model, x, 1), base)
    assert not torch.equal(outputs(model, x, 2), outputs(new("slimmable"), x, 2))


def test_slimmable_trains_every_width_in_one_joint_stage(mini_dataset):
    model = new("slimmable")
    assert model.training_stages == 1 and model.stage_parameters(1) == list(model.parameters())
    x, y = images(mini_dataset, 64), mini_dataset.test_y[:64]
    model.train()
    loss, logits = joint_step(model, x, y, 1, CFG)
    assert logits.shape == (64, 10) and loss > 0
    # every width's switchable BN received a gradient: all widths were in the summed loss
    assert all(bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0
               for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)
               for bn in m.norms)
    history = IncrementalTrainer(model, mini_dataset, CFG, batch_size=64, progress=False).fit()
    assert list(history["stage"]) == [1] and set(history["model"]) == {"slimmable"}


def test_independent_memory_is_the_sum_and_training_one_leaves_the_others(mini_dataset,
                                                                          tmp_path):
    model = new("independent")
    assert model.serving_bytes() == sum(model.param_bytes(k) for k in (1, 2, 3))
    state = [t for net in model.nets for name, t in net.state_dict().items()
             if not name.endswith("num_batches_tracked")]
    assert model.serving_bytes() == sum(t.numel() * t.element_size() for t in state)
    x = images(mini_dataset)
    trainer = IncrementalTrainer(model, mini_dataset, CFG, batch_size=64, progress=False)
    trainer.train_stage(1)
    first = outputs(model, x, 1)
    untouched = [p.clone() for p in model.nets[2].parameters()]
    trainer.train_stage(2)
    assert torch.equal(outputs(model, x, 1), first)
    assert all(torch.equal(a, b) for a, b in zip(untouched, model.nets[2].parameters(),
                                                 strict=True))
    costs = switch_costs(model, tmp_path, rounds=10)
    assert costs["load_s"].gt(0).all() and costs["assign_s"].gt(0).all()
    assert (costs["load_s"] > costs["assign_s"]).all()  # a load costs more than a pointer
    assert costs["switch_eager_s"].notna().all() and costs["switch_onnxruntime_s"].notna().all()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"independent-k{k}.pt"
                                                         for k in (1, 2, 3)]


def test_dynamic_families_switch_without_a_load():
    for family in ("group", "tann", "slimmable"):
        costs = switch_costs(new(family), rounds=5, backends=("eager",))
        assert costs["load_s"].isna().all() and costs["assign_s"].gt(0).all()
        assert "switch_onnxruntime_s" not in costs and costs["switch_eager_s"].notna().all()


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown model family 'resnet'"):
        build_model({"family": "resnet", **SPEC})
    assert {IndependentModels, TannNet, SlimmableNet} == set(BASELINES.values())
