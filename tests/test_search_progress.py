"""Progress of `search` and of `search-eval`'s searches (after its scoring pass): plain lines with
done/total evaluations, rate and ETA when stderr is not a terminal, nothing with --quiet."""
import re

from trainfree.cli import main

SETTINGS = ["--size", "tiny", "--jobs", "1", "--no-store"]


def _lines(err: str, desc: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{desc}: ")]


def test_search_eval_reports_its_searches_evaluations(capsys):
    args = ["search-eval", "--benchmark", "nasbench-nlp-ptb", "--limit", "40", "--metrics", "params", "--strategies",
            "random,evolution", "--seeds", "2", "--budget", "5", *SETTINGS]
    assert main(args) == 0
    err = capsys.readouterr().err
    scoring, searching = _lines(err, "scoring"), _lines(err, "searching")
    assert scoring and searching
    assert err.index(scoring[-1]) < err.index(searching[0])  # the searches come after the scoring pass
    assert searching[0] == "searching: 20 evaluations to go"  # 2 strategies x 2 seeds x budget 5
    assert re.fullmatch(r"searching: 20/20 \(100%\), [\d.]+ eval/s, elapsed \d+ s", searching[-1])
    done = [int(line.split()[1].split("/")[0]) for line in searching[1:]]
    assert done == sorted(done)
    assert main(args + ["--quiet"]) == 0
    err = capsys.readouterr().err
    assert not _lines(err, "searching") and not _lines(err, "scoring")


def test_search_reports_evaluations_from_the_start(capsys):
    args = ["search", "--benchmark", "nasbench-nlp-ptb", "--metric", "params", "--strategy", "evolution",
            "--budget", "6", "--population", "3", *SETTINGS]
    assert main(args) == 0
    searching = _lines(capsys.readouterr().err, "searching")
    assert searching[0] == "searching: 6 architectures to go"
    assert re.fullmatch(r"searching: 6/6 \(100%\), [\d.]+ arch/s, elapsed \d+ s", searching[-1])
    assert main(args + ["--quiet"]) == 0
    assert not _lines(capsys.readouterr().err, "searching")
