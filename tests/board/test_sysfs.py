from __future__ import annotations

import pytest

from dyndnn.board.errors import BoardError, SensorError
from dyndnn.board.sysfs import (
    bounds_write_order,
    can_read,
    can_write,
    format_cpu_list,
    parse_cpu_list,
    read_float,
    read_int,
    sysfs_path,
    write_str,
)
from dyndnn.errors import DyndnnError

from .fakesys import put


def test_cpu_lists_round_trip():
    assert parse_cpu_list("0-3,8,10-11") == (0, 1, 2, 3, 8, 10, 11)
    assert parse_cpu_list("4 5 6 7\n") == (4, 5, 6, 7)
    assert parse_cpu_list("") == ()
    for cpus in [(0,), (0, 1), (0, 2, 3, 4, 9)]:
        assert parse_cpu_list(format_cpu_list(cpus)) == cpus
    assert format_cpu_list([3, 1, 2]) == "1-3"


@pytest.mark.parametrize(
    ("cur", "new"),
    [((800, 1400), (1600, 1600)), ((800, 1400), (600, 600)), ((800, 1400), (1000, 1000)),
     ((1000, 1000), (200, 2000)), ((1000, 1000), (1200, 2000)), ((1000, 1000), (200, 900))],
)  # fmt: skip
def test_bounds_write_order_never_crosses(cur, new):
    """Simulate the kernel's check (min <= max after every single write)."""
    lo, hi = cur
    for which, value in bounds_write_order(*cur, *new):
        lo, hi = (value, hi) if which == "min" else (lo, value)
        assert lo <= hi, f"write {which}={value} leaves min {lo} > max {hi}"
    assert (lo, hi) == new


def test_bounds_write_order_rejects_inverted_window():
    with pytest.raises(BoardError):
        bounds_write_order(100, 200, 300, 250)


def test_read_helpers_name_the_missing_file(tmp_path):
    f = put(tmp_path, "/sys/x/value", 42)
    assert read_int(f) == 42
    put(tmp_path, "/sys/x/w", 1.25)
    assert read_float(tmp_path / "sys/x/w") == 1.25
    missing = tmp_path / "sys/x/gone"
    with pytest.raises(SensorError, match="gone") as info:
        read_int(missing)
    assert info.value.path == missing
    put(tmp_path, "/sys/x/bad", "garbage")
    with pytest.raises(SensorError, match="not an integer"):
        read_int(tmp_path / "sys/x/bad")
    assert issubclass(SensorError, DyndnnError)


def test_write_str_and_access_checks(tmp_path, as_non_root):
    f = put(tmp_path, "/sys/x/setting", 1)
    write_str(f, 7)
    assert f.read_text() == "7"
    f.chmod(0o444)
    assert can_read(f)
    assert not can_write(f)
    f.chmod(0o000)
    assert not can_read(f)
    with pytest.raises(BoardError, match="does-not-exist"):
        write_str(tmp_path / "no/such/dir/does-not-exist", 1)


def test_sysfs_path_prefixes_root(tmp_path):
    assert sysfs_path(tmp_path, "/sys/class/x") == tmp_path / "sys/class/x"
    assert str(sysfs_path("/", "/sys/class/x")) == "/sys/class/x"
