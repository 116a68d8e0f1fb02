"""Generate notebooks/00_validate.ipynb."""
from notebook_cells import write_notebook

write_notebook("notebooks/00_validate.ipynb", [
    ("md", """# 00 · Validate — how complete is every phase?

Expected dates come from the schedule's completed games. A date is present in a table only
when every game of that date has rows. Read-only; runs before and after the backfill."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook: the run archive to save the snapshot in
snapshot = "before"  # "before" or "after\""""),
    ("code", """from nbcore import notebook, validate

params, archive = notebook.setup(params_file, run_dir, globals())
result = validate.run_validate(params, snapshot=snapshot, archive=archive)
print(f"validated {len(result.tables)} table-seasons in {result.seconds:.2f} s; complete: {result.complete}")"""),
    ("md", "## Completeness matrix (% of expected game dates present)"),
    ("code", "result.heatmap(title=f\"Completeness ({snapshot})\");"),
    ("code", "result.matrix()"),
    ("md", "## Missing dates, grouped into ranges of consecutive game dates"),
    ("code", "result.missing_table()"),
    ("md", "## Grading completeness: graded ÷ eligible predictions (final games, player played)"),
    ("code", "result.grading"),
    ("md", "## Sanity checks"),
    ("code", "result.checks"),
])
