"""Generate notebooks/05_grade.ipynb."""
from notebook_cells import write_notebook

write_notebook("notebooks/05_grade.ipynb", [
    ("md", """# 05 · Grade — phase 5B: predictions against the points actually scored

A prediction is graded when its game is final and has box scores; a player who did not play is
*voided* (not a miss) and counted apart; games not final are not eligible. A PASS or a push is
neither right nor wrong. Completeness = graded ÷ eligible, per season."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook: the run archive to record the stage in"""),
    ("code", """from nbcore import grade, grade_charts, notebook

params, archive = notebook.setup(params_file, run_dir, globals())
result = grade.run_grade(params, archive=archive)
result"""),
    ("md", "## Grading completeness per season (graded ÷ eligible)"),
    ("code", """result.completeness"""),
    ("md", "## Accuracy per system: MAE, bias, hit rate on OVER/UNDER calls with its 95 % interval"),
    ("code", """result.metrics(["system_id"]).round(3)"""),
    ("md", "## Per system, season and game type"),
    ("code", """result.metrics().round(3)"""),
    ("md", "## Charts"),
    ("code", """rows = grade.graded_rows(None, params)
if len(rows):
    grade_charts.error_distribution(rows)
    grade_charts.hit_rate_by_confidence(rows)
    grade_charts.mae_over_season(rows)"""),
])
