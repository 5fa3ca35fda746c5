"""The Gemstones benchmark and space: the pinned config gives exactly the published parameter counts, the
targets read the shipped tables, the size baselines score without building a model."""
import gzip
import json
import math

import pytest

from trainfree.benchmarks import load_benchmark
from trainfree.data import data_path
from trainfree.errors import InvalidBenchmark
from trainfree.spaces import get_space

pytest.importorskip("transformers")


def _shipped() -> dict:
    with gzip.open(str(data_path("gemstones", "gemstones.json.gz")), "rt") as fh:
        return json.load(fh)


def test_every_gemstone_built_by_transformers_has_exactly_its_published_parameter_count():
    # on the meta device: the transformers model of each shape's config, every parameter counted
    import torch
    from transformers import GemmaForCausalLM

    space = get_space("gemstones")
    records = _shipped()["records"]
    assert len(records) == 22
    for rec in records:
        arch = space.from_json({"hidden_size": rec["width"], "num_hidden_layers": rec["depth"]})
        config = space.config(arch, space.default_settings())
        assert type(config).__name__ == "GemmaConfig" and config.vocab_size == 50304 and config.head_dim == 128
        with torch.device("meta"):
            model = GemmaForCausalLM(config)
        assert model.num_parameters() == rec["params"] == space.params_of(arch.config), rec["name"]


def test_the_384_wide_shapes_have_one_key_value_head():
    # three heads of 128 and int(3 / 2) = 1 kv head: the closed form 2 * 50304 w + w + d (15 w^2 + 2 w) of the
    # other twenty shapes over-counts these two
    from trainfree.spaces.gemstones.space import heads, params

    assert heads(384) == (3, 1) and heads(3072) == (24, 12)
    assert params(384, 13) == 66758784 != 2 * 50304 * 384 + 384 + 13 * (15 * 384 ** 2 + 2 * 384)
    assert params(768, 3) == 2 * 50304 * 768 + 768 + 3 * (15 * 768 ** 2 + 2 * 768) == 103814400


def test_targets_read_the_shipped_tables():
    data = {r["name"]: r for r in _shipped()["records"]}
    final = load_benchmark("gemstones")
    assert final.target == "loss" and final.lower_is_better and len(final) == 22
    rec = next(r for r in final.records if r.name == "Gemstone-3072x12")
    assert rec.target == data["Gemstone-3072x12"]["train_loss"]["350119526400"]
    early = load_benchmark("gemstones", target="loss@100B")
    assert all(r.extra["tokens"] == 100034150400 for r in early.records)
    dclm = load_benchmark("gemstones", target="dclm@200B")
    assert dclm.records[0].target == data[dclm.records[0].name]["dclm"]["200068300800"]
    down = load_benchmark("gemstones", target="downstream")
    assert not down.lower_is_better
    scores = data[down.records[0].name]["downstream"]["350119526400"]
    assert down.records[0].target == pytest.approx(sum(scores.values()) / len(scores))
    with pytest.raises(InvalidBenchmark, match="no loss checkpoint within 5% of 3B tokens"):
        load_benchmark("gemstones", target="loss@3B")
    with pytest.raises(InvalidBenchmark, match="unknown Gemstones target 'perplexity'"):
        load_benchmark("gemstones", target="perplexity")


def test_size_groups_are_the_suites_iso_parameter_sets():
    space = get_space("gemstones")
    bench = load_benchmark("gemstones")
    groups = {}
    for r in bench.records:
        groups.setdefault(space.factors(r.arch)["size_group"], []).append(r.name)
    assert {k: len(v) for k, v in groups.items()} == {None: 3, "100M": 9, "0.5B": 4, "1B": 3, "2B": 3}


def test_size_baselines_score_every_shape_without_building_a_model(monkeypatch):
    # the 2-billion-parameter shapes are counted on the meta device: building one would fail this test
    from trainfree import api
    from trainfree.spaces.hf import space as hf_space

    monkeypatch.setattr(hf_space.HFSpace, "build", lambda *a, **k: pytest.fail("a model was built"))
    bench = load_benchmark("gemstones")
    metrics = ["params", "nonembedding_params", "attn_params", "ffn_params", "embedding_params", "depth", "width",
               "aspect_ratio", "depth_width_sq"]
    run = api.score(bench, metrics)
    values = {(r.name, r.metric): r.value for r in run.rows}
    assert all(str(r.status) == "ok" for r in run.rows)
    for rec in bench.records:
        w, d = rec.extra["width"], rec.extra["depth"]
        assert values[(rec.name, "params")] == rec.extra["params"]
        assert values[(rec.name, "embedding_params")] == 2 * 50304 * w
        assert values[(rec.name, "nonembedding_params")] == rec.extra["params"] - 2 * 50304 * w
        assert values[(rec.name, "ffn_params")] == d * 12 * w * w
        assert values[(rec.name, "aspect_ratio")] == w / d and values[(rec.name, "depth_width_sq")] == d * w * w
    taus = {c.metric: c.correlation.kendall_tau for c in api.correlate(bench, run.rows)}
    # the figures of the issue that filed this benchmark: the bar a training-free signal has to clear
    assert round(taus["params"], 3) == 0.879 and round(taus["nonembedding_params"], 3) == 0.948


def test_a_small_gemstone_scores_the_forward_metrics(tmp_path):
    from trainfree import api

    space = get_space("gemstones")
    run = api.score(space="gemstones", archs=[{"hidden_size": 256, "num_hidden_layers": 2}],
                    metrics=["hidden_cov", "activation_distance", "swap"],
                    settings=space.default_settings().with_(batch_size=4, seq_len=16, device="cpu"))
    assert all(str(r.status) == "ok" and math.isfinite(r.value) for r in run.rows), run.rows
