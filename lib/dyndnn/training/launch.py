"""The train stage in ``train.processes`` processes: torchrun launched from the stage itself.

``01_train`` and ``python -m dyndnn train`` call ``launch_training`` when the config asks for
more than one process; it runs ``python -m torch.distributed.run --standalone
--nproc-per-node N -m dyndnn.stages.train_worker --config <the stage's config> --out RUN``,
and each process runs the train stage in the torchrun world (rank 0 writes). The worker is
named, never imported: the stage calls this module, so this module cannot import the stage.
The launching process holds the run folder's lock throughout, and its children work under
it. Their output is relayed to this process's stdout, so a notebook cell shows it.
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import yaml

from dyndnn.config import Config
from dyndnn.errors import StageError
from dyndnn.record.layout import RunLayout


def torchrun_command(processes: int, config_file: Path, run_dir: Path,
                     progress: bool = True) -> list[str]:
    """The command line that trains ``run_dir`` in ``processes`` processes on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={processes}", "-m", "dyndnn.stages.train_worker", "--config",
            str(config_file), "--out", str(run_dir), *([] if progress else ["--no-progress"])]


def threads_per_process(cfg: Config) -> int:
    """``run.threads``, or this machine's cores shared out among the processes."""
    return cfg.run.threads or max(1, (os.cpu_count() or 1) // cfg.train.processes)


def launch_training(cfg: Config, layout: RunLayout, progress: bool = True) -> None:
    """Train ``layout`` with ``cfg`` in ``cfg.train.processes`` processes; wait for them.

    Raises ``StageError`` when torchrun reports a failure (its output says which rank and
    why); Ctrl-C stops every process (torchrun passes SIGTERM on) and re-raises.
    """
    with tempfile.TemporaryDirectory(prefix="dyndnn-launch-") as folder:
        config_file = Path(folder) / "config.yaml"
        config_file.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process(cfg))}
        command = torchrun_command(cfg.train.processes, config_file, layout.root, progress)
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        try:
            _relay(process)
            status = process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGTERM)  # torchrun passes it on to its processes
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:  # torchrun hung: kill it and its processes
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
                process.kill()
                process.wait()
            raise
    if status != 0:
        raise StageError(f"training in {cfg.train.processes} processes failed (torchrun exit "
                         f"status {status}); the output above names the rank and its error. "
                         "The run folder resumes from its last complete epoch when run again.")


def _relay(process: subprocess.Popen) -> None:
    """Copy the children's output to ours as it comes (progress bars' carriage returns too)."""
    assert process.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # characters split
    while chunk := os.read(process.stdout.fileno(), 4096):              # across chunks
        sys.stdout.write(decoder.decode(chunk))
        sys.stdout.flush()
    sys.stdout.write(decoder.decode(b"", final=True))
