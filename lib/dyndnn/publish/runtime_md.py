"""RESULTS.md's runtime section: each policy's misses, latency and accuracy under contention.

>>> import pandas as pd
>>> summary = pd.DataFrame({"scenario": "hog", "backend": "eager",
...     "policy": ["static_full", "manager"], "miss_rate": [0.31, 0.02],
...     "p50_s": [1.1e-3, 0.8e-3], "p99_s": [3e-3, 1.4e-3], "accuracy_served": [0.93, 0.925],
...     "switches": [0.0, 4.0], "energy_per_inference_j": [5e-3, 4e-3],
...     "energy_provenance": "modelled"})
>>> row = runtime_markdown(summary).splitlines()[2]
>>> [cell.strip() for cell in row.strip("|").split("|")]
['hog', 'eager', 'static_full', '31', '1.1', '3', '93', '0', '5 (modelled)']
"""

from __future__ import annotations

import pandas as pd


def runtime_markdown(summary: pd.DataFrame) -> str:
    """One row per (scenario, backend, policy), in per cent, milliseconds and millijoules."""
    energy = [f"{1e3 * e:.3g} ({p})" if pd.notna(e) else "not recorded"
              for e, p in zip(summary["energy_per_inference_j"], summary["energy_provenance"],
                              strict=True)]
    table = pd.DataFrame({
        "scenario": summary["scenario"], "backend": summary["backend"],
        "policy": summary["policy"],
        "over budget [%]": (100 * summary["miss_rate"]).round(1),
        "p50 [ms]": (1e3 * summary["p50_s"]).round(3),
        "p99 [ms]": (1e3 * summary["p99_s"]).round(3),
        "accuracy served [%, val]": (100 * summary["accuracy_served"]).round(2),
        "switches / round": summary["switches"].round(1),
        "energy / inference [mJ]": energy})
    return table.to_markdown(index=False)


def runtime_section(summary: pd.DataFrame | None) -> list[str]:
    """The section, or nothing when the run has no runtime experiment."""
    if summary is None or summary.empty:
        return []
    return ["## Runtime policies under contention\n\nEach policy served the group model while "
            "a scenario's co-runners came and went (07_runtime): inferences over the latency "
            "budget, p50 and p99 latency (a clock), the validation accuracy of what was "
            "served, switches per round (probes included) and the energy per inference (the "
            "profile's power x the measured latency: its provenance in brackets). The oracle "
            "is computed afterwards from the same windows (per phase, the best point that met "
            "the budget): a bound, not a policy.\n\n" + runtime_markdown(summary)]
