"""Walk-forward models are reused across runs while their training window's rows are unchanged
(``nbcore.predict.model_cache``), predict exactly what a refit would, and are fitted again as soon
as one row inside their window changes."""
from __future__ import annotations

import pandas as pd
import pytest

from nbcore.predict import model_cache, regression, run_predict
from nbcore.predict import stage as predict_stage
from predict_fixtures import open_fresh, synthetic_league, tiny_params

PRED = "nba_predictions.player_prop_predictions"


@pytest.fixture
def league(tmp_path, monkeypatch):
    monkeypatch.setenv(model_cache.ENV, str(tmp_path / "cache"))
    params = tiny_params(tmp_path, chunk_days=10, refit_days=7, train_window_days=60)
    wh = open_fresh(params)
    dates = synthetic_league(wh)
    yield params, wh, dates
    wh.close()


def _preds(wh) -> pd.DataFrame:
    frame = wh.query(f"SELECT * EXCEPT (run_id, created_at) FROM {PRED}")
    return frame.sort_values(["game_id", "player_lookup", "system_id"]).reset_index(drop=True)


def _count_fits(monkeypatch) -> list:
    fits: list = []
    real = regression.least_absolute_deviations

    def counted(X, y, *a, **k):
        fits.append(len(y))
        return real(X, y, *a, **k)

    monkeypatch.setattr(regression, "least_absolute_deviations", counted)
    return fits


def test_an_unchanged_window_reuses_its_model_and_predicts_the_same(league, tmp_path, monkeypatch):
    params, wh, dates = league
    first = run_predict(params, wh=wh, progress=False)
    fitted = sum(m["fitted"] for m in first.models)
    assert fitted > 3 and len(list((tmp_path / "cache").glob("*.json"))) == fitted
    before = _preds(wh)
    wh.execute(f"DELETE FROM {PRED}")
    fits = _count_fits(monkeypatch)
    again = run_predict(params, wh=wh, progress=False)
    assert fits == []  # every model came from the cache
    assert again.models == first.models
    pd.testing.assert_frame_equal(before, _preds(wh))  # bit for bit what the fitted models predicted


def test_a_changed_row_inside_a_window_refits_that_model_only(league, monkeypatch):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    changed = dates[40]
    wh.execute("UPDATE nba_analytics.player_game_summary SET points = points + 5 WHERE game_date = @d", {"d": changed})
    fits = _count_fits(monkeypatch)
    models = predict_stage.WalkForwardModels(wh, params.train_window_days)
    refits = sorted({regression.refit_date(d, params.refit_days) for d in dates})
    models.load(refits)
    models.ensure(refits)
    needing = [r for r in refits if regression.training_window(r, params.train_window_days)[0] <= changed
               < r and models[r].fitted]
    assert needing and len(fits) == len(needing)  # the windows holding the changed date, and no other
    assert models.reused == sum(m.fitted for m in models.models.values()) - len(needing)


def test_the_cache_can_be_turned_off(league, tmp_path, monkeypatch):
    params, wh, dates = league
    monkeypatch.setenv(model_cache.ENV, "off")
    run_predict(params, wh=wh, progress=False)
    assert not (tmp_path / "cache").exists()
    fits = _count_fits(monkeypatch)
    run_predict(params.model_copy(update={"repredict": True}), wh=wh, progress=False)
    assert fits  # fitted again: nothing was kept
