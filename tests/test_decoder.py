"""The LTS decoder space: genotypes, the benchmark loader, parameter counts against the benchmark for
every record, the adaptive softmax, Transformer-XL's relative attention, causality and the metrics."""
import gzip
import importlib.util
import json
import math
import subprocess
import sys

import pytest
import torch

from trainfree.benchmarks import load_benchmark, shipped_names
from trainfree.config import ScoreSettings
from trainfree.data import data_path
from trainfree.errors import InvalidArchitecture, InvalidBenchmark
from trainfree.spaces import get_space
from trainfree.spaces.decoder.genotype import parse_decoder
from trainfree.spaces.decoder.model import TransXLLayer, build_decoder
from trainfree.spaces.decoder.space import EXAMPLE as DECODER

TINY = ScoreSettings(size="tiny", corpus="wikitext-2", batch_size=4, seq_len=16, device="cpu")


def _raw():
    with gzip.open(str(data_path("lts", "lts_decoder_benchmark.json.gz")), "rt") as fh:
        return json.load(fh)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.slow
def test_parameter_counts_equal_the_benchmarks_for_every_record_of_every_setting():
    checked = 0
    for setting, records in _raw().items():
        bench = load_benchmark(f"lts:{setting}")
        assert len(bench.records) + bench.skipped == len(records)
        for rec in records:
            g = parse_decoder(rec["arch"], family=rec["family"])
            want = rec["params_recomputed_gpt2_formula" if rec["family"] == "GPT2" else "params_recomputed_transxl_formula"]
            m = build_decoder(g, device="meta")
            attn = ["attn_qkv", "attn_out"] if m.gpt2 else ["attn_qkv", "attn_r", "attn_out", "attn_norm"]
            embedding = {id(p) for p in m.embedding_parameters()}
            got = {"AdaEmb": _count(m.word) + (m.position.weight.numel() if m.gpt2 else 0),
                   "Attn": sum(_count(getattr(layer, a)) for layer in m.layers for a in attn),
                   "FFN": sum(_count(layer.ffn_in) + _count(layer.ffn_out) for layer in m.layers),
                   "nonembedding": sum(p.numel() for p in m.parameters() if id(p) not in embedding),
                   "total": _count(m)}
            assert got == want, (setting, rec["job"])
            checked += 1
    assert checked == 800


def test_decoder_params_metric_is_the_lts_non_embedding_count():
    from trainfree.metrics import Probe, get_metric

    bench = load_benchmark("lts:random_GPT2_wt103")
    space = get_space("decoder")
    settings = space.default_settings().with_(device="cpu")
    rec = min(bench.records, key=lambda r: r.extra["params"]["total"])
    probe = Probe(rec.arch, space, settings)
    assert get_metric("decoder_params")(probe) == rec.extra["params"]["nonembedding"]
    assert get_metric("params")(probe) == rec.extra["params"]["total"]


@pytest.mark.parametrize("change,message", [
    ({"n_head": [2, 2]}, "n_head: expected a list of 3"),
    ({"n_head": [2, 3, 2]}, r"n_head\[1\]: d_model 128 is not divisible by 3"),
    ({"d_inner": [512, 0, 512]}, r"d_inner\[1\]"),
    ({"family": "LSTM"}, "family"),
    ({"effective_cutoffs": [5]}, "effective_cutoffs"),
    ({"div_val": 64}, "div_val"),
    ({"attn_type": 2}, "attn_type"),
    ({"tie_projs": [True]}, "tie_projs"),
])
def test_invalid_decoders(change, message):
    with pytest.raises(InvalidArchitecture, match=message):
        parse_decoder({**DECODER, **change})


