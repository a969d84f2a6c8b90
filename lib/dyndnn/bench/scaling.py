"""``make bench`` section ``scaling``: training images/s in 1 and 2 processes, 1 thread each.

Each variant is a real ``python -m dyndnn train`` run (torchrun and gloo for 2 processes) of
the shipped quick model (group model, the embedded Fashion-MNIST subset), interleaved round by
round; the rate is ``train.csv``'s ``images_per_s`` (every image of an epoch over rank 0's
training-loop time; validation and start-up excluded), the median over rounds of the mean
over stages. Scaling efficiency = rate(2 processes) / (2 x rate(1 process)).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

VARIANTS = {  # name -> extra config keys
    "1_process": ["processes=1"],
    "2_processes": ["processes=2", "sync_bn=false"],  # the default: BN per process
    "2_processes_synced_bn": ["processes=2", "sync_bn=true"],
}


def _rate(run: Path, keys: list[str], failures: list[str]) -> float:
    """One run's images/s (the mean over its stages).

    A failed run is retried once in a new folder, its output kept in ``failures``: a
    2-process gloo run failed once in the test suite here, its output not kept then.
    """
    command = [sys.executable, "-m", "dyndnn", "train", "--no-progress"]
    for key in keys:
        command += ["-p", key]
    for attempt in (1, 2):
        folder = run.with_name(f"{run.name}-{attempt}")
        done = subprocess.run([*command, "--out", str(folder)], capture_output=True, text=True)
        if done.returncode == 0:
            return float(pd.read_csv(folder / "train.csv")["images_per_s"].mean())
        failures.append(f"{run.name} ({done.returncode}): {(done.stdout + done.stderr)[-3000:]}")
    raise RuntimeError(f"bench run failed twice: {failures[-1]}")


def bench_scaling(train_limit: int = 4000, rounds: int = 2, groups: int = 2) -> dict:
    """Images/s of each variant, and the scaling efficiency of 2 processes."""
    base = [f"train_limit={train_limit}", f"groups={groups}", "models=[group]",
            "epochs_per_stage=1", "threads=1", "test_limit=100"]
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dyndnn-bench-") as folder:
        for r in range(rounds):
            for name, keys in VARIANTS.items():
                rates[name].append(_rate(Path(folder) / f"{name}-{r}", base + keys, failures))
    median = {name: statistics.median(v) for name, v in rates.items()}
    return {
        **{f"{name}_images_per_s": rate for name, rate in median.items()},
        "efficiency": median["2_processes"] / (2 * median["1_process"]),
        "efficiency_synced_bn": median["2_processes_synced_bn"] / (2 * median["1_process"]),
        "failed_runs_retried": failures,
        "setup": {"train_limit": train_limit, "groups": groups, "rounds": rounds,
                  "threads_per_process": 1, "backend": "gloo"},
    }


def print_scaling(section: dict) -> None:
    """One line: the rates and the efficiency."""
    print(f"training in processes (1 thread each, gloo): 1 process "
          f"{section['1_process_images_per_s']:.0f} images/s, 2 processes "
          f"{section['2_processes_images_per_s']:.0f} (scaling efficiency "
          f"{section['efficiency']:.0%}); with BN synchronised over the processes "
          f"{section['2_processes_synced_bn_images_per_s']:.0f} "
          f"({section['efficiency_synced_bn']:.0%})"
          + (f"; {len(section['failed_runs_retried'])} failed run(s) retried (in the JSON)"
             if section["failed_runs_retried"] else ""))
