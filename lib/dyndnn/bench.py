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
import time
import tracemalloc
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from dyndnn.bench_rct import bench_rct
from dyndnn.bench_scaling import bench_scaling, print_scaling
from dyndnn.bench_serving import bench_serving, print_serving, write_serving
from dyndnn.config import TrainSection
from dyndnn.models import GroupNet
from dyndnn.train import make_optimizer

TARGETS = {"range_vs_macs": 0.85, "switch_us": 50.0, "train_ratio": 0.9, "matmul_fraction": 0.5}


def seeded_model(groups: int, width: float, in_channels: int, image_size: int,
                 architecture: str = "alexnet") -> GroupNet:
    """The benchmarked model, the same in every process that builds it (seed 0)."""
    torch.manual_seed(0)
    return GroupNet(groups, width, in_channels, image_size, architecture=architecture).eval()


def median_s(stmt: str, min_run_time: float, **env) -> float:
    """Median seconds of ``stmt`` (torch.utils.benchmark's blocked autorange)."""
    # Timer defaults to one thread; measure with the threads the workbook itself uses
    timer = Timer(stmt, globals=env, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


@torch.inference_mode()
def latency(model: GroupNet, batch: int, k: int, min_run_time: float) -> float:
    """Median seconds of one inference of configuration k on a batch."""
    spec = model.spec
    x = torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size)
    model.set_active_groups(k)
    model(x)  # warm-up: oneDNN builds its kernels on first use
    return median_s("model(x)", min_run_time, model=model, x=x)


def bench_latency(model: GroupNet, batches: tuple[int, ...], min_run_time: float,
                  rounds: int = 3) -> dict:
    """Latency per configuration and the time dynamic range next to the MAC ratio.

    The configurations are measured in interleaved rounds and each keeps its median, so a burst
    of load from another tenant of the machine hits all of them rather than one.
    """
    G = model.groups
    out: dict = {"macs": {k: model.macs(k) for k in range(1, G + 1)}, "batches": {}}
    mac_ratio = model.macs(G) / model.macs(1)
    for batch in batches:
        runs = {k: [] for k in range(1, G + 1)}
        for _ in range(rounds):
            for k in runs:
                runs[k].append(latency(model, batch, k, min_run_time / rounds))
        lat = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
        time_range = lat[G] / lat[1]
        out["batches"][batch] = {
            "latency_s": lat, "time_range": time_range, "mac_ratio": mac_ratio,
            "range_vs_macs": time_range / mac_ratio,
            "met": time_range / mac_ratio >= TARGETS["range_vs_macs"]}
    return out


def bench_floor(model: GroupNet, min_run_time: float) -> dict:
    """The fixed cost of one forward: the same network at 1/64 of the width, batch 1.

    Its compute is negligible, so its latency is what every configuration pays regardless of
    its MACs (operator dispatch, oneDNN primitive calls); it caps the batch-1 time range.
    """
    spec = model.spec
    tiny = GroupNet(spec.groups, spec.width / 64, spec.in_channels, spec.image_size,
                    architecture=spec.architecture).eval()
    return {"floor_s": {k: latency(tiny, 1, k, min_run_time) for k in (1, spec.groups)},
            "floor_macs": {k: tiny.macs(k) for k in (1, spec.groups)}}


def bench_switch(model: GroupNet, repeats: int = 100_000) -> dict:
    """Seconds per ``set_active_groups`` and the bytes it allocates (tensors and Python)."""
    ks = [1 + i % model.groups for i in range(repeats)]
    start = time.perf_counter()
    for k in ks:
        model.set_active_groups(k)
    per_switch = (time.perf_counter() - start) / repeats
    with torch.profiler.profile(profile_memory=True) as prof:
        for k in ks[:1000]:
            model.set_active_groups(k)
    tensor_bytes = sum(abs(e.cpu_memory_usage) for e in prof.key_averages())
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for k in ks[:1000]:
        model.set_active_groups(k)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    python_bytes = sum(s.size_diff for s in after.compare_to(before, "filename")
                       if s.size_diff > 0 and "tracemalloc" not in str(s.traceback))
    return {"switch_us": per_switch * 1e6, "tensor_bytes_allocated": tensor_bytes,
            "python_bytes_allocated": python_bytes,
            "met": per_switch * 1e6 < TARGETS["switch_us"] and tensor_bytes == 0}


def bench_memory(model: GroupNet) -> dict:
    """Bytes serving all G configurations vs G separately stored models of the same sizes."""
    G = model.groups
    state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    separate = sum(model.param_bytes(k) for k in range(1, G + 1))
    return {"bytes_all_configurations": model.param_bytes(G), "bytes_full_model": state_bytes,
            "bytes_separate_models": separate, "saving": separate / model.param_bytes(G),
            "met": model.param_bytes(G) == state_bytes}


