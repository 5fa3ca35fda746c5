"""Generators and mutations: property tests over 1,000 samples and 1,000 mutations per space."""
import numpy as np
import pytest
import torch

from trainfree.config import ScoreSettings
from trainfree.spaces import get_space
from trainfree.spaces.choices import GENE_RANGE

TINY = {"nasbench-nlp": ScoreSettings(size="tiny", batch_size=2, seq_len=4, device="cpu"),
        "nasbench-bert": ScoreSettings(size="tiny", batch_size=2, seq_len=8, device="cpu"),
        "decoder": ScoreSettings(size="tiny", corpus="wikitext-2", batch_size=2, seq_len=8, device="cpu")}
N = 1000


def _check_valid_and_runs(space, arch, inputs):
    again = space.from_json(space.to_json(arch))  # full validation through the public parser
    assert space.arch_id(again) == space.arch_id(arch)
    model = space.build(arch, TINY[space.name])
    with torch.no_grad():
        out = model(inputs)
    assert torch.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nasbench-nlp", "nasbench-bert", "decoder"])
def test_samples_and_mutations_are_valid_and_build(name):
    space = get_space(name)
    inputs = space.inputs(TINY[name])
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(N)]
    children = [space.mutate(arch, rng) for arch in samples]
    for arch in samples + children:
        _check_valid_and_runs(space, arch, inputs)
    assert all(space.arch_id(c) != space.arch_id(p) for p, c in zip(samples, children))
    assert len({space.arch_id(a) for a in samples}) > {"nasbench-bert": 0.3, "nasbench-nlp": 0.5, "decoder": 0.99}[name] * N  # small cells repeat, as in the benchmark


@pytest.mark.parametrize("name", ["nasbench-nlp", "nasbench-bert", "decoder"])
def test_generation_is_seeded(name):
    space = get_space(name)
    ids = lambda seed: [space.arch_id(space.mutate(space.sample(rng := np.random.default_rng(seed)), rng))
                        for _ in range(5)]
    first = [space.arch_id(a) for a in (lambda r: [space.sample(r) for _ in range(20)])(np.random.default_rng(3))]
    second = [space.arch_id(a) for a in (lambda r: [space.sample(r) for _ in range(20)])(np.random.default_rng(3))]
    assert first == second and ids(1) == ids(1)


@pytest.mark.parametrize("name", ["nasbench-nlp", "nasbench-bert", "decoder"])
def test_every_gene_vector_decodes_to_a_valid_architecture(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    vectors = [rng.integers(0, GENE_RANGE, space.n_genes) for _ in range(200)]
    archs = [space.decode(v) for v in vectors]
    for arch in archs:
        space.from_json(space.to_json(arch))
    assert space.arch_id(space.decode(vectors[0])) == space.arch_id(archs[0])  # deterministic
    assert len({space.arch_id(a) for a in archs}) > 100


def test_bert_sampling_covers_the_search_space():
    from trainfree.spaces.bert.genotype import search_space

    space, rng = get_space("nasbench-bert"), np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)]
    allowed = search_space()
    assert {a.hidden_size for a in archs} == set(allowed["hidden_size"])
    assert {len(a.layers) for a in archs} == set(allowed["num_encoder_layers"])
    assert {(l.operation_type, l.operation_parameter) for a in archs for l in a.layers} == {
        (op, p) for op in allowed["encoder_layer"]["operation_type"] for p in allowed["encoder_layer"][op]}


def test_recipe_features_distance():
    from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
    from tests.conftest import LSTM

    space = get_space("nasbench-nlp")
    lstm = parse_recipe(LSTM)
    rng = np.random.default_rng(0)
    child = space.mutate(lstm, rng)
    assert space.features(lstm) == space.features(parse_recipe(LSTM))
    assert 0 < len(space.features(lstm) ^ space.features(child)) < len(space.features(lstm))


def test_the_decoder_ranges_are_those_of_the_shipped_lts_settings():
    # the space holds its ranges as data (no benchmark load at run time); they must stay what the
    # benchmark's settings show
    from trainfree.benchmarks import load_benchmark
    from trainfree.spaces.decoder.generate import RANGES, TEMPLATES

    for family, setting in TEMPLATES.items():
        archs = [r.arch for r in load_benchmark(f"lts:{setting}").records]
        inner = [d for a in archs for d in a.d_inner]
        first = archs[0]
        assert RANGES[family] == {
            "n_layer": sorted({a.n_layer for a in archs}), "d_model": sorted({a.d_model for a in archs}),
            "n_head": sorted({h for a in archs for h in a.n_head}), "d_inner": (min(inner), max(inner)),
            "d_embed": sorted({a.d_embed for a in archs}), "div_val": sorted({a.div_val for a in archs}),
            "fixed": {"n_token": first.n_token, "cutoffs": first.cutoffs, "tie_projs": first.tie_projs,
                      "tgt_len": first.tgt_len}}
