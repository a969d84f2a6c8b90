"""``make bench``, serving section: eager PyTorch against onnxruntime, side by side.

On one model (the paper's: G=4, width 1.0, 3x32x32 by default), measured in one run:

- latency of every configuration at batch 1, 16 and 64 on four engines, in interleaved
  rounds (each keeps its median): ``eager``, ``onnxruntime`` (``Server``, ``packing="shared"``:
  onnxruntime's packed weights of configuration G, every configuration over views of them),
  ``onnxruntime-unpacked`` (``packing="off"``: views of the bundle's weights, no NCHWc layout)
  and ``onnxruntime-copies`` (``packing="per-session"``: each session packs its own copy);
  and the compiled engines that are installed, ``openvino``, ``executorch`` and ``litert``
  (both XNNPACK), each against onnxruntime at k=1 and k=G, with what building all G
  configurations took (resident memory growth, and the ``.pte``'s or ``.tflite``'s bytes);
- per engine and batch, the time range (k=G / k=1) against the MAC ratio, and onnxruntime's
  speed-up over eager at k=1 and k=G;
- weight bytes of the server for all G configurations against the full configuration's, and
  resident memory (measured in fresh processes) of the server against one plain session of
  the full configuration;
- what a switch costs per engine (first inference after a switch minus a steady one);
- what building each engine takes (``build_s``: from the trained model to every configuration
  servable, once).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dyndnn.bench.common import mark
from dyndnn.board.mapping import MappedWorker, Mapping
from dyndnn.models import DynamicModel
from dyndnn.serve import Server, write_bundle
from dyndnn.serve.optional_engines import OPTIONAL
from dyndnn.serve.timing import switch_costs

ENGINES = ("eager", "onnxruntime", "onnxruntime-unpacked", "onnxruntime-copies")
COMPILED = ("openvino", "executorch", "litert")  # measured where their package is installed
PACKING_OF = {"onnxruntime": "shared", "onnxruntime-unpacked": "off",
              "onnxruntime-copies": "per-session"}
TARGETS = {"range_vs_macs": 0.85, "speedup_k1_b1": 3.0, "weight_ratio": 1.1, "switch_us": 100.0}

# run in a fresh process: resident memory of what one script builds, nothing else in the way
_RSS_SCRIPT = """
import json, sys, numpy as np, psutil, onnxruntime as ort
from dyndnn.serve import Server, session_options
folder, what = sys.argv[1], sys.argv[2]
x = np.zeros([1, *json.load(open(folder + "/manifest.json"))["input"]["shape"][1:]], np.float32)
options = session_options()
before = psutil.Process().memory_info().rss
if what == "single":
    manifest = json.load(open(folder + "/manifest.json"))
    sessions = [ort.InferenceSession(folder + "/" + manifest["configurations"][-1]["file"],
                                     options, providers=["CPUExecutionProvider"])]
    sessions[0].run(None, {"images": x})
else:
    server = Server.from_bundle(folder, packing=what)
    for k in range(1, server.groups + 1):
        server.set_active_groups(k)
        server(x)
