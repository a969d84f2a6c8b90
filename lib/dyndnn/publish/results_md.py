"""``RESULTS.md`` of a reference run: what ran where, and its headline tables, from its files.

Every number in it is read from the run's own tables (``eval.csv``, the operating points,
``summary.json``) and says where it came from: accuracy is the test split's (the settings were
chosen on validation, shown beside it), latency is measured by a clock, and energy carries the
provenance the profiler recorded (``measured`` by a named meter, ``modelled``, ...).

>>> import pandas as pd
>>> evaluation = pd.DataFrame({"model": "group", "groups": [1, 2], "accuracy": [0.80, 0.88],
...                            "val_accuracy": [0.79, 0.87], "macs": [100, 200]})
>>> print(accuracy_table(evaluation))
| family   | k=1           | k=2           |   MACs k=G / k=1 |
|:---------|:--------------|:--------------|-----------------:|
| group    | 80.00 (79.00) | 88.00 (87.00) |                2 |
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from typing import Any

import pandas as pd

from dyndnn.analysis.comparison import PAPER_ADVANTAGE
from dyndnn.analysis.tidy import distinct_joined
from dyndnn.publish.runtime_md import runtime_section
from dyndnn.views.explorer_view import eng

# the paper's headline (Xun et al. 2019): the group model's advantage over existing dynamic DNNs
RANGE_KEYS = ["model", "board", "mapping", "backend", "batch"]


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False)


def cells(line: str) -> list[str]:
    """The cells of one Markdown table row: ``cells("| a | b |")`` is ``['a', 'b']``."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def accuracy_table(evaluation: pd.DataFrame) -> str:
    """Test accuracy % per family and configuration, validation accuracy % in brackets."""
    rows = []
    for model, part in evaluation.sort_values("groups").groupby("model", sort=False):
        row: dict[str, Any] = {"family": model}
        for _, r in part.iterrows():
            val = r.get("val_accuracy", math.nan)
            row[f"k={int(r['groups'])}"] = (f"{100 * r['accuracy']:.2f}"
                                            + ("" if pd.isna(val) else f" ({100 * val:.2f})"))
        row["MACs k=G / k=1"] = round(float(part["macs"].max() / part["macs"].min()), 3)
        rows.append(row)
    return _markdown(pd.DataFrame(rows).fillna(""))


def _span(values: pd.Series, unit: str) -> str:
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"{eng(low, unit)} to {eng(high, unit)}" + (f" ({high / low:.2f}x)" if low > 0 else "")


def range_table(points: pd.DataFrame) -> str:
    """Per family, board, mapping, backend and batch: latency and energy from least to most.

    Over the configurations k (and the clocks, where a DVFS sweep set them); median of the
    repeats at each point, per inference of one batch.

    >>> points = pd.DataFrame({"model": "group", "board": "vm", "mapping": "cuda:0",
    ...     "backend": "eager", "batch": 1, "groups": [1, 2], "latency_s": [0.001, 0.002],
    ...     "energy_j": [0.05, 0.08], "power_w": [50.0, 40.0], "energy_provenance": "measured",
    ...     "meter": "nvml"})
    >>> header, _, row = range_table(points).splitlines()
    >>> dict(zip(cells(header), cells(row)))
    {'family': 'group', 'board': 'vm', 'mapping': 'cuda:0', 'backend': 'eager', 'batch': '1',
     'latency': '1 ms to 2 ms (2.00x)', 'energy': '50 mJ to 80 mJ (1.60x)',
     'power': '40 W to 50 W (1.25x)', 'energy and power provenance': 'measured (nvml)'}
    """
    rows = []
    for key, part in points.groupby(RANGE_KEYS, sort=True):
        provenance = distinct_joined(part["energy_provenance"])
        meters = distinct_joined(part["meter"])
        rows.append({**dict(zip(["family", *RANGE_KEYS[1:]], key, strict=True)),
                     "latency": _span(part["latency_s"], "s"),
                     "energy": _span(part["energy_j"], "J"),
                     "power": _span(part["power_w"], "W"),
                     "energy and power provenance": f"{provenance} ({meters})"})
    frame = pd.DataFrame(rows)
    order = {"group": 0}
    frame = frame.sort_values("family", key=lambda s: s.map(lambda m: order.get(m, 1)),
                              kind="stable")
    return _markdown(frame)


