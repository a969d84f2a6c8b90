import math

import numpy as np

from dyndnn.rct.peak_memory import PeakMemory


def test_the_peak_of_a_block_is_measured_even_after_it_is_freed():
    with PeakMemory() as small:
        pass
    with PeakMemory() as big:
        block = np.ones(8_000_000)  # 64 MB touched, then freed before the block ends
        del block
    assert big.available and big.reason == ""
    assert big.peak_growth_bytes > 60e6
    assert small.peak_growth_bytes < big.peak_growth_bytes


def test_without_proc_the_peak_is_nan_and_says_why(tmp_path):
    with PeakMemory(proc=tmp_path / "missing") as peak:
        pass
    assert not peak.available
    assert math.isnan(peak.peak_growth_bytes)
    assert "not measurable" in peak.reason


def test_a_status_file_without_the_peak_line_is_reported(tmp_path):
    (tmp_path / "clear_refs").write_text("")
    (tmp_path / "status").write_text("VmRSS:\t  1000 kB\n")
    with PeakMemory(proc=tmp_path) as peak:
        pass
    assert peak.start_rss_bytes == 1000 * 1024
    assert not peak.available and "VmHWM" in peak.reason


def test_a_high_water_mark_below_the_start_counts_as_no_growth(tmp_path):
    # the kernel raises VmHWM lazily: a make test run read a mark below the block's start
    (tmp_path / "clear_refs").write_text("")
    (tmp_path / "status").write_text("VmRSS:\t  2000 kB\nVmHWM:\t  1500 kB\n")
    with PeakMemory(proc=tmp_path) as peak:
        pass
    assert peak.available and peak.peak_growth_bytes == 0
