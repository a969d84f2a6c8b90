"""One torchrun process of ``dyndnn.training.launch.launch_training``: the train stage in a world.

``python -m dyndnn.stages.train_worker --config FILE --out RUN [--no-progress]``: the launcher
holds the run folder's lock and its manifest; each process trains, rank 0 writes.
"""

from __future__ import annotations

import argparse
import sys

from dyndnn.config import load_config
from dyndnn.errors import DyndnnError, StageError
from dyndnn.record.layout import RunLayout
from dyndnn.stages.train import train


def main(argv: list[str] | None = None) -> int:
    """One torchrun process of ``launch_training``: 0 ok, 1 failed, 2 bad input."""
    parser = argparse.ArgumentParser(prog="python -m dyndnn.stages.train_worker",
                                     description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        train(load_config(args.config), RunLayout(args.out), progress=not args.no_progress)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except DyndnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # torchrun stopped us (another process failed) or Ctrl-C: the launcher says
    except Exception as exc:  # noqa: BLE001 (a collective failed: another process ended)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        print(f"error: training stopped in this process ({type(exc).__name__}: {first}); "
              "another process ended: its own error is above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
