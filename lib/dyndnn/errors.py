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
