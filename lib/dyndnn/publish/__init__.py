"""A finished run folder made a reference run: tables, figures, record and ``RESULTS.md``.

``reference_run`` (``publish``, ``verify_publication``, ``refresh_results``: what is copied,
what is refused), ``results_md`` (``RESULTS.md`` written from the record alone).
"""

from dyndnn.publish.reference_run import (
    Publication,
    is_publication,
    publish,
    refresh_results,
    verify_publication,
)

__all__ = ["Publication", "is_publication", "publish", "refresh_results", "verify_publication"]
