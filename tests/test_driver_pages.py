"""The driver's own work between steps: the archive's HTML pages and the kernels it hands back.

The page exporter skips nbconvert's second parse of the page (BeautifulSoup) and makes its two
edits on the text; these tests hold it to nbconvert's output on a notebook with the outputs a
stage page has (a table, text, a figure with and without alt text).
"""
from __future__ import annotations

import base64
import re

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter

from nbcore.runbook import _html_exporter

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "0001e221bc330000000049454e44ae426082")).decode()


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Derive\nA figure: ![chart](data:image/png;base64," + PNG + ")"),
        nbformat.v4.new_code_cell("result.table()", execution_count=1, outputs=[
            nbformat.v4.new_output("execute_result", data={
                "text/html": "<table><tr><td>player_game_summary</td><td>1,024</td></tr></table>",
                "text/plain": "table"}, execution_count=1)]),
        nbformat.v4.new_code_cell("print('3 chunks')", execution_count=2, outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="3 chunks\n")]),
        nbformat.v4.new_code_cell("chart()", execution_count=3, outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]),
    ]
    return nb


def _shape(html: str) -> list[tuple]:
    """Every element with its classes, tabindex and alt, and the page's text: what a reader gets."""
    soup = BeautifulSoup(html, "html.parser")
    body = soup.body or soup
    return [(el.name, tuple(el.get("class") or ()), el.get("tabindex"), el.get("alt"))
            for el in body.find_all(True)] + [re.sub(r"\s+", " ", body.get_text()).strip()]


@pytest.mark.parametrize("no_input", [False, True])
def test_page_is_nbconverts_page_with_the_same_alt_text_and_focusable_cells(no_input):
    reference = HTMLExporter(template_name="lab")
    if no_input:
        reference.exclude_input = reference.exclude_input_prompt = reference.exclude_output_prompt = True
    want, _ = reference.from_notebook_node(_notebook())
    got, _ = _html_exporter(no_input).from_notebook_node(_notebook())
    assert _shape(got) == _shape(want)
    assert 'alt="No description has been provided for this image"' in got
    assert got.count('tabindex="0"') == want.count('tabindex="0"') > 0
