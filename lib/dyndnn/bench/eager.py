"""The eager PyTorch sections of ``make bench``.

Latency per configuration, its fixed cost, a switch's cost, the weights all configurations
hold, and inference GFLOP/s against the machine's matmul.
"""

from __future__ import annotations

import time
import tracemalloc

import torch

from dyndnn.bench.common import TARGETS, latency, mark, median_s
from dyndnn.models import GroupNet


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


def print_latency(section: dict) -> None:
    """One line a batch: latency per configuration and the range against the MAC ratio."""
    for batch, r in section["batches"].items():
        lat = "  ".join(f"k={k}: {v * 1e3:.2f} ms" for k, v in r["latency_s"].items())
        print(f"eager latency batch {batch:>3}: {lat} | time range {r['time_range']:.2f}x vs "
              f"MAC ratio {r['mac_ratio']:.2f}x = {r['range_vs_macs']:.2f} (target >= 0.85) "
              f"{mark(r['met'])}")
