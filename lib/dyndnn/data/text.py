"""Text data sets: WordNet noun definitions labelled with their supersense, as token ids.

Each WordNet 3.0 noun synset is one example: its definition (the gloss without its quoted
examples) is the text, its lexicographer file (``noun.animal``, ``noun.artifact``, ... 26 in
all) the label. Nothing is downloaded: the full set is Debian's ``wordnet-base``, the mini set
a class-balanced subset committed in ``data/wordnet-supersense-mini``.

>>> ds = load_text_dataset("wordnet-supersense-mini")       # up to 400 synsets per class
>>> ds.train_x.shape[1], ds.train_x.dtype, len(ds.spec.classes)
(32, torch.int64, 26)
>>> len(ds.train_y) + len(ds.val_y) + len(ds.test_y)        # 80 / 10 / 10 %, by synset
9634
>>> ds.vocab[:2]                                             # ids 0 and 1
('[PAD]', '[UNK]')
>>> from dyndnn.data import batches
>>> x, y = next(batches(ds, "train", batch_size=64, seed=0))  # token ids, unchanged
>>> x.shape, x.dtype, y.dtype
(torch.Size([64, 32]), torch.int64, torch.int64)

The split is by synset, stratified by class and seeded; the vocabulary is built from the
training split only, so validation and test words never seen in training read ``[UNK]``.
Files are checked before use: a truncated gzip, a wrong checksum or a malformed line raises
``DatasetError`` naming the file (and the line), and a missing set names every place looked.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from dyndnn.data.sets import InMemoryDataset, validation_split
from dyndnn.errors import DatasetError
from dyndnn.resources import resource_dir

# label i is lexicographer file 3 + i (wordnet-base's lexnames(5WN): 03 noun.Tops .. 28 noun.time)
WORDNET_NOUN_CLASSES = tuple(f"noun.{n}" for n in (
    "Tops", "act", "animal", "artifact", "attribute", "body", "cognition", "communication",
    "event", "feeling", "food", "group", "location", "motive", "object", "person",
    "phenomenon", "plant", "possession", "process", "quantity", "relation", "shape", "state",
    "substance", "time"))
FIRST_LEX_FILE = 3
DEBIAN_WORDNET = Path("/usr/share/wordnet")
MINI_FOLDER, MINI_FILE = "wordnet-supersense-mini", "glosses.tsv.gz"
TSV_HEADER = "offset\tlex_filenum\tgloss"
# SHA-256 of the *uncompressed* mini file; made by data/wordnet-supersense-mini/make_subset.py
WORDNET_MINI_SHA256 = "706c0332e4db66ebdaa1a7db4b4a520fc2edca0ac1a9db2a827677ff5b67e40d"
PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1


@dataclass(frozen=True)
class TextSpec:
    """What a text data set is: its classes, tokens per example and how to get it."""

    name: str
    classes: tuple[str, ...]
    seq_len: int = 32  # tokens per example, truncated or padded with [PAD] (id 0)
    fetch_hint: str = ""
    kind: ClassVar[str] = "text"  # dyndnn.data.batches passes token ids through unchanged


TEXT_SPECS = {
    "wordnet-supersense-mini": TextSpec(
        "wordnet-supersense-mini", WORDNET_NOUN_CLASSES, fetch_hint=(
            "it is committed with the repository: `git checkout -- data/wordnet-supersense-mini`"
            ", or remake it with `python data/wordnet-supersense-mini/make_subset.py`")),
    "wordnet-supersense": TextSpec(
        "wordnet-supersense", WORDNET_NOUN_CLASSES, fetch_hint=(
            "`sudo apt-get install wordnet-base` (Debian/Ubuntu), or copy WordNet 3.0's "
            "dict/data.noun to <data root>/wordnet/data.noun")),
}


@dataclass(frozen=True)
class TextDataset:
    """A whole text data set as int64 token ids (N, seq_len) and int64 labels.

    The interface of ``dyndnn.data.InMemoryDataset``, plus ``vocab`` (id -> token) and the
    WordNet offsets of each split's synsets (``*_synsets``, in the order of the rows).
    ``source`` is the file read.
    """

    spec: TextSpec
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str
    val_x: torch.Tensor
    val_y: torch.Tensor
    vocab: tuple[str, ...] = ()
    train_synsets: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))
    val_synsets: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))
    test_synsets: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The (token ids, labels) of ``"train"``, ``"val"`` or ``"test"``."""
        return InMemoryDataset.split(self, split)  # type: ignore[arg-type]  # same errors


