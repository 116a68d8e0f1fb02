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
from nbcore.runbook import NOTEBOOKS_DIR, export_html, resume_run, run_runbook

from browser import Browser
from runbook_helpers import copy_demo, write_stage_notebook
from test_report_docs import notebook_sections

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
    figures: Array.from(document.querySelectorAll('.rb-figure'))
        .map(f => [f.querySelector('b').innerText.trim(), f.querySelector('span').innerText.trim()]),
    header: Object.fromEntries(Array.from(document.querySelectorAll('table.rb-kv tr'))
        .map(tr => [tr.querySelector('th').innerText.trim(), tr.querySelector('td').innerText.trim()])),
    sections: Array.from(document.querySelectorAll('h2'))
        .map(h => ({text: h.textContent.replace('\u00b6', '').trim(), top: h.getBoundingClientRect().top + window.scrollY})),
    hitRateText: Array.from(document.querySelectorAll('.rb-hr .rb-hr-title, .rb-hr .rb-hr-system, .rb-hr .rb-hr-label,'
                                                      + ' .rb-hr .rb-hr-value, .rb-hr .rb-hr-tick, .rb-hr-legend span'))
        .filter(e => e.innerText.trim())
        .map(e => ({text: e.innerText.trim(), font: parseFloat(getComputedStyle(e).fontSize)})),
    breakEven: Array.from(document.querySelectorAll('.rb-hr .rb-hr-even')).length,
    warned: Array.from(document.querySelectorAll('.rb-warn-text')).map(e => [e.innerText.trim(), getComputedStyle(e).color]),
  };
})()"""


@pytest.fixture(scope="module")
def demo_run(small_demo, tmp_path_factory):
    """A real run of every stage on the small demo league, in two attempts: the first stops at
    grade (its notebook fails), the resume runs grade, validate_after and the report. Its params
    file, archive folder and the first attempt's duration as the driver recorded it."""
    src, _ = small_demo
    root = tmp_path_factory.mktemp("report_run")
    params, params_file = copy_demo(src, root)
    broken = root / "notebooks"
    shutil.copytree(NOTEBOOKS_DIR, broken)
    write_stage_notebook(broken / "05_grade.ipynb", "raise RuntimeError('the grading service is down')")
    first = run_runbook(params, notebooks_dir=broken, echo=None)
    assert (first.status, first.stopped_at) == ("failed", "grade"), first.describe()
    outcome = resume_run(first.run_id, archive_dir=params.archive_dir, echo=None)
    assert outcome.status == "succeeded" and outcome.run_dir == first.run_dir, outcome.describe()
    return params_file, outcome.run_dir, float(first.manifest["seconds"])


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


AMBER = "rgb(154, 103, 0)"  # .rb-warn-text
OPEN_DATES_TOP = {1400: 1200, 420: 2600}  # px from the top of the page: near the top, not 5,300 px down


def _seconds(label: str) -> float:
    """"71.3 s" or "4 min 33 s" (``report.seconds_label``) in seconds."""
    m = re.fullmatch(r"(?:(\d+) min (\d+) s|(\d+(?:\.\d)?) s)", label)
    assert m, label
    return int(m[1]) * 60 + int(m[2]) if m[1] else float(m[3])


def charts_bg(key: str) -> str:
    """A heat-map category's colour as the browser reports a background (``rgb(r, g, b)``)."""
    from nbcore import charts

    h = charts.BY_KEY[key].color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


def test_report_reads_on_desktop_and_phone(demo_run, browser, tmp_path):
    _, run_dir, first_attempt_s = demo_run
    run = report.load_run(run_dir)
    expected_headline = report.headline(run)
    assert expected_headline.startswith("All ") and "; 0 open" in expected_headline, expected_headline
    checks = report.gate_checks(run)
    warned = set(checks.passed) & {"warned"}
    assert warned == {"warned"}, checks  # the demo's short-handed games: a calibrated check warns
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
        # the run time, summed over both attempts, and when the run ended: on every run
        card = {what: n for n, what in page["figures"]}
        shown = _seconds(card["run time, 2 attempts summed"])
        assert page["header"]["ended"] and "summed over 2 attempts" in page["header"]["run time"], page["header"]
        # the one graded figure, said in words next to it
        assert "graded predictions (player-game × system)" in card and "Graded predictions (" in page["text"]
        # a calibrated check that only warns is a warning (amber, "warned"), never FAILED
        assert "FAILED" not in page["text"]
        assert warned == {w for w, _ in page["warned"] if w == "warned"} and all(c == AMBER for w, c in page["warned"]
                                                                             if w == "warned")
        # the hit-rate chart: real text, at least 11 px on a phone, with the break-even line
        assert page["hitRateText"] and min(e["font"] for e in page["hitRateText"]) >= 11, page["hitRateText"]
        assert page["breakEven"] > 0 and "52.4 %: break-even at −110 odds" in page["text"]
        # the sections the notebook lists, the dates still open first, above the grid
        tops = {s["text"]: s["top"] for s in page["sections"]}
        assert [s["text"] for s in page["sections"]] == notebook_sections()
        assert tops["Dates still open, and why"] < min(tops["Completeness before and after"], OPEN_DATES_TOP[width]), tops
    # the attempts: the first stopped at grade, the resume finished; the card sums both, so it is more
    # than the first attempt's time plus the grade step that ran in the second
    tries = report.attempts(run)
    assert list(tries.outcome) == ["failed", "succeeded"] and list(tries["from"]) == ["validate_before", "grade"]
    assert abs(tries.seconds.iloc[0] - first_attempt_s) < 2.0, (tries, first_attempt_s)
    assert shown > first_attempt_s + run.step("grade")["seconds"] + run.step("validate_after")["seconds"] - 1.0
    assert shown <= report.run_time(run)[0] + 1.0, (shown, report.run_time(run))
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
    assert "- **ended**: " in summary and "summed over 2 attempts" in summary and "## Attempts" in summary


