"""Hostile or unlucky input, second round: checkpoints that could run code, searches that could not end,
combination models, plug-ins and space files that fail, a full disk, models too large for the memory.
Each case through the command line as a subprocess: exit status 2 (or 1 where every row failed), one
`trainfree: error:` line, no traceback, nothing half-written."""
import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import LSTM

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "tiny", "--batch-size", "4", "--seq-len", "8", "--quiet", "--jobs", "1"]


def _cli(args, tmp_path, env=None):
    env = dict(os.environ, **(env or {}))
    env.pop("TRAINFREE_PLUGINS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                                      else []))
    return subprocess.run([sys.executable, "-m", "trainfree", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)


def _one_line(proc, status=2, *needles):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in lines if line.startswith("trainfree: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# -- 1. checkpoints are read as tensors and plain data only ----------------------------------------
class _Planted:
    """Pickled, it runs os.system when it is read back (what a hostile checkpoint would hold)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    import torch

    from trainfree.spaces import get_space
    from trainfree.train import protocol_for
    from trainfree.train.loop import CHECKPOINT_FORMAT, checkpoint_path

    space = get_space("nasbench-nlp")
    arch = space.from_json(LSTM)
    protocol = protocol_for("nasbench-nlp", None, size="tiny")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    path = checkpoint_path(folder, space.arch_id(arch), protocol, 0)
    marker = tmp_path / "it-ran"
    torch.save({"format": CHECKPOINT_FORMAT, "arch_id": space.arch_id(arch), "protocol": protocol.fingerprint(),
                "seed": 0, "model": _Planted(marker)}, path)
    proc = _cli(["train", "--space", "nasbench-nlp", "--arch", json.dumps(LSTM), "--train-budget", "2",
                 "--train-size", "tiny", "--checkpoint-dir", folder, "--no-store", "--quiet", "--jobs", "1",
                 "--output", tmp_path / "out.json"], tmp_path)
    _one_line(proc, 2, str(path), "refused", "tensors and plain data")
    assert not marker.exists(), "the planted object ran"
    assert not (tmp_path / "out.json").exists()


def test_checkpoints_still_resume_bit_for_bit_under_the_safe_loader(tmp_path):
    # what trainfree writes is tensors and plain data: weights_only=True reads it back whole
    from trainfree.spaces import get_space
    from trainfree.train import Budget, protocol_for
    from trainfree.train.loop import _load, checkpoint_path, train_arch

    space = get_space("nasbench-nlp")
    arch = space.from_json(LSTM)
    protocol = protocol_for("nasbench-nlp", None, size="tiny")
    train_arch(space, arch, protocol, Budget.of(3, "steps"), 0, checkpoint_dir=tmp_path, keep_checkpoint=True)
    payload = _load(checkpoint_path(tmp_path, space.arch_id(arch), protocol, 0), space.arch_id(arch), protocol, 0)
    assert payload["step"] == 3 and payload["trainer"]["stream"]["rng"]["bit_generator"] == "PCG64"


# -- 2. every search ends --------------------------------------------------------------------------
TWO_ARCHS = """
name = "two-archs"
model = "LlamaForCausalLM"
[fixed]
num_attention_heads = 2
num_key_value_heads = 2
intermediate_size = 64
[searched]
hidden_size = [32]
num_hidden_layers = [1, 2]
"""


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "evolution", "nsga2"])
def test_a_space_with_fewer_architectures_than_the_budget_ends_with_a_clear_error(tmp_path, strategy):
    pytest.importorskip("transformers")
    if strategy == "nsga2":
        pytest.importorskip("optuna")
    (tmp_path / "two.toml").write_text(TWO_ARCHS)
    proc = _cli(["search", "--space", tmp_path / "two.toml", "--strategy", strategy, "--budget", "10", "--metric",
                 "params", "--no-store", "--output", tmp_path / "s.json", *TINY], tmp_path)
    _one_line(proc, 2, "found only 2 distinct architectures")
    assert not (tmp_path / "s.json").exists()


def test_a_search_whose_metric_fails_everywhere_exits_non_zero_with_a_count(tmp_path):
    (tmp_path / "failing_metric.py").write_text(textwrap.dedent('''
        from trainfree.metrics import metric

        @metric("always_fails", higher_is_better=True, requires={"parameters"})
        def always_fails(probe):
            """Raises, for the test."""
            raise RuntimeError("no value here")
    '''))
    proc = _cli(["--plugin", "failing_metric", "search", "--space", "nasbench-nlp", "--metric", "always_fails",
                 "--budget", "4", "--no-store", "--output", tmp_path / "s.json", *TINY], tmp_path)
    _one_line(proc, 2, "none of the 4 architectures evaluated has a finite always_fails", "4 failed",
              "RuntimeError: no value here")
    assert not (tmp_path / "s.json").exists()


# -- 3. combination model files are validated completely on load -----------------------------------
def _combo(tmp_path) -> dict:
    """A small valid boosted model file's content (two inputs, two trees)."""
    return {"format": "trainfree-combo", "format_version": 1, "learner": "boosted",
            "features": [{"metric": "hidden_cov", "version": "1", "knots": [-3.0, -2.0, -1.0]},
                         {"metric": "params", "version": "1", "knots": [1.0, 2.0, 3.0]}],
            "params": {"baseline": 0.5, "trees": [
                {"feature": [0, 0, 0], "threshold": [0.5, 0.0, 0.0], "missing_left": [True, False, False],
                 "left": [1, 0, 0], "right": [2, 0, 0], "leaf": [False, True, True], "value": [0.0, -0.1, 0.1]},
                {"feature": [1, 0, 0], "threshold": [0.3, 0.0, 0.0], "missing_left": [False, False, False],
                 "left": [1, 0, 0], "right": [2, 0, 0], "leaf": [False, True, True], "value": [0.0, 0.2, -0.2]}]},
            "space": "nasbench-nlp", "benchmark": "b", "target": "test_loss", "target_lower_is_better": True,
            "fingerprint": "17215d5a6811", "cv": {}}


def _edit(model: dict, path: str, value):
    """Set the field at a dotted path (``params.trees[0].left[0]``) of a copy."""
    import copy
    import re

    out = copy.deepcopy(model)
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    node = out
    for p in parts[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return out


_DELETE = object()
COMBO_FAULTS = [  # (field edited, its new value, what the error names)
    ("params.trees[0].left[0]", 0, "params.trees[0].left[0]: node 0 points to node 0"),  # a node pointing to itself
    ("params.trees[0].right[0]", 7, "params.trees[0].right[0]: expected an integer from 0 to 2"),
    ("params.trees[0].left[0]", -1, "params.trees[0].left[0]: expected an integer from 0 to 2"),
    ("params.trees[0].feature[0]", 5, "params.trees[0].feature[0]: expected an integer from 0 to 1"),
    ("params.trees", [], "params.trees: expected a list of 1 to"),
    ("params.trees[1].value", [], "params.trees[1].value: expected a non-empty list"),
    ("params", _DELETE, "params: missing"),
    ("params.baseline", "NaN", "params.baseline: expected a finite number"),
    ("features[0].knots", [[1.0, 2.0]], "features[0].knots[0]: expected a number"),
    ("features[0].knots", [3.0, 1.0, 2.0], "features[0].knots: the knots must be sorted"),
    ("features[1].knots", [1.0, 1e400, 2.0], "features[1].knots[1]: expected a finite number"),
    ("features[0].metric", "combo:self.json", "a combination's input cannot be a combination"),
    ("params.trees[0].threshold[0]", 10 ** 400, "params.trees[0].threshold[0]: a number too large"),
    ("target_lower_is_better", "yes", "target_lower_is_better: expected true or false"),
]


@pytest.mark.parametrize("field,value,named", COMBO_FAULTS, ids=[f[0] + "=" + str(f[1])[:12] for f in COMBO_FAULTS])
def test_a_faulty_combination_model_is_one_error_naming_the_file_and_field(tmp_path, field, value, named):
    from trainfree.errors import TrainfreeError
    from trainfree.metrics.combo_model import load_model

    good = tmp_path / "good.json"
    good.write_text(json.dumps(_combo(tmp_path)))
    assert load_model(good).features == ["hidden_cov", "params"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_edit(_combo(tmp_path), field, value)).replace('"NaN"', "NaN"))
    with pytest.raises(TrainfreeError) as err:
        load_model(bad)
    assert str(bad) in str(err.value) and named in str(err.value), str(err.value)


def test_linear_coefficients_must_be_finite_and_one_per_input(tmp_path):
    from trainfree.errors import TrainfreeError
    from trainfree.metrics.combo_model import load_model

    model = dict(_combo(tmp_path), learner="linear", params={"intercept": 0.0, "coef": [1.0]})
    for coef, named in (([1.0], "params.coef: expected 2 numbers, got 1"), ([1.0, "Infinity"], "params.coef[1]")):
        (tmp_path / "m.json").write_text(json.dumps(dict(model, params={"intercept": 0.0, "coef": coef}))
                                         .replace('"Infinity"', "Infinity"))
        with pytest.raises(TrainfreeError, match=named.replace("[", r"\[").replace("]", r"\]")):
            load_model(tmp_path / "m.json")


def test_a_combination_file_nested_100k_deep_is_one_line(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    proc = _cli(["score", "--space", "nasbench-nlp", "--archs", _archs(tmp_path), "--metrics",
                 f"combo:{tmp_path / 'deep.json'}", "--no-store", "--output", tmp_path / "o.csv", *TINY], tmp_path)
    _one_line(proc, 2, "deep.json", "nested too deeply")
    assert not (tmp_path / "o.csv").exists()


def _archs(tmp_path) -> Path:
    path = tmp_path / "archs.jsonl"
    path.write_text(json.dumps(LSTM) + "\n")
    return path


# -- 5. a full disk ---------------------------------------------------------------------------------
@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs mounted for the test (needs root and mount; skipped otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of ``folder`` until at most ``leave`` bytes are free."""
    with open(folder / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    if leave:
        with open(folder / "filler", "r+b") as fh:
            fh.truncate(max(0, (folder / "filler").stat().st_size - leave))


def test_a_full_disk_is_named_and_leaves_nothing_half_written(tmp_path, full_disk):
    _fill(full_disk)
    proc = _cli(["score", "--space", "nasbench-nlp", "--archs", _archs(tmp_path), "--metrics", "params",
                 "--no-store", "--output", full_disk / "scores.csv", *TINY], tmp_path)
    _one_line(proc, 2, "the disk is full")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no partial output, no temporary file


@pytest.mark.slow
def test_a_full_disk_during_checkpointing_stops_training_naming_it(tmp_path, full_disk):
    _fill(full_disk, leave=64 * 1024)  # room for the folder, not for a checkpoint
    proc = _cli(["train", "--space", "nasbench-nlp", "--arch", json.dumps(LSTM), "--train-budget", "2",
                 "--train-size", "tiny", "--checkpoint-dir", full_disk / "ckpt", "--keep-checkpoints", "--no-store",
                 "--quiet", "--jobs", "1"], tmp_path)
    _one_line(proc, 2, "the disk is full")
    left = list((full_disk / "ckpt").iterdir()) if (full_disk / "ckpt").exists() else []
    assert left == []  # no partial checkpoint


def test_the_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    from trainfree.files import atomic_write
    from trainfree.train.run import train_many

    dead = 2 ** 22 + 12345  # beyond pid_max on most systems: a process that cannot be alive
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
        except PermissionError:
            dead += 1
    (tmp_path / f".out.csv.{dead}.tmp").write_text("half")
    (tmp_path / f".out.csv.{os.getpid()}.tmp.other").write_text("not ours")
    atomic_write(tmp_path / "out.csv", lambda fh: fh.write("whole\n"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".out.csv.{os.getpid()}.tmp.other", "out.csv"]
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / f"abc-def-s0.pt.tmp{dead}").write_bytes(b"half a checkpoint")
    from trainfree.train import Budget, protocol_for

    train_many("nasbench-nlp", [], protocol_for("nasbench-nlp", None, size="tiny"), Budget.of(1, "steps"),
               checkpoint_dir=ckpt)
    assert list(ckpt.iterdir()) == []


def test_a_store_write_on_a_full_disk_is_named(tmp_path, monkeypatch):
    import sqlite3

    from trainfree.errors import DiskFull
    from trainfree.records import Score, Status
    from trainfree.store import Store

    store = Store(tmp_path / "s.db")

    class FullConnection:
        def __init__(self, conn):
            self.conn = conn

        def __enter__(self):
            raise sqlite3.OperationalError("database or disk is full")

        def __exit__(self, *a):
            return False

        def __getattr__(self, name):
            return getattr(self.conn, name)

    store.conn = FullConnection(store.conn)
    with pytest.raises(DiskFull, match="s.db: cannot write the store: the disk is full"):
        store.put([Score("a", "m", 1.0, Status.OK)], {"m": "1"}, "fp", "0")


# -- 6. plug-ins that fail ---------------------------------------------------------------------------
PLUGIN_FAULTS = {
    "raises": ("raise RuntimeError('the licence server is down')\n", "RuntimeError: the licence server is down"),
    "bad_value": ("int('x')\n", "ValueError: invalid literal"),
    "syntax": ("def broken(:\n", "SyntaxError"),
    "duplicate": ("from trainfree.metrics import metric\n\n"
                  "@metric('params', higher_is_better=True, requires={'parameters'})\n"
                  "def params(probe):\n    '''Again.'''\n    return 1.0\n", "metric 'params' is already registered"),
    "unknown_requires": ("from trainfree.metrics import metric\n\n"
                         "@metric('mine', higher_is_better=True, requires={'gradients'})\n"
                         "def mine(probe):\n    '''Mine.'''\n    return 1.0\n", "requires ['gradients']"),
}


@pytest.mark.parametrize("fault", sorted(PLUGIN_FAULTS))
def test_a_plugin_that_fails_to_load_is_one_line_naming_it(tmp_path, fault):
    source, named = PLUGIN_FAULTS[fault]
    (tmp_path / f"plug_{fault}.py").write_text(source)
    proc = _cli(["--plugin", f"plug_{fault}", "metrics"], tmp_path)
    _one_line(proc, 2, f"plug-in 'plug_{fault}'", named)


@pytest.mark.slow
def test_a_plugin_that_replaces_a_builtin_never_takes_its_store_keys(tmp_path):
    # a plug-in swaps in its own `params` through the registry's private state: its values are stored
    # under its own module's key, so a later run with the built-in recomputes instead of reusing them
    (tmp_path / "sneaky.py").write_text(textwrap.dedent('''
        from dataclasses import replace
        from trainfree.metrics.base import METRICS

        def fake(probe):
            return 42.0

        METRICS._items["params"] = replace(METRICS.get("params"), fn=fake)
    '''))
    store = tmp_path / "s.db"
    args = ["score", "--space", "nasbench-nlp", "--archs", _archs(tmp_path), "--metrics", "params", "--store",
            store, *TINY]
    plugged = _cli(["--plugin", "sneaky", *args, "--output", tmp_path / "a.csv"], tmp_path)
    assert plugged.returncode == 0, plugged.stderr
    plain = _cli([*args, "--output", tmp_path / "b.csv"], tmp_path)
    assert plain.returncode == 0 and "computed 1, reused 0" in plain.stdout, plain.stdout
    a, b = ((tmp_path / f).read_text().splitlines()[1].split(",") for f in ("a.csv", "b.csv"))
    assert a[3] == "42.0" and a[7] == "sneaky:1" and b[3] != "42.0" and b[7] == "1"


# -- 7. the memory guard and the supported model classes ---------------------------------------------
HUGE_LLAMA = """
name = "huge-llama"
model = "LlamaForCausalLM"
[fixed]
num_attention_heads = 64
num_key_value_heads = 8
intermediate_size = 28672
[searched]
hidden_size = [8192]
num_hidden_layers = [80]
"""


@pytest.mark.slow
def test_a_model_too_large_for_the_memory_is_refused_before_it_is_built(tmp_path):
    pytest.importorskip("transformers")
    (tmp_path / "huge.toml").write_text(HUGE_LLAMA)
    (tmp_path / "huge.jsonl").write_text('{"hidden_size": 8192, "num_hidden_layers": 80}\n')
    proc = _cli(["score", "--space", tmp_path / "huge.toml", "--archs", tmp_path / "huge.jsonl", "--metrics",
                 "snip,hidden_cov", "--no-store", "--output", tmp_path / "o.csv", "--quiet", "--jobs", "1"], tmp_path)
    line = _one_line(proc, 1, "all 2 scores failed", "MemoryError: not enough memory", "GiB are available")
    assert "weights 25" in line or "weights 2" in line  # ~69 billion parameters: about 257 GiB of float32
    # what builds no model is not refused: the counts (on the meta device) and the shape
    proc = _cli(["score", "--space", tmp_path / "huge.toml", "--archs", tmp_path / "huge.jsonl", "--metrics",
                 "params,depth,snip", "--no-store", "--output", tmp_path / "p.csv", "--quiet", "--jobs", "1"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["metric"]: r for r in csv.DictReader(open(tmp_path / "p.csv"))}
    assert rows["params"]["status"] == "ok" and float(rows["params"]["value"]) > 6e10
    assert rows["depth"]["status"] == "ok" and float(rows["depth"]["value"]) == 80
    assert rows["snip"]["status"] == "failed" and "MemoryError" in rows["snip"]["error"]


def test_a_model_class_the_metrics_cannot_use_is_refused_with_the_supported_list(tmp_path):
    pytest.importorskip("transformers")
    (tmp_path / "bart.toml").write_text('name = "bart"\nmodel = "BartForConditionalGeneration"\n[searched]\n'
                                        'd_model = [64]\n')
    proc = _cli(["metrics", "--space", tmp_path / "bart.toml"], tmp_path)
    _one_line(proc, 2, "bart.toml: model:", "LlamaForCausalLM", "GPT2LMHeadModel")


# -- 8. smaller faults -------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_space_whose_only_architecture_is_its_example_is_accepted(tmp_path):
    pytest.importorskip("transformers")
    text = TWO_ARCHS.replace("[searched]", "[constraints]\nmax_params = 20000000\n[searched]") + \
        "[example]\nhidden_size = 32\nnum_hidden_layers = 1\n"
    (tmp_path / "ex.toml").write_text(text.replace("num_hidden_layers = [1, 2]", "num_hidden_layers = [1]"))
    proc = _cli(["metrics", "--space", tmp_path / "ex.toml"], tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_a_space_file_nested_100k_deep_is_one_line(tmp_path, fmt):
    pytest.importorskip("transformers")
    text = ("x = " + "[" * 100_000 + "]" * 100_000) if fmt == "toml" else ("[" * 100_000 + "]" * 100_000)
    (tmp_path / f"deep.{fmt}").write_text(text)
    _one_line(_cli(["metrics", "--space", tmp_path / f"deep.{fmt}"], tmp_path), 2, f"deep.{fmt}")


@pytest.mark.slow
def test_an_archs_line_nested_100k_deep_and_a_lone_surrogate_name_are_one_line(tmp_path):
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    args = ["score", "--space", "nasbench-nlp", "--metrics", "params", "--no-store", *TINY]
    _one_line(_cli([*args, "--archs", tmp_path / "deep.jsonl", "--output", tmp_path / "o.csv"], tmp_path), 2,
              "deep.jsonl:1", "nested too deeply")
    (tmp_path / "surrogate.jsonl").write_text(json.dumps({"name": "x", "arch": LSTM}).replace('"x"', '"\\ud800"') + "\n")
    _one_line(_cli([*args, "--archs", tmp_path / "surrogate.jsonl", "--output", tmp_path / "o.csv"], tmp_path), 2,
              "surrogate.jsonl:1: name: not valid Unicode")
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_space_or_archs_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path, target):
    if target == "fifo":
        os.mkfifo(tmp_path / "pipe.toml")
        target = tmp_path / "pipe.toml"
    elif not os.path.exists(target):
        pytest.skip("no /dev/zero here")
    _one_line(_cli(["metrics", "--space", f"{target}.toml" if target == "/dev/zero" else target], tmp_path), 2)
    if not str(target).endswith(".toml"):
        return
    proc = _cli(["score", "--space", "nasbench-nlp", "--archs", target, "--metrics", "params", "--no-store",
                 "--output", tmp_path / "o.csv", *TINY], tmp_path)
    _one_line(proc, 2, "not a regular file")


@pytest.mark.slow
def test_a_400_digit_searched_range_is_one_short_line(tmp_path):
    pytest.importorskip("transformers")
    big = "1" * 400
    (tmp_path / "big.toml").write_text(TWO_ARCHS.replace("hidden_size = [32]",
                                                         f"hidden_size = {{min = {big}, max = {big}}}"))
    line = _one_line(_cli(["metrics", "--space", tmp_path / "big.toml"], tmp_path), 2, "searched.hidden_size",
                     "out of range")
    assert len(line) < 400


def test_the_duplicate_names_error_is_bounded(tmp_path):
    name = "n" * 900
    (tmp_path / "dups.jsonl").write_text("".join(json.dumps({"name": name, "arch": LSTM}) + "\n" for _ in range(2000)))
    line = _one_line(_cli(["score", "--space", "nasbench-nlp", "--archs", tmp_path / "dups.jsonl", "--metrics",
                           "params", "--no-store", "--output", tmp_path / "o.csv", *TINY], tmp_path), 2,
                     "duplicate architecture names", "and 1995 more")
    assert len(line) < 1000


def test_a_line_separator_inside_a_name_and_a_byte_order_mark_are_read(tmp_path):
    lines = [json.dumps({"name": "a\u2028b", "arch": LSTM}, ensure_ascii=False), json.dumps({"name": "c", "arch": LSTM})]
    (tmp_path / "archs.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8") + b"\n")
    proc = _cli(["score", "--space", "nasbench-nlp", "--archs", tmp_path / "archs.jsonl", "--metrics", "params",
                 "--no-store", "--output", tmp_path / "o.csv", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "for 2 architectures" in proc.stdout


def test_limit_reads_only_the_lines_it_needs(tmp_path):
    from trainfree.archs import read_archs
    from trainfree.spaces import get_space

    # three good lines, then one that would fail: with limit 3 it is never read
    path = tmp_path / "archs.jsonl"
    good = json.dumps(LSTM)
    path.write_text("\n".join([json.dumps({"name": f"a{i}", "arch": LSTM}) for i in range(3)]) + "\n{not json\n")
    assert [n for n, _ in read_archs(path, get_space("nasbench-nlp"), limit=3)] == ["a0", "a1", "a2"]
    from trainfree.errors import InvalidArchitecture

    with pytest.raises(InvalidArchitecture, match="archs.jsonl:4: not valid JSON"):
        read_archs(path, get_space("nasbench-nlp"))
    assert good
