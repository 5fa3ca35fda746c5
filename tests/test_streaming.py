"""The driver streams: rows go to a sink (the CLI's CSV writer) while scoring goes on, in input order,
and are not also kept in a list; the values of finished architectures are dropped once written."""
import csv

import pytest

from trainfree import executors, runner
from trainfree.runner import score_architectures
from trainfree.spaces import get_space
from trainfree.store import Store


@pytest.fixture
def logged_chunks(monkeypatch):
    """The executors' map, in-process, logging each chunk it hands back to the runner."""
    log = []
    real = executors.LocalExecutor.map

    def logged(self, fn, tasks):
        for index, outcomes in real(self, fn, tasks):
            log.append(("chunk", index))
            yield index, outcomes

    monkeypatch.setattr(executors.LocalExecutor, "map", logged)
    monkeypatch.setattr(executors, "KINDS", {**executors.KINDS, "process": executors.LocalExecutor})
    return log


def _items(ptb, n):
    # records in benchmark order, with repeats of one recipe (the shipped set has several runs per cell)
    return [(r.name, r.arch) for r in ptb.records[:n]]


def test_rows_reach_the_sink_while_scoring_goes_on_in_input_order(ptb, logged_chunks):
    space = get_space("nasbench-nlp")
    settings = space.tiny_settings()
    items = _items(ptb, 24)
    whole = score_architectures("nasbench-nlp", items, ["params", "nonembedding_params"], settings).rows
    logged_chunks.clear()

    def sink(row):
        logged_chunks.append(("row", row.name))

    run = score_architectures("nasbench-nlp", items, ["params", "nonembedding_params"], settings, sink=sink)
    assert run.rows == []  # not accumulated
    rows = [name for kind, name in logged_chunks if kind == "row"]
    assert rows == [r.name for r in whole]
    chunks = [i for i, (kind, _) in enumerate(logged_chunks) if kind == "chunk"]
    assert len(chunks) > 3
    first_row = next(i for i, (kind, _) in enumerate(logged_chunks) if kind == "row")
    assert first_row < chunks[1]  # the first item's rows went out before the second chunk came back
    # rows arrive between the chunks, not all at the end
    assert sum(kind == "row" for kind, _ in logged_chunks[chunks[-1]:]) < len(rows) / 2


def test_streamed_rows_with_a_store_read_reused_keys_block_by_block(ptb, tmp_path, monkeypatch):
    space = get_space("nasbench-nlp")
    settings = space.tiny_settings()
    items = _items(ptb, 30)
    metrics = ["params", "nonembedding_params"]
    monkeypatch.setattr(runner._Emitter, "BLOCK", 3)
    reads = []
    with Store(tmp_path / "s.sqlite") as store:
        real_get = store.get
        monkeypatch.setattr(store, "get", lambda *a: reads.append(len(a[2])) or real_get(*a))
        score_architectures("nasbench-nlp", items[::2], metrics[:1], settings, store=store)  # half the keys
        reads.clear()
        streamed = []
        run = score_architectures("nasbench-nlp", items, metrics, settings, store=store, sink=streamed.append)
        assert run.reused > 0 and run.computed > 0 and run.rows == []
        assert reads and max(reads) <= 3  # the reused keys were read a block at a time, not all at once
        listed = score_architectures("nasbench-nlp", items, metrics, settings, store=store).rows
    assert streamed == listed


def test_score_command_writes_rows_to_the_csv_as_they_come(tmp_path, logged_chunks, monkeypatch):
    from trainfree.cli import main
    from trainfree.scores import ScoresWriter

    real = ScoresWriter.__call__
    monkeypatch.setattr(ScoresWriter, "__call__", lambda self, row: (logged_chunks.append(("row", row.name)),
                                                                   real(self, row))[1])
    out = tmp_path / "s.csv"
    assert main(["score", "--benchmark", "nasbench-nlp-ptb", "--metrics", "params", "--limit", "12", "--size", "tiny",
                 "--jobs", "1", "--no-store", "--quiet", "--output", str(out)]) == 0
    chunks = [i for i, (kind, _) in enumerate(logged_chunks) if kind == "chunk"]
    rows = [i for i, (kind, _) in enumerate(logged_chunks) if kind == "row"]
    assert len(rows) == 12 and rows[0] < chunks[1]
    with open(out, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 12
