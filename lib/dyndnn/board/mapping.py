"""Task mapping: run a callable in a fresh process pinned to a set of cores with N threads.

Affinity and the thread count must be set before torch builds its thread pool, and an
``OMP``/``GOMP``/``KMP`` affinity variable can collapse the affinity when torch's OpenMP
runtime loads; a fresh worker process per mapping is the one way to get both right. Workers
are forked from a server that imported torch once, without those variables
(``dyndnn.board.forkserver``); each worker pins itself to its mapping and sets its threads
before any parallel work, and reports what it got: every result carries the affinity and
thread count read back inside the worker.

Usage (``run_mapped`` below runs one call this way)::

    with MappedWorker(Mapping("cpu", (0,), 1)) as worker:   # one worker per mapping
        r = worker.call(functools.partial(run_model, groups=2))
    r.cores_read, r.threads_read                            # ((0,), 1): read back inside
"""

from __future__ import annotations

import os
import pickle
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from dyndnn.board.errors import BoardError
from dyndnn.board.forkserver import AFFINITY_ENV_VARS, worker_context
from dyndnn.board.sysfs import format_cpu_list, parse_cpu_list
from dyndnn.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|cuda:\d+)$")
_affinity_lock = threading.Lock()  # the parent's affinity is borrowed briefly to check cores


@dataclass(frozen=True)
class Mapping:
    """Where a task runs: ``device`` ("cpu" or "cuda:N"), host ``cores`` and torch ``threads``.

    Empty ``cores`` means every core this process may use; ``threads=0`` means one per core.

    >>> Mapping("cpu", (0, 1)).label
    'cpu[0-1]x2'
    """

    device: str = "cpu"
    cores: tuple[int, ...] = ()
    threads: int = 0

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise ConfigError(f"mapping device must be 'cpu' or 'cuda:N', got {self.device!r}")
        cores = tuple(sorted(set(self.cores)))
        if any(c < 0 for c in cores):
            raise ConfigError(f"mapping cores must be >= 0, got {self.cores}")
        if self.threads < 0:
            raise ConfigError(f"mapping threads must be >= 0 (0 = one per core): {self.threads}")
        object.__setattr__(self, "cores", cores)

    @classmethod
    def parse(cls, text: str) -> Mapping:
        """Parse ``"cpu:0-3"``, ``"cpu:4-7x2"`` (2 threads) or ``"cuda:0@0-1"``.

        >>> Mapping.parse("cpu:4-7x2")
        Mapping(device='cpu', cores=(4, 5, 6, 7), threads=2)
        """
        m = re.fullmatch(r"(cpu|cuda:\d+)(?:[:@]([\d,\-]+))?(?:x(\d+))?", text.strip())
        if not m:
            raise ConfigError(f"cannot parse mapping {text!r}; e.g. 'cpu:0-3x4' or 'cuda:0@0'")
        return cls(m[1], parse_cpu_list(m[2] or ""), int(m[3] or 0))

    def resolved(self) -> Mapping:
        """The same mapping with cores and threads made explicit for this host."""
        cores = self.cores or tuple(sorted(os.sched_getaffinity(0)))
        return Mapping(self.device, cores, self.threads or len(cores))

    @property
    def cores_str(self) -> str:
        """Cores as a kernel CPU list, e.g. ``"0-3"``."""
        return format_cpu_list(self.cores)

    @property
    def label(self) -> str:
        """A short name: ``cpu[0-3]x4``."""
        r = self.resolved()
        return f"{r.device}[{r.cores_str}]x{r.threads}"


@dataclass(frozen=True)
class MappedResult:
    """A callable's return value and the mapping the worker actually had when it returned."""

    value: Any
    cores_read: tuple[int, ...]
    threads_read: int
    device: str
    worker_pid: int


# ----------------------------------------------------------------------------------------------
# worker side


def _torch() -> Any:
    """Torch where it is installed; None on a board that profiles a bundle without it."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _read_back() -> tuple[tuple[int, ...], int]:
    """The cores this worker may use and torch's thread count (0: no torch in this process)."""
    torch = _torch()
    return tuple(sorted(os.sched_getaffinity(0))), torch.get_num_threads() if torch else 0


def _setup_worker(mapping: Mapping) -> None:
    for name in AFFINITY_ENV_VARS:  # the server started without them; a call may read them
        os.environ.pop(name, None)
    os.sched_setaffinity(0, mapping.cores)
    torch = _torch()
    if torch is None:
        if mapping.device.startswith("cuda"):
            raise BoardError(f"mapping {mapping.label} needs torch (not installed here)")
        return  # the engine sets its own threads from the mapping
    torch.set_num_threads(mapping.threads)
    if mapping.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BoardError(f"mapping {mapping.label}: CUDA is not available in this build/host")
        torch.cuda.set_device(int(mapping.device.split(":")[1]))


def _picklable_error(e: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return BoardError(f"{type(e).__name__}: {e}")


def _worker_main(conn: Any, mapping: Mapping) -> None:
    try:
        _setup_worker(mapping)
        conn.send(("ready", None, *_read_back()))
    except BaseException as e:
        conn.send(("error", _picklable_error(e), traceback.format_exc()))
        return
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, args, kwargs = job
        try:
            value = fn(*args, **kwargs)
            conn.send(("ok", value, *_read_back()))
        except BaseException as e:
            conn.send(("error", _picklable_error(e), traceback.format_exc()))


# ----------------------------------------------------------------------------------------------
# parent side


def _check_pinnable(cores: tuple[int, ...]) -> None:
    """Refuse, here and by name, cores this process could not pin a worker to."""
    with _affinity_lock:
        saved_affinity = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, cores)
        except OSError as e:
            raise ConfigError(
                f"cannot pin to cores {format_cpu_list(cores)}: {e}; this process may use "
                f"{format_cpu_list(saved_affinity)}"
            ) from e
        finally:
            os.sched_setaffinity(0, saved_affinity)


