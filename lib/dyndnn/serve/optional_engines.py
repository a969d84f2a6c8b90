"""The optional engines (OpenVINO, ExecuTorch, LiteRT): what each needs and what installs it.

A run that names one this environment cannot import skips it with one line
(``installed_backends``); a server that needs one says how to get it (``require_engine``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# the optional engines: the module each needs and the requirement that installs it
OPTIONAL = {"openvino": ("openvino", "openvino>=2025.0"),
            "executorch": ("executorch", "executorch>=1.5"),
            "litert": ("ai_edge_litert", "ai-edge-litert>=2.0")}


def installed_backends(backends: tuple[str, ...] | list[str], say: bool = True
                       ) -> tuple[str, ...]:
    """``backends`` without the optional engines this environment cannot import.

    Each one left out is said in one line on stderr, with what installs it (``say=False``:
    quietly), so a run measures what it can rather than stopping.

    >>> installed_backends(("eager", "onnxruntime"))
    ('eager', 'onnxruntime')
    """
    kept = []
    for backend in backends:
        module, requirement = OPTIONAL.get(backend, (None, None))
        if module is not None:
            try:
                importlib.import_module(module)
            except ImportError:
                if say:
                    print(f"{backend}: not installed here, skipped (pip install "
                          f"'{requirement}', or pip install -e '.[engines]')", file=sys.stderr)
                continue
        kept.append(backend)
    if backends and not kept:
        from dyndnn.errors import ConfigError

        raise ConfigError(f"none of the engines named ({', '.join(backends)}) is installed "
                          "here: pip install -e '.[engines]', or name eager or onnxruntime")
    return tuple(kept)


def require_engine(backend: str, *modules: str) -> list[Any]:
    """The optional engine's ``modules``, imported.

    If the engine is missing: a ``BundleError`` that says what installs it.

    >>> [m.__name__ for m in require_engine("litert", "ai_edge_litert.interpreter")]
    ['ai_edge_litert.interpreter']
    """
    from dyndnn.serve.bundle import BundleError

    requirement = OPTIONAL[backend][1]
    try:
        importlib.import_module(OPTIONAL[backend][0])  # the package itself, first: a submodule
        return [importlib.import_module(module) for module in modules]  # may be cached alone
    except ImportError as exc:
        raise BundleError(f"the {backend} backend needs the {requirement.split('>=')[0]} "
                          f"package: pip install '{requirement}' (or pip install -e "
                          "'.[engines]')") from exc
