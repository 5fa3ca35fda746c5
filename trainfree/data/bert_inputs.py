"""Token batches for BERT-style models: the uncased WordPiece vocabulary of BERT/ELECTRA (30,522
entries, shipped) through the ``tokenizers`` library, over documents of a shipped corpus.

The paper fed the first 128 OpenWebText documents, padded to 512 tokens; OpenWebText is not
available offline, so trainfree uses the first non-empty, non-heading lines (paragraphs) of a
shipped corpus's split, WikiText-2 test by default. Each becomes ``[CLS] ... [SEP]``, truncated
to ``seq_len`` and padded with ``[PAD]``. (WikiText-2 is already word-tokenised, with ``<unk>``
and ``@-@`` marks; WordPiece splits them like any other text.)
"""
from __future__ import annotations

import gzip
from functools import lru_cache
from importlib.resources import files

import numpy as np

from trainfree.data.corpora import corpus_lines
from trainfree.errors import MissingExtra, TrainfreeError

VOCAB = "bert-uncased/vocab.txt.gz"


@lru_cache(maxsize=1)
def wordpiece_tokenizer():
    """The uncased WordPiece tokenizer built from the shipped vocabulary."""
    try:
        from tokenizers import Tokenizer, normalizers, pre_tokenizers
        from tokenizers.models import WordPiece
    except ImportError:  # a core dependency, but say what is missing if an install lost it
        raise MissingExtra("BERT inputs need the tokenizers package: pip install tokenizers") from None
    path = files("trainfree.data").joinpath("corpora", *VOCAB.split("/"))
    with gzip.open(str(path), "rt", encoding="utf-8") as fh:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(fh)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def documents(corpus: str = "wikitext-2", split: str = "test", count: int = 32) -> list[str]:
    """The first ``count`` non-empty lines of a split that are not WikiText section headings."""
    out = []
    for line in corpus_lines(corpus, split):
        text = line.strip()
        if text and not (text.startswith("=") and text.endswith("=")):
            out.append(text)
            if len(out) == count:
                break
    if len(out) < count:
        raise TrainfreeError(f"{corpus} {split} has only {len(out)} documents; asked for {count}")
    return out


def bert_batch(corpus: str = "wikitext-2", split: str = "test", batch_size: int = 32, seq_len: int = 128) -> np.ndarray:
    """(batch_size, seq_len) int64 token ids: [CLS] document [SEP], truncated, [PAD]-padded."""
    # tokenised once per process (every probe asks for it: ~15 ms a time at the paper's batch); a copy
    # out, so that no caller can change the cached batch
    return _bert_batch(corpus, split, batch_size, seq_len).copy()


@lru_cache(maxsize=8)
def _bert_batch(corpus: str, split: str, batch_size: int, seq_len: int) -> np.ndarray:
    if seq_len < 2:
        raise TrainfreeError(f"seq_len must be at least 2 ([CLS] and [SEP]), got {seq_len}")
    tok = wordpiece_tokenizer()
    cls, sep, pad = (tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    batch = np.full((batch_size, seq_len), pad, dtype=np.int64)
    for row, text in enumerate(documents(corpus, split, batch_size)):
        ids = [cls] + tok.encode(text, add_special_tokens=False).ids[: seq_len - 2] + [sep]
        batch[row, : len(ids)] = ids
    return batch


MASK_RATE = 0.15


def mlm_labels(batch: np.ndarray, seed: int, rate: float = MASK_RATE) -> np.ndarray:
    """Labels for masked-token prediction: ``rate`` of each row's real tokens (not [CLS], [SEP] or
    [PAD]; at least one), drawn under ``seed``, keep their id; every other position is -100."""
    tok = wordpiece_tokenizer()
    special = [tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")]
    rng = np.random.default_rng(seed)
    labels = np.full_like(batch, -100)
    for row in range(batch.shape[0]):
        real = np.flatnonzero(~np.isin(batch[row], special))
        if real.size == 0:
            continue
        chosen = rng.choice(real, size=max(1, round(rate * real.size)), replace=False)
        labels[row, chosen] = batch[row, chosen]
    return labels
