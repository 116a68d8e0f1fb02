"""The whole runbook on the small demo league: the archive, the report, a real crash mid-derive
and its resume, and two runs racing for one warehouse."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from nbcore import program, report
from nbcore.cli import main
from nbcore.demo.build import load_holes
from nbcore.lock import lock_path
from nbcore.runbook import NOTEBOOKS_DIR, STEPS, list_runs, resume_run, run_runbook
from nbcore.warehouse import open_warehouse

from conftest import FULL_RUN_CHUNK_DAYS
from runbook_helpers import children, copy_demo, kill_tree

CHUNK_DAYS = FULL_RUN_CHUNK_DAYS  # small chunks: derive commits often, so a kill lands between commits
ALL_STAGES_PRESENT = all((NOTEBOOKS_DIR / s.notebook).exists() for s in STEPS)
pytestmark = pytest.mark.slow  # real runs of the stage notebooks


def _derive_cell(nb_path: Path) -> dict:
    """papermill's metadata (status, duration) of the cell that calls run_derive, in an executed notebook."""
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return {}
    cell = next((c for c in nb["cells"] if "run_derive(" in "".join(c["source"])), None)
    return (cell or {}).get("metadata", {}).get("papermill", {})


def _checksums(params):
    with open_warehouse(params, read_only=True) as wh:
        return wh.checksums()


def test_run_archive_and_manifest(full_run):
    params, _, out, _ = full_run
    assert (out.status, out.exit_code) == ("succeeded", 0), out.describe()
    m = json.loads((out.run_dir / "manifest.json").read_text())
    assert m["status"] == "succeeded" and m["run_id"] == out.run_id
    assert len(m["git_commit"] or "") == 40 and len(m["params_hash"]) == 16
    assert "credentials_path" not in json.dumps(m["params"])
    assert [s["name"] for s in m["stages"]] == [s.name for s in STEPS]
    for step, entry in zip(STEPS, m["stages"]):
        exists = (NOTEBOOKS_DIR / step.notebook).exists()
        assert entry["status"] == ("succeeded" if exists else "skipped"), entry
        if exists:
            assert (out.run_dir / step.output).exists() and (out.run_dir / entry["html"]).exists()
            assert entry["seconds"] > 0 and entry["kernel_overhead_s"] is not None
    steps = {s["name"]: s for s in m["stages"]}
    assert steps["validate_before"]["record"]["snapshot"] == "before"
    assert steps["validate_after"]["record"]["snapshot"] == "after"
    if steps["load"]["status"] == "succeeded":  # rows written per table, and the demo's transient fault retried
        assert m["rows_written"] and all(v >= 0 for v in m["rows_written"].values())
        assert steps["load"]["record"]["retries"] >= 1
    for name in ("validate_before.json", "validate_after.json", "params.yaml", "summary.md", "report.html",
                 "plan.json"):
        assert (out.run_dir / name).exists(), name
    # the plan the run saved before its first stage: missing and stale dates per table, with causes
    plan = json.loads((out.run_dir / "plan.json").read_text())
    assert plan["targets"]["nba_analytics.player_game_summary"]
    assert m["plan"]["derive"]["missing"] > 0 and m["plan"]["derive"]["stale"] > 0


def test_load_closed_exactly_the_raw_holes(full_run):
    params, _, out, _ = full_run
    if not (NOTEBOOKS_DIR / "01_load.ipynb").exists():
        pytest.skip("load stage not written yet")
    holes = load_holes(params.bucket)
    closed = report.dates_closed(report.load_run(out.run_dir))
    for table in ("bdl_player_boxscores", "nbac_gamebook_player_stats", "odds_api_player_points_props"):
        rows = closed[closed.table == table]
        assert int(rows["dates closed"].sum()) == len(holes.missing_dates(table)), table


