"""Remake the embedded WordNet supersense subset: up to 400 noun synsets per class.

Run from the repository root with Debian's `wordnet-base` installed
(`sudo apt-get install wordnet-base`, which holds /usr/share/wordnet/data.noun):

    .venv/bin/python data/wordnet-supersense-mini/make_subset.py

The synsets are a seeded draw of up to 400 per lexicographer file (all of a class that has
fewer), written sorted by offset as `glosses.tsv.gz` (offset, lex_filenum, raw gloss; gzip
with mtime 0, so the bytes are reproducible). The WordNet 3.0 licence is copied into
`LICENSE` from Debian's copyright file, as the licence asks. It prints the SHA-256 of the
uncompressed file, which dyndnn.data.text.WORDNET_MINI_SHA256 pins, and the class counts.
"""

import gzip
import hashlib
from pathlib import Path

import numpy as np

from dyndnn.data.text import FIRST_LEX_FILE, TSV_HEADER, locate_text, read_data_noun

SEED = 2019  # as the Fashion-MNIST subset; any fixed value makes the subset reproducible
PER_CLASS = 400
HERE = Path(__file__).resolve().parent
COPYRIGHT = Path("/usr/share/doc/wordnet-base/copyright")


def licence_text(copyright_file: Path) -> str:
    """The `License: WordNet3.0` paragraph of a Debian copyright file, un-indented."""
    lines = copyright_file.read_text().splitlines()
    start = lines.index("License: WordNet3.0") + 1
    body = []
    for line in lines[start:]:
        if not line.startswith(" "):  # the next paragraph
            break
        body.append("" if line == " ." else line[1:])  # DEP-5: " ." is an empty line
    return "\n".join(body).rstrip() + "\n"


def main() -> None:
    records = read_data_noun(locate_text("wordnet-supersense"))
    labels = np.array([r[1] for r in records])
    rng = np.random.default_rng(SEED)
    picks = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        picks.append(rng.choice(members, min(PER_CLASS, len(members)), replace=False))
    chosen = sorted((records[i] for i in np.concatenate(picks)), key=lambda r: r[0])
    rows = [f"{o:08d}\t{lab + FIRST_LEX_FILE:02d}\t{g}" for o, lab, g in chosen]
    data = "\n".join([TSV_HEADER, *rows, ""]).encode("utf-8")
    (HERE / "glosses.tsv.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    (HERE / "LICENSE").write_text(licence_text(COPYRIGHT))
    counts = np.bincount(labels[np.concatenate(picks)])
    print(f'WORDNET_MINI_SHA256 = "{hashlib.sha256(data).hexdigest()}"')
    print(f"{len(rows)} synsets; per class min {counts.min()}, max {counts.max()}: "
          f"{counts.tolist()}")


if __name__ == "__main__":
    main()
