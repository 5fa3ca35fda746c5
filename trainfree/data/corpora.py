"""Word-level corpora as NAS-Bench-NLP read them (AWD-LSTM's data.py).

Each line is split on whitespace and ``<eos>`` appended; the vocabulary is built by first
appearance over train, valid, then test, so ids match the benchmark's models.

A corpus is a shipped name (``ptb``, ``wikitext-2``) or a path to a plain UTF-8 text file of one's own
(``--corpus my.txt``): a file has no splits, so every split reads the whole file.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from trainfree.errors import TrainfreeError, UnknownName

#: corpus -> file name pattern of its shipped, gzipped splits
CORPORA = {
    "ptb": "ptb/ptb.{split}.txt.gz",
    "wikitext-2": "wikitext-2/wiki.{split}.tokens.gz",
}
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Corpus:
    name: str
    vocab: tuple[str, ...]
    splits: dict[str, np.ndarray]  # split -> 1-D int64 token ids

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def corpus_lines(corpus: str, split: str):
    """The text lines of a corpus split: a shipped corpus's split, or every line of a text file."""
    from trainfree.config import is_file_name

    if split not in SPLITS:
        raise UnknownName(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    if corpus in CORPORA:
        path = files("trainfree.data").joinpath("corpora", CORPORA[corpus].format(split=split))
        with gzip.open(str(path), "rt", encoding="utf-8") as fh:
            yield from fh
        return
    if not is_file_name(corpus):
        raise UnknownName(f"unknown corpus {corpus!r}; choose from: {', '.join(CORPORA)}, or a path to a text file "
                          f"of your own (e.g. ./my.txt)")
    path = Path(corpus)
    if not path.is_file():
        raise TrainfreeError(f"corpus {corpus}: " + ("no such file" if not path.exists() else "not a regular file"))
    try:
        with open(path, encoding="utf-8-sig") as fh:
            yield from fh
    except UnicodeDecodeError as err:
        raise TrainfreeError(f"corpus {corpus}: not UTF-8 text ({err})") from None
    except OSError as err:
        raise TrainfreeError(f"corpus {corpus}: cannot read ({err.strerror or err})") from None


def _read_words(corpus: str, split: str) -> list[str]:
    words = []
    for line in corpus_lines(corpus, split):
        words.extend(line.split())
        words.append("<eos>")
    return words


@lru_cache(maxsize=None)
def load_corpus(name: str) -> Corpus:
    from trainfree.config import is_file_name

    if name not in CORPORA and not is_file_name(name):
        raise UnknownName(f"unknown corpus {name!r}; choose from: {', '.join(CORPORA)}, or a path to a text file "
                          f"of your own")
    index: dict[str, int] = {}
    splits = {}
    for split in SPLITS:
        words = _read_words(name, split)
        for w in words:
            if w not in index:
                index[w] = len(index)
        splits[split] = np.fromiter((index[w] for w in words), dtype=np.int64, count=len(words))
    # fresh copies: the first-seen word objects are scattered over the read text's memory, which they
    # would otherwise keep from being returned (~50 MB for PTB, per process)
    return Corpus(name, tuple(w.encode().decode() for w in index), splits)


def batchify(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """(N,) -> (N // batch_size, batch_size): column b is the b-th contiguous slice of the stream."""
    rows = len(ids) // batch_size
    if rows == 0:
        raise TrainfreeError(f"a stream of {len(ids)} tokens is too short for batch size {batch_size}")
    return ids[: rows * batch_size].reshape(batch_size, rows).T.copy()


def paper_window(corpus: str = "ptb", split: str = "test", batch_size: int = 50, seq_len: int = 70,
                 offset: int = 0) -> np.ndarray:
    """Rows offset..offset+seq_len of the batchified split: (seq_len, batch_size) token ids.

    The default is the paper's input: the first 70 tokens of each of the 50 columns of PTB test.
    """
    if split not in SPLITS:
        raise UnknownName(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    if batch_size < 2 or seq_len < 1 or offset < 0:
        raise TrainfreeError(f"need batch_size >= 2, seq_len >= 1, offset >= 0; got {batch_size}, {seq_len}, {offset}")
    data = batchify(load_corpus(corpus).splits[split], batch_size)
    if offset + seq_len > data.shape[0]:
        raise TrainfreeError(f"{corpus} {split} has {data.shape[0]} rows at batch size {batch_size}; "
                             f"offset {offset} + seq_len {seq_len} does not fit")
    return data[offset: offset + seq_len]


@lru_cache(maxsize=None)
def frequency_ranks(corpus: str) -> np.ndarray:
    """id -> rank of the word by its frequency in the train split (0 = most frequent; ties by first
    appearance). Word-level adaptive softmaxes put frequent words in low ids; ranked ids keep that."""
    c = load_corpus(corpus)
    counts = np.bincount(c.splits["train"], minlength=c.vocab_size)
    order = np.lexsort((np.arange(c.vocab_size), -counts))  # by count desc, then id
    ranks = np.empty(c.vocab_size, dtype=np.int64)
    ranks[order] = np.arange(c.vocab_size)
    return ranks


def ranked_window(corpus: str = "wikitext-2", split: str = "test", batch_size: int = 16, seq_len: int = 32,
                  offset: int = 0) -> np.ndarray:
    """(batch_size, seq_len + 1) frequency-ranked word ids: the paper window's columns as rows, one token
    longer so that inputs are [:, :-1] and next-token targets [:, 1:]."""
    return frequency_ranks(corpus)[paper_window(corpus, split, batch_size, seq_len + 1, offset).T]
