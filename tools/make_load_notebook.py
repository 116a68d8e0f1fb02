"""Generate notebooks/01_load.ipynb."""
from notebook_cells import write_notebook

write_notebook("notebooks/01_load.ipynb", [
    ("md", """# 01 · Load — phase 1 files → phase 2 raw tables

The schedule first, then every date validate reports missing (or, with `reload`, every date in
range; with `retry_failed`, only the dates a previous run's failure log left open). Each file is
checked (encoding, JSON, JSON Schema, the rules a person would check) and its date replaced in
one transaction. A failed date is retried once, recorded, and the stage moves on; the gate decides."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook: the run archive (failures.csv, stages/load.json)"""),
    ("code", """from nbcore import notebook
from nbcore.load import run_load

params, archive = notebook.setup(params_file, run_dir, globals())
result = run_load(params, archive=archive)
result"""),
    ("md", "## Rows written per source"),
    ("code", """import matplotlib.pyplot as plt

table = result.summary_table()
per_source = table[table.source != "total"].set_index("source")
ax = per_source["rows"].plot.barh(figsize=(7, 2.5), title=f"rows loaded ({result.mode})")
ax.set_xlabel("rows");"""),
    ("md", "## Every failed attempt (the archive's `failures.csv`)"),
    ("code", """result.failures_frame()"""),
])
