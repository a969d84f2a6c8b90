"""Configurations 1..G with one active: the switching both a model and a server offer.

Torch-free, so ``dyndnn.serve.Server`` (numpy and onnxruntime only) shares it with
``dyndnn.models.DynamicModel``. A subclass sets ``groups`` and ``_active``; one that must do
more on a switch (the server picks a session) extends ``set_active_groups``.

>>> class Three(Switchable):
...     groups, _active = 3, 3
>>> s = Three()
>>> with s.active_groups(1):
...     s.num_active_groups
1
>>> s.num_active_groups
3
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class Switchable:
    """``set_active_groups(k)``, ``active_groups(k)`` and ``num_active_groups``."""

    groups: int
    _active: int

    @property
    def num_active_groups(self) -> int:
        """The active configuration (1..G)."""
        return self._active

    def set_active_groups(self, k: int) -> None:
        """Run configuration k from now on."""
        if not 1 <= k <= self.groups:
            raise ValueError(f"active groups must be between 1 and {self.groups}; got {k}")
        self._active = k

    @contextlib.contextmanager
    def active_groups(self, k: int) -> Iterator[Any]:
        """Run configuration k inside the ``with`` block, then switch back."""
        previous = self._active
        self.set_active_groups(k)
        try:
            yield self
        finally:
            self.set_active_groups(previous)