class MappedWorker:
    """A fresh process with one mapping; ``call`` runs picklable callables in it.

    Use it as a context manager; the worker keeps its state between calls (a model built by
    one call can serve the next), which is why a profiler keeps one worker per mapping.
    """

    def __init__(self, mapping: Mapping, start_timeout_s: float = 120.0) -> None:
        self.mapping = mapping.resolved()
        self.start_timeout_s = start_timeout_s
        self._proc: Any = None
        self._conn: Any = None
        self.cores_read: tuple[int, ...] = ()
        self.threads_read = 0

    def start(self) -> MappedWorker:
        """Start the worker and wait until it has applied the mapping."""
        return self._start_process()._ready()

    def _start_process(self) -> MappedWorker:
        _check_pinnable(self.mapping.cores)
        ctx = worker_context()
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_worker_main,
            args=(child, self.mapping),
            daemon=True,
            name=f"dyndnn-{self.mapping.label}",
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        return self

    def _ready(self) -> MappedWorker:
        try:
            _, _, self.cores_read, self.threads_read = self._receive(self.start_timeout_s)
        except BaseException:
            self.close()
            raise
        return self

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> MappedResult:
        """Run ``fn(*args, **kwargs)`` in the worker; exceptions are raised here."""
        return self._send(fn, args, kwargs)._result()

    def _send(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> MappedWorker:
        if self._proc is None:
            raise BoardError("MappedWorker: start() it (or use `with`) before call()")
        self._conn.send((fn, args, kwargs))
        return self

    def _result(self) -> MappedResult:
        _, value, cores, threads = self._receive(None)
        return MappedResult(value, cores, threads, self.mapping.device, self._proc.pid)

    def _receive(self, timeout_s: float | None) -> tuple[Any, ...]:
        waited = 0.0
        while not self._conn.poll(0.1):  # a dead worker must not leave us waiting forever
            waited += 0.1
            if not self._proc.is_alive():
                self._died()
            if timeout_s is not None and waited > timeout_s:
                self.close()
                raise BoardError(f"worker for {self.mapping.label} did not start in {timeout_s}s")
        try:
            msg = self._conn.recv()
        except (EOFError, OSError):  # the pipe closed: the worker is gone
            self._died()
        if msg[0] == "error":
            exc, tb = msg[1], msg[2]
            if hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(f"in the worker for {self.mapping.label}:\n{tb}")
            raise exc
        return msg

    def _died(self) -> NoReturn:
        self._proc.join(timeout=5)
        code = self._proc.exitcode
        self.close()
        raise BoardError(f"worker for {self.mapping.label} died (exit code {code})")

    def close(self) -> None:
        """Ask the worker to exit (terminate it if it does not)."""
        self._ask_to_exit()
        self._wait_for_exit()

    def _ask_to_exit(self) -> None:
        if self._proc is None:
            return
        try:
            self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass

    def _wait_for_exit(self) -> None:
        if self._proc is None:
            return
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)
        self._conn.close()
        self._proc = None

    def __enter__(self) -> MappedWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_all(workers: list[MappedWorker]) -> list[MappedWorker]:
    """Start several workers at once: started together, then each awaited.

    Each worker's start is mostly its own imports (torch: seconds), which overlap; on error
    every worker is closed.
    """
    try:
        for worker in workers:
            worker._start_process()
        for worker in workers:
            worker._ready()
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers


def call_all(jobs: list[tuple[MappedWorker, Callable[..., Any], tuple]]) -> list[MappedResult]:
    """Each ``(worker, fn, args)`` at once (not one after another); results in order.

    For work that is not measured (loading a model), so the workers' cores share it. Every
    worker's answer is awaited before the first error is raised.
    """
    for worker, fn, args in jobs:
        worker._send(fn, args, {})
    results: list[MappedResult | BaseException] = []
    for worker, _, _ in jobs:
        try:
            results.append(worker._result())
        except Exception as e:  # noqa: BLE001 (raised below, once every worker answered)
            results.append(e)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def close_all(workers: list[MappedWorker]) -> None:
    """Close several workers at once: each asked to exit, then each awaited."""
    for worker in workers:
        worker._ask_to_exit()
    for worker in workers:
        worker._wait_for_exit()


def run_mapped(fn: Callable[..., Any], mapping: Mapping, *args: Any, **kwargs: Any) -> MappedResult:
    """Run one callable in a fresh worker with ``mapping``; the worker exits afterwards.

    >>> import functools, os
    >>> core = min(os.sched_getaffinity(0))          # a core this process may use
    >>> r = run_mapped(functools.partial(pow, 2, 10), Mapping("cpu", (core,), 1))
    >>> r.value, r.cores_read == (core,), r.threads_read, r.worker_pid != os.getpid()
    (1024, True, 1, True)
    """
    with MappedWorker(mapping) as worker:
        return worker.call(fn, *args, **kwargs)
