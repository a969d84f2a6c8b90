import pytest
import torch

from dyndnn.config import TrainSection
from dyndnn.models import GroupNet
from dyndnn.record.checkpoint import load_checkpoint
from dyndnn.training.trainer import IncrementalTrainer, learning_rate

CFG = TrainSection(epochs_per_stage=2, lr=0.05)


def new_model(groups=3):
    torch.manual_seed(0)
    return GroupNet(groups=groups, width=0.125, in_channels=1, image_size=28, dropout=0.2)


def snapshot(tensors):
    return [t.detach().clone() for t in tensors]


def test_stage_invariant_pruned_outputs_are_bit_identical(mini_dataset):
    """After stage k+1, the model pruned to k gives bit-for-bit its outputs after stage k."""
    model = new_model()
    trainer = IncrementalTrainer(model, mini_dataset, CFG, batch_size=64, progress=False)
    x = mini_dataset.test_x[:50].float() / 255
    outputs = {}
    for k in range(1, model.groups + 1):
        trainer.train_stage(k)
        model.eval()
        for j in range(1, k + 1):
            with torch.no_grad(), model.active_groups(j):
                out = model(x)
            if j in outputs:
                assert torch.equal(out, outputs[j]), f"config {j} changed in stage {k}"
            outputs[j] = out
    # and the last stage did change the full model's outputs (it trained something)
    assert not torch.equal(outputs[model.groups], outputs[model.groups - 1])


def test_frozen_groups_and_bn_statistics_stay_put_and_get_no_gradients(mini_dataset):
    model = new_model()
    trainer = IncrementalTrainer(model, mini_dataset, CFG, batch_size=64, progress=False)
    trainer.train_stage(1)
    frozen = snapshot(model.group_state(0))
    later = snapshot(model.group_state(2))
    seen_grads = []

    def check_grads(stage, epoch, batch):
        if batch == 1:  # after one optimiser step of this stage
            seen_grads.append([p.grad for p in model.group_parameters(0)])

    trainer.on_batch = check_grads
    trainer.train_stage(2)
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.group_state(0), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(later, model.group_state(2), strict=True))
    assert all(g is None for grads in seen_grads for g in grads)
    trained = model.group_state(1)
    assert any(p.grad is not None for p in model.group_parameters(1))
    assert not all(torch.equal(a, b) for a, b in zip(snapshot(trained), new_model().group_state(1),
                                                     strict=True))


def test_kill_and_resume_gives_identical_weights(mini_dataset, tmp_path):
    reference = new_model()
    IncrementalTrainer(reference, mini_dataset, CFG, batch_size=64, run_dir=tmp_path / "a",
                       progress=False).fit()

    class Killed(Exception):
        pass

    def kill(stage, epoch, batch):
        if (stage, epoch, batch) == (2, 1, 3):  # mid-epoch, mid-stage
            raise Killed

    model = new_model()
    with pytest.raises(Killed):
        IncrementalTrainer(model, mini_dataset, CFG, batch_size=64, run_dir=tmp_path / "b",
                           progress=False, on_batch=kill).fit()
    resumed = new_model()  # a fresh process would start from a fresh model
    history = IncrementalTrainer(resumed, mini_dataset, CFG, batch_size=64,
                                 run_dir=tmp_path / "b", progress=False).fit()
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert list(history[["stage", "epoch"]].itertuples(index=False, name=None)) == [
        (s, e) for s in (1, 2, 3) for e in (1, 2)]
    final, meta = load_checkpoint(tmp_path / "b" / "checkpoints" / "stage3.pt")
    assert meta["stage"] == 3
    classifier = [n for n in reference.state_dict() if n.endswith("bias_groups.2")][-1]
    assert torch.equal(final.state_dict()[classifier], reference.state_dict()[classifier])


def test_train_csv_follows_the_contract(mini_dataset, tmp_path, monkeypatch):
    from dyndnn.evaluation import accuracy as evaluate

    splits = []
    real = evaluate.batches
    monkeypatch.setattr(evaluate, "batches",
                        lambda ds, split, *a, **k: splits.append(split) or real(ds, split, *a,
                                                                                **k))
    model = new_model(groups=2)
    IncrementalTrainer(model, mini_dataset, TrainSection(epochs_per_stage=1), batch_size=128,
                       run_dir=tmp_path, progress=False).fit()
    import pandas as pd

    frame = pd.read_csv(tmp_path / "train.csv")
    assert list(frame["stage"]) == [1, 2]
    for column in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "time_s",
                   "images_per_s"):
        assert (frame[column] > 0).all()
    # the curves are the validation split's: training never reads the test split
    assert "test_accuracy" not in frame and splits == ["val", "val"]


