"""The pipeline: open the run folder, then run the notebooks in order with papermill.

Usage (it trains, evaluates, profiles and analyses: minutes even with the quick config)::

    run_dir = run_pipeline("configs/quick.yaml", overrides=["epochs_per_stage=1"])

Each notebook gets the config keys its tagged ``parameters`` cell declares, plus ``run_dir``;
the executed copies land in ``<run_dir>/notebooks/``. A failing notebook stops the chain with a
``NotebookError`` naming the notebook, the cell and the error; its executed copy is kept.
The folder's checks and record (lock, resume rules, manifest) are ``dyndnn.record.runs.open_run``'s.
Kernels talk to the pipeline over Unix sockets in a private folder, not TCP (``kernel_manager``).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import papermill as pm
from tqdm.auto import tqdm

from dyndnn.config import Config
from dyndnn.errors import ConfigError, NotebookError
from dyndnn.record.runs import open_run
from dyndnn.resources import resource_dir
from dyndnn.stages import NOTEBOOKS

KERNEL = "python3"


def notebook_path(name: str, notebooks_dir: Path | None = None) -> Path:
    """The source notebook of chain entry ``name`` (with or without ``.ipynb``)."""
    folder = notebooks_dir or resource_dir("notebooks")
    return folder / (name if name.endswith(".ipynb") else f"{name}.ipynb")


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Names and defaults declared in a notebook's ``parameters`` cell."""
    return {name: info["default"] for name, info in pm.inspect_notebook(str(path)).items()}


def plan(cfg: Config, notebooks_dir: Path | None = None) -> list[Path]:
    """Check, before any work, that every notebook of ``run.notebooks`` exists.

    A config is data: with the shipped notebooks (no ``notebooks_dir``) it names only the
    shipped stages, each once, in the pipeline's order, never a path to another notebook.
    """
    if notebooks_dir is None:
        _check_shipped(cfg.run.notebooks)
    paths = [notebook_path(n, notebooks_dir) for n in cfg.run.notebooks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"run.notebooks names notebook(s) that do not exist: {missing}")
    return paths


def _check_shipped(names: tuple[str, ...]) -> None:
    """Refuse names that are not shipped stages, a stage twice, or stages out of order."""
    order = [n.removesuffix(".ipynb") for n in names]
    shipped = list(NOTEBOOKS.values())
    unknown = [n for n in order if n not in shipped]
    if unknown:
        raise ConfigError(f"run.notebooks names {unknown}, which are not the workbook's "
                          f"notebooks; a config may name only {', '.join(shipped)}")
    twice = sorted({n for n in order if order.count(n) > 1})
    if twice:
        raise ConfigError(f"run.notebooks names {twice} more than once; each stage runs once")
    if order != sorted(order, key=shipped.index):
        raise ConfigError(f"run.notebooks must keep the pipeline's order ({', '.join(shipped)})"
                          f"; got {', '.join(order)}")


def execute_interruptibly(grace_s: float = 60.0, **kwargs: Any) -> None:
    """``papermill.execute_notebook(**kwargs)`` in a worker thread; Ctrl-C stays ours.

    In the main thread nbclient installs its own SIGINT handler, which kills the kernel and
    races the kernel's own KeyboardInterrupt (a dead-kernel error, tracebacks, sometimes exit
    1). Off the main thread it installs none: Ctrl-C raises KeyboardInterrupt here, the kernel
    (same process group) stops its cell, and the worker ends within ``grace_s``.
    """
    outcome: dict[str, BaseException] = {}

    def work() -> None:
        try:
            pm.execute_notebook(**kwargs)
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="papermill", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        worker.join(grace_s)  # let the interrupted cell end and the kernel shut down
        raise
    if "error" in outcome:
        raise outcome["error"]


# a Unix socket's path holds at most 107 bytes; longer socket folders keep TCP
MAX_SOCKET_FOLDER = 80


def kernel_manager(log: Path, sockets: Path | None = None) -> type:
    """A kernel manager whose kernels write their own stderr to ``log``, not the terminal.

    A kernel's warnings and, on Ctrl-C, its shutdown tracebacks belong in the run folder;
    the user's terminal gets the pipeline's one-line messages. With ``sockets`` (a private
    folder, POSIX only) the kernel listens on Unix sockets there instead of TCP ports: no other
    user can connect to them, and ipykernel's "Kernel is running over TCP without encryption"
    warning, printed once per notebook, has no cause left to report.
    """
    from jupyter_client.manager import AsyncKernelManager

    ipc = sockets is not None and os.name == "posix" and len(str(sockets)) <= MAX_SOCKET_FOLDER

    class LoggedKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            if ipc:  # set before the connection file is written (at launch)
                self.transport = "ipc"
                self.ip = str(Path(sockets) / "kernel")

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with open(log, "ab") as stderr:  # the kernel keeps its own copy of the descriptor
                kw["stderr"] = stderr
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