def dynamic_range_markdown(ranges: list[Mapping[str, Any]], model: str = "group",
                           swept_clocks: bool = True) -> str:
    """``summary.json``'s dynamic ranges of ``model``: max/min per level, backend and batch.

    ``swept_clocks`` false (the clocks were left as they were) drops the DVFS level.

    >>> ranges = [{"model": "group", "board": "vm", "backend": "eager", "batch": 1,
    ...            "level": "pruning", "metric": metric, "range": value,
    ...            "provenance": provenance} for metric, value, provenance in
    ...           (("latency_s", 3.14159, "measured"), ("energy_j", 2.5, "modelled"))]
    >>> header, _, row = dynamic_range_markdown(ranges).splitlines()
    >>> dict(zip(cells(header), cells(row)))
    {'board': 'vm', 'backend': 'eager', 'batch': '1', 'level': 'pruning',
     'latency range': '3.142', 'energy range': '2.5', 'energy provenance': 'modelled'}
    """
    frame = pd.DataFrame(list(ranges))
    if frame.empty or not (frame["model"] == model).any():
        return f"(no dynamic range of {model}: it was not profiled)"
    frame = frame[frame["model"] == model]
    if not swept_clocks:  # with one clock the DVFS level restates pruning+mapping
        frame = frame[frame["level"] != "pruning+mapping+dvfs"]
    keys = ["board", "backend", "batch", "level"]
    wide = frame.pivot_table("range", keys, "metric", sort=False).reset_index()
    energy = frame[frame["metric"] == "energy_j"].set_index(keys)["provenance"]
    wide["energy provenance"] = [energy.get(tuple(r[k] for k in keys), "")
                                 for _, r in wide.iterrows()]
    wide = wide.rename(columns={"latency_s": "latency range", "energy_j": "energy range"})
    columns = [*keys, "latency range", "energy range", "energy provenance"]
    return _markdown(wide.reindex(columns=columns).round(3))


def comparison_markdown(summary: Mapping[str, Any]) -> str:
    """The baselines against the group model, next to the paper's 2.73x / 2.36x / 2.4x.

    Per baseline and backend: the time and energy range advantage (median over the contexts,
    interquartile range, and the largest with its context), the memory advantage, and the
    baseline's fastest and slowest configuration against the group model's (median latency
    ratio: below 1 is faster). A modelled energy range is the time range again: said so.

    >>> table = comparison_markdown({"comparison": [{"model": "tann", "backend": "eager",
    ...     "time_x_median": 1.5, "time_x_q25": 1.2, "time_x_q75": 1.8, "time_x_max": 2.1,
    ...     "time_x_max_at": "vm, batch 64, cpu[0]x1, clocks as set",
    ...     "energy_x_median": 1.4, "energy_x_q25": 1.1, "energy_x_q75": 1.6,
    ...     "memory_x": 2.0, "contexts": 4, "energy_provenance": "measured",
    ...     "fastest_vs_reference_median": 0.9, "slowest_vs_reference_median": 1.6}]})
    >>> for line in table.splitlines()[2:]:
    ...     print(cells(line)[:4])
    ...     print(cells(line)[4:])
    ['paper (up to)', '', '2.73x', '']
    ['2.36x', '2.4x', '', '']
    ['tann', 'eager', '1.50x (1.20-1.80)', '2.10x at vm, batch 64, cpu[0]x1, clocks as set']
    ['1.40x (1.10-1.60), measured', '2.00x', '0.90x / 1.60x', '4']
    """
    records = summary.get("comparison") or []
    if not records:
        return summary.get("comparison_note") or "(no baseline was profiled beside the group " \
                                                 "model: no comparison)"
    paper = summary.get("paper_advantage") or PAPER_ADVANTAGE
    rows = [{"baseline": "paper (up to)", "backend": "",
             "time range advantage, median (IQR)": f"{paper['time']}x", "largest, where": "",
             "energy range advantage": f"{paper['energy']}x",
             "memory advantage": f"{paper['memory']}x",
             "fastest / slowest config vs group": "", "contexts": ""}]
    for r in records:
        largest = r.get("time_x_max")
        energy = (f"= time range (modelled: constant power per mapping; "
                  f"{_median_iqr(r, 'energy')})" if r.get("energy_follows_time") else
                  f"{_median_iqr(r, 'energy')}, {r['energy_provenance']}")
        rows.append({
            "baseline": r["model"], "backend": r["backend"],
            "time range advantage, median (IQR)": _median_iqr(r, "time"),
            "largest, where": "n/a" if largest is None or not math.isfinite(float(largest))
            else f"{float(largest):.2f}x at {r.get('time_x_max_at', '')}",
            "energy range advantage": energy,
            "memory advantage": "n/a" if r.get("memory_x") is None
            else f"{float(r['memory_x']):.2f}x",
            "fastest / slowest config vs group": _ratio_pair(r),
            "contexts": r["contexts"]})
    return _markdown(pd.DataFrame(rows))


