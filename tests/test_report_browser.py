"""The completion report of a real run, opened in headless Chromium as a stakeholder would:
on a desktop (1400 px) and on a phone (420 px).

The run is the small demo league backfilled end to end. A second report is rendered from the
same archive after its after-snapshot is edited to leave holes open, with stale and waived
dates (the snapshot contract of the convergence work), to see the bad news read as plainly
as the good.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from nbcore import report
from nbcore.runbook import NOTEBOOKS_DIR, export_html, run_runbook

from browser import Browser
from runbook_helpers import copy_demo
pytestmark = pytest.mark.browser  # headless chromium (make test only)

WIDTHS = (1400, 420)
RAW_VALUE = re.compile(r"\b(None|NaN|nan|NaT|False|True)\b|\d+ item\(s\)|\b1 failed attempts\b")
ABS_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|work|home|root|Users|var|opt|srv|mnt)/")

# Everything the test reads from the page, measured by the browser itself.
MEASURE = """(() => {
  const vw = document.documentElement.clientWidth;
  const outputs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
  const boxes = Array.from(document.querySelectorAll('.jp-OutputArea-output table, .jp-OutputArea-output img,'
                                                    + ' .rb-figure, .rb-headline'));
  return {
    viewport: vw,
    scrollWidth: document.documentElement.scrollWidth,
    text: document.body.innerText,
    outputText: outputs.map(o => o.textContent).join('\\n'),
    attributes: Array.from(document.querySelectorAll('[alt], [title], [aria-label]'))
        .map(e => [e.getAttribute('alt'), e.getAttribute('title'), e.getAttribute('aria-label')].join(' ')).join('\\n'),
    images: Array.from(document.images).map(i => ({alt: (i.getAttribute('alt') || '').trim(),
                                                   width: i.getBoundingClientRect().width})),
    overflowing: boxes.filter(b => b.getBoundingClientRect().right > vw + 1)
        .map(b => b.tagName + '.' + b.className + ' right=' + Math.round(b.getBoundingClientRect().right)),
    cutOff: boxes.filter(b => b.scrollWidth > b.clientWidth + 1 && b.tagName !== 'IMG')
        .map(b => b.tagName + '.' + b.className),
    headline: (document.querySelector('.rb-headline') || {}).innerText || '',
    headlineTop: (document.querySelector('.rb-headline') || {getBoundingClientRect: () => ({top: 1e9})})
        .getBoundingClientRect().top,
    heatCells: Array.from(document.querySelectorAll('table.rb-heat td'))
        .map(td => ({text: td.innerText, bg: getComputedStyle(td).backgroundColor,
                     font: parseFloat(getComputedStyle(td).fontSize)})),
  };
})()"""


@pytest.fixture(scope="module")
def demo_run(small_demo, tmp_path_factory):
    """A real run of every stage on the small demo league; its archive folder."""
    src, _ = small_demo
    params, params_file = copy_demo(src, tmp_path_factory.mktemp("report_run"))
    outcome = run_runbook(params, echo=None)
    assert outcome.status == "succeeded", outcome.describe()
    return params_file, outcome.run_dir


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def _measure(browser: Browser, html: Path, width: int, shot: Path) -> dict:
    browser.open(html, width)
    page = browser.evaluate(MEASURE)
    browser.screenshot(shot)
    return page


def _assert_reads_well(page: dict, run_dir: Path, width: int) -> None:
    where = f"at {width} px"
    assert page["scrollWidth"] <= page["viewport"], f"the page scrolls sideways {where}: {page['scrollWidth']} px wide"
    assert not page["overflowing"], f"cut off on the right {where}: {page['overflowing']}"
    assert not page["cutOff"], f"content scrolls inside a box {where}: {page['cutOff']}"
    assert page["images"] and all(i["alt"] for i in page["images"]), f"an image without alt text {where}"
    assert all(i["width"] <= page["viewport"] for i in page["images"])
    for text in (page["text"], page["outputText"], page["attributes"]):
        assert not ABS_PATH.search(text), f"absolute path {where}: {ABS_PATH.search(text).group(0)}…"
        assert str(run_dir) not in text and str(run_dir.parent.parent) not in text
        raw = RAW_VALUE.search(text)
        assert raw is None, f"raw Python value shown {where}: {text[max(0, raw.start() - 60):raw.end() + 20]!r}"
    assert not re.search(r"\d{4}-\d{2}-\n\d{2}", page["text"]), f"a date breaks across lines {where}"
    assert page["headlineTop"] < 400, "the headline is not at the top of the report"
    assert min(c["font"] for c in page["heatCells"]) >= 11, "heatmap labels too small to read"


def charts_bg(key: str) -> str:
    """A heat-map category's colour as the browser reports a background (``rgb(r, g, b)``)."""
    from nbcore import charts

    h = charts.BY_KEY[key].color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


