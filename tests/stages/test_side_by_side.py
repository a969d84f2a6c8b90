"""Parts of a stage side by side in processes of their own: results, lines, failures."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dyndnn.errors import ConfigError, StageError
from dyndnn.stages.side_by_side import processes_for, run_side_by_side, usable_cores

needs_two_cores = pytest.mark.skipif(usable_cores() < 2, reason="one core: parts run in turn")


def where_and_threads(tag: str) -> tuple[str, int, int]:
    import torch

    print(f"part {tag} says hello")
    return tag, os.getpid(), torch.get_num_threads()


def refuse(what: str) -> None:
    raise ConfigError(f"bad {what}")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@needs_two_cores
def test_each_part_runs_in_a_process_of_its_own_with_its_share_of_threads(capsys):
    parts = [(where_and_threads, (tag,)) for tag in "abc"]  # three parts, two processes
    results = run_side_by_side(parts, processes=2)
    assert [tag for tag, _, _ in results] == ["a", "b", "c"]  # in the parts' order
    pids = {pid for _, pid, _ in results}
    assert os.getpid() not in pids and len(pids) <= 2
    assert {threads for _, _, threads in results} == {usable_cores() // 2}
    out = capsys.readouterr().out  # each process's lines are printed here
    assert all(f"part {tag} says hello" in out for tag in "abc")


def test_one_process_runs_the_parts_here_in_turn(capsys):
    results = run_side_by_side([(where_and_threads, ("a",)), (divmod, (7, 2))], processes=1)
    assert results[0][1] == os.getpid() and results[1] == (3, 1)
    assert "part a says hello" in capsys.readouterr().out


@needs_two_cores
def test_a_part_that_fails_raises_its_own_error_here_and_says_which_part():
    with pytest.raises(ConfigError, match="bad input") as info:
        run_side_by_side([(where_and_threads, ("a",)), (refuse, ("input",))], processes=2)
    assert any("part 2 of 2" in note and "refuse" in note for note in info.value.__notes__)


@needs_two_cores
def test_a_process_that_dies_is_named_instead_of_waited_for():
    with pytest.raises(StageError, match=r"exit code -9.*part\(s\) (1, )?2 of 2"):
        run_side_by_side([(where_and_threads, ("a",)), (die, ())], processes=2)


def test_processes_are_the_cores_shared_out_never_more_than_the_parts():
    cores = usable_cores()
    assert processes_for(1) == 1
    assert processes_for(2) == min(2, cores)
    assert processes_for(5, threads=cores) == 1  # a part wants every core: in turn


def sleep_then_say(seconds: float, path: str) -> None:
    import time
    from pathlib import Path

    time.sleep(seconds)
    Path(path).write_text("an orphan wrote this")


@needs_two_cores
def test_a_part_ends_when_its_parent_is_killed_outright(tmp_path):
    """SIGKILL gives the parent no chance to stop them: the parts notice it and end."""
    import subprocess
    import sys
    import time

    trace = tmp_path / "orphan.txt"
    code = ("from dyndnn.stages.side_by_side import run_side_by_side\n"
            "from tests.stages.test_side_by_side import sleep_then_say\n"
            f"run_side_by_side([(sleep_then_say, (6, {str(trace)!r}))] * 2, processes=2)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2])
    time.sleep(4)  # the parts are running (spawned, torch imported, asleep)
    parent.kill()
    parent.wait()
    time.sleep(6)
    assert not trace.exists()
