"""Memory: the bytes held to serve every configuration, one dynamic model against one per k.

>>> import pandas as pd
>>> memory_footprint(pd.DataFrame({"model": ["m"] * 2, "groups": [1, 2],
...                                "param_bytes": [10, 20]}))["separate_bytes"].item()
30
"""

from __future__ import annotations

import pandas as pd

from dyndnn.analysis.errors import AnalysisError


def memory_footprint(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Bytes to serve every configuration: each model as built vs one separate model per k.

    ``dynamic_bytes`` is what the model holds to serve all its configurations: the
    ``serving_bytes`` column where the table has it (a slimmable network's switchable BNs, the
    independent models' sum), else the largest configuration's bytes. ``separate_bytes`` is one
    copy per configuration (baseline 1, independent models), their sum.

    >>> memory_footprint(pd.DataFrame({"model": ["m"] * 4, "groups": [1, 2, 3, 4],
    ...                                "param_bytes": [1, 2, 3, 4]}))["saving"].item()
    2.5
    """
    rows = []
    for model, part in evaluation.groupby("model", sort=True):
        part = part.sort_values("groups")
        if "serving_bytes" not in part:  # an eval.csv from before the baselines
            dynamic = int(part["param_bytes"].max())
        elif part["serving_bytes"].isna().any():
            raise AnalysisError(f"eval table lacks serving_bytes for model {model!r}; rerun "
                                "notebook 02_evaluate on this run folder")
        else:
            dynamic = int(part["serving_bytes"].max())
        separate = int(part["param_bytes"].sum())
        rows.append({"model": model, "configurations": len(part),
                     "smallest_bytes": int(part["param_bytes"].min()), "dynamic_bytes": dynamic,
                     "separate_bytes": separate, "saving": separate / dynamic})
    return pd.DataFrame(rows)