def _ratio_pair(record: Mapping[str, Any]) -> str:
    pair = [record.get("fastest_vs_reference_median"), record.get("slowest_vs_reference_median")]
    if any(v is None or not math.isfinite(float(v)) for v in pair):
        return "n/a"
    return f"{float(pair[0]):.2f}x / {float(pair[1]):.2f}x"


def _median_iqr(record: Mapping[str, Any], metric: str) -> str:
    median = record.get(f"{metric}_x_median")
    if median is None or not math.isfinite(float(median)):
        return "n/a"
    return (f"{float(median):.2f}x ({float(record[f'{metric}_x_q25']):.2f}-"
            f"{float(record[f'{metric}_x_q75']):.2f})")


def command_line(manifest: Mapping[str, Any]) -> str:
    """The command the manifest records, as a user would type it.

    ``--config`` is left out where it names the run folder's own ``config.yaml`` (what a stage
    on an existing folder reads anyway); a shipped config is named as the command line takes it
    (``config_name``, recorded when the command ran); any other config file by its path. Only
    the record is read, so the line is the same from every checkout.

    >>> command_line({"command": "run", "config_file": "/src/dyndnn/configs/paper.yaml",
    ...               "config_name": "paper", "overrides": ["device=cuda", "models=[group]"],
    ...               "run_dir": "/x/r"})
    "python -m dyndnn run --config paper --out /x/r -p device=cuda -p 'models=[group]'"
    >>> command_line({"command": "train", "config_file": "/home/me/configs/paper.yaml",
    ...               "overrides": [], "run_dir": "/x/r"})       # the user's own, by path
    'python -m dyndnn train --config /home/me/configs/paper.yaml --out /x/r'
    >>> command_line({"command": "profile", "config_file": "/x/outputs/r/config.yaml",
    ...               "overrides": [], "run_dir": "/x/outputs/r"})
    'python -m dyndnn profile --out /x/outputs/r'
    >>> command_line({"command": "evaluate", "config_file": "<run>/config.yaml",
    ...               "overrides": [], "run_dir": "<run>"})       # a published record
    'python -m dyndnn evaluate --out <run>'
    """
    config = str(manifest.get("config_file") or "")
    run_dir = str(manifest.get("run_dir", "RUN"))

    def quoted(part: str) -> str:  # a published record's <run> is a placeholder, not a name
        return part if part.startswith("<run>") and " " not in part else shlex.quote(part)

    parts = ["python -m dyndnn", str(manifest.get("command", "run"))]
    if manifest.get("config_name"):
        parts += ["--config", shlex.quote(str(manifest["config_name"]))]
    elif config and config != f"{run_dir}/config.yaml":
        parts += ["--config", quoted(config)]
    parts += ["--out", quoted(run_dir)]
    parts += [f"-p {shlex.quote(o)}" for o in manifest.get("overrides") or []]
    return " ".join(parts)


