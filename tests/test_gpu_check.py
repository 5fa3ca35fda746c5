"""The GPU script's stages, run dry on the CPU (no GPU in CI), and the TF32 switch scoring sets."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainfree.outcomes import full_float32

ROOT = Path(__file__).resolve().parents[1]


def test_scoring_on_cuda_turns_tf32_off_and_cpu_leaves_it():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        full_float32(torch.device("cpu"))
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        full_float32(torch.device("cuda"))  # the flags exist without a GPU
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_without_cuda_the_script_says_so():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True)
    assert done.returncode == 2 and "no CUDA device" in done.stderr


@pytest.mark.slow
def test_dry_run_on_cpu_scores_every_set_and_compares_with_the_suite(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--n", "3", "--m", "2",
           "--batch", "2", "--sets", "nlp,bert,lts", "--sets-n", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["device"] == "cpu (dry run)" and set(report["sets"]) == {"nlp", "bert", "lts"}
    # the CPU values the suite ships are what the CPU computes again, to rounding
    agree = report["agreement"]["batched_gpu_vs_per_arch_cpu"]
    assert agree["compared"] == 2 and agree["max_rel_diff"] <= 1e-6
    for key, metric in (("nlp", "hidden_cov"), ("bert", "head_confidence"), ("lts", "decoder_hidden_cov")):
        entry = report["sets"][key]
        assert entry["architectures"] == 2 and entry["s_per_arch"] > 0 and entry["peak_mib"] > 0
        suite = entry["agreement"][metric]["vs_suite_cpu"]
        assert suite["compared"] == 2 and suite["max_rel_diff"] <= 1e-4, (key, suite)
    assert report["sets"]["nlp"]["agreement"]["hidden_cov"]["vs_published"]["compared"] == 2
