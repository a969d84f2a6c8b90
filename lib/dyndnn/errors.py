"""The few errors dyndnn raises on bad input; each carries what was wrong and how to fix it."""


class DyndnnError(Exception):
    """Base class: bad input that the user can fix."""


class ConfigError(DyndnnError, ValueError):
    """A configuration value is unknown, of the wrong type or impossible."""


class DatasetError(DyndnnError):
    """A data set is missing, truncated or corrupt."""


class CheckpointError(DyndnnError):
    """A checkpoint is missing, corrupt or does not fit the model."""


class NotebookError(DyndnnError):
    """A notebook of the pipeline failed; names the notebook, the cell and the error."""


class DiskFullError(DyndnnError):
    """A file could not be written: its file system is full (or the user's quota spent)."""


class RunFolderError(DyndnnError):
    """A run folder cannot be used: busy, foreign, unwritable, or its record disagrees."""


class StageError(DyndnnError):
    """A stage run outside Jupyter failed for a reason other than bad input (exit 1)."""


class RunInterrupted(Exception):  # noqa: N818 (it is not an error: the user asked for it)
    """The user interrupted a run (Ctrl-C); the manifest records it as ``interrupted``."""


class PublishError(DyndnnError):
    """A run folder cannot be published as it is: unfinished, contradictory or too large."""
