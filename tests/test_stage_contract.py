"""The stage contract: one typed record shape, one chunk runner, and stages run by hand that
take the lock and leave an archive.

- every chunked stage's record validates against its type and lists its chunks the same way;
- a failing chunk: the stage raises, its record says ``failed`` with the reason, the chunk
  rolled back, one failed history row per date, every later chunk listed ``not_run``;
- a stage run by hand (no archive, not in a runbook kernel) takes the single-writer lock, is
  refused while a run holds it (nothing written, no archive), and otherwise leaves a
  ``kind: interactive`` archive whose run id is the one in ``processor_run_history``;
- a record that breaks the contract is a failed stage naming the field, not a guess.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nbcore import derive, grade, predict
from nbcore.derive import run as derive_run
from nbcore.lock import RunLockedError, WarehouseLock
from nbcore.params import RunParams
from nbcore.progress import RUN_ENV
from nbcore.load import run_load
from nbcore.record import DeriveRecord, GradeRecord, LoadRecord, PredictRecord, parse_record, read_record
from nbcore.warehouse import open_warehouse

PGS = "nba_analytics.player_game_summary"


@pytest.fixture(autouse=True)
def by_hand(monkeypatch):
    """These tests are a person at a notebook or the CLI, not a runbook kernel."""
    monkeypatch.delenv(RUN_ENV, raising=False)


def _archives(params: RunParams) -> list[Path]:
    base = Path(params.archive_dir)
    return sorted(d for d in base.iterdir() if d.is_dir()) if base.is_dir() else []


@pytest.mark.slow  # loads, derives, predicts and grades a season of the small demo
def test_stages_run_by_hand_leave_an_interactive_archive_with_typed_records(demo_copy):
    params, _ = demo_copy
    params = params.model_copy(update={"seasons": [2023], "chunk_days": 30, "backfill_mode": True})
    loaded = run_load(params, progress=False)
    derived = derive.run_derive(params, progress=False, skip_dates=derive.waived_skip_dates(params))
    predicted = predict.run_predict(params, progress=False)
    graded = grade.run_grade(params, progress=False)

    runs = {d.name.rsplit("-", 1)[-1]: d for d in _archives(params)}
    assert set(runs) == {"load", "derive", "predict", "grade"}
    load_record = read_record(runs["load"] / "stages" / "load.json", "load")
    assert isinstance(load_record, LoadRecord) and load_record.run_id == loaded.run_id == runs["load"].name
    assert load_record.loaded == len(loaded.by_state("loaded")) > 0
    for stage, result, cls in (("derive", derived, DeriveRecord), ("predict", predicted, PredictRecord),
                               ("grade", graded, GradeRecord)):
        run_dir = runs[stage]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["kind"] == "interactive" and manifest["status"] == "succeeded"
        assert manifest["run_id"] == result.run_id == run_dir.name
        record = read_record(run_dir / "stages" / f"{stage}.json", stage)
        assert isinstance(record, cls) and record.status == "succeeded"
        assert record.chunks and {c.status for c in record.chunks} == {"succeeded"}
        assert sum(c.rows for c in record.chunks) == sum(record.rows_written.values()) > 0
        assert manifest["stages"][0]["record"]["rows_written"] == record.rows_written
    with open_warehouse(params, read_only=True) as wh:
        hist = wh.query("SELECT DISTINCT run_id, stage FROM nba_reference.processor_run_history WHERE success")
    assert {(r.run_id, r.stage) for r in hist.itertuples()} >= {(runs[s].name, s) for s in ("derive", "predict", "grade")}
    assert not WarehouseLock(params, "-").path.exists()  # released after each stage


def test_a_stage_run_by_hand_is_refused_while_a_run_holds_the_warehouse(demo_copy):
    params, _ = demo_copy
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = WarehouseLock(params, "20260101-000000-other-run")
        lock.path.parent.mkdir(parents=True, exist_ok=True)
        info = {"run_id": "20260101-000000-other-run", "pid": holder.pid, "host": os.uname().nodename,
                "started_at": "2026-01-01T00:00:00+00:00", "proc_start": None, "warehouse": lock.warehouse}
        lock.path.write_text(json.dumps(info))
        with open_warehouse(params, read_only=True) as wh:
            before = wh.checksum(PGS)
        with pytest.raises(RunLockedError, match="other-run"):
            derive.run_derive(params, progress=False)
        assert _archives(params) == []  # refused before anything: no archive
        with open_warehouse(params, read_only=True) as wh:
            assert wh.checksum(PGS) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_failing_chunk_stops_the_stage_and_says_where(demo_copy, monkeypatch):
    params, _ = demo_copy
    params = params.model_copy(update={"seasons": [2023], "chunk_days": 7, "backfill_mode": True})
    real = derive_run._write_processor
    calls = {"n": 0}

    def flaky(wh, p, days):
        if p.name == "team_defense_zone_analysis":
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("injected failure")
        return real(wh, p, days)

    monkeypatch.setattr(derive_run, "_write_processor", flaky)
    per_date = f"SELECT game_date, COUNT(*) AS n FROM {PGS} GROUP BY game_date"
    with open_warehouse(params, read_only=True) as wh:
        before = dict(zip(pd.to_datetime(wh.query(per_date).game_date).dt.date, wh.query(per_date).n))
    with pytest.raises(derive.DeriveFailed) as err:
        derive.run_derive(params, progress=False, skip_dates=derive.waived_skip_dates(params))
    result = err.value.result
    statuses = [c.status for c in result.chunks]
    i = statuses.index("failed")  # the second chunk that has team_defense_zone_analysis dates to write
    assert i >= 1 and set(statuses[:i]) == {"succeeded"} and set(statuses[i + 1:]) == {"not_run"}, statuses
    failed = result.chunks[i]
    assert result.failed_processor == "team_defense_zone_analysis" and "injected failure" in failed.error
    assert result.reason.startswith(f"derive stopped at {failed.first}..{failed.last} in team_defense_zone_analysis")

    run_dir = next(d for d in _archives(params) if d.name.endswith("-derive"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "injected failure" in manifest["reason"]
    record = read_record(run_dir / "stages" / "derive.json", "derive")
    assert record.status == "failed" and record.reason == result.reason
    with open_warehouse(params, read_only=True) as wh:
        hist = wh.query("SELECT processor, data_date, success FROM nba_reference.processor_run_history "
                        "WHERE run_id = @r", {"r": result.run_id})
        after = wh.query(per_date)
    after = dict(zip(pd.to_datetime(after.game_date).dt.date, after.n))
    bad = hist[~hist.success]
    assert set(bad.processor) == {"team_defense_zone_analysis"}
    assert sorted(pd.to_datetime(bad.data_date).dt.date) == failed.dates
    untouched = [d for c in result.chunks[i:] for d in c.dates]  # the failed chunk rolled back; later ones never ran
    assert {d: after.get(d) for d in untouched} == {d: before.get(d) for d in untouched}


def test_a_record_that_breaks_the_contract_is_a_failure_naming_the_field():
    bad = parse_record("derive", {"status": "succeeded", "rows_written": {PGS: "many"}}, "stages/derive.json")
    assert bad.status == "failed" and "rows_written" in bad.reason and "stages/derive.json" in bad.reason
    assert parse_record("gate", {"status": "maybe"}).status == "failed"
    assert parse_record("gate", {"status": "overridden", "override_reason": "known outage"}).ok


@pytest.mark.slow  # loads and derives a season of the small demo, twice
def test_after_a_failure_the_next_attempt_runs_exactly_what_remains_of_the_plan(demo_copy, monkeypatch):
    """A resume re-runs the stage; the stage's targets are what the warehouse still lacks, so the
    two attempts together rebuild the plan's dates, table for table, and nothing twice."""
    from nbcore.load import run_load
    from nbcore.plan import plan_run

    params, _ = demo_copy
    params = params.model_copy(update={"seasons": [2023], "chunk_days": 7})
    assert run_load(params, progress=False).ok  # raw complete: every planned date can be derived
    plan = plan_run(params)
    real = derive_run._write_processor
    calls = {"n": 0}

    def fails_once(wh, p, days):
        if p.name == "ml_feature_store_v2":
            calls["n"] += 1
            if calls["n"] == 2:  # the last processor of the second chunk
                raise RuntimeError("injected failure")
        return real(wh, p, days)

    monkeypatch.setattr(derive_run, "_write_processor", fails_once)
    with pytest.raises(derive.DeriveFailed) as err:
        derive.run_derive(params, progress=False, skip_dates=derive.waived_skip_dates(params))
    first = err.value.result
    monkeypatch.setattr(derive_run, "_write_processor", real)
    second = derive.run_derive(params, progress=False, skip_dates=derive.waived_skip_dates(params))
    assert first.table_dates and second.table_dates
    for table in set(first.table_dates) | set(second.table_dates):
        done_first, done_second = set(first.table_dates.get(table, [])), set(second.table_dates.get(table, []))
        assert done_first.isdisjoint(done_second), table
        assert sorted(done_first | done_second) == plan.dates(table), table


def test_the_next_runs_report_credits_a_stage_run_by_hand(demo_copy):
    from nbcore import report

    params, _ = demo_copy
    params = params.model_copy(update={"seasons": [2023], "chunk_days": 30, "backfill_mode": True})
    derived = derive.run_derive(params, progress=False, skip_dates=derive.waived_skip_dates(params))
    later = Path(params.archive_dir) / "29991231-000000-test"  # the next runbook run's archive
    later.mkdir(parents=True)
    (later / "manifest.json").write_text(json.dumps({"run_id": later.name, "started_at": "2999-12-31T00:00:00+00:00",
                                                     "status": "succeeded", "stages": []}))
    credited = report.by_hand(report.load_run(later))
    assert credited.to_dict("records") == [{
        "run_id": derived.run_id, "stage": "derive", "status": "succeeded",
        "started_at": credited.started_at[0], "rows_written": sum(derived.rows_written.values()), "reason": None}]
    assert "## Stages run by hand before this run" in report.summary_markdown(report.load_run(later))
