"""The run folder's lock: a second writer fails at once and is told who holds it."""

import os
import subprocess
import sys
import time

import pytest

from dyndnn.errors import RunFolderError
from dyndnn.record.runlock import hold, holder_pid

HOLD = """
import sys, time
from dyndnn.record.runlock import hold
with hold(sys.argv[1], "run folder x"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def other_holder(tmp_path):
    path = tmp_path / ".lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    yield path, proc
    proc.kill()
    proc.wait()


def test_second_writer_fails_at_once_naming_the_holder_pid(other_holder):
    path, proc = other_holder
    start = time.monotonic()
    with pytest.raises(RunFolderError, match=rf"in use by process {proc.pid} \(.*python"), \
            hold(path, "run folder x"):
        pass
    assert time.monotonic() - start < 5  # refused, not queued
    assert holder_pid(path) == proc.pid


def test_lock_dies_with_its_holder_even_on_kill_9(other_holder):
    path, proc = other_holder
    proc.kill()
    proc.wait()
    with hold(path, "run folder x"):
        assert holder_pid(path) == os.getpid()


def test_a_child_of_the_holder_works_under_its_lock(tmp_path):
    """The pipeline holds the folder; the notebook kernels it starts must still write."""
    path = tmp_path / ".lock"
    child = ("import sys; from dyndnn.record.runlock import hold\n"
             "with hold(sys.argv[1], 'x'):\n    print('entered')")
    with hold(path, "x"):
        out = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True,
                             text=True, check=True)
    assert out.stdout.strip() == "entered"
