"""The serving engine: every family in onnxruntime, one set of weights, honest switch costs."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dyndnn.board.profiler import profile_sweep
from dyndnn.errors import ConfigError
from dyndnn.models import FAMILIES, GroupNet, build_model
from dyndnn.models.slim_layers import SlimLinear
from dyndnn.serve import BundleError, Server, read_manifest, write_bundle
from dyndnn.serve.engines import engine
from dyndnn.serve.executorch_server import ExecutorchServer, method_name
from dyndnn.serve.litert_server import LiteRtServer
from dyndnn.serve.openvino_server import OpenVinoServer
from dyndnn.serve.packing import PACKING
from dyndnn.serve.timing import switch_costs

SPEC = {"groups": 3, "width": 0.125, "in_channels": 1, "image_size": 28}
README = Path(__file__).parents[1] / "README.md"


def trained_like(family, combine="mean", groups=SPEC["groups"], architecture="alexnet"):
    """A model whose BatchNorms are not the identity, so a wrong fold shows."""
    torch.manual_seed(0)
    extra = {"combine": combine} if family == "group" else {"family": family}
    model = build_model({**SPEC, "groups": groups, "architecture": architecture,
                         **extra}).eval()
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.5, 0.5)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
        for m in model.modules():  # BatchNorm2d, or the group model's grouped block
            if hasattr(m, "running_mean"):
                (m.weight_full if hasattr(m, "weight_full") else m.weight).uniform_(0.5, 1.5)
    return model


def eager(model, x, k):
    with torch.inference_mode(), model.active_groups(k):
        return model(x)


def assert_serves_like_eager(server, model, batches=(1, 7)):
    """Every configuration of ``server`` within 1e-4 of the model's, at each batch size."""
    for batch in batches:
        x = torch.randn(batch, 1, 28, 28)
        for k in range(1, model.groups + 1):
            server.set_active_groups(k)
            assert server.macs() == model.macs(k)
            assert np.abs(server(x.numpy()) - eager(model, x, k).numpy()).max() < 1e-4, (
                batch, k)


@pytest.mark.parametrize("packing", PACKING)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_configuration_of_every_family_matches_eager(family, packing):
    model = trained_like(family)
    server = Server(model, packing=packing)
    x = torch.randn(4, 1, 28, 28)
    for k in range(1, model.groups + 1):
        server.set_active_groups(k)
        got = server(x)
        assert isinstance(got, torch.Tensor) and got.shape == (4, 10)
        assert (got - eager(model, x, k)).abs().max() < 1e-4, (family, k)
        as_numpy = server(x.numpy())
        assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, got.numpy())
        assert server.macs(k) == model.macs(k)
    assert server.num_active_groups == model.groups


def test_sum_rule_and_any_batch_size():
    model = trained_like("group", combine="sum")
    server = Server(model)
    for batch in (1, 7):
        x = torch.randn(batch, 1, 28, 28)
        with server.active_groups(2):
            assert (server(x) - eager(model, x, 2)).abs().max() < 1e-4
    assert server.num_active_groups == 3  # the with block switched back


def test_group_model_weights_are_one_set_shared_by_every_configuration():
    model = trained_like("group")
    server = Server(model, packing="off")
    G = model.groups
    # each tensor once: all G configurations hold what the full one reads
    assert server.weight_bytes() == server.configuration_weight_bytes(G)
    assert [server.configuration_weight_bytes(k) for k in range(1, G + 1)] == sorted(
        server.configuration_weight_bytes(k) for k in range(1, G + 1))
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    before = {k: server(x) for k in range(1, G + 1) if not server.set_active_groups(k)}
    # change the first conv's weights and the last layer's bias in the shared buffer only
    for name in ("conv0.weight", "fc2.bias"):
        tensor = server.manifest["weights"]["tensors"][name]
        server.tensor_view(tensor["offset"], tensor["shape"])[...] *= 1.5
    for k in range(1, G + 1):
        server.set_active_groups(k)
        assert not np.allclose(server(x), before[k]), f"configuration {k} kept its own copy"


