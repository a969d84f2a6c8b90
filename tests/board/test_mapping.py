from __future__ import annotations

import functools
import os

import pytest

from dyndnn.board.errors import BoardError
from dyndnn.board.mapping import (
    AFFINITY_ENV_VARS,
    MappedWorker,
    Mapping,
    call_all,
    close_all,
    run_mapped,
    start_all,
)
from dyndnn.errors import ConfigError

HOST_CORES = sorted(os.sched_getaffinity(0))
needs_two_cores = pytest.mark.skipif(len(HOST_CORES) < 2, reason="needs cores 0 and 1")


def report(tag: str) -> dict:
    """Runs in the worker: what did it get, and was torch's pool built under it?"""
    import torch

    x = torch.randn(64, 64)
    (x @ x).sum().item()  # builds the intra-op pool
    return {
        "tag": tag,
        "pid": os.getpid(),
        "env": {k: os.environ.get(k) for k in AFFINITY_ENV_VARS},
        "affinity": sorted(os.sched_getaffinity(0)),
        "threads": torch.get_num_threads(),
    }


def fail() -> None:
    raise ValueError("bad input in worker")


def test_mapping_validation_and_parse():
    assert Mapping("cpu", (1, 0, 1)).cores == (0, 1)
    assert Mapping.parse("cuda:0@2-3x1") == Mapping("cuda:0", (2, 3), 1)
    assert Mapping.parse("cpu") == Mapping()
    assert Mapping("cpu", (0, 1)).resolved().threads == 2
    assert Mapping().resolved().cores == tuple(HOST_CORES)
    for bad in (lambda: Mapping("gpu"), lambda: Mapping("cpu", (-1,)),
                lambda: Mapping("cpu", (0,), -2), lambda: Mapping.parse("tpu:0")):  # fmt: skip
        with pytest.raises(ConfigError):
            bad()


@needs_two_cores
@pytest.mark.parametrize(("cores", "threads"), [((0,), 1), ((1,), 1), ((0, 1), 2)])
def test_worker_pins_cores_and_threads(cores, threads, monkeypatch):
    monkeypatch.setenv("GOMP_CPU_AFFINITY", "0")  # would collapse the pool onto core 0
    monkeypatch.setenv("OMP_PROC_BIND", "true")
    parent_affinity = os.sched_getaffinity(0)
    r = run_mapped(functools.partial(report, "x"), Mapping("cpu", cores, threads))
    assert r.value["pid"] != os.getpid()
    assert r.value["affinity"] == list(cores) and r.cores_read == cores
    assert r.value["threads"] == threads == r.threads_read
    assert r.value["env"] == dict.fromkeys(AFFINITY_ENV_VARS)  # cleared in the worker
    assert os.environ["GOMP_CPU_AFFINITY"] == "0"  # ... and put back in the parent
    assert os.sched_getaffinity(0) == parent_affinity


def test_worker_keeps_state_reports_errors_and_death():
    with MappedWorker(Mapping("cpu", (HOST_CORES[0],), 1)) as worker:
        first = worker.call(report, "a")
        assert worker.call(report, "b").value["pid"] == first.value["pid"]
        with pytest.raises(ValueError, match="bad input in worker"):
            worker.call(fail)
        assert worker.call(report, "c").value["tag"] == "c"  # still usable
        with pytest.raises(BoardError, match="died"):
            worker.call(os._exit, 5)
    with pytest.raises(BoardError, match="start"):
        worker.call(report, "d")


def test_unusable_cores_are_a_config_error():
    with pytest.raises(ConfigError, match="cannot pin"):
        run_mapped(fail, Mapping("cpu", (max(HOST_CORES) + 64,), 1))


@needs_two_cores
def test_workers_started_together_each_get_their_own_mapping():
    mappings = [Mapping("cpu", (0,), 1), Mapping("cpu", (1,), 1), Mapping("cpu", (0, 1), 2)]
    workers = start_all([MappedWorker(m) for m in mappings])
    try:
        got = [w.call(report, w.mapping.label) for w in workers]
    finally:
        for worker in workers:
            worker.close()
    assert [(r.value["affinity"], r.value["threads"]) for r in got] == [
        ([0], 1), ([1], 1), ([0, 1], 2)]
    assert len({r.value["pid"] for r in got}) == 3


def test_a_worker_that_cannot_start_closes_the_ones_started_with_it():
    good = MappedWorker(Mapping("cpu", (HOST_CORES[0],), 1))
    with pytest.raises(ConfigError, match="cannot pin"):
        start_all([good, MappedWorker(Mapping("cpu", (max(HOST_CORES) + 64,), 1))])
    with pytest.raises(BoardError, match="start"):  # closed: it refuses calls
        good.call(report, "after")


def test_call_all_runs_each_job_in_its_worker_and_raises_after_every_answer():
    core = (HOST_CORES[0],)
    workers = start_all([MappedWorker(Mapping("cpu", core, 1)) for _ in range(2)])
    try:
        got = call_all([(w, report, (f"job {i}",)) for i, w in enumerate(workers)])
        assert [r.value["tag"] for r in got] == ["job 0", "job 1"]  # in the jobs' order
        assert [r.value["pid"] for r in got] == [r.worker_pid for r in got]
        assert got[0].worker_pid != got[1].worker_pid
        with pytest.raises(ValueError, match="bad input in worker"):
            call_all([(workers[0], fail, ()), (workers[1], report, ("after",))])
        # the second worker's answer was read: both are ready for the next call
        assert [w.call(report, "next").value["tag"] for w in workers] == ["next", "next"]
    finally:
        close_all(workers)
    for worker in workers:
        with pytest.raises(BoardError, match="start"):  # closed: it refuses calls
            worker.call(report, "closed")
