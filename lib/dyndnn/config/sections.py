"""The config's sections: one frozen dataclass each, validated when built."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from dyndnn.config.bounds import check_bounds
from dyndnn.config.names import (
    BACKENDS,
    DATASETS,
    DEFAULT_BACKENDS,
    DEVICES,
    DISTRIBUTED_BACKENDS,
    METERS,
    MODELS,
    OPTIMIZERS,
    RCT_BITS,
    ROUNDINGS,
    SCHEDULES,
    TEXT_DATASETS,
    TEXT_MODELS,
)
from dyndnn.config.runtime_section import RuntimeSection
from dyndnn.errors import ConfigError
from dyndnn.models.architecture import ArchitectureError, architecture


@dataclass(frozen=True)
class RunSection:
    """What runs: the seed and the notebooks of the chain, in order."""

    seed: int = 0
    notebooks: tuple[str, ...] = ("01_train", "02_evaluate")
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default (all cores)
    cell_timeout_s: int = 0  # a notebook cell running longer fails the chain (0 = no limit)

    def __post_init__(self) -> None:
        check_bounds("run", self)
        _check(self.seed >= 0, "run.seed must be >= 0", self.seed)
        _check(len(self.notebooks) > 0, "run.notebooks must name at least one notebook", [])
        _check(self.threads >= 0, "run.threads must be >= 0 (0 = torch's default)", self.threads)
        _check(self.cell_timeout_s >= 0, "run.cell_timeout_s must be >= 0 (0 = no limit)",
               self.cell_timeout_s)


@dataclass(frozen=True)
class DataSection:
    """Which data set, where it lives and how it is batched."""

    dataset: str = "fashion-mnist-mini"
    fallback_dataset: str = ""  # used instead when ``dataset``'s files are absent ("" = none)
    data_root: str = "data"  # relative to where the command runs
    batch_size: int = 128
    train_limit: int = 0  # use only the first N training images (0 = all); for smoke tests
    test_limit: int = 0  # use only the first N test images (0 = all)
    # of every class of the training images, held out to choose settings (the test split is
    # read once, for the final tables); seeded and class-balanced (dyndnn.data)
    val_fraction: float = 0.1
    augment: bool = True  # random crop with padding (+ flip where the data set suits it)

    def __post_init__(self) -> None:
        check_bounds("data", self)
        for key in ("dataset", "fallback_dataset"):
            _check(getattr(self, key) not in TEXT_DATASETS,
                   f"data.{key} names a text data set, which the image stages (train, "
                   "evaluate, profile) cannot use; text data sets are trained by the RCT "
                   "stage: set rct.text_dataset instead", getattr(self, key))
        _check(
            self.dataset in DATASETS,
            f"data.dataset must be one of {', '.join(DATASETS)}",
            self.dataset,
        )
        _check(
            self.fallback_dataset in ("", *DATASETS),
            f"data.fallback_dataset must be empty or one of {', '.join(DATASETS)}",
            self.fallback_dataset,
        )
        _check(self.batch_size >= 1, "data.batch_size must be >= 1", self.batch_size)
        _check(self.train_limit >= 0, "data.train_limit must be >= 0 (0 = all)", self.train_limit)
        _check(self.test_limit >= 0, "data.test_limit must be >= 0 (0 = all)", self.test_limit)
        _check(0 < self.val_fraction <= 0.5, "data.val_fraction must be in (0, 0.5]: every "
               "setting is chosen on the validation split", self.val_fraction)


@dataclass(frozen=True)
class ModelSection:
    """The dynamic network: G groups that split an architecture's channels scaled by ``width``."""

    groups: int = 4
    architecture: str = "alexnet"  # alexnet | resnet20 | resnet18 | mobilenet | path/net.yaml
    width: float = 0.25  # fraction of the architecture's channels, over all groups together
    active_groups: int = 0  # the configuration to deploy/export; 0 = all groups
    dropout: float = 0.0  # before each hidden FC layer
    combine: str = "sum"  # groups' logits: sum (residual stages) | mean (independent stages)
    models: tuple[str, ...] = ("group",)  # families to train, evaluate and profile
    baseline_budget: str = "macs"  # a baseline's full size: the group model's macs | width

    def __post_init__(self) -> None:
        check_bounds("model", self)
        try:
            narrowest = architecture(self.architecture).narrowest_channels()
        except ArchitectureError as exc:
            raise ConfigError(f"model.architecture: {exc}") from exc
        _check(set(self.models) <= set(MODELS),
               f"model.models must name families among {', '.join(MODELS)}", self.models)
        _check("group" in self.models and len(set(self.models)) == len(self.models),
               "model.models must include group (the baselines are compared with it) "
               "and name each family once", self.models)
        _check(self.baseline_budget in ("macs", "width"),
               "model.baseline_budget must be macs (the group model's full MACs) or width "
               "(its layer widths)", self.baseline_budget)
        _check(self.groups >= 1, "model.groups must be >= 1", self.groups)
        _check(self.width > 0, "model.width must be > 0", self.width)
        most = max_groups(self.width, narrowest)
        _check(self.groups <= most,
               f"model.groups must be at most {most} at width {self.width}: the narrowest "
               f"layer of {self.architecture} has {narrowest} x width channels and a group "
               "needs at least one; lower groups or raise width", self.groups)
        _check(
            0 <= self.active_groups <= self.groups,
            f"model.active_groups must be between 1 and groups ({self.groups}), or 0 for all",
            self.active_groups,
        )
        _check(0 <= self.dropout < 1, "model.dropout must be in [0, 1)", self.dropout)
        _check(self.combine in ("sum", "mean"), "model.combine must be sum or mean",
               self.combine)


