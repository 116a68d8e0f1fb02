"""Load (phase 1 -> 2) and the gate, on the small demo with its known holes."""
from __future__ import annotations

import csv
import json
from datetime import date

import pytest
from click.testing import CliRunner

from nbcore import schema
from nbcore.archive import RunArchive
from nbcore.bucket import Bucket, BucketError, TransientReadError
from nbcore.demo.build import raw_frames
from nbcore.gate import GateBlocked, run_gate, waived_dates
from nbcore.history import latest_runs
from nbcore.load import run_load
from nbcore.params import ParamsError, build_params
from nbcore.sources import BOXSCORES, DATED_SOURCES, GAMEBOOK, PROPS, SCHEDULE, fault_marker_path, file_path
from nbcore.validate import run_validate
from nbcore.warehouse import open_warehouse
from nbcore.warehouse.duckdb import DuckDBWarehouse

from conftest import small_params

RAW = [f"nba_raw.{s}" for s in (SCHEDULE,) + DATED_SOURCES]


def _missing(params) -> dict[str, list[date]]:
    with open_warehouse(params) as wh:
        r = run_validate(params.model_copy(update={"tables": list(DATED_SOURCES)}), wh, progress=False)
    return {s: sorted(set(r.missing_dates(s)) | set(r.partial_dates(s))) for s in DATED_SOURCES}


def _checksums(params) -> dict[str, str]:
    with open_warehouse(params) as wh:
        return wh.checksums(RAW)


