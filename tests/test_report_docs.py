"""The README's report screenshots (``docs/report.png``, ``docs/report-420.png``) show what the
report renders today.

``make screenshots`` builds a clean demo, runs the runbook, takes both pictures in headless
Chromium and writes ``docs/report.json`` beside them: the headline the pictures show, the key
figures that headline was made from, the figure labels and the section headings. Here the current
renderer is asked to say the same from the same figures, and the current notebook to have the
same sections in the same order: a change to the report's words or layout that is not followed by
``make screenshots`` fails here, without building the full demo again.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from nbcore import report

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOK = ROOT / "notebooks" / "06_report.ipynb"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, read from its IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


def notebook_sections() -> list[str]:
    """The report notebook's "## " headings, in order: the sections a rendered report shows."""
    nb = json.loads(NOTEBOOK.read_text())
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            out += [line[3:].strip() for line in "".join(cell["source"]).splitlines() if line.startswith("## ")]
    return out


def test_screenshots_are_the_widths_the_readme_says():
    meta = json.loads((DOCS / "report.json").read_text())
    for name, width in meta["images"].items():
        w, h = png_size(DOCS / name)
        assert w == width, f"{name} is {w} px wide, not {width}: run `make screenshots`"
        assert h > 2 * 900, f"{name} is {h} px high: not the whole page"
    assert set(meta["images"].values()) == {1400, 420}


def test_screenshots_show_what_the_current_renderer_says():
    """Same figures -> same headline, same key-figure labels, same sections in the same order."""
    meta = json.loads((DOCS / "report.json").read_text())
    k = meta["key_figures"]
    assert report.headline_text(k, meta["findings_open"]) == meta["headline"], \
        "the report's headline wording changed since docs/report.png was made: run `make screenshots`"
    assert [what for _, what in report.key_figures_list(None, k)] == meta["figure_labels"], \
        "the report's key figures changed since docs/report.png was made: run `make screenshots`"
    assert meta["sections"] == notebook_sections(), \
        "the report's sections changed since docs/report.png was made: run `make screenshots`"
    # what the pictures must show (issue 22): the run time, one defined graded figure, the open dates up top
    assert "run time" in meta["figure_labels"][-1] and k["seconds"]
    assert any(label.startswith("graded predictions") for label in meta["figure_labels"])
    assert meta["sections"][0] == "Dates still open, and why"
