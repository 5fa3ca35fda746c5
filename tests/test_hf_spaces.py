"""Spaces over Hugging Face transformers configs (trainfree.spaces.hf): equivalence with transformers'
own models, constraints under sampling and mutation, space-file errors, and the CLI on hf-llama."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402
from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from trainfree import api  # noqa: E402
from trainfree.errors import InvalidArchitecture, TrainfreeError  # noqa: E402
from trainfree.metrics import METRICS, Probe, get_metric  # noqa: E402
from trainfree.spaces import get_space  # noqa: E402
from trainfree.spaces.choices import GENE_RANGE  # noqa: E402
from trainfree.spaces import space_file as load_space_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
TINY_LLAMA = """
name = "tiny-llama-{tag}"
model = "LlamaForCausalLM"
[fixed]
max_position_embeddings = 64
rms_norm_eps = 1e-6
[searched]
num_hidden_layers = [1, 2]
hidden_size = [32, 48]
num_attention_heads = [2, 4]
num_key_value_heads = [1, 2]
intermediate_size = {{min = 32, max = 96, step = 32}}
tie_word_embeddings = [true, false]
[constraints]
divisible = [["hidden_size", "num_attention_heads"], ["num_attention_heads", "num_key_value_heads"]]
max_params = 4000000
"""


def _file(tmp_path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return load_space_file(_file(tmp_path_factory.mktemp("llama"), TINY_LLAMA.format(tag="eq")))


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_llama_is_bitwise_transformers_own(tiny_llama):
    from transformers import LlamaConfig, LlamaForCausalLM

    sp = tiny_llama
    settings = sp.tiny_settings().with_(seed=7)
    for arch in (sp.from_json({"num_hidden_layers": 2, "hidden_size": 48, "num_attention_heads": 4,
                               "num_key_value_heads": 2, "intermediate_size": 64, "tie_word_embeddings": False}),
                 sp.sample(np.random.default_rng(1))):
        built = sp.build(arch, settings)
        torch.manual_seed(7)
        config = LlamaConfig(vocab_size=8192, max_position_embeddings=64, rms_norm_eps=1e-6, **arch.config,
                             attn_implementation="eager")  # trainfree's choice (grasp's double backward)
        direct = LlamaForCausalLM(config).eval()
        assert _same_weights(built.hf, direct)
        tokens = sp.inputs(settings)
        with torch.no_grad():
            assert torch.equal(built(tokens), direct(input_ids=tokens).logits)
        n = direct.num_parameters()
        assert sum(p.numel() for p in built.parameters()) == n
        assert get_metric("params")(Probe(arch, sp, settings)) == n
        assert sp.params_of(arch.config) == sp.build(arch, sp.tiny_settings().with_(size="paper")).hf.num_parameters()


def test_gpt2_is_bitwise_transformers_own(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    sp = load_space_file(_file(tmp_path, """
model = "GPT2LMHeadModel"
[fixed]
n_positions = 64
[searched]
n_layer = [1, 2]
n_embd = [32, 64]
n_head = [2, 4]
[constraints]
divisible = [["n_embd", "n_head"]]
""", "tiny_gpt2.toml"))
    assert sp.name == "tiny-gpt2"  # the file's stem, when it names none
    settings = sp.tiny_settings()
    arch = sp.from_json({"n_layer": 2, "n_embd": 64, "n_head": 4})
    built = sp.build(arch, settings)
    torch.manual_seed(0)
    direct = GPT2LMHeadModel(GPT2Config(vocab_size=8192, n_positions=64, n_layer=2, n_embd=64, n_head=4,
                                        attn_implementation="eager")).eval()
    assert _same_weights(built.hf, direct)
    tokens = sp.inputs(settings)
    with torch.no_grad():
        assert torch.equal(built(tokens), direct(input_ids=tokens).logits)
    assert sum(p.numel() for p in built.parameters()) == direct.num_parameters()


def _meets(sp, arch) -> bool:
    config = arch.config
    for a, b in sp.spec.divisible:
        if sp.spec.value(a, config) % sp.spec.value(b, config):
            return False
    n = sp.params_of(config)
    return (sp.spec.max_params is None or n <= sp.spec.max_params) and all(
        any(type(v) is type(o) and v == o for o in sp.spec.searched[f]) for f, v in config.items())


@pytest.mark.parametrize("name", ["hf-llama", "hf-gpt2"])
@hsettings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), genes=st.lists(st.integers(0, GENE_RANGE - 1), min_size=6, max_size=6))
def test_sampled_mutated_and_decoded_archs_meet_the_constraints(name, seed, genes):
    sp = get_space(name)
    rng = np.random.default_rng(seed)
    drawn = sp.sample(rng)
    child = sp.mutate(drawn, rng)
    decoded = sp.decode(genes[: sp.n_genes])
    assert decoded == sp.decode(genes[: sp.n_genes])  # a function of the genes
    for arch in (drawn, child, decoded):
        assert _meets(sp, arch), arch
        again = sp.from_json(json.loads(sp.to_json(arch)))
        assert again == arch and sp.arch_id(again) == sp.arch_id(arch)
        assert sp.arch_id(sp.parse(sp.canonical_json(arch))) == sp.arch_id(arch)
    assert len(sp.features(drawn) ^ sp.features(child)) in (0, 2)  # one field moved (or none could)


@pytest.mark.parametrize("name", ["hf-llama", "hf-gpt2"])
def test_sampled_archs_build_and_run_at_tiny_size(name):
    sp = get_space(name)
    settings = sp.tiny_settings()
    rng = np.random.default_rng(11)
    for _ in range(3):
        arch = sp.mutate(sp.sample(rng), rng)
        model = sp.build(arch, settings)
        with torch.no_grad():
            logits = model(sp.inputs(settings))
        assert logits.shape == (*sp.inputs(settings).shape, 8192) and bool(torch.isfinite(logits).all())


def _metrics_listed(space: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "trainfree", "metrics", "--space", space], capture_output=True,
                         text=True, env={**ENV, "COLUMNS": "300"}, check=True).stdout
    names = [line.split()[0] for line in out.splitlines()[1:] if line and not line.startswith(("(", " "))]
    return [n for n in names if n in {m.name for m in METRICS}]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hf-llama", "hf-gpt2"])
def test_every_listed_metric_gives_a_finite_float(name):
    listed = _metrics_listed(name)
    assert {"params", "hidden_cov", "activation_distance", "grad_norm", "snip", "synflow", "fisher"} <= set(listed)
    assert not {"head_confidence", "jacob_cov", "decoder_jacob_cov"} & set(listed)  # other families' internals
    sp = get_space(name)
    probe = Probe(sp.example(), sp, sp.tiny_settings())
    for metric in listed:
        value = get_metric(metric)(probe)
        assert isinstance(value, float) and math.isfinite(value), (metric, value)


def test_parameter_groups_partition_the_model(tiny_llama):
    sp = tiny_llama
    for tie in (True, False):
        arch = sp.from_json({"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                             "num_key_value_heads": 1, "intermediate_size": 32, "tie_word_embeddings": tie})
        model = sp.build(arch, sp.tiny_settings())
        groups = sp.parameter_groups(model)
        assert set(groups) == {"embedding", "attention", "mlp", "norm"}
        ids = [id(p) for g in groups.values() for p in g]
        assert len(ids) == len(set(ids)) == len(list(model.parameters()))
        assert len(groups["embedding"]) == (1 if tie else 2)  # the untied LM head is an output embedding
        assert len(groups["norm"]) == 3 and len(groups["mlp"]) == 3 and len(groups["attention"]) == 4


def test_masked_lm_file_space_scores(tmp_path):
    sp = load_space_file(_file(tmp_path, """
