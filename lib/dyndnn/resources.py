"""Where the workbook's own files are: notebooks, configs and the embedded data set.

An installed wheel carries them inside the package (``dyndnn/notebooks``, ``dyndnn/configs``,
``dyndnn/datasets``); a source checkout (editable install, or ``lib/`` on the path) has them at
the top of the repository. Nothing else in the library finds them by walking up from a file.

>>> resource_dir("notebooks").joinpath("01_train.ipynb").is_file()
True
>>> find_config("quick").name
'quick.yaml'
"""

from __future__ import annotations

from pathlib import Path

from dyndnn.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parents[1]  # the repository, when running from a checkout
# resource -> its folder in a wheel ("data" would shadow the module dyndnn.data)
RESOURCES = {"notebooks": "notebooks", "configs": "configs", "data": "datasets"}


def resource_dir(name: str) -> Path:
    """The folder of resource ``name`` (one of ``RESOURCES``): packaged, else the checkout's."""
    if name not in RESOURCES:
        raise ValueError(f"unknown resource {name!r}; known: {', '.join(RESOURCES)}")
    packaged = PACKAGE_DIR / RESOURCES[name]
    return packaged if packaged.is_dir() else SOURCE_ROOT / name


def find_config(name: str | Path) -> Path:
    """A config file: ``name`` as a path if it exists, else a shipped config of that name.

    ``configs/quick.yaml``, ``quick.yaml`` and ``quick`` all find the shipped quick config
    from any folder; a path that exists always wins.
    """
    path = Path(name)
    if path.is_file():
        return path
    shipped = resource_dir("configs")
    candidate = shipped / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in shipped.glob("*.yaml"))
    raise ConfigError(f"config file {name} does not exist (not as a path from "
                      f"{Path.cwd()}, nor among the shipped configs: {', '.join(known)})")


def shipped_config_name(path: str | Path | None) -> str | None:
    """The name a shipped config is given on the command line; None for any other file.

    Asked when a run is recorded: the answer depends on where this checkout is, so a record
    keeps the name rather than a reader asking again from another checkout.

    >>> shipped_config_name(find_config("paper"))
    'paper'
    >>> shipped_config_name("/home/me/configs/paper.yaml") is None
    True
    """
    if path is None:
        return None
    shipped = resource_dir("configs").resolve()
    return Path(path).stem if Path(path).resolve().parent == shipped else None
