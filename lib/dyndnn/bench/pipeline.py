"""``make run``'s wall time, stage by stage, read from the newest finished quick run.

``make bench`` does not run the pipeline again (minutes): it reads what the last ``make run``
recorded in its manifest, each notebook's seconds as the pipeline measured them, and says
which run folder and commit they come from, so a slower stage shows beside the other
sections. No finished quick run under ``outputs/``: the section says so and reports nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dyndnn.bench.common import mark
from dyndnn.record.layout import run_folders

TARGET_S = 480.0  # make run, quick config, on the 2-core machine: at most 8 minutes


def bench_pipeline(outputs: str | Path = "outputs", config: str = "quick") -> dict[str, Any]:
    """Seconds of every notebook of the newest finished ``run`` of shipped config ``config``."""
    for layout in run_folders(outputs):
        try:
            manifest = json.loads(layout.manifest_file.read_text())
        except (OSError, ValueError):
            continue
        if (manifest.get("command") != "run" or manifest.get("status") != "ok"
                or manifest.get("config_name") != config):
            continue
        stages = {entry["name"].removesuffix(".ipynb"): entry["seconds"]
                  for entry in manifest.get("notebooks", []) if entry.get("status") == "ok"}
        total = sum(stages.values())
        return {"run_dir": str(layout.root), "commit": (manifest.get("git") or {}).get("commit"),
                "start": manifest.get("start"), "end": manifest.get("end"),
                "stage_seconds": stages, "total_seconds": total, "target_seconds": TARGET_S,
                "met": total <= TARGET_S}
    return {"run_dir": None, "stage_seconds": {}, "note": f"no finished `{config}` run under "
            f"{outputs}: run `make run` first"}


def print_pipeline(section: dict[str, Any]) -> None:
    """One line: each stage's seconds and the whole, against the 8-minute target."""
    if not section["stage_seconds"]:
        print(f"make run: {section['note']}")
        return
    stages = ", ".join(f"{name} {s:.0f} s" for name, s in section["stage_seconds"].items())
    print(f"make run ({Path(section['run_dir']).name}): {stages}; notebooks "
          f"{section['total_seconds']:.0f} s (target <= {section['target_seconds']:.0f} s) "
          f"{mark(section['met'])}")