Record = tuple[int, int, str]  # (synset offset, label 0..25, raw gloss)


# --- finding and reading ----------------------------------------------------------------------
def candidate_files(name: str, root: str | Path = "data") -> list[Path]:
    """Every file where text data set ``name`` is looked for, in order."""
    root = Path(root)
    if name == "wordnet-supersense-mini":
        return [root / MINI_FOLDER / MINI_FILE, resource_dir("data") / MINI_FOLDER / MINI_FILE]
    if name == "wordnet-supersense":
        return [root / "wordnet" / "data.noun", DEBIAN_WORDNET / "data.noun"]
    raise DatasetError(f"unknown text data set {name!r}; known: {', '.join(TEXT_SPECS)}")


def locate_text(name: str, root: str | Path = "data") -> Path:
    """The file that holds text data set ``name``; a missing one names every place looked."""
    files = candidate_files(name, root)
    found = next((f for f in files if f.is_file()), None)
    if found is None:
        looked = "\n  ".join(str(f.resolve()) for f in files)
        raise DatasetError(f"data set {name!r} not found. Looked for:\n  {looked}\nTo get it: "
                           f"{TEXT_SPECS[name].fetch_hint}.")
    return found


def _decode(path: Path, data: bytes, fix: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is corrupt (not UTF-8: {exc}); {fix}") from exc


def _record(path: Path, lineno: int, offset: str, lex: str, gloss: str, fix: str) -> Record:
    """One checked record; a malformed line names the file, the line and the fix."""
    ok_lex = len(lex) == 2 and lex.isdigit() and 0 <= int(lex) - FIRST_LEX_FILE < len(
        WORDNET_NOUN_CLASSES)
    if not (len(offset) == 8 and offset.isdigit() and ok_lex and gloss.strip()):
        raise DatasetError(f"{path} is corrupt: line {lineno} is malformed (offset {offset!r}, "
                           f"lex_filenum {lex!r}, gloss {gloss[:40]!r}); {fix}")
    return int(offset), int(lex) - FIRST_LEX_FILE, gloss.strip()


def read_data_noun(path: str | Path) -> list[Record]:
    """Read WordNet's ``data.noun``: one record per synset (the licence header skipped)."""
    path, fix = Path(path), "reinstall it: `sudo apt-get install --reinstall wordnet-base`"
    text = _decode(path, path.read_bytes(), fix)
    if not text.endswith("\n"):  # a cut inside the last line could still parse
        raise DatasetError(f"{path} is truncated: its last line has no end; {fix}")
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("  "):  # the licence header
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        if len(fields) < 4 or fields[2] != "n":
            raise DatasetError(f"{path} is corrupt: line {lineno} is malformed (not "
                               f"`offset lex_filenum n ... | gloss`); {fix}")
        records.append(_record(path, lineno, fields[0], fields[1], gloss, fix))
    return records


def read_glosses_tsv(path: str | Path, sha256: str | None = None) -> list[Record]:
    """Read the mini set's ``glosses.tsv.gz``; ``sha256`` (of the uncompressed bytes) is checked."""
    path, fix = Path(path), TEXT_SPECS["wordnet-supersense-mini"].fetch_hint
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DatasetError(f"{path} is truncated or corrupt ({exc}); {fix}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise DatasetError(f"{path} is corrupt: SHA-256 of its content is {digest}, expected "
                           f"{sha256}; {fix}")
    lines = _decode(path, data, fix).splitlines()
    if not lines or lines[0] != TSV_HEADER:
        raise DatasetError(f"{path} is corrupt: line 1 is not the header {TSV_HEADER!r}; {fix}")
    records = []
    for lineno, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        if len(cells) != 3:
            raise DatasetError(f"{path} is corrupt: line {lineno} has {len(cells)} columns, "
                               f"expected 3 ({TSV_HEADER!r}); {fix}")
        records.append(_record(path, lineno, *cells, fix))
    return records


# Examples follow the definition as `; "..."` (rarely `: "..."`); a quote after a word is kept,
# as in `the phrase "make strides"`, so a few glosses keep an unusual example.
_EXAMPLES = re.compile(r'(?:^|[;:])\s*"')


def definition(gloss: str) -> str:
    """The definition of a WordNet gloss: the text before its quoted examples, stripped.

    >>> definition('a young person of either sex; "she writes books for children"  ')
    'a young person of either sex'
    >>> definition('significant progress (especially in the phrase "make strides")')
    'significant progress (especially in the phrase "make strides")'
    """
    return _EXAMPLES.split(gloss, maxsplit=1)[0].strip().rstrip(";:").strip()


# --- tokens ---------------------------------------------------------------------------------
# Hugging Face `tokenizers`: a tested, fast word-level trainer with deterministic ids, no download.
def build_tokenizer(texts: list[str], min_count: int = 2) -> Tokenizer:
    """A word-level tokeniser whose vocabulary is every token seen ``min_count`` times in texts.

    NFKC and lower case, split on whitespace and punctuation; ids by falling count, ties by
    token, after ``[PAD]`` = 0 and ``[UNK]`` = 1.
    """
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=2**31 - 1,  # min_count alone cuts it
                                        min_frequency=min_count, special_tokens=[PAD, UNK])
    tokenizer.train_from_iterator(texts, trainer=trainer)
    assert tokenizer.token_to_id(PAD) == 0 and tokenizer.token_to_id(UNK) == 1
    return tokenizer


