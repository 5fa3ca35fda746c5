"""Hostile input: every malformed benchmark, scores, search or settings input ends as one line naming the
file and line or field (the CLI as a subprocess: exit 2, no traceback); reports escape what they show; a
local Ray instance listens on loopback only."""
import copy
import csv
import gzip
import io
import json
import os
import socket
import struct
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest

from trainfree.config import ScoreSettings
from trainfree.data import data_path
from trainfree.errors import InvalidSetting

BIG = "1" * 400  # a 400-digit number: beyond float range, within Python's int-from-text digit limit
LTS_SETTING = "pareto_GPT2_lm1b_arm"
TINY = ["--size", "tiny", "--batch-size", "10", "--seq-len", "20", "--quiet", "--jobs", "1"]


def _cli(args, env):
    return subprocess.run([sys.executable, "-m", "trainfree", *map(str, args)], capture_output=True, text=True,
                          env=env)


def _shipped(*parts):
    with gzip.open(str(data_path(*parts)), "rb") as fh:
        return fh.read()


def _zip(path, members):
    """A zip of (name, bytes); ``patch(bytes) -> bytes`` edits of the archive go in the callers."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def _set_header_fields(raw: bytes, local: tuple[int, str, int], central: tuple[int, str, int]) -> bytes:
    """Rewrite one field in every local (PK\\3\\4) and central (PK\\1\\2) header: (offset, struct format, value);
    a value of -1 sets bit 0 (encryption) of the flag field instead."""
    out = bytearray(raw)
    for sig, (off, fmt, value) in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = out.find(sig)
        while at >= 0:
            if value == -1:
                out[at + off] |= 1
            else:
                out[at + off:at + off + struct.calcsize(fmt)] = struct.pack(fmt, value)
            at = out.find(sig, at + 4)
    return bytes(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    f = {"dir": d}
    import itertools

    with gzip.open(str(data_path("nasbench_nlp", "ptb_results.csv.gz")), "rt", newline="") as fh:
        rows = list(itertools.islice(csv.reader(fh), 13))  # the first rows are all the cases need
    header, body = rows[0], rows[1:13]

    def write_csv(name, table):
        path = d / name
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows(table)
        return path

    f["sample"] = write_csv("sample.csv", [header] + body)
    raw = gzip.compress(f["sample"].read_bytes())
    (d / "truncated.csv.gz").write_bytes(raw[: len(raw) // 2])
    f["truncated_gz"] = d / "truncated.csv.gz"
    corrupt = bytearray(raw)
    corrupt[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # the deflate stream damaged, the length intact
    (d / "corrupt.csv.gz").write_bytes(bytes(corrupt))
    f["corrupt_gz"] = d / "corrupt.csv.gz"
    long_row = list(body[1])
    long_row[header.index("recipe")] = "x" * 140_000  # over csv's 131,072-character field limit
    f["csv_long_field"] = write_csv("long_field.csv", [header, body[0], long_row])
    digits_row = list(body[0])
    digits_row[header.index("test_loss")] = BIG
    f["csv_digits"] = write_csv("digits.csv", [header, digits_row])
    f["csv_duplicate"] = write_csv("duplicate.csv", [header] + body[:3] + [body[1]])

    bert = json.loads(_shipped("nasbench_bert", "bert_benchmark.json.gz"))[:3]

    def write_json(name, data):
        path = d / name
        path.write_text(json.dumps(data))
        return path

    f["bert_sample"] = write_json("bert.json", bert)
    for key, edit in {"bert_hparams_list": lambda b: b[1].__setitem__("hparams", [1, 2]),
                      "bert_scores_list": lambda b: b[1].__setitem__("scores", [74.2]),
                      "bert_digits": lambda b: b[1]["scores"].__setitem__("glue", int(BIG)),
                      "bert_duplicate": lambda b: b[2].__setitem__("id", b[0]["id"])}.items():
        data = copy.deepcopy(bert)
        edit(data)
        f[key] = write_json(f"{key}.json", data)
    (d / "deep.json").write_text("[" * 100_000)
    f["bert_deep"] = d / "deep.json"

    lts = json.loads(_shipped("lts", "lts_decoder_benchmark.json.gz"))[LTS_SETTING][:3]
    for key, edit in {"lts_ppl_list": lambda r: r[1].__setitem__("ppl", [70.1]),
                      "lts_digits": lambda r: r[1]["ppl"].__setitem__("valid_ppl_or_reported_ppl", int(BIG)),
                      "lts_duplicate": lambda r: r[2].__setitem__("job", r[0]["job"])}.items():
        data = copy.deepcopy(lts)
        edit(data)
        f[key] = f"{write_json(f'{key}.json', {LTS_SETTING: data})}#{LTS_SETTING}"
    f["lts_top_list"] = f"{write_json('lts_top_list.json', [lts])}#{LTS_SETTING}"

    with zipfile.ZipFile(str(data_path("nasbench_nlp", "wikitext2_logs.zip"))) as src:
        names = sorted(src.namelist())[:3]
        logs = [(n, src.read(n)) for n in names]
    f["log_member"] = names[0]
    plain = _zip(d / "logs.zip", logs)
    (d / "encrypted.zip").write_bytes(_set_header_fields(plain.read_bytes(), (6, "<H", -1), (8, "<H", -1)))
    f["zip_encrypted"] = d / "encrypted.zip"
    (d / "method99.zip").write_bytes(_set_header_fields(plain.read_bytes(), (8, "<H", 99), (10, "<H", 99)))
    f["zip_method"] = d / "method99.zip"  # 99: AES, which zipfile cannot decompress
    damaged = bytearray(plain.read_bytes())
    start = 30 + len(names[0])  # the first member's data, after its local header
    damaged[start + 10:start + 200] = b"\xff" * 190
    (d / "damaged.zip").write_bytes(bytes(damaged))
    f["zip_damaged"] = d / "damaged.zip"
    log = json.loads(logs[1][1])
    log["test_losses"] = [int(BIG)]
    f["zip_digits"] = _zip(d / "digits.zip", [logs[0], (logs[1][0], json.dumps(log).encode())])
    f["zip_duplicate"] = _zip(d / "duplicate.zip", logs + [("again/" + logs[0][0], logs[0][1])])

    scores_header = "arch_id,name,metric,value,status,error,seconds,metric_version,fingerprint\n"
    first, second = body[0][0], body[1][0]
    for key, lines in {"scores_duplicate": [f"a,{first},params,1.0,ok,,0.1,1,f", f"b,{second},params,2.0,ok,,0.1,1,f",
                                            f"a,{first},params,3.0,ok,,0.1,1,f"],
                       "scores_long_field": [f"a,{first},params,{'1' * 140_000},ok,,0.1,1,f"],
                       "scores_digits": [f"a,{first},params,{BIG},ok,,0.1,1,f"]}.items():
        (d / f"{key}.csv").write_text(scores_header + "\n".join(lines) + "\n")
        f[key] = d / f"{key}.csv"
    good = d / "scores.csv"
    good.write_text(scores_header + "".join(f"a{i},{r[0]},params,{i}.0,ok,,0.1,1,f\n" for i, r in enumerate(body)))
    f["scores"] = good
    bad_meta = d / "bad_meta.csv"
    bad_meta.write_text(good.read_text())
    (d / "bad_meta.csv.meta.json").write_text("{not json")
    f["scores_bad_meta"] = bad_meta

    search = {"space": "nasbench-nlp", "strategy": "random", "seed": 0, "metric": "params", "objective": None,
              "trials": [{"step": 0, "arch_id": "a", "values": {"params": 1.0}}], "pareto": []}
    for key, edit in {"search_trials_object": lambda s: s.__setitem__("trials", {"step": 0}),
                      "search_value_text": lambda s: s["trials"][0]["values"].__setitem__("params", "<b>1</b>"),
                      "search_digits": lambda s: s["trials"][0]["values"].__setitem__("params", int(BIG))}.items():
        data = copy.deepcopy(search)
        edit(data)
        f[key] = write_json(f"{key}.json", data)
    (d / "search_deep.json").write_text('{"trials": ' + "[" * 100_000)
    f["search_deep"] = d / "search_deep.json"

    (d / "a_file").write_text("not a folder")
    (d / "a_folder").mkdir()
    (d / "meta_is_folder.csv.meta.json").mkdir()
    return f


def _cases(f):
    """case -> (argv, what the one line must name); a ``score`` case's store, named by the case, must not
    be created: nothing may run before the refusal."""
    d, out = f["dir"], f["dir"] / "out"
    member = f["log_member"]

    def bench(key, *needles):
        return ["analyze", "--benchmark", f[key], "--output-dir", out], [str(f[key]).split("#")[0], *needles]

    def scores(key, *needles):
        return ["correlate", "--benchmark", f["sample"], "--scores", f[key]], [str(f[key]), *needles]

    def report(*args):
        return ["report", "--benchmark", f["sample"], "--output", d / "report.html", "--resamples", "20", *args]

    made = []

    def score(*args):
        made.append(args)
        store = d / f"never-{len(made)}.sqlite"
        return ["score", "--benchmark", f["sample"], "--metrics", "params", "--store", store, *TINY, *args]

    cases = {
        "truncated .csv.gz": bench("truncated_gz", "cannot read"),
        "corrupt .csv.gz": bench("corrupt_gz", "cannot read"),
        "CSV field over 131,072 characters": bench("csv_long_field", "line 3", "field limit"),
        "CSV number of 400 digits": bench("csv_digits", "line 2", "'test_loss'", "beyond the range"),
        "CSV duplicate names": bench("csv_duplicate", "duplicate architecture names", "log_stats_model_"),
        "BERT list for hparams": bench("bert_hparams_list", "record 1", "'hparams'", "JSON object"),
        "BERT list for scores": bench("bert_scores_list", "record 1", "'scores'", "JSON object"),
        "BERT number of 400 digits": bench("bert_digits", "record 1", "'scores.glue'", "beyond the range"),
        "BERT nested too deeply": bench("bert_deep", "nested too deeply"),
        "BERT duplicate ids": bench("bert_duplicate", "duplicate architecture names", "'0'"),
        "LTS list for ppl": bench("lts_ppl_list", "record 1", "'ppl'", "JSON object"),
        "LTS list for the settings object": bench("lts_top_list", "expected an object of settings"),
        "LTS number of 400 digits": bench("lts_digits", "record 1", "'ppl.valid_ppl_or_reported_ppl'",
                                          "beyond the range"),
        "LTS duplicate jobs": bench("lts_duplicate", "duplicate architecture names", f"{LTS_SETTING}/"),
        "logs zip encrypted": bench("zip_encrypted", member, "encrypted"),
        "logs zip unknown compression": bench("zip_method", member, "cannot decompress"),
        "logs zip damaged data": bench("zip_damaged", member, "not a readable zip"),
        "logs zip number of 400 digits": bench("zip_digits", "'test_losses[0]'", "beyond the range"),
        "logs zip duplicate names": bench("zip_duplicate", "duplicate architecture names", member),
        "scores duplicate rows": scores("scores_duplicate", "(name, metric)", "'params'", "lines 2, 4"),
        "scores field over 131,072 characters": scores("scores_long_field", "line 2", "field limit"),
        "scores number of 400 digits": scores("scores_digits", "line 2", "'value'", "beyond the range"),
        "scores .meta.json not JSON": (report("--scores", f["scores_bad_meta"]), ["bad_meta.csv.meta.json"]),
        "search trials an object": (report("--search", f["search_trials_object"]), ["search_trials_object.json",
                                                                                     "'trials'"]),
        "search value a string": (report("--search", f["search_value_text"]), ["'trials[0].values.params'"]),
        "search number of 400 digits": (report("--search", f["search_digits"]), ["'trials[0].values.params'"]),
        "search nested too deeply": (report("--search", f["search_deep"]), ["search_deep.json", "not a search"]),
        "--output a folder": (score("--output", d / "a_folder"), ["--output", "a_folder", "is a directory"]),
        "--output's .meta.json a folder": (score("--output", d / "meta_is_folder.csv"),
                                           ["--output", "meta_is_folder.csv.meta.json", "is a directory"]),
        "--output under a regular file": (score("--output", d / "a_file" / "x.csv"), ["--output", "not a directory"]),
        "--store under a regular file": (["score", "--benchmark", f["sample"], "--metrics", "params", "--store",
                                          d / "a_file" / "s.sqlite", "--output", d / "o.csv", *TINY],
                                         ["--store", "a_file", "not a directory"]),
        "report --output a folder": (report("--scores", f["scores"]) + ["--output", d / "a_folder"], ["--output"]),
        "export --output a folder": (["export", "--store", d / "never-export.sqlite", "--output", d / "a_folder"],
                                     ["--output"]),
        "--output-dir a regular file": (["analyze", "--benchmark", f["sample"], "--output-dir", d / "a_file"],
                                        ["--output-dir", "not a directory"]),
        "BERT tiny at the default seq-len": (["score", "--benchmark", f["bert_sample"], "--size", "tiny", "--metrics",
                                              "params", "--no-store", "--jobs", "1", "--output", d / "bert.csv"],
                                             ["--seq-len 64"]),
    }
    import torch

    if not torch.cuda.is_available():
        cases["--device cuda without CUDA"] = (score("--device", "cuda", "--output", d / "o.csv"),
                                               ["--device", "CUDA is not available"])
    return cases


#: flag values argparse refuses: (argv after the sub-command, the flag its error must name)
FLAG_CASES = {
    "--seed 2**70": (["score", "--seed", str(2**70)], "--seed"),
    "--seed -1": (["score", "--seed", "-1"], "--seed"),
    "--search-seed 2**32": (["search", "--search-seed", str(2**32)], "--search-seed"),
    "--bootstrap-seed -5": (["correlate", "--bootstrap-seed", "-5"], "--bootstrap-seed"),
    "--device meta": (["score", "--device", "meta"], "--device"),
    "--device mps": (["score", "--device", "mps"], "--device"),
    "--device cuda:N in other digits": (["score", "--device", "cuda:\u0661"], "--device"),
}


@pytest.fixture(scope="module")
def outcomes(files, tmp_path_factory):
    """Every case run once, as a subprocess, a few at a time."""
    env = dict(os.environ, TRAINFREE_STORE=str(tmp_path_factory.mktemp("store") / "default.sqlite"))
    cases = _cases(files)
    flag_runs = {k: argv + ["--benchmark", files["sample"], "--output", files["dir"] / "o.csv", "--scores",
                            files["scores"]] if argv[0] == "correlate" else
                 argv + ["--benchmark", files["sample"], "--output", files["dir"] / "o.csv"]
                 for k, (argv, _) in FLAG_CASES.items()}
    assert set(cases) <= set(CASE_IDS), set(cases) - set(CASE_IDS)
    runs = {**{k: argv for k, (argv, _) in cases.items()}, **flag_runs}
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        done = dict(zip(runs, pool.map(lambda argv: _cli(argv, env), runs.values())))
    return cases, done


CASE_IDS = ["truncated .csv.gz", "corrupt .csv.gz", "CSV field over 131,072 characters", "CSV number of 400 digits",
            "CSV duplicate names", "BERT list for hparams", "BERT list for scores", "BERT number of 400 digits",
            "BERT nested too deeply", "BERT duplicate ids", "LTS list for ppl", "LTS list for the settings object",
            "LTS number of 400 digits", "LTS duplicate jobs", "logs zip encrypted", "logs zip unknown compression",
            "logs zip damaged data", "logs zip number of 400 digits", "logs zip duplicate names",
            "scores duplicate rows", "scores field over 131,072 characters", "scores number of 400 digits",
            "scores .meta.json not JSON", "search trials an object", "search value a string",
            "search number of 400 digits", "search nested too deeply", "--output a folder",
            "--output's .meta.json a folder", "--output under a regular file", "--store under a regular file",
            "report --output a folder", "export --output a folder", "--output-dir a regular file",
            "BERT tiny at the default seq-len", "--device cuda without CUDA"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_input_is_one_line_naming_the_place(case, outcomes, files):
    cases, done = outcomes
    if case not in cases:
        pytest.skip("CUDA is available here")
    needles = cases[case][1]
    proc = done[case]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr}"
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trainfree: error: "), lines[0]
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in: {lines[0]}"
    argv = [str(a) for a in cases[case][0]]
    if "--store" in argv and "never-" in argv[argv.index("--store") + 1]:
        assert not os.path.exists(argv[argv.index("--store") + 1]), "work started before the refusal"


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_setting_out_of_range_is_refused_naming_the_flag(case, outcomes):
    proc = outcomes[1][case]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"argument {FLAG_CASES[case][1]}" in last, last


def test_settings_refuse_what_they_cannot_take():
    for change, field in ((dict(seed=2**32), "seed"), (dict(seed=-1), "seed"), (dict(seed=True), "seed"),
                          (dict(seed=1.0), "seed"), (dict(device="meta"), "device"), (dict(device="mps"), "device"),
                          (dict(device="cuda:0 "), "device"), (dict(dtype="int8"), "dtype"),
                          (dict(dtype="float"), "dtype")):
        with pytest.raises(InvalidSetting, match=field):
            ScoreSettings(**change)
    assert ScoreSettings(seed=2**32 - 1, device="cuda:1", dtype="float64").seed == 2**32 - 1


# --- reports escape what they show -------------------------------------------------------------------------

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)>"
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "a", "b", "code", "span",
             "table", "thead", "tbody", "tr", "th", "td", "img", "pre"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text, self.csp = set(), [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        a = dict(attrs)
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = a.get("content")

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def _hostile_search(result: dict, bench_name: str) -> dict:
    """A real search result with the payload in every field the page shows."""
    metric, objective = result["metric"], result["objective"]

    def trial(t, i):
        values = {f"{PAYLOAD} m": t["values"][metric], f"{PAYLOAD} o": t["values"][objective]}
        return {**t, "arch_id": f"{PAYLOAD} {i}", "shape": PAYLOAD, "values": values}

    # the space stays the benchmark's: a search of another space is refused before anything is shown
    return {**result, "strategy": PAYLOAD, "seed": PAYLOAD, "metric": f"{PAYLOAD} m",
            "objective": f"{PAYLOAD} o", "benchmark": bench_name, "trials": [trial(t, i) for i, t in enumerate(result["trials"])],
            "pareto": [trial(t, i) for i, t in enumerate(result["pareto"])], "best": [],
            "chosen": trial(result["chosen"], "chosen")}


def test_report_escapes_every_value_from_input(files, tmp_path):
    pytest.importorskip("matplotlib", reason="reports need trainfree[report]")
    from trainfree.benchmarks import load_benchmark
    from trainfree.search import run_search

    bench_path = tmp_path / f"{PAYLOAD.replace('/', '')}.csv"  # the benchmark's name is its file name
    bench_path.write_bytes(files["sample"].read_bytes())
    bench = load_benchmark(str(bench_path))
    settings = ScoreSettings(size="tiny", batch_size=4, seq_len=8, device="cpu")
    result = run_search("nasbench-nlp", "hidden_cov", "random", 6, seed=0, settings=settings, objective="params",
                        benchmark=bench).as_dict()
    search = tmp_path / "search.json"
    search.write_text(json.dumps(_hostile_search(result, bench.name)))
    scores = tmp_path / "scores.csv"
    scores.write_text(files["scores"].read_text())
    (tmp_path / "scores.csv.meta.json").write_text(json.dumps({PAYLOAD: PAYLOAD, "settings": {"corpus": PAYLOAD}}))
    out = tmp_path / "report.html"
    proc = _cli(["report", "--benchmark", bench_path, "--scores", scores, "--search", search, "--output", out,
                 "--title", PAYLOAD, "--resamples", "20"], dict(os.environ, TRAINFREE_STORE=str(tmp_path / "s.sqlite")))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert parsed.tags <= PAGE_TAGS, f"markup from input: {parsed.tags - PAGE_TAGS}"
    assert "script" not in parsed.tags and "svg" not in parsed.tags
    assert not [a for a in parsed.attrs if a[1].lower().startswith("on")], "an event handler attribute"
    for tag, key, value in parsed.attrs:
        if key in ("src", "href"):
            assert value.startswith(("data:image/png;base64,", "#")), (tag, key, value)
    for raw in ("<script", "<img src=x", "<svg"):
        assert raw not in page, f"unescaped {raw!r}"
    text = "".join(parsed.text)
    assert text.count(PAYLOAD) >= 8, "the payload should be shown as text: title, strategy, seed, ids, shapes, ..."
    other = json.loads(search.read_text())
    other["space"] = PAYLOAD
    search.write_text(json.dumps(other))
    refused = _cli(["report", "--benchmark", bench_path, "--scores", scores, "--search", search, "--output",
                    tmp_path / "other.html"], dict(os.environ, TRAINFREE_STORE=str(tmp_path / "s.sqlite")))
    assert refused.returncode == 2 and "a search of space" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "other.html").exists()
    csp = parsed.csp or ""
    assert "default-src 'none'" in csp and "script-src 'none'" in csp and "unsafe-inline" not in csp, csp


# --- Ray -----------------------------------------------------------------------------------------------------

def _one():
    return 1


@pytest.mark.slow
def test_local_ray_listens_on_loopback_only():
    """Every TCP socket listening, or UDP socket bound, in the driver and the processes Ray started."""
    ray = pytest.importorskip("ray")
    import psutil  # installed with Ray

    from trainfree.executors import _ray_session

    me = psutil.Process()

    def sockets():
        found = []
        for p in [me] + me.children(recursive=True):
            try:
                conns = p.net_connections("inet")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            found += [(p.name(), c.laddr.ip, c.laddr.port) for c in conns
                      if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and not c.raddr)]
        return found

    before = set(sockets())
    with _ray_session(jobs=1, threads=1, address=None):
        assert ray.get(ray.remote(_one).remote()) == 1  # a worker up, serving
        opened = [s for s in sockets() if s not in before]
    assert opened, "Ray started no server?"
    assert all(ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for _, ip, _ in opened), opened
    assert not ray.is_initialized()