@dataclass(frozen=True)
class TrainSection:
    """The incremental trainer: each stage trains one group for ``epochs_per_stage`` epochs."""

    epochs_per_stage: int = 2
    # a jointly trained family's one stage (slimmable) runs this many times epochs_per_stage:
    # its widths share every weight, so the joint objective needs more steps than one network
    # (docs/reproduction.md). A factor, so that an override of epochs_per_stage carries it along
    joint_stage_factor: int = 1
    optimizer: str = "sgd"
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # per stage: cosine decay, constant, or one-cycle
    label_smoothing: float = 0.0
    # scale-out (docs/distributed.md): processes, backend and device say where the run
    # executes, not part of the training record, so a run may resume with another process
    # count (train.csv records each epoch's world); sync_bn changes what is computed: recorded
    processes: int = 1  # > 1: the train stage launches torchrun with this many processes
    backend: str = ""  # torch.distributed backend: gloo | nccl; "" = gloo on cpu, nccl on cuda
    device: str = "cpu"  # cpu | cuda (each process takes the GPU of its local rank)
    sync_bn: bool = False  # True: BN statistics of the global batch (docs/distributed.md)

    def epochs_of(self, joint: bool) -> int:
        """Epochs of one stage: ``joint_stage_factor`` x as many for a jointly trained family.

        >>> TrainSection(epochs_per_stage=8, joint_stage_factor=2).epochs_of(True)
        16
        >>> TrainSection(epochs_per_stage=8).epochs_of(True), TrainSection(8, 2).epochs_of(False)
        (8, 8)
        """
        return self.epochs_per_stage * (self.joint_stage_factor if joint else 1)

    @property
    def distributed_backend(self) -> str:
        """The backend of ``torch.distributed``: ``backend``, or the device's usual one."""
        return self.backend or ("nccl" if self.device == "cuda" else "gloo")

    def __post_init__(self) -> None:
        check_bounds("train", self)
        _check(self.processes >= 1, "train.processes must be >= 1", self.processes)
        _check(self.device in DEVICES, f"train.device must be one of {', '.join(DEVICES)}",
               self.device)
        _check(self.backend in ("", *DISTRIBUTED_BACKENDS),
               f"train.backend must be one of {', '.join(DISTRIBUTED_BACKENDS)} (or empty: "
               "gloo on cpu, nccl on cuda)", self.backend)
        _check(not (self.backend == "nccl" and self.device == "cpu"),
               "train.backend nccl moves CUDA tensors only: set train.device=cuda, or use "
               "gloo on CPUs", self.backend)
        _check(self.epochs_per_stage >= 0, "train.epochs_per_stage must be >= 0",
               self.epochs_per_stage)
        _check(self.joint_stage_factor >= 1, "train.joint_stage_factor must be >= 1",
               self.joint_stage_factor)
        _check(self.optimizer in OPTIMIZERS,
               f"train.optimizer must be one of {', '.join(OPTIMIZERS)}", self.optimizer)
        _check(self.lr > 0, "train.lr must be > 0", self.lr)
        _check(0 <= self.momentum < 1, "train.momentum must be in [0, 1)", self.momentum)
        _check(self.weight_decay >= 0, "train.weight_decay must be >= 0", self.weight_decay)
        _check(self.schedule in SCHEDULES,
               f"train.schedule must be one of {', '.join(SCHEDULES)}", self.schedule)
        _check(0 <= self.label_smoothing < 1, "train.label_smoothing must be in [0, 1)",
               self.label_smoothing)


