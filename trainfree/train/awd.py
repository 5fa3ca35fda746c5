"""NAS-Bench-NLP's training step (AWD-LSTM's, as fmsnew/nas-bench-nlp-release train.py runs it).

Per window: the length is drawn as AWD-LSTM does (70, or 35 with probability 0.05, plus N(0, 5), at
least 5) and the learning rate scaled by length / 70 for that step; embedding dropout drops whole
words, locked (variational) dropout masks the input, the layers' outputs and the final output once per
window, weight drop masks each linear node's recurrent weights (those not reading ``x``); the loss is
the cross-entropy plus activation regularisation alpha * mean(dropped output^2) and temporal
regularisation beta * mean((h_t - h_{t-1})^2) on the last layer; gradients are clipped to norm 0.25.
The hidden state is carried across windows and reset at each pass over the data, as the benchmark did.
Random draws: numpy's generator (window lengths) and torch's (the dropout masks), both checkpointed.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from trainfree.data.corpora import batchify, load_corpus


def locked_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """One mask per sequence and unit, the same at every step of the window ((T, B, H) input)."""
    if p <= 0:
        return x
    mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


def embedded_dropout(weight: torch.Tensor, tokens: torch.Tensor, p: float) -> torch.Tensor:
    """Drop whole rows of the embedding (every occurrence of a word) and scale the rest."""
    if p > 0:
        mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
        weight = weight * mask
    return F.embedding(tokens, weight)


def recurrent_weight_names(layer) -> list[str]:
    """The parameter names weight drop masks: each linear node's weights for inputs other than ``x``."""
    names = []
    for node in layer.recipe.nodes:
        if node.op == "linear":
            names.extend(f"components.{node.name}.weights.{k}" for k, inp in enumerate(node.inputs) if inp != "x")
    return names


class AWDStream:
    """The training stream (rows x batch_size, time-major) and where the next window starts."""

    def __init__(self, corpus: str, batch_size: int, seed: int):
        self.data = batchify(load_corpus(corpus).splits["train"], batch_size)
        self.rng = np.random.default_rng(seed)
        self.position = 0
        self.epoch = 0

    def next_window(self, bptt: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(inputs, targets, new_pass): a new pass over the data resets the hidden state."""
        new_pass = False
        if self.position >= self.data.shape[0] - 2:
            self.position, self.epoch, new_pass = 0, self.epoch + 1, True
        mean = bptt if self.rng.random() < 0.95 else bptt / 2.0
        seq_len = max(5, int(self.rng.normal(mean, 5)))
        seq_len = min(seq_len, self.data.shape[0] - 1 - self.position)
        i = self.position
        self.position += seq_len
        return self.data[i:i + seq_len], self.data[i + 1:i + 1 + seq_len], new_pass or i == 0

    def state(self) -> dict:
        return {"position": self.position, "epoch": self.epoch, "rng": self.rng.bit_generator.state}

    def load(self, state: dict) -> None:
        self.position, self.epoch = state["position"], state["epoch"]
        self.rng.bit_generator.state = state["rng"]


def forward(model, tokens: torch.Tensor, carry: list[list], options: dict | None) -> tuple[torch.Tensor, list]:
    """(last layer's dropped output (T, B, E), its raw output) with the dropouts of ``options`` (None: eval,
    no dropout). ``carry`` holds each layer's hidden tuple and is updated in place."""
    o = options or {}
    train = options is not None
    h = embedded_dropout(model.encoder.weight, tokens, o.get("dropoute", 0.0) if train else 0.0)
    h = locked_dropout(h, o.get("dropouti", 0.0)) if train else h
    raw = h
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        if train and o.get("wdrop", 0.0) > 0:
            params = dict(layer.named_parameters())
            for name in recurrent_weight_names(layer):
                params[name] = F.dropout(params[name], o["wdrop"], training=True)
            raw = functional_call(layer, params, (h,), {"carry": carry[i]})
        else:
            raw = layer(h, carry=carry[i])
        h = raw
        if train:
            h = locked_dropout(h, o.get("dropouth", 0.0) if i != last else o.get("dropout", 0.0))
    return h, raw


def detach(carry: list[list]) -> list[list]:
    return [[t.detach() for t in tup] for tup in carry]


class AWDTrainer:
    """One NAS-Bench-NLP model under the benchmark's protocol (see the module's doc)."""

    def __init__(self, model, protocol, seed: int):
        from trainfree.train.optim import make_optimizer

        self.model, self.protocol = model, protocol
        self.options = dict(protocol.options)
        self.stream = AWDStream(protocol.corpus, protocol.batch_size, seed)
        self.optimizer = make_optimizer(model, protocol)
        self.carry: list[list] = [[] for _ in model.layers]
        self.valid = batchify(load_corpus(protocol.corpus).splits["valid"], protocol.eval_batch_size)
        if self.options.get("unigram_bias"):
            # start the output bias at the log unigram distribution of the train split: a short run then
            # spends its steps on what the cell adds, not on learning word frequencies (about 5 nats)
            counts = np.bincount(load_corpus(protocol.corpus).splits["train"], minlength=model.decoder_bias.numel())
            with torch.no_grad():
                model.decoder_bias.copy_(torch.as_tensor(np.log((counts + 1) / (counts + 1).sum())))

    def step(self, lr: float) -> tuple[float, int]:
        x, y, new_pass = self.stream.next_window(self.protocol.seq_len)
        if new_pass:
            self.carry = [[] for _ in self.model.layers]
        self.model.train()
        for group in self.optimizer.param_groups:  # the benchmark scales the rate by the window's length
            group["lr"] = lr * len(x) / self.protocol.seq_len
        self.optimizer.zero_grad()
        self.carry = detach(self.carry)
        dropped, raw = forward(self.model, torch.as_tensor(x), self.carry, self.options)
        logits = self.model.logits(dropped)
        raw_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.as_tensor(y).reshape(-1))
        loss = raw_loss
        if self.options.get("alpha"):
            loss = loss + self.options["alpha"] * dropped.pow(2).mean()
        if self.options.get("beta"):
            loss = loss + self.options["beta"] * (raw[1:] - raw[:-1]).pow(2).mean()
        loss.backward()
        if self.protocol.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.protocol.clip)
        self.optimizer.step()
        return float(raw_loss.detach()), x.size

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean cross-entropy over the first ``eval_tokens`` of the valid split, batchified at
        ``eval_batch_size``, in windows of ``seq_len`` with the state carried (the benchmark's evaluate)."""
        self.model.eval()
        rows = min(self.valid.shape[0] - 1, max(1, self.protocol.eval_tokens // self.protocol.eval_batch_size))
        carry: list[list] = [[] for _ in self.model.layers]
        total, count = 0.0, 0
        for i in range(0, rows, self.protocol.seq_len):
            n = min(self.protocol.seq_len, rows - i)
            x, y = self.valid[i:i + n], self.valid[i + 1:i + 1 + n]
            out, _ = forward(self.model, torch.as_tensor(x), carry, None)
            logits = self.model.logits(out)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.as_tensor(y).reshape(-1),
                                           reduction="sum"))
            count += y.size
        return total / count

    def state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "stream": self.stream.state(),
                "carry": [[t.clone() for t in tup] for tup in self.carry]}

    def load(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.stream.load(state["stream"])
        self.carry = [list(tup) for tup in state["carry"]]
