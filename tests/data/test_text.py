import gzip
import re
import unicodedata
from collections import Counter

import pytest
import torch

from dyndnn.config import TEXT_DATASETS, load_config
from dyndnn.data import batches, load_dataset
from dyndnn.data import text as text_data
from dyndnn.data.text import (
    MINI_FILE,
    MINI_FOLDER,
    TEXT_SPECS,
    TextDataset,
    definition,
    load_text_dataset,
    locate_text,
    read_data_noun,
    read_glosses_tsv,
)
from dyndnn.errors import ConfigError, DatasetError

MINI = "wordnet-supersense-mini"
DEBIAN_NOUNS = text_data.DEBIAN_WORDNET / "data.noun"


@pytest.fixture(scope="module")
def mini():
    return load_text_dataset(MINI)


@pytest.fixture(scope="module")
def texts():
    """offset -> definition, read independently of the loader's splitting."""
    return {o: definition(g) for o, _, g in read_glosses_tsv(locate_text(MINI))}


def tokens(text):
    """What the tokeniser should see: NFKC, lower case, words and runs of punctuation."""
    return re.findall(r"\w+|[^\w\s]+", unicodedata.normalize("NFKC", text).lower())


def test_the_mini_set_loads_split_by_synset(mini):
    assert isinstance(mini, TextDataset) and mini.spec.kind == "text"
    assert len(mini.spec.classes) == 26 and mini.spec.classes[0] == "noun.Tops"
    for split in ("train", "val", "test"):
        x, y = mini.split(split)
        assert x.dtype == y.dtype == torch.int64
        assert x.ndim == 2 and x.shape[1] == mini.spec.seq_len == 32 and len(x) == len(y)
        assert 0 <= x.min() and x.max() < len(mini.vocab)
    assert set(mini.train_y.tolist()) == set(range(26))
    assert (len(mini.train_y), len(mini.val_y), len(mini.test_y)) == (7708, 963, 963)
    parts = [set(s.tolist()) for s in (mini.train_synsets, mini.val_synsets, mini.test_synsets)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == 9634
    assert mini.vocab[:2] == ("[PAD]", "[UNK]")
    assert mini.source.endswith(f"{MINI_FOLDER}/{MINI_FILE}")


def test_the_vocabulary_is_the_training_split_only_in_a_deterministic_order(mini, texts):
    counts = Counter(t for o in mini.train_synsets.tolist() for t in tokens(texts[o]))
    kept = sorted((t for t, n in counts.items() if n >= 2), key=lambda t: (-counts[t], t))
    assert mini.vocab == ("[PAD]", "[UNK]", *kept)  # ties by token: the same ids every time
    ids = {t: i for i, t in enumerate(mini.vocab)}
    unseen = 0
    for row, offset in zip(mini.test_x, mini.test_synsets.tolist(), strict=True):
        words = tokens(texts[offset])[:32]
        expected = [ids.get(t, 1) for t in words] + [0] * (32 - len(words))
        assert row.tolist() == expected
        unseen += sum(t not in counts for t in words)  # test-only words: [UNK]
    assert unseen > 0


def test_the_same_seed_gives_the_same_tensors_and_another_seed_another_split(mini):
    again = load_text_dataset(MINI)
    for a, b in ((mini.train_x, again.train_x), (mini.val_y, again.val_y),
                 (mini.test_x, again.test_x), (mini.train_synsets, again.train_synsets)):
        assert torch.equal(a, b)
    assert mini.vocab == again.vocab
    other = load_text_dataset(MINI, split_seed=1)
    assert not torch.equal(mini.test_synsets, other.test_synsets)


def test_limits_fractions_and_seq_len(mini):
    small = load_text_dataset(MINI, seq_len=8, train_limit=500, val_fraction=0.2,
                              test_fraction=0.0)
    assert small.train_x.shape == (500, 8) and small.spec.seq_len == 8
    assert len(small.test_y) == 0 and small.test_x.shape == (0, 8)
    assert len(small.val_y) == pytest.approx(0.2 * 9634, abs=26)
    assert len(small.vocab) < len(mini.vocab)
    assert len(set(small.train_y.tolist())) > 20  # a prefix of the training split is mixed
    with pytest.raises(ValueError, match="sum to less than 1"):
        load_text_dataset(MINI, val_fraction=0.5, test_fraction=0.5)


def test_split_has_the_errors_of_the_image_data_sets():
    ds = load_dataset(MINI, val_fraction=0)
    assert isinstance(ds, TextDataset)
    with pytest.raises(DatasetError, match="no validation split"):
        ds.split("val")
    with pytest.raises(ValueError, match="split must be"):
        ds.split("dev")


@pytest.mark.skipif(not DEBIAN_NOUNS.is_file(),
                    reason="Debian's wordnet-base is not installed (/usr/share/wordnet)")
def test_the_full_debian_file_loads():
    ds = load_dataset("wordnet-supersense")
    total = len(ds.train_y) + len(ds.val_y) + len(ds.test_y)
    assert total == 82115  # every noun synset of WordNet 3.0
    assert set(ds.test_y.tolist()) == set(range(26))
    assert ds.source == str(DEBIAN_NOUNS)


def test_a_missing_set_names_every_place_looked_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(text_data, "resource_dir", lambda name: tmp_path / "package")
    monkeypatch.setattr(text_data, "DEBIAN_WORDNET", tmp_path / "debian")
    with pytest.raises(DatasetError) as err:
        load_text_dataset("wordnet-supersense", root=tmp_path / "root")
    assert str(tmp_path / "root" / "wordnet" / "data.noun") in str(err.value)
    assert str(tmp_path / "debian" / "data.noun") in str(err.value)
    assert "sudo apt-get install wordnet-base" in str(err.value)
    with pytest.raises(DatasetError) as err:
        load_text_dataset(MINI, root=tmp_path / "root")
    assert str(tmp_path / "root" / MINI_FOLDER / MINI_FILE) in str(err.value)
    assert str(tmp_path / "package" / MINI_FOLDER / MINI_FILE) in str(err.value)
    assert "make_subset.py" in str(err.value)


def mini_copy(tmp_path, content: bytes | None = None) -> tuple:
    """A data root holding a copy of the mini file, or of ``content`` gzipped."""
    path = tmp_path / MINI_FOLDER / MINI_FILE
    path.parent.mkdir(parents=True)
    original = locate_text(MINI).read_bytes()
    path.write_bytes(original if content is None else gzip.compress(content, mtime=0))
    return tmp_path, path


def test_a_truncated_gzip_names_the_file(tmp_path):
    root, path = mini_copy(tmp_path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))} is truncated or corrupt"):
        load_text_dataset(MINI, root=root)


