"""Run configuration: one frozen dataclass per section, validated once, before any work starts.

A config file is YAML with the sections below; every key is optional and defaults as shown.
Keys are unique across sections, so the flat form (``groups=2``) names one value, which is
also how the notebooks receive them as papermill parameters.

>>> cfg = load_config("configs/quick.yaml", overrides=["groups=2", "train.epochs_per_stage=1"])
>>> cfg.model.groups
2
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from dyndnn.errors import ConfigError

# The names validated here live here; the modules that implement them check they agree
# (tests/test_config.py), so reading a config never imports torch, the board code or RCT.
DATASETS = ("fashion-mnist-mini", "fashion-mnist", "cifar10")
# the model families (dyndnn.models.FAMILIES): the group model and the three baselines
MODELS = ("group-alexnet", "independent", "tann", "slimmable")
JOINTLY_TRAINED = ("slimmable",)  # families trained in one joint stage, not G
# the narrowest layer of AlexNet (its first conv, dyndnn.models.group.ALEXNET_CHANNELS): at
# width w it has 64 w channels over all groups, so G may not exceed that (one channel a group)
NARROWEST_LAYER_CHANNELS = 64
METERS = ("auto", "rapl", "ina231", "ina3221", "nvml", "modelled")  # dyndnn.board.auto
ROUNDINGS = ("nearest", "stochastic")  # dyndnn.rct.quant
RCT_BITS = (2, 16)  # the bitwidths dyndnn.rct.quant can hold (MIN_BITS, MAX_BITS)
# the flat keys that change trained weights: a run folder resumes only when these agree
TRAINING_KEYS = ("dataset", "train_limit", "batch_size", "augment", "groups", "width",
                 "dropout", "combine", "baseline_budget", "epochs_per_stage", "optimizer", "lr",
                 "momentum", "weight_decay", "schedule", "label_smoothing", "seed")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant", "onecycle")
# inference engines the profiler measures: PyTorch eager (training side), onnxruntime (boards)
BACKENDS = ("eager", "onnxruntime")


@dataclass(frozen=True)
class RunSection:
    """What runs: the seed and the notebooks of the chain, in order."""

    seed: int = 0
    notebooks: tuple[str, ...] = ("01_train", "02_evaluate")
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default (all cores)
    cell_timeout_s: int = 0  # a notebook cell running longer fails the chain (0 = no limit)

    def __post_init__(self) -> None:
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
    augment: bool = True  # random crop with padding (+ flip where the data set suits it)

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class ModelSection:
    """The dynamic network: G groups that split AlexNet's channels scaled by ``width``."""

    groups: int = 4
    width: float = 0.25  # fraction of AlexNet's channels, over all groups together
    active_groups: int = 0  # the configuration to deploy/export; 0 = all groups
    dropout: float = 0.0  # before each hidden FC layer
    combine: str = "sum"  # groups' logits: sum (residual stages) | mean (independent stages)
    models: tuple[str, ...] = ("group-alexnet",)  # families to train, evaluate and profile
    baseline_budget: str = "macs"  # a baseline's full size: the group model's macs | width

    def __post_init__(self) -> None:
        _check(set(self.models) <= set(MODELS),
               f"model.models must name families among {', '.join(MODELS)}", self.models)
        _check("group-alexnet" in self.models and len(set(self.models)) == len(self.models),
               "model.models must include group-alexnet (the baselines are compared with it) "
               "and name each family once", self.models)
        _check(self.baseline_budget in ("macs", "width"),
               "model.baseline_budget must be macs (the group model's full MACs) or width "
               "(its layer widths)", self.baseline_budget)
        _check(self.groups >= 1, "model.groups must be >= 1", self.groups)
        _check(self.width > 0, "model.width must be > 0", self.width)
        most = max_groups(self.width)
        _check(self.groups <= most,
               f"model.groups must be at most {most} at width {self.width}: the narrowest "
               f"layer has {NARROWEST_LAYER_CHANNELS} x width channels and a group needs at "
               "least one; lower groups or raise width", self.groups)
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
    optimizer: str = "sgd"
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # per stage: cosine decay, constant, or one-cycle
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        _check(self.epochs_per_stage >= 0, "train.epochs_per_stage must be >= 0",
               self.epochs_per_stage)
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
    backends: tuple[str, ...] = BACKENDS  # engines measured: eager | onnxruntime

    def __post_init__(self) -> None:
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
    bits_max: int = 16
    t_min: float = 0.01  # Gavg below: a layer gains a bit
    t_max: float = 1.0  # Gavg above: a layer loses a bit
    gavg_interval: int = 50  # steps between bitwidth checks
    rounding: str = "stochastic"  # nearest | stochastic
    act_bits: int = 8
    err_bits: int = 8
    tile_rows: int = 32  # output rows dequantised at a time (0 = whole layer)

    def __post_init__(self) -> None:
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
        _check(self.tile_rows >= 0, "rct.tile_rows must be >= 0 (0 = whole layer)",
               self.tile_rows)


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


def max_groups(width: float) -> int:
    """The most groups at ``width`` that leave every group at least one channel.

    >>> max_groups(0.25), max_groups(1.0)
    (16, 64)
    """
    return max(1, math.floor(NARROWEST_LAYER_CHANNELS * width + 1e-9))


def _sections() -> dict[str, type]:
    return typing.get_type_hints(Config)


