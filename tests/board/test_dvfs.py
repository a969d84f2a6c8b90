from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings

import pytest

from dyndnn.board.dvfs import DvfsController, recover
from dyndnn.board.errors import BoardError, ReadOnlyWarning
from dyndnn.errors import ConfigError

from .fakesys import get, make_devfreq, make_odroid_xu3, put

P0 = "/sys/devices/system/cpu/cpufreq/policy0"
P4 = "/sys/devices/system/cpu/cpufreq/policy4"
NANO_GPU = "/sys/devices/57000000.gpu/devfreq/57000000.gpu"
NANO_GPU_HZ = (76800000, 153600000, 230400000, 921600000)


def snapshot(root):
    """Governor, min, max and (under userspace only, as the kernel shows it) setspeed."""
    out = {}
    for p in (P0, P4):
        gov = get(root, f"{p}/scaling_governor")
        out[p] = (
            gov,
            get(root, f"{p}/scaling_min_freq"),
            get(root, f"{p}/scaling_max_freq"),
            get(root, f"{p}/scaling_setspeed") if gov == "userspace" else None,
        )
    return out


@pytest.fixture
def board(tmp_path):
    make_odroid_xu3(tmp_path)
    return tmp_path


def test_sets_reads_back_and_restores(board, tmp_path):
    before = snapshot(board)
    rec = tmp_path / "rec.json"
    put(board, f"{P4}/scaling_cur_freq", 1800000)  # a thermal cap holds the A15 low
    with DvfsController(board, rec) as dvfs:
        assert rec.exists()  # written before the first change
        saved = json.loads(rec.read_text())
        assert saved["cpufreq"]["policy0"]["governor"] == "ondemand"
        reached = dvfs.set_cpu_freq(2000000, cpus=[4, 5])
        assert reached == {"policy4": 1800000}  # read back, not the request
        assert get(board, f"{P4}/scaling_setspeed") == "2000000"
        assert get(board, f"{P0}/scaling_governor") == "ondemand"  # other cluster untouched
        assert dvfs.set_cpu_freq(None, cpus=[0]) == {"policy0": 1400000}
    assert snapshot(board) == before
    assert not rec.exists()


def test_restores_on_exception(board, tmp_path):
    before = snapshot(board)
    with pytest.raises(RuntimeError, match="boom"), DvfsController(board, tmp_path / "r.json") as d:
        d.set_cpu_freq(600000, cpus=[4])
        assert snapshot(board) != before
        raise RuntimeError("boom")
    assert snapshot(board) == before


def test_invalid_frequency_changes_nothing(board, tmp_path):
    before = snapshot(board)
    with DvfsController(board, tmp_path / "r.json") as dvfs:
        with pytest.raises(ConfigError):
            dvfs.set_cpu_freq(1800000)  # valid for the A15, not for the A7: nothing applied
        assert snapshot(board) == before


def test_sigterm_restores_then_chains_previous_handler(board, tmp_path):
    before = snapshot(board)
    seen = []

    def previous(signum, frame):
        seen.append((signum, snapshot(board) == before))

    old = signal.signal(signal.SIGTERM, previous)
    try:
        with DvfsController(board, tmp_path / "r.json") as dvfs:
            dvfs.set_cpu_freq(600000, cpus=[4])
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == [(signal.SIGTERM, True)]  # restored before the old handler ran
            assert signal.getsignal(signal.SIGTERM) is previous  # handed back after use
    finally:
        signal.signal(signal.SIGTERM, old)
    assert snapshot(board) == before


def test_sigint_restores_then_raises_keyboard_interrupt(board, tmp_path):
    before = snapshot(board)
    # Python's own handler, as an interactive process has it (a background job may ignore it)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), DvfsController(board, tmp_path / "r.json") as dvfs:
            dvfs.set_cpu_freq(400000, cpus=[0])
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    finally:
        signal.signal(signal.SIGINT, old)
    assert snapshot(board) == before


