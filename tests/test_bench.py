import json

from dyndnn.bench import main


def test_bench_runs_and_writes_every_section(tmp_path, capsys):
    results = main(["--quick", "--width", "0.125", "--groups", "2", "--out", str(tmp_path)])
    for name in ("latency", "floor", "switch", "memory", "training", "gflops"):
        assert (tmp_path / f"{name}.json").is_file()
    memory = json.loads((tmp_path / "memory.json").read_text())
    assert memory["bytes_all_configurations"] == memory["bytes_full_model"]
    assert memory["bytes_separate_models"] == memory["bytes_all_configurations"] * 3 // 2
    assert results["switch"]["tensor_bytes_allocated"] == 0
    assert all(r["frozen_params_with_grad"] == 0 for r in results["training"].values())
    assert all(v > 0 for r in results["latency"]["batches"].values()
               for v in r["latency_s"].values())
    assert "MAC ratio 2.00x" in capsys.readouterr().out
