"""Training in 2 gloo processes (real torchrun, real DDP) against 1 process, on CPU.

Why the weights cannot be bit-identical: with 2 processes each half-batch's gradient is summed
by its process and the two sums are added by gloo's all-reduce; one process adds the same
terms in another order (oneDNN's blocked reductions over the whole batch), and synchronised BN
adds two partial sums of its statistics. Float addition is not associative, so the last bits
differ from the first step; training carries them on, and a max-pool whose window holds equal
values (the black background) may then pick another pixel. The tolerance is therefore on the
relative L2 distance of all parameters after a few steps, ``TOLERANCE``: one process with 2
threads instead of 1 (only the summation order changes) lands as far from itself (measured up
to 1.8e-4 here), while BN statistics of half batches (``sync_bn=false``) land 1.2e-3 or more
away.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from dyndnn.__main__ import main
from dyndnn.record.checkpoint import load_checkpoint, read_checkpoint
from dyndnn.training.distributed import World

ROOT = Path(__file__).parents[2]
TOLERANCE = 1e-3  # relative L2 distance of all parameters: see the module docstring
TINY = ["groups=2", "models=[group,independent,tann,slimmable]", "train_limit=200",
        "test_limit=100", "epochs_per_stage=1", "joint_stage_factor=1", "batch_size=64",
        "dropout=0", "threads=1"]
STAGED = {"group": "", "independent": "independent/", "tann": "tann/"}  # checkpoint folders

# every process started with this on its path logs what it opens for writing, with its rank
AUDIT = textwrap.dedent("""
    import os, sys
    _log, _root = os.environ.get("AUDIT_LOG"), os.environ.get("AUDIT_ROOT")
    if _log and _root:
        _fd = os.open(_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        _writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT
        def _hook(event, args):
            if event == "open":
                path, mode, flags = args
                writing = (mode and any(c in mode for c in "wax+")) or (flags or 0) & _writes
            elif event in ("os.rename", "os.remove", "os.mkdir"):
                path, writing = args[0], True
            else:
                return
            if writing and isinstance(path, (str, os.PathLike)) and \\
                    os.fspath(path).startswith(_root):
                rank = os.environ.get("RANK", "launcher")
                os.write(_fd, f"{rank} {event} {os.fspath(path)}\\n".encode())
        sys.addaudithook(_hook)
""")


def params(*items):
    return sum((["-p", p] for p in items), [])


def audited_env(tmp: Path, run: Path) -> dict:
    site = tmp / "audit-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(AUDIT)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "lib")]),
            "AUDIT_LOG": str(tmp / f"{run.name}.writes"), "AUDIT_ROOT": str(run)}


def train(run: Path, *extra: str, torchrun: int = 0, env: dict | None = None,
          wait: bool = True):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc-per-node={torchrun}"] if torchrun else [sys.executable])
    command = [*launcher, "-m", "dyndnn", "train", "--out", str(run), "--no-progress",
               *params(*TINY, *extra)]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def checkpoints(run: Path) -> dict[str, Path]:
    return {str(p.relative_to(run)): p for p in sorted(run.glob("checkpoints/**/stage*.pt"))}


def parameters(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)["model"]
    return {k: v for k, v in state.items() if v.is_floating_point() and "running" not in k}


def distance(a: Path, b: Path) -> float:
    """Relative L2 distance between two checkpoints' parameters."""
    pa, pb = parameters(a), parameters(b)
    diff = torch.cat([(pa[k] - pb[k]).flatten() for k in pa]).norm()
    return (diff / torch.cat([v.flatten() for v in pa.values()]).norm()).item()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    one, two, unsynced = tmp / "one", tmp / "two", tmp / "unsynced"
    train(one)
    train(two, "processes=2", "sync_bn=true", env=audited_env(tmp, two))
    train(unsynced, "processes=2", "sync_bn=false")
    return {"tmp": tmp, "one": one, "two": two, "unsynced": unsynced}


def test_two_processes_learn_what_one_does_within_float_summation_tolerance(runs):
    one, two = checkpoints(runs["one"]), checkpoints(runs["two"])
    assert list(one) == list(two) and len(one) == 7  # 3 staged families x 2 + slimmable
    synced = {name: distance(one[name], two[name]) for name in one}
    unsynced = {name: distance(one[name], checkpoints(runs["unsynced"])[name]) for name in one}
    assert max(synced.values()) <= TOLERANCE, synced
    # the tolerance can fail: half-batch BN statistics are further away, in every checkpoint
    assert all(unsynced[name] > synced[name] for name in one), (synced, unsynced)
    assert max(unsynced.values()) > TOLERANCE, unsynced


def test_each_epoch_is_recorded_with_its_world_and_the_manifest_names_it(runs):
    manifest = json.loads((runs["two"] / "manifest.json").read_text())
    assert (manifest["world_size"], manifest["backend"], manifest["status"]) == (2, "gloo", "ok")
    assert json.loads((runs["one"] / "manifest.json").read_text())["world_size"] == 1
    history = pd.read_csv(runs["two"] / "train.csv")
    assert (history["world_size"] == 2).all() and len(history) == 7
    # the rows count every image of the epoch once (both processes' parts)
    reference = pd.read_csv(runs["one"] / "train.csv")
    assert history["train_accuracy"].tolist() == pytest.approx(
        reference["train_accuracy"].tolist(), abs=0.02)


def test_pruning_invariance_holds_in_two_processes(runs, mini_dataset):
    x = mini_dataset.test_x[:64].float() / 255
    for folder in STAGED.values():
        stage1, _ = load_checkpoint(runs["two"] / f"checkpoints/{folder}stage1.pt")
        final, _ = load_checkpoint(runs["two"] / f"checkpoints/{folder}stage2.pt")
        with torch.no_grad(), stage1.active_groups(1), final.active_groups(1):
            assert torch.equal(stage1.eval()(x), final.eval()(x)), folder
        with torch.no_grad(), final.active_groups(2):
            assert not torch.equal(final(x), stage1(x))  # stage 2 trained something


def test_only_rank_0_writes_the_run_folder(runs):
    writes = (runs["tmp"] / "two.writes").read_text().splitlines()
    writers = {line.split()[0] for line in writes}
    assert "1" not in writers, [w for w in writes if w.startswith("1 ")]
    assert any(w.startswith("0 ") and "stage2.pt" in w for w in writes)  # the hook saw rank 0
    assert writers <= {"0", "launcher"}


def wait_for_release(lock_file: Path, deadline: float) -> None:
    """Until no process holds ``lock_file`` (a killed process lets go when it has exited)."""
    while True:
        with open(lock_file) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return  # closing the file lets it go again
            except BlockingIOError:
                assert time.monotonic() < deadline
        time.sleep(0.02)


def test_killed_two_process_run_resumes_mid_stage_to_the_same_weights(tmp_path):
    """Direct torchrun (the command users type), killed with SIGKILL mid-stage, resumed."""
    keys = ("models=[group,slimmable]", "epochs_per_stage=2", "train_limit=400",
            "sync_bn=true")
    train(tmp_path / "reference", *keys, torchrun=2)
    run = tmp_path / "killed"
    process = train(run, *keys, torchrun=2, wait=False, env=audited_env(tmp_path, run))
    deadline = time.monotonic() + 300
    while not (run / "checkpoints/resume.pt").is_file() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = read_checkpoint(run / "checkpoints/resume.pt")
    assert (killed_at["stage"], killed_at["epoch"]) == (1, 0)  # mid-stage: optimiser state
    # torchrun's processes run in sessions of their own: they end when they see it gone,
    # and rank 0 lets go of the folder's lock then (resumed before that, the run was refused)
    wait_for_release(run / ".lock", time.monotonic() + 30)
    # as the kill left it, or ended by rank 1 when rank 0 went first (its writer lost)
    assert json.loads((run / "manifest.json").read_text())["status"] in ("running", "failed")
    train(run, *keys, torchrun=2, env=audited_env(tmp_path, run))
    reference, resumed = checkpoints(tmp_path / "reference"), checkpoints(run)
    assert list(reference) == list(resumed)
    for name, path in reference.items():  # same world, same order of sums: bit for bit
        a, b = parameters(path), parameters(resumed[name])
        assert all(torch.equal(a[k], b[k]) for k in a), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert (manifest["world_size"], manifest["status"]) == (2, "ok")
    writes = [line.split() for line in (tmp_path / "killed.writes").read_text().splitlines()]
    assert {"0"} <= {rank for rank, *_ in writes} <= {"0", "1"}
    # rank 1 only ends the killed run's record, when rank 0 ended first (the writer lost):
    # the lock it takes for that and the manifest (written through a temporary file, whose
    # writer makes sure of the folder: a mkdir of the folder that exists)
    rank_1 = [(event, path) for rank, event, path in writes if rank == "1"]
    assert all(Path(path).name == ".lock" or Path(path).name.startswith(".manifest.json.")
               or (event == "os.mkdir" and Path(path) == run) for event, path in rank_1), rank_1


def test_synchronised_batch_norm_equals_one_process_on_the_global_batch(tmp_path):
    """Unequal parts (5 and 3 images): outputs, statistics and gradients of the whole batch."""
    script = tmp_path / "bn.py"
    script.write_text(textwrap.dedent("""
        import sys, torch, torch.distributed as dist
        import torch.nn.functional as F
        from dyndnn.models.sync_batchnorm import batch_norm, synchronised
        dist.init_process_group("gloo")
        rank = dist.get_rank()
        torch.manual_seed(0)
        x = torch.randn(8, 3, 4, 4) * 3 + 1
        w, b = torch.rand(3) + 0.5, torch.randn(3)
        coefficients = torch.arange(x.numel()).view_as(x).float().sin()  # a loss to backprop
        def run(x, coefficients, group):
            x = x.clone().requires_grad_(True)
            ww, bb = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
            mean, var = torch.zeros(3), torch.ones(3)
            with synchronised(group):
                y = batch_norm(x, mean, var, ww, bb, True, 0.1, 1e-5)
            (y * coefficients).sum().backward()
            return y, x.grad, ww.grad, bb.grad, mean, var
        part = slice(0, 5) if rank == 0 else slice(5, 8)
        mine = run(x[part], coefficients[part], dist.group.WORLD)
        whole = run(x, coefficients, None)
        grads = [mine[2], mine[3]]
        for g in grads:
            dist.all_reduce(g)  # what DDP does (it then divides by the world's size)
        checks = [torch.allclose(mine[0], whole[0][part], atol=1e-5),
                  torch.allclose(mine[1], whole[1][part], atol=1e-5),
                  torch.allclose(grads[0], whole[2], atol=1e-4),
                  torch.allclose(grads[1], whole[3], atol=1e-4),
                  torch.allclose(mine[4], whole[4], atol=1e-6),
                  torch.allclose(mine[5], whole[5], atol=1e-6)]
        print(f"rank {rank} checks {checks}", flush=True)
        dist.destroy_process_group()
        sys.exit(0 if all(checks) else 3)
    """))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", str(script)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("checks [True, True, True, True, True, True]") == 2


def test_shards_cover_the_batch_once_and_weigh_their_share():
    x, y = torch.arange(14).view(7, 2), torch.arange(7)
    for size in (1, 2, 3):
        parts = [World(rank=r, size=size).shard(x, y) for r in range(size)]
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
        assert sum(p[2] for p in parts) == pytest.approx(size)  # the mean over 7 images


def test_other_stages_refuse_torchrun_and_a_missing_gpu_is_bad_input(monkeypatch, capsys,
                                                                     tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    assert main(["train", "--out", str(tmp_path / "gpu"), "-p", "device=cuda"]) == 2
    assert "torch sees no GPU" in capsys.readouterr().err
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    assert main(["evaluate", "--out", str(tmp_path / "run")]) == 2
    assert "only the train stage" in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "run")]) == 2
    assert "with -p processes=N" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written
    assert main(["train", "--out", str(tmp_path / "r"), "-p", "processes=0"]) == 2
    assert "train.processes must be >= 1" in capsys.readouterr().err


