"""The report's HTML pieces: what ``notebooks/06_report.ipynb`` displays, laid out for a reader.

``nbcore.report`` computes (frames, numbers, sentences); this module only renders them, so
the notebook stays a list of sections. Everything is plain HTML with one stylesheet
(``style()``), because the report is exported without code by nbconvert and opened in any
browser, phone included:

* tables carry ``data-label`` on every cell; under 700 px wide each row becomes a small card
  (label: value), so no column is pushed off screen and the page never scrolls sideways;
* the before/after completeness grid is an HTML table, not a picture: its labels stay real
  text at any width, and its colours come from ``nbcore.charts.CATEGORIES``;
* every picture is an ``<img>`` with alt text that says what it shows, scaled to the width;
* dates never break in the middle ("2023-01-\\n03").
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
from typing import Any, Iterable, Optional

import pandas as pd

from . import report
from .charts import BY_KEY, CATEGORIES, category

STYLE = """
.rb { font-size: 15px; line-height: 1.45; max-width: 1100px; overflow-wrap: break-word; }
.rb p { margin: .3em 0 .6em; }
.rb-headline { font-size: 1.3em; font-weight: 600; margin: .2em 0 .7em !important; padding: .55em .8em;
  border-left: 6px solid #1a7f37; background: #f6f8fa; border-radius: 4px; }
.rb-headline.rb-bad { border-left-color: #cf222e; }
.rb-headline.rb-warn { border-left-color: #bf8700; }
.rb-figures { display: flex; flex-wrap: wrap; gap: .5em; margin: .3em 0 .8em; }
.rb-figure { flex: 1 1 7.5em; border: 1px solid #d0d7de; border-radius: 6px; padding: .35em .6em; }
.rb-figure b { display: block; font-size: 1.45em; line-height: 1.2; }
.rb-figure span { color: #57606a; font-size: .9em; }
.rb-caption { color: #57606a; font-size: .92em; }
.rb-nowrap { white-space: nowrap; }
.rb-scroll { max-width: 100%; overflow-x: auto; }
.jp-RenderedHTMLCommon table.rb-kv, table.rb-kv { margin: .2em 0 .8em 0; table-layout: auto; font-size: 14px; border: none; }
.jp-RenderedHTMLCommon table.rb-kv th, table.rb-kv th { text-align: left; font-weight: normal; color: #57606a;
  padding: .1em 1.2em .1em 0; white-space: nowrap; vertical-align: top; border: none; background: none; }
.jp-RenderedHTMLCommon table.rb-kv td, table.rb-kv td { text-align: left; padding: .1em 0; vertical-align: top; border: none; }
.jp-RenderedHTMLCommon table.rb-kv tr, table.rb-kv tr { background: none; }
.rb dl.rb-captions dt { font-weight: 600; margin-top: .3em; }
.rb dl.rb-captions dd { margin: 0 0 0 1.2em; color: #424a53; }
.jp-RenderedHTMLCommon table.rb-table, table.rb-table { margin: .3em 0 1em 0; table-layout: auto; width: auto;
  max-width: 100%; font-size: 14px; border-collapse: collapse; }
.jp-RenderedHTMLCommon table.rb-table th, .jp-RenderedHTMLCommon table.rb-table td, table.rb-table th, table.rb-table td {
  text-align: left; vertical-align: top; padding: .3em .55em; border-bottom: 1px solid #d8dee4; white-space: normal; }
.jp-RenderedHTMLCommon table.rb-table th { background: #f6f8fa; }
.jp-RenderedHTMLCommon table.rb-table .rb-num, table.rb-table .rb-num { text-align: right; white-space: nowrap; }
.jp-RenderedHTMLCommon table.rb-table tbody tr:nth-child(odd), table.rb-table tbody tr:nth-child(odd) { background: #fbfcfd; }
.rb-bad-text { color: #cf222e; font-weight: 600; }
.rb-heatwrap { display: flex; flex-wrap: wrap; gap: .5em 2em; align-items: flex-start; }
.jp-RenderedHTMLCommon table.rb-heat, table.rb-heat { border-collapse: separate; border-spacing: 2px; margin: .2em 0 .6em 0;
  table-layout: auto; font-size: 13px; }
.jp-RenderedHTMLCommon table.rb-heat caption, table.rb-heat caption { text-align: left; font-weight: 600; padding: 0 0 .2em; }
.jp-RenderedHTMLCommon table.rb-heat th, table.rb-heat th { text-align: left; font-weight: normal; padding: .15em .4em .15em 0;
  border: none; background: none; max-width: 15em; }
.jp-RenderedHTMLCommon table.rb-heat thead th, table.rb-heat thead th { text-align: center; font-weight: 600; white-space: nowrap; }
.jp-RenderedHTMLCommon table.rb-heat td, table.rb-heat td { text-align: center; padding: .2em .35em; min-width: 3.1em;
  border: none; border-radius: 3px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.rb-legend { display: flex; flex-wrap: wrap; gap: .2em 1em; font-size: .9em; margin: .1em 0 .6em; }
.rb-swatch { display: inline-block; width: .95em; height: .95em; border-radius: 2px; vertical-align: -.12em; margin-right: .3em; }
.rb img.rb-img { max-width: 100%; height: auto; display: block; margin: .3em 0 .2em; }
.rb-warn-text { color: #9a6700; font-weight: 600; }
.rb-heat-note { display: block; white-space: normal; line-height: 1.15; }
.rb-hr { margin: .4em 0 1em; max-width: 760px; font-size: 13px; }
.rb-hr-title { font-weight: 600; margin: 0 0 .3em; }
.rb-hr-row { display: grid; grid-template-columns: minmax(5.5em, 9em) minmax(0, 1fr) 4.4em; column-gap: .6em;
  align-items: center; min-height: 1.6em; }
.rb-hr-system { font-weight: 600; margin-top: .5em; font-size: 13px; }
.rb-hr-label { color: #424a53; font-size: 13px; overflow-wrap: anywhere; }
.rb-hr-value { text-align: right; font-size: 13px; font-variant-numeric: tabular-nums; white-space: nowrap; }
.rb-hr-track { position: relative; height: 1.4em; background: #f6f8fa; border-radius: 3px; }
.rb-hr-ref { position: absolute; top: 0; bottom: 0; width: 0; border-left: 1px dashed #8c959f; }
.rb-hr-ref.rb-hr-even { border-left: 2px solid #bc4c00; }
.rb-hr-ci { position: absolute; top: calc(50% - 1px); height: 2px; background: currentColor; }
.rb-hr-dot { position: absolute; top: 50%; width: .8em; height: .8em; border-radius: 50%; transform: translate(-50%, -50%);
  background: currentColor; }
.rb-hr-all .rb-hr-dot { border-radius: 2px; }
.rb-hr-all .rb-hr-label { font-weight: 600; color: #1f2328; }
.rb-hr-axis .rb-hr-track { background: none; height: 1.3em; }
.rb-hr-tick { position: absolute; top: 0; transform: translateX(-50%); font-size: 12px; color: #57606a; white-space: nowrap; }
.rb-hr-legend { display: flex; flex-wrap: wrap; gap: .2em 1.2em; font-size: 12px; color: #424a53; margin-top: .35em; }
.rb-hr-key { display: inline-block; width: 1.4em; height: 0; vertical-align: middle; margin-right: .35em;
  border-top: 2px solid #bc4c00; }
.rb-hr-key.rb-hr-coin { border-top: 1px dashed #8c959f; }
@media (max-width: 700px) {
  .rb { font-size: 14px; }
  .jp-RenderedHTMLCommon table.rb-table, table.rb-table { width: 100%; }
  table.rb-table thead { display: none; }
  table.rb-table, table.rb-table tbody, table.rb-table tr { display: block; width: 100%; box-sizing: border-box; }
  .jp-RenderedHTMLCommon table.rb-table tr, table.rb-table tr { border: 1px solid #d0d7de; border-radius: 6px;
    margin: 0 0 .55em; padding: .15em .1em; background: #fff; }
  .jp-RenderedHTMLCommon table.rb-table td, table.rb-table td, .jp-RenderedHTMLCommon table.rb-table .rb-num,
  table.rb-table .rb-num { display: flex; justify-content: space-between; gap: .8em; border: none;
    text-align: right; white-space: normal; padding: .12em .45em; box-sizing: border-box; width: 100%; }
  table.rb-table td > .rb-v { min-width: 0; text-align: right; }
  table.rb-table td::before { content: attr(data-label); flex: 0 0 auto; max-width: 45%; text-align: left;
    color: #57606a; font-weight: 600; }
  table.rb-table td:empty { display: none; }
  .jp-RenderedHTMLCommon table.rb-heat, table.rb-heat { font-size: 12px; border-spacing: 1px; }
  .jp-RenderedHTMLCommon table.rb-heat td, table.rb-heat td { min-width: 2.4em; padding: .2em .15em; }
  .jp-RenderedHTMLCommon table.rb-heat th, table.rb-heat th { max-width: 8em; padding-right: .25em; }
  .rb-hr-row { grid-template-columns: minmax(4.6em, 6.5em) minmax(0, 1fr) 3.9em; column-gap: .45em; }
}
"""

# kept on one line: a date (with the arrow that follows it), "(14 dates)", a season "2023-24"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?: →)?|\(\d[\d,]* dates?\)|\b\d{4}-\d{2}\b")


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _text(v: Any) -> str:
    """A value as safe HTML text: dates and date ranges never broken, identifiers breakable at
    underscores, lists joined; None/NaN/bools never shown raw."""
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple, set)):
        return ", ".join(_text(x) for x in v) or "none"
    if hasattr(v, "isoformat") and not isinstance(v, str):
        return f'<span class="rb-nowrap">{_esc(v.isoformat()[:10])}</span>'
    s = str(v)
    if s in ("None", "nan", "NaN", "NaT", "True", "False"):
        return {"True": "yes", "False": "no"}.get(s, "—")
    out, last = [], 0
    for m in _DATE.finditer(s):
        out.append(_breakable(s[last:m.start()]))
        out.append(f'<span class="rb-nowrap">{_esc(m.group(0))}</span>')
        last = m.end()
    out.append(_breakable(s[last:]))
    return "".join(out)


def _breakable(s: str) -> str:
    return _esc(s).replace("_", "_<wbr>").replace("/", "/<wbr>")


def HTML(body: str):  # noqa: N802 - mirrors IPython.display.HTML
    from IPython.display import HTML as _HTML

    return _HTML(body)


def _wrap(body: str) -> str:
    return f'<div class="rb">{body}</div>'


def style():
    """The report's stylesheet, displayed once at the top of the notebook."""
    return HTML(f"<style>{STYLE}</style>")


def table_html(frame: pd.DataFrame, numeric: Iterable[str] = (), index: bool = False, caption: Optional[str] = None) -> str:
    """A responsive table: every cell carries its column name (``data-label``) for the card layout."""
    f = frame.reset_index() if index else frame
    numeric = set(numeric)
    head = "".join(f'<th class="{"rb-num" if c in numeric else ""}" scope="col">{_text(c)}</th>' for c in f.columns)
    body = []
    for row in f.itertuples(index=False):
        cells = []
        for c, v in zip(f.columns, row):
            cls = "rb-num" if c in numeric else ""
            shown = _text(v)
            if c in ("passed", "outcome", "status") and str(v).lower() in ("failed", "still failing", "blocked"):
                shown = f'<span class="rb-bad-text">{shown}</span>'
            elif c in ("passed", "outcome", "status") and str(v).lower() in ("warned", "interrupted"):
                shown = f'<span class="rb-warn-text">{shown}</span>'  # amber: worth a look, not a failure
            cells.append(f'<td class="{cls}" data-label="{_esc(c)}"><span class="rb-v">{shown}</span></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f'<p class="rb-caption">{caption}</p>' if caption else ""
    return f'<table class="rb-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{cap}'


def table(frame: Optional[pd.DataFrame], note: str, numeric: Iterable[str] = (), caption: Optional[str] = None):
    """``table_html`` in the report's wrapper, or the one-line note that says why it is empty."""
    if frame is None or frame.empty:
        return HTML(_wrap(f"<p><em>{_esc(note)}</em></p>"))
    return HTML(_wrap(table_html(frame, numeric, caption=caption)))


def note(text: str):
    """A sentence of the report (HTML allowed: only the report's own words go through here)."""
    return HTML(_wrap(f'<p class="rb-caption">{text}</p>'))


def image(fig, alt: str) -> str:
    """A matplotlib figure as an ``<img>`` with alt text, scaled to the page (and closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    w = int(fig.get_figwidth() * 110)
    return f'<img class="rb-img" alt="{_esc(alt)}" width="{w}" src="data:image/png;base64,{data}">'


# -- sections ----------------------------------------------------------------------------------------
def headline(run: report.RunData):
    """The verdict in one sentence, the key figures, and the run's details."""
    k = report.key_figures(run)
    cls = "rb-bad" if k["status"] in ("failed", "blocked", "interrupted") or k["failures_open"] or k["findings_open"] else \
        ("rb-warn" if k["open"] or k["stale"] or k["override"] or not k["has_after"] else "")
    figures = "".join(f'<div class="rb-figure"><b>{_esc(n)}</b><span>{_esc(what)}</span></div>'
                      for n, what in report.key_figures_list(run))
    details = kv_html(report.run_header(run)["value"].items())
    graded = report.graded_note(run)
    graded = f'<p class="rb-caption rb-graded-note">{_esc(graded)}</p>' if graded else ""
    return HTML(_wrap(f'<p class="rb-headline {cls}">{_esc(report.headline(run))}</p>'
                      f'<div class="rb-figures">{figures}</div>{graded}'
                      f'{details}'))


def kv_html(items) -> str:
    """Name / value pairs as a two-column table (it fits a phone as is)."""
    rows = "".join(f'<tr><th scope="row">{_esc(k)}</th><td>{_text(v)}</td></tr>' for k, v in items)
    return f'<table class="rb-kv"><tbody>{rows}</tbody></table>'


def legend_html(keys: Optional[Iterable[str]] = None) -> str:
    keys = set(keys) if keys is not None else {c.key for c in CATEGORIES}
    items = "".join(f'<span><span class="rb-swatch" style="background:{c.color}"></span>{_esc(c.label)}</span>'
                    for c in CATEGORIES if c.key in keys or c.key == "complete")
    return f'<div class="rb-legend" aria-label="colour legend">{items}</div>'


def _short_table(label: str) -> str:
    return label.split(" · ", 1)[-1]


def heat_grid_html(cells: pd.DataFrame, title: str) -> tuple[str, set[str]]:
    """One completeness grid (tables x seasons) as an HTML table; returns it and the categories used."""
    seasons = sorted(cells.season.unique())
    used = set()
    rows = []
    phase = None
    for label, g in cells.groupby("label", sort=False):
        p = g.phase.iloc[0]
        sep = ' style="border-top:2px solid #d0d7de"' if phase is not None and p != phase else ""
        phase = p
        tds = []
        for s in seasons:
            r = g[g.season == s]
            if r.empty:
                tds.append("<td>—</td>")
                continue
            r = r.iloc[0]
            cat = category(float(r.pct), int(r.missing), int(r.waived), int(r.stale))
            used.add(cat.key)
            notes = ([f"{int(r.stale)} stale"] if r.stale else []) + ([f"{int(r.waived)} waived"] if r.waived else [])
            extra = "".join(f" · {n}" for n in notes)
            tip = f"{r.table} {report.season_label(s)}: {report.pct_label(r.pct)} of {int(r.expected)} game dates present" \
                  f"{', ' + str(int(r.missing)) + ' missing' if r.missing else ''}{extra}"
            tds.append(f'<td style="background:{cat.color};color:{cat.text}" title="{_esc(tip)}">'
                       f'{_esc(report.pct_label(r.pct).replace(" %", ""))}'
                       + "".join(f'<span class="rb-heat-note">{_esc(n)}</span>' for n in notes) + "</td>")
        rows.append(f'<tr{sep}><th scope="row">{_esc(p)} · {_breakable(_short_table(label))}</th>{"".join(tds)}</tr>')
    head = "".join(f'<th scope="col">{_esc(report.season_label(s))}</th>' for s in seasons)
    return (f'<table class="rb-heat"><caption>{_esc(title)}</caption><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>', used)


def completeness(run: report.RunData):
    """Before and after grids side by side (stacked on a phone), a legend and a caption."""
    grids, used = [], set()
    for label, snap in (("Before the run", run.before), ("After the run", run.after)):
        cells = report.cell_status(snap)
        if cells.empty:
            continue
        grid, u = heat_grid_html(cells, f"{label}: % of expected game dates present")
        grids.append(f'<div class="rb-scroll">{grid}</div>')
        used |= u
    if not grids:
        return HTML(_wrap("<p><em>no validate snapshot in this run</em></p>"))
    caption = ("Each cell is one table in one season: the share of the schedule's completed game dates "
               "that have rows. Only a complete cell is green; a single missing date turns it yellow "
               "(99.9 % is never shown as 100). Phases: 2 raw, 3 analytics, 4 precompute, 5 predictions, 5B grading.")
    return HTML(_wrap(f'<div class="rb-heatwrap">{"".join(grids)}</div>{legend_html(used)}'
                      f'<p class="rb-caption">{caption}</p>'))


def phase_summary(run: report.RunData):
    ps = report.phase_summary(run)
    if ps.empty:
        return table(ps, "no validate snapshot in this run")
    f = ps.reset_index().rename(columns={"index": "phase"})
    f.columns = ["phase", *ps.columns]
    for c in ps.columns:
        f[c] = f[c].map(report.pct_label) if c.endswith("%") else f[c].map(report.count_label)
    f["phase"] = f.phase.map(lambda p: f"{p} {PHASE_NAMES.get(p, '')}".strip())
    return table(f, "", numeric=ps.columns,
                 caption="Table-dates present out of those the schedule expects, per phase; "
                         "missing counts one per table and game date.")


PHASE_NAMES = {"2": "raw", "3": "analytics", "4": "precompute", "5": "predictions", "5B": "grading"}


def _tables_cell(tables: list[str]) -> str:
    return (f"{len(tables)} tables: " if len(tables) > 1 else "") + ", ".join(tables)


def counts(run: report.RunData):
    """Present / expected game dates per table and season, before and after: the numbers behind
    the grid, folded away for the engineer who wants them."""
    m = report.before_after_matrix(run)
    if m.empty:
        return table(m, "no validate snapshot in this run")
    seasons = [c for c in dict.fromkeys(c[1] for c in m.columns)]
    f = pd.DataFrame({"table": [f"{p} · {t}" for p, t in m.index]})
    for s in seasons:
        for side in ("before", "after"):
            if (side, s) in m.columns:
                f[f"{s} {side}"] = list(m[(side, s)].fillna("—"))
    body = table_html(f, numeric=[c for c in f.columns if c != "table"])
    return HTML(_wrap(f"<details><summary>Present / expected game dates per table and season, before and after"
                      f"</summary>{body}</details>"))


def dates_closed(run: report.RunData):
    f = report.dates_closed_grouped(run)
    if f.empty:
        return table(f, "no date was closed by this run")
    shown = pd.DataFrame({"stage": f.stage, "season": f.season.map(report.season_label),
                          "dates closed": f.ranges, "tables": f.tables.map(_tables_cell)})
    return table(shown, "", caption="Game dates missing before the run and present after it. Tables that "
                                    "closed exactly the same dates share a row; ranges run over consecutive "
                                    "game dates (days without games do not split them).")


def closed_by_stage(run: report.RunData):
    f = report.closed_by_stage(run)
    if f.empty:
        return table(f, "no date was closed by this run")
    f = f.assign(**{c: f[c].map(report.count_label) for c in ("tables", "table-dates closed", "game dates")})
    return table(f, "", numeric=("tables", "table-dates closed", "game dates"))


def dates_open(run: report.RunData):
    """Dates still open (missing, waived, stale) and, after them, checks still failing."""
    f = report.dates_open_grouped(run)
    checks = findings_open(run)
    if f.empty:
        dates = table(f, ("nothing is open" if checks is None else "no date is open") +
                      ": every expected date is present in every table" if run.after
                      else "unknown: the run has no after snapshot (it stopped early)")
    else:
        shown = pd.DataFrame({"kind": f.kind, "season": f.season.map(report.season_label), "dates": f.ranges,
                              "why": f.reason, "tables": f.tables.map(_tables_cell)})
        dates = table(shown, "", caption="missing: no rows for a scheduled game date; waived: missing and accepted "
                                         "with a reason; stale: present, but built before one of its inputs changed "
                                         "(the next run rebuilds it).")
    return dates if checks is None else HTML(dates.data + checks.data)


def findings_open(run: report.RunData):
    """The after-snapshot's checks that failed and no waiver covers: open, like a missing date."""
    f = report.findings_open(run)
    if f.empty:
        return None
    return HTML(_wrap("<p><strong>Checks still failing after the run</strong> (rows that cannot be true: open "
                      "until fixed, or waived with a reason)</p>" + table_html(f, numeric=("count",))))


def dates_waived(run: report.RunData):
    f = report.dates_waived(run)
    if not f.empty:
        f = f.assign(season=f.season.map(report.season_label), dates=f.dates.map(report.count_label))
    return table(f, "nothing is waived", numeric=("dates",))


def failures(run: report.RunData):
    f = report.failures(run).drop(columns=["status", "resolved_by"])
    if f.empty:
        return table(f, "no load failure recorded")
    recovered = int((f.outcome == "recovered by a retry").sum())
    cap = f"{report.plural(len(f), 'failed attempt')}, {report.count_label(recovered)} recovered by a retry."
    return table(f, "", numeric=("attempt",), caption=cap)


def by_hand(run: report.RunData):
    """Stages run by hand between the previous run and this one (credited, not hidden)."""
    f = report.by_hand(run)
    return table(f.assign(reason=f.reason.fillna("")), "no stage was run by hand since the previous run",
                 numeric=("rows_written",))


def retries(run: report.RunData):
    f = report.retries(run)
    return table(f.assign(**{c: f[c].map(report.count_label) for c in ("retries", "recovered", "still failing")}),
                 "no stage retried anything", numeric=("retries", "recovered", "still failing"))


def gate(run: report.RunData):
    v = report.gate_verdict(run)
    if v.empty:
        return table(pd.DataFrame(), "the gate did not run")
    return HTML(_wrap(kv_html(v["value"].items())))


def gate_checks(run: report.RunData):
    """The gate's checks: folded under a one-line summary when every one passed; otherwise shown,
    a calibrated check that only warns in amber ("warned"), a failed one in red."""
    f = report.gate_checks(run)
    cap = ("Blocking checks stop the run when they fail; the others are reported only. A calibrated check "
           "(unusual for the source and season, but real games do it) never blocks: it is \"warned\", not failed.")
    if f.empty or "passed" not in f:
        return table(f, "the gate recorded no individual checks", numeric=("problems",), caption=cap)
    counts = _esc(report.gate_check_counts(f))
    body = table_html(f, numeric=("problems",), caption=cap)
    if (f.passed != "passed").any():
        return HTML(_wrap(f"<p><strong>{counts}</strong></p>{body}"))
    return HTML(_wrap(f"<details><summary>{counts}</summary>{body}</details>"))


SEASON_COLORS = ["#0969da", "#8250df", "#1a7f37", "#bf3989", "#9a6700", "#57606a"]


def hit_rate_chart(metrics: pd.DataFrame) -> str:
    """Hit rate per system and season, each system over all its seasons, and all systems together:
    a dot with its 95 % interval on a track, against 50 % (a coin flip, dashed) and 52.4 % (the
    break-even of a bet at −110 odds, solid). HTML, not a picture: its labels are text at the page's
    size on any screen (a scaled-down image of a chart is unreadable on a phone)."""
    from .grade_charts import hit_rate_alt

    f = report.with_totals(metrics)
    if f is None or f.empty or "hit_rate" not in f:
        return ""
    f = f[pd.to_numeric(f.hit_rate, errors="coerce").notna()]
    if f.empty:
        return ""
    num = lambda c: pd.to_numeric(f[c], errors="coerce") if c in f else pd.to_numeric(f.hit_rate)  # noqa: E731
    rate, low, high = num("hit_rate"), num("hit_rate_low").fillna(num("hit_rate")), num("hit_rate_high").fillna(num("hit_rate"))
    lo = math.floor(min(low.min(), 0.5) * 20) / 20
    hi = math.ceil(max(high.max(), report.BREAK_EVEN) * 20) / 20
    hi = max(hi, lo + 0.1)
    x = lambda v: f"{100 * (float(v) - lo) / (hi - lo):.2f}%"  # noqa: E731
    step = 0.05 if hi - lo <= 0.3 else 0.1
    ticks = [lo + i * step for i in range(int(round((hi - lo) / step)) + 1)]
    refs = (f'<span class="rb-hr-ref rb-hr-coin" style="left:{x(0.5)}"></span>'
            f'<span class="rb-hr-ref rb-hr-even" style="left:{x(report.BREAK_EVEN)}"></span>')
    seasons = [s for s in dict.fromkeys(f.season_year)] if "season_year" in f else []
    colour = {s: SEASON_COLORS[i % len(SEASON_COLORS)] for i, s in enumerate(s for s in seasons if s != report.ALL_SEASONS)}
    rows = []
    for system_id, g in f.groupby("system_id", sort=False):
        rows.append(f'<div class="rb-hr-system">{_text(system_id)}</div>')
        for i in g.index:
            season = f.season_year[i] if "season_year" in f else report.ALL_SEASONS
            pooled = season == report.ALL_SEASONS
            label = report.season_label(season)
            bounds = (f" (95 % interval {report.rate_label(low[i])} to {report.rate_label(high[i])})"
                      if high[i] > low[i] else "")
            calls = f", {report.count_label(f.calls[i])} calls" if "calls" in f else ""
            tip = f"{system_id} {label}: {report.rate_label(rate[i])}{bounds}{calls}"
            rows.append(
                f'<div class="rb-hr-row{" rb-hr-all" if pooled else ""}" title="{_esc(tip)}" '
                f'style="color:{"#1f2328" if pooled else colour.get(season, SEASON_COLORS[0])}">'
                f'<span class="rb-hr-label">{_text(label)}</span>'
                f'<span class="rb-hr-track">{refs}'
                f'<span class="rb-hr-ci" style="left:{x(low[i])};width:{100 * (high[i] - low[i]) / (hi - lo):.2f}%"></span>'
                f'<span class="rb-hr-dot" style="left:{x(rate[i])}"></span></span>'
                f'<span class="rb-hr-value">{_esc(report.rate_label(rate[i]))}</span></div>')
    axis = "".join(f'<span class="rb-hr-tick" style="left:{x(t)}">{round(100 * t)} %</span>' for t in ticks)
    legend = ('<div class="rb-hr-legend"><span><i class="rb-hr-key rb-hr-coin"></i>50 %: a coin flip</span>'
              '<span><i class="rb-hr-key"></i>52.4 %: break-even at −110 odds</span>'
              '<span>dot: hit rate; bar: 95 % interval; square: all seasons</span></div>')
    return (f'<div class="rb-hr" role="img" aria-label="{_esc(hit_rate_alt(metrics))}">'
            f'<p class="rb-hr-title">Hit rate of OVER/UNDER calls, per system and season</p>{"".join(rows)}'
            f'<div class="rb-hr-row rb-hr-axis"><span></span><span class="rb-hr-track">{axis}</span><span></span></div>'
            f'{legend}</div>')


def grading(run: report.RunData, params=None, save: bool = False):
    """The grading table (per system and season, each system over all seasons, all systems), what
    "graded" counts, the metrics in words, and the hit-rate chart with its break-even line."""
    metrics = report.grading_metrics(run, params, save=save)
    f = report.grading_table(metrics)
    if f.empty:
        return table(f, "no graded predictions to measure")
    captions = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in report.METRIC_CAPTIONS.items()
                       if k in f.columns)
    numeric = [c for c in f.columns if c not in ("system", "season")]
    note_ = report.graded_note(run)
    head = f'<p class="rb-caption">{_esc(note_)}</p>' if note_ else ""
    return HTML(_wrap(head + table_html(f, numeric) + hit_rate_chart(metrics)
                      + f'<dl class="rb-captions rb-caption">{captions}</dl>'))


def plan_vs_outcome(run: report.RunData):
    f = report.plan_vs_outcome(run)
    shown = pd.DataFrame({
        "stage": f.stage,
        "planned table-dates": f.planned.map(report.count_label),
        "of which missing": f.planned_missing.map(report.count_label),
        "of which stale": f.planned_stale.map(report.count_label),
        "rebuilt": f.rebuilt.map(lambda v: "not run" if v is None or pd.isna(v) else report.count_label(v)),
    })
    return table(shown, "no plan was saved for this run",
                 numeric=("planned table-dates", "of which missing", "of which stale", "rebuilt"),
                 caption="Stale: present, but computed before one of its inputs changed (a filled date in its "
                         "window, a better source, a retrained model); restated by the run. Predict and grade "
                         "count dates, derive counts table-dates.")


def rows_written(run: report.RunData):
    f = report.rows_written(run)
    return table(f.assign(rows=f.rows.map(report.count_label)), "no stage recorded rows written", numeric=("rows",),
                 caption="Rows each stage inserted or changed; a row that was already right is not rewritten. For "
                         "prediction_accuracy these are new or changed grades, voided ones included: not the "
                         "graded predictions figure, which counts every graded row in the run's seasons.")


def timeline(run: report.RunData):
    """The steps on a time axis and as a table; for a resumed run, its attempts with their times."""
    fig = report.timeline_chart(run)
    img = image(fig, report.timeline_alt(run)) if fig is not None else ""
    t = report.timeline_table(run)
    if t.empty:
        return table(t, "no stage ran")
    if (t.note == "").all():
        t = t.drop(columns="note")
    tries = report.attempts_table(run)
    extra = ""
    if len(tries) > 1:
        extra = (f'<p><strong>{_esc(report.plural(len(tries), "attempt"))}</strong>: run time '
                 f'{_esc(report.run_time_label(run))}. A resumed run keeps the steps an earlier attempt finished; '
                 f'the steps above show their latest attempt.</p>' + table_html(tries, numeric=("took",)))
    return HTML(_wrap(img + table_html(t, numeric=("started", "took")) + extra))


__all__ = ["style", "headline", "completeness", "phase_summary", "dates_closed", "closed_by_stage", "dates_open",
           "failures", "retries", "gate", "gate_checks", "grading", "hit_rate_chart", "rows_written", "timeline", "table",
           "note", "image", "BY_KEY"]
