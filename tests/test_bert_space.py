"""NAS-Bench-BERT genotypes and the benchmark loader (its analysis: test_analysis.py)."""
import json
import subprocess
import sys

import pytest

from trainfree.benchmarks import load_benchmark
from trainfree.errors import InvalidArchitecture, InvalidBenchmark
from trainfree.spaces.bert.genotype import parse_genotype

LAYER = {"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": 4,
         "feed_forward_dimension": 512, "num_feed_forward": 1}


def _genotype(**layer_changes):
    return {"hidden_size": 256, "encoder_layers": [dict(LAYER, **layer_changes), LAYER]}


def test_parse_and_id():
    g = parse_genotype(_genotype())
    assert g.hidden_size == 256 and len(g.layers) == 2
    assert parse_genotype(json.dumps(_genotype())).arch_id == g.arch_id
    assert parse_genotype(_genotype(num_operation_heads=2)).arch_id != g.arch_id
    nested = {"hidden_size": 256, "nas_config": {"encoder_layers": _genotype()["encoder_layers"]}}
    assert parse_genotype(nested) == g


@pytest.mark.parametrize("source,message", [
    ("{nope", "not valid JSON"),
    ({"encoder_layers": []}, "missing field 'hidden_size'"),
    ({"hidden_size": 512, "encoder_layers": []}, "hidden_size: 512 is not one of [128, 256]"),
    ({"hidden_size": 256, "encoder_layers": [LAYER] * 3}, "3 layers, expected one of [2, 4]"),
    (_genotype(operation_type="MLP"), "encoder_layers[0].operation_type: 'MLP'"),
    (_genotype(operation_parameter="DFT"), "encoder_layers[0].operation_parameter: 'DFT' is not valid for SA"),
    (_genotype(num_operation_heads=3), "encoder_layers[0].num_operation_heads: 3"),
    ({"hidden_size": 256, "encoder_layers": [{"operation_type": "SA"}, LAYER]}, "encoder_layers[0]: missing field(s)"),
])
def test_invalid_genotypes(source, message):
    with pytest.raises(InvalidArchitecture) as info:
        parse_genotype(source)
    assert message in str(info.value)


def test_shipped_benchmark_and_targets():
    glue = load_benchmark("nasbench-bert")
    assert len(glue) == 361 and glue.target == "glue" and not glue.lower_is_better
    assert load_benchmark("nasbench-bert", target="cola").records[0].target == glue.records[0].extra["scores"]["cola"]
    with pytest.raises(InvalidBenchmark, match="unknown NAS-Bench-BERT target"):
        load_benchmark("nasbench-bert", target="wnli")


def test_malformed_bert_file(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps([{"id": 7, "scores": {"glue": 70}, "hparams": {"model_hparam_overrides": {
        "hidden_size": 256, "nas_config": {"encoder_layers": [dict(LAYER, num_feed_forward=2), LAYER]}}}}]))
    with pytest.raises(InvalidBenchmark, match=r"record 0 \(id 7\).*encoder_layers\[0\].num_feed_forward: 2"):
        load_benchmark(bad)


def test_paper_metric_model_params_equal_published_for_every_architecture():
    import csv
    import gzip

    from trainfree.data import data_path
    from trainfree.spaces.bert.model import build_bert

    with gzip.open(str(data_path("nasbench_bert", "paper_bert_metrics.csv.gz")), "rt", newline="") as fh:
        published = {r["ID"]: int(float(r["Number of Parameters"])) for r in csv.DictReader(fh)}
    bench = load_benchmark("nasbench-bert")
    for rec in bench.records:
        model = build_bert(rec.arch, "paper", "paper-metric-model", device="meta")
        assert sum(p.numel() for p in model.parameters()) == published[rec.name], rec.name


@pytest.mark.parametrize("op,param", [("SA", "SDP"), ("SA", "WMA"), ("LT", "DFT"), ("LT", "DCT"), ("DSC", 5), ("DSC", 9)])
@pytest.mark.parametrize("heads", [2, 4])
def test_every_operation_runs_on_the_tiny_model(op, param, heads):
    import torch

    from trainfree.spaces.bert.model import build_bert

    g = parse_genotype(_genotype(operation_type=op, operation_parameter=param, num_operation_heads=heads))
    model = build_bert(g, "tiny").eval()
    out = model(torch.randint(0, 30522, (2, 12)))
    assert tuple(out.shape) == (2, 12, 32) and torch.isfinite(out).all()
    assert all(torch.equal(a, b) for a, b in zip(build_bert(g, "tiny").parameters(), build_bert(g, "tiny").parameters()))


def test_as_specified_uses_the_genotypes_sizes():
    from trainfree.spaces.bert.model import build_bert

    g = parse_genotype({"hidden_size": 128, "encoder_layers": [LAYER, dict(LAYER, feed_forward_dimension=1024)]})
    model = build_bert(g, "paper", "as-specified", device="meta")
    assert model.project is None and model.layers[0].ffn_in.out_features == 512
    assert model.layers[1].ffn_in.out_features == 1024 and model.layers[0].output.in_features == 128