def test_an_ignored_signal_stays_ignored_and_the_clocks_stay_set(board, tmp_path):
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with DvfsController(board, tmp_path / "r.json") as dvfs:
            dvfs.set_cpu_freq(400000, cpus=[0])
            set_clocks = snapshot(board)
            os.kill(os.getpid(), signal.SIGINT)  # ignored, as under nohup
            assert snapshot(board) == set_clocks
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


CRASH = """
import os, sys
from dyndnn.board.dvfs import DvfsController
dvfs = DvfsController(sys.argv[1], sys.argv[2]).start()
dvfs.set_cpu_freq(int(sys.argv[3]), cpus=[4])
os._exit(3)  # no finally, no atexit: a crash
"""


def test_crash_leaves_recovery_file_applied_at_next_start(board, tmp_path):
    before = snapshot(board)
    rec = tmp_path / "rec.json"
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(board), str(rec), "600000"], capture_output=True
    )
    assert done.returncode == 3, done.stderr.decode()
    assert rec.exists()
    assert get(board, f"{P4}/scaling_setspeed") == "600000"
    assert recover(board, rec) is True
    assert snapshot(board) == before
    assert not rec.exists()
    assert recover(board, rec) is False

    # and a new controller applies a stale file itself before saving the state again
    subprocess.run([sys.executable, "-c", CRASH, str(board), str(rec), "1000000"], check=False)
    with DvfsController(board, rec):
        assert get(board, f"{P4}/scaling_governor") == "ondemand"
    assert snapshot(board) == before


def test_corrupt_recovery_file_is_reported(tmp_path):
    rec = tmp_path / "rec.json"
    rec.write_text("{not json")
    with pytest.raises(BoardError, match="unreadable"):
        recover(tmp_path, rec)


def test_read_only_says_so_once_and_writes_nothing(board, tmp_path, as_non_root):
    before = snapshot(board)
    # one file of one cluster is enough: nothing may be half-applied
    (board / P4.lstrip("/") / "scaling_setspeed").chmod(0o444)
    rec = tmp_path / "rec.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with DvfsController(board, rec) as dvfs:
            assert dvfs.read_only
            assert dvfs.set_cpu_freq(400000, cpus=[0]) == {"policy0": 1400000}
            dvfs.set_cpu_freq(600000, cpus=[4])
    read_only = [w for w in caught if issubclass(w.category, ReadOnlyWarning)]
    assert len(read_only) == 1
    assert "scaling_setspeed" in str(read_only[0].message)
    assert snapshot(board) == before
    assert not rec.exists()


def test_gpu_devfreq_pinned_and_restored(board, tmp_path):
    gpu = make_devfreq(board, NANO_GPU, NANO_GPU_HZ, "nvhost_podgov")
    with DvfsController(board, tmp_path / "r.json") as dvfs:
        assert dvfs.set_gpu_freq(230400000) == 76800000  # cur_freq as read back
        assert (gpu / "min_freq").read_text() == "230400000"
        assert (gpu / "max_freq").read_text() == "230400000"
        with pytest.raises(ConfigError):
            dvfs.set_gpu_freq(12345)
    assert (gpu / "min_freq").read_text().strip() == str(min(NANO_GPU_HZ))
    assert (gpu / "max_freq").read_text().strip() == str(max(NANO_GPU_HZ))


def test_no_cpufreq_refuses_a_frequency_but_accepts_none(tmp_path):
    with DvfsController(tmp_path, tmp_path / "r.json") as dvfs:
        assert dvfs.set_cpu_freq(None) == {}
        with pytest.raises(BoardError, match="no cpufreq"):
            dvfs.set_cpu_freq(1000000)


def test_recovery_file_of_a_running_sweep_is_left_alone(board, tmp_path):
    rec = tmp_path / "rec.json"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        saved = {"version": 1, "pid": other.pid, "cpufreq": {}}
        rec.write_text(json.dumps(saved))
        with pytest.raises(BoardError, match="still running"):
            recover(board, rec)
        assert rec.exists()
    finally:
        other.kill()
        other.wait()
    assert recover(board, rec) is True  # its owner is gone now