@pytest.mark.skipif(not ALL_STAGES_PRESENT, reason="not every stage notebook exists yet")
def test_after_matrix_is_complete_for_every_phase(full_run):
    _, _, out, _ = full_run
    run = report.load_run(out.run_dir)
    before = report.phase_summary(run)
    assert (before["before %"] < 100).any()  # there were holes to close
    assert (before["after %"] == 100).all(), before
    after = json.loads((out.run_dir / "validate_after.json").read_text())
    assert after["complete"] is True
    assert {t["phase"] for t in after["tables"]} == {"2", "3", "4", "5", "5B"}
    assert all(not t["missing_dates"] for t in after["tables"])
    assert report.dates_open(run).empty
    assert "nothing: every expected date is present" in (out.run_dir / "summary.md").read_text()


def test_html_report_parses_has_before_after_no_code_no_secret(full_run):
    _, _, out, _ = full_run
    html = (out.run_dir / "report.html").read_text()
    soup = BeautifulSoup(html, "html.parser")
    assert soup.title and out.run_id in soup.title.text
    tables = soup.find_all("table")
    headers = [" ".join(th.get_text(" ", strip=True) for th in t.find_all("th")) for t in tables]
    assert any("before" in h and "after" in h and "2023-24" in h for h in headers), headers
    assert any("bdl_player_boxscores" in t.get_text() for t in tables)
    assert len(soup.find_all("img")) >= 1  # the timeline, embedded (the grids and the hit-rate chart are HTML)
    # no code cell input: neither the notebook's code nor the injected parameters show
    assert "report.or_note(" not in html and "notebook.setup(" not in html and "params_file =" not in html
    assert not soup.select(".jp-CodeCell .jp-InputArea")
    # no secret anywhere in the archive
    for f in out.run_dir.rglob("*"):
        if f.is_file():
            assert b"S3CR3T" not in f.read_bytes(), f


def test_runs_and_open_commands(full_run):
    params, params_file, out, _ = full_run
    r = CliRunner().invoke(main, ["runs", "--params", str(params_file)])
    assert r.exit_code == 0 and out.run_id in r.output and "succeeded" in r.output
    r = CliRunner().invoke(main, ["open", out.run_id, "--params", str(params_file)])
    assert r.exit_code == 0 and r.output.strip() == str(out.run_dir / "report.html")


