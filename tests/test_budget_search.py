"""Budget-first search of config spaces, configs one can train, the user's own corpus, tokenizer and
vocabulary, and the default search metric with its evidence."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainfree.errors import TrainfreeError
from trainfree.spaces import get_space

pytest.importorskip("transformers")
ROOT = Path(__file__).resolve().parents[1]


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "trainfree", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


SMALL = textwrap.dedent("""
    name = "small-llama"
    model = "LlamaForCausalLM"
    [fixed]
    max_position_embeddings = 64
    intermediate_size = 128
    [searched]
    num_hidden_layers = [1, 2, 3]
    hidden_size = [32, 64]
    num_attention_heads = [2, 4]
    num_key_value_heads = [1, 2]
    [constraints]
    divisible = [["hidden_size", "num_attention_heads"], ["num_attention_heads", "num_key_value_heads"]]
    """)


def test_the_grid_goes_through_every_architecture_meeting_the_budget_and_ends(tmp_path):
    from trainfree import api
    from trainfree.search.strategies import DTYPE_BYTES

    (tmp_path / "s.toml").write_text(SMALL)
    space = get_space(str(tmp_path / "s.toml"))
    every = list(space.enumerate())
    assert len(every) == 3 * 2 * 2 * 2 == space.grid_size()  # every combination keeps the constraints
    limit = sorted(space.footprint(a)["params"] for a in every)[12]
    result = api.search(space, "nonembedding_params", "grid", objective="params", max_params=limit)
    fits = {space.arch_id(a) for a in every if space.footprint(a)["params"] <= limit}
    assert {t.arch_id for t in result.trials} == fits and len(fits) >= 13  # the grid, then the search ends
    best = result.chosen()
    assert best.values["nonembedding_params"] == max(t.values["nonembedding_params"] for t in result.trials)
    # a memory budget: weights and the key/value cache of the context, in the stated dtype
    context = 4096

    def need(arch):
        f = space.footprint(arch)
        return DTYPE_BYTES["float16"] * (f["params"] + f["kv_per_token"] * context)

    gib = sorted(need(a) for a in every)[len(every) // 2] / 2 ** 30
    result = api.search(space, "params", "grid", max_memory=gib, context=context, dtype="float16")
    assert {t.arch_id for t in result.trials} == {space.arch_id(a) for a in every if need(a) <= gib * 2 ** 30}
    with pytest.raises(TrainfreeError, match="give the context"):
        api.search(space, "params", "grid", max_memory=1.0)
    with pytest.raises(TrainfreeError, match="no architecture of space 'small-llama' meets the budget"):
        api.search(space, "params", "grid", max_params=10)


def test_a_space_too_large_to_enumerate_says_how_large(tmp_path):
    from trainfree import api

    big = SMALL.replace('"small-llama"', '"big-llama"').replace("num_hidden_layers = [1, 2, 3]", "num_hidden_layers = {min = 1, max = 4000}").replace(
        "hidden_size = [32, 64]", "hidden_size = {min = 32, max = 4096, step = 32}")
    (tmp_path / "big.toml").write_text(big)
    with pytest.raises(TrainfreeError, match="has 2,048,000 combinations of its choices"):
        api.search(str(tmp_path / "big.toml"), "params", "grid")
    with pytest.raises(TrainfreeError, match="cannot be enumerated"):
        api.search("nasbench-nlp", "params", "grid", settings=get_space("nasbench-nlp").tiny_settings())


@pytest.mark.slow
def test_cli_grid_search_of_hf_llama_prints_a_ranked_list_and_a_front(tmp_path):
    proc = _cli(["search", "--space", "hf-llama", "--strategy", "grid", "--max-params", "8e6", "--no-store",
                 "--jobs", "1", "--quiet", "--top", "3", "--output", tmp_path / "g.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "grid: every architecture meeting the budget (at most 8e+06 parameters)" in out
    assert "best 3 by" in out and "Pareto front (" in out and "against params" in out
    chosen = [line for line in out.splitlines() if line.startswith("chosen: ")]
    assert len(chosen) == 1 and "L-" in chosen[0] and "d-" in chosen[0]  # the shape beside the id
    data = json.loads((tmp_path / "g.json").read_text())
    assert all(t["values"]["params"] <= 8e6 for t in data["trials"])
    assert data["pareto"] and all("shape" in t for t in data["pareto"])


@pytest.mark.slow
def test_export_config_round_trips_through_transformers_offline(tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    search = tmp_path / "s.json"
    proc = _cli(["search", "--space", "gemstones", "--strategy", "grid", "--max-params", "6e7", "--metrics",
                 "nonembedding_params", "--no-store", "--jobs", "1", "--quiet", "--output", search], tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(search.read_text())
    proc = _cli(["export-config", "--search", search, "--rank", "1", "--output", tmp_path / "cfg"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = AutoConfig.from_pretrained(str(tmp_path / "cfg"))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    best = max(data["trials"], key=lambda t: t["values"]["nonembedding_params"])
    assert model.num_parameters() == best["values"]["params"]  # exactly what trainfree reported
    assert f"{model.num_parameters():,} parameters" in proc.stdout
    again = _cli(["export-config", "--search", search, "--output", tmp_path / "cfg"], tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr  # nothing overwritten
    wrong = _cli(["export-config", "--space", "nasbench-nlp", "--arch", "{}", "--output", tmp_path / "x"], tmp_path)
    assert wrong.returncode == 2 and "not a transformers config space" in wrong.stderr


def _tokenizer(path: Path, texts: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<unk>", "</s>"]))
    tok.save(str(path))
    return path


def test_a_corpus_and_a_tokenizer_of_ones_own(tmp_path):
    from trainfree import api

    text = "\n".join(f"the model number {i} reads a line of plain text and counts its words" for i in range(400))
    corpus = tmp_path / "my.txt"
    corpus.write_text(text)
    tokenizer = _tokenizer(tmp_path / "tokenizer.json", text.splitlines())
    space = get_space("hf-llama")
    settings = space.default_settings().with_(corpus=str(corpus), tokenizer=str(tokenizer), batch_size=4,
                                              seq_len=16)
    vocab = space.vocab({}, settings)
    from tokenizers import Tokenizer

    assert vocab == Tokenizer.from_file(str(tokenizer)).get_vocab_size() < 500
    tokens = space.inputs(settings)
    assert int(tokens.max()) < vocab and tuple(tokens.shape) == (4, 16)
    run = api.score(space="hf-llama", archs=[space.example()], metrics=["params", "hidden_cov"], settings=settings)
    assert all(str(r.status) == "ok" for r in run.rows)
    # the model's embedding is the tokenizer's vocabulary: the budget counts the model one will train
    default = api.score(space="hf-llama", archs=[space.example()], metrics=["params"])
    width = space.example().config["hidden_size"]
    tied = space.example().config["tie_word_embeddings"]
    assert default.rows[0].value - run.rows[0].value == (30522 - vocab) * width * (1 if tied else 2)
    # the files enter the fingerprint by their content, not their path
    identity = space.identity(settings)
    assert identity["corpus"].startswith("file:") and identity["tokenizer"].startswith("file:")
    copy = tmp_path / "copy.txt"
    copy.write_text(text)
    assert space.fingerprint(settings.with_(corpus=str(copy))) == space.fingerprint(settings)
    copy.write_text(text + "\nmore")
    assert space.fingerprint(settings.with_(corpus=str(copy))) != space.fingerprint(settings)
    # the word-level spaces read a text file too; a tokenizer they do not use is refused
    nlp = get_space("nasbench-nlp")
    assert nlp.inputs(nlp.tiny_settings().with_(corpus=str(corpus))).shape[1] == 10
    with pytest.raises(TrainfreeError, match="does not use the tokenizer setting"):
        nlp.check(nlp.tiny_settings().with_(tokenizer=str(tokenizer)))


@pytest.mark.slow
def test_cli_corpus_and_tokenizer_flags_and_their_errors(tmp_path):
    text = "\n".join(f"line {i} of a small corpus with a handful of words" for i in range(300))
    (tmp_path / "my.txt").write_text(text)
    _tokenizer(tmp_path / "tok.json", text.splitlines())
    (tmp_path / "archs.jsonl").write_text(json.dumps(get_space("hf-llama").example().config) + "\n")
    base = ["score", "--space", "hf-llama", "--archs", tmp_path / "archs.jsonl", "--metrics", "params", "--no-store",
            "--quiet", "--jobs", "1", "--batch-size", "4", "--seq-len", "16", "--output", tmp_path / "o.csv"]
    ok = _cli([*base, "--corpus", "my.txt", "--tokenizer", "tok.json"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = _cli([*base, "--corpus", "my.txt", "--tokenizer", "missing.json"], tmp_path)
    assert bad.returncode == 2 and "missing.json" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "junk.json").write_text("{not a tokenizer")
    bad = _cli([*base, "--corpus", "my.txt", "--tokenizer", "junk.json"], tmp_path)
    assert bad.returncode == 2 and "not a tokenizers JSON file" in bad.stderr
    bad = _cli([*base, "--corpus", "nosuch.txt"], tmp_path)
    assert bad.returncode == 2 and "nosuch.txt" in bad.stderr


def test_vocab_size_is_a_field_of_a_space_file(tmp_path):
    from trainfree import api

    (tmp_path / "v.toml").write_text(SMALL.replace('"small-llama"', '"vocab-llama"').replace(
        "[searched]", "[searched]\nvocab_size = [1000, 8000]"))
    space = get_space(str(tmp_path / "v.toml"))
    archs = [dict(space.example().config, vocab_size=v) for v in (1000, 8000)]
    run = api.score(space=space.name, archs=archs, metrics=["params", "embedding_params"])
    values = {(r.name, r.metric): r.value for r in run.rows}
    names = [space.arch_id(space.from_json(a)) for a in archs]
    width = space.example().config["hidden_size"]
    assert values[(names[1], "params")] - values[(names[0], "params")] == 7000 * width * 2  # untied head
    assert int(space.inputs(space.default_settings()).max()) < 1000  # ids fit the smallest vocabulary


def test_a_search_without_a_metric_uses_the_best_measured_one_and_says_which(tmp_path):
    from trainfree import api
    from trainfree.evaluation.evidence import default_objective

    found = default_objective("decoder")
    assert found is not None
    metric, ev = found
    assert max(ev.taus.values()) > 0 and len(ev.taus) >= 3  # measured, positive, on several decoder benchmarks
    result = api.search("hf-llama", None, "random", budget=3, settings=get_space("hf-llama").tiny_settings())
    assert result.problem.metric == metric
    assert result.notes[0].startswith(f"metric {metric}: the best measured on decoder benchmarks: Kendall tau")
    proc = _cli(["search", "--space", "hf-llama", "--budget", "3", "--no-store", "--quiet", "--jobs", "1",
                 "--size", "tiny", "--batch-size", "4", "--seq-len", "8"], tmp_path)
    assert proc.returncode == 0 and f"metric {metric}: the best measured on decoder benchmarks" in proc.stdout


def test_a_metric_that_ranks_decoders_backwards_gets_a_warning_with_its_figure(tmp_path):
    from trainfree import api

    with pytest.warns(UserWarning, match=r"hidden_cov ranks decoder benchmarks backwards \(Kendall tau -"):
        result = api.search("hf-llama", "hidden_cov", "random", budget=2,
                            settings=get_space("hf-llama").tiny_settings())
    assert any(n.startswith("warning: hidden_cov ranks decoder benchmarks backwards") for n in result.notes)
