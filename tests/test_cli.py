"""The command line, run as a subprocess on 20-architecture samples of each benchmark format."""
import csv
import gzip
import json
import math
import subprocess
import sys
import zipfile

import pytest
from scipy import stats

from trainfree.data import data_path

TINY = ["--size", "tiny", "--batch-size", "10", "--seq-len", "20", "--quiet"]


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINFREE_STORE", str(tmp_path / "default-store.sqlite"))


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "trainfree", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def csv_sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "ptb20.csv"
    with gzip.open(str(data_path("nasbench_nlp", "ptb_results.csv.gz")), "rt", newline="") as src:
        rows = list(csv.reader(src))
    with open(path, "w", newline="") as dst:
        csv.writer(dst).writerows(rows[:21])
    return path


@pytest.fixture(scope="module")
def zip_sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "wt2_20.zip"
    with zipfile.ZipFile(str(data_path("nasbench_nlp", "wikitext2_logs.zip"))) as src, zipfile.ZipFile(path, "w") as dst:
        for name in sorted(src.namelist())[:20]:
            dst.writestr(name, src.read(name))
    return path


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _scored(rows) -> dict[str, dict[str, float]]:
    """metric -> name -> value from a scores CSV's rows (NaN unless the status is ok)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        out.setdefault(r["metric"], {})[r["name"]] = float(r["value"]) if r["status"] == "ok" else math.nan
    return out


def _losses(benchmark_csv) -> dict[str, float]:
    losses = {r["log_name"]: float(r["test_loss"]) for r in _read(benchmark_csv)}
    return {n: v for n, v in losses.items() if math.isfinite(v)}


@pytest.mark.slow
def test_score_and_correlate_csv(csv_sample, tmp_path):
    out = tmp_path / "scores.csv"
    proc = run("score", "--benchmark", csv_sample, "--metrics", "hidden_cov,params", "--output", out, "--jobs", 1, *TINY)
    assert "40 scores for 20 architectures (40 ok)" in proc.stdout
    rows = _read(out)
    assert list(rows[0]) == ["arch_id", "name", "metric", "value", "status", "error", "seconds", "metric_version",
                             "fingerprint"]
    assert len(rows) == 40 and {r["metric"] for r in rows} == {"hidden_cov", "params"}
    assert all(r["status"] in ("ok", "nonfinite", "failed") for r in rows)
    meta = json.loads((tmp_path / "scores.csv.meta.json").read_text())
    assert meta["settings"]["size"] == "tiny" and meta["metrics"] == {"hidden_cov": "1", "params": "1"}

    table = tmp_path / "table.csv"
    proc = run("correlate", "--benchmark", csv_sample, "--scores", out, "--output", table)
    assert proc.stdout.split()[:4] == ["metric", "n", "tau", "rho"] and "hidden_cov" in proc.stdout
    result = {r["metric"]: r for r in _read(table)}
    assert int(result["hidden_cov"]["n"]) + int(result["hidden_cov"]["dropped"]) == 20
    scored, loss = _scored(rows), _losses(csv_sample)
    for metric in ("params", "hidden_cov"):  # both higher is better; the target is a loss
        names = [n for n in loss if math.isfinite(scored[metric][n])]
        expected = stats.kendalltau([scored[metric][n] for n in names], [-loss[n] for n in names]).statistic
        assert float(result[metric]["kendall_tau"]) == pytest.approx(expected, abs=1e-9), metric

    proc = run("correlate", "--benchmark", csv_sample, "--scores", out, "--ci", "--resamples", 50, "--topk", "5",
               "--output", table)
    result = {r["metric"]: r for r in _read(table)}["hidden_cov"]
    assert float(result["kendall_tau_low"]) <= float(result["kendall_tau"]) <= float(result["kendall_tau_high"])
    finite = [n for n in loss if math.isfinite(scored["hidden_cov"][n])]
    top_metric = sorted(finite, key=lambda n: -scored["hidden_cov"][n])[:5]
    top_loss = sorted(finite, key=lambda n: loss[n])[:5]
    assert float(result["top5_precision"]) == len(set(top_metric) & set(top_loss)) / 5

    proc = run("correlate", "--benchmark", csv_sample, "--scores", out, "--baseline", "params", "--resamples", 50,
               "--output", table)
    result = {r["metric"]: r for r in _read(table)}
    assert float(result["params"]["tau_minus_baseline"]) == 0.0
    h = result["hidden_cov"]
    kept = [n for n in loss if math.isfinite(scored["hidden_cov"][n])]  # pairs finite on both sides

    def tau(metric):
        return stats.kendalltau([scored[metric][n] for n in kept], [-loss[n] for n in kept]).statistic

    assert float(h["tau_minus_baseline"]) == pytest.approx(tau("hidden_cov") - tau("params"), abs=1e-9)
    assert float(h["tau_minus_baseline_low"]) <= float(h["tau_minus_baseline"]) <= float(h["tau_minus_baseline_high"])
    proc = run("correlate", "--benchmark", csv_sample, "--scores", out, "--baseline", "snip", check=False)
    assert proc.returncode != 0 and "baseline 'snip' is not among the scored metrics" in proc.stderr


@pytest.mark.slow
def test_score_is_reproducible_across_jobs(zip_sample, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    run("score", "--benchmark", zip_sample, "--metrics", "hidden_cov", "--output", a, "--jobs", 1, "--no-store", *TINY)
    run("score", "--benchmark", zip_sample, "--metrics", "hidden_cov", "--output", b, "--jobs", 2, "--no-store", *TINY)
    ra, rb = _read(a), _read(b)
    assert len(ra) == 20
    # one process with two threads vs two single-threaded workers: BLAS rounds differently; near-zero
    # eigenvalues amplify it to ~1e-6 relative in the eigen score
    assert [r["name"] for r in ra] == [r["name"] for r in rb]
    assert [float(r["value"]) for r in ra] == pytest.approx([float(r["value"]) for r in rb], rel=1e-4)
    run("correlate", "--benchmark", zip_sample, "--scores", a)


def test_logs_folder(zip_sample, tmp_path):
    folder = tmp_path / "logs"
    with zipfile.ZipFile(zip_sample) as zf:
        zf.extractall(folder)
    out = tmp_path / "s.csv"
    run("score", "--benchmark", folder, "--metrics", "params", "--limit", 5, "--output", out, "--jobs", 1, *TINY)
    assert len(_read(out)) == 5


def test_malformed_benchmark_is_one_line_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("log_name,recipe_id,test_loss,test_perplexity,recipe\nx,1,4.2,66,{nope\n")
    out = tmp_path / "s.csv"
    proc = run("score", "--benchmark", bad, "--output", out, *TINY, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("trainfree: error: ") and "bad.csv line 2" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("args,message", [
    (["score", "--benchmark", "nope.csv", "--output", "s.csv"], "no such file"),
    (["score", "--benchmark", "nasbench-nlp-ptb", "--metrics", "hiden_cov", "--output", "s.csv"], "unknown metric 'hiden_cov'"),
    (["score", "--benchmark", "nasbench-nlp-ptb", "--size", "huge", "--limit", "1", "--output", "s.csv"], "unknown model size"),
    (["correlate", "--benchmark", "nasbench-nlp-ptb", "--scores", "missing.csv"], "cannot read"),
])
def test_bad_arguments(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "trainfree", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_malformed_scores_file(csv_sample, tmp_path):
    scores = tmp_path / "s.csv"
    scores.write_text("name,metric,value,status\na,hidden_cov,abc,ok\n")
    proc = run("correlate", "--benchmark", csv_sample, "--scores", scores, check=False)
    assert proc.returncode == 2 and "s.csv line 2: column 'value'" in proc.stderr


@pytest.mark.slow
def test_metrics_listing_and_version():
    assert "hidden_cov" in run("metrics").stdout
    decoder = run("metrics", "--space", "decoder").stdout
    names = [line.split()[0] for line in decoder.splitlines()]
    assert "decoder_params" in names and "snip" in names and "hidden_cov" in names and "jacob_cov" not in names
    assert run("--version").stdout.startswith("trainfree ")


@pytest.mark.slow
def test_reproduce_rnn_writes_tables(csv_sample, tmp_path):
    out = tmp_path / "results"
    proc = run("reproduce", "rnn", "--benchmark", csv_sample, "--metrics", "hidden_cov,jacob_cov_large_noise,params",
               "--output-dir", out, "--jobs", 1, *TINY)
    assert "hidden_cov" in proc.stdout
    md = (out / "results-rnn.md").read_text()
    assert "| `hidden_cov` | Layer 1 Hidden Covariance | 20 |" in md
    assert "| `jacob_cov_large_noise` | Large Noise Jacobian |" in md
    rows = {r["metric"]: r for r in _read(out / "results-rnn.csv")}
    assert rows["hidden_cov"]["published_n"] == "20"
    from trainfree.benchmarks.published import load_published

    published, loss = load_published(), _losses(csv_sample)
    expected = stats.kendalltau([published[n]["Layer 1 Hidden Covariance"] for n in loss], [-v for v in loss.values()])
    assert float(rows["hidden_cov"]["published_kendall_tau"]) == pytest.approx(expected.statistic, abs=1e-9)
    assert rows["params"]["published_column"] == ""