def _train_step_fn(module, optimizer, x, y):
    def step():
        loss = F.cross_entropy(module(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def bench_training(model: GroupNet, batch: int, steps: int, rounds: int) -> dict:
    """Images/s of each incremental stage vs plain PyTorch training of the same architecture.

    The plain side trains ``model.export(k)`` (Conv2d(groups=k), BatchNorm2d, ...: the same
    layers, all trainable) with the same optimiser; stage k trains group k with 1..k-1 frozen.
    """
    spec, cfg = model.spec, TrainSection()
    x = torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size)
    y = torch.randint(0, spec.num_classes, (batch,))
    out = {}
    for k in range(1, model.groups + 1):
        model.train()
        model.set_active_groups(k)
        for p in model.parameters():
            p.requires_grad_(False)
            p.grad = None
        params = model.group_parameters(k - 1)
        for p in params:
            p.requires_grad_(True)
        stage = _train_step_fn(model, make_optimizer(params, cfg), x, y)
        plain_model = model.export(k).train()
        plain = _train_step_fn(plain_model, make_optimizer(list(plain_model.parameters()), cfg),
                               x, y)
        stage(), plain()  # warm-up
        frozen_grads = sum(p.grad is not None for g in range(k - 1)
                           for p in model.group_parameters(g))
        times = {"stage": [], "plain": []}
        for _ in range(rounds):  # interleaved, so drifts in machine load hit both
            for name, fn in (("stage", stage), ("plain", plain)):
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[name].append(batch * steps / (time.perf_counter() - start))
        stage_ips, plain_ips = (sorted(v)[len(v) // 2] for v in times.values())
        out[k] = {"stage_images_per_s": stage_ips, "plain_images_per_s": plain_ips,
                  "ratio": stage_ips / plain_ips, "frozen_params_with_grad": frozen_grads,
                  "met": stage_ips / plain_ips >= TARGETS["train_ratio"] and frozen_grads == 0}
    model.eval()
    model.set_active_groups(model.groups)
    return out


@torch.inference_mode()
def bench_gflops(model: GroupNet, batch: int, min_run_time: float, n: int = 2048) -> dict:
    """Full-model inference GFLOP/s vs this machine's fp32 matmul GFLOP/s, same run."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    matmul = 2 * n ** 3 / median_s("a @ b", min_run_time, a=a, b=b) / 1e9
    lat = latency(model, batch, model.groups, min_run_time)
    model_gflops = 2 * model.macs(model.groups) * batch / lat / 1e9
    matmul_again = 2 * n ** 3 / median_s("a @ b", min_run_time, a=a, b=b) / 1e9
    matmul = max(matmul, matmul_again)  # the machine's best, measured before and after
    return {"matmul_gflops": matmul, "model_gflops": model_gflops,
            "fraction": model_gflops / matmul,
            "met": model_gflops / matmul >= TARGETS["matmul_fraction"]}


def _mark(met: bool) -> str:
    return "met" if met else "MISSED"


def bench_architecture(args: argparse.Namespace, architecture: str, run_time: float,
                       out: Path, context: dict) -> dict:
    """The latency sections of one architecture: eager per configuration, and serving."""
    factory = functools.partial(seeded_model, args.groups, args.width, args.in_channels,
                                args.image_size, architecture)
    suffix = "" if architecture == "alexnet" else f"-{architecture}"
    context = {**context, "model": {**context["model"], "architecture": architecture}}
    print(f"== {architecture}: G={args.groups} width={args.width}, "
          f"{factory().param_count(args.groups) / 1e6:.3f} M parameters")
    serving = bench_serving(factory, (1, 16, 64), run_time,
                            switch_rounds=30 if args.quick else 100)
    write_serving(serving, out / f"serving{suffix}.json", context)
    print_serving(serving)
    if args.only == "serving":
        return {"serving": serving}
    latency_section = bench_latency(factory(), (1, 16, 64), run_time)
    (out / f"latency{suffix}.json").write_text(
        json.dumps({**latency_section, "context": context}, indent=2) + "\n")
    _print_latency(latency_section)
    return {"serving": serving, "latency": latency_section}


def _print_latency(section: dict) -> None:
    for batch, r in section["batches"].items():
        lat = "  ".join(f"k={k}: {v * 1e3:.2f} ms" for k, v in r["latency_s"].items())
        print(f"eager latency batch {batch:>3}: {lat} | time range {r['time_range']:.2f}x vs "
              f"MAC ratio {r['mac_ratio']:.2f}x = {r['range_vs_macs']:.2f} (target >= 0.85) "
              f"{_mark(r['met'])}")


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
        "gflops": bench_gflops(model, 64, run_time),
        "rct": bench_rct(1 if args.quick else 4, 3),
        "scaling": bench_scaling(600 if args.quick else 4000, 1 if args.quick else 2),
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
          f"{_mark(s['met'])}")
    m = results["memory"]
    print(f"weights: {m['bytes_all_configurations']:,} B serve all {args.groups} configurations "
          f"(full model {m['bytes_full_model']:,} B) vs {m['bytes_separate_models']:,} B as "
          f"separate models: {m['saving']:.2f}x less {_mark(m['met'])}")
    for k, r in results["training"].items():
        print(f"training stage {k}: {r['stage_images_per_s']:.0f} images/s vs plain "
              f"{r['plain_images_per_s']:.0f} = {r['ratio']:.2f}x (target >= 0.9), frozen "
              f"params with grad: {r['frozen_params_with_grad']} {_mark(r['met'])}")
    g = results["gflops"]
    print(f"inference: {g['model_gflops']:.1f} GFLOP/s vs matmul {g['matmul_gflops']:.1f} "
          f"GFLOP/s = {g['fraction']:.0%} (target >= 50%) {_mark(g['met'])}")
    for task, r in results["rct"].items():
        print(f"RCT training, {task}: {r['rct_packed_samples_per_s']:.0f} samples/s bit-packed, "
              f"{r['rct_containers_samples_per_s']:.0f} in int8/int16 containers "
              f"({r['packed_vs_containers']:.2f}x), fp32 {r['fp32_samples_per_s']:.0f} "
              f"(packed RCT {r['packed_vs_fp32']:.2f}x fp32's speed)")
    print_scaling(results["scaling"])
    print(f"written: {out}/*.json")
    return {**results, **first, "architectures": per_architecture}


if __name__ == "__main__":
    main()
