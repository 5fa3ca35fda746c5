"""A third-party space and metric, registered as a plug-in module, run end to end: score with a process
pool (the workers load the plug-in), correlate against a benchmark built in Python, search; through the
API (the module imported as a notebook would), `--plugin` and $TRAINFREE_PLUGINS. docs/architecture.md's
recipes are what this file follows. Each run is a subprocess, so the toy never enters this process's
registries."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: the plug-in: an MLP language-model family (width x depth) and a toy metric, in a few dozen lines
TOY = '''
"""Toy plug-in: MLP language models (embedding, `depth` tanh layers of `width` units, a readout)."""
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trainfree.config import ScoreSettings
from trainfree.errors import InvalidArchitecture
from trainfree.metrics import metric
from trainfree.spaces import register_space
from trainfree.spaces.base import SearchSpace
from trainfree.spaces.choices import GeneChooser, RandomChooser

WIDTHS, DEPTHS, VOCAB = (8, 16, 32), (1, 2, 3), 40


@dataclass(frozen=True)
class MLPArch:
    width: int
    depth: int

    def to_dict(self):
        return {"width": self.width, "depth": self.depth}

    def canonical_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def arch_id(self):
        return hashlib.sha1(self.canonical_json().encode()).hexdigest()[:16]


def generate(chooser):  # written once: sampling and gene decoding share it
    return MLPArch(chooser.pick(WIDTHS), chooser.pick(DEPTHS))


class MLPLM(nn.Module):
    batch_dim = 0

    def __init__(self, arch):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, arch.width)
        self.blocks = nn.ModuleList(nn.Linear(arch.width, arch.width) for _ in range(arch.depth))
        self.out = nn.Linear(arch.width, VOCAB)

    def states(self, tokens, activation_hook=None):
        h, states = self.embed(tokens), []
        for i, block in enumerate(self.blocks):
            h = torch.tanh(block(h))
            if activation_hook is not None:
                activation_hook(f"block{i}", h)
            states.append(h)
        return states

    def forward(self, tokens):
        return self.out(self.states(tokens)[-1])

    def proxy_loss(self, tokens, targets, activation_hook=None):
        logits = self.out(self.states(tokens, activation_hook)[-1])
        return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


class MLPSpace(SearchSpace):
    name = "toy-mlp"
    description = "toy MLP language models, width x depth"
    sizes = ("paper", "tiny")
    provides = frozenset({"parameters", "forward", "parameter_groups", "hidden_states", "lm_loss"})
    uses = frozenset({"seed", "batch_size", "seq_len", "dtype", "device"})
    default_metrics = ("toy_output_std", "params")

    def from_json(self, text, where=""):
        d = json.loads(text) if isinstance(text, str) else text
        if d.get("width") not in WIDTHS or d.get("depth") not in DEPTHS:
            raise InvalidArchitecture(f"{where or 'toy architecture'}: width in {WIDTHS}, depth in {DEPTHS}")
        return MLPArch(d["width"], d["depth"])

    def sample(self, rng):
        return generate(RandomChooser(rng))

    def mutate(self, arch, rng):
        c = RandomChooser(rng)
        if c.index(2):
            return MLPArch(c.pick([w for w in WIDTHS if w != arch.width]), arch.depth)
        return MLPArch(arch.width, c.pick([d for d in DEPTHS if d != arch.depth]))

    @property
    def n_genes(self):
        return 2

    def decode(self, genes):
        return generate(GeneChooser(genes))

    def features(self, arch):
        return frozenset({("width", arch.width), ("depth", arch.depth)})

    def factors(self, arch):
        return {"width": arch.width, "depth": arch.depth}

    def default_settings(self):
        return ScoreSettings(batch_size=8, seq_len=12)

    def build(self, arch, settings, device="cpu"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = MLPLM(arch)
        return model.to(device=device, dtype=getattr(torch, settings.dtype))

    def _tokens(self, settings, device):
        rng = np.random.default_rng(settings.seed)
        return torch.as_tensor(rng.integers(VOCAB, size=(settings.batch_size, settings.seq_len + 1)), device=device)

    def inputs(self, settings, device="cpu"):
        return self._tokens(settings, device)[:, :-1]

    def targets(self, settings, device="cpu"):
        return self._tokens(settings, device)[:, 1:]

    def parameter_groups(self, model):
        return {"embedding": [model.embed.weight], "ffn": [p for n, p in model.named_parameters() if n != "embed.weight"]}

    def hidden_states(self, probe, layer):
        def compute():
            with torch.no_grad():
                return probe.model.states(probe.inputs)
        states = probe.cached("toy_states", compute)
        return states[-1 if layer == -1 else layer - 1]


register_space(MLPSpace)


@metric("toy_output_std", higher_is_better=True, requires={"forward"})
def toy_output_std(probe):
    """Standard deviation of the model's outputs on the probe's batch (the plug-in test's metric)."""
    with torch.no_grad():
        return float(probe.model(probe.inputs).double().std())
'''

#: the API run, as a notebook would do it: import the module, then score with a process pool
API_RUN = '''
import json
import toyplug  # registers the toy space and metric in this process only
from scipy import stats
from trainfree import api
from trainfree.benchmarks import Benchmark, Record
from trainfree.metrics import Probe, get_metric
from trainfree.spaces import get_space
from trainfree.store import Store

space = get_space("toy-mlp")
archs = [space.decode([w, d]) for w in range(3) for d in range(3)]  # every width x depth once
# a benchmark in the toy's own format, built in Python: a made-up trained loss, lower is better
records = [Record(f"toy-{i}", a, 4.0 - 0.01 * a.width * a.depth - 0.001 * i) for i, a in enumerate(archs)]
bench = Benchmark("toy", "toy-mlp", records, "loss", lower_is_better=True)
settings = space.default_settings().with_(device="cpu")
metrics = ["toy_output_std", "params", "hidden_cov", "nonembedding_params", "grad_norm"]
with Store("scores.sqlite") as store:  # in the working directory, a temporary folder
    run = api.score(bench, metrics, settings, jobs=2, executor="process", store=store)
local = {(r.name, r.metric): r.value for r in api.score(bench, metrics, settings).rows}
by_name = {r.name: r.arch for r in records}
direct = {n: get_metric("toy_output_std")(Probe(a, space, settings)) for n, a in by_name.items()}
corr = {c.metric: c.as_dict() for c in api.correlate(bench, run.rows)}
params = [next(r.value for r in run.rows if r.name == rec.name and r.metric == "params") for rec in records]
tau = stats.kendalltau(params, [-rec.target for rec in records]).statistic
found = api.search("toy-mlp", "toy_output_std", "evolution", budget=6, search_seed=0, settings=settings, jobs=2,
                   executor="process", population=3)
within = api.search(None, "toy_output_std", "random", budget=4, search_seed=1, settings=settings, benchmark=bench)
analysis = api.analyze(bench, min_leaf=2, permutations=199, resamples=5)
print(json.dumps({
    "rows": [[r.name, r.metric, r.value, r.status] for r in run.rows], "local": [[*k, v] for k, v in local.items()],
    "direct": direct, "corr": corr, "tau": tau,
    "trials": [[t.arch_id, t.values["toy_output_std"]] for t in found.trials],
    "chosen": found.chosen().values["toy_output_std"], "within": within.evaluation(),
    "within_ids": sorted(t.arch_id for t in within.trials), "bench_ids": sorted(space.arch_id(a) for a in archs),
    "factor_rows": analysis.table_rows(), "targets": [[r.arch.width, r.arch.depth, r.target] for r in records]}))
'''


@pytest.fixture
def plugin(tmp_path):
    (tmp_path / "toyplug.py").write_text(textwrap.dedent(TOY))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    env.pop("TRAINFREE_PLUGINS", None)
    return tmp_path, env


def _run(args, env, cwd):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_api_score_with_a_process_pool_correlate_and_search(plugin):
    tmp, env = plugin
    out = json.loads(_run(["-c", API_RUN], env, tmp).strip().splitlines()[-1])
    rows = out["rows"]
    assert len(rows) == 9 * 5 and all(status == "ok" for _, _, _, status in rows), rows
    # the pool's workers loaded the plug-in and computed what this process computes
    local = {(n, m): v for n, m, v in out["local"]}
    assert all(local[(n, m)] == v for n, m, v, _ in rows)
    assert all(v == out["direct"][n] for n, m, v, _ in rows if m == "toy_output_std")
    # correlate: every record matched, params' tau that of an independent computation
    assert out["corr"]["params"]["n"] == 9
    assert out["corr"]["params"]["kendall_tau"] == pytest.approx(out["tau"])
    # search: six distinct architectures, the chosen one the best of them by the metric
    assert len({a for a, _ in out["trials"]}) == 6
    assert out["chosen"] == max(v for _, v in out["trials"])
    # a search within the benchmark proposes only its architectures and reports the trained result
    assert set(out["within_ids"]) <= set(out["bench_ids"]) and 0 <= out["within"]["percentile"] <= 100
    # analyze: the toy's factors() give the table, each level's mean the mean of its records' targets
    got = {(r["factor"], r["level"]): (r["n"], r["mean"]) for r in out["factor_rows"]}
    for col, factor, levels in ((0, "width", (8, 16, 32)), (1, "depth", (1, 2, 3))):
        for level in levels:
            ts = [t[2] for t in out["targets"] if t[col] == level]
            assert got[(factor, level)] == (3, pytest.approx(sum(ts) / 3))


@pytest.mark.slow
def test_cli_plugin_option_and_environment(plugin):
    tmp, env = plugin
    listed = _run(["-m", "trainfree", "--plugin", "toyplug", "metrics", "--space", "toy-mlp"], env, tmp)
    names = {line.split()[0] for line in listed.splitlines()}
    assert {"toy_output_std", "params", "hidden_cov", "nonembedding_params"} <= names
    assert "head_confidence" not in names and "jacob_cov" not in names  # the toy provides no such artefacts
    assert "toy-mlp" in _run(["-m", "trainfree", "--plugin", "toyplug", "search", "--help"], env, tmp)
    result = tmp / "search.json"
    _run(["-m", "trainfree", "--plugin", "toyplug", "search", "--space", "toy-mlp", "--metric", "toy_output_std",
          "--strategy", "random", "--budget", "5", "--jobs", "2", "--executor", "process", "--batch-size", "6",
          "--no-store", "--quiet", "--output", str(result)], env, tmp)
    first = json.loads(result.read_text())
    assert len(first["trials"]) == 5 and all(t["status"] == "ok" for t in first["trials"])
    # the same search with the plug-in named by $TRAINFREE_PLUGINS, in-process: the same numbers
    env2 = dict(env, TRAINFREE_PLUGINS="toyplug")
    _run(["-m", "trainfree", "search", "--space", "toy-mlp", "--metric", "toy_output_std", "--strategy", "random",
          "--budget", "5", "--jobs", "1", "--batch-size", "6", "--no-store", "--quiet", "--output", str(result)],
         env2, tmp)
    again = json.loads(result.read_text())
    assert [t["values"] for t in again["trials"]] == [t["values"] for t in first["trials"]]


def test_a_setting_the_plugin_space_ignores_is_rejected(plugin):
    tmp, env = plugin
    proc = subprocess.run([sys.executable, "-m", "trainfree", "--plugin", "toyplug", "search", "--space", "toy-mlp",
                           "--budget", "2", "--offset", "3", "--no-store", "--quiet"],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=300)
    assert proc.returncode == 2 and "does not use the offset setting" in proc.stderr, proc.stderr


def test_an_unimportable_plugin_is_a_clear_error(plugin):
    tmp, env = plugin
    proc = subprocess.run([sys.executable, "-m", "trainfree", "--plugin", "no_such_plugin_module", "metrics"],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=300)
    assert proc.returncode == 2 and "plug-in 'no_such_plugin_module' cannot be imported" in proc.stderr


def test_entry_points_of_an_installed_package_load_without_naming_it(plugin):
    tmp, env = plugin
    info = tmp / "toyplug-0.1.dist-info"  # what `pip install` of a package declaring the entry points leaves
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[trainfree.spaces]\ntoy-mlp = toyplug:MLPSpace\n\n"
                                           "[trainfree.metrics]\ntoy = toyplug\n")
    listed = _run(["-m", "trainfree", "metrics", "--space", "toy-mlp"], env, tmp)
    assert "toy_output_std" in listed
