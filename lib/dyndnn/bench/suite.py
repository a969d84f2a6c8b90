"""``make bench``: the performance targets (``TARGETS``), measured side by side in one run.

    python -m dyndnn.bench [--groups 4] [--width 1.0] [--architectures alexnet,resnet20]
                           [--quick] [--out outputs/bench]

Prints a table and writes one JSON per section under ``outputs/bench/``. The latency sections
(eager per configuration; eager against onnxruntime) run for every architecture named, so a
reader sees whether pruning buys time in proportion to MACs for each; the other sections run
on the first. Timings use
``torch.utils.benchmark`` (medians of blocked runs); ratios are taken between measurements of
the same run, interleaved where two things are compared, so the shared machine's noise hits
both sides alike. Nothing here is a test: a missed target is reported, not raised.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
from pathlib import Path

import torch

from dyndnn.bench.common import mark, seeded_model
from dyndnn.bench.eager import (
    bench_floor,
    bench_gflops,
    bench_latency,
    bench_memory,
    bench_switch,
    print_latency,
)
from dyndnn.bench.pipeline import bench_pipeline, print_pipeline
from dyndnn.bench.rct import bench_rct
from dyndnn.bench.scaling import bench_scaling, print_scaling
from dyndnn.bench.serving import bench_serving, print_serving, write_serving
from dyndnn.bench.training import bench_families, bench_training, print_families


def bench_architecture(args: argparse.Namespace, architecture: str, run_time: float,
                       out: Path, context: dict) -> dict:
    """The latency sections of one architecture: eager per configuration, and serving."""
    factory = functools.partial(seeded_model, args.groups, args.width, args.in_channels,
                                args.image_size, architecture)
    suffix = "" if architecture == "alexnet" else f"-{architecture}"
    context = {**context, "model": {**context["model"], "architecture": architecture}}
    print(f"== {architecture}: G={args.groups} width={args.width}, "
          f"{factory().param_count(args.groups) / 1e6:.3f} M parameters")
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip()) or None
    serving = bench_serving(factory, (1, 16, 64), run_time,
                            switch_rounds=30 if args.quick else 100, engines=engines)
    write_serving(serving, out / f"serving{suffix}.json", context)
    print_serving(serving)
    if args.only == "serving":
        return {"serving": serving}
    latency_section = bench_latency(factory(), (1, 16, 64), run_time)
    (out / f"latency{suffix}.json").write_text(
        json.dumps({**latency_section, "context": context}, indent=2) + "\n")
    print_latency(latency_section)
    return {"serving": serving, "latency": latency_section}


def main(argv: list[str] | None = None) -> dict:
    """Run every section, print the table, write the JSON files; returns the results."""
    parser = argparse.ArgumentParser(prog="python -m dyndnn.bench", description=__doc__)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--width", type=float, default=1.0, help="1.0: the architecture's "
                        "channels")
    parser.add_argument("--architectures", default="alexnet,resnet20",
                        help="comma-separated: the latency sections run for each")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="shorter timings (noisier)")
    parser.add_argument("--out", default="outputs/bench")
    parser.add_argument("--outputs", default="outputs",
                        help="where `make run` wrote its run folders (section pipeline)")
    parser.add_argument("--engines", default="",
                        help="comma-separated serving engines (default: every one installed)")
    parser.add_argument("--only", choices=["all", "serving"], default="all",
                        help="serving: eager vs onnxruntime alone")
    args = parser.parse_args(argv)
    architectures = [a.strip() for a in args.architectures.split(",") if a.strip()]
    run_time = 0.3 if args.quick else 1.0
    context = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "machine": platform.processor() or platform.machine(),
               "model": {"groups": args.groups, "width": args.width,
                         "image_size": args.image_size, "in_channels": args.in_channels}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_architecture = {a: bench_architecture(args, a, run_time, out, context)
                        for a in architectures}
    first = per_architecture[architectures[0]]
    if args.only == "serving":
        return {"serving": first["serving"], "architectures": per_architecture}
    model = seeded_model(args.groups, args.width, args.in_channels, args.image_size,
                         architectures[0])
    context = {**context, "model": {**context["model"], "architecture": architectures[0]}}
    results = {
        "floor": bench_floor(model, run_time),
        "switch": bench_switch(model),
        "memory": bench_memory(model),
        "training": bench_training(model, 64, 3 if args.quick else 6, 3),
        "families": bench_families(args.groups, args.width, args.in_channels, args.image_size,
                                   architectures[0], 64, 2 if args.quick else 4, 3),
        "gflops": bench_gflops(model, 64, run_time),
        "rct": bench_rct(1 if args.quick else 4, 3),
        "scaling": bench_scaling(600 if args.quick else 4000, 1 if args.quick else 2),
        "pipeline": bench_pipeline(args.outputs),
    }
    for name, section in results.items():
        (out / f"{name}.json").write_text(json.dumps({**section, "context": context}, indent=2)
                                          + "\n")
    print(f"dyndnn bench ({architectures[0]}): GroupNet G={args.groups} width={args.width}, "
          f"{args.in_channels}x{args.image_size}x{args.image_size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    floor = results["floor"]["floor_s"]
    print("fixed cost per forward (same network at 1/64 width, batch 1): " + ", ".join(
        f"k={k}: {v * 1e3:.2f} ms" for k, v in floor.items()) + " -- what every configuration "
        "pays whatever its MACs; it caps the time range at small batches")
    s = results["switch"]
    print(f"switch: {s['switch_us']:.3f} us, {s['tensor_bytes_allocated']} tensor bytes, "
          f"{s['python_bytes_allocated']} Python bytes (target < 50 us, 0 bytes) "
          f"{mark(s['met'])}")
    m = results["memory"]
    print(f"weights: {m['bytes_all_configurations']:,} B serve all {args.groups} configurations "
          f"(full model {m['bytes_full_model']:,} B) vs {m['bytes_separate_models']:,} B as "
          f"separate models: {m['saving']:.2f}x less {mark(m['met'])}")
    for k, r in results["training"].items():
        print(f"training stage {k}: {r['stage_images_per_s']:.0f} images/s vs plain "
              f"{r['plain_images_per_s']:.0f} = {r['ratio']:.2f}x (target >= 0.9), frozen "
              f"params with grad: {r['frozen_params_with_grad']} {mark(r['met'])}")
    g = results["gflops"]
    print(f"inference: {g['model_gflops']:.1f} GFLOP/s vs matmul {g['matmul_gflops']:.1f} "
          f"GFLOP/s = {g['fraction']:.0%} (target >= 50%) {mark(g['met'])}")
    print_families(results["families"])
    for task, r in results["rct"].items():
        print(f"RCT training, {task}: {r['rct_packed_samples_per_s']:.0f} samples/s bit-packed, "
              f"{r['rct_containers_samples_per_s']:.0f} in int8/int16 containers "
              f"({r['packed_vs_containers']:.2f}x), QAT {r['qat_samples_per_s']:.0f}, fp32 "
              f"{r['fp32_samples_per_s']:.0f}: RCT takes {r['rct_time_vs_fp32']:.2f}x fp32's "
              f"time (target <= 2) {mark(r['rct_time_vs_fp32'] <= 2)}, QAT "
              f"{r['qat_time_vs_fp32']:.2f}x")
    print_scaling(results["scaling"])
    print_pipeline(results["pipeline"])
    print(f"written: {out}/*.json")
    return {**results, **first, "architectures": per_architecture}
