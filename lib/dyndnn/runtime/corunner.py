"""A second inference loop, the ``dnn`` co-runner: another model of the run on the same engine.

Started by ``CoRunners`` (pinned, paused until its phase), never by hand::

    python -m dyndnn.runtime.corunner RUN FAMILY GROUPS BACKEND THREADS

It loads ``FAMILY``'s trained model from the run folder at ``GROUPS`` active groups, serves it
with ``BACKEND`` (``eager`` or ``onnxruntime``) on ``THREADS`` threads, prints ``ready`` and
runs batch-1 inferences until it is killed.
"""

from __future__ import annotations

import sys


def command(run_dir: str, family: str, groups: int, backend: str) -> list[str]:
    """The argv of the loop, less its thread count (``CoRunners`` adds the phase's cores).

    >>> command("outputs/run", "independent", 4, "eager")[1:]
    ['-m', 'dyndnn.runtime.corunner', 'outputs/run', 'independent', '4', 'eager']
    """
    return [sys.executable, "-m", "dyndnn.runtime.corunner", run_dir, family, str(groups),
            backend]


def main(argv: list[str]) -> None:
    """Load, say ``ready``, infer forever."""
    run_dir, family, groups, backend, threads = argv
    import torch

    from dyndnn.record.checkpoint import load_final_model
    from dyndnn.record.layout import RunLayout

    torch.set_num_threads(int(threads))
    layout = RunLayout(run_dir)
    model = load_final_model(layout, family, int(groups)).eval()
    spec = model.spec
    x = torch.randn(1, spec.in_channels, spec.image_size, spec.image_size)
    from dyndnn.serve.engines import engine, wants_numpy

    served = engine(model, backend, int(threads))
    served.set_active_groups(int(groups))
    x = x.numpy() if wants_numpy(backend) else x
    with torch.inference_mode():
        served(x)
        print("ready", flush=True)
        while True:
            served(x)


if __name__ == "__main__":
    main(sys.argv[1:])
