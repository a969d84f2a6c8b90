import json

from dyndnn.bench.suite import main


def test_bench_runs_and_writes_every_section(tmp_path, capsys):
    results = main(["--quick", "--width", "0.125", "--groups", "2", "--out", str(tmp_path),
                    "--architectures", "alexnet,resnet20"])
    for name in ("latency-resnet20", "serving-resnet20", "floor", "switch", "memory",
                 "training", "gflops", "rct", "scaling"):
        assert (tmp_path / f"{name}.json").is_file()
    assert json.loads((tmp_path / "floor.json").read_text())["context"]["model"]["groups"] == 2
    memory = json.loads((tmp_path / "memory.json").read_text())
    assert memory["bytes_all_configurations"] == memory["bytes_full_model"]
    assert memory["bytes_separate_models"] == memory["bytes_all_configurations"] * 3 // 2
    assert results["switch"]["tensor_bytes_allocated"] == 0
    assert all(r["frozen_params_with_grad"] == 0 for r in results["training"].values())
    assert all(v > 0 for r in results["latency"]["batches"].values()
               for v in r["latency_s"].values())
    out = capsys.readouterr().out
    assert "MAC ratio 2.00x" in out
    rct = results["rct"]
    assert set(rct) == {"image", "text"}
    assert all(r["rct_packed_samples_per_s"] > 0 and r["packed_vs_containers"] > 0
               for r in rct.values())
    scaling = results["scaling"]
    assert all(scaling[f"{v}_images_per_s"] > 0 for v in ("1_process", "2_processes",
                                                           "2_processes_synced_bn"))
    assert 0.05 < scaling["efficiency"] < 2  # two real runs: a rate, not a constant
    assert "scaling efficiency" in out


def test_serving_section_compares_engines_side_by_side(tmp_path, capsys):
    results = main(["--quick", "--width", "0.125", "--groups", "2", "--out", str(tmp_path),
                    "--only", "serving", "--architectures", "alexnet,resnet20"])
    serving = json.loads((tmp_path / "serving.json").read_text())
    assert set(results) == {"serving", "architectures"} and serving["mac_ratio"] == 2.0
    residual = json.loads((tmp_path / "serving-resnet20.json").read_text())
    assert residual["context"]["model"]["architecture"] == "resnet20"
    assert residual["mac_ratio"] == 2.0  # block-diagonal residual groups: MACs scale with k
    assert set(results["architectures"]) == {"alexnet", "resnet20"}
    for row in serving["batches"].values():
        assert set(row["latency_s"]) == {"eager", "onnxruntime", "onnxruntime-repacked"}
        assert all(v > 0 for lat in row["latency_s"].values() for v in lat.values())
        assert row["onnxruntime"]["speedup_k1"] == (row["latency_s"]["eager"]["1"]
                                                   / row["latency_s"]["onnxruntime"]["1"])
    memory = serving["memory"]
    assert memory["server_weight_bytes"] == memory["full_configuration_weight_bytes"]
    assert memory["rss_server_bytes"] > 0 and memory["rss_single_full_session_bytes"] > 0
    assert set(serving["switch"]) == {"eager", "onnxruntime", "onnxruntime-repacked"}
    assert "vs eager: k=1" in capsys.readouterr().out
