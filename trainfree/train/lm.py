"""Trainers that take their loss from the model's ``proxy_loss`` (the ``lm_loss`` artefact), so any
space providing it trains the same way.

- ``window-lm``: causal LM on the space's own batches (``space.inputs`` / ``space.targets``) read at
  successive ``offset``s of the train split, and of the valid split for evaluation: the decoder space,
  and any space (the Hugging Face ones) that reads its window through ``split`` and ``offset``.
- ``wordpiece-mlm``: masked-LM for the encoders: the split's paragraphs as one WordPiece stream, cut
  into rows of ``[CLS]`` + ``seq_len - 1`` tokens (packed, so no padding: the encoders take no
  attention mask), with a seeded fresh mask per step; a fixed mask for the validation rows.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError


class ProxyLossTrainer:
    """Shared step: train mode, ``proxy_loss``, backward, clip, optimiser step."""

    def __init__(self, model, protocol, seed: int):
        from trainfree.train.optim import make_optimizer

        self.model, self.protocol, self.seed = model, protocol, seed
        self.optimizer = make_optimizer(model, protocol)
        self.batch_index = 0

    def step(self, lr: float) -> tuple[float, int]:
        x, y = self.train_batch(self.batch_index)
        self.batch_index += 1
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        loss = self.model.proxy_loss(x, y)
        loss.backward()
        if self.protocol.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.protocol.clip)
        self.optimizer.step()
        return float(loss.detach()), int(x.numel())

    @torch.no_grad()
    def evaluate(self) -> float:
        """Token-weighted mean loss over the validation batches."""
        self.model.eval()
        total, count = 0.0, 0
        for x, y in self.valid_batches():
            n = self.counted(y)
            total += float(self.model.proxy_loss(x, y)) * n
            count += n
        return total / count

    def counted(self, y: torch.Tensor) -> int:
        return int(y.numel())

    def state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "batch_index": self.batch_index}

    def load(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.batch_index = state["batch_index"]


class WindowLMTrainer(ProxyLossTrainer):
    def __init__(self, model, protocol, seed: int, space):
        super().__init__(model, protocol, seed)
        self.space = space
        p = protocol
        self.base = ScoreSettings(seed=seed, size=p.size, corpus=p.corpus, batch_size=p.batch_size, seq_len=p.seq_len,
                                  device="cpu")
        self.rows = {split: self._rows(split, b) for split, b in (("train", p.batch_size),
                                                                  ("valid", p.eval_batch_size))}

    def _rows(self, split: str, batch_size: int) -> int:
        from trainfree.data.corpora import load_corpus

        rows = len(load_corpus(self.protocol.corpus).splits[split]) // batch_size
        windows = (rows - 1) // self.protocol.seq_len
        if windows < 1:
            raise TrainfreeError(f"{self.protocol.corpus} {split} is too short for batch {batch_size} x "
                                 f"{self.protocol.seq_len} tokens")
        return windows

    def _window(self, split: str, index: int, batch_size: int):
        s = self.base.with_(split=split, batch_size=batch_size,
                            offset=(index % self.rows[split]) * self.protocol.seq_len)
        return self.space.inputs(s), self.space.targets(s)

    def train_batch(self, index: int):
        return self._window("train", index, self.protocol.batch_size)

    def valid_batches(self):
        per = self.protocol.eval_batch_size * self.protocol.seq_len
        n = min(self.rows["valid"], max(1, self.protocol.eval_tokens // per))
        for i in range(n):
            yield self._window("valid", i, self.protocol.eval_batch_size)


def _paragraphs(corpus: str, split: str) -> list[str]:
    from trainfree.data.corpora import corpus_lines

    return [t for t in (line.strip() for line in corpus_lines(corpus, split))
            if t and not (t.startswith("=") and t.endswith("="))]


@lru_cache(maxsize=4)
def wordpiece_stream(corpus: str, split: str) -> np.ndarray:
    """The split's paragraphs as one stream of WordPiece ids, each paragraph followed by [SEP]."""
    from trainfree.data.bert_inputs import wordpiece_tokenizer

    tok = wordpiece_tokenizer()
    sep = tok.token_to_id("[SEP]")
    out = []
    for enc in tok.encode_batch(_paragraphs(corpus, split), add_special_tokens=False):
        out.extend(enc.ids)
        out.append(sep)
    return np.asarray(out, dtype=np.int64)


class WordPieceMLMTrainer(ProxyLossTrainer):
    def __init__(self, model, protocol, seed: int, space=None):
        super().__init__(model, protocol, seed)
        from trainfree.data.bert_inputs import wordpiece_tokenizer

        self.cls = wordpiece_tokenizer().token_to_id("[CLS]")
        self.rate = float(protocol.option("mask_rate", 0.15))
        self.streams = {s: self._rows(s) for s in ("train", "valid")}

    def _rows(self, split: str) -> np.ndarray:
        width = self.protocol.seq_len - 1
        ids = wordpiece_stream(self.protocol.corpus, split)
        n = len(ids) // width
        rows = ids[: n * width].reshape(n, width)
        return np.concatenate([np.full((n, 1), self.cls, dtype=np.int64), rows], axis=1)

    def _batch(self, split: str, index: int, batch_size: int, mask_seed: int):
        from trainfree.data.bert_inputs import mlm_labels

        rows = self.streams[split]
        take = np.arange(index * batch_size, (index + 1) * batch_size) % len(rows)
        batch = rows[take]
        return torch.as_tensor(batch), torch.as_tensor(mlm_labels(batch, mask_seed, self.rate))

    def train_batch(self, index: int):
        # a fresh mask every step, from (seed, step): resumable without keeping a generator
        mask_seed = int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])
        return self._batch("train", index, self.protocol.batch_size, mask_seed)

    def valid_batches(self):
        per = self.protocol.eval_batch_size * self.protocol.seq_len
        n = max(1, self.protocol.eval_tokens // per)
        for i in range(n):
            yield self._batch("valid", i, self.protocol.eval_batch_size, 12345 + i)

    def counted(self, y: torch.Tensor) -> int:
        return int((y != -100).sum())
