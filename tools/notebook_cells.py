"""Write a stage notebook from a list of cells (clean: no outputs, no execution counts).

Usage from a script: ``write_notebook(path, [("md", "..."), ("params", "..."), ("code", "...")])``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def write_notebook(path: str | Path, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        elif kind == "params":
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    nbformat.validate(nb)
    Path(path).write_text(nbformat.writes(nb) + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("import write_notebook from this module")
