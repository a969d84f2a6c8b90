"""RunLayout: the one place run paths come from, and the checks before a folder is used."""

import os

import pytest

from dyndnn.errors import RunFolderError
from dyndnn.layout import RunLayout


def test_paths_per_family_and_stage(tmp_path):
    run = RunLayout(tmp_path)
    assert run.final_checkpoint("group-alexnet", 3) == tmp_path / "checkpoints" / "stage3.pt"
    assert run.final_checkpoint("tann", 3) == tmp_path / "checkpoints" / "tann" / "stage3.pt"
    assert run.final_checkpoint("slimmable", 3).name == "stage1.pt"  # one joint stage
    assert run.resume_checkpoint("independent").parent.name == "independent"
    with pytest.raises(RunFolderError, match="unknown model family 'resnet'"):
        run.checkpoint_folder("resnet")


def test_claim_refuses_a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        RunLayout(path).claim()
    assert path.read_text() == "mine"


def test_claim_refuses_a_foreign_non_empty_folder_and_touches_nothing(tmp_path):
    (tmp_path / "config.yaml").write_text("my own config\n")
    (tmp_path / "train.csv").write_text("my,own\n")
    with pytest.raises(RunFolderError, match=r"not empty \(config.yaml, train.csv\) and is not "
                                             "a dyndnn run folder"):
        with RunLayout(tmp_path).lock():
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "train.csv"]
    assert (tmp_path / "config.yaml").read_text() == "my own config\n"


def test_claim_refuses_a_place_that_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunFolderError, match="cannot create run folder .*file/run"):
        RunLayout(tmp_path / "file" / "run").claim()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_claim_refuses_an_unwritable_folder(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(RunFolderError, match="cannot create run folder"):
            RunLayout(tmp_path / "run").claim()
    finally:
        tmp_path.chmod(0o700)


def test_an_empty_folder_becomes_a_run_folder_when_locked(tmp_path):
    layout = RunLayout(tmp_path / "interactive")
    assert not layout.is_run_folder()
    with layout.lock():
        pass
    assert layout.is_run_folder()
    with layout.lock():  # and is accepted again
        pass
