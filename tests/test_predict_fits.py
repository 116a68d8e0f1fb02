"""The walk-forward fits of a chunk run side by side with one BLAS thread each
(``nbcore.predict.blas``, ``stage._fit_all``): the models must be exactly the ones fitted one
after the other with the process's default BLAS threads, since predictions are compared with
what was written before and with a rebuild, value for value."""
from __future__ import annotations

import threading
from datetime import date, timedelta

import numpy as np

from nbcore.predict import blas, regression
from nbcore.predict import stage as predict_stage


def _window(seed: int, n: int = 4000):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(regression.COLUMNS)))
    X[:, 0] = 1.0
    y = np.maximum(X @ rng.normal(size=X.shape[1]) + 12 + rng.standard_t(3, size=n) * 4, 0)
    days = (np.datetime64("2022-01-01") + rng.integers(0, 300, size=n)).astype("datetime64[ns]")
    return X, y, days


def test_fits_side_by_side_equal_fits_one_after_the_other():
    refits = [date(2022, 11, 1) + timedelta(days=14 * k) for k in range(5)]
    jobs = [(r, f"key{k}", *_window(k)) for k, r in enumerate(refits)]
    together = predict_stage._fit_all(jobs)
    for (refit, _, X, y, days), model in zip(jobs, together):
        alone = regression.fit_design(X, y, days, refit)  # this thread, default BLAS threads
        assert model.refit_date == refit and model.n_train == alone.n_train
        assert np.array_equal(model.coef, alone.coef) and np.array_equal(model.sigma_coef, alone.sigma_coef)
        assert model.mae_train == alone.mae_train


def test_one_thread_changes_nothing_outside_its_block_nor_in_other_threads():
    X, y, days = _window(7)
    before = regression.fit_design(X, y, days, date(2022, 12, 1)).coef
    seen = []

    def other():
        seen.append(regression.fit_design(X, y, days, date(2022, 12, 1)).coef)

    with blas.one_thread():
        inside = regression.fit_design(X, y, days, date(2022, 12, 1)).coef
        t = threading.Thread(target=other)
        t.start()
        t.join()
    after = regression.fit_design(X, y, days, date(2022, 12, 1)).coef
    assert all(np.array_equal(before, c) for c in (inside, seen[0], after))


def test_no_fits_and_a_single_fit_need_no_pool():
    assert predict_stage._fit_all([]) == []
    X, y, days = _window(3)
    (model,) = predict_stage._fit_all([(date(2022, 12, 1), "k", X, y, days)])
    assert model.fitted and model.window_end < date(2022, 12, 1)
