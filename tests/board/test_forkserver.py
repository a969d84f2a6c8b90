from __future__ import annotations

import os
import sys

from dyndnn.board.forkserver import worker_context


def what_a_worker_sees(answers) -> None:
    answers.put({"server": os.getppid(), "variable": os.environ.get("DYNDNN_TEST_VARIABLE"),
                 "gomp": os.environ.get("GOMP_CPU_AFFINITY"), "torch": "torch" in sys.modules})


def ask_a_worker() -> dict:
    ctx = worker_context()
    answers = ctx.Queue()
    process = ctx.Process(target=what_a_worker_sees, args=(answers,))
    process.start()
    try:
        return answers.get(timeout=120)
    finally:
        process.join(timeout=30)


def test_workers_share_one_server_until_the_environment_changes(monkeypatch):
    import torch  # noqa: F401 (the parent has torch: the server preloads it)

    monkeypatch.delenv("DYNDNN_TEST_VARIABLE", raising=False)
    first, second = ask_a_worker(), ask_a_worker()
    assert first["server"] == second["server"] != os.getpid()  # forked by one server
    assert first["variable"] is None and first["torch"]  # imported once, in the server
    monkeypatch.setenv("DYNDNN_TEST_VARIABLE", "set after the server started")
    changed = ask_a_worker()
    # a server started before would hand its worker the old environment: it was restarted
    assert changed["server"] != first["server"]
    assert changed["variable"] == "set after the server started"


def test_the_server_starts_without_openmp_affinity_variables(monkeypatch):
    monkeypatch.setenv("GOMP_CPU_AFFINITY", "0")  # torch's OpenMP would pin every worker to 0
    assert ask_a_worker()["gomp"] is None
    assert os.environ["GOMP_CPU_AFFINITY"] == "0"  # the parent's is left as it was


def wait_for_the_end(ready, end) -> None:
    ready.put(os.getppid())
    end.get(timeout=120)


def test_a_worker_alive_keeps_its_server_and_the_next_is_spawned(monkeypatch):
    monkeypatch.delenv("DYNDNN_TEST_VARIABLE", raising=False)
    ctx = worker_context()
    ready, end = ctx.Queue(), ctx.Queue()
    running = ctx.Process(target=wait_for_the_end, args=(ready, end))
    running.start()
    try:
        server = ready.get(timeout=120)
        assert server != os.getpid()  # forked by the server
        monkeypatch.setenv("DYNDNN_TEST_VARIABLE", "changed while a worker runs")
        # restarting the server now would lose the running worker's exit code: spawned
        spawned = ask_a_worker()
        assert spawned["server"] == os.getpid()
        assert spawned["variable"] == "changed while a worker runs"
        assert running.is_alive()
    finally:
        end.put(None)
        running.join(timeout=30)
    assert running.exitcode == 0  # its end came through the server it was forked by