name = "tiny-bert"
model = "BertForMaskedLM"
[fixed]
max_position_embeddings = 64
[searched]
num_hidden_layers = [1, 2]
hidden_size = [32]
num_attention_heads = [2, 4]
intermediate_size = [64]
[constraints]
divisible = [["hidden_size", "num_attention_heads"]]
""", "bert.toml"))
    settings = sp.tiny_settings()
    targets = sp.targets(settings)
    assert targets.shape == sp.inputs(settings).shape and bool((targets == -100).any()) and bool((targets >= 0).any())
    probe = Probe(sp.example(), sp, settings)
    for metric in ("snip", "hidden_cov", "activation_distance", "nonembedding_params"):
        assert math.isfinite(get_metric(metric)(probe))


@pytest.mark.parametrize("text,fmt,names", [
    (TINY_LLAMA.format(tag="x").replace("rms_norm_eps", "rms_norm_epsilon"), "toml",
     ["fixed.rms_norm_epsilon", "unknown config field", "rms_norm_eps"]),
    (TINY_LLAMA.format(tag="x").replace("hidden_size = [32, 48]", "hidden_sise = [32, 48]"), "toml",
     ["searched.hidden_sise", "unknown config field"]),
    (TINY_LLAMA.format(tag="x").replace("num_attention_heads = [2, 4]", "num_attention_heads = [2, 4, 5]"), "toml",
     ["searched.num_attention_heads", "choice 5 breaks the constraint"]),
    (TINY_LLAMA.format(tag="x").replace("LlamaForCausalLM", "LlamaForCasualLM"), "toml",
     ["model", "unknown model class 'LlamaForCasualLM'", "LlamaForCausalLM"]),
    (TINY_LLAMA.format(tag="x").replace("[searched]", "[searched"), "toml", ["not valid TOML", "line"]),
    ('{"model": "GPT2LMHeadModel", "searched": {"n_layer": [1, 2]},}', "json", ["not valid JSON"]),
    ('{"model": "GPT2LMHeadModel", "searched": {"n_layer": [1, 2]}, "fixed": {"vocab_size": 1}}', "json",
     ["fixed.vocab_size", "an integer of at least 2"]),
    ('{"model": "GPT2LMHeadModel", "searched": {"n_layer": [1, 2], "vocab_size": [8000, true]}}', "json",
     ["searched.vocab_size", "an integer of at least 2"]),
    ('{"model": "GPT2LMHeadModel", "searched": {"n_layer": [1, 2], "n_embd": [32]}, '
     '"constraints": {"max_params": 10}}', "json", ["constraints", "no architecture met them"]),
])
def test_space_file_errors_name_the_file_and_the_field(tmp_path, text, fmt, names):
    path = _file(tmp_path, text, f"bad.{fmt}")
    with pytest.raises(TrainfreeError) as err:
        load_space_file(path)
    message = str(err.value)
    assert str(path) in message and all(n in message for n in names), message


@pytest.mark.slow
def test_the_cli_gives_a_bad_space_file_one_line(tmp_path):
    path = _file(tmp_path, TINY_LLAMA.format(tag="x").replace("rms_norm_eps", "rms_norm_epsilon"))
    proc = subprocess.run([sys.executable, "-m", "trainfree", "metrics", "--space", str(path)], capture_output=True,
                          text=True, env=ENV)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}: fixed.rms_norm_epsilon: unknown config field of LlamaConfig" in proc.stderr


def test_an_arch_that_breaks_a_constraint_is_refused(tiny_llama):
    llama = get_space("hf-llama")
    arch = {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "num_key_value_heads": 8,
            "intermediate_size": 256, "tie_word_embeddings": True}
    with pytest.raises(InvalidArchitecture, match="num_attention_heads = 2 is not divisible by num_key_value_heads = 8"):
        llama.from_json(arch)
    with pytest.raises(InvalidArchitecture, match="exceed the budget max_params = 20000000"):
        llama.from_json({**arch, "num_hidden_layers": 6, "hidden_size": 256, "num_key_value_heads": 2,
                         "intermediate_size": 1024, "tie_word_embeddings": False})
    with pytest.raises(InvalidArchitecture, match="is not one of"):
        tiny_llama.from_json({"num_hidden_layers": 3, "hidden_size": 32, "num_attention_heads": 2,
                              "num_key_value_heads": 1, "intermediate_size": 32, "tie_word_embeddings": True})


@pytest.mark.slow
def test_a_file_space_scores_in_worker_processes(tmp_path):
    """Pool workers rebuild the space from the file's text the driver hands them (the file may be gone)."""
    path = _file(tmp_path, TINY_LLAMA.format(tag="pool"))
    sp = get_space(str(path))
    archs = [sp.sample(np.random.default_rng(s)) for s in range(3)]
    by_path = api.score(space=str(path), archs=[a.config for a in archs[:1]], metrics=["params"],
                        settings=sp.tiny_settings())  # a path is taken wherever a space name is
    assert by_path.rows[0].arch_id == sp.arch_id(archs[0]) and get_space(str(path)) is sp
    path.unlink()  # the workers must not need the file
    pooled = api.score(space=sp.name, archs=archs, metrics=["params", "hidden_cov"], settings=sp.tiny_settings(),
                       jobs=2, executor="process")
    local = api.score(space=sp.name, archs=archs, metrics=["params", "hidden_cov"], settings=sp.tiny_settings())
    assert [(r.arch_id, r.metric, r.value, r.status) for r in pooled.rows] == \
        [(r.arch_id, r.metric, r.value, r.status) for r in local.rows]
    assert all(r.status == "ok" for r in local.rows)


