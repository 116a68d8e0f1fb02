"""A first run from an empty warehouse, and the README's recovery flow end to end (issue 12):
block -> ``runbook load --retry-failed RUN_ID`` -> a waiver file -> ``runbook resume RUN_ID --set``.
Both run the real stage notebooks on the small demo league."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from nbcore import report
from nbcore.cli import main
from nbcore.runbook import resume_run, run_runbook
from nbcore.sources import BOXSCORES, GAMEBOOK, PROPS, file_path

from runbook_helpers import copy_demo

EXAMPLE_WAIVERS = Path(__file__).resolve().parent.parent / "params" / "waivers.example.yaml"


@pytest.mark.slow
def test_first_run_from_an_empty_warehouse(small_demo, tmp_path):
    src, built = small_demo
    root = tmp_path / "first"
    params, _ = copy_demo(src, root, waivers=str(EXAMPLE_WAIVERS), chunk_days=30)
    Path(params.duckdb_path).unlink()  # nothing loaded yet: only the bucket
    outcome = run_runbook(params, echo=None)
    assert outcome.exit_code == 0, outcome.describe()

    final = built.league.schedule[built.league.schedule.game_status == "final"]
    before = json.loads((outcome.run_dir / "validate_before.json").read_text())
    assert before["tables"] and not before["complete"]
    for t in before["tables"]:  # every expected date of every table is missing
        season = final[final.season_year == t["season_year"]]
        assert t["present_dates"] == 0, t["table"]
        assert t["expected_dates"] + len(t["waived_dates"]) == season.game_date.nunique(), t["table"]
        assert sorted(t["missing_dates"] + list(t["waived_dates"])) == sorted(d.isoformat() for d in set(season.game_date))
    # after: everything present but the prop gaps the league never had, which are waived
    run = report.load_run(outcome.run_dir)
    assert report.dates_open(run).empty, report.dates_open(run)
    waived = report.dates_waived(run)
    assert set(waived.table) >= {PROPS} and waived.reason.str.contains("approved by jane.doe").all()


@pytest.mark.slow
def test_recovery_flow_ends_with_nothing_open_and_every_waiver_shown(small_demo, tmp_path):
    src, built = small_demo
    root = tmp_path / "recovery"
    params, params_file = copy_demo(src, root, chunk_days=5, waivers=None)  # no waiver file yet
    bucket = Path(params.bucket)
    fixable = built.holes.raw_missing[GAMEBOOK][0]  # a corrupt file, fixed later
    gone = next(d for d in built.holes.raw_missing[BOXSCORES] if d != fixable
                and (BOXSCORES, d) not in built.holes.transient_faults)  # never to be had: waived
    good = (bucket / file_path(GAMEBOOK, fixable)).read_bytes()
    (bucket / file_path(GAMEBOOK, fixable)).write_text('{"game_date": "oops"')
    (bucket / file_path(BOXSCORES, gone)).unlink()

    # 1. the run blocks at the gate, advising --retry-failed
    first = run_runbook(params, echo=None)
    assert first.exit_code == 3 and first.stopped_at == "gate", first.describe()
    gate = json.loads((first.run_dir / "stages" / "gate.json").read_text())
    assert any("--retry-failed" in c for c in gate["retry_commands"])

    # 2. the file is fixed and the failures retried (a separate load, its own archive)
    (bucket / file_path(GAMEBOOK, fixable)).write_bytes(good)
    retry = CliRunner().invoke(main, ["load", "--params", str(params_file), "--retry-failed", first.run_id, "--no-progress"])
    assert retry.exit_code == 1, retry.output  # the bdl file and the prop gaps still fail

    # 3. what cannot be had is waived, and the run resumes with the waiver file
    entries = yaml.safe_load(EXAMPLE_WAIVERS.read_text())["waivers"] + [{
        "source": BOXSCORES, "dates": [gone.isoformat()], "approved_by": "sam.lee (ops lead)",
        "reason": "The provider lost this night's box scores; the gamebook has the game."}]
    wfile = root / "waivers.yaml"
    wfile.write_text(yaml.safe_dump({"waivers": entries}, sort_keys=False))
    done = resume_run(first.run_id, archive_dir=params.archive_dir, echo=None, changes={"waivers": str(wfile)})
    assert done.exit_code == 0, done.describe()
    archived = yaml.safe_load((done.run_dir / "params.yaml").read_text())
    assert archived["waivers"] == str(wfile) and (done.run_dir / "params.resume-1.yaml").exists()
    assert json.loads((done.run_dir / "manifest.json").read_text())["param_changes"][0]["changes"] == {"waivers": str(wfile)}

    # 4. the report: nothing still open; every waived (source, date) with reason and approver
    run = report.load_run(done.run_dir)
    assert report.dates_open(run).empty, report.dates_open(run)
    waived = report.dates_waived(run)
    bdl = waived[waived.table == BOXSCORES]
    assert bdl.ranges.tolist() == [gone.isoformat()]
    assert bdl.reason.iloc[0] == (f"waived ({BOXSCORES}): The provider lost this night's box scores; the gamebook has "
                                  f"the game. (approved by sam.lee (ops lead))")
    # downstream of the waived box scores is waived too (derive skipped the date), never "open"
    assert (waived[waived.table == "player_game_summary"].reason.str.startswith(f"waived ({BOXSCORES})")).all()
    props = waived[waived.table == PROPS]
    assert props.dates.sum() == len(built.holes.source_gaps[PROPS])
    # failures: the fixed one resolved by the retry run, the others waived, none open
    fails = report.failures(run)
    assert set(fails.status) == {"resolved", "waived"}, fails[["date", "source", "status"]]
    fixed = fails[(fails.source == GAMEBOOK) & (fails.date == fixable.isoformat())]
    assert len(fixed) and fixed.resolved_by.str.startswith("loaded by run ").all()
    assert not fixed.resolved_by.str.contains(first.run_id).any()  # by the retry, not the run itself
    summary = (done.run_dir / "summary.md").read_text()
    assert "## Waived (reviewed, not open)" in summary and "0 open)" in summary
    assert "nothing: every expected date is present in every table" in summary