def host_line(host: Mapping[str, Any]) -> str:
    """A machine as the record names it: host name, OS, CPUs it may use, NVIDIA GPUs.

    >>> host_line({"hostname": "srv", "platform": "Linux-6.8-x86_64", "cpus_allowed": 16,
    ...            "cpu_count": 32, "accelerators": ["gpu0 NVIDIA H200"]})
    'srv, Linux-6.8-x86_64, 16 of 32 CPUs, gpu0 NVIDIA H200'
    >>> host_line({"hostname": "srv", "platform": "Linux", "cpus_allowed": 16, "cpu_count": 32,
    ...            "accelerators": ["gpu0 A", "gpu1 B"], "cuda_visible_devices": "1"})
    'srv, Linux, 16 of 32 CPUs, gpu0 A, gpu1 B (CUDA_VISIBLE_DEVICES=1)'
    """
    gpus = ", ".join(host.get("accelerators") or []) or "no GPU found by NVML"
    if host.get("cuda_visible_devices") is not None:  # then cuda:N need not be NVML's gpuN
        gpus += f" (CUDA_VISIBLE_DEVICES={host['cuda_visible_devices']})"
    return (f"{host.get('hostname')}, {host.get('platform')}, {host.get('cpus_allowed')} of "
            f"{host.get('cpu_count')} CPUs, {gpus}")


def commands(manifest: Mapping[str, Any]) -> list[str]:
    """Every command that wrote the run, in order, with its commit and host where recorded.

    >>> for line in commands({"run_dir": "r", "commands": [
    ...     {"command": "train", "overrides": [],
    ...      "git": {"commit": "0123456789abcdef", "dirty": True}},
    ...     {"command": "profile", "overrides": [], "git": {"commit": "fedcba98"},
    ...      "host": {"hostname": "xu4", "platform": "Linux", "cpus_allowed": 8,
    ...               "cpu_count": 8, "accelerators": []}}]}):
    ...     print(line)
    `python -m dyndnn train --out r` at 0123456789ab (uncommitted changes)
    `python -m dyndnn profile --out r` at fedcba98 on xu4, Linux, 8 of 8 CPUs, no GPU found by NVML
    """
    recorded = manifest.get("commands") or [manifest]
    lines = []
    for entry in recorded:
        line = f"`{command_line({'run_dir': manifest.get('run_dir'), **entry})}`"
        git = entry.get("git") or {}
        if git.get("commit"):
            line += f" at {git['commit'][:12]}" + (" (uncommitted changes)"
                                                  if git.get("dirty") else "")
        if entry.get("host"):
            line += f" on {host_line(entry['host'])}"
        lines.append(line)
    return lines


def _steps(manifest: Mapping[str, Any]) -> str:
    steps = [*(manifest.get("notebooks") or []), *(manifest.get("stages") or [])]
    return ", ".join(f"{s['name']} {s.get('status', '?')} ({s.get('seconds', '?')} s)"
                     for s in steps) or "none recorded"


def what_ran(manifest: Mapping[str, Any], published: Mapping[str, Any]) -> str:
    """The record of the run: command, commit, data, host, packages, steps, publication."""
    git = manifest.get("git") or {}
    host = manifest.get("host") or {}
    packages = manifest.get("packages") or {}
    commit = git.get("commit") or "not a git checkout"
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    dataset = manifest.get("dataset_used", "?")
    if manifest.get("dataset_requested") not in (None, dataset):
        dataset += f" (the config asked for {manifest['dataset_requested']}, absent there)"
    published_git = published.get("git") or {}
    world = manifest.get("world_size")
    rows = [
        ("commands", "<br>".join(commands(manifest))
         + ("<br>(`<run>`: the run folder; paths in the record are relative to it or to the "
            "project's checkout)" if manifest.get("run_dir") == "<run>" else "")),
        ("steps", _steps(manifest)),
        ("commit (last command)", commit),
        ("status (last command)", f"{manifest.get('status')}, {manifest.get('start')} to "
                                  f"{manifest.get('end')}"),
        ("data set", dataset),
        ("seed", manifest.get("seed")),
        ("training processes", f"{world} ({manifest.get('backend')})" if world and world > 1
                               else "1"),
        ("host (last command)", host_line(host)),
        ("packages (last command)", ", ".join(f"{k} {v}" for k, v in packages.items() if v)),
        ("published", f"{published.get('at')} from run folder {published.get('from')} (commit "
                      f"{published_git.get('commit')}"
                      + (", with uncommitted changes)" if published_git.get("dirty") else ")")),
    ]
    return _markdown(pd.DataFrame(rows, columns=["", "what"]))


