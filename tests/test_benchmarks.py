"""Benchmark loaders (results CSV and training logs) and their errors."""
import json
import zipfile

import pytest

from trainfree.benchmarks import load_benchmark
from trainfree.errors import InvalidBenchmark

HEADER = "log_name,recipe_id,test_loss,test_perplexity,recipe\n"
RECIPE = '"{""f"": {""op"": ""linear"", ""input"": [""x"", ""h_prev_0""]}, ""h_new_0"": {""op"": ""activation_tanh"", ""input"": [""f""]}}"'


def test_shipped_benchmarks(ptb, wt2):
    assert len(ptb) == 6313 and ptb.target == "test_loss" and ptb.lower_is_better
    assert len(wt2) == 343 and wt2.skipped == 2  # two WikiText-2 logs have no finite test loss


def test_csv_nan_rows_are_counted(tmp_path):
    f = tmp_path / "b.csv"
    f.write_text(HEADER + f"a,1,4.5,90,{RECIPE}\nb,2,nan,nan,{RECIPE}\n")
    b = load_benchmark(f)
    assert len(b) == 1 and b.skipped == 1 and b.records[0].target == 4.5


@pytest.mark.parametrize("body,message", [
    ("", "the file is empty"),
    ("log_name,recipe\n", "line 1: missing column(s) ['test_loss']"),
    (HEADER + f"a,1,abc,90,{RECIPE}\n", "line 2: column 'test_loss': 'abc' is not a number"),
    (HEADER + f"a,1,4.5,90,{RECIPE}\nb,1,4.5\n", "line 3: expected 5 fields, got 3"),
    (HEADER + 'a,1,4.5,90,"{""h_new_0"": {""op"": ""conv"", ""input"": [""x""]}}"\n',
     "line 2: column 'recipe': node 'h_new_0': unknown op 'conv'"),
    (HEADER + "a,1,4.5,90,{oops\n", "line 2: column 'recipe': not valid JSON"),
])
def test_malformed_csv_names_file_and_line(tmp_path, body, message):
    f = tmp_path / "bad.csv"
    f.write_text(body)
    with pytest.raises(InvalidBenchmark) as info:
        load_benchmark(f)
    assert message in str(info.value) and "bad.csv" in str(info.value)


def _log(recipe, losses):
    return json.dumps({"recepie": json.dumps(recipe), "recepie_id": 7, "test_losses": losses})


def test_logs_folder_and_zip(tmp_path):
    recipe = {"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "log_stats_model_1_a.json").write_text(_log(recipe, [5.0, 4.8, float("nan")]))
    (folder / "log_stats_model_2_b.json").write_text(_log(recipe, []))
    (folder / "notes.txt").write_text("ignored")
    b = load_benchmark(folder)
    assert [r.name for r in b.records] == ["log_stats_model_1_a.json"] and b.skipped == 1
    assert b.records[0].target == 4.8  # the last finite test loss
    z = tmp_path / "logs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(folder / "log_stats_model_1_a.json", "logs/log_stats_model_1_a.json")
    assert load_benchmark(z).records[0].target == 4.8


def test_malformed_logs(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "log_stats_model_1_a.json").write_text("{broken")
    with pytest.raises(InvalidBenchmark, match="log_stats_model_1_a.json: not valid JSON"):
        load_benchmark(folder)
    (folder / "log_stats_model_1_a.json").write_text(json.dumps({"test_losses": [1.0]}))
    with pytest.raises(InvalidBenchmark, match="no 'recepie' field"):
        load_benchmark(folder)
    bad_zip = tmp_path / "x.zip"
    bad_zip.write_text("not a zip")
    with pytest.raises(InvalidBenchmark, match="not a readable zip file"):
        load_benchmark(bad_zip)


def test_unknown_path_and_format(tmp_path):
    with pytest.raises(InvalidBenchmark, match="no such file"):
        load_benchmark(tmp_path / "missing.csv")
    other = tmp_path / "b.parquet"
    other.write_text("x")
    with pytest.raises(InvalidBenchmark, match="unknown benchmark format"):
        load_benchmark(other)