@dataclass(frozen=True)
class EvalSection:
    """Evaluation of every configuration 1..G."""

    eval_batch_size: int = 500

    def __post_init__(self) -> None:
        check_bounds("eval", self)
        _check(self.eval_batch_size >= 1, "eval.eval_batch_size must be >= 1",
               self.eval_batch_size)


@dataclass(frozen=True)
class ProfileSection:
    """On-board profiling: configurations x mappings x frequencies x batch sizes."""

    mappings: tuple[str, ...] = ("auto",)  # "auto" or e.g. "cpu:0", "cpu:4-7x4", "cuda:0@0"
    frequencies_khz: tuple[int, ...] = ()  # CPU clocks to sweep; empty leaves them as they are
    profile_batches: tuple[int, ...] = (1, 64)  # batch sizes
    repeats: int = 5  # measurement windows per point (one profile.csv row each)
    warmup: int = 3  # untimed inferences before each point
    window_s: float = 0.2  # minimum window; also >= 10 x the meter's update period
    meter: str = "auto"  # auto | rapl | ina231 | ina3221 | nvml | modelled
    board: str = ""  # a name for the board column; "" = discovered
    backends: tuple[str, ...] = DEFAULT_BACKENDS  # engines measured: eager | onnxruntime |
    # openvino, executorch, litert (optional packages: pip install -e '.[engines]')
    board_profiles: tuple[str, ...] = ()  # folders profile-bundle wrote on a board, merged
    # into the run's profile.csv by the analyse stage

    def __post_init__(self) -> None:
        check_bounds("profile", self)
        _check(len(self.backends) > 0 and set(self.backends) <= set(BACKENDS)
               and len(set(self.backends)) == len(self.backends),
               f"profile.backends must name engines among {', '.join(BACKENDS)}, each once",
               self.backends)
        _check(len(self.mappings) > 0, "profile.mappings must name at least one mapping", [])
        _check(all(f > 0 for f in self.frequencies_khz), "profile.frequencies_khz must be > 0",
               self.frequencies_khz)
        _check(len(self.profile_batches) > 0 and all(b >= 1 for b in self.profile_batches),
               "profile.profile_batches must be batch sizes >= 1", self.profile_batches)
        _check(self.repeats >= 1, "profile.repeats must be >= 1", self.repeats)
        _check(self.warmup >= 0, "profile.warmup must be >= 0", self.warmup)
        _check(self.window_s >= 0, "profile.window_s must be >= 0", self.window_s)
        _check(self.meter in METERS, f"profile.meter must be one of {', '.join(METERS)}",
               self.meter)


@dataclass(frozen=True)
class ExploreSection:
    """The explorer and the runtime manager's demos (05)."""

    manager_batch: int = 0  # batch size of the manager simulation; 0 takes the largest
    live_demo_s: float = 15.0  # seconds of the live demo under a CPU load; 0 skips it

    def __post_init__(self) -> None:
        check_bounds("explore", self)
        _check(self.manager_batch >= 0, "explore.manager_batch must be >= 0 (0 = the largest)",
               self.manager_batch)
        _check(self.live_demo_s >= 0, "explore.live_demo_s must be >= 0 (0 = skip)",
               self.live_demo_s)