def encode(tokenizer: Tokenizer, texts: list[str], seq_len: int) -> torch.Tensor:
    """Token ids (N, seq_len) int64: truncated to ``seq_len``, padded with [PAD] (0)."""
    if not texts:
        return torch.empty(0, seq_len, dtype=torch.int64)
    tokenizer.enable_truncation(max_length=seq_len)
    tokenizer.enable_padding(length=seq_len, pad_id=0, pad_token=PAD)
    return torch.tensor([e.ids for e in tokenizer.encode_batch(texts)], dtype=torch.int64)


# --- loading --------------------------------------------------------------------------------
def split_by_synset(labels: torch.Tensor, val_fraction: float, test_fraction: float,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices (train, val, test): each fraction of the whole, of every class, seeded.

    The training indices come in a seeded random order, so any prefix is close to balanced.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1
            and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to less "
                         f"than 1; got {val_fraction} and {test_fraction}")
    rest, test = validation_split(labels, test_fraction, seed)
    keep, val = validation_split(labels[rest], val_fraction / (1 - test_fraction), seed + 1)
    train = rest[keep]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 2))
    return train[order], rest[val], test


def load_text_dataset(name: str, root: str | Path = "data", seq_len: int = 32,
                      val_fraction: float = 0.1, test_fraction: float = 0.1,
                      split_seed: int = 0, min_count: int = 2, train_limit: int = 0,
                      test_limit: int = 0, verify: bool = True) -> TextDataset:
    """Load text data set ``name``: split by synset, tokenised with the training vocabulary.

    ``train_limit`` keeps the first N training synsets (a seeded random, near-balanced draw)
    before the vocabulary is built; ``test_limit`` the first N test synsets. ``verify``
    checks the mini file's SHA-256.
    """
    if name not in TEXT_SPECS:
        raise DatasetError(f"unknown text data set {name!r}; known: {', '.join(TEXT_SPECS)}")
    if seq_len < 1 or min_count < 1:
        raise ValueError(f"seq_len and min_count must be >= 1; got {seq_len}, {min_count}")
    path = locate_text(name, root)
    records = (read_data_noun(path) if name == "wordnet-supersense"
               else read_glosses_tsv(path, WORDNET_MINI_SHA256 if verify else None))
    offsets = torch.tensor([r[0] for r in records], dtype=torch.int64)
    labels = torch.tensor([r[1] for r in records], dtype=torch.int64)
    texts = [definition(r[2]) for r in records]
    classes = TEXT_SPECS[name].classes
    present = set(labels.tolist())
    if len(present) < len(classes):
        missing = [c for i, c in enumerate(classes) if i not in present]
        raise DatasetError(
            f"{path} holds examples of {len(present)} of the {len(classes)} classes of "
            f"{name} (none of {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): "
            "the file is cut short or not the one expected; install it again (sudo apt-get "
            "install --reinstall wordnet-base) or restore it")
    train, val, test = split_by_synset(labels, val_fraction, test_fraction, split_seed)
    if train_limit:
        train = train[:train_limit]
    if test_limit:
        test = test[:test_limit]
    tokenizer = build_tokenizer([texts[i] for i in train.tolist()], min_count)
    vocab = tokenizer.get_vocab()

    def ids(idx: torch.Tensor) -> torch.Tensor:
        return encode(tokenizer, [texts[i] for i in idx.tolist()], seq_len)

    return TextDataset(replace(TEXT_SPECS[name], seq_len=seq_len), ids(train), labels[train],
                       ids(test), labels[test], str(path), ids(val), labels[val],
                       tuple(sorted(vocab, key=vocab.__getitem__)), offsets[train],
                       offsets[val], offsets[test])