@pytest.mark.skipif(not (NOTEBOOKS_DIR / "03_derive.ipynb").exists(), reason="derive stage not written yet")
def test_kill_mid_derive_then_resume_equals_uninterrupted(full_run, small_demo, tmp_path):
    """A real crash (SIGKILL to the driver and its kernel) after derive has committed two chunks; the
    resume runs exactly the plan's chunks not yet done (none twice, the plan not re-made: this test
    took over test_plan_is_program's own killed run) and ends with tables equal to an uninterrupted run."""
    _, _, ref, ref_checksums = full_run
    # only the writing stages (validate and report are read-only): the tables must match the full run's
    params, params_file = copy_demo(small_demo[0], tmp_path, chunk_days=CHUNK_DAYS,
                                    stages=["load", "gate", "derive", "predict", "grade"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run_id = "crash-test"
    proc = subprocess.Popen([sys.executable, "-m", "nbcore.cli", "run", "--params", str(params_file), "--run-id", run_id],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    run_dir = Path(params.archive_dir) / run_id
    manifest = run_dir / "manifest.json"
    try:
        # wait until the kernel is executing derive's main cell (papermill marks it "running") ...
        deadline = time.time() + 240
        while _derive_cell(run_dir / "03_derive.ipynb").get("status") != "running":
            assert proc.poll() is None, "the run ended before derive started"
            assert time.time() < deadline, "derive never started"
            time.sleep(0.05)
        # ... and derive has committed (and recorded) two chunks: the kill lands in the middle of the third
        kernel = children(proc.pid)
        assert len(kernel) == 1
        while sum(o["status"] == "succeeded" for o in program.outcomes(run_dir, "derive")) < 2:
            assert proc.poll() is None and time.time() < deadline, "derive ended before its second chunk"
            time.sleep(0.01)
        victims = kill_tree(proc.pid)  # the driver and its kernel, SIGKILL: a crash, not an exception
        at_kill = {s["name"]: s for s in json.loads(manifest.read_text())["stages"]}
        assert at_kill["derive"]["status"] == "running", "derive finished before the kill"
    finally:
        if proc.poll() is None:
            kill_tree(proc.pid)
        proc.wait(timeout=30)
    assert proc.returncode == -9 and len(victims) >= 2
    for pid in victims:  # the kernel is not our child: wait until it is really gone
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]:
                break
            time.sleep(0.05)
    assert lock_path(params).exists()  # the dead run's lock is still there
    runs = list_runs(params.archive_dir)
    assert runs.set_index("run_id").loc[run_id, "status"] == "interrupted"
    with open_warehouse(params, read_only=True) as wh:
        committed = int(wh.query("SELECT COUNT(*) AS n FROM nba_reference.processor_run_history "
                                 "WHERE run_id = @r AND stage = 'derive'", {"r": run_id}).n.iloc[0])
    assert committed > 0  # derive had written part of its dates when it died
    planned = json.loads((run_dir / "plan.json").read_text())["program"]["derive"]["chunks"]
    assert 2 <= len([o for o in program.outcomes(run_dir, "derive") if o["status"] == "succeeded"]) < len(planned)

    out = resume_run(run_id, archive_dir=params.archive_dir, echo=None)
    assert (out.status, out.exit_code) == ("succeeded", 0), out.describe()
    m = out.manifest
    assert m["resumes"][0]["from"] == "derive"
    assert m["stale_locks_released"][0]["run_id"] == run_id
    steps = {s["name"]: s for s in m["stages"]}
    for name in ("load", "gate"):  # finished stages were not redone
        assert steps[name]["started_at"] == at_kill[name]["started_at"], name
    assert not lock_path(params).exists()
    assert _checksums(params) == ref_checksums
    # the resume executed exactly the chunks of the saved plan not yet succeeded
    assert json.loads((run_dir / "plan.json").read_text())["program"]["derive"]["chunks"] == planned  # not re-planned
    by_attempt: dict[str, set] = {}
    for o in program.outcomes(run_dir, "derive"):
        assert o["status"] == "succeeded"
        by_attempt.setdefault(o["attempt"], set()).add(tuple(d.isoformat() for d in o["dates"]))
    assert len(by_attempt) == 2
    a, b = by_attempt.values()
    assert not a & b  # no chunk executed twice
    assert a | b == {tuple(c) for c in planned}  # together, exactly the plan's chunks


def test_two_runs_on_one_warehouse_second_is_refused(small_demo, tmp_path):
    params, params_file = copy_demo(small_demo[0], tmp_path, stages=["validate"])
    cmd = [sys.executable, "-m", "nbcore.cli", "run", "--params", str(params_file)]
    first = subprocess.Popen(cmd + ["--run-id", "first-run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not lock_path(params).exists():
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.02)
    second = subprocess.run(cmd + ["--run-id", "second-run"], capture_output=True, text=True, timeout=120)
    out1, err1 = first.communicate(timeout=180)
    assert first.returncode == 0, err1
    assert second.returncode == 4, second.stderr
    assert "first-run" in second.stderr and "locked" in second.stderr
    assert not (Path(params.archive_dir) / "second-run").exists()
    assert not lock_path(params).exists()


def test_why_after_the_run_shows_the_filled_date_and_its_history(full_run):
    params, _, out, _ = full_run
    if not (NOTEBOOKS_DIR / "03_derive.ipynb").exists():
        pytest.skip("derive stage not written yet")
    from nbcore.why import why

    day = load_holes(params.bucket).raw_missing["bdl_player_boxscores"][-1]
    r = why(params, "player_game_summary", day)
    assert r.status == "present" and r.command is None
    assert (r.upstream.status == "present").all()
    mine = r.history[r.history.run_id == out.run_id]
    assert not mine.empty and mine.success.all()