def test_loader_targets_and_errors(tmp_path):
    names = shipped_names()
    assert "lts:random_GPT2_wt103" in names and "lts:pareto_TransXL_lm1b_arm" in names
    pareto = load_benchmark("lts:pareto_GPT2_lm1b_arm", target="latency")
    assert pareto.target == "latency" and pareto.lower_is_better and all(r.target > 0 for r in pareto.records)
    assert load_benchmark("lts:pareto_GPT2_lm1b_arm").records[0].target > 1  # the reported perplexity
    with pytest.raises(InvalidBenchmark, match="no setting 'nope'"):
        load_benchmark("lts:nope")
    with pytest.raises(InvalidBenchmark, match="no record has a finite 'latency'"):
        load_benchmark("lts:random_GPT2_wt103", target="latency")
    bad = tmp_path / "lts.json"
    bad.write_text(json.dumps({"s": [{"job": "j0", "family": "GPT2", "arch": {**DECODER, "family": "GPT2",
                                                                               "n_head": [2, 3, 2]}}]}))
    with pytest.raises(InvalidBenchmark, match=r"s record 0 \(job j0\): arch: n_head\[1\]"):
        load_benchmark(f"{bad}#s")


def test_adaptive_softmax_is_a_distribution():
    small = {"n_layer": 1, "d_model": 16, "n_head": [2], "d_inner": [32], "n_token": 3000, "cutoffs": [1000, 2000]}
    for family, div_val, d_embed in (("GPT2", 1, 16), ("GPT2", 1, 8), ("TransXL", 2, 32)):
        g = parse_decoder({**DECODER, **small, "family": family, "div_val": div_val, "d_embed": d_embed})
        model = build_decoder(g)
        h = torch.randn(3, model.genotype.d_model)
        vocab = model.genotype.n_token
        with torch.no_grad():  # every token's probability for each hidden state, in one call per state
            nll = torch.stack([model.softmax.nll(row.expand(vocab, -1), torch.arange(vocab)) for row in h])
        assert torch.allclose(torch.exp(-nll).sum(dim=1), torch.ones(3, dtype=nll.dtype), atol=1e-4), family


def test_relative_attention_matches_the_explicit_definition():
    torch.manual_seed(0)
    layer = TransXLLayer(8, 2, 16, pre_lnorm=False)
    torch.nn.init.normal_(layer.r_w_bias)
    torch.nn.init.normal_(layer.r_r_bias)
    x = torch.randn(1, 5, 8)
    d = 8
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    def sinus(dist):
        return torch.cat([(dist * inv).sin(), (dist * inv).cos()])
    pos = torch.stack([sinus(torch.tensor(float(t))) for t in range(4, -1, -1)])  # distances 4..0
    got = layer.attention(x, pos)
    q, k, v = layer.attn_qkv(x).view(1, 5, 3, 2, 4).unbind(2)
    out = torch.zeros(1, 5, 2, 4)
    for i in range(5):
        for h in range(2):
            scores = []
            for j in range(i + 1):
                r = layer.attn_r(sinus(torch.tensor(float(i - j)))).view(2, 4)[h]
                scores.append(((q[0, i, h] + layer.r_w_bias[h]) @ k[0, j, h]
                               + (q[0, i, h] + layer.r_r_bias[h]) @ r) / 2.0)
            p = torch.softmax(torch.stack(scores), 0)
            out[0, i, h] = sum(p[j] * v[0, j, h] for j in range(i + 1))
    assert torch.allclose(got, layer.attn_out(out.reshape(1, 5, 8)), atol=1e-5)


@pytest.mark.parametrize("family", ["GPT2", "TransXL"])
def test_decoders_are_causal(family):
    model = build_decoder(parse_decoder({**DECODER, "family": family}), "tiny")
    a = torch.randint(0, 30000, (2, 12))
    b = a.clone()
    b[:, 7:] = torch.randint(0, 30000, (2, 5))
    with torch.no_grad():
        ya, yb = model(a), model(b)
    assert torch.allclose(ya[:, :7], yb[:, :7], atol=1e-5) and not torch.allclose(ya[:, 7:], yb[:, 7:])


