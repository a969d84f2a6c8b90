"""Co-runners run only in their phase, on their cores, and never outlive the experiment."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dyndnn.errors import DyndnnError
from dyndnn.runtime.corunners import CoRunners
from dyndnn.runtime.scenarios import builtin_scenario

CORES = tuple(sorted(os.sched_getaffinity(0)))


def state(pid):
    """The process state letter (R running, S sleeping, T stopped) from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def gone(pid):
    try:
        return state(pid) == "Z"
    except FileNotFoundError:
        return True


def test_a_phase_runs_only_while_it_lasts_pinned_to_its_cores():
    hog = builtin_scenario("hog", duration_s=8.0, cores=CORES)
    with CoRunners(hog) as corunners:
        pids = [p.pid for _, p in corunners.procs]
        assert all(state(pid) == "T" for pid in pids)  # started paused
        corunners.apply(3.0)  # the first phase: a hog on the last core only
        first = [p.pid for i, p in corunners.procs if i == 0]
        time.sleep(0.3)
        assert all(state(pid) in "RS" for pid in first)
        assert all(os.sched_getaffinity(pid) == {CORES[-1]} for pid in first)
        assert all(state(p.pid) == "T" for i, p in corunners.procs if i == 1)
        corunners.apply(7.0)  # calm again
        assert all(state(pid) == "T" for pid in pids)
    assert all(gone(pid) for pid in pids) and corunners.alive() == 0


def test_an_error_inside_the_experiment_still_kills_them():
    hog = builtin_scenario("hog", duration_s=8.0, cores=CORES)
    with pytest.raises(RuntimeError, match="a policy failed"):
        with CoRunners(hog) as corunners:
            corunners.apply(5.0)
            pids = [p.pid for _, p in corunners.procs]
            raise RuntimeError("a policy failed")
    assert all(gone(pid) for pid in pids)


def test_a_killed_experiment_takes_its_co_runners_with_it(tmp_path):
    """kill -9 leaves no handler to run: the kernel kills each child with its parent."""
    pids_file = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import time
        from dyndnn.runtime.corunners import CoRunners
        from dyndnn.runtime.scenarios import builtin_scenario
        corunners = CoRunners(builtin_scenario("hog", 8.0, {CORES!r})).__enter__()
        corunners.apply(5.0)
        open({str(pids_file)!r}, "w").write(" ".join(str(p.pid) for _, p in corunners.procs))
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not (pids_file.is_file() and pids_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert pids and not any(gone(pid) for pid in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(gone(pid) for pid in pids)


def test_a_phase_on_cores_this_process_may_not_use_is_refused():
    far = builtin_scenario("hog", duration_s=4.0, cores=(0, 4095))
    with pytest.raises(DyndnnError, match="wants cores 4095"):
        CoRunners(far).__enter__()


def test_a_dnn_phase_without_its_command_is_refused():
    dnn = builtin_scenario("second_dnn", duration_s=4.0, cores=CORES)
    with pytest.raises(DyndnnError, match="needs the command of its inference loop"):
        CoRunners(dnn).__enter__()
