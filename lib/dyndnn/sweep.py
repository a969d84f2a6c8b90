"""Choosing a setting on the validation split: train each variant, score every configuration.

A sweep trains a model once per variant of a config (flat ``key=value`` overrides, as on
the command line), in memory, and scores every configuration k on the *validation* split. The
model is the group model unless a variant names another ``family`` (``family=slimmable``), so
a baseline's training is chosen the same way. The test split is never read: a setting chosen
here is reported later, on test, by a run of the chosen config. This is how the settings in
``configs/`` were chosen.

    python -m dyndnn.sweep --config quick -v "width=0.25 combine=mean" -v "width=0.0625"
    python -m dyndnn.sweep --config quick -v "family=slimmable lr=0.05" -v "family=independent"

>>> table = sweep("quick", [{"combine": "mean"}, {"combine": "sum"}],
...               ["train_limit=200", "epochs_per_stage=1", "groups=2", "width=0.0625"])
>>> table[["combine", "groups"]].values.tolist()
[['mean', 1], ['mean', 2], ['sum', 1], ['sum', 2]]
>>> bool(table["val_accuracy"].between(0, 1).all()), "test_accuracy" in table
(True, False)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from dyndnn.config import load_config
from dyndnn.data import load_dataset
from dyndnn.errors import ConfigError
from dyndnn.evaluation import score
from dyndnn.models import FAMILIES, GROUP_MODEL
from dyndnn.resources import find_config
from dyndnn.training.trainer import IncrementalTrainer, model_from_config, setup_torch


def _as_overrides(variant: dict[str, Any]) -> list[str]:
    return [f"{key}={value}" for key, value in variant.items()]


def sweep(config: str | Path, variants: list[dict[str, Any]],
          overrides: list[str] | None = None, progress: bool = False) -> pd.DataFrame:
    """One row per (variant, configuration k): the variant's keys, k, validation accuracy.

    ``config`` is a config file or a shipped config's name; ``overrides`` apply to every
    variant, before the variant's own keys; a variant's ``family`` key (not a config key)
    picks the model family, the group model by default. Each variant starts from the same
    seed.
    """
    path = find_config(config)
    rows = []
    for variant in variants:
        family = str(variant.get("family", GROUP_MODEL))
        if family not in FAMILIES:
            raise ConfigError(f"sweep: unknown family {family!r}; one of {', '.join(FAMILIES)}")
        keys = {key: value for key, value in variant.items() if key != "family"}
        cfg = load_config(path, [*(overrides or []), *_as_overrides(keys)])
        ds = load_dataset(cfg.data.dataset, cfg.data.data_root, cfg.data.train_limit,
                          val_fraction=cfg.data.val_fraction)
        setup_torch(cfg.run.seed, cfg.run.threads)
        model = model_from_config(cfg.model, ds.spec, family)
        start = time.perf_counter()
        IncrementalTrainer(model, ds, cfg.train, cfg.data.batch_size, cfg.run.seed,
                           cfg.data.augment, progress=progress).fit()
        elapsed = time.perf_counter() - start
        model.eval()
        for k in range(1, model.groups + 1):
            result = score(model, ds, k, cfg.eval.eval_batch_size, "val")
            rows.append({**variant, "groups": k, "val_accuracy": result["accuracy"],
                         "val_images": result["val_images"], "train_s": elapsed})
    return pd.DataFrame(rows)


def _parse_variant(text: str) -> dict[str, str]:
    pairs = [item.partition("=") for item in text.split()]
    bad = [key for key, eq, _ in pairs if not eq]
    if bad:
        raise argparse.ArgumentTypeError(f"a variant is 'key=value key=value'; got {text!r}")
    return {key: value for key, _, value in pairs}


def main(argv: list[str] | None = None) -> int:
    """``python -m dyndnn.sweep``: print the validation table (and write it with ``--out``)."""
    from dyndnn.errors import DyndnnError

    parser = argparse.ArgumentParser(prog="python -m dyndnn.sweep", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("--config", default="quick", help="config file or shipped name")
    parser.add_argument("-v", "--variant", action="append", type=_parse_variant,
                        required=True, help='"key=value key=value": one variant per -v')
    parser.add_argument("-p", "--param", action="append", default=[],
                        help="key=value applied to every variant")
    parser.add_argument("--out", help="write the table as CSV here")
    args = parser.parse_args(argv)
    try:
        table = sweep(args.config, args.variant, args.param, progress=sys.stderr.isatty())
    except DyndnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    keys = list(dict.fromkeys(k for v in args.variant for k in v))
    # a key some variants leave out shows as "-" (pivot_table drops rows with a missing key)
    shown = table.assign(**{key: table[key].astype(object).where(table[key].notna(), "-")
                            .astype(str) for key in keys})
    wide = shown.pivot_table(index=keys, columns="groups", values="val_accuracy")
    print("validation accuracy per configuration k (the test split is not read):")
    print(wide.round(4).to_string())
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
