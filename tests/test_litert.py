"""LiteRT: the hand-written ``.tflite`` of every configuration, its weight sharing and bundle."""

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dyndnn.models import FAMILIES, GroupNet
from dyndnn.serve import BundleError
from dyndnn.serve.graphs import serving_plan
from dyndnn.serve.litert_graphs import ALIGNMENT_BYTES, litert_model

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                                reason="pip install -e '.[engines]'")
sys.path.insert(0, str(Path(__file__).parent))
from test_serve import (  # noqa: E402
    assert_serves_like_eager,
    readme_snippet_logits,
    trained_like,
)


@pytest.mark.parametrize("architecture", ["resnet20", "mobilenet"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_configuration_of_other_architectures_matches_eager(family, architecture):
    # resnet20's strided convolutions are padded on both sides (LiteRT's SAME pads one):
    # they go through an explicit PAD; alexnet's families are in test_serve.py
    from dyndnn.serve.litert_server import LiteRtServer

    model = trained_like(family, architecture=architecture)
    assert_serves_like_eager(LiteRtServer(model, threads=1), model)


def _read(content):
    from ai_edge_litert import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(content), 0)


def test_the_group_models_configurations_read_prefixes_of_one_weight_set():
    model = GroupNet(groups=3, width=0.25, in_channels=1, image_size=28).eval()
    plan = serving_plan(model)
    written = litert_model(plan)
    stored = sum(a.nbytes for a in plan.tensors.values())
    # every plan tensor once (the group model's plan holds configuration G's alone)
    assert stored <= written.weight_bytes < stored + ALIGNMENT_BYTES * len(plan.tensors)
    assert len(written.content) == written.flatbuffer_bytes + (
        -written.flatbuffer_bytes % ALIGNMENT_BYTES) + written.weight_bytes
    parsed = _read(written.content)
    assert [s.signatureKey for s in parsed.signatureDefs] == [b"k1", b"k2", b"k3"]
    where = {}  # tensor name -> (offset, size) per configuration
    for subgraph in parsed.subgraphs:
        for tensor in subgraph.tensors:
            buffer = parsed.buffers[tensor.buffer]
            if buffer.offset:
                where.setdefault(tensor.name.decode(), []).append((buffer.offset, buffer.size))
    assert "conv0.weight" in where
    for name, places in where.items():  # same start, growing with k: a prefix
        assert len({offset for offset, _ in places}) == 1, name
        assert [size for _, size in places] == sorted(size for _, size in places), name
    assert where["conv0.weight"][0][1] < where["conv0.weight"][-1][1]


@pytest.fixture(scope="module")
def litert_bundle(tmp_path_factory):
    from dyndnn.serve.litert_bundle import write_litert

    model = trained_like("tann", groups=2)
    folder = tmp_path_factory.mktemp("litert") / "litert"
    return model, write_litert(model, folder, accuracy={1: 0.8, 2: 0.9})


def test_a_litert_bundle_serves_every_configuration_from_its_file(litert_bundle):
    from dyndnn.serve.litert_bundle import load_litert, read_litert_manifest

    model, folder = litert_bundle
    manifest = read_litert_manifest(folder)
    assert manifest["family"] == "tann" and manifest["groups"] == 2
    assert [(c["signature"], c["macs"], c["accuracy"]) for c in manifest["configurations"]] == [
        ("k1", model.macs(1), 0.8), ("k2", model.macs(2), 0.9)]
    content = (folder / "model.tflite").read_bytes()
    assert manifest["model"] == {"file": "model.tflite", "bytes": len(content),
                                 "sha256": hashlib.sha256(content).hexdigest()}
    server = load_litert(folder, threads=1)  # the file alone
    assert server.weight_bytes == manifest["weight_bytes"]
    assert_serves_like_eager(server, model)


def test_a_changed_or_foreign_litert_bundle_is_refused_naming_the_file(litert_bundle, tmp_path):
    from dyndnn.serve.litert_bundle import load_litert

    folder = Path(shutil.copytree(litert_bundle[1], tmp_path / "litert"))
    path = folder / "model.tflite"
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"model.tflite is not the model .*SHA-256"):
        load_litert(folder, threads=1)
    manifest = json.loads((folder / "manifest.json").read_text())
    garbage = b"not a flatbuffer at all" * 8  # its SHA-256 in the manifest: the runtime refuses
    path.write_bytes(garbage)
    manifest["model"]["sha256"] = hashlib.sha256(garbage).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not a LiteRT model this runtime loads"):
        load_litert(folder, threads=1)
    three = GroupNet(groups=3, width=0.25, in_channels=1, image_size=28).eval()
    other = litert_model(serving_plan(three)).content  # signatures k1..k3 where 2 are said
    path.write_bytes(other)
    manifest["model"]["sha256"] = hashlib.sha256(other).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"signatures \['k1', 'k2', 'k3'\] are not k1, k2"):
        load_litert(folder, threads=1)
    (folder / "manifest.json").unlink()
    with pytest.raises(BundleError, match="not a LiteRT bundle: manifest.json is missing"):
        load_litert(folder, threads=1)


def test_readme_litert_snippet_runs_with_litert_and_numpy_alone(litert_bundle, tmp_path):
    """The README's LiteRT snippet, run where neither torch nor dyndnn can be imported."""
    model, folder = litert_bundle
    shutil.copytree(folder, tmp_path / "export" / "litert")
    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28)).astype(np.float32)
    got = readme_snippet_logits("litert-snippet", tmp_path, x)
    with torch.inference_mode(), model.active_groups(model.groups):
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() < 1e-4
