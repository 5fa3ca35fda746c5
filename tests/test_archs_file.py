"""Architectures of one's own: `score --space S --archs FILE`, api.score with a list, and FactorySpace."""
import csv
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import torch

from trainfree import api
from trainfree.archs import from_list, read_archs
from trainfree.config import ScoreSettings
from trainfree.errors import InvalidArchitecture, TrainfreeError
from trainfree.spaces import get_space
from trainfree.spaces.factory import FactorySpace

TINY = ["--size", "tiny", "--batch-size", "4", "--seq-len", "8", "--quiet", "--jobs", "1"]
#: a cheap metric besides params for each shipped space
CHEAP = {"nasbench-nlp": "hidden_cov", "nasbench-bert": "nonembedding_params", "decoder": "decoder_params"}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "trainfree", *map(str, args)], capture_output=True, text=True)


def sampled(space_name, n=3, seed=0):
    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    return space, [space.sample(rng) for _ in range(n)]


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("space_name", sorted(CHEAP))
def test_cli_scores_three_architectures_from_a_file(space_name, tmp_path):
    space, archs = sampled(space_name)
    lines = ["# my three architectures", json.dumps({"name": "first", "arch": json.loads(space.to_json(archs[0]))}),
             "", space.to_json(archs[1]),  # the architecture itself: named by its id
             json.dumps({"arch": json.loads(space.to_json(archs[2]))})]
    archs_file = write_lines(tmp_path / "mine.jsonl", lines)
    out, store = tmp_path / "scores.csv", tmp_path / "s.sqlite"
    proc = cli("score", "--space", space_name, "--archs", archs_file, "--metrics", f"params,{CHEAP[space_name]}",
               "--output", out, "--store", store, *TINY)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    names = ["first", space.arch_id(archs[1]), space.arch_id(archs[2])]
    assert [r["name"] for r in rows] == [n for n in names for _ in range(2)]
    assert [r["arch_id"] for r in rows[::2]] == [space.arch_id(a) for a in archs]
    assert all(r["status"] == "ok" for r in rows)
    params = [float(r["value"]) for r in rows if r["metric"] == "params"]
    settings = get_space(space_name).default_settings().with_(size="tiny", batch_size=4, seq_len=8)
    assert params[0] == sum(p.numel() for p in space.build(archs[0], settings).parameters())
    with sqlite3.connect(store) as db:  # names under the file's label, architectures in the store
        stored = db.execute("SELECT name, arch_id FROM names WHERE benchmark = ?", (f"archs:{archs_file}",)).fetchall()
    assert sorted(stored) == sorted(zip(names, [space.arch_id(a) for a in archs]))
    again = cli("score", "--space", space_name, "--archs", archs_file, "--metrics", "params",
                "--output", out, "--store", store, *TINY)
    assert "computed 0, reused 3" in again.stdout, again.stderr


def test_file_line_errors_name_the_line(tmp_path):
    space, archs = sampled("decoder", 2)
    good = space.to_json(archs[0])
    cases = {
        "malformed": (["# header", good, '{"name": "x", "arch": '], "bad.jsonl:3: not valid JSON"),
        "invalid": ([good, "", json.dumps({"name": "y", "arch": {"family": "gpt2"}})], "bad.jsonl:3:"),
        "bad name": ([json.dumps({"name": [1], "arch": json.loads(good)})], "bad.jsonl:1: name: expected a string"),
    }
    for lines, message in cases.values():
        path = write_lines(tmp_path / "bad.jsonl", lines)
        with pytest.raises(InvalidArchitecture, match=message):
            read_archs(path, space)
    same = write_lines(tmp_path / "dup.jsonl", [json.dumps({"name": "a", "arch": json.loads(good)}),
                                                json.dumps({"name": "a", "arch": json.loads(space.to_json(archs[1]))}),
                                                good, good])
    with pytest.raises(TrainfreeError, match=rf"dup.jsonl: duplicate architecture names: 'a' \(line 1, line 2\), "
                                            rf"'{space.arch_id(archs[0])}' \(line 3, line 4\)"):
        read_archs(same, space)
    with pytest.raises(TrainfreeError, match="no architectures"):
        read_archs(write_lines(tmp_path / "empty.jsonl", ["# nothing", ""]), space)


