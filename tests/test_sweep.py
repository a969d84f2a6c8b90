import pytest

from dyndnn import sweep
from dyndnn.evaluation import accuracy as evaluate


def test_a_sweep_scores_every_configuration_on_validation_only(monkeypatch):
    splits = []
    real = evaluate.batches
    monkeypatch.setattr(evaluate, "batches",
                        lambda ds, split, *a, **k: splits.append(split) or real(ds, split, *a,
                                                                                **k))
    table = sweep.sweep("quick", [{"lr": 0.05}, {"lr": 0.2}],
                        ["train_limit=200", "epochs_per_stage=1", "groups=2", "width=0.0625",
                         "val_fraction=0.2"])
    assert table[["lr", "groups"]].values.tolist() == [[0.05, 1], [0.05, 2], [0.2, 1], [0.2, 2]]
    assert set(splits) == {"val"}  # per-epoch curves and the final scores: never test
    assert (table["val_images"] == 40).all()  # 20 % of 200
    # the variants trained differently: not one model scored twice
    assert table.loc[table["lr"] == 0.05, "val_accuracy"].tolist() != \
        table.loc[table["lr"] == 0.2, "val_accuracy"].tolist()


def test_bad_variants_and_keys_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["-v", "width"])
    assert exit_info.value.code == 2 and "key=value" in capsys.readouterr().err
    assert sweep.main(["-v", "no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err


TINY_SWEEP = ["train_limit=200", "epochs_per_stage=1", "groups=2", "width=0.0625"]


def test_a_variant_may_name_a_family_and_its_joint_factor(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    assert sweep.main(["-v", "family=slimmable joint_stage_factor=2", "-v", "family=independent",
                       *[arg for key in TINY_SWEEP for arg in ("-p", key)],
                       "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    # both variants are in the table, the one without joint_stage_factor shown with "-"
    assert "slimmable" in shown and "independent" in shown and " -" in shown
    import pandas as pd
    table = pd.read_csv(out)
    assert table["family"].tolist() == ["slimmable"] * 2 + ["independent"] * 2
    # the slimmable network trained 2 joint epochs, the independent ones 1 each
    assert table.groupby("family")["train_s"].first().notna().all()


def test_an_unknown_family_is_refused_by_name(capsys):
    assert sweep.main(["-v", "family=resnet", *sum((["-p", k] for k in TINY_SWEEP), [])]) == 2
    assert "unknown family 'resnet'" in capsys.readouterr().err
