"""The run folder, the unit of record: its paths, lock, atomic writes, manifest, checkpoints.

``layout`` (``RunLayout``: every path of a run folder), ``runlock`` (one writer at a time),
``atomic`` (whole files or nothing), ``manifest`` (what, where and how a run was made),
``checkpoint`` (models saved and loaded with ``weights_only=True``), ``runs`` (``open_run``:
a command's config checked, its folder locked and recorded). Nothing here reads the tables a
run holds (``dyndnn.analysis``) or publishes it (``dyndnn.publish``).
"""

from dyndnn.record.layout import RunLayout, resolve_run_dir, run_folders

__all__ = ["RunLayout", "resolve_run_dir", "run_folders"]
