"""Token batches for the hf spaces: real text of a shipped corpus, tokenised offline by the shipped
uncased WordPiece vocabulary (BERT's 30,522 entries) through the ``tokenizers`` library.

Why WordPiece: it is the one subword vocabulary trainfree ships (``trainfree.data.bert_inputs``),
modern LMs read subwords rather than whole words, and it needs no training or download. The
corpus's lines are encoded in order, each followed by ``[SEP]``; a corpus ``<unk>`` becomes
``[UNK]``. Row b of a (B, T + 1) window is the stream's tokens ``offset + b (T + 1)`` onwards, so
rows are consecutive stretches of text; inputs are ``[:, :-1]`` and next-token targets ``[:, 1:]``.
A masked LM reads the whole window's first T tokens with 15% of them, drawn under the seed, replaced
by ``[MASK]`` and labelled. The ``tiny`` size keeps the first 8,192 vocabulary entries (specials,
characters, then whole words roughly by frequency) and maps the rest to ``[UNK]``.
"""
from __future__ import annotations

import gzip
from functools import lru_cache
from importlib.resources import files

import numpy as np

from trainfree.data.bert_inputs import wordpiece_tokenizer
from trainfree.data.corpora import CORPORA, SPLITS
from trainfree.errors import TrainfreeError, UnknownName

VOCAB_SIZE = 30522
TINY_VOCAB = 8192
MASK_RATE = 0.15


def vocab_size(size: str) -> int:
    return TINY_VOCAB if size == "tiny" else VOCAB_SIZE


@lru_cache(maxsize=8)
def token_stream(corpus: str, split: str, count: int) -> np.ndarray:
    """The first ``count`` WordPiece ids of a corpus split (lines in order, each ended by [SEP])."""
    if corpus not in CORPORA:
        raise UnknownName(f"unknown corpus {corpus!r}; choose from: {', '.join(CORPORA)}")
    if split not in SPLITS:
        raise UnknownName(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    tok = wordpiece_tokenizer()
    unk, sep = tok.token_to_id("[UNK]"), tok.token_to_id("[SEP]")
    out: list[int] = []
    path = files("trainfree.data").joinpath("corpora", CORPORA[corpus].format(split=split))
    with gzip.open(str(path), "rt", encoding="utf-8") as fh:
        for line in fh:
            text = line.strip()
            if not text:
                continue
            parts = text.split("<unk>")
            for i, enc in enumerate(tok.encode_batch(parts, add_special_tokens=False)):
                if i:
                    out.append(unk)
                out.extend(enc.ids)
            out.append(sep)
            if len(out) >= count:
                return np.asarray(out[:count], dtype=np.int64)
    raise TrainfreeError(f"{corpus} {split} has {len(out)} WordPiece tokens; the window needs {count}")


def window(corpus: str, split: str, batch_size: int, seq_len: int, offset: int, size: str) -> np.ndarray:
    """(batch_size, seq_len + 1) token ids: consecutive stretches of the stream from ``offset``."""
    if batch_size < 2 or seq_len < 2 or offset < 0:
        raise TrainfreeError(f"need batch_size >= 2, seq_len >= 2, offset >= 0; got {batch_size}, {seq_len}, {offset}")
    ids = token_stream(corpus, split, offset + batch_size * (seq_len + 1))[offset:].reshape(batch_size, seq_len + 1)
    limit = vocab_size(size)
    return np.where(ids < limit, ids, wordpiece_tokenizer().token_to_id("[UNK]"))


def masked(tokens: np.ndarray, seed: int, rate: float = MASK_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) for a masked LM: ``rate`` of each row's positions (at least one), drawn under
    ``seed``, become [MASK] and keep their id as the label; every other label is -100."""
    rng = np.random.default_rng(seed)
    inputs, labels = tokens.copy(), np.full_like(tokens, -100)
    k = max(1, round(rate * tokens.shape[1]))
    for row in range(tokens.shape[0]):
        cols = rng.choice(tokens.shape[1], size=k, replace=False)
        labels[row, cols] = tokens[row, cols]
        inputs[row, cols] = wordpiece_tokenizer().token_to_id("[MASK]")
    return inputs, labels
