"""RunLayout: the one place run paths come from, and the checks before a folder is used."""

import os

import pytest

from dyndnn.errors import RunFolderError
from dyndnn.record.layout import DEFAULT_RUN_DIR, RunLayout, resolve_run_dir


def test_paths_per_family_and_stage(tmp_path):
    run = RunLayout(tmp_path)
    assert run.final_checkpoint("group", 3) == tmp_path / "checkpoints" / "stage3.pt"
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


@pytest.mark.parametrize("text", [b'{"format": "dyndnn-run", "status": "ok"', b"\x89PNG\r\n"])
def test_a_damaged_manifest_is_said_to_be_damaged_not_foreign(tmp_path, text):
    (tmp_path / "manifest.json").write_bytes(text)
    (tmp_path / "train.csv").write_text("model,stage\n")
    with pytest.raises(RunFolderError) as info:
        with RunLayout(tmp_path).lock():
            pass
    message = str(info.value)
    assert "manifest.json is damaged" in message and "Restore it from a copy" in message
    assert "not a dyndnn run folder" not in message and "new or empty" not in message
    assert (tmp_path / "manifest.json").read_bytes() == text  # nothing written over it


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read anything")
def test_an_unreadable_manifest_is_said_to_be_unreadable(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "dyndnn-run"}')
    (tmp_path / "manifest.json").chmod(0o000)
    try:
        with pytest.raises(RunFolderError, match="cannot be read: permission denied"):
            RunLayout(tmp_path).claim()
    finally:
        (tmp_path / "manifest.json").chmod(0o600)


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


# --- resolve_run_dir: the notebooks' default finds the newest run -----------------------------
def make_runs(outputs, *names):
    """Run folders, written in the order given (the last is the newest)."""
    for i, name in enumerate(names):
        layout = RunLayout(outputs / name)
        with layout.lock():
            pass
        os.utime(layout.manifest_file, (1_700_000_000 + i, 1_700_000_000 + i))
    return [outputs / name for name in names]


@pytest.mark.parametrize("where", ["notebooks", "lab"])  # the tracked folder, make lab's copies
def test_the_absent_default_run_dir_is_the_newest_run_folder(tmp_path, monkeypatch, where):
    older, newer = make_runs(tmp_path / "outputs", "b-older", "a-newer")  # by time, not name
    (tmp_path / "outputs" / "bench").mkdir()  # not a run folder
    (tmp_path / where).mkdir()
    monkeypatch.chdir(tmp_path / where)
    said = []
    layout = resolve_run_dir(DEFAULT_RUN_DIR, say=said.append)
    assert layout.root.resolve() == newer.resolve()
    assert len(said) == 1 and "a-newer" in said[0] and "set run_dir" in said[0]
    assert not (tmp_path / "outputs" / "interactive").exists()  # nothing was created


def test_an_existing_run_dir_is_taken_as_it_is(tmp_path, monkeypatch):
    make_runs(tmp_path / "outputs", "interactive", "later")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    said = []
    assert resolve_run_dir(DEFAULT_RUN_DIR, say=said.append).root.name == "interactive"
    assert resolve_run_dir(tmp_path / "outputs" / "later", say=said.append).root.name == "later"
    assert said == []


def test_a_missing_run_dir_is_named_with_the_run_folders_newest_first(tmp_path):
    runs = make_runs(tmp_path, *(f"run{i}" for i in range(7)))
    typo = tmp_path / "rnu6"
    with pytest.raises(RunFolderError) as info:
        resolve_run_dir(typo, say=pytest.fail)
    message = str(info.value)
    assert message.startswith(f"run folder {typo} does not exist")
    listed = ", ".join(str(r) for r in reversed(runs[2:]))
    assert f"newest first: {listed} and 2 more. Set run_dir" in message
    assert not typo.exists()


def test_a_missing_default_without_any_run_says_to_train_first(tmp_path, monkeypatch):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "lab").mkdir()
    monkeypatch.chdir(tmp_path / "lab")
    with pytest.raises(RunFolderError, match=r"does not exist .*holds no run folder: train one "
                                             r"first \(make run"):
        resolve_run_dir(DEFAULT_RUN_DIR, say=pytest.fail)
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == []
