"""Command line: ``python -m dyndnn run --config configs/quick.yaml [--out DIR] [-p key=value]``.

Other commands: ``fetch NAME`` downloads a data set where a network exists.
"""

from __future__ import annotations

import argparse
import sys

from dyndnn.errors import ConfigError, DyndnnError, NotebookError


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a notebook failed, 2 bad input)."""
    parser = argparse.ArgumentParser(prog="python -m dyndnn", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the notebook pipeline with papermill")
    run.add_argument("--config", default="configs/quick.yaml", help="YAML config file")
    run.add_argument("--out", help="run folder (default outputs/<time>-<config>); an existing "
                                   "one is resumed")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. -p groups=2 -p train.lr=0.1")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    fetch = commands.add_parser("fetch", help="download a data set (needs a network)")
    fetch.add_argument("name", choices=["fashion-mnist", "cifar10"])
    fetch.add_argument("--root", default="data")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from dyndnn.pipeline import run_pipeline

            run_dir = run_pipeline(args.config, args.out, args.param,
                                   progress=not args.no_progress)
            print(f"run complete: {run_dir}")
        else:
            from dyndnn.data import fetch as fetch_dataset

            print(f"{args.name} is in {fetch_dataset(args.name, args.root)}")
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, DyndnnError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
