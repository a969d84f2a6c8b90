"""Per-layer bitwidth during training, driven by Gavg = mean |update| / quantisation step.

A layer whose updates are small against its step (Gavg < T_min) loses them to rounding: it
gains a bit (finer step). A layer whose updates span many steps (Gavg > T_max) has resolution
to spare: it loses a bit. Checked every ``interval`` steps on the mean Gavg since the last check.

>>> s = RctSettings(t_min=0.05, t_max=5.0, interval=50)
>>> c = BitwidthController(s)
>>> c.decide(0.01), c.decide(1.0), c.decide(9.0)
(1, 0, -1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dyndnn.errors import ConfigError
from dyndnn.rct.quant import MAX_BITS, MIN_BITS, ROUNDINGS

if TYPE_CHECKING:
    from dyndnn.config import RctSection


@dataclass(frozen=True)
class RctSettings:
    """RCT's hyper-parameters.

    Defaults chosen on the validation split with ``dyndnn.rct.compare.sweep_settings`` (the
    quick config: Fashion-MNIST subset, 4 epochs, width 0.25; the test split not read):
    validation accuracy 83.9 % at the defaults, 83.6 % with t_min 0.05 and 83.8 % with 0.2,
    within a standard error (about 1.2 points on 1000 images), while memory was not: t_min 0.05
    and 0.2 let layers climb to 10.6 and 12.1 bits on average (int16 containers, 784 KB of
    parameters against 630 KB at 9.0 bits). Gavg never exceeded 1 there: t_max 5 changed
    nothing, so t_max = 1 loses a bit only when updates span whole steps. Stochastic rounding
    is essential: nearest rounding scored 80.8 % (updates below half a step vanish).
    """

    bits_init: int = 8  # every layer starts here
    bits_min: int = 4
    bits_max: int = 10  # chosen on validation with the memory target in view (docs/rct.md)
    t_min: float = 0.01  # Gavg below: gain a bit
    t_max: float = 1.0  # Gavg above: lose a bit
    interval: int = 50  # steps between bitwidth checks
    rounding: str = "stochastic"  # of weight updates: nearest | stochastic
    act_bits: int = 8  # activations, quantised per tensor in the forward GEMMs
    err_bits: int = 12  # errors (output gradients), quantised per tensor in the backward GEMMs
    tile_rows: int = 0  # output rows a tile at most (0: as many as tile_values allows)
    tile_values: int = 16384  # and at most this many values a tile (0 = no cap)
    packed: bool = True  # integers bit-packed at their bitwidth; False: int8/int16 containers
    momentum_bits: int = 8  # SGD momentum kept as integers of this width; 0: an fp32 buffer

    @classmethod
    def from_section(cls, section: RctSection) -> RctSettings:
        """The settings of a config's ``rct`` section (validated there and here)."""
        return cls(section.bits_init, section.bits_min, section.bits_max, section.t_min,
                   section.t_max, section.gavg_interval, section.rounding, section.act_bits,
                   section.err_bits, section.tile_rows, section.tile_values, section.packed,
                   section.momentum_bits)

    def __post_init__(self) -> None:
        for name in ("bits_init", "bits_min", "bits_max", "act_bits", "err_bits"):
            value = getattr(self, name)
            if not MIN_BITS <= value <= MAX_BITS:
                raise ConfigError(f"rct {name} must be between {MIN_BITS} and {MAX_BITS}; "
                                  f"got {value}")
        if not self.bits_min <= self.bits_init <= self.bits_max:
            raise ConfigError(f"rct needs bits_min <= bits_init <= bits_max; got "
                              f"{self.bits_min}, {self.bits_init}, {self.bits_max}")
        if not 0 < self.t_min < self.t_max:
            raise ConfigError(f"rct needs 0 < t_min < t_max; got t_min={self.t_min}, "
                              f"t_max={self.t_max}")
        if self.tile_values < 0:
            raise ConfigError(f"rct tile_values must be >= 0 (0 = no cap); got "
                              f"{self.tile_values}")
        if self.tile_rows < 0:
            raise ConfigError(f"rct tile_rows must be >= 0 (0 = bounded by tile_values alone); got "
                              f"{self.tile_rows}")
        if self.momentum_bits and not MIN_BITS <= self.momentum_bits <= MAX_BITS:
            raise ConfigError(f"rct momentum_bits must be 0 (an fp32 buffer) or between "
                              f"{MIN_BITS} and {MAX_BITS}; got {self.momentum_bits}")
        if self.interval < 1:
            raise ConfigError(f"rct interval must be >= 1 step; got {self.interval}")
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"rct rounding must be one of {ROUNDINGS}; got {self.rounding!r}")


class BitwidthController:
    """Applies the Gavg rule to every quantised layer and logs the trajectory."""

    def __init__(self, settings: RctSettings) -> None:
        self.settings = settings
        self.trajectory: list[dict] = []  # one row per (check, layer)

    def decide(self, gavg: float) -> int:
        """+1 (gain a bit), -1 (lose one) or 0 for a layer's mean Gavg."""
        if gavg < self.settings.t_min:
            return 1
        if gavg > self.settings.t_max:
            return -1
        return 0

    def check(self, step: int, layers: dict) -> None:
        """At a check step: move each layer's bitwidth by the rule, within the bounds."""
        s = self.settings
        for name, layer in layers.items():
            gavg = layer.take_gavg()
            change = self.decide(gavg)
            store = layer.store
            if change > 0 and store.bits < s.bits_max:
                store.gain_bit()
            elif change < 0 and store.bits > s.bits_min:
                store.lose_bit()
            self.trajectory.append({"step": step, "layer": name, "gavg": gavg,
                                    "bits": store.bits, "change": change})
