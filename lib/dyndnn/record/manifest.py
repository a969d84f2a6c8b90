"""``manifest.json``: what a run was (config, seed, code, packages, host) and how it went."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from dyndnn.errors import DiskFullError
from dyndnn.record.atomic import disk_full, write_text
from dyndnn.resources import SOURCE_ROOT

PACKAGES = ("dyndnn", "torch", "torchvision", "numpy", "pandas", "papermill", "seaborn",
            "matplotlib", "ipywidgets", "onnx", "onnxruntime", "nvidia-ml-py")


def now() -> str:
    """The current time, ISO 8601 with the UTC offset."""
    return dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")


def git_state(repo: Path = SOURCE_ROOT) -> dict[str, Any]:
    """Commit and whether the working tree has uncommitted changes (None outside git).

    An installed wheel is not a checkout: git is asked only where ``repo`` holds ``.git``.
    """
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    if not (repo / ".git").exists():
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None
            else None}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def host_info() -> dict[str, Any]:
    """The machine: name, OS, CPU, cores the process may use, and its CUDA GPUs by name.

    ``cuda_visible_devices`` is kept beside the GPUs: NVML numbers every GPU, so ``cuda:0`` is
    NVML's ``gpu0`` only when the variable is unset.
    """
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "cpus_allowed": len(os.sched_getaffinity(0)),
            "accelerators": accelerators(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def accelerators() -> list[str]:
    """NVIDIA GPUs by NVML index and name; empty where NVML finds no driver.

    NVML rather than ``torch.cuda``: naming a device through torch initialises CUDA in this
    process, and the profiler's forked workers could then not use it.
    """
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver, no permission: no GPU to name  # noqa: BLE001
        return []
    try:
        names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                 for i in range(pynvml.nvmlDeviceGetCount())]
        # older bindings return bytes; NVML counts every GPU, CUDA_VISIBLE_DEVICES aside
        return [f"gpu{i} {n.decode() if isinstance(n, bytes) else n}"
                for i, n in enumerate(names)]
    except Exception:  # a driver that answers the init and not the query  # noqa: BLE001
        return []
    finally:
        pynvml.nvmlShutdown()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, as recorded in the manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_hashes(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every checkpoint of the run, keyed by its path under ``checkpoints/``."""
    folder = run_dir / "checkpoints"
    return {p.relative_to(folder).as_posix(): sha256_file(p)
            for p in sorted(folder.rglob("*.pt"))} if folder.is_dir() else {}


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write (or rewrite) ``run_dir/manifest.json`` atomically.

    On a full disk it is rewritten in place instead (its old blocks are freed first, so no
    second copy's space is needed): the record must still say how the run ended.
    """
    path, text = Path(run_dir) / "manifest.json", json.dumps(manifest, indent=2,
                                                             default=str) + "\n"
    try:
        return write_text(path, text)
    except DiskFullError:
        if not path.is_file():
            raise
        try:
            path.write_text(text)
        except OSError as exc:
            raise disk_full(path, exc) from exc
        return path
