"""Generate notebooks/04_predict.ipynb."""
from notebook_cells import write_notebook

write_notebook("notebooks/04_predict.ipynb", [
    ("md", """# 04 · Predict — phase 5: points predictions from several systems

Every player-game with a feature row (`nba_precompute.ml_feature_store_v2`) and no prediction
gets one from each system (`repredict: true` redoes every player-game in range):
`moving_average` (the baseline), `matchup_adjusted` (composite factors), `regression` (a median
regression trained walk-forward on games strictly before the date, refitted every `refit_days`),
and `ensemble`. A call is OVER / UNDER when |prediction − line| ≥ `edge_threshold`, else PASS.
Chunks of `chunk_days`, one transaction each; the stage stops at the first failing chunk."""),
    ("params", """params_file = None  # None: $RUNBOOK_PARAMS or params/demo.yaml
run_dir = None      # set by the runbook: the run archive to record the stage in"""),
    ("code", """from nbcore import notebook, predict

params, archive = notebook.setup(params_file, run_dir, globals())
result = predict.run_predict(params, archive=archive)
result"""),
    ("md", "## What was predicted, per system (this run's dates; the whole scope when there was nothing to do)"),
    ("code", """mix = predict.prediction_mix(params, dates=result.dates or None)
if len(mix):
    mix.set_index("system_id")[["over_calls", "under_calls", "passes", "no_line"]].plot.barh(
        stacked=True, figsize=(8, 3), title="recommendations per system")
mix"""),
    ("md", "## Walk-forward models fitted in this run (refit date, training window, size, coefficients)"),
    ("code", """result.model_table()"""),
])