def test_ctrl_c_stops_every_process_and_records_interrupted(tmp_path):
    import psutil

    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "dyndnn", "train", "--out", str(run), "--no-progress",
         *params(*TINY, "processes=2", "epochs_per_stage=50")], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (run / "checkpoints/resume.pt").is_file():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    workers = psutil.Process(process.pid).children(recursive=True)
    assert len(workers) >= 3  # torchrun and its 2 processes
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, err = process.communicate(timeout=180)
    assert process.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]


def test_the_notebook_pipeline_launches_torchrun_from_01_train(tmp_path):
    from dyndnn.pipeline import run_pipeline

    run = run_pipeline("quick", str(tmp_path / "run"),
                       [*TINY[:1], "models=[group]", *TINY[2:], "processes=2",
                        "notebooks=[01_train]"], progress=False)
    manifest = json.loads((Path(run) / "manifest.json").read_text())
    assert (manifest["world_size"], manifest["backend"], manifest["status"]) == (2, "gloo", "ok")
    assert (pd.read_csv(Path(run) / "train.csv")["world_size"] == 2).all()
    executed = (Path(run) / "notebooks" / "01_train.ipynb").read_text()
    assert "trained in up to 2 processes (gloo)" in executed


def test_torchrun_stopping_the_processes_is_recorded_in_the_manifest(tmp_path):
    """torchrun stops every process with SIGTERM when one fails; rank 0 records it."""
    run = tmp_path / "run"
    process = train(run, "epochs_per_stage=50", torchrun=2, wait=False)
    deadline = time.monotonic() + 300
    while not (run / "checkpoints/resume.pt").is_file():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # torchrun alone: it stops its processes so
    output = process.communicate(timeout=180)[0].decode()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted", output
    assert "stopped by SIGTERM" in manifest["stages"][-1]["error"]["evalue"]