@pytest.mark.slow
def test_cli_file_error_is_one_line(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", ['{"node_0": {"op": "linear", "input": ["x"]}}', "not json"])
    proc = cli("score", "--space", "nasbench-nlp", "--archs", path, "--metrics", "params", "--output",
               tmp_path / "o.csv", "--no-store", *TINY)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}:1:" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = cli("score", "--archs", path, "--output", tmp_path / "o.csv", "--no-store", *TINY)
    assert proc.returncode == 2 and "--archs needs --space" in proc.stderr


@pytest.mark.slow
def test_search_output_fed_back_in(tmp_path):
    settings = ScoreSettings(size="tiny", corpus="wikitext-2", batch_size=4, seq_len=8)
    result = api.search("decoder", "params", budget=4, search_seed=0, settings=settings, jobs=1, executor="local")
    found = result.as_dict()
    assert all("arch" in t for t in found["trials"])
    search_json = tmp_path / "search.json"
    search_json.write_text(json.dumps(found, indent=2))
    items = read_archs(search_json, get_space("decoder"))
    assert [n for n, _ in items] == list(dict.fromkeys(t["arch_id"] for t in found["trials"]))
    out = tmp_path / "again.csv"
    proc = cli("score", "--space", "decoder", "--archs", search_json, "--metrics", "params", "--output", out,
               "--no-store", *TINY)
    assert proc.returncode == 0, proc.stderr
    by_id = {r["arch_id"]: float(r["value"]) for r in csv.DictReader(out.open())}
    assert by_id == {t["arch_id"]: t["values"]["params"] for t in found["trials"]}
    with pytest.raises(TrainfreeError, match="a search over space 'decoder', not 'nasbench-nlp'"):
        read_archs(search_json, get_space("nasbench-nlp"))


def test_api_score_with_a_list():
    space, archs = sampled("nasbench-nlp")
    settings = space.default_settings().with_(size="tiny", batch_size=4, seq_len=8)
    given = [archs[0], ("second", json.loads(space.to_json(archs[1]))), space.to_json(archs[2])]
    run = api.score(space="nasbench-nlp", archs=given, metrics=["params"], settings=settings)
    assert [r.name for r in run.rows] == [space.arch_id(archs[0]), "second", space.arch_id(archs[2])]
    by_bench = api.score(metrics=["params"], settings=settings, space="nasbench-nlp",
                         archs=[{"name": "n", "arch": json.loads(space.to_json(archs[1]))}])
    assert by_bench.rows[0].value == run.rows[1].value
    with pytest.raises(InvalidArchitecture, match=r"archs\[1\]"):
        api.score(space="nasbench-nlp", archs=[archs[0], {"node_0": {"op": "nope"}}], metrics=["params"])
    with pytest.raises(TrainfreeError, match="duplicate architecture names"):
        from_list(space, [archs[0], archs[0]])
    with pytest.raises(TrainfreeError, match="needs both"):
        api.score(space="nasbench-nlp", metrics=["params"])


def tiny_lm(config):
    """A 10-line factory: embedding, n_layer ReLU MLP blocks, a linear head to 50 words."""
    layers = [torch.nn.Embedding(50, config["d_model"])]
    for _ in range(config["n_layer"]):
        layers += [torch.nn.Linear(config["d_model"], config["d_model"]), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(config["d_model"], 50))
    return torch.nn.Sequential(*layers)


