"""Generate notebooks/06_report.ipynb (the completion report; exported to HTML without code)."""
from notebook_cells import write_notebook

write_notebook("notebooks/06_report.ipynb", [
    ("md", """# Backfill completion report

What the run found, what it filled and what is still open. Built from the run archive
(manifest, before/after validate snapshots, failures, stage records) by `nbcore.report`."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook; on its own, the notebook reports the latest run in archive_dir"""),
    ("code", """from nbcore import notebook, report

params, archive = notebook.setup(params_file, run_dir, globals())
report.display_options()
run_path = archive.path if archive else report.latest_run(params.archive_dir)
run = report.load_run(run_path or params.archive_dir / "no-run-yet")
report.or_note(report.run_header(run), f"no run archive in {params.archive_dir} yet: run `runbook run` first")"""),
    ("md", "## Completeness before and after\n\n% of expected table-dates present, per phase (expected = the schedule's completed games)."),
    ("code", "report.or_note(report.phase_summary(run), 'no validate snapshot in this run')"),
    ("md", "Present / expected game dates per table and season, before and after the run."),
    ("code", "report.or_note(report.before_after_matrix(run), 'no validate snapshot in this run')"),
    ("code", "report.heatmaps(run);"),
    ("md", "## Dates closed"),
    ("code", "report.or_note(report.closed_by_stage(run), 'no date was closed by this run')"),
    ("code", "report.or_note(report.dates_closed(run), 'no date was closed by this run')"),
    ("md", "## Dates still open, and why"),
    ("code", """report.or_note(report.dates_open(run), "nothing is open: every expected date is present in every table" if run.after
               else "unknown: the run has no after snapshot (it stopped early)")"""),
    ("md", "## Failures and retries"),
    ("code", "report.or_note(report.failures(run), 'no load failure left in failures.csv')"),
    ("code", "report.or_note(report.retries(run), 'no stage reported retries')"),
    ("md", "## Gate verdict"),
    ("code", "report.or_note(report.gate_verdict(run), 'the gate did not run')"),
    ("code", "report.or_note(report.gate_checks(run), 'the gate recorded no individual checks')"),
    ("md", "## Grading metrics per system and season"),
    ("code", "report.or_note(report.grading_metrics(run, params, save=archive is not None), 'no graded predictions to measure')"),
    ("md", "## Rows written"),
    ("code", "report.or_note(report.rows_written(run), 'no stage recorded rows written')"),
    ("md", "## Stage timeline"),
    ("code", "report.timeline_chart(run);"),
    ("code", "report.or_note(report.timeline(run), 'no stage ran')"),
    ("code", """if archive is not None:
    report.write_summary(archive.path)"""),
])