class KernelLines:
    r"""Where a kernel's stdout goes as it runs: whole lines, named, above the pipeline's bar.

    papermill writes each stream output of the notebook here as it arrives (``stdout_file``),
    so the epoch lines a stage prints reach the terminal while its cell still runs.

    >>> relay = KernelLines("01_train")
    >>> _ = relay.write("group stage 1/4 epoch 1/8: val acc 0.81\nhalf a li")
    01_train | group stage 1/4 epoch 1/8: val acc 0.81
    >>> _ = relay.write("ne\n")
    01_train | half a line
    """

    def __init__(self, name: str) -> None:
        self.name, self.pending = name, ""

    def write(self, text: str) -> int:
        """Print every line ``text`` completes (a bar's carriage returns end lines too)."""
        *lines, self.pending = (self.pending + text).replace("\r", "\n").split("\n")
        for line in lines:
            if line.strip():
                tqdm.write(f"{self.name} | {line.rstrip()}")
        return len(text)

    def flush(self) -> None:
        """Nothing is held back but a partial line."""


def describe_failure(exc: Exception, name: str, executed: Path) -> tuple[dict, str]:
    """The manifest's error record and the user's message for a notebook that failed."""
    if isinstance(exc, pm.PapermillExecutionError):
        first_line = (exc.source or "").strip().splitlines()[:1]
        return ({"cell": exc.cell_index, "execution_count": exc.exec_count,
                 "ename": exc.ename, "evalue": exc.evalue},
                f"notebook {name} failed in cell {exc.cell_index + 1} of the executed notebook "
                f"(In [{exc.exec_count}]: {first_line[0] if first_line else ''}): "
                f"{exc.ename}: {exc.evalue}\nThe executed notebook with the error is kept at "
                f"{executed}")
    # nbclient's cell timeout, a dead kernel: no cell output to point at
    return ({"ename": type(exc).__name__, "evalue": str(exc)},
            f"notebook {name} did not finish: {type(exc).__name__}: {exc}\nThe executed "
            f"notebook, as far as it got, is kept at {executed}")


def run_pipeline(config_path: str | Path | None, out: str | Path | None = None,
                 overrides: list[str] | None = None, notebooks_dir: Path | None = None,
                 progress: bool = True) -> Path:
    """Run the chain; returns the run folder. An existing ``out`` run folder is resumed."""
    with open_run(config_path, out, overrides, command="run",
                  check=lambda cfg: plan(cfg, notebooks_dir)) as run, \
            tempfile.TemporaryDirectory(prefix="dyndnn-") as sockets:  # mode 0700: ours alone
        paths = plan(run.cfg, notebooks_dir)
        flat = {**run.cfg.flat(), "run_dir": str(run.layout.root)}
        chain = tqdm(paths, desc="pipeline", unit="notebook", disable=not progress)
        for path in chain:
            chain.set_postfix_str(path.stem)
            executed = run.layout.executed_notebook(path.name)
            executed.parent.mkdir(parents=True, exist_ok=True)
            params = {k: v for k, v in flat.items() if k in notebook_parameters(path)}
            with run.step("notebooks", path.name, notebook=path.name, executed=str(executed),
                          parameters=params) as entry:
                try:
                    execute_interruptibly(
                        input_path=str(path), output_path=str(executed), parameters=params,
                        kernel_name=KERNEL, progress_bar=False, cwd=str(run.layout.root),
                        stdout_file=KernelLines(path.stem) if progress else None,
                        execution_timeout=run.cfg.run.cell_timeout_s or None,
                        kernel_manager_class=kernel_manager(executed.with_suffix(".kernel.log"),
                                                            Path(sockets)))
                except pm.PapermillExecutionError as exc:
                    if exc.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel first
                        raise KeyboardInterrupt from None
                    entry["error"], message = describe_failure(exc, path.name, executed)
                    raise NotebookError(message) from exc
                except (KeyboardInterrupt, NotebookError):
                    raise
                except Exception as exc:
                    entry["error"], message = describe_failure(exc, path.name, executed)
                    raise NotebookError(message) from exc
        return run.layout.root
