"""RCT: resource-constrained training (Huang et al., arXiv:2103.14493).

Training keeps *only* a quantised copy of each layer's weights (integers and a per-layer scale,
in the smallest integer container for the layer's bitwidth); the update is applied straight to
the integers, and each layer's bitwidth follows its Gavg (mean |update| over the quantisation
step) during training. fp32 and QAT (fp32 master + fake quantisation) are the baselines.

- ``quant``: the integer weight store, rounding, lossless bit gain.
- ``layers``: conv and linear layers for the three methods; ``convert`` swaps them in.
- ``controller``: the per-layer bitwidth rule.
- ``energy``: the *modelled* energy table (Horowitz, ISSCC 2014) in one place.
- ``trainer``: one training loop for fp32, QAT and RCT, with the memory and energy accounting.
"""

from dyndnn.rct.compare import RCT_COLUMNS, Comparison, add_group_under_rct, compare_methods
from dyndnn.rct.controller import BitwidthController, RctSettings
from dyndnn.rct.energy import ENERGY_PJ, gemm_energy_pj, movement_energy_pj
from dyndnn.rct.layers import METHODS, convert, quantised_layers, to_plain
from dyndnn.rct.quant import QuantisedWeight, container_dtype, round_tensor
from dyndnn.rct.trainer import RctTrainer, TransientTracker, measure_param_bytes, train_group_rct

__all__ = [
    "ENERGY_PJ", "METHODS", "RCT_COLUMNS", "BitwidthController", "Comparison",
    "QuantisedWeight", "RctSettings", "RctTrainer", "TransientTracker", "add_group_under_rct",
    "compare_methods",
    "container_dtype", "convert", "gemm_energy_pj", "measure_param_bytes", "movement_energy_pj",
    "quantised_layers", "round_tensor", "to_plain", "train_group_rct",
]  # fmt: skip
