"""Token batches for the hf spaces: real text of a shipped corpus (or a text file of one's own), tokenised
offline by the shipped uncased WordPiece vocabulary (BERT's 30,522 entries) or by a ``tokenizers`` JSON
file of one's own (``--tokenizer PATH``), through the ``tokenizers`` library.

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

from functools import lru_cache

import numpy as np

from trainfree.data.bert_inputs import wordpiece_tokenizer
from trainfree.data.corpora import corpus_lines
from trainfree.errors import TrainfreeError

VOCAB_SIZE = 30522
TINY_VOCAB = 8192
MASK_RATE = 0.15


def vocab_size(size: str) -> int:
    return TINY_VOCAB if size == "tiny" else VOCAB_SIZE


#: a tokenizer file is a few MB; this bounds what is read
MAX_TOKENIZER_BYTES = 64 << 20
#: the end-of-line tokens looked for in a tokenizer of one's own, in order
SEPARATORS = ("[SEP]", "</s>", "<|endoftext|>", "<eos>", "<|end_of_text|>")


@lru_cache(maxsize=4)
def load_tokenizer(path: str = ""):
    """The shipped WordPiece tokenizer (``""``), or a ``tokenizers`` JSON file read offline."""
    if not path:
        return wordpiece_tokenizer()
    from pathlib import Path

    from tokenizers import Tokenizer

    file = Path(path)
    if not file.is_file():
        raise TrainfreeError(f"tokenizer {path}: " + ("no such file" if not file.exists() else "not a regular file"))
    if file.stat().st_size > MAX_TOKENIZER_BYTES:
        raise TrainfreeError(f"tokenizer {path}: larger than {MAX_TOKENIZER_BYTES >> 20} MiB")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as err:  # tokenizers raises its own Exception type for a malformed file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise TrainfreeError(f"tokenizer {path}: not a tokenizers JSON file ({first})") from None


def tokenizer_size(path: str = "") -> int:
    """The vocabulary size of the tokenizer (the shipped WordPiece: 30,522)."""
    return VOCAB_SIZE if not path else load_tokenizer(path).get_vocab_size(with_added_tokens=True)


@lru_cache(maxsize=8)
def token_stream(corpus: str, split: str, count: int, tokenizer: str = "") -> np.ndarray:
    """The first ``count`` token ids of a corpus split (lines in order, each ended by [SEP], or by the
    tokenizer's own end-of-text token when it has one)."""
    tok = load_tokenizer(tokenizer)
    unk = tok.token_to_id("[UNK]")
    sep = next((tok.token_to_id(t) for t in SEPARATORS if tok.token_to_id(t) is not None), None)
    out: list[int] = []
    for line in corpus_lines(corpus, split):
        text = line.strip()
        if not text:
            continue
        parts = text.split("<unk>") if unk is not None else [text]
        for i, enc in enumerate(tok.encode_batch(parts, add_special_tokens=False)):
            if i:
                out.append(unk)
            out.extend(enc.ids)
        if sep is not None:
            out.append(sep)
        if len(out) >= count:
            return np.asarray(out[:count], dtype=np.int64)
    raise TrainfreeError(f"{corpus} {split} has {len(out)} tokens; the window needs {count}")


def window(corpus: str, split: str, batch_size: int, seq_len: int, offset: int, size: str, tokenizer: str = "",
           vocab: int | None = None) -> np.ndarray:
    """(batch_size, seq_len + 1) token ids: consecutive stretches of the stream from ``offset``. Ids the
    model's vocabulary (``vocab``; default the size preset's for the shipped WordPiece, the tokenizer's
    own) does not hold become the tokenizer's unknown token, or the vocabulary's last id."""
    if batch_size < 2 or seq_len < 2 or offset < 0:
        raise TrainfreeError(f"need batch_size >= 2, seq_len >= 2, offset >= 0; got {batch_size}, {seq_len}, {offset}")
    ids = token_stream(corpus, split, offset + batch_size * (seq_len + 1), tokenizer)[offset:]
    ids = ids.reshape(batch_size, seq_len + 1)
    limit = vocab if vocab is not None else (vocab_size(size) if not tokenizer else tokenizer_size(tokenizer))
    unk = load_tokenizer(tokenizer).token_to_id("[UNK]")
    return np.where(ids < limit, ids, unk if unk is not None and unk < limit else limit - 1)


def masked(tokens: np.ndarray, seed: int, rate: float = MASK_RATE, tokenizer: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) for a masked LM: ``rate`` of each row's positions (at least one), drawn under
    ``seed``, become [MASK] and keep their id as the label; every other label is -100."""
    mask = load_tokenizer(tokenizer).token_to_id("[MASK]")
    if mask is None:
        raise TrainfreeError(f"tokenizer {tokenizer}: no [MASK] token, which a masked language model needs")
    rng = np.random.default_rng(seed)
    inputs, labels = tokens.copy(), np.full_like(tokens, -100)
    k = max(1, round(rate * tokens.shape[1]))
    for row in range(tokens.shape[0]):
        cols = rng.choice(tokens.shape[1], size=k, replace=False)
        labels[row, cols] = tokens[row, cols]
        inputs[row, cols] = mask
    return inputs, labels