def _read_failures(archive: RunArchive) -> list[dict]:
    with archive.file("failures.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def truth_checksums(small_demo, tmp_path_factory):
    """Checksums of the raw tables with every row of the league (no holes): what a full load must give."""
    params, built = small_demo
    wh = DuckDBWarehouse(tmp_path_factory.mktemp("truth") / "truth.duckdb")
    wh.ensure_schema()
    for name, frame in raw_frames(built.league).items():
        wh.replace_range(schema.table(name).fqn, frame.game_date.min(), frame.game_date.max(), frame=frame)
    sums = wh.checksums(RAW)
    wh.close()
    return sums


@pytest.mark.slow  # loads the whole small demo
def test_load_closes_every_hole_retries_the_transient_fault_and_the_gate_passes(demo_copy, truth_checksums):
    params, built = demo_copy
    before = _missing(params)
    for source in DATED_SOURCES:  # the before state has exactly the injected holes
        assert set(before[source]) == built.holes.missing_dates(source)
    fault_source, fault_day = built.holes.transient_faults[0]
    assert Bucket(params.bucket).exists(fault_marker_path(fault_source, fault_day))

    with pytest.raises(GateBlocked) as blocked:
        run_gate(params, archive=RunArchive.create(params, "gate-before"))
    assert fault_day in {p.date for p in blocked.value.result.blocking}

    archive = RunArchive.create(params, "load-1")
    result = run_load(params, archive=archive, progress=False)
    assert result.ok and not result.failed
    assert _missing(params) == {s: [] for s in DATED_SOURCES}
    # the prop-line gaps the league never had are waived: not missing, not read by load, listed by the gate
    gaps = {s: sorted(built.holes.source_gaps.get(s, [])) for s in DATED_SOURCES}
    assert gaps[PROPS] and {(o.source, o.date) for o in result.by_state("waived")} == {(PROPS, d) for d in gaps[PROPS]}
    assert _checksums(params) == truth_checksums  # files -> rows gives exactly the league

    # the transient fault failed once, was retried, and recovered
    fault = next(o for o in result.outcomes if (o.source, o.date) == (fault_source, fault_day))
    assert fault.state == "loaded" and fault.attempts == 2 and fault.retried
    rows = _read_failures(archive)
    assert [(r["date"], r["source"], r["stage"], r["attempt"], r["resolved"]) for r in rows] == [
        (fault_day.isoformat(), fault_source, "read", "1", "True")]
    assert "transient" in rows[0]["reason"]
    assert not Bucket(params.bucket).exists(fault_marker_path(fault_source, fault_day))
    record = archive.stage_record("load")
    assert record["status"] == "succeeded" and record["complete"] and record["retried"] == 1
    assert record["rows_written"]["nba_raw.bdl_player_boxscores"] > 0
    table = result.summary_table().set_index("source")
    assert table.loc[BOXSCORES, "retried"] == 1 and table.loc["total", "failed"] == 0
    with open_warehouse(params) as wh:
        runs = latest_runs(wh, fault_source, fault_day, fault_day)
    assert bool(runs.success.iloc[0]) and int(runs.attempt.iloc[0]) == 2

    gate_archive = RunArchive.create(params, "gate-after")
    gate = run_gate(params, archive=gate_archive)
    assert gate.status == "passed" and not gate.blocking
    # what is left only warns: the short-handed games, unusual but real
    assert not gate.reported and {p.check for p in gate.warnings} == {"players per game"}
    assert {p.detail.split(" ")[0] for p in gate.warnings} <= set(built.league.quirks.short_handed)
    waived = {(w["source"], w["date"]) for w in gate.waived}
    assert waived == {(PROPS, d) for d in gaps[PROPS]}
    assert all(w["reason"] and w["approved_by"] for w in gate.waived)
    assert gate_archive.stage_record("gate")["status"] == "passed"


@pytest.mark.slow
def test_loading_twice_leaves_identical_tables(demo_copy):
    params, _ = demo_copy
    run_load(params, progress=False)
    first = _checksums(params)
    again = run_load(params.model_copy(update={"reload": True}), progress=False)
    assert again.ok and len(again.by_state("loaded")) > 100  # every date was really rewritten
    assert _checksums(params) == first
    nothing = run_load(params, progress=False)  # nothing missing any more: only the schedule is reloaded
    assert {(o.source, o.state) for o in nothing.outcomes} == {(SCHEDULE, "loaded"), (PROPS, "waived")}
    assert _checksums(params) == first


@pytest.mark.slow  # loads the whole small demo
def test_retry_failed_reruns_only_the_failed_dates(demo_copy):
    params, built = demo_copy
    day = built.holes.raw_missing[GAMEBOOK][0]
    path = f"{params.bucket}/{file_path(GAMEBOOK, day)}"
    good = open(path, "rb").read()
    open(path, "wb").write(good[: len(good) // 3])

    first = RunArchive.create(params, "first")
    result = run_load(params, archive=first, progress=False)
    failed = [(o.source, o.date) for o in result.failed]
    assert failed == [(GAMEBOOK, day)]
    reason = result.failed[0].reason
    assert "truncated" in reason
    mine = [r for r in _read_failures(first) if r["source"] == GAMEBOOK]
    assert [(r["attempt"], r["stage"], r["resolved"]) for r in mine] == [("1", "json", "False"), ("2", "json", "False")]
    assert _missing(params)[GAMEBOOK] == [day]
    assert first.stage_record("load")["retry_command"].endswith(f"--retry-failed {first.run_id}")

    open(path, "wb").write(good)  # the operator fetched the file again
    second = RunArchive.create(params, "second")
    retry = run_load(params.model_copy(update={"retry_failed": first.run_id}), archive=second, progress=False)
    assert retry.mode == "retry_failed"
    assert [(o.source, o.date, o.state) for o in retry.outcomes if o.source != SCHEDULE] == [(GAMEBOOK, day, "loaded")]
    assert _missing(params)[GAMEBOOK] == []
    run_gate(params)  # passes: the latest run of that date succeeded

    with pytest.raises(ParamsError, match="no run"):
        run_load(params.model_copy(update={"retry_failed": "no-such-run"}), progress=False)


@pytest.mark.slow  # loads the whole small demo
def test_waived_dates_pass_the_gate_and_are_exposed(demo_copy, tmp_path):
    params, built = demo_copy
    day = built.holes.raw_missing[BOXSCORES][-1]
    (tmp_path / "waivers.yaml").write_text(
        f"waivers:\n  - source: {BOXSCORES}\n    dates: [{day}]\n"
        f"    reason: BDL lost this date's box scores for good.\n    approved_by: data lead\n")
    p = small_params(tmp_path, waivers=str(tmp_path / "waivers.yaml"))
    result = run_load(p, progress=False)
    w = next(o for o in result.outcomes if (o.source, o.date) == (BOXSCORES, day))
    assert w.state == "waived" and "approved by data lead" in w.note
    assert _missing(p)[BOXSCORES] == []  # not missing: reviewed, and validate lists it as waived
    with open_warehouse(p) as wh:
        status = run_validate(p.model_copy(update={"tables": [BOXSCORES]}), wh, progress=False)
    assert [t.waived for t in status.tables if day in t.waived] == [
        {day: f"{BOXSCORES}: BDL lost this date's box scores for good. (approved by data lead)"}]

    archive = RunArchive.create(p, "gate-waived")
    gate = run_gate(p, archive=archive)
    assert gate.status == "passed"
    assert [(x["source"], x["date"], x["present"]) for x in gate.waived] == [(BOXSCORES, day, False)]
    assert archive.stage_record("gate")["waived"][0]["approved_by"] == "data lead"
    assert waived_dates(p) == [day]
    assert waived_dates(small_params(tmp_path)) == []

    (tmp_path / "bad.yaml").write_text(f"waivers:\n  - source: {BOXSCORES}\n    dates: [{day}]\n    reason: x\n")
    with pytest.raises(ParamsError, match="approved_by"):
        run_load(small_params(tmp_path, waivers=str(tmp_path / "bad.yaml")), progress=False)


def test_override_needs_a_reason_and_is_recorded(demo_copy):
    params, _ = demo_copy
    with pytest.raises(ParamsError, match="gate_override_reason"):
        small_params(params.duckdb_path.parent, gate_override=True)
    p = small_params(params.duckdb_path.parent, gate_override=True,
                     gate_override_reason="Accepted by the data lead: the missing box scores are re-scraped tonight.")
    archive = RunArchive.create(p, "override")
    gate = run_gate(p, archive=archive)  # the before state has holes, but the override lets it through
    assert gate.status == "overridden" and gate.blocking
    record = archive.stage_record("gate")
    assert record["status"] == "overridden" and "re-scraped tonight" in record["override_reason"]


@pytest.mark.slow  # loads the whole small demo
def test_props_are_reported_but_only_block_when_required(demo_copy):
    params, built = demo_copy
    day = built.holes.raw_missing[PROPS][-1]
    (Bucket(params.bucket).fs).rm(f"{params.bucket}/{file_path(PROPS, day)}")
    result = run_load(params, progress=False)
    failed = result.failed
    assert [(o.source, o.date) for o in failed] == [(PROPS, day)]
    assert failed[0].reason.startswith("file missing in bucket")
    gate = run_gate(params)
    assert gate.status == "passed"
    assert {(p.source, p.date) for p in gate.reported} == {(PROPS, day)}
    strict = params.model_copy(update={"required_sources": list(DATED_SOURCES)})
    with pytest.raises(GateBlocked, match="file missing in bucket"):
        run_gate(strict)


def test_bucket_fault_marker_fails_one_read_only(tmp_path):
    (tmp_path / BOXSCORES).mkdir()
    (tmp_path / BOXSCORES / "2024-04-01.json").write_text("{}")
    marker = tmp_path / fault_marker_path(BOXSCORES, date(2024, 4, 1))
    marker.parent.mkdir(parents=True)
    marker.write_text("x")
    b = Bucket(str(tmp_path))
    with pytest.raises(TransientReadError):
        b.read_bytes(f"{BOXSCORES}/2024-04-01.json")
    assert b.read_bytes(f"{BOXSCORES}/2024-04-01.json") == b"{}"
    assert b.listing(BOXSCORES) == [f"{BOXSCORES}/2024-04-01.json"]
    assert b.listing("nothing_here") == []


def test_gs_bucket_without_gcsfs_names_the_extra():
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
        pytest.skip("gcsfs is installed")
    except ImportError:
        pass
    with pytest.raises(BucketError, match=r"backfill-runbook\[gcs\]"):
        Bucket("gs://some-bucket/phase1").exists("x")


@pytest.mark.slow  # loads the whole small demo
def test_cli_load_and_gate_exit_codes(demo_copy, tmp_path):
    from nbcore.cli import main

    params, _ = demo_copy
    pfile = tmp_path / "p.yaml"
    pfile.write_text(json.dumps({k: v for k, v in params.public_dict().items() if k in (
        "run_name", "duckdb_path", "bucket", "archive_dir", "seasons", "waivers")}))
    runner = CliRunner()
    blocked = runner.invoke(main, ["gate", "--params", str(pfile)])
    assert blocked.exit_code == 3, blocked.output
    assert "runbook load --params" in blocked.output
    loaded = runner.invoke(main, ["load", "--params", str(pfile), "--no-progress"])
    assert loaded.exit_code == 0, loaded.output
    assert "total" in loaded.output
    passed = runner.invoke(main, ["gate", "--params", str(pfile)])
    assert passed.exit_code == 0 and "passed" in passed.output
    bad = runner.invoke(main, ["load", "--params", str(pfile), "--retry-failed", "nope", "--no-progress"])
    assert bad.exit_code == 2 and "no run" in bad.output


def test_params_validation_for_load_and_gate_fields(tmp_path):
    with pytest.raises(ParamsError, match="required_sources"):
        build_params({"required_sources": ["espn"]}, "t", tmp_path)
    with pytest.raises(ParamsError, match="retry_failed"):
        build_params({"retry_failed": "../etc"}, "t", tmp_path)
    p = build_params({"waivers": "params/w.yaml"}, "t", tmp_path)
    assert p.waivers == (tmp_path / "params" / "w.yaml").resolve()
