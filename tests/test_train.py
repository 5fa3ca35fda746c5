"""Short training: the loss falls, a killed run resumes bit for bit, results are stored and reused,
the command line trains and refuses bad input with the project's errors."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from trainfree.errors import TrainfreeError
from trainfree.spaces import get_space
from trainfree.store import Store
from trainfree.train import Budget, protocol_for, train_arch

#: tiny models and batches so that each space trains in about a second
TINY = {
    "nasbench-nlp": dict(size="tiny", batch_size=8, seq_len=20, eval_batch_size=8, eval_tokens=640, lr=1e-2),
    "nasbench-bert": dict(size="tiny", batch_size=4, seq_len=32, eval_batch_size=4, eval_tokens=256, lr=5e-3),
    "decoder": dict(size="tiny", batch_size=4, seq_len=16, eval_batch_size=4, eval_tokens=256, lr=5e-3),
}


def tiny(space_name: str, **extra):
    return protocol_for(space_name, **dict(TINY[space_name], **extra))


@pytest.mark.parametrize("space_name", sorted(TINY))
def test_a_tiny_model_learns(space_name):
    space = get_space(space_name)
    result = train_arch(space, space.example(), tiny(space_name), Budget.of(12, "steps", [1]), seed=0)
    first, last = result.records
    assert result.status == "ok" and first.steps == 1 and last.steps == 12
    assert last.val_loss < first.val_loss  # validation loss falls
    assert last.tokens > first.tokens > 0 and last.cpu_seconds > 0


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


class Stop(Exception):
    pass


@pytest.mark.parametrize("space_name", ["nasbench-nlp", "decoder"])
def test_a_killed_run_resumes_bit_for_bit(tmp_path, space_name):
    """Stopped after step 5 (its checkpoint saved at every budget point), resumed to 9 steps: the same
    weights and losses, exactly, as a run never stopped (CPU, one process, the same thread count)."""
    space, arch, protocol = get_space(space_name), get_space(space_name).example(), tiny(space_name)
    budget = Budget.of(9, "steps", [5])
    whole = train_arch(space, arch, protocol, budget, seed=3, keep_model=True)

    def stop(step):
        if step == 6:  # after the checkpoint at step 5, mid-way through the rest
            raise Stop

    with pytest.raises(Stop):
        train_arch(space, arch, protocol, budget, seed=3, checkpoint_dir=tmp_path, after_step=stop)
    assert list(tmp_path.glob("*.pt"))
    resumed = train_arch(space, arch, protocol, budget, seed=3, checkpoint_dir=tmp_path, keep_model=True)
    assert resumed.resumed_from == 5
    assert [r.val_loss for r in resumed.records] == [r.val_loss for r in whole.records]
    a, b = _weights(whole.model), _weights(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(tmp_path.glob("*.pt"))  # a finished run removes its checkpoint


def test_a_longer_budget_continues_a_kept_checkpoint(tmp_path):
    space, arch, protocol = get_space("decoder"), get_space("decoder").example(), tiny("decoder")
    whole = train_arch(space, arch, protocol, Budget.of(6, "steps", [3]), seed=0)
    train_arch(space, arch, protocol, Budget.of(3, "steps"), seed=0, checkpoint_dir=tmp_path, keep_checkpoint=True)
    longer = train_arch(space, arch, protocol, Budget.of(6, "steps"), seed=0, checkpoint_dir=tmp_path)
    assert longer.resumed_from == 3
    assert [r.val_loss for r in longer.records] == [r.val_loss for r in whole.records]


def test_token_and_cpu_budgets_stop_past_their_point():
    space, arch = get_space("decoder"), get_space("decoder").example()
    by_tokens = train_arch(space, arch, tiny("decoder"), Budget.of(200, "tokens"), seed=0)
    assert by_tokens.final.tokens >= 200 and by_tokens.final.tokens - 64 < 200  # 64 tokens a step
    by_cpu = train_arch(space, arch, tiny("decoder"), Budget.of(0.05, "cpu-seconds"), seed=0)
    assert by_cpu.final.cpu_seconds >= 0.05


def test_a_diverged_run_keeps_nan():
    space, arch = get_space("decoder"), get_space("decoder").example()
    result = train_arch(space, arch, tiny("decoder", lr=1e9, clip=0.0), Budget.of(6, "steps", [2]), seed=0)
    assert result.status == "nonfinite" and math.isnan(result.final.val_loss)


def test_protocols_and_budgets_refuse_bad_input():
    with pytest.raises(TrainfreeError, match="unknown budget unit 'epochs'"):
        Budget.of(5, "epochs")
    with pytest.raises(TrainfreeError, match="positive"):
        Budget.of(-1, "steps")
    with pytest.raises(TrainfreeError, match="no size 'huge'"):
        protocol_for("decoder", size="huge")
    with pytest.raises(TrainfreeError, match="is for space 'nasbench-bert'"):
        protocol_for("decoder", "nasbench-bert")
    with pytest.raises(TrainfreeError, match="unknown training protocol 'nope'"):
        protocol_for("decoder", "nope")
    with pytest.raises(TrainfreeError, match="unknown protocol field"):
        protocol_for("decoder", colour="red")


def test_the_nasbench_nlp_protocol_is_the_benchmarks():
    p = protocol_for("nasbench-nlp")
    assert (p.optimizer, p.lr, p.weight_decay, p.batch_size, p.seq_len, p.clip, p.size) == \
        ("adam", 1e-3, 1.2e-6, 20, 70, 0.25, "paper")
    assert dict(p.options) == {"alpha": 2.0, "beta": 1.0, "dropout": 0.4, "dropoute": 0.1, "dropouth": 0.25,
                               "dropouti": 0.4, "wdrop": 0.5}


def test_a_space_with_an_lm_loss_gets_the_generic_protocol():
    """A space without a protocol of its own (the Hugging Face ones) trains through its batches and proxy_loss."""
    from trainfree.spaces.decoder.space import DecoderSpace
    from trainfree.train.protocol import generic_protocol

    class Other(DecoderSpace):
        name = "other-decoder"

    space = Other()
    protocol = generic_protocol(space).with_(**TINY["decoder"])
    assert protocol.trainer == "window-lm" and protocol.name == "other-decoder-lm"
    result = train_arch(space, space.example(), protocol, Budget.of(3, "steps"), seed=0)
    assert result.status == "ok" and math.isfinite(result.val_loss)


def test_results_are_stored_and_not_trained_twice(tmp_path):
    from trainfree import api

    space = get_space("decoder")
    archs = [space.example(), space.sample(__import__("numpy").random.default_rng(1))]
    kw = dict(space="decoder", archs=archs, budget=4, record_at=[2], store=tmp_path / "s.sqlite", **TINY["decoder"])
    first = api.train(**kw)
    assert first.trained == 2 and first.reused == 0
    assert all(set(r.points) == {2.0, 4.0} and r.status == "ok" for r in first.results)
    again = api.train(**kw)
    assert again.trained == 0 and again.reused == 2
    assert [r.val_loss for r in again.results] == [r.val_loss for r in first.results]
    shorter = api.train(**dict(kw, budget=2, record_at=[]))  # a point recorded on the way is a fidelity too
    assert shorter.trained == 0 and [r.val_loss for r in shorter.results] == \
        [r.points[2.0]["val_loss"] for r in first.results]
    with Store(tmp_path / "s.sqlite") as store:
        rows = store.trainings(first.protocol.fingerprint(), 0, "steps")
    assert len(rows) == 4 and all(r["curve"]["val"] for r in rows.values())


def test_kept_checkpoints_let_a_longer_budget_continue_through_the_api(tmp_path):
    from trainfree import api

    space = get_space("decoder")
    kw = dict(space="decoder", archs=[space.example()], threads=1, **TINY["decoder"])
    folder = tmp_path / "ck"
    first = api.train(budget=2, store=tmp_path / "s.sqlite", checkpoint_dir=folder, keep_checkpoints=True, **kw)
    assert len(list(folder.glob("*.pt"))) == 1  # kept after the run finished
    longer = api.train(budget=4, record_at=[2], store=tmp_path / "s.sqlite", checkpoint_dir=folder, **kw)
    fresh = api.train(budget=4, record_at=[2], **kw)
    assert longer.trained == 1
    # continued, not retrained: the step-2 record is the checkpoint's, CPU clock and all
    assert longer.results[0].points[2.0]["cpu_seconds"] == first.results[0].points[2.0]["cpu_seconds"]
    assert longer.results[0].points[4.0]["val_loss"] == fresh.results[0].points[4.0]["val_loss"]
    assert longer.results[0].points[4.0]["tokens"] == fresh.results[0].points[4.0]["tokens"]
    assert not list(folder.glob("*.pt"))  # this run did not keep its own


@pytest.mark.slow
def test_a_process_pool_trains_one_arch_per_task(tmp_path):
    from trainfree import api

    space = get_space("decoder")
    archs = [space.sample(__import__("numpy").random.default_rng(i)) for i in range(2)]
    local = api.train(space="decoder", archs=archs, budget=2, threads=1, **TINY["decoder"])
    pooled = api.train(space="decoder", archs=archs, budget=2, jobs=2, executor="process", **TINY["decoder"])
    assert [r.val_loss for r in pooled.results] == [r.val_loss for r in local.results]


def _cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.run([sys.executable, "-m", "trainfree", "train", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _tiny_flags():
    return ["--space", "decoder", "--train-size", "tiny", "--lr", "0.005"]


@pytest.mark.slow
def test_cli_trains_stores_and_reports(tmp_path):
    arch = get_space("decoder").to_json(get_space("decoder").example())
    out = tmp_path / "r.json"
    proc = _cli("--arch", arch, *_tiny_flags(), "--budget", "3", "--record-at", "1", "--store",
                str(tmp_path / "s.sqlite"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "trained 1, reused 0" in proc.stdout and "training:" in proc.stderr  # plain progress lines in a log
    data = json.loads(out.read_text())
    assert data["protocol"]["trainer"] == "window-lm" and data["points"] == [1.0, 3.0]
    assert len(data["results"][0]["points"]) == 2 and "torch_version" in data
    again = _cli("--arch", arch, *_tiny_flags(), "--budget", "3", "--record-at", "1", "--store",
                 str(tmp_path / "s.sqlite"), "--quiet")
    assert again.returncode == 0 and "trained 0, reused 1" in again.stdout and again.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["--arch", "{}", "--space", "decoder", "--budget", "2", "--no-store"], "--arch"),
    (["--arch", "not json", "--space", "decoder", "--budget", "2", "--no-store"], "not valid JSON"),
    (["--benchmark", "nasbench-bert", "--space", "decoder", "--budget", "2", "--no-store"], "--space goes with"),
    (["--arch", "{}", "--budget", "2", "--no-store"], "need --space"),
    (["--benchmark", "nasbench-bert", "--budget", "2", "--protocol", "decoder", "--no-store"], "is for space"),
])
def test_cli_errors_are_one_line(args, message):
    proc = _cli(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_bad_budget_is_refused_by_the_parser():
    proc = _cli("--arch", "{}", "--space", "decoder", "--budget", "-3", "--no-store")
    assert proc.returncode == 2 and "expected positive numbers" in proc.stderr


@pytest.mark.slow
def test_cli_sigterm_then_rerun_resumes(tmp_path):
    """SIGTERM mid-run: the command exits 143 keeping its checkpoint; the same command resumes from it
    and ends where an uninterrupted run ends."""
    space = get_space("nasbench-nlp")
    arch = space.to_json(space.example())
    flags = ["--arch", arch, "--space", "nasbench-nlp", "--train-size", "tiny", "--budget", "30", "--record-at",
             "1", "--store", str(tmp_path / "s.sqlite"), "--checkpoint-dir", str(tmp_path / "ck")]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-m", "trainfree", "train", *flags], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "ck").glob("*.pt")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # the checkpoint at the first budget point
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal landed")
    assert proc.returncode == 143 and "rerun the same command to resume" in err
    assert list((tmp_path / "ck").glob("*.pt"))
    again = _cli(*flags, "--quiet", "--output", str(tmp_path / "r.json"))
    assert again.returncode == 0, again.stderr
    got = json.loads((tmp_path / "r.json").read_text())["results"][0]["points"]
    from trainfree.executors import _threads_for_now

    with _threads_for_now(1):  # as the command trained (one thread): the same float sums
        whole = train_arch(space, space.example(), protocol_for("nasbench-nlp", size="tiny"), Budget.of(30, "steps", [1]))
    assert [p["val_loss"] for p in got] == [r.val_loss for r in whole.records]


def test_make_benchmark_writes_a_file_every_command_reads(tmp_path):
    """Sampled, trained, written; then loaded by the format registry and scored and correlated."""
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.benchmarks.base import detect_format

    out = tmp_path / "mine.json"
    data = api.make_benchmark("decoder", 3, 2, record_at=[1], sample_seed=5, output=out, store=tmp_path / "s.sqlite",
                              **TINY["decoder"])
    assert data["trained"] == 3 and data["protocol"]["size"] == "tiny" and data["versions"]["torch"]
    assert detect_format(out).name == "trainfree-benchmark"
    bench = load_benchmark(out)
    assert bench.space == "decoder" and len(bench) == 3 and bench.lower_is_better and bench.corpus == "wikitext-2"
    at1 = load_benchmark(out, target="val_loss@1")
    assert [r.target for r in at1.records] == [r["fidelities"]["1"] for r in data["records"]]
    again = api.make_benchmark("decoder", 3, 2, record_at=[1], sample_seed=5, store=tmp_path / "s.sqlite", **TINY["decoder"])
    assert again["trained"] == 0 and again["reused"] == 3  # resumable through the store
    run = api.score(bench, ["decoder_params"], get_space("decoder").tiny_settings())
    table = api.correlate(bench, run.rows)
    assert table and table[0].correlation.n == 3


def test_a_benchmark_file_with_bad_content_names_the_problem(tmp_path):
    from trainfree.benchmarks import load_benchmark
    from trainfree.errors import InvalidBenchmark

    path = tmp_path / "b.json"
    path.write_text(json.dumps({"format": "trainfree-benchmark", "format_version": 1, "space": "decoder",
                                "budget": {"unit": "steps", "points": [2]}, "protocol": {},
                                "records": [{"name": "a", "arch": {"nope": 1}, "val_loss": 1.0}]}))
    with pytest.raises(InvalidBenchmark, match="record 0"):
        load_benchmark(path)
    path.write_text(json.dumps({"format": "trainfree-benchmark", "format_version": 1, "space": "decoder",
                                "budget": {"unit": "steps", "points": [2]}, "records": []}))
    with pytest.raises(InvalidBenchmark, match="no record has a finite val_loss"):
        load_benchmark(path)
    with pytest.raises(InvalidBenchmark, match="no budget point 3"):
        load_benchmark(path, target="val_loss@3")


@pytest.mark.slow
def test_cli_make_benchmark(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    out = tmp_path / "b.json"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "make-benchmark", "--space", "decoder", "--n", "2",
                           "--train-budget", "2", "--train-size", "tiny", "--sample-seed", "1", "--seed", "3",
                           "--output", str(out),
                           "--store", str(tmp_path / "s.sqlite"), "--jobs", "1", "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert "2 architectures of decoder" in proc.stdout and data["sample_seed"] == 1 and data["train_seed"] == 3


def test_two_stage_search_trains_the_metrics_best_and_reports_the_trained_result(tmp_path):
    """Within a benchmark of 4 short-trained decoders: the K=2 best by decoder_params are trained again
    under the same protocol (from the store: nothing is retrained) and the lower loss is chosen."""
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.search.two_stage import verify_top

    store = Store(tmp_path / "s.sqlite")
    out = tmp_path / "mine.json"
    api.make_benchmark("decoder", 4, 2, sample_seed=2, output=out, store=store, **TINY["decoder"])
    bench = load_benchmark(out)
    result = api.search(None, "decoder_params", "random", 4, 0, get_space("decoder").tiny_settings(), benchmark=bench,
                        store=store)
    v = verify_top(result, 2, 2, store=store, **TINY["decoder"])
    assert v.run.trained == 0 and v.run.reused == 2
    top = {t.arch_id for t in result.best(2)}
    losses = {get_space("decoder").arch_id(r.arch): r.target for r in bench.records}
    assert v.chosen_arch_id in top and v.chosen_val_loss == min(losses[a] for a in top)
    assert v.evaluation()["target"] == losses[v.chosen_arch_id]
    store.close()


def test_cli_two_stage_search_needs_both_flags(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run([sys.executable, "-m", "trainfree", "search", "--space", "decoder", "--verify-top", "2",
                           "--no-store"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "needs both --verify-top K and --train-budget B" in proc.stderr


def test_a_checkpoint_past_an_unrecorded_point_starts_afresh(tmp_path):
    space, arch, protocol = get_space("decoder"), get_space("decoder").example(), tiny("decoder")
    train_arch(space, arch, protocol, Budget.of(4, "steps"), seed=0, checkpoint_dir=tmp_path, keep_checkpoint=True)
    fresh = train_arch(space, arch, protocol, Budget.of(6, "steps", [2]), seed=0)
    again = train_arch(space, arch, protocol, Budget.of(6, "steps", [2]), seed=0, checkpoint_dir=tmp_path)
    assert again.resumed_from == 0 and [r.val_loss for r in again.records] == [r.val_loss for r in fresh.records]


def test_equal_cpu_comparison_reads_stored_trainings(tmp_path):
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.search.compare import compare_at_equal_cpu

    store = Store(tmp_path / "s.sqlite")
    out = tmp_path / "mine.json"
    api.make_benchmark("decoder", 5, 2, sample_seed=3, output=out, store=store, **TINY["decoder"])
    bench = load_benchmark(out)
    rows, summary = compare_at_equal_cpu(bench, "decoder_params", "random", [0, 1], 1e6, 2, 2,
                                         get_space("decoder").tiny_settings(), store, metric_cpu=0.01,
                                         **TINY["decoder"])
    assert [r["method"] for r in rows] == ["metric only", "training only", "two-stage"]
    # with this much CPU, training all five picks the benchmark's best (its target is the trained loss)
    assert rows[1]["target_mean"] == summary["best"] and rows[1]["percentile_mean"] == 0.0
    # training only draws from train_pool alone: the two worst architectures, so it chooses the better of them
    space = get_space("decoder")
    losses = {space.arch_id(r.arch): r.target for r in bench.records}
    worst = sorted(losses, key=losses.get)[-2:]
    rows, summary = compare_at_equal_cpu(bench, "decoder_params", "random", [0], 1e6, 2, 2,
                                         space.tiny_settings(), store, metric_cpu=0.01, train_pool=worst,
                                         **TINY["decoder"])
    assert rows[1]["target_mean"] == min(losses[a] for a in worst) and summary["train_pool"] == 2
    with pytest.raises(TrainfreeError, match="not in benchmark"):
        compare_at_equal_cpu(bench, "decoder_params", "random", [0], 1e6, 2, 2, space.tiny_settings(), store,
                             metric_cpu=0.01, train_pool=["0123456789abcdef"], **TINY["decoder"])
    store.close()


@pytest.mark.slow
def test_ray_trains_as_in_process():
    pytest.importorskip("ray", reason="the ray executor needs trainfree[ray]")
    from trainfree import api

    space = get_space("decoder")
    archs = [space.sample(__import__("numpy").random.default_rng(i)) for i in range(2)]
    local = api.train(space="decoder", archs=archs, budget=2, threads=1, **TINY["decoder"])
    remote = api.train(space="decoder", archs=archs, budget=2, jobs=2, executor="ray", threads=1, **TINY["decoder"])
    assert [r.val_loss for r in remote.results] == [r.val_loss for r in local.results]
