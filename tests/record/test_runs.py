"""Opening a run folder: the record is written only after every check passes."""

import json
import sys

import pytest
import yaml

from dyndnn.errors import RunFolderError, RunInterrupted
from dyndnn.record.layout import RunLayout
from dyndnn.record.runs import DatasetFallbackWarning, open_run, recorded_config


def test_a_new_run_records_config_and_manifest(tmp_path):
    with open_run("configs/quick.yaml", tmp_path / "r", ["groups=2"]) as run:
        assert run.manifest["status"] == "running"
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["format"] == "dyndnn-run" and manifest["status"] == "ok"
    assert manifest["dataset_used"] == "fashion-mnist-mini"
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["model"]["groups"] == 2


def test_every_command_is_listed_with_its_config_and_host(tmp_path, monkeypatch):
    import dyndnn.record.runs

    root = tmp_path / "r"
    with open_run("quick", root, ["groups=2"], command="train"):
        pass
    monkeypatch.setattr(dyndnn.record.runs, "host_info",
                        lambda: {"hostname": "xu4", "cpu_count": 8})
    with open_run(None, root, command="profile"):  # its own config.yaml, on the board
        pass
    listed = json.loads((root / "manifest.json").read_text())["commands"]
    assert [(c["command"], c["config_name"], c["overrides"]) for c in listed] == [
        ("train", "quick", ["groups=2"]), ("profile", None, [])]
    assert listed[0]["config_file"].endswith("configs/quick.yaml")
    assert listed[1]["config_file"] == str(root / "config.yaml")
    assert listed[0]["host"]["hostname"] != "xu4" and listed[1]["host"]["hostname"] == "xu4"


def test_a_manifest_written_before_the_commands_list_seeds_it(tmp_path):
    root = tmp_path / "r"
    with open_run("quick", root, command="train"):
        pass
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["commands"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    with open_run(None, root, command="analyse"):
        pass
    listed = json.loads((root / "manifest.json").read_text())["commands"]
    assert [c["command"] for c in listed] == ["train", "analyse"]
    assert listed[0]["host"] == manifest["host"] and listed[0]["start"] == manifest["start"]


def test_training_keys_that_differ_from_a_trained_folder_are_refused_and_listed(tmp_path):
    layout = RunLayout(tmp_path / "r")
    with open_run("configs/quick.yaml", layout.root, ["groups=2"]):
        layout.stage_checkpoint("group", 1).parent.mkdir(parents=True)
        layout.stage_checkpoint("group", 1).write_bytes(b"trained")
    before = {p: p.read_bytes() for p in (layout.config_file, layout.manifest_file)}
    with pytest.raises(RunFolderError, match=r"differs in: lr 0.1 -> 0.01, seed 0 -> 7\. .*new "
                                             r"--out"):
        with open_run("configs/quick.yaml", layout.root, ["groups=2", "seed=7", "lr=0.01"]):
            pass
    assert {p: p.read_bytes() for p in before} == before  # nothing was written
    with open_run("configs/quick.yaml", layout.root, ["groups=2", "repeats=1"]) as run:
        assert run.cfg.profile.repeats == 1  # keys that do not change weights may change


def test_a_data_set_fallback_warns_is_recorded_and_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = ["data_root=nowhere", "fallback_dataset=fashion-mnist-mini"]
    with pytest.warns(DatasetFallbackWarning, match="cifar10 is not available.*fallback "
                                                    "fashion-mnist-mini"):
        with open_run("paper", None, overrides) as run:
            root = run.layout.root
    assert root.parent == tmp_path / "outputs" and root.name.endswith("-paper-fashion-mnist-mini")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["dataset_requested"] == "cifar10"
    assert manifest["dataset_used"] == "fashion-mnist-mini"
    assert manifest["config"]["data"]["dataset"] == "fashion-mnist-mini"


def test_ctrl_c_is_recorded_as_interrupted(tmp_path):
    with pytest.raises(RunInterrupted, match="recorded as interrupted"):
        with open_run("configs/quick.yaml", tmp_path / "r") as run:
            with run.step("stages", "train"):
                raise KeyboardInterrupt
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["end"]
    assert manifest["stages"][0]["status"] == "interrupted"


def test_a_failure_is_recorded_as_failed(tmp_path):
    with pytest.raises(ValueError), open_run("configs/quick.yaml", tmp_path / "r") as run:
        with run.step("stages", "evaluate"):
            raise ValueError("boom")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["stages"][0]["error"] == {"ename": "ValueError", "evalue": "boom"}


def test_the_recorded_config_is_the_folders_config_yaml_in_flat_form(tmp_path):
    layout = RunLayout(tmp_path / "r")
    assert recorded_config(layout) is None  # no folder, no record
    with open_run("configs/quick.yaml", layout.root, ["groups=2", "repeats=1"]):
        pass
    recorded = recorded_config(layout)
    assert recorded["groups"] == 2 and recorded["repeats"] == 1 and recorded["lr"] == 0.1
    layout.config_file.write_text("model: [groups\n")
    with pytest.raises(RunFolderError, match="config.yaml is not valid YAML"):
        recorded_config(layout)
    layout.config_file.write_text("- a list\n")
    with pytest.raises(RunFolderError, match="holds a list, not a config"):
        recorded_config(layout)


class _FakeNvml:
    """The NVML calls ``accelerators`` makes, on a host with two GPUs (or a broken driver)."""

    def __init__(self, names, fail=False):
        self.names, self.fail, self.shut = names, fail, False

    def nvmlInit(self):  # noqa: N802 (NVML's own names)
        if self.fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):  # noqa: N802
        return len(self.names)

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return i

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return self.names[handle]

    def nvmlShutdown(self):  # noqa: N802
        self.shut = True


@pytest.mark.parametrize("names, expected", [
    (["NVIDIA H200", b"Tesla T4"], ["gpu0 NVIDIA H200", "gpu1 Tesla T4"]),  # old bindings: bytes
    ([], []),
])
def test_the_manifest_names_the_hosts_gpus_by_nvml(monkeypatch, names, expected):
    from dyndnn.record.manifest import accelerators, host_info

    fake = _FakeNvml(names)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert accelerators() == expected and fake.shut
    assert host_info()["accelerators"] == expected
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # cuda:0 is then NVML's gpu1
    assert host_info()["cuda_visible_devices"] == "1"
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(names, fail=True))
    assert accelerators() == []  # no driver: no GPU named, and no error