def test_a_wrong_checksum_names_the_file(tmp_path):
    data = gzip.decompress(locate_text(MINI).read_bytes()).replace(b"dog", b"cat", 1)
    root, path = mini_copy(tmp_path, data)
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))} is corrupt: SHA-256"):
        load_text_dataset(MINI, root=root)
    assert len(load_text_dataset(MINI, root=root, verify=False).vocab) > 2


def test_a_malformed_line_names_the_file_and_the_line(tmp_path):
    lines = gzip.decompress(locate_text(MINI).read_bytes()).split(b"\n")
    lines[4] = lines[4].replace(b"\t", b" ", 1)  # line 5: two columns
    root, path = mini_copy(tmp_path, b"\n".join(lines))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))} is corrupt: line 5 has 2"):
        load_text_dataset(MINI, root=root, verify=False)


def write_data_noun(root, lines):
    path = root / "wordnet" / "data.noun"
    path.parent.mkdir(parents=True)
    path.write_text("".join(lines))
    return path


HEADER = ["  1 This software and database is being provided to you, the LICENSEE, by  \n"]
SYNSETS = [f"{1740 + i:08d} {3 + i % 26:02d} n 01 thing{i} 0 000 | a thing number {i % 7}; "
           f'"an example"  \n' for i in range(60)]


def test_a_data_noun_under_the_root_is_read_and_checked_line_by_line(tmp_path):
    path = write_data_noun(tmp_path, HEADER + SYNSETS)
    ds = load_text_dataset("wordnet-supersense", root=tmp_path, val_fraction=0, test_fraction=0)
    assert ds.source == str(path) and len(ds.train_y) == 60
    assert "example" not in ds.vocab and "thing" in ds.vocab  # the definition only
    bad = SYNSETS[:10] + ["00009999 42 n 01 thing 0 000 | a label out of range  \n"]
    path.write_text("".join(HEADER + bad))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))} is corrupt: line 12 is"):
        read_data_noun(path)
    path.write_text("".join(HEADER + SYNSETS)[:-30])
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))} is truncated"):
        load_text_dataset("wordnet-supersense", root=tmp_path)


def test_batches_yield_token_ids_unchanged(mini):
    x, y = next(batches(mini, "train", batch_size=16, augment=True, seed=3))
    assert x.shape == (16, 32) and x.dtype == y.dtype == torch.int64
    same, _ = next(batches(mini, "train", batch_size=16, augment=False, seed=3))
    assert torch.equal(x, same)  # augmentation does not apply to text
    order = torch.randperm(len(mini.train_y), generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, mini.train_x[order[:16]]) and torch.equal(y, mini.train_y[order[:16]])
    val = torch.cat([b for b, _ in batches(mini, "val", batch_size=100)])
    assert torch.equal(val, mini.val_x)  # no shuffling outside train


def test_config_refuses_text_data_sets_for_the_image_stages():
    assert TEXT_DATASETS == tuple(TEXT_SPECS)
    for key in ("dataset", "fallback_dataset"):
        with pytest.raises(ConfigError, match=rf"data.{key} names a text data set.*rct.text_"):
            load_config(None, [f"{key}={MINI}"])


def test_a_data_noun_cut_at_a_line_boundary_is_refused_for_its_missing_classes(tmp_path):
    """Cut after whole lines it parses, yet holds a few classes: text accuracy 1.0 followed."""
    path = write_data_noun(tmp_path, HEADER + SYNSETS[:10])
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))} holds examples of 10 of "
                                           "the 26 classes of wordnet-supersense"):
        load_text_dataset("wordnet-supersense", root=tmp_path)
