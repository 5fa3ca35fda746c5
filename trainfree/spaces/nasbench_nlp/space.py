"""The NAS-Bench-NLP search space: recipes in, seeded language models and token batches out."""
from __future__ import annotations

import torch

from trainfree.config import ScoreSettings
from trainfree.spaces.base import Batched, check_settings
from trainfree.spaces.choices import GeneratedSpace
from trainfree.data.corpora import load_corpus, paper_window
from trainfree.spaces.nasbench_nlp import generate
from trainfree.spaces.nasbench_nlp.lm import RecipeLM, build_lm, token_window
from trainfree.spaces.nasbench_nlp.recipe import Recipe, parse_recipe


#: an LSTM (NAS-Bench-NLP recipe 1000001 with its output gate made a sigmoid): every node kind once
EXAMPLE = {
    "i": {"op": "linear", "input": ["x", "h_prev_0"]}, "i_act": {"op": "activation_tanh", "input": ["i"]},
    "j": {"op": "linear", "input": ["x", "h_prev_0"]}, "j_act": {"op": "activation_sigm", "input": ["j"]},
    "f": {"op": "linear", "input": ["x", "h_prev_0"]}, "f_act": {"op": "activation_sigm", "input": ["f"]},
    "o": {"op": "linear", "input": ["x", "h_prev_0"]}, "o_act": {"op": "activation_sigm", "input": ["o"]},
    "h_new_1_part1": {"op": "elementwise_prod", "input": ["f_act", "h_prev_1"]},
    "h_new_1_part2": {"op": "elementwise_prod", "input": ["i_act", "j_act"]},
    "h_new_1": {"op": "elementwise_sum", "input": ["h_new_1_part1", "h_new_1_part2"]},
    "h_new_1_act": {"op": "activation_tanh", "input": ["h_new_1"]},
    "h_new_0": {"op": "elementwise_prod", "input": ["h_new_1_act", "o_act"]},
}


#: the artefacts that need no forward pass: a metric reading only these does not read the model's outputs
STRUCTURAL = frozenset({"parameters", "parameter_groups", "transformer_parts"})


class NASBenchNLPSpace(GeneratedSpace):
    generator = generate
    parser = staticmethod(parse_recipe)
    example_json = EXAMPLE
    family = "rnn"
    name = "nasbench-nlp"
    description = "NAS-Bench-NLP recurrent cells (recipes) in a 3-layer language model"
    sizes = ("paper", "small", "tiny")
    provides = frozenset({"parameters", "forward", "parameter_groups", "lm_loss", "synflow_output",
                          "hidden_states", "activation_kernel", "recurrent_cell", "activation_codes",
                          "cell_graph"})
    #: what `score` and `search` use when no metric is named: the paper's best metric and the baseline
    default_metrics = ("hidden_cov", "params")

    def default_settings(self) -> ScoreSettings:
        """The paper's protocol: paper-size model, PTB test, 50 columns x 70 tokens."""
        return ScoreSettings()

    def check(self, settings: ScoreSettings) -> None:
        """Raise a clear error for settings this space cannot use, before any work starts."""
        from trainfree.spaces.nasbench_nlp.lm import get_size

        check_settings(self, settings)
        get_size(settings.size)
        paper_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len + 1, settings.offset)
        settings.resolved_device()

    def tiny_settings(self) -> ScoreSettings:
        return ScoreSettings(size="tiny", batch_size=10, seq_len=20, device="cpu")

    def build(self, arch: Recipe, settings: ScoreSettings, device: torch.device | str = "cpu") -> RecipeLM:
        vocab = load_corpus(settings.corpus).vocab_size
        model = build_lm(arch, vocab, settings.size, settings.seed, device)
        return model.to(getattr(torch, settings.dtype))

    def inputs(self, settings: ScoreSettings, device: torch.device | str = "cpu") -> torch.Tensor:
        return token_window(settings, device)

    def batched(self, metrics, settings: ScoreSettings) -> Batched | None:
        """Layer 1 hidden covariance (and ``params``, counted from the recipes) of many architectures from
        one batched pass, where ``hidden_cov`` is the only one of ``metrics`` that reads the model: with
        another such metric one probe serves all of them best."""
        from trainfree.spaces.nasbench_nlp._batched_metrics import BATCHED, batch_size
        from trainfree.spaces.nasbench_nlp.batched import layer_widths
        from trainfree.spaces.nasbench_nlp.lm import get_size

        reads_model = [m.name for m in metrics if m.requires - STRUCTURAL]
        if len(reads_model) != 1 or reads_model[0] not in BATCHED:
            return None
        device = settings.resolved_device()
        per_chunk = batch_size(device)  # at the paper's width: one architecture per task on CPU
        return Batched({m.name: BATCHED[m.name] for m in metrics if m.name in BATCHED},
                       per_pass=batch_size(device, layer_widths(get_size(settings.size))[1]),
                       chunk=2 * per_chunk if per_chunk > 1 else 1)

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

    # --- probe artefacts ---------------------------------------------------------------------------
    def cell_graph(self, arch: Recipe) -> dict[str, int]:
        """The cell graph's features (:meth:`Recipe.graph_features`); nothing is built."""
        return arch.graph_features()

    def parameter_groups(self, model: RecipeLM) -> dict[str, list]:
        """'embedding': the tied embedding/decoder and its bias; 'recurrent': the cells' weights."""
        embedding = model.embedding_parameters()
        ids = {id(p) for p in embedding}
        return {"embedding": embedding, "recurrent": [p for p in model.parameters() if id(p) not in ids]}

    def hidden_states(self, probe, layer: int) -> torch.Tensor:
        """h_{t-1} as each step of recurrent ``layer`` received it (T, B, H): the zero h_0, then outputs 1..T-1."""
        from trainfree.spaces.nasbench_nlp._passes import incoming_hidden_states, layer_outputs

        layers = len(probe.model.layers)
        layer = layers if layer == -1 else layer
        if "activation_kernel" in probe.expected:  # one pass yields both: codes and clean outputs
            layer_outputs(probe, layers, kernel=True)
        return incoming_hidden_states(probe, layer)

    def activation_kernel(self, probe) -> torch.Tensor:
        from trainfree.spaces.nasbench_nlp._passes import activation_kernel

        return activation_kernel(probe)

    def activation_codes(self, probe):
        from trainfree.spaces.nasbench_nlp._passes import activation_codes

        return activation_codes(probe)

    # --- the recurrent_cell artefact: the passes of the paper's RNN metrics, each once per probe ------
    def layer_outputs(self, probe, layer: int) -> torch.Tensor:
        """Clean no-grad outputs (T, B, H) of recurrent ``layer`` (1-based)."""
        from trainfree.spaces.nasbench_nlp._passes import layer_outputs

        return layer_outputs(probe, layer)

    def ones_pass(self, probe):
        """The paper's P1: clean forward, backward of the summed last-layer outputs (``_passes.OnesPass``)."""
        from trainfree.spaces.nasbench_nlp._passes import ones_pass

        return ones_pass(probe)

    def half_norm_saliency(self, probe) -> float:
        """The paper's P6: sum |theta * dR/dtheta| with R = 1/2 ||y||^2."""
        from trainfree.spaces.nasbench_nlp._passes import half_norm_saliency

        return half_norm_saliency(probe)

    def noisy_jacobian(self, probe, amplitude: float) -> torch.Tensor:
        """dS/de~ for the embedding with noise of ``amplitude`` added past the lookup."""
        from trainfree.spaces.nasbench_nlp._passes import noisy_jacobian

        return noisy_jacobian(probe, amplitude)
