import json
import re

import pytest

from dyndnn.bench.serving import COMPILED
from dyndnn.bench.suite import main

ENGINES_TESTED = ["eager", "onnxruntime", "onnxruntime-unpacked", "openvino"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One whole ``make bench --quick`` for the module: it takes a minute."""
    out = tmp_path_factory.mktemp("bench")
    from contextlib import redirect_stdout
    from io import StringIO

    printed = StringIO()
    with redirect_stdout(printed):
        # every kind of engine once: onnxruntime packed and not, one compiled engine (the
        # other, executorch, lowers for seconds per configuration: tests/test_serve.py has it)
        results = main(["--quick", "--width", "0.125", "--groups", "2", "--out", str(out),
                        "--architectures", "alexnet", "--outputs", str(out / "none"),
                        "--engines", ",".join(ENGINES_TESTED)])
    return results, out, printed.getvalue()


def test_bench_runs_and_writes_every_section(bench):
    results, tmp_path, out = bench
    for name in ("latency", "serving", "floor", "switch", "memory",
                 "training", "families", "gflops", "rct", "scaling", "pipeline"):
        assert (tmp_path / f"{name}.json").is_file()
    assert json.loads((tmp_path / "floor.json").read_text())["context"]["model"]["groups"] == 2
    memory = json.loads((tmp_path / "memory.json").read_text())
    assert memory["bytes_all_configurations"] == memory["bytes_full_model"]
    assert memory["bytes_separate_models"] == memory["bytes_all_configurations"] * 3 // 2
    assert results["switch"]["tensor_bytes_allocated"] == 0
    assert all(r["frozen_params_with_grad"] == 0 for r in results["training"].values())
    assert all(v > 0 for r in results["latency"]["batches"].values()
               for v in r["latency_s"].values())
    assert "MAC ratio 2.00x" in out
    rct = results["rct"]
    assert set(rct) == {"image", "text"}
    assert all(r["rct_packed_samples_per_s"] > 0 and r["packed_vs_containers"] > 0
               and r["qat_samples_per_s"] > 0
               and r["rct_time_vs_fp32"] == r["fp32_samples_per_s"] / r["rct_packed_samples_per_s"]
               for r in rct.values())
    families = results["families"]
    assert set(families) == {"group", "independent", "tann", "slimmable"}
    assert list(families["slimmable"]) == [1] and list(families["group"]) == [1, 2]  # stages
    assert all(r["ratio"] == r["stage_images_per_s"] / r["plain_images_per_s"] > 0
               for rows in families.values() for r in rows.values())
    assert re.search(r"training slimmable +vs plain PyTorch: k=1: [\d.]+x", out)
    assert results["pipeline"]["stage_seconds"] == {}  # no make run there: said, not invented
    assert "make run: no finished `quick` run" in out
    scaling = results["scaling"]
    assert all(scaling[f"{v}_images_per_s"] > 0 for v in ("1_process", "2_processes",
                                                           "2_processes_synced_bn"))
    assert 0.05 < scaling["efficiency"] < 2  # two real runs: a rate, not a constant
    assert "scaling efficiency" in out


def test_serving_section_compares_engines_side_by_side(bench, tmp_path, capsys):
    results = main(["--quick", "--width", "0.125", "--groups", "2", "--out", str(tmp_path),
                    "--only", "serving", "--architectures", "resnet20",
                    "--engines", "eager,onnxruntime,litert"])
    residual = json.loads((tmp_path / "serving-resnet20.json").read_text())
    assert residual["context"]["model"]["architecture"] == "resnet20"
    assert residual["mac_ratio"] == 2.0  # block-diagonal residual groups: MACs scale with k
    assert residual["engines"] == ["eager", "onnxruntime", "litert"]  # --engines: those alone
    # LiteRT beside onnxruntime: its build, its file and what it holds resident, all G
    # configurations against configuration G alone (fresh processes)
    assert residual["build"]["litert"]["program_bytes"] > 0
    assert residual["batches"]["1"]["litert"]["vs_onnxruntime_k1"] > 0
    litert_rss = residual["memory"]["rss_litert_all_bytes"]
    assert litert_rss > 0 and residual["memory"]["rss_litert_full_alone_bytes"] > 0
    printed = capsys.readouterr().out
    assert "litert, resident in a fresh process" in printed and "vs eager: k=1" in printed
    assert set(results) == {"serving", "architectures"} and set(results["architectures"]) == {
        "resnet20"}
    assert not (tmp_path / "floor.json").exists()  # --only serving: that section alone
    _, full, _ = bench  # the whole bench's alexnet serving section, as written
    serving = json.loads((full / "serving.json").read_text())
    assert serving["mac_ratio"] == 2.0
    for row in serving["batches"].values():
        assert set(row["latency_s"]) == set(ENGINES_TESTED)
        for engine in set(ENGINES_TESTED) & set(COMPILED):  # against onnxruntime
            assert row[engine]["vs_onnxruntime_k1"] == (row["latency_s"]["onnxruntime"]["1"]
                                                       / row["latency_s"][engine]["1"])
        assert all(v > 0 for lat in row["latency_s"].values() for v in lat.values())
        assert row["onnxruntime"]["speedup_k1"] == (row["latency_s"]["eager"]["1"]
                                                   / row["latency_s"]["onnxruntime"]["1"])
    memory = serving["memory"]
    assert memory["server_weight_bytes"] == memory["full_configuration_weight_bytes"]
    # the packed server holds configuration G's packed tensors once, and nothing of its own
    assert memory["packed_held_bytes"] >= memory["packed_full_configuration_bytes"] > 0
    assert memory["weight_ratio"] < 1.1
    assert memory["rss_onnxruntime_bytes"] > 0 and memory["rss_single_full_session_bytes"] > 0
    assert memory["rss_onnxruntime_unpacked_bytes"] > 0
    assert "rss_onnxruntime_copies_bytes" not in memory  # an engine not asked for
    assert set(serving["switch"]) == set(ENGINES_TESTED)
    assert serving["build"]["openvino"]["build_rss_bytes"] > 0
    assert all(serving["build"][e]["build_s"] > 0 for e in ENGINES_TESTED)
