"""The run report's core: docstrings rendered, CPU time measured apart from wall time, failures
with their files and logs, products linked, old run directories still reported."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from astroflow import config, report, runner, status
from astroflow.registry import PIPELINES, get_pipeline


def run_toy(run_dir, **settings):
    toy = get_pipeline("toy")
    cfg = config.resolve(toy, settings=settings, runner={"workers": 1})
    return runner.run(toy, cfg, run_dir, progress=False)


class Links(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.hrefs = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])


def test_docstring_markup_becomes_html():
    doc = """Runbook step 9, ses_mes.py (``seq 0 19 | parallel``): per-TCE statistics.

    Uses :func:`~steps.tec.science.sesmes.mes` and :mod:`astroflow.units`, *once*, see
    `the paper <https://example.org/p>`_.  Writes:

    * ``ranking.parquet`` in the run directory,
      one row per TCE;
    * ``spoc_ranking_Tier{1,2,3}.txt``.

    1. first
    2. second

    Run it as::

        astroflow run tec --out RUN
    """
    out = report.rst_html(doc)
    assert "<code>seq 0 19 | parallel</code>" in out
    assert '<code class="xref">mes</code>' in out and '<code class="xref">astroflow.units</code>' in out
    assert "<em>once</em>" in out and '<a href="https://example.org/p" target="_blank" rel="noopener">the paper</a>' in out
    assert "<ul><li><code>ranking.parquet</code> in the run directory, one row per TCE;</li>" in out
    assert "<ol><li>first</li><li>second</li></ol>" in out
    assert "<p>Run it as:</p>\n<pre>astroflow run tec --out RUN</pre>" in out


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_no_step_documentation_keeps_its_markup(name):
    raw = re.compile(r"``|:(func|mod|class|meth|attr|data):`")
    for step in get_pipeline(name).steps:
        text = re.sub(r"<(pre|code)[^>]*>.*?</\1>", "", report.rst_html(step.doc), flags=re.S)
        assert not raw.search(text), (step.name, text[:400])


def test_cpu_time_is_measured_apart_from_wall_time(tmp_path):
    assert run_toy(tmp_path, sleep=0.05).ok
    sq = next(s for s in status.collect(tmp_path)["steps"] if s["step"] == "square")
    assert sq["wall_s"] >= 20 * 0.05  # every item sleeps
    assert sq["cpu_s"] < 0.5 * sq["wall_s"]  # sleeping is not computing
    assert sq["units"] == 5 and 0 < sq["elapsed_s"] and sq["started"] < sq["finished"]


def test_report_shows_failures_products_logs_and_the_configuration(tmp_path):
    run_toy(tmp_path, bad=[5], products=True)
    page = report.write_report(tmp_path).read_text()
    cfg = config.load(tmp_path)
    assert cfg.config_hash() in page and cfg.code_version in page
    assert "<th>unit wall s</th>" in page and "<th>CPU s</th>" in page
    row = next(line for line in page.splitlines() if "item 5 is bad" in line)
    assert "<code>/data/item-5.fits</code>" in row  # a raw file is named, not linked
    log = re.search(r'href="(square/_logs/[^"]+\.jsonl)"', row)[1]
    assert "item 5 failed" in (tmp_path / log).read_text()
    hrefs = set(Links(page).hrefs)
    assert {f"products/sq-{i}.txt" for i in range(20) if i not in (3, 5)} <= hrefs
    for href in hrefs:
        if not href.startswith(("#", "http")):
            assert (tmp_path / href).exists(), href


def test_a_run_directory_from_before_cpu_and_start_times_is_still_reported(tmp_path):
    assert run_toy(tmp_path).ok
    for manifest in Path(tmp_path).glob("*/_manifests/*.json"):
        m = json.loads(manifest.read_text())
        for key in ("cpu_s", "started"):
            m.pop(key)
        manifest.write_text(json.dumps(m))
    sq = next(s for s in status.collect(tmp_path)["steps"] if s["step"] == "square")
    assert sq["cpu_s"] == 0.0 and sq["started"] is None and sq["elapsed_s"] == 0.0
    assert "square" in report.write_report(tmp_path).read_text()
