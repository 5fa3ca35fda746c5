"""The zero-cost suite: its plan (seeded subsets, exclusions), a suite built through a store and written
whole, the leaderboard's figures against an independent computation, a metric the suite lacks computed
through a store, the NASLib export read back with json.load, and the scoring loop serving shipped keys."""
import csv
import gzip
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from trainfree import api
from trainfree.benchmarks import load_benchmark
from trainfree.errors import TrainfreeError
from trainfree.spaces import get_space
from trainfree.store import Store
from trainfree.suite import plan as suite_plan
from trainfree.store import shipped
from trainfree.suite.build import collect, run_suite, write_suite
from trainfree.suite.leaderboard import html_table, leaderboard, markdown
from trainfree.suite.naslib import write_naslib

ROOT = Path(__file__).resolve().parent.parent
CHEAP = ["params", "nonembedding_params", "depth"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A suite of three shape metrics on Gemstones (parameter counts on the meta device: seconds)."""
    folder = tmp_path_factory.mktemp("suite")
    store = Store(folder / "s.sqlite")
    run_suite(store, ["gemstones"], CHEAP, jobs=1)
    data = collect(store, ["gemstones"], CHEAP)
    path = folder / "suite.json.gz"
    size = write_suite(path, data)
    return {"folder": folder, "store": store, "data": data, "path": path, "size": size}


def test_subsets_are_seeded_sorted_and_independent_of_order():
    ids = [f"{i:04x}" for i in range(500)]
    a = suite_plan.subset(ids, 50, seed=3)
    assert len(a) == 50 and list(a) == sorted(a) and a == suite_plan.subset(list(reversed(ids)), 50, seed=3)
    assert a != suite_plan.subset(ids, 50, seed=4)
    assert suite_plan.subset(ids[:10], 50) == tuple(sorted(ids[:10]))


def test_the_plan_runs_costly_metrics_on_a_subset_and_leaves_out_latency():
    bench = load_benchmark("nasbench-nlp-ptb")
    tasks = {t.metric: t for t in suite_plan.plan(bench)}
    assert "latency" not in tasks and "hidden_cov" in tasks and "jacob_cov" in tasks
    assert tasks["hidden_cov"].coverage == "all" and len(tasks["hidden_cov"].arch_ids) == 1999
    assert tasks["jacob_cov"].coverage == "subset" and len(tasks["jacob_cov"].arch_ids) == 100
    assert set(tasks["jacob_cov"].arch_ids) <= set(tasks["hidden_cov"].arch_ids)
    # forward-only (lyapunov) or a backward through layer 1 alone (state_grad_rate): every cell
    assert {tasks[m].coverage for m in ("lyapunov", "lyapunov_edge", "state_grad_rate", "state_grad_edge")} == {"all"}
    gem = {t.metric: t for t in suite_plan.plan(load_benchmark("gemstones"))}
    assert all(t.coverage == "all" for t in gem.values())  # 22 shapes: everything on all of them
    wt2 = {t.metric: t for t in suite_plan.plan(load_benchmark("nasbench-nlp-wikitext2"))}
    assert len(wt2["jacob_cov"].arch_ids) == 30 and len(wt2["hidden_cov"].arch_ids) == 276  # its own size
    bert = {t.metric: t for t in suite_plan.plan(load_benchmark("nasbench-bert"))}
    assert len(bert["grasp"].arch_ids) == 30 and bert["grasp"].coverage == "subset"


def test_the_suite_file_holds_every_value_with_its_provenance(built):
    data, path = built["data"], built["path"]
    with gzip.open(path, "rt") as fh:
        assert json.load(fh) == json.loads(json.dumps(data))
    entry = data["benchmarks"]["gemstones"]
    space = get_space("gemstones")
    bench = load_benchmark("gemstones")
    assert entry["arch_ids"] == [space.arch_id(r.arch) for r in bench.records]
    assert entry["fingerprint"] == space.fingerprint(api.default_settings(bench))
    for name in CHEAP:
        m = entry["metrics"][name]
        assert m["status"] == "o" * 22 and m["coverage"] == "all" and m["trainfree"] and len(m["seconds"]) == 22
    params = dict(zip(entry["arch_ids"], entry["metrics"]["params"]["values"]))
    for r in bench.records:  # the published parameter counts, as the Gemstones test checks
        assert params[space.arch_id(r.arch)] == r.extra["params"]


def test_leaderboard_figures_match_an_independent_computation(built):
    rows = leaderboard(built["path"])
    assert [r["metric"] for r in rows] == ["nonembedding_params", "params", "depth"]  # best first
    bench = load_benchmark("gemstones")
    entry = built["data"]["benchmarks"]["gemstones"]
    index = {a: i for i, a in enumerate(entry["arch_ids"])}
    space = get_space("gemstones")
    targets = np.array([r.target for r in bench.records])
    for row in rows:
        values = np.array([entry["metrics"][row["metric"]]["values"][index[space.arch_id(r.arch)]]
                           for r in bench.records])
        tau = stats.kendalltau(values, -targets)[0]  # loss: lower is better; size: higher ranks higher
        assert row["kendall_tau"] == pytest.approx(tau, abs=1e-12)
        assert row["kendall_tau_low"] <= tau <= row["kendall_tau_high"]
        assert row["baseline"] == "nonembedding_params" and row["within"] == "size_group"
    assert rows[0]["tau_minus_baseline"] == 0.0
    text = markdown(rows)
    assert text.splitlines()[0].startswith("| benchmark | metric | n | tau [95% CI]") and "| gemstones | depth |" in text
    assert "<td>nonembedding_params</td>" in html_table(rows, "t <x>") and "t &lt;x&gt;" in html_table(rows, "t <x>")


def test_leaderboard_refusals(built):
    with pytest.raises(TrainfreeError, match="not in the suite: nasbench-bert"):
        leaderboard(built["path"], benchmarks=["nasbench-bert"])
    with pytest.raises(TrainfreeError, match="the suite lacks width: give a store"):
        leaderboard(built["path"], metrics=["width"])
    with pytest.raises(TrainfreeError, match="unknown metric"):
        leaderboard(built["path"], metrics=["widht"])


def test_a_metric_the_suite_lacks_is_computed_through_the_store(built):
    rows = leaderboard(built["path"], metrics=["width", "params"], store=built["store"])
    assert {r["metric"] for r in rows} == {"width", "params"}
    width = next(r for r in rows if r["metric"] == "width")
    bench = load_benchmark("gemstones")
    tau = stats.kendalltau([r.extra["width"] for r in bench.records], [-r.target for r in bench.records])[0]
    assert width["kendall_tau"] == pytest.approx(tau, abs=1e-12) and width["tau_minus_baseline"] is not None


def test_naslib_export_loads_with_plain_json(built, tmp_path):
    paths = write_naslib(built["data"], tmp_path / "zc")
    assert [p.name for p in paths] == ["zc_gemstones.json"]
    with open(paths[0]) as fh:
        content = json.load(fh)
    assert list(content) == ["gemstones"]
    task = content["gemstones"]
    assert len(task) == 22
    bench = load_benchmark("gemstones")
    space = get_space("gemstones")
    by_key = {space.canonical_json(r.arch): r for r in bench.records}
    for key, item in task.items():
        assert set(item) >= {"id", "val_accuracy", "arch_id", *CHEAP}
        assert set(item["params"]) == {"score", "time"}
        assert item["val_accuracy"] == -by_key[key].target  # a loss, turned higher-is-better
        assert item["target_name"] == bench.target


@pytest.fixture
def as_shipped(built, monkeypatch):
    monkeypatch.setattr(shipped, "suite_path", lambda: built["path"])
    shipped._index.cache_clear()
    yield built
    shipped._index.cache_clear()


def test_the_scoring_loop_takes_shipped_keys_and_copies_them_to_a_store(as_shipped, tmp_path):
    fresh = api.score("gemstones", ["params", "width"], shipped=False)
    run = api.score("gemstones", ["params", "width"])
    assert run.shipped == 22 and run.computed == 22 and run.reused == 0  # width is not in the suite
    assert [(r.arch_id, r.metric, r.value) for r in run.rows] == [(r.arch_id, r.metric, r.value) for r in fresh.rows]
    other = api.score("gemstones", ["params"], settings={"seed": 1})  # another fingerprint: computed
    assert other.shipped == 0 and other.computed == 22
    with Store(tmp_path / "s.sqlite") as store:
        first = api.score("gemstones", ["params"], store=store)
        second = api.score("gemstones", ["params"], store=store)
    assert (first.shipped, first.computed, second.shipped, second.reused) == (22, 0, 0, 22)


def test_cli_leaderboard_and_naslib_export(built, tmp_path):
    env_cmd = [sys.executable, "-m", "trainfree"]
    proc = subprocess.run([*env_cmd, "leaderboard", "--suite", str(built["path"]), "--format", "csv"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["metric"] for r in rows] == ["nonembedding_params", "params", "depth"]
    proc = subprocess.run([*env_cmd, "export", "--format", "naslib", "--suite", str(built["path"]), "--output",
                           str(tmp_path / "zc")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.load(open(tmp_path / "zc" / "zc_gemstones.json"))["gemstones"]
    proc = subprocess.run([*env_cmd, "leaderboard", "--suite", str(tmp_path / "nothing.json.gz")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("no such suite file") and "Traceback" not in proc.stderr


def test_a_corrupt_suite_file_is_refused(tmp_path):
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(gzip.compress(b'{"format": "other"}'))
    with pytest.raises(TrainfreeError, match="not a trainfree suite file"):
        shipped.read_suite(bad)
    bad.write_bytes(b"not gzip")
    with pytest.raises(TrainfreeError, match="not a trainfree suite file"):
        shipped.read_suite(bad)


def test_a_run_not_finished_is_refused_or_written_marked_partial(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        run_suite(store, ["gemstones"], ["params"], jobs=1)
        ids = collect(store, ["gemstones"], ["params"], stats=False)["benchmarks"]["gemstones"]["arch_ids"]
        store.conn.execute("DELETE FROM scores WHERE metric = 'params' AND arch_id IN (?, ?, ?)", tuple(ids[:3]))
        store.conn.commit()
        with pytest.raises(TrainfreeError, match=r"lacks 3 of 22 params scores on gemstones.*--partial"):
            collect(store, ["gemstones"], ["params"])
        data = collect(store, ["gemstones"], ["params", "width"], partial=True)
    m = data["benchmarks"]["gemstones"]["metrics"]
    assert list(m) == ["params"]  # width: nothing held, left out
    assert (m["params"]["coverage"], m["params"]["planned"], m["params"]["computed"]) == ("partial", 22, 19)
    assert m["params"]["status"] == "---" + "o" * 19 and m["params"]["values"][:3] == [None] * 3
    stats_row = data["benchmarks"]["gemstones"]["stats"][0]
    assert stats_row["n"] == 19 and stats_row["coverage"] == "partial"


def test_the_api_leaderboard_takes_names_and_a_store_path(built, tmp_path):
    rows = api.leaderboard("params,width", benchmarks="gemstones", suite=built["path"], store=tmp_path / "s.sqlite")
    assert {r["metric"] for r in rows} == {"params", "width"} and {r["benchmark"] for r in rows} == {"gemstones"}


def test_the_coverage_table_marks_subsets_and_what_does_not_apply(built):
    from trainfree.suite.build import coverage_markdown

    data = json.loads(json.dumps(built["data"]))
    data["benchmarks"]["gemstones"]["metrics"]["depth"]["coverage"] = "subset"
    table = coverage_markdown(data).splitlines()
    assert table[0] == "| metric | gemstones (22) |" and table[1] == "|---|---|"
    assert table[2:5] == ["| `params` | 22 |", "| `nonembedding_params` | 22 |", "| `depth` | 22 s |"]
    assert table[-1].startswith("| CPU-h (total ")


# -- the shipped file against a fresh computation (NASLib's debug check) -----------------------------------
#: metrics recomputed per benchmark: deterministic, seconds per architecture at most (grad_norm: a
#: backward pass, on the costly subset)
RECOMPUTE = {"nasbench-nlp-ptb": ["hidden_cov", "hidden_cov_l2", "activation_distance", "params", "grad_norm"],
             "nasbench-bert": ["head_confidence", "bert_activation_distance", "params"],
             "lts:random_GPT2_wt103": ["hidden_cov", "nonembedding_params", "w_pca"]}
#: float32 passes on another machine or thread count may differ in the last bits
RTOL, ATOL = 1e-4, 1e-9


def test_a_seeded_sample_of_shipped_values_is_computed_again_alike():
    data = shipped.read_suite()
    assert data is not None, "the package ships no suite file"
    rng = np.random.default_rng(0)
    for name, metrics in RECOMPUTE.items():
        entry = data["benchmarks"][name]
        bench = load_benchmark(name)
        space = get_space(entry["space"])
        by_id = {}
        for r in bench.records:
            by_id.setdefault(space.arch_id(r.arch), r.arch)
        held = [i for i, a in enumerate(entry["arch_ids"])
                if all(entry["metrics"][m]["status"][i] in "on" for m in metrics)]
        picked = [entry["arch_ids"][i] for i in rng.choice(held, size=2, replace=False)]
        run = api.score(space=space.name, archs=[by_id[a] for a in picked], metrics=metrics,
                        settings=api.default_settings(bench), shipped=False)
        assert space.fingerprint(api.default_settings(bench)) == entry["fingerprint"]
        index = {a: i for i, a in enumerate(entry["arch_ids"])}
        for row in run.rows:
            m = entry["metrics"][row.metric]
            i = index[row.arch_id]
            assert m["key_version"] == row.metric_version
            assert row.status.value[0] == m["status"][i], (name, row.metric, row.arch_id)
            want = math.nan if m["values"][i] is None else m["values"][i]
            assert (math.isnan(want) and math.isnan(row.value)) or math.isclose(row.value, want, rel_tol=RTOL,
                                                                               abs_tol=ATOL), (name, row.metric)
