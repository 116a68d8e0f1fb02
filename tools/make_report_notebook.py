"""Generate notebooks/06_report.ipynb (the completion report; exported to HTML without code)."""
from notebook_cells import write_notebook

write_notebook("notebooks/06_report.ipynb", [
    ("md", """# Backfill completion report

What the run found, what it filled and what is still open, read from the run's archive."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook; on its own, the notebook reports the latest run in archive_dir"""),
    ("code", """from nbcore import notebook, report
from nbcore import report_html as page

params, archive = notebook.setup(params_file, run_dir, globals())
run_path = archive.path if archive else report.latest_run(params.archive_dir)
run = report.load_run(run_path or params.archive_dir / "no-run-yet")
display(page.style())
page.headline(run) if run.manifest else \\
    page.note(f"no run archive in {report.display_path(params.archive_dir)} yet: run `runbook run` first")"""),
    ("md", "## Completeness before and after"),
    ("code", "page.completeness(run)"),
    ("code", "page.phase_summary(run)"),
    ("code", "page.counts(run)"),
    ("md", "## Dates closed"),
    ("code", "page.closed_by_stage(run)"),
    ("code", "page.dates_closed(run)"),
    ("md", "## Dates still open, and why"),
    ("code", "page.dates_open(run)"),
    ("md", "## Failures and retries"),
    ("code", "page.failures(run)"),
    ("code", "page.retries(run)"),
    ("md", "## Gate verdict"),
    ("code", "page.gate(run)"),
    ("code", "page.gate_checks(run)"),
    ("md", "## Grading: how close the predictions came"),
    ("code", "page.grading(run, params, save=archive is not None)"),
    ("md", "## Rows written"),
    ("code", "page.rows_written(run)"),
    ("md", "## Stage timeline"),
    ("code", "page.timeline(run)"),
    ("code", """if archive is not None:
    report.write_summary(archive.path)"""),
])
