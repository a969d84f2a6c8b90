"""Atomic writes: unique temporary names, so concurrent writers and readers never see halves."""

import threading

import pandas as pd
import pytest

from dyndnn.record.atomic import atomic_write, write_csv, write_text


def test_two_writers_of_one_path_never_fail_and_a_reader_never_sees_a_half(tmp_path):
    path = tmp_path / "resume.pt"
    payloads = {name: name.encode() * 200_000 for name in ("a", "b")}  # 200 kB each
    errors, torn = [], []

    def writer(name):
        for _ in range(150):
            try:
                with atomic_write(path, "wb") as f:
                    f.write(payloads[name])
            except Exception as exc:  # the fixed ".tmp" name made 71 of 600 saves fail
                errors.append(exc)

    def reader(stop):
        while not stop.is_set():
            if path.exists():
                data = path.read_bytes()
                if data not in payloads.values():
                    torn.append(len(data))

    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(n,)) for n in payloads]
    watcher = threading.Thread(target=reader, args=(stop,))
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert errors == [] and torn == []
    assert [p.name for p in tmp_path.iterdir()] == ["resume.pt"]  # no temporary left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_text(tmp_path / "config.yaml", "seed: 0\n")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write("seed: 7\n")
        raise RuntimeError("interrupted mid-write")
    assert path.read_text() == "seed: 0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_write_csv_round_trips(tmp_path):
    frame = pd.DataFrame({"groups": [1, 2], "accuracy": [0.5, 0.75]})
    assert pd.read_csv(write_csv(frame, tmp_path / "eval.csv")).equals(frame)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_a_written_file_follows_the_umask_not_the_temporary_files_mode(tmp_path, umask):
    import os

    previous = os.umask(umask)
    try:
        path = write_text(tmp_path / "eval.csv", "a\n")
        with atomic_write(tmp_path / "resume.pt", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(previous)
    modes = {oct((tmp_path / n).stat().st_mode & 0o777) for n in ("eval.csv", "resume.pt")}
    assert modes == {oct(0o666 & ~umask)}  # mkstemp alone gave 0o600 whatever the umask
    assert path.read_text() == "a\n"


@pytest.mark.parametrize("failure", [
    OSError(28, "No space left on device"),  # what Python's own writes raise
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0"),  # torch
])
def test_a_full_disk_is_named_and_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                                      failure):
    import shutil
    from collections import namedtuple

    from dyndnn.errors import DiskFullError
    from dyndnn.record import atomic

    path = write_text(tmp_path / "resume.pt", "old")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 300_000, 300_000))
    with pytest.raises(DiskFullError, match=r"no space left on device while writing .*resume\.pt "
                                            r"\(300,000 bytes free there"):
        with atomic.atomic_write(path, "wb"):
            raise failure
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["resume.pt"]
    if isinstance(failure, RuntimeError):  # torch's words with space to spare: not a full disk
        monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 0, 10**11))
        with pytest.raises(RuntimeError, match="unexpected pos"), atomic.atomic_write(path):
            raise failure


def test_a_manifest_is_rewritten_in_place_when_no_second_copy_fits(tmp_path, monkeypatch):
    import json

    from dyndnn.errors import DiskFullError
    from dyndnn.record import manifest as manifest_module

    manifest_module.write_manifest(tmp_path, {"status": "running"})

    def full(path, text):
        raise DiskFullError("no space left on device while writing manifest.json")

    monkeypatch.setattr(manifest_module, "write_text", full)
    manifest_module.write_manifest(tmp_path, {"status": "failed"})
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"status": "failed"}
    with pytest.raises(DiskFullError):  # with no manifest yet, there is nothing to rewrite
        manifest_module.write_manifest(tmp_path / "new", {"status": "failed"})
