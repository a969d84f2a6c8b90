"""Pareto fronts: the points no other point beats on both cost and accuracy.

Fronts are taken per board, batch, model and backend (``PARETO_BY``): a point is only ever
compared with the configurations it can switch to.

>>> pareto_mask([1.0, 2.0, 3.0, 2.0], [0.5, 0.7, 0.6, 0.4]).tolist()
[True, True, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

PARETO_BY = ("board", "batch", "model", "backend")  # the groups fronts are taken in


def pareto_mask(cost: Sequence[float] | np.ndarray, gain: Sequence[float] | np.ndarray
                ) -> np.ndarray:
    """True for every point that no other point dominates (lower ``cost``, higher ``gain``).

    A point is dominated by one at most as costly and at least as good, better in one of the
    two; equal points do not dominate each other, so both stay. NaN points are never on it.

    >>> pareto_mask([1.0, 2.0, 3.0, 2.0], [0.5, 0.7, 0.6, 0.4]).tolist()
    [True, True, False, False]
    """
    c, g = np.asarray(cost, dtype=float), np.asarray(gain, dtype=float)
    valid = ~(np.isnan(c) | np.isnan(g))
    # n x n comparisons: operating-point tables have hundreds of rows, not millions
    no_worse = (c[:, None] <= c[None, :]) & (g[:, None] >= g[None, :])
    better = (c[:, None] < c[None, :]) | (g[:, None] > g[None, :])
    dominates = no_worse & better & valid[:, None] & valid[None, :]
    return valid & ~dominates.any(axis=0)


def mark_pareto(points: pd.DataFrame, metrics: Sequence[str] = ("latency_s", "energy_j"),
                by: Sequence[str] = PARETO_BY, gain: str = "accuracy") -> pd.DataFrame:
    """A copy of ``points`` with ``pareto_<metric>`` flags, fronts taken per ``by`` group.

    Per model and backend by default: a configuration of one model is never "dominated" by
    another model's, which it cannot switch to without a load (the baselines are compared in
    ``compare_models``), nor by another engine's, which a deployment does not run beside it.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"model": ["m", "m", "m", "tann"],
    ...                        "latency_s": [1.0, 2.0, 3.0, 0.5],
    ...                        "accuracy": [0.80, 0.88, 0.85, 0.90]})
    >>> mark_pareto(points, ["latency_s"], by=["model"])["pareto_latency_s"].tolist()
    [True, True, False, True]
    """
    out = points.copy()
    for metric in metrics:
        flag = pd.Series(False, index=out.index)
        for _, part in out.groupby(list(by), dropna=False):
            flag.loc[part.index] = pareto_mask(part[metric], part[gain])
        out[f"pareto_{metric}"] = flag.astype(bool)
    return out


def pareto_front(points: pd.DataFrame, x: str = "latency_s", y: str = "accuracy",
                 by: Sequence[str] = PARETO_BY) -> pd.DataFrame:
    """The non-dominated points (``x`` low, ``y`` high) of every ``by`` group, sorted by ``x``.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"model": ["m", "m", "m", "tann"],
    ...                        "energy_j": [1.0, 2.0, 3.0, 0.5],
    ...                        "accuracy": [0.80, 0.88, 0.85, 0.90]})
    >>> pareto_front(points, x="energy_j", by=["model"])
      model  energy_j  accuracy
    0     m       1.0      0.80
    1     m       2.0      0.88
    2  tann       0.5      0.90
    """
    flagged = mark_pareto(points, [x], by, y)
    front = flagged[flagged[f"pareto_{x}"]].drop(columns=[f"pareto_{x}"])
    return front.sort_values([*by, x]).reset_index(drop=True)
