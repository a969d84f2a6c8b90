"""Change CPU and Jetson GPU clocks for a sweep, and always put them back.

``DvfsController`` saves every cpufreq policy (governor, min, max, setspeed), the GPU devfreq
window and, on a Jetson, the ``jetson_clocks`` state and nvpmodel mode *before* the first
change, in a recovery JSON file. The saved state is restored on exit, on exception, on
SIGINT/SIGTERM (then the previous handler runs) and at interpreter exit; after a crash,
``recover()`` (also run when the next controller starts) applies the file and deletes it.

Without write permission the controller is read-only: it says so once (``ReadOnlyWarning``)
and applies nothing. Every permission is checked before the first write, so a sweep is never
left half-applied.

On a fake cluster (``root``) with the userspace governor; on a board, ``DvfsController()``:

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> policy0 = root / "sys/devices/system/cpu/cpufreq/policy0"
>>> policy0.mkdir(parents=True)
>>> for name, value in {"related_cpus": "0 1", "scaling_governor": "ondemand",
...                     "scaling_available_governors": "ondemand userspace",
...                     "scaling_setspeed": "<unsupported>", "scaling_cur_freq": 600000,
...                     "cpuinfo_min_freq": 600000, "cpuinfo_max_freq": 1400000,
...                     "scaling_min_freq": 600000, "scaling_max_freq": 1400000}.items():
...     _ = (policy0 / name).write_text(str(value))
>>> recovery = root / "recovery.json"
>>> with DvfsController(root, recovery, handle_signals=False) as dvfs:
...     _ = dvfs.set_cpu_freq(1_400_000, cpus=[0, 1])   # the sweep's work runs here
...     print((policy0 / "scaling_governor").read_text(), recovery.exists())
userspace True
>>> (policy0 / "scaling_governor").read_text(), recovery.exists()   # put back, file gone
('ondemand', False)
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from dyndnn.board.cpufreq import CpufreqPolicy, PolicyState, list_policies, policies_for_cpus
from dyndnn.board.devfreq import DEVFREQ_CLASS, Devfreq, DevfreqState, find_gpu_devfreq
from dyndnn.board.errors import BoardError, ReadOnlyWarning
from dyndnn.board.jetson import JetsonClocks, nvpmodel_query, nvpmodel_set
from dyndnn.board.sysfs import sysfs_path

log = logging.getLogger(__name__)

# /tmp is the right home: a reboot resets the clocks and empties /tmp together
DEFAULT_RECOVERY_FILE = Path(tempfile.gettempdir()) / "dyndnn-dvfs-recovery.json"
RECOVERY_VERSION = 1


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())  # it must survive the crash it is for
    os.replace(tmp, path)


def _apply_saved(root: str | os.PathLike, saved: dict[str, Any]) -> list[str]:
    """Apply a saved state; returns the errors met (it carries on past each one)."""
    errors: list[str] = []

    def attempt(what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # restore as much as possible, report all at the end
            errors.append(f"{what}: {e}")

    if saved.get("nvpmodel_mode") is not None:  # first: a mode switch resets the clocks
        attempt("nvpmodel", nvpmodel_set, saved["nvpmodel_mode"])
    if saved.get("jetson_clocks_store"):
        attempt("jetson_clocks", JetsonClocks(Path(saved["jetson_clocks_store"])).restore)
    gpu = saved.get("gpu_devfreq")
    if gpu:
        dev = Devfreq(sysfs_path(root, DEVFREQ_CLASS) / gpu["name"])
        attempt(f"GPU devfreq {gpu['name']}", dev.apply, DevfreqState(**gpu["state"]))
    policies = {p.name: p for p in list_policies(root)}
    for name, state in saved.get("cpufreq", {}).items():
        if name not in policies:
            errors.append(f"cpufreq {name}: policy no longer present")
            continue
        attempt(f"cpufreq {name}", policies[name].apply, PolicyState(**state))
    return errors


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def recover(root: str | os.PathLike = "/", recovery_file: str | os.PathLike | None = None) -> bool:
    """Apply a recovery file left by a crashed run, then delete it; ``False`` if none.

    Call it at the start of a notebook, before touching clocks:

    >>> import pathlib, tempfile
    >>> recover(recovery_file=pathlib.Path(tempfile.mkdtemp()) / "recovery.json")  # no crash
    False
    """
    path = Path(recovery_file or DEFAULT_RECOVERY_FILE)
    if not path.exists():
        return False
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BoardError(f"recovery file {path} is unreadable ({e}); fix or delete it") from e
    if saved.get("version") != RECOVERY_VERSION:
        raise BoardError(f"recovery file {path} has unknown version {saved.get('version')}")
    pid = saved.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
        raise BoardError(
            f"recovery file {path} belongs to process {pid}, which is still running (another "
            "sweep holds the clocks); wait for it, or delete the file if that pid is unrelated"
        )
    log.warning(
        "restoring clocks saved in %s by pid %s (a run that did not finish)", path, saved.get("pid")
    )
    errors = _apply_saved(root, saved)
    if errors:
        raise BoardError(f"recovery from {path} incomplete: " + "; ".join(errors))
    path.unlink()
    return True


class DvfsController:
    """Sets clocks inside a ``with`` block and restores them, whatever happens.

    ``gpu``: also control the Jetson GPU devfreq, where found. ``jetson_clocks``: store the
    jetson_clocks state at the start and restore it at the end. ``read_only`` is decided at
    the start from ``os.access`` on every file that may be written.
    """

    def __init__(
        self,
        root: str | os.PathLike = "/",
        recovery_file: str | os.PathLike | None = None,
        *,
        gpu: bool = True,
        jetson_clocks: bool = False,
        handle_signals: bool = True,
    ) -> None:
        self.root = root
        self.recovery_file = Path(recovery_file or DEFAULT_RECOVERY_FILE)
        self.use_gpu = gpu
        self.use_jetson_clocks = jetson_clocks
        self.handle_signals = handle_signals
        self.read_only = False
        self.policies: list[CpufreqPolicy] = []
        self.gpu: Devfreq | None = None
        self._saved: dict[str, Any] | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._lock = threading.RLock()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> DvfsController:
        """Recover a crashed run, check permissions, save the state (``__enter__`` calls it)."""
        recover(self.root, self.recovery_file)
        self.policies = list_policies(self.root)
        self.gpu = find_gpu_devfreq(self.root) if self.use_gpu else None
        blocked = [str(f) for p in self.policies for f in p.unwritable()]
        if self.gpu is not None:
            blocked += [str(f) for f in self.gpu.unwritable()]
        if self.use_jetson_clocks and shutil.which("jetson_clocks") is None:
            blocked.append("jetson_clocks (not on PATH)")
        if blocked:
            self.read_only = True
            more = f" and {len(blocked) - 1} more" if len(blocked) > 1 else ""
            msg = (
                f"DVFS is read-only: cannot write {blocked[0]}{more}. Clocks are left as they "
                "are and only read back; run as root to set frequencies."
            )
            warnings.warn(msg, ReadOnlyWarning, stacklevel=3)
            log.warning(msg)
            return self
        saved: dict[str, Any] = {
            "version": RECOVERY_VERSION,
            "pid": os.getpid(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "root": str(self.root),
            "cpufreq": {p.name: asdict(p.state()) for p in self.policies},
            "gpu_devfreq": None,
            "jetson_clocks_store": None,
            "nvpmodel_mode": None,
        }
        if self.gpu is not None:
            saved["gpu_devfreq"] = {"name": self.gpu.name, "state": asdict(self.gpu.state())}
        if self.use_jetson_clocks:
            store = self.recovery_file.with_suffix(".jetson_clocks")
            JetsonClocks(store).store()
            saved["jetson_clocks_store"] = str(store)
        _write_json_atomic(self.recovery_file, saved)  # before the first change, always
        self._saved = saved
        if self.handle_signals:
            self._install_handlers()
        atexit.register(self.restore)
        return self

    def restore(self) -> None:
        """Put every saved clock back and delete the recovery file (idempotent)."""
        with self._lock:
            if self._saved is None:
                return
            errors = _apply_saved(self.root, self._saved)
            if errors:
                raise BoardError(
                    f"restoring clocks incomplete ({'; '.join(errors)}); the recovery file "
                    f"{self.recovery_file} is kept for recover()"
                )
            self._saved = None
            self.recovery_file.unlink(missing_ok=True)

    def close(self) -> None:
        """Restore, and remove the signal and exit hooks (``__exit__`` calls it)."""
        try:
            self.restore()
        finally:
            self._uninstall_handlers()
            atexit.unregister(self.restore)

    def __enter__(self) -> DvfsController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- changes --------------------------------------------------------------------------

    def set_cpu_freq(
        self, freq_khz: int | None, cpus: Iterable[int] | None = None
    ) -> dict[str, int]:
        """Run the policies holding ``cpus`` (all for ``None``) at ``freq_khz``.

        ``None`` leaves the clocks alone. Returns ``scaling_cur_freq`` per policy, read back
        after the change (it can stay below the request under a thermal limit).
        """
        policies = policies_for_cpus(cpus, self.root) if cpus is not None else self.policies
        if freq_khz is not None:
            if not policies:
                raise BoardError(
                    f"no cpufreq policy under {sysfs_path(self.root, '/sys/devices/system/cpu')}"
                    f"{f' for CPUs {sorted(cpus)}' if cpus is not None else ''}: "
                    "cannot set a CPU frequency here (use None to leave clocks as they are)"
                )
            for p in policies:  # validate all before writing any
                p.check_frequency(freq_khz)
            if not self.read_only:
                self._require_started()
                for p in policies:
                    p.set_frequency(freq_khz)
        return {p.name: p.cur_freq_khz for p in policies}

    def set_gpu_freq(self, freq_hz: int | None) -> int | None:
        """Pin the Jetson GPU at ``freq_hz``; returns ``cur_freq`` read back (None: no GPU)."""
        if self.gpu is None:
            if freq_hz is not None:
                raise BoardError("no GPU devfreq device found: cannot set a GPU frequency")
            return None
        if freq_hz is not None:
            self.gpu.check_frequency(freq_hz)
            if not self.read_only:
                self._require_started()
                self.gpu.set_frequency(freq_hz)
        return self.gpu.cur_freq_hz

    def set_power_mode(self, mode_id: int) -> None:
        """Switch the Jetson power mode (nvpmodel), saving the previous one first."""
        if self.read_only:
            return
        self._require_started()
        assert self._saved is not None
        if self._saved["nvpmodel_mode"] is None:
            self._saved["nvpmodel_mode"] = nvpmodel_query()[0]
            _write_json_atomic(self.recovery_file, self._saved)
        nvpmodel_set(mode_id)

    def _require_started(self) -> None:
        if self._saved is None:
            raise BoardError("DvfsController: use it in a `with` block (or call start()) first")

    # -- signals --------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.info("DvfsController outside the main thread: no signal handlers installed")
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) == signal.SIG_IGN:
                continue  # e.g. SIGINT under nohup: the process goes on, so must the clocks
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _uninstall_handlers(self) -> None:
        for signum, previous in self._previous_handlers.items():
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous)
        self._previous_handlers = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        try:
            self.restore()
        finally:
            previous = self._previous_handlers.get(signum, signal.SIG_DFL)
            self._uninstall_handlers()
            if callable(previous):  # e.g. default_int_handler raises KeyboardInterrupt
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