def test_report_reads_on_desktop_and_phone(demo_run, browser, tmp_path):
    _, run_dir = demo_run
    run = report.load_run(run_dir)
    expected_headline = report.headline(run)
    assert expected_headline.startswith("All ") and "; 0 open" in expected_headline, expected_headline
    for width in WIDTHS:
        page = _measure(browser, run_dir / "report.html", width, tmp_path / f"report-{width}.png")
        assert page["headline"].strip() == expected_headline
        _assert_reads_well(page, run_dir, width)
        # a complete after-grid is the complete colour, and the waived one where the demo's prop gaps
        # are waived (shown, never hidden); the before-grid shows every hole in another colour
        cells = page["heatCells"]
        half = len(cells) // 2
        after = {c["bg"] for c in cells[half:]}
        assert after == {charts_bg("complete"), charts_bg("waived")}, after
        assert charts_bg("complete") not in {c["bg"] for c in cells[:half] if c["text"] != "100"}
        assert (tmp_path / f"report-{width}.png").stat().st_size > 20_000
    text = page["text"]
    # seasons and rates in people's units; every grading metric explained
    assert "2023-24" in text and "2024-25" in text
    assert re.search(r"\d{2}\.\d %", text) and not re.search(r"\b0\.\d{3}\b", text)
    for caption in report.METRIC_CAPTIONS.values():
        assert caption.split(":")[0] in text.replace("\n", " ")
    # ranges of dates closed are the validate notebook's ranges for the same holes
    before = json.loads((run_dir / "validate_before.json").read_text())
    closed = report.dates_closed(run)
    for t in before["tables"]:
        row = closed[(closed.table == t["table"]) & (closed.season == t["season_year"])]
        if t["missing_dates"]:
            assert row.ranges.iloc[0] == "; ".join(t["missing_ranges"]), t["table"]
    # nine derive tables that closed the same dates are one row, not nine
    grouped = report.dates_closed_grouped(run)
    derive = grouped[grouped.stage == "derive"]
    assert len(derive) == derive.season.nunique() and all(len(t) == 9 for t in derive.tables)
    # summary.md: the headline first, no machine's path
    summary = (run_dir / "summary.md").read_text()
    assert expected_headline in summary and not ABS_PATH.search(summary)


def _rerender(run_dir: Path, params_file: Path, out_dir: Path) -> Path:
    """Execute the report notebook on an archive and export it the way the runbook does."""
    import papermill as pm

    nb = out_dir / "07_report.ipynb"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "06_report.ipynb"), str(nb),
                        parameters={"params_file": str(params_file), "run_dir": str(run_dir)},
                        cwd=str(NOTEBOOKS_DIR), progress_bar=False, log_output=False)
    return export_html(nb, run_dir / "report.html", no_input=True, title=run_dir.name)


