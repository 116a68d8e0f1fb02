"""Generate notebooks/03_derive.ipynb."""
from notebook_cells import write_notebook

write_notebook("notebooks/03_derive.ipynb", [
    ("md", """# 03 · Derive — phase 3 (analytics) then phase 4 (precompute)

Every date a phase 3 or 4 table is missing (per the schedule) is derived in chunks of up to
`chunk_days` consecutive game dates, processors in the platform's order, one transaction per
chunk. Defensive checks (upstream succeeded, no gap in the lookback window) run unless
`backfill_mode` is on or `strict_mode` is off; the run stops at the first failing chunk."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook: the run archive to record the stage in"""),
    ("code", """from nbcore import derive, notebook

params, archive = notebook.setup(params_file, run_dir, globals())
result = derive.run_derive(params, archive=archive, skip_dates=derive.waived_skip_dates(params),
                           params_file=params_file)
result"""),
    ("md", "## Per-processor timings"),
    ("code", """timings = result.timing_table()
ax = timings.set_index("processor")["seconds"].plot.barh(figsize=(7, 3.5), title="seconds per processor")
ax.invert_yaxis()
timings"""),
    ("md", "## Chunks"),
    ("code", """result.chunk_table()"""),
])
