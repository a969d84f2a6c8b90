"""Command line: the pipeline, or one stage of it, on a run folder.

    python -m dyndnn run --config configs/quick.yaml [--out DIR] [-p key=value ...]
    python -m dyndnn evaluate --out RUN [--config C] [-p key=value ...]
    python -m dyndnn lab [--dir lab] [-- JUPYTERLAB ARGS]

Stages (no Jupyter needed; on a board, ``profile`` is the common one): train, evaluate,
profile, analyse, explore, rct, runtime. A stage on an existing run folder uses the folder's own
``config.yaml`` unless ``--config`` is given. ``fetch NAME`` downloads a data set where a
network exists. ``publish --out RUN --to results/NAME`` copies a finished run into a reference
run with its ``RESULTS.md`` (``dyndnn.publish``). ``lab`` opens JupyterLab on working copies of
the notebooks (``dyndnn.lab``), so the tracked ones never change. Exit status: 0 ok, 1 a
notebook or stage failed, 2 bad input (config, data, run folder, file system), 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dyndnn.errors import (
    ConfigError,
    DyndnnError,
    NotebookError,
    RunInterrupted,
    StageError,
)
from dyndnn.stages import NOTEBOOKS

if TYPE_CHECKING:
    from dyndnn.record.runs import Run

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dyndnn", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the notebook pipeline with papermill")
    run.add_argument("--config", help="YAML config file, or the name of a shipped one (quick, "
                                      "paper); default: an existing --out folder's own "
                                      "config.yaml, else configs/quick.yaml")
    run.add_argument("--out", help="run folder (default outputs/<time>-<config>); an existing "
                                   "run folder is resumed")
    for name, notebook in NOTEBOOKS.items():
        stage = commands.add_parser(name, help=f"run stage {name} ({notebook}) without Jupyter")
        stage.add_argument("--config", help="YAML config (default: the run folder's "
                                            "config.yaml, else configs/quick.yaml)")
        stage.add_argument("--out", required=name != "train",
                           help="the run folder" + (" (default outputs/<time>-<config>)"
                                                    if name == "train" else ""))
    for sub in commands.choices.values():
        sub.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key, e.g. -p groups=2 -p train.lr=0.1")
        sub.add_argument("--no-progress", action="store_true",
                         help="hide progress (bars and a line an epoch); it is hidden anyway "
                              "when the output is not a terminal")
    lab = commands.add_parser("lab", help="JupyterLab on working copies of the notebooks "
                                          "(the tracked notebooks/ never change)")
    lab.add_argument("--dir", default="lab", help="folder of the working copies (default lab, "
                                                  "beside notebooks/)")
    lab.add_argument("--no-launch", action="store_true",
                     help="make or refresh the copies, do not start JupyterLab")
    lab.add_argument("jupyter", nargs=argparse.REMAINDER,
                     help="after --, arguments for JupyterLab, e.g. -- --no-browser")
    publish = commands.add_parser("publish", help="copy a finished run's tables, figures and "
                                                  "record into a reference run with RESULTS.md")
    publish.add_argument("--out", required=True, help="the finished run folder")
    publish.add_argument("--to", required=True, help="the reference run's folder, e.g. "
                                                     "results/<device>-<config>")
    board = commands.add_parser("profile-bundle", help="on a board, without torch: profile "
                                "a deployment bundle (a run's export/) with its engines")
    board.add_argument("export", help="the bundle folder (the run's export/, copied here)")
    board.add_argument("--out", required=True, help="where profile.csv and board_profile.json "
                                                    "go (resumed if there)")
    board.add_argument("--config", help="YAML config for the profile keys (default: the "
                                        "shipped quick config's)")
    board.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a profile key, e.g. -p mappings=[cpu:0-3x4] -p repeats=10")
    board.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    fetch = commands.add_parser("fetch", help="download a data set (needs a network)")
    fetch.add_argument("name", choices=["fashion-mnist", "cifar10"])
    fetch.add_argument("--root", default="data")
    return parser


def run_stage(name: str, config: str | None, out: str | None, overrides: list[str],
              progress: bool = True) -> str:
    """Run one stage on a run folder, recorded in its manifest; returns its report."""
    from dyndnn.record.runs import open_run
    from dyndnn.stages import stage_function
    from dyndnn.training.distributed import launched_by_torchrun

    if launched_by_torchrun():
        if name != "train":
            raise ConfigError(f"stage {name} runs in one process; under torchrun only the "
                              "train stage does (drop torchrun, or run the train stage)")
        return run_train_in_world(config, out, overrides, progress)
    # SIGTERM (kill, timeout, systemd, a batch scheduler) ends a stage as Ctrl-C does: the
    # manifest says interrupted, one line is printed, the exit status is 130
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with open_run(config, out, overrides, command=name) as run:
            function = stage_function(name)
            kwargs = {"progress": progress} if name in ("train", "profile", "rct",
                                                        "runtime") else {}
            return _recorded_stage(run, name, function, **kwargs)
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_profile_bundle(export: str, out: str, config: str | None, overrides: list[str],
                       progress: bool = True) -> str:
    """The board side (no torch): ``stages.profile_bundle`` with the profile keys given."""
    from dyndnn.config.loading import load_config
    from dyndnn.resources import find_config
    from dyndnn.stages.profile_bundle import KEYS, profile_bundle

    cfg = load_config(find_config(config or "quick"), overrides)  # a malformed item: its error
    keys = {item.split("=", 1)[0].strip().rsplit(".", 1)[-1] for item in overrides}
    foreign = sorted(keys - set(KEYS))
    if foreign:
        raise ConfigError(f"profile-bundle takes only the profile keys ({', '.join(KEYS)}); "
                          f"not {', '.join(foreign)}")
    command = {"command": "profile-bundle", "config": config or "quick",
               "overrides": list(overrides)}
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return profile_bundle(export, out, cfg, "backends" in keys, progress, command).report()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _recorded_stage(run: Run, name: str, function: Callable, **kwargs: Any) -> str:
    """Run a stage function on an open run, as a step of its manifest; returns the report."""
    with run.step("stages", name) as entry:
        try:
            result = function(run.cfg, run.layout, **kwargs)
            entry.update(getattr(result, "recorded", {}))  # e.g. where merged rows came from
        except (DyndnnError, KeyboardInterrupt, RunInterrupted):
            raise
        except Exception as exc:  # a bug or a failure in the stage, not bad input
            from dyndnn.record.atomic import disk_full, out_of_space

            if out_of_space(exc, run.layout.root):  # a write outside atomic_write (a CSV row)
                written = getattr(exc, "filename", None)
                raise disk_full(run.layout.root / "?" if written is None else
                                run.layout.root.joinpath(written), exc) from exc
            raise StageError(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc
    return f"{result.report()}\nstage {name} complete: {run.layout.root}"


def run_train_in_world(config: str | None, out: str | None, overrides: list[str],
                       progress: bool = True) -> str:
    """The train stage in one torchrun process: rank 0 opens and records the run folder.

    The others wait until it has (its checks may refuse the folder: torchrun then stops
    them), take its path, and train; only rank 0 writes.
    """
    from dyndnn.config import config_from_dict
    from dyndnn.record.layout import RunLayout
    from dyndnn.record.runs import open_run, resolve_config
    from dyndnn.stages.train import train
    from dyndnn.training.distributed import world_of

    cfg = resolve_config(config if config is not None or out is None
                         else _folder_config(out), overrides).cfg
    signal.signal(signal.SIGTERM, _stopped)  # torchrun stops us when another process failed
    with world_of(cfg.train.distributed_backend, cfg.train.device) as world:
        if not world.writer:  # rank 0's folder and config, once its checks have passed
            try:
                root, recorded = world.broadcast(None)
            except BaseException as exc:  # rank 0 refused the folder, or died before it said
                raise _without_writer(world.rank, None, exc) from None
            try:
                train(config_from_dict(recorded), RunLayout(root), progress)
            except BaseException as exc:
                raise _without_writer(world.rank, RunLayout(root), exc) from None
            return f"rank {world.rank} of {world.size} done"
        with open_run(config, out, overrides, command="train", world_size=world.size) as run:
            world.broadcast((str(run.layout.root), run.cfg.to_dict()))
            return _recorded_stage(run, "train", train, progress=progress)


def _without_writer(rank: int, layout: Any, exc: BaseException) -> BaseException:
    """What a rank above 0 says when training stopped under it: one line, not a traceback.

    Its collectives fail (or torchrun stops it) when another process ended; if that was the
    writer, killed before it could end the run's record, this rank ends it (``failed``).
    """
    from dyndnn.record.runs import record_abandoned

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # this rank is ending: torchrun's SIGTERM
    # would otherwise interrupt it again while the interpreter exits, with a traceback
    why = (f"the writer (rank 0) ended without recording how; rank {rank} saw "
           f"{type(exc).__name__}")
    marked = layout is not None and record_abandoned(layout, why)
    note = (f"; {layout.root} is recorded as failed (the writer, rank 0, had died) and "
            "resumes from its last complete epoch when run again" if marked else "")
    if isinstance(exc, KeyboardInterrupt | RunInterrupted):
        return RunInterrupted(f"rank {rank}: {exc}{note}")
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return StageError(f"rank {rank}: training stopped ({type(exc).__name__}: {first}): "
                      f"another process ended; its own error is above{note}")


def _stopped(signum: int, frame: object) -> None:
    raise RunInterrupted("stopped by SIGTERM (torchrun stops every process when one fails: "
                         "see the other ranks' errors); the run folder resumes when run again")


def _folder_config(out: str) -> str:
    """An existing run folder's own config.yaml, as ``open_run`` takes it without --config."""
    from dyndnn.record.layout import RunLayout
    from dyndnn.record.runs import DEFAULT_CONFIG

    existing = RunLayout(out)
    return (str(existing.config_file) if existing.is_run_folder()
            and existing.config_file.is_file() else DEFAULT_CONFIG)


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars and a line an epoch, for a person at a terminal: not into logs or pipes."""
    return not args.no_progress and sys.stderr.isatty()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failed, 2 bad input, 130 interrupted)."""
    args = _parser().parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    try:
        if args.command == "run":
            from dyndnn.pipeline import run_pipeline
            from dyndnn.training.distributed import launched_by_torchrun

            if launched_by_torchrun():
                raise ConfigError("the pipeline starts torchrun itself: run it without "
                                  "torchrun, with -p processes=N")

            run_dir = run_pipeline(args.config, args.out, args.param,
                                   progress=_progress(args))
            print(f"run complete: {run_dir}")
        elif args.command == "lab":
            from dyndnn.lab import launch_lab, prepare_lab

            print(prepare_lab(args.dir).report())
            if not args.no_launch:
                launch_lab(args.dir, [a for a in args.jupyter if a != "--"])
        elif args.command == "publish":
            from dyndnn.publish import publish

            print(publish(args.out, args.to).report())
        elif args.command == "profile-bundle":
            print(run_profile_bundle(args.export, args.out, args.config, args.param,
                                     progress=_progress(args)))
        elif args.command == "fetch":
            from dyndnn.data import fetch as fetch_dataset

            print(f"{args.name} is in {fetch_dataset(args.name, args.root)}")
        else:
            print(run_stage(args.command, args.config, args.out, args.param,
                            progress=_progress(args)))
    except (NotebookError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except DyndnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # the file system refused: a full disk, a permission
        print(f"error: {exc.strerror or exc}: {exc.filename or ''} (check the --out folder "
              "and free space)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, RunInterrupted) as exc:
        message = str(exc) if isinstance(exc, RunInterrupted) else "interrupted"
        print(message, file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