def test_packed_weights_are_one_set_shared_by_every_configuration():
    # at width 1.0 every group's channels fill whole blocks of onnxruntime's layout (8 or 16
    # channels, by CPU), so configuration k's blocked tensors are the leading bytes of G's
    torch.manual_seed(0)
    model = GroupNet(groups=4, width=1.0, in_channels=1, image_size=28).eval()
    server = Server(model)  # packing="shared", the default
    G = model.groups
    assert server.packing == "shared" and server.packed.own_bytes == 0
    assert any(name.startswith("reorder") for name in server.packed.tensors)  # blocked: packed
    # every tensor a session reads larger than the inline constants is a view of one buffer
    buffer = server.packed.buffer
    for k, uses in server.packed.initializers.items():
        assert uses, k
        for name, view in uses.items():
            assert np.shares_memory(view, buffer), (k, name)
    # and what the sessions read is that buffer: changing it changes every configuration
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    before = {k: server(x) for k in range(1, G + 1) if not server.set_active_groups(k)}
    for tensor in server.packed.tensors.values():
        tensor[...] *= 1.5
    for k in range(1, G + 1):
        server.set_active_groups(k)
        assert not np.allclose(server(x), before[k]), f"configuration {k} kept its own copy"
    with pytest.raises(ValueError, match="keeps no copy of weights.bin"):
        server.tensor_view(0, [1])


def test_a_baseline_whose_packed_tensors_are_no_prefix_keeps_and_counts_its_own():
    # independent networks: each configuration's tensors are its own network's
    server = Server(trained_like("independent"))
    own = server.packed.own_bytes
    assert 0 < own < server.weight_bytes()  # G's are shared with itself; 1..G-1 their own
    with pytest.raises(ValueError, match="packing must be one of"):
        Server(trained_like("group"), packing="blocked")


def test_baselines_report_the_bytes_they_hold():
    group = Server(trained_like("group"))
    independent = Server(trained_like("independent"))
    tann = Server(trained_like("tann"))
    slim_model = trained_like("slimmable")
    slim = Server(slim_model)
    # independent networks hold one set per configuration; slimmable widths too (folded BN
    # differs per width, FC weights are [:out, :in] slices) except the FC biases, whose
    # bias[:out] is a prefix of the full one; Tann's configurations share whole blocks
    per_configuration = [sum(server.configuration_weight_bytes(k) for k in (1, 2, 3))
                         for server in (independent, slim)]
    assert independent.weight_bytes() == per_configuration[0]
    fc_bias_bytes = sum(4 * fc.widths[k - 1] for fc in slim_model.modules()
                        if isinstance(fc, SlimLinear) for k in (1, 2))
    assert slim.weight_bytes() == per_configuration[1] - fc_bias_bytes > 0
    assert tann.weight_bytes() == tann.configuration_weight_bytes(3)
    assert independent.weight_bytes() > 1.5 * group.weight_bytes()


def test_switching_builds_nothing_and_allocates_nothing(monkeypatch):
    server = Server(trained_like("group"))
    sessions = list(server._sessions)

    def no_session(*args, **kwargs):
        raise AssertionError("a switch built a session")

    monkeypatch.setattr(ort, "InferenceSession", no_session)
    ks = [1 + i % 3 for i in range(2000)]
    for k in ks[:10]:  # warm: first calls may intern names
        server.set_active_groups(k)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for k in ks:
        server.set_active_groups(k)
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after - before == 0
    assert server._sessions == sessions
    with pytest.raises(ValueError, match="between 1 and 3"):
        server.set_active_groups(4)


def test_bundle_round_trip_and_manifest(tmp_path):
    model = trained_like("group")
    folder = write_bundle(model, tmp_path / "export", accuracy={1: 0.8, 2: 0.85, 3: 0.9})
    manifest = read_manifest(folder)
    assert manifest["family"] == "group" and manifest["groups"] == 3
    assert manifest["input"]["shape"] == ["batch", 1, 28, 28]
    assert [c["macs"] for c in manifest["configurations"]] == [model.macs(k) for k in (1, 2, 3)]
    assert [c["accuracy"] for c in manifest["configurations"]] == [0.8, 0.85, 0.9]
    # configuration k reads a prefix of the same tensor: same offset, shorter length
    offsets = {c["k"]: c["initializers"]["conv1.weight"] for c in manifest["configurations"]}
    assert offsets[1]["offset"] == offsets[3]["offset"]
    assert 3 * offsets[1]["length"] == offsets[3]["length"]
    assert all(t["offset"] % 4096 == 0 for t in manifest["weights"]["tensors"].values())
    server = Server.from_bundle(folder)
    x = torch.randn(2, 1, 28, 28)
    for k in (1, 2, 3):
        with server.active_groups(k):
            assert (server(x) - eager(model, x, k)).abs().max() < 1e-4