print(psutil.Process().memory_info().rss - before)
"""


def _median_s(fn: Any, min_run_time: float, warmup: int = 3) -> float:
    """Median seconds of one call over a window of back-to-back calls.

    A plain loop, the same for every engine (onnxruntime's calls are not torch statements).
    """
    for _ in range(warmup):
        fn()
    times = []
    clock = time.perf_counter
    end = clock() + min_run_time
    while True:
        start = clock()
        fn()
        now = clock()
        times.append(now - start)
        if now >= end and len(times) >= 5:
            return statistics.median(times)


# LiteRT in a fresh process: a .tflite loaded and every signature run once at batch 1
_LITERT_RSS_SCRIPT = """
import sys, numpy as np, psutil
from ai_edge_litert.interpreter import Interpreter
path, shape = sys.argv[1], [int(d) for d in sys.argv[2:]]
before = psutil.Process().memory_info().rss
interpreter = Interpreter(model_path=path, num_threads=1)
for key in interpreter.get_signature_list():
    interpreter.get_signature_runner(key)(images=np.zeros([1, *shape], np.float32))
print(psutil.Process().memory_info().rss - before)
"""


def _litert_rss(model: DynamicModel, folder: Path) -> dict[str, int]:
    """Resident growth of LiteRT holding all G configurations, and configuration G alone."""
    import dataclasses

    from dyndnn.serve.graphs import serving_plan
    from dyndnn.serve.litert_graphs import litert_model

    plan = serving_plan(model)
    alone = dataclasses.replace(plan, graphs=[dataclasses.replace(plan.graphs[-1], k=1)])
    out = {}
    for name, which in (("all", plan), ("full_alone", alone)):
        path = folder / f"{name}.tflite"
        path.write_bytes(litert_model(which).content)
        done = subprocess.run([sys.executable, "-c", _LITERT_RSS_SCRIPT, str(path),
                               *map(str, plan.input_shape)],
                              capture_output=True, text=True, check=True)
        out[f"rss_litert_{name}_bytes"] = int(done.stdout.strip().splitlines()[-1])
    return out


def _rss_key(engine: str) -> str:
    """The memory entry of an onnxruntime engine: ``rss_onnxruntime_copies_bytes``."""
    return f"rss_{engine.replace('-', '_')}_bytes"


def _rss_bytes(folder: Path, what: str) -> int:
    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(folder), what],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


# worker side: each engine lives in a process of its own (see bench_serving)
_ENGINE: dict[str, Any] = {}


def installed_engines() -> tuple[str, ...]:
    """``ENGINES`` and the compiled engines whose package this environment has."""
    return ENGINES + tuple(e for e in COMPILED
                           if importlib.util.find_spec(OPTIONAL[e][0]) is not None)


def _engine_start(factory: Callable[[], DynamicModel], engine: str) -> dict[str, Any]:
    """Build ``engine`` in this worker; what building it took.

    ``build_s``: from the trained model to every configuration servable (writing the graphs or
    lowering the program, then loading it), the time a deployment pays once.
    """
    from dyndnn.serve.engines import engine as build

    model = factory().eval()
    start = time.perf_counter()
    _ENGINE["runner"] = (Server(model, packing=PACKING_OF[engine]) if engine in PACKING_OF
                         else build(model, engine))  # eager and the compiled engines
    build_s = time.perf_counter() - start
    _ENGINE["numpy"] = engine != "eager"
    runner = _ENGINE["runner"]
    return {"build_s": build_s, "build_rss_bytes": getattr(runner, "build_rss_bytes", None),
            "program_bytes": getattr(runner, "file_bytes", None),  # .pte, .tflite
            "max_batch": getattr(runner, "max_batch", None)}  # None: any batch


def _engine_input(batch: int, shape: tuple[int, ...]) -> Any:
    x = torch.randn(batch, *shape)
    return x.numpy() if _ENGINE["numpy"] else x


@torch.inference_mode()
def _engine_latency(k: int, batch: int, shape: tuple[int, ...], min_run_time: float) -> float:
    runner, x = _ENGINE["runner"], _engine_input(batch, shape)
    runner.set_active_groups(k)
    return _median_s(lambda: runner(x), min_run_time)


@torch.inference_mode()
def _engine_switch(shape: tuple[int, ...], rounds: int) -> list[dict[str, Any]]:
    return switch_costs(_ENGINE["runner"], _engine_input(1, shape), rounds)


def bench_serving(factory: Callable[[], DynamicModel], batches: tuple[int, ...] = (1, 16, 64),
                  min_run_time: float = 1.0, rounds: int = 3,
                  switch_rounds: int = 100, engines: tuple[str, ...] | None = None
                  ) -> dict[str, Any]:
    """Every measurement of the serving section (see the module docstring).

    ``factory`` (picklable, e.g. a ``functools.partial``) builds the model. Each engine runs in
    a worker process of its own on every core this process may use, and the workers take turns
    (one configuration of one engine at a time): in one process, onnxruntime's thread pool and
    PyTorch's OpenMP threads spun against each other on two cores and made eager inferences
    50-100x slower at times. ``engines``: a subset of ``installed_engines()`` (the default),
    eager and onnxruntime always among them.
    """
    engines = tuple(dict.fromkeys(("eager", "onnxruntime", *(engines or installed_engines()))))
    unknown = set(engines) - set(ENGINES + COMPILED)
    if unknown:
        raise ValueError(f"unknown engines {sorted(unknown)}; known: "
                         f"{', '.join(ENGINES + COMPILED)}")
    model = factory().eval()
    G, spec = model.groups, model.spec
    shape = (spec.in_channels, spec.image_size, spec.image_size)
    macs = {k: model.macs(k) for k in range(1, G + 1)}
    out: dict[str, Any] = {"macs": macs, "mac_ratio": macs[G] / macs[1], "batches": {},
                           "engines": list(engines)}
    with contextlib.ExitStack() as stack:
        workers = {e: stack.enter_context(MappedWorker(Mapping("cpu"))) for e in engines}
        out["build"] = {engine: worker.call(_engine_start, factory, engine).value
                        for engine, worker in workers.items()}
        for batch in batches:
            # an engine whose program cannot take this batch (ExecuTorch's memory plan) is
            # left out of the batch's row, and the row says so
            able = [e for e in engines if batch <= (out["build"][e]["max_batch"] or batch)]
            runs: dict[str, dict[int, list[float]]] = {e: {k: [] for k in macs} for e in able}
            for _ in range(rounds):  # interleaved: a burst of load hits every engine alike
                for k in macs:
                    for engine in able:
                        runs[engine][k].append(workers[engine].call(
                            _engine_latency, k, batch, shape, min_run_time / rounds).value)
            latency = {e: {k: sorted(v)[len(v) // 2] for k, v in per.items()}
                       for e, per in runs.items()}
            row: dict[str, Any] = {"latency_s": latency,
                                   "not_measured": [e for e in engines if e not in able]}
            for engine, lat in latency.items():
                time_range = lat[G] / lat[1]
                row[engine] = {"time_range": time_range,
                               "range_vs_macs": time_range / out["mac_ratio"]}
            for engine in able[1:]:
                row[engine]["speedup_k1"] = latency["eager"][1] / latency[engine][1]
                row[engine]["speedup_kG"] = latency["eager"][G] / latency[engine][G]
                row[engine]["vs_onnxruntime_k1"] = latency["onnxruntime"][1] / latency[engine][1]
                row[engine]["vs_onnxruntime_kG"] = latency["onnxruntime"][G] / latency[engine][G]
            out["batches"][batch] = row
        out["switch"] = {e: w.call(_engine_switch, shape, switch_rounds).value
                         for e, w in workers.items()}
    server = Server(model)  # packing="shared"
    packed = server.packed
    held_bytes = packed.buffer.nbytes + packed.own_bytes
    full_packed_bytes = sum(view.nbytes for view in packed.initializers[G].values())
    with tempfile.TemporaryDirectory() as folder:
        write_bundle(model, folder)
        out["memory"] = {
            "server_weight_bytes": server.weight_bytes(),
            "full_configuration_weight_bytes": server.configuration_weight_bytes(G),
            # what the packed server holds for all G (G's packed tensors and any own copies)
            # against what configuration G alone reads of them
            "packed_held_bytes": held_bytes,
            "packed_full_configuration_bytes": full_packed_bytes,
            "weight_ratio": held_bytes / full_packed_bytes,
            **{_rss_key(engine): _rss_bytes(Path(folder), packing)
               for engine, packing in PACKING_OF.items() if engine in engines},
            "rss_single_full_session_bytes": _rss_bytes(Path(folder), "single"),
            **(_litert_rss(model, Path(folder)) if "litert" in engines else {}),
        }
    b1 = out["batches"].get(1)
    if b1:
        ort_b1 = b1["onnxruntime"]
        worst_switch = max(r["switch_s"] for r in out["switch"]["onnxruntime"])
        out["met"] = {
            "range_vs_macs_b1": ort_b1["range_vs_macs"] >= TARGETS["range_vs_macs"],
            "speedup_k1_b1": ort_b1["speedup_k1"] >= TARGETS["speedup_k1_b1"],
            "weight_ratio": out["memory"]["weight_ratio"] <= TARGETS["weight_ratio"],
            "switch_us": worst_switch * 1e6 < TARGETS["switch_us"]}
    return out


def print_serving(result: dict[str, Any]) -> None:
    """The serving section as a table."""
    G = max(result["macs"])
    print(f"serving (MAC ratio k={G}/k=1: {result['mac_ratio']:.2f}x):")
    for batch, row in result["batches"].items():
        for engine in row.get("not_measured", []):
            print(f"  batch {batch:>3} {engine:<21}not measured: its program holds batches up "
                  f"to {result['build'][engine]['max_batch']}")
        for engine in (e for e in result["engines"] if e in row["latency_s"]):
            lat = row["latency_s"][engine]
            stats = row[engine]
            extra = (f" | vs eager: k=1 {stats['speedup_k1']:.2f}x, k={G} "
                     f"{stats['speedup_kG']:.2f}x" if "speedup_k1" in stats else "")
            if engine in COMPILED:
                extra += (f" | vs onnxruntime: k=1 {stats['vs_onnxruntime_k1']:.2f}x, k={G} "
                          f"{stats['vs_onnxruntime_kG']:.2f}x")
            print(f"  batch {batch:>3} {engine:<21}" + "  ".join(
                f"k={k}: {v * 1e3:7.3f} ms" for k, v in lat.items())
                + f" | range {stats['time_range']:.2f}x = {stats['range_vs_macs']:.2f} of MACs"
                + extra)
    for engine, rows in result["switch"].items():
        print(f"  switch {engine:<21}" + "  ".join(
            f"k={r['groups']}: {r['switch_s'] * 1e6:+.0f} us" for r in rows)
            + f"  (assignment {max(r['assign_s'] for r in rows) * 1e6:.1f} us at most)")
    m = result["memory"]
    print(f"  weights: packed server {m['packed_held_bytes']:,} B for all {G} configurations vs "
          f"the full configuration's {m['packed_full_configuration_bytes']:,} B = "
          f"{m['weight_ratio']:.2f}x (unpacked: {m['server_weight_bytes']:,} B);"
          " resident: " + ", ".join(f"{engine} {m[_rss_key(engine)] / 2**20:.1f} MiB"
                                    for engine in PACKING_OF if _rss_key(engine) in m)
          + f", one session of k={G} {m['rss_single_full_session_bytes'] / 2**20:.1f} MiB")
    if "rss_litert_all_bytes" in m:
        print(f"  litert, resident in a fresh process: all {G} configurations "
              f"{m['rss_litert_all_bytes'] / 2**20:.1f} MiB, configuration {G} alone "
              f"{m['rss_litert_full_alone_bytes'] / 2**20:.1f} MiB (one thread; each "
              "signature run once)")
    print(f"  build (the trained model to all {G} configurations servable, once): " + ", ".join(
        f"{engine} {result['build'][engine]['build_s']:.2f} s" for engine in result["engines"]))
    for engine in (e for e in result["engines"] if e in COMPILED):
        build = result["build"][engine]
        grown = build["build_rss_bytes"]
        print(f"  {engine}: building all {G} configurations grew the worker's resident memory by "
              + (f"{grown / 2**20:.1f} MiB" if grown is not None else "(unmeasured)")
              + (f"; program {build['program_bytes']:,} B" if build["program_bytes"] else ""))
    if "met" in result:
        print("  targets: " + ", ".join(f"{name} {mark(ok)}" for name, ok
                                        in result["met"].items()))


def write_serving(result: dict[str, Any], path: Path, context: dict[str, Any]) -> None:
    """``serving.json`` beside the other sections."""
    path.write_text(json.dumps({**result, "context": context}, indent=2, default=str) + "\n")