@pytest.mark.slow
def test_cli_score_archs_and_nsga2_search(tmp_path):
    archs = tmp_path / "mine.jsonl"
    archs.write_text("\n".join(json.dumps(a) for a in [
        {"name": "small", "arch": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 4,
                                   "num_key_value_heads": 2, "intermediate_size": 256, "tie_word_embeddings": True}},
        {"num_hidden_layers": 3, "hidden_size": 192, "num_attention_heads": 8, "num_key_value_heads": 8,
         "intermediate_size": 384, "tie_word_embeddings": False}]) + "\n")
    tiny = ["--size", "tiny", "--batch-size", "4", "--seq-len", "16", "--jobs", "1", "--no-store"]
    out = tmp_path / "scores.csv"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "score", "--space", "hf-llama", "--archs", str(archs),
                           "--output", str(out), *tiny], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "8 scores for 2 architectures (8 ok)" in proc.stdout and "small" in out.read_text()
    search = tmp_path / "nsga2.json"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "search", "--space", "hf-llama", "--strategy", "nsga2",
                           "--objective", "params", "--budget", "6", "--population", "3", "--output", str(search),
                           *tiny], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(search.read_text())
    assert result["space"] == "hf-llama" and len(result["trials"]) == 6 and result["pareto"]
    sp = get_space("hf-llama")
    assert all(_meets(sp, sp.from_json(t["arch"])) for t in result["trials"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(archs.read_text().splitlines()[0] + "\n" + json.dumps({"num_hidden_layers": 2}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "trainfree", "score", "--space", "hf-llama", "--archs", str(bad),
                           "--output", str(out), *tiny], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 2 and f"{bad}:2" in proc.stderr and "Traceback" not in proc.stderr


def test_no_transformers_at_help_and_a_missing_one_names_the_extra():
    code = ("import sys; from trainfree.cli import build_parser; build_parser(); "
            "assert 'transformers' not in sys.modules, 'imported at --help'; "
            "sys.modules['transformers'] = None; from trainfree.spaces import get_space\n"
            "try:\n    get_space('hf-llama')\nexcept Exception as err:\n    print(type(err).__name__, err)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert "MissingExtra" in out.stdout and "trainfree[hf]" in out.stdout, out.stdout + out.stderr


def test_the_example_space_file_and_its_archs():
    from trainfree.archs import read_archs

    sp = get_space(str(ROOT / "examples" / "my_space.toml"))
    assert sp.name == "my-qwen2" and sp.spec.model == "Qwen2ForCausalLM"
    items = read_archs(ROOT / "examples" / "my_space_archs.jsonl", sp)
    assert [n for n, _ in items] == ["narrow-deep", "balanced", "wide-shallow"]
    assert all(sp.violation(a.config) is None for _, a in items)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hf-llama", "hf-gpt2"])
def test_a_thousand_sampled_and_mutated_archs_validate_build_and_run(name):
    """1,000 sampled and 1,000 mutated architectures (seeded): each validates through the space's parser,
    meets every constraint and round-trips through JSON; every distinct one builds from its tiny-size
    config and runs a forward on the meta device (shapes and transformers' own checks, no arithmetic);
    a seeded 12 of them build for real at the tiny size and give finite logits."""
    from trainfree.spaces.hf.model import model_class

    sp = get_space(name)
    settings = sp.tiny_settings()
    rng = np.random.default_rng(2026)
    sampled = [sp.sample(rng) for _ in range(1000)]
    mutated = [sp.mutate(arch, rng) for arch in sampled]
    distinct = {}
    for arch in sampled + mutated:
        again = sp.parse(sp.to_json(arch))  # the parser validates: fields, choices, constraints
        assert again == arch and _meets(sp, arch), arch
        distinct.setdefault(sp.arch_id(arch), arch)
    tokens = sp.inputs(settings)
    for arch in distinct.values():
        with torch.device("meta"):
            hf = model_class(sp.spec.model)._from_config(sp.config(arch, settings))
            logits = hf(input_ids=tokens.to("meta")).logits
        assert logits.shape == (*tokens.shape, hf.config.vocab_size)
    pick = np.random.default_rng(0).choice(len(distinct), size=min(12, len(distinct)), replace=False)
    archs = list(distinct.values())
    for i in pick:
        with torch.no_grad():
            assert bool(torch.isfinite(sp.build(archs[i], settings)(tokens)).all()), archs[i]


#: the width, heads, depth and MLP-width fields of each supported class, and fixed fields it needs
_FIELDS = {"GPT2LMHeadModel": ("n_embd", "n_head", "n_layer", "n_inner", {})}
_GQA = {"num_key_value_heads": 2}


@pytest.mark.parametrize("model", __import__("trainfree.spaces.hf.spec", fromlist=["x"]).SUPPORTED_MODELS)
def test_every_supported_model_class_gives_every_default_metric(tmp_path, model):
    # the list a space file may name: each class's outputs serve every metric of the space's default set
    from trainfree import api

    h, nh, nl, ff, fixed = _FIELDS.get(model, ("hidden_size", "num_attention_heads", "num_hidden_layers",
                                               "intermediate_size", {}))
    if model.startswith(("Llama", "Mistral", "Qwen", "Gemma", "Olmo")):
        fixed = dict(_GQA, **({"head_dim": 16} if model.startswith(("Qwen3", "Gemma")) else {}))
    lines = [f'name = "supported-{model.lower()}"', f'model = "{model}"', "[fixed]"]
    lines += [f"{k} = {v}" for k, v in fixed.items()]
    lines += ["[searched]", f"{h} = [64]", f"{nh} = [4]", f"{nl} = [2]", f"{ff} = [128]"]
    (tmp_path / "s.toml").write_text("\n".join(lines) + "\n")
    sp = get_space(str(tmp_path / "s.toml"))
    run = api.score(space=sp.name, archs=[sp.example()], metrics=list(sp.default_metrics) + ["snip", "swap"],
                    settings=sp.tiny_settings())
    assert [(r.metric, str(r.status)) for r in run.rows if str(r.status) != "ok"] == []