def test_dct_matrix_matches_scipy():
    import numpy as np
    import torch
    from scipy.fft import dct

    from trainfree.spaces.bert.ops import dct_matrix

    z = np.random.default_rng(0).normal(size=7)
    got = (dct_matrix(7, dtype=torch.float64) @ torch.tensor(z)).numpy()
    np.testing.assert_allclose(got, dct(z, type=2, norm=None), rtol=1e-10)


def test_wordpiece_ids_match_bert_uncased():
    from trainfree.data.bert_inputs import wordpiece_tokenizer

    tok = wordpiece_tokenizer()
    assert tok.get_vocab_size() == 30522
    assert tok.encode("Hello, World!", add_special_tokens=False).ids == [7592, 1010, 2088, 999]
    assert tok.encode("unaffable", add_special_tokens=False).tokens == ["una", "##ffa", "##ble"]


def test_bert_batch_shape_and_special_tokens():
    from trainfree.data.bert_inputs import bert_batch

    batch = bert_batch(batch_size=4, seq_len=16)
    assert batch.shape == (4, 16) and (batch[:, 0] == 101).all()
    for row in batch:
        ids = list(row)
        assert 102 in ids and all(x == 0 for x in ids[ids.index(102) + 1:])
    assert (bert_batch(batch_size=4, seq_len=16) == batch).all()


def test_mlm_labels_mask_real_tokens_only_and_repeat_under_the_seed():
    import numpy as np

    from trainfree.data.bert_inputs import bert_batch, mlm_labels, wordpiece_tokenizer

    batch = bert_batch("wikitext-2", "test", 8, 32)
    labels = mlm_labels(batch, seed=0)
    tok = wordpiece_tokenizer()
    special = [tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")]
    chosen = labels != -100
    assert chosen.any(axis=1).all()
    assert not np.isin(batch[chosen], special).any()
    assert (labels[chosen] == batch[chosen]).all()
    real = (~np.isin(batch, special)).sum(axis=1)
    assert (np.abs(chosen.sum(axis=1) - 0.15 * real) <= 1).all()
    assert (mlm_labels(batch, seed=0) == labels).all() and (mlm_labels(batch, seed=1) != labels).any()


def test_bert_proxy_loss_is_masked_token_cross_entropy():
    import torch
    import torch.nn.functional as F

    from trainfree.config import ScoreSettings
    from trainfree.spaces import get_space

    space = get_space("nasbench-bert")
    settings = ScoreSettings(size="tiny", batch_size=4, seq_len=16, device="cpu")
    model = space.build(parse_genotype(_genotype()), settings).eval()
    tokens, labels = space.inputs(settings), space.targets(settings)
    where = labels != -100
    h = model(tokens.masked_fill(where, 103))  # [MASK]
    logits = h @ model.project.weight @ model.word.weight.t()  # no new parameters: the tied table
    reference = F.cross_entropy(logits[where], labels[where])
    loss = model.proxy_loss(tokens, labels)
    assert torch.allclose(loss, reference) and 9 < loss.item() < 11.5  # ~ log(30522) untrained
    seen = []
    model.proxy_loss(tokens, labels, activation_hook=lambda key, a: seen.append((key, tuple(a.shape))))
    assert seen == [("0:0", (4, 16, 64)), ("1:0", (4, 16, 64))]  # one FFN GELU per layer here


def test_classic_proxies_score_bert_and_see_the_architecture():
    import math

    from trainfree.config import ScoreSettings
    from trainfree.metrics import Probe, get_metric
    from trainfree.spaces import get_space

    space = get_space("nasbench-bert")
    settings = ScoreSettings(size="tiny", batch_size=4, seq_len=16, device="cpu")
    deep = parse_genotype({"hidden_size": 256, "encoder_layers": [LAYER, dict(LAYER, num_feed_forward=3)] * 2})
    for name in ("grad_norm", "snip", "fisher", "synflow", "zico"):
        values = [get_metric(name)(Probe(g, space, settings)) for g in (parse_genotype(_genotype()), deep)]
        assert all(math.isfinite(v) for v in values) and values[0] != values[1], name
    assert get_metric("fisher")(Probe(deep, space, settings)) > 0


@pytest.mark.slow
def test_score_defaults_to_the_spaces_metric_set(tmp_path):
    out = tmp_path / "s.csv"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "score", "--benchmark", "nasbench-bert", "--limit", "2",
                           "--size", "tiny", "--batch-size", "4", "--seq-len", "16", "--no-store", "--output", str(out),
                           "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from trainfree.spaces import get_space

    metrics = {line.split(",")[2] for line in out.read_text().splitlines()[1:]}
    assert metrics == set(get_space("nasbench-bert").default_metrics)