@dataclass(frozen=True)
class RctSection:
    """RCT vs QAT vs fp32 on the same model and data, and a group added under RCT."""

    rct_width: float = 0.25  # width of the single-path AlexNet the three methods train
    rct_epochs: int = 4  # epochs, the same for the three methods
    rct_train_limit: int = 0  # train on the first N images only (0 = all)
    bits_init: int = 8
    bits_min: int = 4
    bits_max: int = 10  # chosen on validation, both tasks (docs/rct.md)
    t_min: float = 0.01  # Gavg below: a layer gains a bit
    t_max: float = 1.0  # Gavg above: a layer loses a bit
    gavg_interval: int = 50  # steps between bitwidth checks
    rounding: str = "stochastic"  # nearest | stochastic
    act_bits: int = 8
    err_bits: int = 12
    tile_rows: int = 0  # output rows dequantised at a time (0: as many as tile_values allows)
    tile_values: int = 16384  # and at most this many values a tile (0 = no cap)
    packed: bool = True  # integers bit-packed at their bitwidth (False: int8/int16 containers)
    momentum_bits: int = 8  # momentum kept as integers of this width (0: an fp32 buffer)
    text_dataset: str = "wordnet-supersense-mini"  # the text task ("" = images only)
    text_model: str = "transformer"  # conv | transformer (dyndnn.models.text)
    text_epochs: int = 15  # epochs of each method on the text task
    text_lr: float = 0.1  # peak learning rate on the text task (the rest: the train section)

    def __post_init__(self) -> None:
        check_bounds("rct", self)
        _check(self.rct_width > 0, "rct.rct_width must be > 0", self.rct_width)
        _check(self.rct_epochs >= 0, "rct.rct_epochs must be >= 0", self.rct_epochs)
        _check(self.rct_train_limit >= 0, "rct.rct_train_limit must be >= 0",
               self.rct_train_limit)
        low, high = RCT_BITS
        for name in ("bits_init", "bits_min", "bits_max", "act_bits", "err_bits"):
            _check(low <= getattr(self, name) <= high,
                   f"rct.{name} must be between {low} and {high}", getattr(self, name))
        _check(self.bits_min <= self.bits_init <= self.bits_max,
               "rct needs bits_min <= bits_init <= bits_max",
               (self.bits_min, self.bits_init, self.bits_max))
        _check(0 < self.t_min < self.t_max, "rct needs 0 < t_min < t_max",
               (self.t_min, self.t_max))
        _check(self.gavg_interval >= 1, "rct.gavg_interval must be >= 1 step",
               self.gavg_interval)
        _check(self.rounding in ROUNDINGS, f"rct.rounding must be one of {', '.join(ROUNDINGS)}",
               self.rounding)
        _check(self.tile_rows >= 0, "rct.tile_rows must be >= 0 (0 = bounded by tile_values alone)",
               self.tile_rows)
        _check(self.text_dataset in ("", *TEXT_DATASETS),
               f"rct.text_dataset must be '' (images only) or one of "
               f"{', '.join(TEXT_DATASETS)}", self.text_dataset)
        _check(self.text_model in TEXT_MODELS,
               f"rct.text_model must be one of {', '.join(TEXT_MODELS)}", self.text_model)
        _check(self.text_epochs >= 0, "rct.text_epochs must be >= 0", self.text_epochs)
        _check(self.text_lr > 0, "rct.text_lr must be > 0", self.text_lr)
        _check(self.tile_values >= 0, "rct.tile_values must be >= 0 (0 = no cap)",
               self.tile_values)
        _check(self.momentum_bits == 0 or low <= self.momentum_bits <= high,
               f"rct.momentum_bits must be 0 (an fp32 buffer) or between {low} and {high}",
               self.momentum_bits)


@dataclass(frozen=True)
class Config:
    """A whole, validated run configuration."""

    run: RunSection = field(default_factory=RunSection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    profile: ProfileSection = field(default_factory=ProfileSection)
    explore: ExploreSection = field(default_factory=ExploreSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)
    rct: RctSection = field(default_factory=RctSection)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain dict (tuples as lists), as written to YAML and the manifest."""
        return {
            f.name: {k: list(v) if isinstance(v, tuple) else v
                     for k, v in dataclasses.asdict(getattr(self, f.name)).items()}
            for f in fields(self)
        }

    def flat(self) -> dict[str, Any]:
        """Flat ``key -> value`` over all sections: the notebooks' papermill parameters."""
        return {k: v for section in self.to_dict().values() for k, v in section.items()}


def _check(ok: bool, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{message}; got {value!r}")


def max_groups(width: float, narrowest: int = 64) -> int:
    """The most groups at ``width`` that leave every group a channel of the narrowest layer.

    ``narrowest``: its channels at width 1 (AlexNet's first conv has 64).

    >>> max_groups(0.25), max_groups(1.0), max_groups(1.0, narrowest=16)   # resnet20: 16
    (16, 64, 16)
    """
    return max(1, math.floor(narrowest * width + 1e-9))