def test_factory_space_scored_through_api():
    space = FactorySpace("test-tiny-lm", tiny_lm, {"d_model": [8, 16], "n_layer": [1, 2, 3]}, vocab_size=50)
    archs = [{"d_model": 8, "n_layer": 1}, ("deep", {"d_model": 16, "n_layer": 3})]
    run = api.score(space=space, archs=archs, metrics=["params", "grad_norm"])
    values = {(r.name, r.metric): r for r in run.rows}
    d, v = 8, 50
    small_id = space.from_json(archs[0]).arch_id
    assert values[(small_id, "params")].value == v * d + (d * d + d) + (d * v + v)
    assert values[("deep", "params")].value == v * 16 + 3 * (16 * 16 + 16) + (16 * v + v)
    assert all(r.status == "ok" for r in run.rows)
    # built under the seed: the same weights twice
    settings = space.default_settings()
    a, b = (space.build(space.from_json(archs[0]), settings) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert get_space("test-tiny-lm") is space and get_space("decoder").name == "decoder"


def test_factory_space_validates_and_generates():
    space = FactorySpace("test-gen", tiny_lm, {"d_model": [8, 16], "n_layer": [1, 2, 3]})
    with pytest.raises(InvalidArchitecture, match="n_layer: 4 is not one of"):
        space.from_json('{"d_model": 8, "n_layer": 4}', "x")
    with pytest.raises(InvalidArchitecture, match="unknown field 'n_layers'"):
        space.from_json({"d_model": 8, "n_layers": 1})
    with pytest.raises(InvalidArchitecture, match="missing field 'n_layer'"):
        space.from_json({"d_model": 8})
    with pytest.raises(InvalidArchitecture, match="is not one of"):
        space.from_json({"d_model": 8.0, "n_layer": 1})  # 8.0 is not the declared 8
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert space.from_json(space.to_json(child)) == child and len(set(arch.items) - set(child.items)) == 1
    assert {space.decode([g, h]).config["n_layer"] for g in range(2) for h in range(3)} == {1, 2, 3}
    assert space.arch_id(space.from_json('{"n_layer": 2, "d_model": 16}')) == \
        space.arch_id(space.from_json({"d_model": 16, "n_layer": 2}))
    with pytest.raises(TrainfreeError, match="does not apply"):  # no vocab_size: no LM loss
        api.score(space=space, archs=[{"d_model": 8, "n_layer": 1}], metrics=["snip"])
    with pytest.raises(TrainfreeError, match="in-process only"):
        api.score(space=space, archs=[{"d_model": 8, "n_layer": 1}], metrics=["params"], jobs=2)


def test_a_changed_factory_is_another_fingerprint_and_settings_it_ignores_are_refused():
    # the factory's identity enters the fingerprint: an edited factory never reuses the old one's scores
    def other_lm(config):
        return torch.nn.Sequential(torch.nn.Embedding(50, config["d_model"]))

    choices = {"d_model": [8, 16], "n_layer": [1, 2, 3]}
    one = FactorySpace("test-id-a", tiny_lm, choices, vocab_size=50)
    same = FactorySpace("test-id-b", tiny_lm, choices, vocab_size=50)
    edited = FactorySpace("test-id-c", other_lm, choices, vocab_size=50)
    versioned = FactorySpace("test-id-d", tiny_lm, choices, vocab_size=50, version="2")
    settings = one.default_settings()
    prints = [s.fingerprint(settings) for s in (one, same, edited, versioned)]
    assert prints[0] == prints[1] and len(set(prints)) == 3
    assert one.identity(settings)["factory"]["name"].endswith("tiny_lm")
    assert versioned.identity(settings)["factory"] == {"name": one.identity(settings)["factory"]["name"],
                                                       "version": "2"}
    with pytest.raises(TrainfreeError, match="does not use the size setting"):
        one.check(settings.with_(size="tiny"))


def test_shipped_example_file_scores_as_the_readme_says():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    guide = (root / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert "trainfree score --space nasbench-nlp --archs examples/my_cells.jsonl" in guide
    space = get_space("nasbench-nlp")
    items = read_archs(root / "examples" / "my_cells.jsonl", space)
    assert [n for n, _ in items] == ["elman", "gated", "two-state"]
    settings = space.default_settings().with_(size="tiny", batch_size=4, seq_len=8)
    run = api.score(space="nasbench-nlp", archs=items, metrics=["params", "hidden_cov"], settings=settings)
    assert [r.status for r in run.rows] == ["ok"] * 6
