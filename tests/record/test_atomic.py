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