def test_resuming_with_bn_synchronisation_changed_is_refused(mini_dataset, tmp_path):
    from dyndnn.config import TrainSection
    from dyndnn.errors import RunFolderError
    from dyndnn.models import GroupNet
    from dyndnn.training.trainer import IncrementalTrainer

    def trainer(sync_bn, on_batch=None):
        torch.manual_seed(0)
        model = GroupNet(groups=2, width=0.125, in_channels=1, image_size=28)
        return IncrementalTrainer(model, mini_dataset, TrainSection(epochs_per_stage=2,
                                                                    sync_bn=sync_bn),
                                  batch_size=128, run_dir=tmp_path, progress=False,
                                  on_batch=on_batch)

    def stop(stage, epoch, batch):
        if (stage, epoch) == (1, 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer(False, stop).fit()
    with pytest.raises(RunFolderError, match="sync_bn"):
        trainer(True).fit()
    assert trainer(False).fit()["stage"].tolist() == [1, 1, 2, 2]  # same settings resume


def test_killing_the_writer_under_torchrun_ends_its_record_and_says_one_line(tmp_path):
    """kill -9 of rank 0: rank 1 printed a 76-line traceback and the manifest said running."""
    import psutil

    run = tmp_path / "run"
    process = train(run, "epochs_per_stage=50", torchrun=2, wait=False)
    deadline = time.monotonic() + 300
    while not (run / "checkpoints/resume.pt").is_file():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    ranks = {int(p.environ().get("RANK", -1)): p for p in
             psutil.Process(process.pid).children(recursive=True) if "RANK" in p.environ()}
    ranks[0].kill()  # SIGKILL: the writer records nothing
    output = process.communicate(timeout=180)[0].decode()
    assert process.returncode != 0
    rank1 = [line for line in output.splitlines() if line.startswith("[rank1]")]
    # one line from rank 1, whichever reached it first: its collective failing, or torchrun's
    # SIGTERM (under load the agent can be first; seen once in a whole test run)
    said = [line for line in output.splitlines() if line.startswith(
        ("error: rank 1: training stopped", "rank 1: stopped by SIGTERM"))]
    assert len(said) == 1 and "is recorded as failed" in said[0] and rank1 == [], output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed", output
    assert "the writer (rank 0) ended without recording how" in manifest["error"]