def results_markdown(manifest: Mapping[str, Any], summary: Mapping[str, Any],
                     evaluation: pd.DataFrame, points: pd.DataFrame,
                     file_bytes: Mapping[str, int], left_out: Mapping[str, str],
                     runtime_summary: pd.DataFrame | None = None) -> str:
    """The whole ``RESULTS.md``: sections in the order a reader checks a claim."""
    files = file_bytes
    with_model = any(f.startswith("checkpoints/") for f in files)
    cfg = manifest.get("config") or {}
    published = manifest.get("published") or {}
    energy = str(summary.get("energy") or "energy not profiled")
    figures = [f for f in files if f.startswith("figures/")]
    sections = [
        f"# Reference run {published.get('name', '')}",
        energy[:1].upper() + energy[1:] + ".",
        "Written by `python -m dyndnn publish` from the run's own files; every number below "
        "is read from the tables beside this file. Open the folder with "
        "`dyndnn.analysis.load_run(folder)`" + (", or notebook 05_explore with `run_dir` set "
                                                "to it." if with_model else
                                                " (the group model's checkpoint stayed behind: "
                                                "05_explore needs it)."),
        "## What ran\n\n" + what_ran(manifest, manifest.get("published") or {}),
        f"G = {(cfg.get('model') or {}).get('groups')}, width "
        f"{(cfg.get('model') or {}).get('width')}, architecture "
        f"{(cfg.get('model') or {}).get('architecture', 'alexnet')}; the full config is "
        "`config.yaml`.",
        "## Accuracy per configuration\n\nTest accuracy %, validation accuracy % in brackets "
        "(settings are chosen on validation; test is reported only).\n\n"
        + accuracy_table(evaluation),
        "## Time and energy per mapping and backend\n\nPer inference of one batch, median of "
        "the repeats at each point, from the least to the most over k = 1..G (and the clocks "
        "set, where a sweep set them). Latency is measured by a clock; energy and power carry "
        "their provenance and meter.\n\n" + range_table(points),
        "## Dynamic ranges of the group model\n\nThe widest max/min over what the running "
        "model changes: k alone (pruning), k and the task mapping, and the clocks too (DVFS, "
        "shown only where a sweep set clocks); backends and batches never mixed. Every "
        "family's ranges are in `summary.json`.\n\n"
        + dynamic_range_markdown(summary.get("dynamic_range") or [],
                                 swept_clocks=len(summary.get("frequencies") or []) > 1),
        "## Against existing dynamic DNNs\n\nThe group model's advantage in dynamic range "
        "(its max/min range over the baseline's at the same board, backend, batch, mapping and "
        "clock; above 1 the group model's is wider: median over those contexts, quartiles in "
        "brackets, the largest and where) and in bytes to serve every configuration (the "
        "baseline's over the group model's), beside the paper's \"up to\" numbers. The last "
        "columns say whether a range is won at the fast end or lost at the slow end: the "
        "baseline's fastest and slowest configuration's latency over the group model's.\n\n"
        + comparison_markdown(summary),
        *runtime_section(runtime_summary),
        "## Figures\n\n" + ("\n".join(f"![{f}]({f})" for f in figures) or "(none)"),
        "## Files\n\n" + _markdown(pd.DataFrame(
            [{"file": f, "bytes": n} for f, n in files.items()])),
    ]
    if left_out:
        sections.append("Left in the run folder: " + "; ".join(
            f"`{f}` ({why})" for f, why in left_out.items()) + ".")
    return "\n\n".join(sections) + "\n"