def _key_index() -> dict[str, str]:
    """Flat key -> section name; keys are unique across sections by design."""
    index: dict[str, str] = {}
    for section, cls in _sections().items():
        for f in fields(cls):
            assert f.name not in index, f"config key {f.name} appears in two sections"
            index[f.name] = section
    return index


# a decimal number in any notation YAML 1.2 allows, e.g. 1e-3, .5, -2E+4
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(section: str, key: str, value: Any) -> Any:
    """Check ``value`` against the field's type; ints are accepted where floats are expected."""
    where = f"{section}.{key}"
    hint = typing.get_type_hints(_sections()[section])[key]
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        item = typing.get_args(hint)[0]
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value)
        if not ok:
            raise ConfigError(f"{where} must be a list of {item.__name__} values; got {value!r}")
        return tuple(value)
    if hint is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # "1e-3": YAML 1.1 reads it as a string, a float is meant
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number; got {value!r}")
    if hint in (int, float, str, bool):
        # bool is a subclass of int in Python: `groups: true` must not pass as 1
        if not isinstance(value, hint) or (hint is not bool and isinstance(value, bool)):
            raise ConfigError(
                f"{where} must be of type {hint.__name__}; got {value!r} "
                f"({type(value).__name__})")
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")  # pragma: no cover


def config_from_dict(raw: dict[str, Any] | None) -> Config:
    """Validate a nested dict (as read from YAML) into a ``Config``.

    Unknown sections or keys, wrong types and impossible values raise ``ConfigError``.
    """
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections; got {type(raw).__name__}")
    sections = _sections()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(
            f"unknown config section(s) {unknown}; valid sections: {sorted(sections)}")
    built = {}
    for name, cls in sections.items():
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"config section {name!r} must be a mapping; got {values!r}")
        valid = {f.name: f for f in fields(cls)}
        bad = sorted(set(values) - set(valid))
        if bad:
            raise ConfigError(
                f"unknown key(s) {bad} in section {name!r}; valid keys: {sorted(valid)}")
        built[name] = cls(**{k: _coerce(name, k, v) for k, v in values.items()})
    return Config(**built)


class _Loader(yaml.SafeLoader):
    """YAML as a config needs it: floats in YAML 1.2 form, and no key given twice."""


def _unique_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in first_line:
            raise ConfigError(
                f"key {key!r} is given twice (lines {first_line[key]} and {line}); YAML would "
                "silently keep the last one: delete one of them")
        first_line[key] = line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
# YAML 1.1 (PyYAML's) reads 1e-3 as a string: it wants a dot in the mantissa and a sign in
# the exponent. YAML 1.2 and every user read it as a number.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)[eE][-+]?\d+$"),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """Parse config YAML: ``1e-3`` is a float, a key given twice is a ``ConfigError``.

    >>> parse_yaml("lr: 1e-3")
    {'lr': 0.001}
    """
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key=value`` or ``section.key=value`` strings applied.

    Values are parsed as YAML scalars (``3`` is an int, ``0.1`` a float, ``[a, b]`` a list).
    """
    merged = {k: dict(v or {}) for k, v in (raw or {}).items() if isinstance(v, dict)}
    merged.update({k: v for k, v in (raw or {}).items() if not isinstance(v, dict)})
    index = _key_index()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. groups=2)")
        key, text = item.split("=", 1)
        key = key.strip()
        section, _, name = key.rpartition(".")
        if not section:
            if name not in index:
                raise ConfigError(
                    f"unknown config key {name!r} in override {item!r}; "
                    f"valid keys: {sorted(index)}")
            section = index[name]
        try:
            value = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
        merged.setdefault(section, {})[name] = value
    return merged


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (see configs/ for examples)")
        try:
            raw = parse_yaml(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        except ConfigError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(
                f"config file {path} must hold a mapping of sections (run:, data:, model:, "
                f"...); it holds a {type(raw).__name__}")
    return config_from_dict(apply_overrides(raw, overrides or []))


def training_differences(recorded: dict[str, Any], cfg: Config) -> dict[str, tuple]:
    """Training keys whose value in ``cfg`` differs from a run's ``recorded`` config.

    ``recorded`` is a run folder's ``config.yaml`` (nested) or its flat form; returns
    ``{key: (recorded value, new value)}``.

    >>> training_differences(Config().to_dict(), load_config(None, ["lr=0.01", "threads=2"]))
    {'lr': (0.05, 0.01)}
    """
    flat_recorded = {k: v for section in recorded.values() if isinstance(section, dict)
                     for k, v in section.items()} if any(
        isinstance(v, dict) for v in recorded.values()) else dict(recorded)
    new = cfg.flat()
    return {key: (flat_recorded.get(key), new[key]) for key in TRAINING_KEYS
            if _comparable(flat_recorded.get(key)) != _comparable(new[key])}


def _comparable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe_differences(differences: dict[str, tuple]) -> str:
    """``lr 0.05 -> 0.01, seed 0 -> 7``."""
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in differences.items())


def config_from_flat(params: dict[str, Any]) -> Config:
    """Build a ``Config`` from flat papermill parameters.

    Names that are not config keys are ignored (a notebook also holds ``run_dir`` and the like).
    """
    index = _key_index()
    nested: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        if key in index:
            nested.setdefault(index[key], {})[key] = value
    return config_from_dict(nested)
