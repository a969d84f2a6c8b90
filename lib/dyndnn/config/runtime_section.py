"""The runtime experiment's section: policies against contention scenarios (07_runtime)."""

from __future__ import annotations

from dataclasses import dataclass

from dyndnn.config.bounds import check_bounds
from dyndnn.config.names import BACKENDS
from dyndnn.errors import ConfigError

# dyndnn.runtime.scenarios.BUILTIN (a scenario may also be a CSV file: *.csv)
SCENARIOS = ("hog", "second_dnn", "burst")


@dataclass(frozen=True)
class RuntimeSection:
    """How long and on what the runtime experiment runs.

    >>> RuntimeSection(runtime_scenarios=("hog", "mine.csv")).runtime_scenarios
    ('hog', 'mine.csv')
    >>> RuntimeSection(runtime_budget_factor=0.5)
    Traceback (most recent call last):
    dyndnn.errors.ConfigError: runtime.runtime_budget_factor must be >= 1 (k = G must meet \
the budget when calm); got 0.5
    """

    runtime_backends: tuple[str, ...] = ("eager", "onnxruntime")
    runtime_scenarios: tuple[str, ...] = SCENARIOS
    runtime_duration_s: float = 12.0  # seconds of one scenario, per policy
    runtime_window_s: float = 0.2  # seconds of back-to-back inferences a decision
    runtime_rounds: int = 2  # interleaved rounds (each starts with another policy)
    runtime_budget_factor: float = 1.15  # budget = factor x k=G's calibrated latency
    # (every core, no load), measured here just before

    def __post_init__(self) -> None:
        object.__setattr__(self, "runtime_backends", tuple(self.runtime_backends))
        object.__setattr__(self, "runtime_scenarios", tuple(self.runtime_scenarios))
        check_bounds("runtime", self)
        for name in self.runtime_backends:
            if name not in BACKENDS:
                raise ConfigError(f"runtime.runtime_backends: unknown backend {name!r}; "
                                  f"known: {', '.join(BACKENDS)}")
        for name in self.runtime_scenarios:
            if name not in SCENARIOS and not str(name).endswith(".csv"):
                raise ConfigError(f"runtime.runtime_scenarios: unknown scenario {name!r}; "
                                  f"built in: {', '.join(SCENARIOS)}, or a CSV file")
        checks = [(self.runtime_duration_s > 0, "runtime_duration_s must be > 0"),
                  (0 < self.runtime_window_s <= self.runtime_duration_s,
                   "runtime_window_s must be > 0 and at most runtime_duration_s"),
                  (self.runtime_rounds >= 1, "runtime_rounds must be >= 1"),
                  (self.runtime_budget_factor >= 1, "runtime_budget_factor must be >= 1 "
                   "(k = G must meet the budget when calm)"),
                  (len(self.runtime_backends) > 0 and len(self.runtime_scenarios) > 0,
                   "runtime_backends and runtime_scenarios must name at least one")]
        for ok, message in checks:
            if not ok:
                value = getattr(self, message.split()[0], None)
                raise ConfigError(f"runtime.{message}; got {value!r}")
