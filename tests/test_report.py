"""`trainfree report`: content of the page, embedded images only, the store path, errors, and a real
browser rendering it (headless Chromium; skipped only when no browser is installed)."""
import base64
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import importlib.util

import pytest

from trainfree import api
from trainfree.config import ScoreSettings
from trainfree.scores import write_scores
from trainfree.search import run_search
from tests.test_store import _sample_csv

# every test but the missing-extra one draws plots
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="reports need matplotlib: pip install 'trainfree[report]'")

TINY = ScoreSettings(size="tiny", batch_size=4, seq_len=8, device="cpu")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.ids, self.tables = [], [], set(), 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag == "table":
            self.tables += 1
        for key in ("src", "href"):
            assert not str(a.get(key, "")).startswith(("http:", "https:", "//", "file:")), f"external {key}: {a[key]}"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    bench = d / "ptb30.csv"
    _sample_csv(bench, 30)
    run = api.score(str(bench), ["hidden_cov", "params"], TINY)
    scores = d / "scores.csv"
    write_scores(scores, run.rows, api.provenance(TINY, ["hidden_cov", "params"]))
    from trainfree.benchmarks import load_benchmark

    result = run_search("nasbench-nlp", "hidden_cov", "random", 12, seed=0, settings=TINY, objective="params",
                        benchmark=load_benchmark(str(bench)))
    search = d / "search.json"
    search.write_text(json.dumps(result.as_dict()))
    out = d / "report.html"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "report", "--benchmark", str(bench), "--scores",
                           str(scores), "--search", str(search), "--output", str(out), "--resamples", "100"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow
@needs_matplotlib
def test_report_content_and_only_embedded_images(report):
    page = report.read_text()
    refs = _Refs()
    refs.feed(page)
    # one scatter per metric, the top-k curves, a search trajectory and a Pareto front
    assert len(refs.imgs) == 2 + 1 + 2
    for src in refs.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(link.startswith("#") and link[1:] in refs.ids for link in refs.links)  # no broken anchors
    assert refs.tables >= 3  # correlations, the chosen architecture, the Pareto set
    for text in ("Kendall tau-b [95% CI]", "<code>hidden_cov</code>", "<code>params</code>", "top-10 precision",
                 "tau − params", "Pareto front", "percentile (0 = best)", "&quot;fingerprint&quot;", "torch_version"):
        assert text in page, text
    assert re.search(r"<td>[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]</td>", page)  # paired vs params


@pytest.mark.slow
@needs_matplotlib
def test_report_from_a_store_and_errors(tmp_path):
    from trainfree.store import Store

    bench = tmp_path / "ptb20.csv"
    _sample_csv(bench, 20)
    with Store(tmp_path / "s.db") as store:
        api.score(str(bench), ["params"], TINY, store=store)
    base = [sys.executable, "-m", "trainfree", "report", "--benchmark", str(bench), "--output", str(tmp_path / "r.html")]
    tiny = ["--size", "tiny", "--batch-size", "4", "--seq-len", "8"]
    ok = subprocess.run(base + ["--store", str(tmp_path / "s.db"), "--resamples", "50"] + tiny, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    assert "1 metrics over 20 architectures" in ok.stdout and "<code>params</code>" in (tmp_path / "r.html").read_text()
    wrong = subprocess.run(base + ["--store", str(tmp_path / "s.db")], capture_output=True, text=True)  # paper settings
    assert wrong.returncode == 2 and "no scores under settings fingerprint" in wrong.stderr
    (tmp_path / "bad.json").write_text("{}")
    bad = subprocess.run(base + ["--search", str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a search result" in bad.stderr and "Traceback" not in bad.stderr


@needs_matplotlib
def test_every_plotted_tick_label_is_plain_text_on_the_installed_matplotlib(tmp_path, monkeypatch):
    # a report's figures rendered to SVG with their text kept as text: hidden covariance spans -1e3 to -1e7,
    # so the scatter and trajectory axes are symlog and the top-k axis log; none may show raw math text
    import re

    import matplotlib

    from trainfree.report import plots

    bench = tmp_path / "ptb30.csv"
    _sample_csv(bench, 30)
    run = api.score(str(bench), ["hidden_cov", "params"], TINY)
    svgs = []
    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "none")
    monkeypatch.setattr(plots, "_png", lambda fig: svgs.append(plots._save(fig, "svg").decode()) or b"")
    from trainfree.benchmarks import load_benchmark

    result = run_search("nasbench-nlp", "hidden_cov", "random", 12, seed=0, settings=TINY, objective="params",
                        benchmark=load_benchmark(str(bench)))
    api.report(str(bench), run.rows, searches=[result.as_dict()], resamples=50)
    assert len(svgs) >= 3
    texts = [t for svg in svgs for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert texts, "no text in the SVG: the check would pass for nothing"
    raw = [t for t in texts if "mathdefault" in t or "$" in t or "^{" in t]
    assert raw == [], f"raw math text in tick labels: {raw[:5]}"
    assert "10" in texts  # the top-k curve's log axis, labelled in plain text


def test_missing_matplotlib_names_the_extra(monkeypatch):
    from trainfree.errors import MissingExtra
    from trainfree.report import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtra, match=r"trainfree\[report\]"):
        plots.topk_curves({}, 10)


def _browser():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


@needs_matplotlib
@pytest.mark.skipif(_browser() is None, reason="no Chromium/Chrome installed")
def test_report_renders_in_headless_chromium(report, tmp_path):
    import matplotlib.image

    shot = tmp_path / "shot.png"
    proc = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.05  # a page with content, not a blank canvas
