"""A network declared once, as data: the layers every model family is built from.

An architecture is a list of layers at width 1.0 (``model.width`` scales every channel count);
the classifier (a linear layer to the data set's classes) is appended by the families. Kinds:

- ``conv``: a convolution, its BatchNorm and a ReLU (``{channels, kernel: 3, stride: 1,
  relu: true}``; ``conv: 64`` is short for ``{channels: 64}``). Every convolution here carries
  its BatchNorm: deployment folds the pair into one convolution.
- ``depthwise_separable``: a 3x3 depthwise conv + BN + ReLU, then a 1x1 conv + BN + ReLU
  (MobileNet's block; ``{channels, stride: 1}``); ``depthwise`` alone: ``{kernel: 3,
  stride: 1, relu: true}``, one filter per channel it is given.
- ``residual``: basic blocks of He et al. (two 3x3 conv + BN, the shortcut added before the
  last ReLU; a 1x1 conv + BN shortcut where the stride or the channels change;
  ``{channels, stride: 1, repeat: 1}``, the stride on the first block only).
- ``maxpool`` (``{size: 2}``), ``avgpool: global`` (global average pooling, then flatten),
  ``flatten``, ``linear`` (a hidden fully connected layer + ReLU, dropout after it).

>>> arch = architecture("resnet20")
>>> arch.name, len(arch.layers), arch.narrowest_channels()
('resnet20', 11, 16)
>>> parse({"name": "tiny", "layers": [{"conv": 8}, {"maxpool": 2}, {"linear": 32}]}).layers
(Conv(channels=8, kernel=3, stride=1, relu=True), MaxPool(size=2), Flatten(), Linear(features=32))

A user's own network is a YAML file with the same keys (``model.architecture: path/net.yaml``);
``load`` reads and checks it. This module imports no torch: configs validate with it alone.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from dyndnn.errors import ConfigError

# Bounds on a spec, checked before anything is built: a typo of a few zeros must not fill the
# disk or the memory. Far above any published CNN (its widest layers have a few thousand
# channels) and within what oneDNN and onnxruntime index with 32-bit integers.
MAX_SETTING = {"channels": 2**16, "features": 2**16, "kernel": 31, "stride": 16, "size": 16,
               "repeat": 100}
MAX_LAYERS = 1000
MAX_PARAMETERS = 2**30  # weights of the convolutions and hidden layers at width 1 (4 GiB fp32)


@dataclass(frozen=True)
class Conv:
    """A convolution + BatchNorm (+ ReLU); ``depthwise``: one filter per input channel."""

    channels: int
    kernel: int = 3
    stride: int = 1
    relu: bool = True
    depthwise: bool = False

    def __repr__(self) -> str:  # the doctest above reads better without the default flag
        extra = ", depthwise=True" if self.depthwise else ""
        return (f"Conv(channels={self.channels}, kernel={self.kernel}, stride={self.stride}, "
                f"relu={self.relu}{extra})")


@dataclass(frozen=True)
class MaxPool:
    """Max pooling over ``size`` x ``size`` windows, stride ``size``."""

    size: int = 2


@dataclass(frozen=True)
class GlobalAvgPool:
    """Average over the whole feature map, then flatten: (N, C, H, W) -> (N, C)."""


@dataclass(frozen=True)
class Flatten:
    """(N, C, H, W) -> (N, C*H*W), channel-major."""


@dataclass(frozen=True)
class Linear:
    """A hidden fully connected layer + ReLU (the model's dropout after it)."""

    features: int


@dataclass(frozen=True)
class Residual:
    """A basic block: relu(body(x) + shortcut(x)); ``shortcut`` empty means identity."""

    body: tuple[Conv, ...]
    shortcut: tuple[Conv, ...] = ()


Layer = Conv | MaxPool | GlobalAvgPool | Flatten | Linear | Residual


@dataclass(frozen=True)
class Architecture:
    """A named list of layers (width 1.0, no classifier)."""

    name: str
    layers: tuple[Layer, ...]

    def convs(self) -> list[Conv]:
        """Every convolution, shortcuts included, in order."""
        out: list[Conv] = []
        for layer in self.layers:
            if isinstance(layer, Conv):
                out.append(layer)
            elif isinstance(layer, Residual):
                out += [*layer.body, *layer.shortcut]
        return out

    def narrowest_channels(self) -> int:
        """Channels of the narrowest conv or hidden layer at width 1 (bounds the groups)."""
        widths = [c.channels for c in self.convs() if not c.depthwise]
        widths += [layer.features for layer in self.layers if isinstance(layer, Linear)]
        return min(widths)

    def to_json(self) -> str:
        """The spec as canonical JSON: stored in checkpoints, so a run needs no YAML file."""
        return json.dumps({"name": self.name, "layers": [_unparse(layer) for layer in
                                                          self.layers]}, sort_keys=True)


def _unparse(layer: Layer) -> dict[str, Any]:
    kind = {Conv: "conv", MaxPool: "maxpool", GlobalAvgPool: "avgpool", Flatten: "flatten",
            Linear: "linear", Residual: "block"}[type(layer)]
    if isinstance(layer, Residual):
        return {"block": {"body": [asdict(c) for c in layer.body],
                          "shortcut": [asdict(c) for c in layer.shortcut]}}
    if isinstance(layer, Conv) and layer.depthwise:
        return {"depthwise": {"kernel": layer.kernel, "stride": layer.stride, "relu": layer.relu}}
    fields = asdict(layer)
    fields.pop("depthwise", None)
    return {kind: fields if kind != "avgpool" else "global"}


class ArchitectureError(ConfigError):
    """An architecture spec that cannot be built; the message names the layer and the fix."""


def _fields(kind: str, value: Any, allowed: dict[str, Any], short: str | None) -> dict[str, Any]:
    """``value`` as a dict of ``allowed`` keys (defaults filled); a scalar means ``short``."""
    if value is None or value == "global":
        value = {}
    elif not isinstance(value, dict):
        if short is None:
            raise ArchitectureError(f"layer {kind}: expected a mapping, got {value!r}")
        value = {short: value}
    unknown = set(value) - set(allowed)
    if unknown:
        raise ArchitectureError(f"layer {kind}: unknown keys {sorted(unknown)}; allowed: "
                                f"{sorted(allowed)}")
    out = {**allowed, **value}
    missing = [k for k, v in out.items() if v is _REQUIRED]
    if missing:
        raise ArchitectureError(f"layer {kind}: {', '.join(missing)} is required")
    for key, v in out.items():
        if key == "relu":
            if not isinstance(v, bool):
                raise ArchitectureError(f"layer {kind}: relu must be true or false; got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ArchitectureError(f"layer {kind}: {key} must be a positive integer; got {v!r}")
        elif v > MAX_SETTING.get(key, v):
            raise ArchitectureError(f"layer {kind}: {key} {v:,} is over the {MAX_SETTING[key]:,} "
                                    "a layer may have here; a typo of a few zeros?")
    return out


_CONV_KEYS = {"channels": None, "kernel": 3, "stride": 1, "relu": True}


def _block_convs(value: Any, part: str) -> tuple[Conv, ...]:
    """A ``block:`` layer's body or shortcut (the canonical form ``to_json`` writes)."""
    convs = value.get(part, [] if part == "shortcut" else None) if isinstance(value, dict) \
        else None
    if not isinstance(convs, list) or (part == "body" and not convs):
        raise ArchitectureError(f"layer block: {part} must be a list of convs "
                                "({channels, kernel, stride, relu, depthwise}); write "
                                "residual: {channels, stride, repeat} instead")
    out = []
    for conv in convs:
        fields = dict(conv) if isinstance(conv, dict) else conv
        depthwise = fields.pop("depthwise", False) if isinstance(fields, dict) else False
        if not isinstance(depthwise, bool):
            raise ArchitectureError(f"layer block: depthwise must be true or false; got "
                                    f"{depthwise!r}")
        out.append(Conv(**_fields("block", fields, {**_CONV_KEYS, "channels": _REQUIRED},
                                  None), depthwise=depthwise))
    return tuple(out)


_REQUIRED = object()


def _expand(item: Any, previous_channels: int | None) -> list[Layer]:
    """One YAML list item as layers (``residual: {repeat: n}`` gives n blocks)."""
    if isinstance(item, str):
        item = {item: None}
    if not isinstance(item, dict) or len(item) != 1:
        raise ArchitectureError(f"each layer is a mapping of one kind to its settings; got "
                                f"{item!r}")
    (kind, value), = item.items()
    if kind == "conv":
        return [Conv(**_fields(kind, value, {"channels": _REQUIRED, "kernel": 3, "stride": 1,
                                             "relu": True}, "channels"))]
    if kind == "depthwise":  # one depthwise conv + BN (+ ReLU) on the channels it is given
        f = _fields(kind, value, {"kernel": 3, "stride": 1, "relu": True}, "kernel")
        if previous_channels is None:
            raise ArchitectureError("depthwise cannot be the first layer; start with conv")
        return [Conv(previous_channels, f["kernel"], f["stride"], f["relu"], depthwise=True)]
    if kind == "depthwise_separable":
        f = _fields(kind, value, {"channels": _REQUIRED, "stride": 1}, "channels")
        if previous_channels is None:
            raise ArchitectureError("depthwise_separable cannot be the first layer: its "
                                    "depthwise conv needs channels to work on; start with conv")
        return [Conv(previous_channels, 3, f["stride"], depthwise=True), Conv(f["channels"], 1)]
    if kind == "residual":
        f = _fields(kind, value, {"channels": _REQUIRED, "stride": 1, "repeat": 1}, "channels")
        if previous_channels is None:
            raise ArchitectureError("residual cannot be the first layer; start with conv")
        blocks, inputs = [], previous_channels
        for i in range(f["repeat"]):
            stride = f["stride"] if i == 0 else 1
            c = f["channels"]
            shortcut = (Conv(c, 1, stride, relu=False),) if stride != 1 or inputs != c else ()
            blocks.append(Residual((Conv(c, 3, stride), Conv(c, 3, 1, relu=False)), shortcut))
            inputs = c
        return blocks
    if kind == "block":  # the canonical form to_json writes
        if not isinstance(value, dict) or set(value) - {"body", "shortcut"}:
            raise ArchitectureError(f"layer block: a mapping of body: and shortcut:; got "
                                    f"{value!r}")
        return [Residual(_block_convs(value, "body"), _block_convs(value, "shortcut"))]
    if kind == "maxpool":
        return [MaxPool(**_fields(kind, value, {"size": 2}, "size"))]
    if kind == "avgpool":
        if value not in (None, "global", {}):
            raise ArchitectureError(f"avgpool: only global average pooling is supported; got "
                                    f"{value!r} (write avgpool: global)")
        return [GlobalAvgPool()]
    if kind == "flatten":
        return [Flatten()]
    if kind == "linear":
        return [Linear(**_fields(kind, value, {"features": _REQUIRED}, "features"))]
    raise ArchitectureError(f"unknown layer kind {kind!r}; known: conv, depthwise, "
                            "depthwise_separable, residual, maxpool, avgpool, flatten, linear")


def parse(spec: dict[str, Any]) -> Architecture:
    """An ``Architecture`` from its dict form (a YAML file's contents); checked."""
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list) \
            or not spec["layers"]:
        raise ArchitectureError("an architecture is a mapping with name: and a non-empty "
                                "layers: list")
    unknown = sorted(map(str, set(spec) - {"name", "layers"}))
    if unknown:
        raise ArchitectureError(f"unknown keys {unknown} in the architecture; it has name: and "
                                "layers: only")
    if len(spec["layers"]) > MAX_LAYERS:
        raise ArchitectureError(f"{len(spec['layers']):,} layers, over the {MAX_LAYERS:,} an "
                                "architecture may have here")
    layers: list[Layer] = []
    channels: int | None = None
    flat = False
    for item in spec["layers"]:
        for layer in _expand(item, channels):
            if isinstance(layer, Linear) and not flat:
                layers.append(Flatten())  # a linear layer reads a flattened feature map
                flat = True
            if flat and isinstance(layer, Conv | Residual | MaxPool | GlobalAvgPool):
                raise ArchitectureError(f"{type(layer).__name__} after the feature map was "
                                        "flattened; put convolutions and pooling first")
            layers.append(layer)
            flat = flat or isinstance(layer, Flatten | GlobalAvgPool)
            if isinstance(layer, Conv):
                channels = layer.channels
            elif isinstance(layer, Residual):
                channels = layer.body[-1].channels
    if not any(isinstance(layer, Conv | Residual) for layer in layers):
        raise ArchitectureError("an architecture needs at least one conv layer")
    if not layers or not isinstance(layers[0], Conv) or layers[0].depthwise:
        raise ArchitectureError("the first layer must be a conv (it reads the whole image)")
    arch = Architecture(str(spec.get("name", "custom")), tuple(layers))
    weights = _weight_count(arch)
    if weights > MAX_PARAMETERS:
        raise ArchitectureError(f"{arch.name} has {weights:,} weights in its convolutions and "
                                f"hidden layers at width 1, over the {MAX_PARAMETERS:,} allowed "
                                "here (4 GiB as fp32); narrow its layers")
    return arch


def _weight_count(arch: Architecture) -> int:
    """Weights of the convolutions and of the hidden layers after the first (width 1).

    The first hidden layer's inputs depend on the image size, not known here; the families
    bound what they build (``dyndnn.models.sizing``).
    """
    count, channels, features = 0, 3, None
    for layer in arch.layers:
        convs = [layer] if isinstance(layer, Conv) else (
            [*layer.body, *layer.shortcut] if isinstance(layer, Residual) else [])
        for conv in convs:
            reads = 1 if conv.depthwise else channels
            count += conv.channels * reads * conv.kernel ** 2
            if conv in (layer.body if isinstance(layer, Residual) else [layer]):
                channels = conv.channels
        if isinstance(layer, Linear):
            count += 0 if features is None else features * layer.features
            features = layer.features
    return count


def _stage(channels: int, stride: int, repeat: int) -> dict[str, Any]:
    return {"residual": {"channels": channels, "stride": stride, "repeat": repeat}}


BUILTIN: dict[str, dict[str, Any]] = {
    # AlexNet for CIFAR-10 (Xun et al. 2019): 5 conv + 3 FC, about 0.23 GMAC at 32x32
    "alexnet": {"name": "alexnet", "layers": [
        {"conv": {"channels": 64, "kernel": 5}}, {"maxpool": 2},
        {"conv": {"channels": 192, "kernel": 5}}, {"maxpool": 2},
        {"conv": 384}, {"conv": 256}, {"conv": 256}, {"maxpool": 2},
        {"linear": 1024}, {"linear": 512}]},
    # the CIFAR ResNet of He et al. 2016 (6n+2 layers, n=3), 1x1 projection shortcuts
    "resnet20": {"name": "resnet20", "layers": [
        {"conv": 16}, _stage(16, 1, 3), _stage(32, 2, 3), _stage(64, 2, 3),
        {"avgpool": "global"}]},
    # ResNet-18 as adapted to CIFAR (a 3x3 stem, no stem pooling)
    "resnet18": {"name": "resnet18", "layers": [
        {"conv": 64}, _stage(64, 1, 2), _stage(128, 2, 2), _stage(256, 2, 2),
        _stage(512, 2, 2), {"avgpool": "global"}]},
    # MobileNet (v1) shortened for 28-32 px images: depthwise-separable blocks
    "mobilenet": {"name": "mobilenet", "layers": [
        {"conv": 32}, {"depthwise_separable": 64},
        {"depthwise_separable": {"channels": 128, "stride": 2}}, {"depthwise_separable": 128},
        {"depthwise_separable": {"channels": 256, "stride": 2}}, {"depthwise_separable": 256},
        {"depthwise_separable": {"channels": 512, "stride": 2}}, {"depthwise_separable": 512},
        {"avgpool": "global"}]},
}


def load(path: str | Path) -> Architecture:
    """A user's architecture from a YAML file; a missing or malformed file is named."""
    path = Path(path)
    if not path.is_file():
        raise ArchitectureError(f"architecture file {path} does not exist; give one of "
                                f"{', '.join(BUILTIN)} or a YAML file (see the README)")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ArchitectureError(f"architecture file {path} is not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise ArchitectureError(f"architecture file {path} must hold a mapping with layers:")
    try:
        return parse({"name": path.stem, **spec})
    except ArchitectureError as exc:
        raise ArchitectureError(f"architecture file {path}: {exc}") from exc


@functools.lru_cache(maxsize=64)  # sizing asks thousands of times; an Architecture is frozen
def architecture(name: str) -> Architecture:
    """A built-in architecture by name, a YAML file's, or a spec's JSON (as in checkpoints)."""
    if name in BUILTIN:
        return parse(BUILTIN[name])
    if name.lstrip().startswith("{"):
        try:
            spec = json.loads(name)
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"an architecture given as JSON must be valid JSON: {exc}"
                                    ) from exc
        return parse(spec)
    if name.endswith((".yaml", ".yml")):
        return load(name)
    raise ArchitectureError(f"unknown architecture {name!r}; built in: {', '.join(BUILTIN)}, "
                            "or a path to a .yaml file")
