"""Reading a config: YAML (strictly), ``key=value`` overrides, flat papermill parameters."""

from __future__ import annotations

import math
import re
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from dyndnn.config.sections import Config
from dyndnn.errors import ConfigError


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
            raw = parse_yaml(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not text (byte {exc.start} is not UTF-8): "
                              "give a YAML file, e.g. one of configs/") from exc
        except PermissionError as exc:
            raise ConfigError(f"config file {path} cannot be read: permission denied") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        except ConfigError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(
                f"config file {path} must hold a mapping of sections (run:, data:, model:, "
                f"...); it holds a {type(raw).__name__}")
    return config_from_dict(apply_overrides(raw, overrides or []))


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
