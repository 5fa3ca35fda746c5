"""Executors give identical values at the same thread count: in-process, process pool, and Ray on a
local instance. Across thread counts BLAS reductions round differently, so values agree to ~1e-7."""
import pytest
import torch

from trainfree.config import ScoreSettings
from trainfree.errors import UnknownName
from trainfree.runner import score_architectures
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from tests.conftest import LSTM, RNN

TINY = ScoreSettings(size="tiny", batch_size=10, seq_len=20, device="cpu")
ITEMS = [("lstm", parse_recipe(LSTM)), ("rnn", parse_recipe(RNN))]
METRICS = ["hidden_cov", "activation_distance", "params"]


def _values(executor, jobs):
    run = score_architectures("nasbench-nlp", ITEMS, METRICS, TINY, jobs=jobs, executor=executor, chunk_size=1)
    return [(r.name, r.metric, r.value, r.status) for r in run.rows]


@pytest.fixture
def one_thread():
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def test_process_pool_matches_in_process(one_thread):
    # two workers on two cores run one thread each, like the in-process run here
    local = _values("local", 1)
    assert _values("process", 2) == local


def test_thread_count_changes_only_rounding():
    local = _values("local", 1)
    pooled = _values("process", 2)
    for (n1, m1, v1, s1), (n2, m2, v2, s2) in zip(local, pooled):
        assert (n1, m1, s1) == (n2, m2, s2) and v1 == pytest.approx(v2, rel=1e-6)


def test_ray_matches_in_process(one_thread):
    pytest.importorskip("ray")
    assert _values("ray", 2) == _values("local", 1)


def test_unknown_executor():
    with pytest.raises(UnknownName, match="choose from: local, process, ray"):
        _values("slurm", 1)