def _rerender(run_dir: Path, params_file: Path, out_dir: Path) -> Path:
    """Execute the report notebook on an archive and export it the way the runbook does."""
    import papermill as pm

    nb = out_dir / "07_report.ipynb"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "06_report.ipynb"), str(nb),
                        parameters={"params_file": str(params_file), "run_dir": str(run_dir)},
                        cwd=str(NOTEBOOKS_DIR), progress_bar=False, log_output=False)
    return export_html(nb, run_dir / "report.html", no_input=True, title=run_dir.name)


def test_open_stale_and_waived_dates_read_as_such(demo_run, browser, tmp_path):
    params_file, src_dir, _ = demo_run
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
    _, run_dir, _ = demo_run
    for name, stage, unit in (("01_load", "load", "dates"), ("03_derive", "derive", "chunks"),
                              ("04_predict", "predict", "chunks"), ("05_grade", "grade", "chunks")):
        nb = json.loads((run_dir / f"{name}.ipynb").read_text())
        streams = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream"]
        stderr = "".join("".join(o["text"]) for o in streams if o["name"] == "stderr")
        assert "%|" not in stderr and "\r" not in stderr, f"{name}: progress bar on stderr: {stderr[:200]!r}"
        stdout = "".join("".join(o["text"]) for o in streams if o["name"] == "stdout")
        lines = [ln for ln in stdout.splitlines() if ln.startswith(f"{stage}: ")]
        assert len(lines) == 1 and re.fullmatch(rf"{stage}: (\d+)/\1 ({unit}|{unit[:-1]}) in \d+\.\d s", lines[0]), stdout


def test_five_seasons_of_stale_cells_and_the_hit_rate_chart_fit_a_phone(browser, tmp_path):
    """The full demo's shape, built by hand: twenty tables over five seasons, cells that say
    "167 stale", and four systems graded over five seasons. At 420 px no season column is cut off
    and every label of the grid and of the hit-rate chart is at least 11 px."""
    import pandas as pd

    from nbcore import report_html, schema

    seasons = [2021, 2022, 2023, 2024, 2025]
    tables = []
    for t in schema.all_tables():
        for s in seasons:
            stale = {f"{s + 1}-0{1 + i // 28}-{1 + i % 28:02d}": "stale" for i in range(167)} if t.phase != "2" else {}
            missing = {f"{s}-12-25": "missing"} if t.name == "player_game_summary" and s == 2025 else {}
            tables.append({"phase": t.phase, "table": t.name, "season_year": s, "expected_dates": 170,
                           "present_dates": 170 - len(missing), "rows": 1000, "missing_dates": list(missing),
                           "missing_ranges": list(missing), "states": {**stale, **missing}})
    run_dir = tmp_path / "runs" / "20260101-000000-full"
    run_dir.mkdir(parents=True)
    (run_dir / "validate_before.json").write_text(json.dumps({"tables": tables}))
    (run_dir / "validate_after.json").write_text(json.dumps({"tables": tables}))
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": run_dir.name, "status": "succeeded"}))
    run = report.load_run(run_dir)
    metrics = pd.DataFrame([{"system_id": sys_id, "season_year": s, "graded": 25000, "voided": 900, "mae": 4.8,
                             "bias": 0.1, "within_3_pct": 41.0, "calls": 9000, "correct": 4700 + 40 * k, "wrong": 4200,
                             "hit_rate": (4700 + 40 * k) / (8900 + 40 * k), "hit_rate_low": 0.52, "hit_rate_high": 0.55,
                             "pushes": 100, "passes": 15000}
                            for k, sys_id in enumerate(["baseline", "ensemble", "matchup", "regression"]) for s in seasons])
    page_html = tmp_path / "grid.html"
    page_html.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body>"
                         + report_html.style().data + report_html.completeness(run).data
                         + report_html.table_html(report.grading_table(metrics))
                         + report_html._wrap(report_html.hit_rate_chart(metrics)) + "</body></html>")
    browser.open(page_html, 420)
    page = browser.evaluate(MEASURE)
    assert page["scrollWidth"] <= page["viewport"], page["scrollWidth"]
    grids = browser.evaluate("Array.from(document.querySelectorAll('table.rb-heat'))"
                             ".map(t => [t.getBoundingClientRect().right, t.querySelectorAll('thead th').length])")
    assert len(grids) == 2 and all(right <= page["viewport"] and n == 1 + len(seasons) for right, n in grids), grids
    assert any("167 stale" in c["text"] for c in page["heatCells"])
    assert min(c["font"] for c in page["heatCells"]) >= 11
    assert min(e["font"] for e in page["hitRateText"]) >= 11 and page["breakEven"] == 4 * 6 + 1
    assert not page["overflowing"], page["overflowing"]