@pytest.mark.slow
def test_score_an_lts_setting_from_the_command_line(tmp_path):
    out = tmp_path / "s.csv"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "score", "--benchmark", "lts:random_TransXL_wt103_homogeneous",
                           "--limit", "3", "--size", "tiny", "--batch-size", "4", "--seq-len", "16", "--no-store",
                           "--output", str(out), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 3 * len(get_space("decoder").default_metrics)
    assert all(",ok," in r for r in rows)


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                    reason="nsga2 needs optuna: pip install 'trainfree[search]'")
def test_nsga2_search_of_decoders_against_decoder_params(tmp_path):
    from trainfree.search import run_search

    result = run_search("decoder", "decoder_hidden_cov", "nsga2", 12, seed=0, settings=TINY,
                        objective="decoder_params", population=6)
    p = result.problem
    assert len({t.arch_id for t in result.trials}) == 12
    assert all(math.isfinite(t.values["decoder_params"]) for t in result.trials)
    finite = [t for t in result.trials if math.isfinite(p.fitness(t))]
    front = {t.arch_id for t in result.pareto()}

    def dominated(t):  # some trial at least as good on both, better on one
        return any(p.fitness(o) >= p.fitness(t) and p.cost(o) <= p.cost(t)
                   and (p.fitness(o) > p.fitness(t) or p.cost(o) < p.cost(t)) for o in finite)

    assert front and all(dominated(t) == (t.arch_id not in front) for t in finite)


def test_gpt2_models_take_the_lts_init_and_transformer_xl_keeps_its_own():
    """LTS's GPT-2 code (archai's GPT2PreTrainedModel._init_weights) draws each block's attention-output
    and FFN-output weights from N(0, 0.02 / sqrt(2 n_layer)) and the adaptive projections from N(0, 0.01);
    every other draw is the flat N(0, 0.02) one, in the same order."""
    wide = {"n_layer": 4, "d_model": 64, "n_head": [2, 2, 2, 2], "d_inner": [128, 128, 128, 128], "d_embed": 32,
            "div_val": 2, "n_token": 3000, "cutoffs": [1000, 2000, 3000], "tie_projs": [False, True, True]}
    g = parse_decoder({**DECODER, **wide, "family": "GPT2"})
    lts, flat = build_decoder(g, seed=3), build_decoder(g, seed=3, init="flat")
    redrawn = {f"layers.{i}.{n}.weight" for i in range(4) for n in ("attn_out", "ffn_out")}
    projections = {n for n, _ in lts.named_parameters() if "proj" in n}
    assert projections, "the genotype should have adaptive projections"
    flat_params = dict(flat.named_parameters())
    for name, p in lts.named_parameters():
        q = flat_params[name]
        if name in redrawn:
            assert abs(p.std().item() - 0.02 / math.sqrt(8)) < 0.1 * 0.02 / math.sqrt(8), name
            assert abs(q.std().item() - 0.02) < 0.002, name
        elif name in projections:  # the same standard-normal draws at half the scale
            assert torch.allclose(p, q * 0.5, rtol=1e-6, atol=0), name
        else:
            assert torch.equal(p, q), name
    txl = parse_decoder({**DECODER, **wide, "family": "TransXL"})
    a, b = build_decoder(txl, seed=3), build_decoder(txl, seed=3, init="flat")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(Exception, match="unknown decoder init 'xavier'"):
        build_decoder(g, init="xavier")


def test_the_decoder_model_version_enters_score_and_training_fingerprints():
    from trainfree.train.protocol import protocol_for

    decoder, rnn = get_space("decoder"), get_space("nasbench-nlp")
    settings = decoder.default_settings()
    # scores stored from version-1 models (the flat init) are keyed by the bare settings fingerprint
    assert decoder.model_version == 2 and decoder.identity(settings)["model_version"] == 2
    assert decoder.fingerprint(settings) != settings.fingerprint()
    assert rnn.fingerprint(rnn.default_settings()) == rnn.default_settings().fingerprint()
    assert protocol_for("decoder").identity()["model_version"] == 2
    assert "model_version" not in protocol_for("nasbench-nlp").identity()
