"""Profile a dynamic model over configurations x mappings x frequencies x batch sizes.

Each mapping runs in its own fresh worker process (``mapping.MappedWorker``); frequencies are
set from this process (``dvfs.DvfsController``, restored at the end whatever happens). For
every point the worker warms up, then measures ``repeats`` windows with the meter; each
window is one row of ``profile.csv``, appended as soon as it is measured, so an interrupted
sweep keeps its rows and a rerun skips what is already there.

>>> import functools, os, tempfile
>>> from dyndnn.models import GroupNet
>>> factory = functools.partial(GroupNet, groups=2, width=0.25, in_channels=1,
...                             image_size=28)                 # picklable: built in the worker
>>> core = min(os.sched_getaffinity(0))                      # a core this process may use
>>> sweep = dict(input_shape=(1, 28, 28), groups_list=[1, 2], mappings=[Mapping("cpu", (core,), 1)],
...              frequencies=[None], batch_sizes=[1], out_csv=f"{tempfile.mkdtemp()}/profile.csv",
...              repeats=2, warmup=1, meter="modelled", board="vm", model_name="group",
...              min_window_s=0.01, progress=False)
>>> df = profile_sweep(factory, **sweep)
>>> df[["groups", "repeat", "threads_read", "meter", "energy_provenance"]]
   groups  repeat  threads_read         meter energy_provenance
0       1       0             1  modelled-cpu          modelled
1       1       1             1  modelled-cpu          modelled
2       2       0             1  modelled-cpu          modelled
3       2       1             1  modelled-cpu          modelled
>>> len(profile_sweep(factory, **sweep))     # a rerun measures only what is missing: nothing
4
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections.abc import Callable, Sequence
from collections.abc import Mapping as Mapping_  # Mapping is the board's (cores)
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dyndnn.board.auto import make_meter
from dyndnn.board.cpufreq import policies_for_cpus
from dyndnn.board.discovery import board_name
from dyndnn.board.dvfs import DvfsController
from dyndnn.board.errors import BoardError
from dyndnn.board.mapping import MappedWorker, Mapping
from dyndnn.board.meter import Meter
from dyndnn.board.sysfs import format_cpu_list
from dyndnn.board.window import measure
from dyndnn.config.names import BACKENDS

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "board", "device", "backend", "cores", "threads", "cores_read", "threads_read", "governor",
    "freq_khz", "cur_freq_khz", "dvfs", "model", "groups", "batch", "repeat", "calls",
    "window_s", "latency_s", "energy_j", "power_w", "meter", "meter_period_s",
    "energy_provenance", "energy_source", "energy_note", "timestamp",
]  # fmt: skip
# latency_s is always measured (a clock); energy_j and power_w are measured, modelled,
# simulated or none (NaN) as energy_provenance says, energy_source names the sensor or model
# A point is done when every repeat of this key is in the CSV
KEY_COLUMNS = ("model", "device", "backend", "cores", "threads", "freq_khz", "groups", "batch")
# eager: PyTorch as trained (the research side); onnxruntime: dyndnn.serve.Server, what a
# board deploys; openvino: dyndnn.serve.OpenVinoServer (CPU plugins: cpu mappings only);
# executorch: dyndnn.serve.executorch_server.ExecutorchServer (XNNPACK, cpu mappings only);
# litert: dyndnn.serve.litert_server.LiteRtServer (XNNPACK, cpu mappings only)

# ----------------------------------------------------------------------------------------------
# worker side: the model, input and meter live in the worker between calls

_WORKER: dict[str, dict[str, Any]] = {}  # per model name: its model, meter, engines, input


def _sync_for(device: str) -> Callable[[], None] | None:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return None


def _runner(st: dict[str, Any], backend: str, threads: int) -> Any:
    """The model as ``backend`` runs it, built once per worker and model (``serve.engines``)."""
    if backend not in st:
        from dyndnn.serve.engines import engine

        st[backend] = engine(st["model"], backend, threads=threads)
    return st[backend]


def _grad_off(backend: str) -> contextlib.AbstractContextManager:
    """Eager PyTorch runs without autograd; the other engines have none (and need no torch)."""
    if backend != "eager":
        return contextlib.nullcontext()
    import torch

    return torch.inference_mode()


def _worker_prepare(
    model_factory: Callable[[], Any],
    input_shape: tuple[int, ...],
    device: str,
    meter_spec: str | Callable[[], Meter],
    root: str,
    groups: int,
    batch: int,
    warmup: int,
    backend: str = "eager",
    threads: int = 1,
    model_name: str = "",
) -> dict[str, Any]:
    """Build the model and meter once per worker and model, switch configuration, warm up.

    A worker holds every model of the sweep (``model_name`` tells them apart): starting a
    worker (a process, torch's import) costs seconds, a model milliseconds.
    """
    st = _WORKER.setdefault(model_name, {})
    if "model" not in st:
        model = model_factory()
        if not hasattr(model, "set_active_groups"):
            raise BoardError(f"{type(model).__name__} has no set_active_groups(k)")
        st["model"] = model.eval().to(device)
        st["meter"] = make_meter(meter_spec, root, device)
        st["sync"] = _sync_for(device)
    meter = st["meter"]
    runner = _runner(st, backend, threads)
    runner.set_active_groups(groups)
    if backend == "eager":
        import torch

        x = torch.randn(batch, *input_shape, device=device)
    else:  # numpy in: an engine's own input, and a board without torch
        import numpy as np

        x = np.random.default_rng(0).standard_normal((batch, *input_shape), dtype=np.float32)
    st["fn"], st["backend"] = (lambda: runner(x)), backend
    st["engine_threads"] = getattr(runner, "threads", None)
    with _grad_off(backend):
        for _ in range(warmup):
            runner(x)
    if st["sync"]:
        st["sync"]()
    return {
        "meter": meter.name,
        "meter_period_s": meter.update_period_s,
        "energy_provenance": meter.provenance,
    }


def _worker_repeat(min_window_s: float, root: str, model_name: str = "") -> dict[str, Any]:
    """Measure one window of ``model_name`` as last prepared; read back governor and frequency."""
    st = _WORKER[model_name]
    with _grad_off(st["backend"]):
        r = measure(st["fn"], st["meter"], min_window_s, st["sync"])
    policies = policies_for_cpus(os.sched_getaffinity(0), root)
    freqs = [p.cur_freq_khz for p in policies]
    return {
        "calls": r.calls,
        "window_s": r.duration_s,
        "latency_s": r.latency_s,
        "energy_j": r.energy_j,
        "power_w": r.power_w,
        "meter": r.measurement.meter,
        "meter_period_s": r.measurement.update_period_s,
        "energy_provenance": r.measurement.provenance,
        "energy_source": r.measurement.source or r.measurement.meter,
        "energy_note": r.measurement.note,
        "governor": "/".join(sorted({p.governor for p in policies})),
        "cur_freq_khz": round(sum(freqs) / len(freqs)) if freqs else "",
        "engine_threads": st["engine_threads"],
    }


# ----------------------------------------------------------------------------------------------
# parent side


def _key(model: str, m: Mapping, freq_khz: int | None, groups: int, batch: int,
         backend: str) -> tuple:
    return (
        model,
        m.device,
        backend,
        m.cores_str,
        str(m.threads),
        "" if freq_khz is None else str(freq_khz),
        str(groups),
        str(batch),
    )


def completed_repeats(out_csv: str | os.PathLike) -> set[tuple]:
    """``(key..., repeat)`` of every row already in ``out_csv`` (empty if there is none).

    >>> completed_repeats("/nonexistent/profile.csv")
    set()
    """
    path = Path(out_csv)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise BoardError(
                f"{path} has columns {reader.fieldnames}, not this profiler's; "
                "write to a new out_csv"
            )
        return {
            (*(row[c] for c in KEY_COLUMNS), int(row["repeat"]))
            for row in reader
            if (row.get("repeat") or "").isdigit()  # a line cut short by a crash is not done
        }


def _drop_partial_last_line(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so appended rows stay rows."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _model_name(factory: Callable[[], Any]) -> str:
    inner = getattr(factory, "func", factory)
    return getattr(inner, "__name__", type(inner).__name__)


def profile_sweep(
    model_factory: Callable[[], Any] | Mapping_[str, Callable[[], Any]],
    input_shape: Sequence[int],
    groups_list: Sequence[int],
    mappings: Sequence[Mapping | str],
    frequencies: Sequence[int | None] = (None,),
    batch_sizes: Sequence[int] = (1,),
    out_csv: str | os.PathLike = "profile.csv",
    *,
    warmup: int = 3,
    repeats: int = 5,
    meter: str | Callable[[], Meter] = "auto",
    board: str | None = None,
    model_name: str | None = None,
    min_window_s: float = 0.2,
    root: str | os.PathLike = "/",
    recovery_file: str | os.PathLike | None = None,
    progress: bool = True,
    backends: Sequence[str] = ("eager",),
) -> pd.DataFrame:
    """Measure every (groups, mapping, frequency, backend, batch) point; returns the whole CSV.

    ``model_factory``: picklable, no arguments, returns a module with ``set_active_groups(k)``
    (a ``functools.partial`` of a module-level function); or ``{model name: factory}``, every
    model measured in the same worker of each mapping, one model after another. ``mappings``:
    ``Mapping`` objects or strings such as ``"cpu:4-7x4"``. ``frequencies`` are CPU kHz for the
    policies of each mapping's cores; ``None`` leaves the clocks as they are. ``meter``: a name
    (``auto``, ``rapl``, ``ina231``, ``ina3221``, ``nvml``, ``modelled``) or a picklable meter
    factory, made in the worker. One row per repeat; ``latency_s`` and ``energy_j`` are per
    inference (one forward pass of ``batch`` inputs), ``power_w`` the window's average.
    ``backends``: ``eager`` (the module itself) and/or ``onnxruntime`` (a
    ``dyndnn.serve.Server`` of it, built once per worker with the mapping's threads; CPU
    mappings only: a CUDA mapping is measured in eager alone, and says so).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if repeats < 1 or warmup < 0:
        raise BoardError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    board = board or board_name(root)
    if isinstance(model_factory, Mapping_) and model_name:
        raise BoardError("model_name names a single factory's rows; a {name: factory} mapping "
                         "names its own")
    factories = (dict(model_factory) if isinstance(model_factory, Mapping_)
                 else {model_name or _model_name(model_factory): model_factory})
    maps = [(Mapping.parse(m) if isinstance(m, str) else m).resolved() for m in mappings]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise BoardError(f"backends must be among {', '.join(BACKENDS)}; got {list(backends)}")
    for m in maps:
        if m.device != "cpu" and set(backends) - {"eager"}:
            print(f"{m.label}: onnxruntime runs on the CPU here; this mapping is measured in "
                  "eager PyTorch only")
    _drop_partial_last_line(out)
    done = completed_repeats(out)

    def todo(m: Mapping, f: int | None, model: str, be: str, g: int, b: int) -> list[int]:
        if be != "eager" and m.device != "cpu":
            return []
        key = _key(model, m, f, g, b, be)
        return [r for r in range(repeats) if (*key, r) not in done]

    points = list(product(maps, frequencies, factories, backends, groups_list, batch_sizes))
    pending = sum(len(todo(*p)) for p in points)
    total = sum(repeats for p in points if p[3] == "eager" or p[0].device == "cpu")
    needs_dvfs = any(f is not None for f in frequencies)
    dvfs_ctx: Any = (
        DvfsController(root, recovery_file, gpu=False) if needs_dvfs else contextlib.nullcontext()
    )
    new_file = not out.exists() or out.stat().st_size == 0
    with (
        dvfs_ctx as dvfs,
        open(out, "a", newline="") as fh,
        tqdm(
            total=total,
            initial=total - pending,
            desc="profile",
            unit="window",
            disable=not progress,
        ) as bar,
    ):
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()

        def run_point(
            worker: MappedWorker, m: Mapping, f: int | None, dvfs_state: str, model: str,
            be: str, g: int, b: int
        ) -> None:
            worker.call(_worker_prepare, factories[model], tuple(input_shape), m.device, meter,
                        str(root), g, b, warmup, be, m.threads, model)  # fmt: skip
            for r in todo(m, f, model, be, g, b):
                res = worker.call(_worker_repeat, min_window_s, str(root), model)
                # threads read back: torch's pool in an eager worker; where torch is absent
                # (a board profiling a bundle) the engine's own setting, as its session has it
                engine_threads = res.value.pop("engine_threads")
                threads_read = (engine_threads if res.threads_read == 0 and engine_threads
                                else res.threads_read)
                writer.writerow(
                    dict(
                        board=board, device=m.device, backend=be, cores=m.cores_str,
                        threads=m.threads,
                        cores_read=format_cpu_list(res.cores_read), threads_read=threads_read,
                        freq_khz="" if f is None else f, dvfs=dvfs_state, model=model, groups=g,
                        batch=b, repeat=r, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
                        **res.value,
                    )
                )  # fmt: skip
                fh.flush()  # a row on disk survives an interrupted sweep
                bar.update()

        for m in maps:
            if not any(todo(*p) for p in points if p[0] == m):
                continue  # nothing left for this mapping: no worker to start
            bar.set_postfix_str(m.label)
            with MappedWorker(m) as worker:
                for f in frequencies:
                    # the backends alternate point by point: a drift in load hits both alike
                    left = [
                        (model, be, g, b) for model, g, b, be
                        in product(factories, groups_list, batch_sizes, backends)
                        if todo(m, f, model, be, g, b)
                    ]
                    if not left:
                        continue
                    dvfs_state = "unchanged"
                    if f is not None:
                        dvfs.set_cpu_freq(f, cpus=m.cores)
                        dvfs_state = "read-only" if dvfs.read_only else "applied"
                    for model, be, g, b in left:
                        run_point(worker, m, f, dvfs_state, model, be, g, b)
    return pd.read_csv(out)