def test_broken_bundles_are_named(tmp_path):
    with pytest.raises(BundleError, match="manifest.json is missing"):
        Server.from_bundle(tmp_path)
    folder = write_bundle(trained_like("tann"), tmp_path / "b")
    weights = folder / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(BundleError, match="shorter than"):
        read_manifest(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(folder)


def readme_snippet_logits(marker, folder, x):
    """The README's python block after ``<!-- marker -->``, run in ``folder`` on images ``x``
    where neither torch nor dyndnn can be imported; the ``logits`` it computes."""
    snippet = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", README.read_text(),
                        re.S).group(1)
    np.save(folder / "images.npy", x)
    script = ("import sys\nsys.modules['torch'] = None\nsys.modules['dyndnn'] = None\n"
              f"import os\nos.chdir({str(folder)!r})\n" + snippet
              + "\nimport numpy\nnumpy.save('logits.npy', logits)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return np.load(folder / "logits.npy")


def test_readme_snippet_runs_with_onnxruntime_alone(tmp_path):
    """The README's board snippet, run where neither torch nor dyndnn can be imported."""
    model = trained_like("group")
    folder = write_bundle(model, tmp_path / "export")
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    got = readme_snippet_logits("bundle-snippet", tmp_path, x)
    k = json.loads((folder / "manifest.json").read_text())["groups"]
    assert np.abs(got - eager(model, torch.from_numpy(x), k).numpy()).max() < 1e-4


class SlowFirstRunner:
    """A fake engine: the first call after a switch takes ``extra_s`` more than a steady one."""

    def __init__(self, groups=3, steady_s=0.0005, extra_s=0.002):
        self.groups, self.steady_s, self.extra_s = groups, steady_s, extra_s
        self.cold = False

    def set_active_groups(self, k):
        self.cold = True

    def __call__(self, x):
        time.sleep(self.steady_s + (self.extra_s if self.cold else 0.0))
        self.cold = False


def test_switch_cost_is_first_inference_minus_steady():
    rows = switch_costs(SlowFirstRunner(), None, rounds=15, warmup=1)
    assert [r["groups"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["switch_s"] == pytest.approx(r["first_s"] - r["steady_s"])
        assert 0.0015 < r["switch_s"] < 0.004  # the extra 2 ms, give or take the sleep's slack
        assert r["assign_s"] < 0.001
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        switch_costs(SlowFirstRunner(), None, rounds=0)


def test_server_from_bundle_needs_no_torch(tmp_path):
    folder = write_bundle(trained_like("group"), tmp_path / "export")
    script = ("import sys\nsys.modules['torch'] = None\nimport numpy as np\n"
              "from dyndnn.serve import Server\n"
              f"server = Server.from_bundle({str(folder)!r})\n"
              "server.set_active_groups(1)\n"
              "print(server(np.zeros((1, 1, 28, 28), np.float32)).shape)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 10)"


def _tamper(folder, change):
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _first_use(manifest, k=1):
    return next(iter(manifest["configurations"][k - 1]["initializers"].values()))


@pytest.mark.parametrize("change, said", [
    (lambda m: _first_use(m).update(offset=-4096), "offset -4096"),
    (lambda m: _first_use(m).update(length=-8), "has length -8 bytes"),
    (lambda m: _first_use(m).update(offset=_first_use(m)["offset"] + 4), None),  # still inside
    (lambda m: _first_use(m).update(offset=10**9), "is shorter"),
    (lambda m: m["weights"].update(file="../../../../usr/bin/zstd"), "not a file of the bundle"),
    (lambda m: m["configurations"][2].update(file="../other/k3.onnx"), "not a file of the bundle"),
    (lambda m: m["configurations"][0].update(file="/etc/passwd"), "not a file of the bundle"),
    (lambda m: m.pop("groups"), "lacks the key 'groups'"),
    (lambda m: m["configurations"][1]["initializers"].clear() or m["configurations"].pop(),
     "not 1..3"),
    (lambda m: _first_use(m).update(shape="big"), "not whole numbers"),
])
def test_a_tampered_bundle_manifest_is_refused_naming_the_file(tmp_path, change, said):
    folder = write_bundle(trained_like("group"), tmp_path / "export")
    _tamper(folder, change)
    if said is None:  # a shifted offset inside the file: the bytes are wrong but in bounds;
        Server.from_bundle(folder)  # only the weights' own hash could tell (not a bundle's job)
        return
    with pytest.raises(BundleError, match=said) as refused:
        Server.from_bundle(folder)
    assert "manifest.json" in str(refused.value) or "weights.bin" in str(refused.value)


def test_a_graph_that_is_not_onnx_is_a_bundle_error(tmp_path):
    folder = write_bundle(trained_like("group"), tmp_path / "export")
    (folder / "k1.onnx").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(BundleError, match=r"k1.onnx \(configuration 1\) is not a graph "
                                          "onnxruntime can load"):
        Server.from_bundle(folder)


def test_an_external_data_path_out_of_the_bundle_is_refused(tmp_path):
    """The graph's own external-data entry points outside the bundle: nothing is read there.

    onnxruntime (1.32) validates the path itself, for the server's sessions as for a plain one;
    the server says which file of the bundle it was.
    """
    import onnx
    import onnxruntime as ort

    folder = write_bundle(trained_like("group"), tmp_path / "export")
    graph = onnx.load(folder / "k1.onnx", load_external_data=False)
    for init in graph.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../../../../usr/bin/zstd"
    (folder / "k1.onnx").write_bytes(graph.SerializeToString())
    with pytest.raises(BundleError, match=r"k1.onnx \(configuration 1\) is not a graph "
                                          ".*escapes model directory"):
        Server.from_bundle(folder)
    with pytest.raises(Exception, match="escapes model directory"):
        ort.InferenceSession(str(folder / "k1.onnx"), providers=["CPUExecutionProvider"])


def test_loading_a_server_leaves_plain_onnxruntime_sessions_working(tmp_path):
    """A notebook that loads a bundle and then makes its own session: nothing global changed."""
    folder = write_bundle(trained_like("group"), tmp_path / "export")
    script = ("import numpy as np, onnxruntime as ort\nfrom dyndnn.serve import Server\n"
              f"server = Server.from_bundle({str(folder)!r})\n"
              f"session = ort.InferenceSession({str(folder / 'k2.onnx')!r})\n"
              "x = np.zeros((1, 1, 28, 28), np.float32)\n"
              "server.set_active_groups(2)\n"
              "print(float(np.abs(session.run(None, {'images': x})[0] - server(x)).max()))\n"
              f"shared = Server.from_bundle({str(folder)!r}, threads=1, shared_pool=True)\n"
              "print(shared.threads, shared.shared_pool)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    difference, pool = done.stdout.split("\n")[:2]
    assert float(difference) < 1e-5 and pool == "1 True"


# --- OpenVINO and ExecuTorch: every configuration compiled by another engine --------------------
# ExecuTorch is an optional engine (the dev and engines extras): its cases skip without it
COMPILED = ["openvino", pytest.param("executorch", marks=pytest.mark.skipif(
    importlib.util.find_spec("executorch") is None, reason="pip install -e '.[engines]'")),
    pytest.param("litert", marks=pytest.mark.skipif(
        importlib.util.find_spec("ai_edge_litert") is None, reason="pip install -e '.[engines]'"))]


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_configuration_of_every_family_matches_eager_at_batch_1_and_7(family, backend):
    # ExecuTorch lowers each configuration through torch.export (seconds each): G = 2 there
    model = trained_like(family, groups=2 if backend == "executorch" else SPEC["groups"])
    server = engine(model, backend, threads=1)
    if backend == "executorch":  # one program, a method per configuration
        assert server.method_names == [method_name(k) for k in range(1, model.groups + 1)]
        assert server.pte_bytes > 0 and server.macs(1) == model.macs(1)
    for batch in (1, 7):
        x = torch.randn(batch, 1, 28, 28)
        for k in range(1, model.groups + 1):
            server.set_active_groups(k)
            got = server(x.numpy())
            assert got.shape == (batch, 10)
            assert np.abs(got - eager(model, x, k).numpy()).max() < 1e-4, (family, batch, k)
            assert torch.equal(server(x), torch.from_numpy(got))  # torch in, torch out
    if backend == "executorch":  # the group model per group (one set), the rest whole
        assert server.layout == ("per-group" if family == "group" else "fused")
    if backend == "executorch":  # a batch beyond the program's memory plan: said, by name
        assert 7 <= server.max_batch < 1024
        with pytest.raises(BundleError, match=f"batches of up to {server.max_batch} images"):
            server(np.zeros((server.max_batch + 1, 1, 28, 28), np.float32))


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                    reason="pip install -e '.[engines]'")
def test_executorch_per_group_program_holds_one_weight_set_and_fused_holds_slices():
    model = trained_like("group", groups=2)  # the family test's model: lowered there already
    per_group = ExecutorchServer(model, threads=1)  # layout="per-group", the default
    fused = ExecutorchServer(model, threads=1, layout="fused")
    # fused: configuration 1's constants are slices of 2's, stored again (1.5 sets for G = 2);
    # per group: each group's constants once, shared by both methods
    assert per_group.pte_bytes < fused.pte_bytes
    assert per_group.pte_bytes < 1.3 * model.serving_bytes() < fused.pte_bytes
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    for k in (1, 2):
        per_group.set_active_groups(k)
        fused.set_active_groups(k)
        assert np.abs(per_group(x) - fused(x)).max() < 1e-4
    with pytest.raises(ValueError, match="layout must be one of"):
        ExecutorchServer(model, threads=1, layout="grouped")


def test_a_bundle_serves_without_the_model_and_a_broken_graph_is_named(tmp_path):
    model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
    folder = write_bundle(model, tmp_path / "export")
    server = OpenVinoServer.from_bundle(folder, threads=1)
    assert server.num_active_groups == 2 and server.threads == 1
    (folder / "k1.onnx").write_bytes(b"not a graph")
    with pytest.raises(BundleError, match="k1.onnx .configuration 1. is not a graph OpenVINO"):
        OpenVinoServer.from_bundle(folder, threads=1)


@pytest.mark.parametrize("package, server, says", [
    ("openvino", OpenVinoServer, "pip install 'openvino>=2025.0'"),
    ("executorch", ExecutorchServer, "pip install 'executorch>=1.5'"),
    ("ai_edge_litert", LiteRtServer, "pip install 'ai-edge-litert>=2.0'"),
])
def test_without_the_package_the_backend_says_how_to_get_it(monkeypatch, package, server, says):
    monkeypatch.setitem(sys.modules, package, None)  # importing the engine fails
    with pytest.raises(BundleError, match=re.escape(says)):
        server(GroupNet(groups=2, width=0.25, in_channels=1, image_size=28))


def small_group_net():
    return GroupNet(groups=2, width=0.25, in_channels=1, image_size=28)


@pytest.mark.parametrize("backend", COMPILED)
def test_the_profiler_measures_a_compiled_backend(tmp_path, backend):
    core = min(os.sched_getaffinity(0))
    table = profile_sweep(small_group_net, (1, 28, 28), [1, 2], [f"cpu:{core}x1"],
                          out_csv=tmp_path / "profile.csv", repeats=1, warmup=1,
                          min_window_s=0.02, meter="modelled", progress=False,
                          backends=["eager", backend])
    assert set(table["backend"]) == {"eager", backend} and set(table["groups"]) == {1, 2}
    assert (table["latency_s"] > 0).all() and (table["threads_read"] == 1).all()
    assert table["energy_provenance"].unique().tolist() == ["modelled"]


NEEDS_EXECUTORCH = pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                                      reason="pip install -e '.[engines]'")


@pytest.fixture(scope="module")
def executorch_bundle(tmp_path_factory):
    """The group model (G = 2) and its ExecuTorch bundle, written once for the module."""
    from dyndnn.serve.executorch_bundle import write_program

    model = trained_like("group", groups=2)
    folder = tmp_path_factory.mktemp("executorch") / "executorch"
    return model, write_program(model, folder, accuracy={1: 0.8, 2: 0.9})


@NEEDS_EXECUTORCH
def test_an_executorch_bundle_serves_every_configuration_from_its_program(executorch_bundle):
    from dyndnn.serve.executorch_bundle import load_program, read_program_manifest

    model, folder = executorch_bundle
    manifest = read_program_manifest(folder)
    assert manifest["family"] == "group" and manifest["groups"] == 2
    assert manifest["layout"] == "per-group"
    assert [(c["method"], c["macs"], c["accuracy"]) for c in manifest["configurations"]] == [
        (method_name(k), model.macs(k), a) for k, a in ((1, 0.8), (2, 0.9))]
    assert manifest["program"]["bytes"] == (folder / "program.pte").stat().st_size
    # one weight set in the file: each group's constants once
    assert manifest["program"]["bytes"] < 1.3 * model.serving_bytes()
    server = load_program(folder, threads=1)  # no model: the file alone
    assert server.max_batch == manifest["max_batch"] and server.layout == manifest["layout"]
    assert_serves_like_eager(server, model)


@NEEDS_EXECUTORCH
def test_a_changed_or_incomplete_executorch_bundle_is_refused_naming_the_file(
        executorch_bundle, tmp_path):
    import shutil

    from dyndnn.serve.executorch_bundle import load_program, read_program_manifest

    folder = Path(shutil.copytree(executorch_bundle[1], tmp_path / "executorch"))
    program = folder / "program.pte"
    data = bytearray(program.read_bytes())
    data[-1] ^= 0xFF
    program.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"program.pte is not the program .*SHA-256"):
        load_program(folder, threads=1)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["program"]["file"] = "../elsewhere.pte"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="names the program .../elsewhere.pte., which is not"):
        read_program_manifest(folder)
    manifest["program"]["file"] = "program.pte"
    for program_entry, said in ((["program.pte"], "is malformed .TypeError"),
                                ({"file": "program.pte"}, "is malformed .KeyError")):
        (folder / "manifest.json").write_text(json.dumps({**manifest, "program": program_entry}))
        with pytest.raises(BundleError, match=said):
            read_program_manifest(folder)
    (folder / "manifest.json").write_text(json.dumps({**manifest, "groups": 3}))
    with pytest.raises(BundleError, match=r"lists configurations \[1, 2\], not 1..3"):
        read_program_manifest(folder)
    del manifest["max_batch"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"lacks the keys \['max_batch'\]"):
        read_program_manifest(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(BundleError, match="not an ExecuTorch bundle: manifest.json is missing"):
        read_program_manifest(folder)


@pytest.mark.parametrize("package, backend, says", [
    ("openvino", "openvino", "pip install 'openvino>=2025.0'"),
    ("executorch", "executorch", "pip install 'executorch>=1.5'"),
    ("ai_edge_litert", "litert", "pip install 'ai-edge-litert>=2.0'"),
])
def test_a_run_skips_an_engine_that_is_not_installed_saying_what_installs_it(
        monkeypatch, capsys, package, backend, says):
    from dyndnn.serve.optional_engines import installed_backends

    monkeypatch.setitem(sys.modules, package, None)  # importing the engine fails
    assert installed_backends(("eager", backend, "onnxruntime")) == ("eager", "onnxruntime")
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith(f"{backend}: not installed here, skipped")
    assert says in said[0] and "Traceback" not in said[0]
    with pytest.raises(ConfigError, match="none of the engines named .* is installed here"):
        installed_backends((backend,), say=False)  # nothing left to measure: bad input
    assert capsys.readouterr().err == ""


def test_a_program_is_lowered_once_per_model_and_again_when_a_tensor_changes(monkeypatch):
    from dyndnn.serve import executorch_server

    lowered = []
    monkeypatch.setattr(executorch_server, "_LOWERED", {})
    monkeypatch.setattr(executorch_server, "_lower",
                        lambda model, layout: lowered.append(layout) or f"{len(lowered)}".encode())
    model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
    first = executorch_server.lower_program(model)
    assert executorch_server.lower_program(model) == first and lowered == ["per-group"]
    assert executorch_server.lower_program(model, "fused") != first  # another layout
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # one weight changed: lowered again
    assert executorch_server.lower_program(model) not in (first, b"2")
    assert lowered == ["per-group", "fused", "per-group"]
    for _ in range(5):  # a few kept, the oldest dropped
        with torch.no_grad():
            next(model.parameters()).add_(1e-3)
        executorch_server.lower_program(model)
    assert len(executorch_server._LOWERED) == executorch_server._LOWERED_KEPT
