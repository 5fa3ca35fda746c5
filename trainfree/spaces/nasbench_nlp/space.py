"""The NAS-Bench-NLP search space: recipes in, seeded language models and token batches out."""
from __future__ import annotations

import torch

from trainfree.config import ScoreSettings
from trainfree.spaces.choices import GeneratedSpace
from trainfree.data.corpora import load_corpus, paper_window
from trainfree.spaces.nasbench_nlp import generate
from trainfree.spaces.nasbench_nlp.lm import RecipeLM, build_lm
from trainfree.spaces.nasbench_nlp.recipe import Recipe, parse_recipe


class NASBenchNLPSpace(GeneratedSpace):
    generator = generate
    name = "nasbench-nlp"
    #: what `score` and `search` use when no metric is named: the paper's best metric and the baseline
    default_metrics = ("hidden_cov", "params")

    def default_settings(self) -> ScoreSettings:
        """The paper's protocol: paper-size model, PTB test, 50 columns x 70 tokens."""
        return ScoreSettings()

    def from_json(self, text, where: str = "") -> Recipe:
        return parse_recipe(text, where)

    def check(self, settings: ScoreSettings) -> None:
        """Raise a clear error for settings this space cannot use, before any work starts."""
        from trainfree.spaces.nasbench_nlp.lm import get_size

        get_size(settings.size)
        paper_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len + 1, settings.offset)
        settings.resolved_device()

    def build(self, arch: Recipe, settings: ScoreSettings, device: torch.device | str = "cpu") -> RecipeLM:
        vocab = load_corpus(settings.corpus).vocab_size
        model = build_lm(arch, vocab, settings.size, settings.seed, device)
        return model.to(getattr(torch, settings.dtype))

    def inputs(self, settings: ScoreSettings, device: torch.device | str = "cpu") -> torch.Tensor:
        window = paper_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len, settings.offset)
        return torch.as_tensor(window, device=device)

    def targets(self, settings: ScoreSettings, device: torch.device | str = "cpu") -> torch.Tensor:
        """Next-token targets (T, B) for the input window: the same columns shifted by one row."""
        window = paper_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len + 1,
                              settings.offset)
        return torch.as_tensor(window[1:], device=device)

    def factors(self, arch: Recipe) -> dict[str, int]:
        """Design factors for analysis: cell size, hidden states carried, how many nodes of each op
        (zero = the op is absent), and the inputs summed by the linear nodes."""
        from collections import Counter

        from trainfree.spaces.nasbench_nlp.recipe import OPS

        ops = Counter(node.op for node in arch.nodes)
        out = {"num_nodes": len(arch.nodes), "hidden_tuple_size": arch.hidden_tuple_size}
        out.update({f"n_{op}": ops[op] for op in OPS})
        out["linear_inputs"] = sum(len(n.inputs) for n in arch.nodes if n.op == "linear")
        return out
