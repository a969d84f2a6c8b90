"""The *modelled* energy of arithmetic and memory traffic, in one place, with its sources.

Figures at 45 nm from M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014 (its table of energy per operation). Everything computed from them is a model, not a
measurement, and is labelled *modelled* wherever it is shown.

>>> round(gemm_energy_pj(macs=1000, a_bits=8, w_bits=8), 1)   # int8 mult + int32 add
300.0
>>> round(gemm_energy_pj(macs=1000, a_bits=32, w_bits=32, fp=True), 1)
4600.0
"""

from __future__ import annotations

ENERGY_PJ = {
    "int8_add": 0.03,
    "int8_mult": 0.2,
    "int32_add": 0.1,
    "int32_mult": 3.1,
    "fp32_add": 0.9,
    "fp32_mult": 3.7,
    "sram_read_32bit_8kb": 5.0,
    "dram_access_64bit": 2000.0,  # 1.3-2.6 nJ in the source: the middle of that range
}
MODEL = "Horowitz, ISSCC 2014, 45 nm"  # the energy model, named wherever it is used
SOURCE = f"{MODEL} (modelled)"


def mult_pj(a_bits: int, w_bits: int) -> float:
    """Energy of one integer multiplication, anchored at int8 x int8.

    It grows with the product of the operand widths (quadratically for equal widths).
    """
    return ENERGY_PJ["int8_mult"] * (a_bits * w_bits) / 64


def gemm_energy_pj(macs: float, a_bits: int, w_bits: int, fp: bool = False) -> float:
    """Energy of ``macs`` multiply-accumulates; integers accumulate in int32 (0.1 pJ/add)."""
    if fp:
        return macs * (ENERGY_PJ["fp32_mult"] + ENERGY_PJ["fp32_add"])
    return macs * (mult_pj(a_bits, w_bits) + ENERGY_PJ["int32_add"])


def movement_energy_pj(bits_moved: float) -> float:
    """Energy of moving ``bits_moved`` bits of parameters to or from DRAM."""
    return bits_moved / 64 * ENERGY_PJ["dram_access_64bit"]
