"""Generate notebooks/02_gate.ipynb."""
from notebook_cells import write_notebook

write_notebook("notebooks/02_gate.ipynb", [
    ("md", """# 02 · Gate — is phase 2 complete?

Every completed game of the run's range must have rows in each required source, the raw tables
must be sane, and the latest load of each date must have succeeded. Waived dates pass and are
listed. When the gate fails inside a run, the last cell stops the run (`blocked`) after showing
what is missing and the command that retries it; an override needs a written reason."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook: the run archive (stages/gate.json)"""),
    ("code", """from nbcore import gate, notebook

params, archive = notebook.setup(params_file, run_dir, globals())
result = gate.run_gate(params, archive=archive, params_file=params_file, raise_on_block=False)
result"""),
    ("md", "## Everything the gate found (blocking first), and the waived dates"),
    ("code", """result.missing_frame()"""),
    ("code", """result.waived_frame()"""),
    ("md", "## Stop the run if the gate is blocked (inside a run only)"),
    ("code", """gate.enforce(result, archive)
print(result.reason())"""),
])
