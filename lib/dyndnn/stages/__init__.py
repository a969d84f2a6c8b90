"""One function per notebook: each takes a validated ``Config`` and a ``RunLayout``.

>>> from dyndnn.stages import stage_function
>>> evaluate = stage_function("evaluate")
>>> f"{evaluate.__module__}.{evaluate.__qualname__}"
'dyndnn.stages.evaluate.evaluate'

On a trained run folder (the evaluation takes a while)::

    result = evaluate(cfg, RunLayout("outputs/run1"))
    print(result.report())

The notebooks call them (parameters, ``config_from_flat(globals())``, one call, display), and
so does the command line (``python -m dyndnn evaluate --out RUN``), so a stage runs the same
with or without Jupyter. Each returns what its notebook shows and holds the run folder's lock
while it writes. ``train`` and ``rct`` train, and check that the folder's record agrees with
the config they got; the stages that read a trained run (evaluate, profile, analyse, explore)
take G, the families and every other training key from the run itself
(``stages.common.trained_config``), so their notebooks do not declare them, and find the run
with ``dyndnn.record.layout.resolve_run_dir``. A stage's ``KEYS`` are its notebook's parameters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# stage -> its notebook; the CLI's subcommands, in pipeline order
NOTEBOOKS = {"train": "01_train", "evaluate": "02_evaluate", "profile": "03_profile",
             "analyse": "04_analyse", "explore": "05_explore", "rct": "06_rct",
             "runtime": "07_runtime"}


def stage_module(name: str) -> Any:
    """The module of stage ``name`` (imported on demand: the stages need torch, the CLI not)."""
    if name not in NOTEBOOKS:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(NOTEBOOKS)}")
    return importlib.import_module(f"dyndnn.stages.{name}")


def stage_function(name: str) -> Callable[..., Any]:
    """The function of stage ``name``, e.g. ``stage_function("profile")``."""
    return getattr(stage_module(name), name)
