"""Independent parts of a stage side by side: one worker process each, its share of the cores.

A stage whose parts share nothing (RCT's image and text tasks) runs them at once where the
machine has a core for each, every process with ``cores // parts`` torch threads, and relays
their progress lines here as they come, so a notebook cell (and the pipeline's terminal) shows
them. Why: these parts are many small operations whose Python and dispatch cost does not
shrink with a second thread; two processes of one thread did the work of one process of two
in 0.75 of its time (docs/rct.md). With one core, or one part, they run here one after the
other, as before. A part's exception is raised here (its traceback in a note), after the
other parts are stopped.

>>> run_side_by_side([(divmod, (7, 2)), (pow, (2, 5))], processes=1)
[(3, 1), 32]
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from dyndnn.board.forkserver import worker_context
from dyndnn.errors import StageError

Part = tuple[Callable[..., Any], tuple[Any, ...]]  # a picklable top-level function, its args
POLL_S = 0.2


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def processes_for(parts: int, threads: int = 0) -> int:
    """How many processes ``parts`` parts get: one each where the cores allow, else one.

    ``threads`` (``run.threads``; 0: share the cores out) each process needs of the cores.

    >>> processes_for(1), processes_for(2, threads=10 ** 6)
    (1, 1)
    """
    cores = usable_cores()
    per_process = threads or 1
    return max(1, min(parts, cores // per_process))


class _Lines:
    """A child's stdout or stderr: each finished line goes to the parent through ``lines``.

    A carriage return drops the line so far: progress bars redraw that way, and several
    processes' bars on one terminal would be noise (their epoch lines are what comes through).
    """

    def __init__(self, lines: Any, stream: str) -> None:
        self.lines, self.stream, self.pending = lines, stream, ""

    def write(self, text: str) -> int:
        *done, pending = (self.pending + text).split("\n")
        for line in done:
            self.lines.put((self.stream, line.rsplit("\r", 1)[-1]))
        self.pending = pending.rsplit("\r", 1)[-1]
        return len(text)

    def flush(self) -> None:
        """Nothing is held back but a partial line."""


def _child(parts: Any, threads: int, lines: Any) -> None:
    """Take parts off ``parts`` until its end marker; send back each one's lines and result."""
    import torch

    _end_with_parent()
    torch.set_num_threads(threads)
    sys.stdout, sys.stderr = _Lines(lines, "stdout"), _Lines(lines, "stderr")
    while (job := parts.get()) is not None:
        index, (fn, args) = job
        try:
            value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 (whatever it was, the parent raises it)
            try:
                pickle.dumps(exc)
            except Exception:  # noqa: BLE001 (an exception that cannot travel: its text does)
                exc = StageError(f"{type(exc).__name__}: {exc}")
            lines.put(("error", index, exc, traceback.format_exc()))
            return
        lines.put(("done", index, value, ""))


def _end_with_parent() -> None:
    """End this process when its parent is gone, killed too hard to stop it (SIGKILL).

    An orphan would go on writing the run folder that a resumed run then writes too. The
    parent is the process that started this one (multiprocessing's sentinel of it), not the
    fork server this one was forked from.
    """
    parent = mp.parent_process()

    def watch() -> None:
        parent.join()  # returns when the parent's end of the pipe closes: it has exited
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="dyndnn-parent-watch").start()


def run_side_by_side(parts: Sequence[Part], processes: int | None = None,
                     threads: int = 0) -> list[Any]:
    """Each part's return value, in order; ``processes`` defaults to ``processes_for``.

    Parts more than processes queue, taken in order by whichever process is free (list the
    longest first). ``threads``: each process's torch threads (0: the cores shared out).
    """
    processes = processes_for(len(parts), threads) if processes is None else processes
    if processes <= 1:
        return [fn(*args) for fn, args in parts]
    each = threads or max(1, usable_cores() // processes)
    ctx = worker_context()  # forked from a clean server: never from a process with threads
    jobs, lines = ctx.Queue(), ctx.Queue()
    for job in [*enumerate(parts), *[None] * processes]:
        jobs.put(job)
    children = [ctx.Process(target=_child, args=(jobs, each, lines), daemon=True,
                            name=f"dyndnn-part-{i}") for i in range(processes)]
    results: dict[int, Any] = {}
    try:
        for child in children:
            child.start()
        while len(results) < len(parts):
            try:
                message = lines.get(timeout=POLL_S)
            except queue.Empty:
                _check_alive(children, results, len(parts))
                continue
            if message[0] in ("stdout", "stderr"):
                _echo(*message)
            elif message[0] == "done":
                results[message[1]] = message[2]
            else:
                _, index, exc, trace = message
                exc.add_note(f"raised in part {index + 1} of {len(parts)}, in its own "
                             f"process:\n{trace}")
                raise exc
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join(timeout=10)
    return [results[i] for i in range(len(parts))]


def _echo(stream: str, line: str) -> None:
    if line.strip():
        print(line, file=sys.stderr if stream == "stderr" else sys.stdout, flush=True)


def _check_alive(children: list[Any], results: dict[int, Any], parts: int) -> None:
    """A child that ended without a result died (killed, out of memory): say which."""
    for child in children:
        if not child.is_alive() and child.exitcode not in (None, 0):
            missing = sorted(set(range(parts)) - set(results))
            raise StageError(f"a process of this stage ended (exit code {child.exitcode}: "
                             f"killed, or out of memory) before part(s) "
                             f"{', '.join(str(i + 1) for i in missing)} of {parts} returned")