def test_open_stale_and_waived_dates_read_as_such(demo_run, browser, tmp_path):
    params_file, src_dir = demo_run
    run_dir = tmp_path / "runs" / src_dir.name
    shutil.copytree(src_dir, run_dir)
    after = json.loads((run_dir / "validate_after.json").read_text())
    entries = {(t["table"], t["season_year"]): t for t in after["tables"]}
    seasons = sorted({s for _, s in entries})
    # one hole left open (37 of 38 dates: must not look complete), one waived, two stale dates
    pgs = entries[("player_game_summary", seasons[0])]
    hole = "2024-04-20" if seasons[0] == 2023 else None
    assert hole is not None, seasons
    pgs["missing_dates"], pgs["present_dates"] = [hole], pgs["present_dates"] - 1
    pgs["missing_ranges"] = [hole]
    props = entries[("odds_api_player_points_props", seasons[0])]
    props["missing_dates"] = props["waived_dates"] = ["2024-04-04"]
    props["present_dates"] -= 1
    entries[("ml_feature_store_v2", seasons[0])]["stale_dates"] = ["2024-04-21", "2024-04-22"]
    # ... and the one state of each of those dates, which the report reads (nbcore.state)
    pgs["states"] = {hole: "missing"}
    props["states"] = {**props.get("states", {}), "2024-04-04": "waived"}
    entries[("ml_feature_store_v2", seasons[0])]["states"] = {"2024-04-21": "stale", "2024-04-22": "stale"}
    after["complete"] = False
    (run_dir / "validate_after.json").write_text(json.dumps(after))
    (run_dir / "summary.md").unlink()

    run = report.load_run(run_dir)
    line = report.headline(run)
    assert "of " in line and "1 open in 1 table" in line and "2 stale table-dates" in line and " waived" in line, line
    kinds = report.dates_open_grouped(run)
    assert set(kinds.kind) == {"missing", "stale"}  # waived is reviewed, never open
    assert "2024-04-04" in report.dates_waived(run).ranges.str.cat(sep="; ")
    assert kinds[kinds.kind == "stale"].ranges.iloc[0] == "2024-04-21 → 2024-04-22 (2 dates)"

    html = _rerender(run_dir, params_file, tmp_path)
    page = _measure(browser, html, 420, tmp_path / "open-420.png")
    _assert_reads_well(page, run_dir, 420)
    assert page["headline"].strip() == line
    colours = {}
    for c in page["heatCells"][len(page["heatCells"]) // 2:]:
        colours.setdefault(c["bg"], set()).add(c["text"])
    by_text = {t: bg for bg, texts in colours.items() for t in texts}
    complete = by_text["100"]
    assert len(colours) == 4, colours  # complete, almost complete, waived, stale: four colours
    assert all(bg != complete for t, bg in by_text.items() if t != "100"), colours
    assert "missing" in page["text"] and "waived" in page["text"] and "stale" in page["text"]


def test_archived_stage_pages_show_progress_as_one_line(demo_run):
    """Derive, predict, grade and load pages: no progress bar redraws on stderr, one summary line."""
    _, run_dir = demo_run
    for name, stage, unit in (("01_load", "load", "dates"), ("03_derive", "derive", "chunks"),
                              ("04_predict", "predict", "chunks"), ("05_grade", "grade", "chunks")):
        nb = json.loads((run_dir / f"{name}.ipynb").read_text())
        streams = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream"]
        stderr = "".join("".join(o["text"]) for o in streams if o["name"] == "stderr")
        assert "%|" not in stderr and "\r" not in stderr, f"{name}: progress bar on stderr: {stderr[:200]!r}"
        stdout = "".join("".join(o["text"]) for o in streams if o["name"] == "stdout")
        lines = [ln for ln in stdout.splitlines() if ln.startswith(f"{stage}: ")]
        assert len(lines) == 1 and re.fullmatch(rf"{stage}: (\d+)/\1 ({unit}|{unit[:-1]}) in \d+\.\d s", lines[0]), stdout