def test_learning_rate_schedules():
    cos = TrainSection(schedule="cosine", lr=1.0)
    assert learning_rate(cos, 0, 10) == 1.0 and learning_rate(cos, 10, 10) == pytest.approx(0)
    assert learning_rate(TrainSection(schedule="constant", lr=0.3), 7, 10) == 0.3
    one = TrainSection(schedule="onecycle", lr=1.0)
    assert learning_rate(one, 0, 100) < learning_rate(one, 15, 100) == pytest.approx(1.0)


def test_mean_rule_stages_train_alone_and_keep_the_invariant(mini_dataset):
    torch.manual_seed(0)
    model = GroupNet(groups=2, width=0.125, in_channels=1, image_size=28, combine="mean")
    trainer = IncrementalTrainer(model, mini_dataset, CFG, batch_size=64, progress=False)
    x = mini_dataset.test_x[:50].float() / 255
    trainer.train_stage(1)
    with torch.no_grad(), model.active_groups(1):
        after_stage1 = model(x)
    trainer.train_stage(2)
    model.eval()
    with torch.no_grad():
        with model.active_groups(1):
            assert torch.equal(model(x), after_stage1)
        with model.active_groups(2):
            both = model(x)
        alone = model.forward_groups(x, 1, 2)
    torch.testing.assert_close(both, (after_stage1 + alone) / 2)


@pytest.mark.parametrize("change, listed", [
    (dict(epochs_per_stage=2), "epochs_per_stage 1 -> 2"),  # stage 1 kept 1, stage 2 got 2
    (dict(lr=0.01), "lr 0.05 -> 0.01"),
])
def test_resume_with_other_training_settings_is_refused_naming_them(mini_dataset, tmp_path,
                                                                    change, listed):
    from dataclasses import replace

    from dyndnn.errors import RunFolderError

    first = TrainSection(epochs_per_stage=1)
    IncrementalTrainer(new_model(groups=2), mini_dataset, first, batch_size=128,
                       run_dir=tmp_path, progress=False).fit()
    before = (tmp_path / "checkpoints" / "resume.pt").read_bytes()
    with pytest.raises(RunFolderError, match=listed):
        IncrementalTrainer(new_model(groups=2), mini_dataset, replace(first, **change),
                           batch_size=128, run_dir=tmp_path, progress=False).fit()
    with pytest.raises(RunFolderError, match="seed 0 -> 7"):
        IncrementalTrainer(new_model(groups=2), mini_dataset, first, batch_size=128, seed=7,
                           run_dir=tmp_path, progress=False).fit()
    assert (tmp_path / "checkpoints" / "resume.pt").read_bytes() == before


def test_the_joint_factor_sets_the_slimmable_stage_and_leave_staged_families_alone(mini_dataset,
                                                                            tmp_path):
    from dyndnn.models import BaselineSpec, SlimmableNet

    cfg = TrainSection(epochs_per_stage=1, joint_stage_factor=2, lr=0.05)
    torch.manual_seed(0)
    slim = SlimmableNet(BaselineSpec("slimmable", groups=2, width=0.125))
    rows = IncrementalTrainer(slim, mini_dataset, cfg, batch_size=128,
                              progress=False).fit()
    assert rows["epoch"].tolist() == [1, 2] and rows["stage"].tolist() == [1, 1]
    group = IncrementalTrainer(new_model(groups=2), mini_dataset, cfg, batch_size=128,
                               run_dir=tmp_path, progress=False).fit()
    assert group["epoch"].tolist() == [1, 1]  # one epoch a stage: the factor is not theirs
    # nor part of their training record: the group model resumes under another factor
    from dataclasses import replace
    again = IncrementalTrainer(new_model(groups=2), mini_dataset,
                               replace(cfg, joint_stage_factor=5), batch_size=128,
                               run_dir=tmp_path, progress=False).fit()
    assert again["epoch"].tolist() == [1, 1]
