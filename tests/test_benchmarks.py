"""Benchmark loaders (results CSV and training logs) and their errors."""
import json
import zipfile

import pytest
from pathlib import Path

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


# -- the format registry: extension plus a look at the content --------------------------------------
def _bert_and_lts_files(tmp_path):
    """Two-record NAS-Bench-BERT and LTS files cut from the shipped ones, under neutral names."""
    import gzip

    from trainfree.data import data_path

    with gzip.open(str(data_path("nasbench_bert", "bert_benchmark.json.gz")), "rt") as fh:
        bert = json.load(fh)[:2]
    with gzip.open(str(data_path("lts", "lts_decoder_benchmark.json.gz")), "rt") as fh:
        lts = {k: v[:2] for k, v in sorted(json.load(fh).items())[:2]}
    (tmp_path / "bert.json").write_text(json.dumps(bert))
    (tmp_path / "lts.json").write_text(json.dumps(lts))
    return tmp_path / "bert.json", tmp_path / "lts.json", sorted(lts)


def test_each_format_is_sniffed(tmp_path):
    from trainfree.benchmarks import formats
    from trainfree.benchmarks.base import detect_format

    registry = formats()
    assert list(registry) == ["nasbench-nlp-csv", "nasbench-nlp-logs", "nasbench-bert", "lts", "trainfree-benchmark",
                              "gemstones"]
    bert, lts, settings = _bert_and_lts_files(tmp_path)
    gem = str(__import__("trainfree.data", fromlist=["data_path"]).data_path("gemstones", "gemstones.json.gz"))
    assert registry["gemstones"].sniff(Path(gem)) and detect_format(Path(gem)).name == "gemstones"
    assert not any(registry["gemstones"].sniff(f) for f in (bert, lts))
    assert registry["nasbench-bert"].sniff(bert) and not registry["lts"].sniff(bert)
    assert registry["lts"].sniff(lts) and not registry["nasbench-bert"].sniff(lts)
    assert detect_format(bert).name == "nasbench-bert" and detect_format(lts).name == "lts"
    assert len(load_benchmark(bert)) == 2 and load_benchmark(bert).space == "nasbench-bert"
    b = load_benchmark(f"{lts}#{settings[1]}")
    assert b.space == "decoder" and len(b) == 2 and b.records[0].name.startswith(settings[1])
    with pytest.raises(InvalidBenchmark, match=f"name one as .*lts.json#SETTING .*{settings[0]}"):
        load_benchmark(lts)

    table = tmp_path / "t.csv"
    table.write_text(HEADER + f"a,1,4.5,90,{RECIPE}\n")
    scores = tmp_path / "scores.csv"
    scores.write_text("name,metric,value\na,params,1\n")
    assert registry["nasbench-nlp-csv"].sniff(table) and not registry["nasbench-nlp-csv"].sniff(scores)

    recipe = {"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "log_stats_model_1_a.json").write_text(_log(recipe, [4.0]))
    good, other = tmp_path / "logs.zip", tmp_path / "other.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.write(logs / "log_stats_model_1_a.json", "x/log_stats_model_1_a.json")
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "no logs")
    sniff = registry["nasbench-nlp-logs"].sniff
    assert sniff(logs) and sniff(good) and not sniff(other) and not sniff(tmp_path)
    assert detect_format(logs).name == detect_format(good).name == "nasbench-nlp-logs"


def test_a_json_of_neither_format_gets_one_error_listing_the_formats(tmp_path):
    search = tmp_path / "search.json"
    search.write_text(json.dumps({"space": "nasbench-nlp", "trials": []}))
    with pytest.raises(InvalidBenchmark) as info:
        load_benchmark(search)
    message = str(info.value)
    assert "\n" not in message and "search.json: unknown benchmark format" in message
    for name in ("nasbench-nlp-csv", "nasbench-nlp-logs", "nasbench-bert", "lts"):
        assert f"{name}: " in message  # each format and what it reads
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"space": "x"}]))  # a list, but not of NAS-Bench-BERT records
    with pytest.raises(InvalidBenchmark, match="unknown benchmark format"):
        load_benchmark(listed)


def test_hash_names_an_lts_setting_only_after_an_existing_file(tmp_path):
    odd = tmp_path / "runs#1.csv"  # a CSV whose name holds '#': not LTS
    odd.write_text(HEADER + f"a,1,4.5,90,{RECIPE}\n")
    assert load_benchmark(odd).records[0].target == 4.5
    with pytest.raises(InvalidBenchmark, match="missing.json#random_GPT2_wt103: no such file"):
        load_benchmark(tmp_path / "missing.json#random_GPT2_wt103")
    table = tmp_path / "t.csv"
    table.write_text(HEADER + f"a,1,4.5,90,{RECIPE}\n")
    with pytest.raises(InvalidBenchmark, match="is a nasbench-nlp-csv file, which holds one benchmark"):
        load_benchmark(f"{table}#setting")
    bert, lts, settings = _bert_and_lts_files(tmp_path)
    with pytest.raises(InvalidBenchmark, match="no setting 'nope'"):
        load_benchmark(f"{lts}#nope")
    with pytest.raises(InvalidBenchmark, match="bert.json: expected an object of settings"):
        load_benchmark(f"{bert}#random_GPT2_wt103")  # FILE#SETTING asks for LTS: its loader says what is wrong
    for name in ("nasbench-nlp-ptb", "nasbench-bert", "lts:random_GPT2_wt103"):  # shipped names still work
        assert len(load_benchmark(name)) > 100


def test_a_registered_format_is_found_by_its_sniff(tmp_path):
    """The recipe in docs/architecture.md: a loader plus register_format, and load_benchmark finds it."""
    from trainfree.benchmarks.base import FORMATS, Benchmark, BenchmarkFormat, Record, register_format
    from trainfree.spaces import get_space

    space = get_space("nasbench-nlp")

    def load(path, name=None, target=None, setting=None):
        losses = [float(x) for x in path.read_text().split("\n")[1:] if x]
        return Benchmark(name or path.name, "nasbench-nlp", [Record(f"r{i}", space.example(), t)
                                                             for i, t in enumerate(losses)],
                         "loss", lower_is_better=True, source=str(path))

    register_format(BenchmarkFormat("toy-losses", "toy .txt files: 'TOY', then one loss a line", (".txt",),
                                    lambda p: p.read_text().startswith("TOY"), load))
    try:
        path = tmp_path / "bench.txt"
        path.write_text("TOY\n4.5\n4.2\n")
        bench = load_benchmark(path)
        assert bench.space == "nasbench-nlp" and [r.target for r in bench.records] == [4.5, 4.2]
        assert list(FORMATS)[-1] == "toy-losses"  # after the shipped formats
    finally:
        FORMATS.pop("toy-losses")
