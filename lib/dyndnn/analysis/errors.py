"""The analysis' error: a run folder or table that cannot be analysed."""

from __future__ import annotations

from dyndnn.errors import DyndnnError


class AnalysisError(DyndnnError):
    """A run folder or table cannot be analysed; says what is missing and where it comes from."""
