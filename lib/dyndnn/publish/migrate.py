"""Publications made before their paths were made portable, rewritten in place.

``make_portable(folder, run_root)`` keeps every number: the tables, figures and checkpoint keep
their bytes and hashes; only the record (manifest, config, summary, ``RESULTS.md``) changes.
"""

from __future__ import annotations

import json
from pathlib import Path

from dyndnn.errors import PublishError
from dyndnn.publish.portable import portable_copies, source_of
from dyndnn.publish.reference_run import refresh_results, verify_publication
from dyndnn.record.manifest import sha256_file, write_manifest


def make_portable(folder: Path, run_root: Path) -> list[str]:
    """Rewrite a publication made before its paths were made portable; the files changed.

    ``run_root`` is the absolute run folder it was published from (``published.from`` then).
    Its files' hashes must hold first; only the record changes (manifest, config,
    summary, ``RESULTS.md``): tables, figures and checkpoint keep their bytes and hashes.
    """
    problems = [p for p in verify_publication(folder) if not p.startswith("RESULTS.md")]
    if problems:  # RESULTS.md itself is written again below
        raise PublishError(f"{folder} is not as published ({'; '.join(problems)})")
    manifest = json.loads((folder / "manifest.json").read_text())
    published = manifest.pop("published")
    record = portable_copies(manifest, run_root, folder)
    hashes = published["files_sha256"]
    changed = [name for name in ("config.yaml", "summary.json") if name in hashes
               and sha256_file(folder / name) != hashes[name]]
    hashes.update({name: sha256_file(folder / name) for name in changed})
    published.update({"from": run_root.name, "source": source_of(run_root, manifest)})
    write_manifest(folder, {**record, "published": published})
    refresh_results(folder)
    return [*changed, "manifest.json", "RESULTS.md"]
