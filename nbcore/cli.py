"""The ``runbook`` command. Each subcommand is a thin wrapper over an nbcore function.

Exit codes: 0 success, 1 a stage failed, 2 bad parameters or usage, 3 a gate blocked the run,
4 another run holds the warehouse lock (nothing was started).
"""
from __future__ import annotations

import json
import sys

import click

from .params import ParamsError, load_params

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BLOCKED, EXIT_LOCKED = 0, 1, 2, 3, 4

params_option = click.option(
    "--params", "params_file", type=click.Path(dir_okay=False), default="params/demo.yaml", show_default=True,
    help="run parameters (YAML)",
)


def _params(params_file: str, **overrides):
    try:
        return load_params(params_file, {k: v for k, v in overrides.items() if v is not None})
    except ParamsError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Backfill runbook for the NBA props pipeline: find gaps, load, gate, derive, predict, grade, report."""


@main.command()
@params_option
@click.option("--json", "as_json", is_flag=True, help="print the completeness matrix as JSON")
def status(params_file: str, as_json: bool) -> None:
    """Completeness matrix: season x table, expected vs present dates (read-only)."""
    from .validate import print_status, run_validate

    params = _params(params_file)
    result = run_validate(params, progress=False)
    if as_json:
        click.echo(json.dumps(result.to_status_json(), indent=2))
    else:
        print_status(result)


@main.command()
@params_option
@click.option("--build-only", is_flag=True, help="build the demo bucket and warehouse, run nothing")
@click.option("--scale", type=click.Choice(["full", "small"]), default=None, help="override demo.scale")
def demo(params_file: str, build_only: bool, scale: str | None) -> None:
    """Build the demo league (bucket + warehouse before state), then run the whole runbook on it."""
    from .demo.build import build_demo

    params = _params(params_file)
    if scale:
        params = params.model_copy(update={"demo": params.demo.model_copy(update={"scale": scale})})
    click.echo(f"building the demo league ({params.demo.scale} scale, seed {params.demo.seed}) ...")
    from .lock import RunLockedError, WarehouseLock

    try:  # rebuilding deletes the warehouse: never under a running runbook
        with WarehouseLock(params, f"demo-build-{params.run_name}"):
            built = build_demo(params)
    except RunLockedError as e:
        click.echo(f"refused: {e}", err=True)
        sys.exit(EXIT_LOCKED)
    s = built.summary()
    click.echo(f"  {s['games']} games on {s['game_dates']} dates, {s['player_game_rows']} player-game rows")
    click.echo(f"  bucket:    {s['bucket']}\n  warehouse: {s['warehouse']}  ({s['timings_s']['total']} s)")
    if build_only:
        return
    outcome = _run_or_refuse(params)
    click.echo(f"report: {outcome.report_path or outcome.run_dir / 'manifest.json'}")
    sys.exit(outcome.exit_code)


def _run_or_refuse(params, **kwargs):
    """run_runbook, or exit 4 naming the run that holds the warehouse."""
    from .lock import RunLockedError
    from .runbook import run_runbook

    try:
        return run_runbook(params, echo=click.echo, **kwargs)
    except RunLockedError as e:
        click.echo(f"refused: {e}", err=True)
        sys.exit(EXIT_LOCKED)
    except ValueError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@main.command()
@params_option
@click.option("--run-id", default=None, help="archive folder name (default: <timestamp>-<run_name>)")
@click.option("--from", "from_stage", default=None, help="start at this stage (earlier ones are not run)")
@click.option("--start-date", default=None, help="override start_date (YYYY-MM-DD)")
@click.option("--end-date", default=None, help="override end_date (YYYY-MM-DD)")
@click.option("--stages", default=None, help="override stages, comma-separated (validate,load,gate,...)")
@click.option("--tables", default=None, help="override tables, comma-separated bare names")
def run(params_file: str, run_id: str | None, from_stage: str | None, start_date: str | None,
        end_date: str | None, stages: str | None, tables: str | None) -> None:
    """Run the runbook: each stage notebook, in order, into runs/<run_id>/.

    Exit 0 succeeded, 1 a stage failed, 3 the gate blocked, 4 another run holds the warehouse."""
    params = _params(params_file, start_date=start_date, end_date=end_date, stages=_csv(stages), tables=_csv(tables))
    outcome = _run_or_refuse(params, run_id=run_id, from_stage=from_stage)
    sys.exit(outcome.exit_code)


@main.command()
@click.argument("run_id")
@click.option("--from", "from_stage", default=None, help="restart from this stage instead of the one that stopped")
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False),
              help="folder holding the runs (default: archive_dir of --params)")
@click.option("--set", "changes", multiple=True, metavar="KEY=VALUE",
              help="change a parameter for the rest of the run, e.g. --set waivers=params/waivers.yaml (repeatable)")
@params_option
def resume(run_id: str, from_stage: str | None, archive_dir: str | None, changes: tuple[str, ...], params_file: str) -> None:
    """Continue a stopped run in its own archive, from the stage that stopped (or --from STAGE).

    The run keeps its archived parameters; --set KEY=VALUE changes one for the rest of the run
    (a waiver file written after the gate blocked, gate_override and gate_override_reason, ...)."""
    import yaml

    from .lock import RunLockedError
    from .runbook import resume_run

    base = archive_dir or _params(params_file).archive_dir
    updates = {}
    for item in changes:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            click.echo(f"--set {item!r}: write KEY=VALUE, e.g. --set waivers=params/waivers.yaml", err=True)
            sys.exit(EXIT_USAGE)
        updates[key.strip()] = yaml.safe_load(value) if value.strip() else None
    try:
        outcome = resume_run(run_id, from_stage=from_stage, archive_dir=base, echo=click.echo, changes=updates or None)
    except RunLockedError as e:
        click.echo(f"refused: {e}", err=True)
        sys.exit(EXIT_LOCKED)
    except (FileNotFoundError, ValueError, ParamsError) as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(outcome.exit_code)


@main.command()
@params_option
@click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
def plan(params_file: str, as_json: bool) -> None:
    """What a run would write, per stage and table (dates, games, expected rows). Writes nothing."""
    from .plan import plan_run

    params = _params(params_file)
    try:
        result = plan_run(params)
    except FileNotFoundError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        result.print()


@main.command()
@params_option
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), help="default: archive_dir of --params")
@click.option("--json", "as_json", is_flag=True)
def runs(params_file: str, archive_dir: str | None, as_json: bool) -> None:
    """List archived runs: id, name, status, range, duration."""
    from .runbook import list_runs

    frame = list_runs(archive_dir or _params(params_file).archive_dir)
    if as_json:
        click.echo(frame.to_json(orient="records", indent=2))
    elif frame.empty:
        click.echo("no runs archived yet")
    else:
        click.echo(frame.drop(columns=["report"]).to_string(index=False))


@main.command(name="open")
@click.argument("run_id")
@params_option
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), help="default: archive_dir of --params")
def open_(run_id: str, params_file: str, archive_dir: str | None) -> None:
    """Print the path of a run's report (report.html; else summary.md or manifest.json)."""
    from .runbook import find_run, report_path

    try:
        click.echo(str(report_path(find_run(run_id, archive_dir or _params(params_file).archive_dir))))
    except FileNotFoundError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)


@main.command()
@click.argument("table")
@click.argument("day")
@params_option
@click.option("--json", "as_json", is_flag=True)
def why(table: str, day: str, params_file: str, as_json: bool) -> None:
    """Explain a gap: upstream coverage, run history errors, waivers, and the command that fills it."""
    from datetime import date as _date

    from .why import why as explain

    params = _params(params_file)
    try:
        result = explain(params, table, _date.fromisoformat(day), params_file=params_file)
    except (KeyError, ValueError) as e:
        click.echo(str(e).strip('"'), err=True)
        sys.exit(EXIT_USAGE)
    click.echo(json.dumps(result.to_json(), indent=2, default=str) if as_json else result.explain())


@main.command()
@params_option
@click.option("--force", is_flag=True, help="release even if the holder may be alive (e.g. held from another host)")
def unlock(params_file: str, force: bool) -> None:
    """Release the warehouse lock left by a run whose process is gone."""
    from .lock import RunLockedError, unlock as release

    try:
        holder = release(_params(params_file), force=force)
    except RunLockedError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_LOCKED)
    click.echo(f"released the lock of {holder.describe()}" if holder else "the warehouse was not locked")


def _new_archive(params, stage: str):
    """A fresh archive for a stage run on its own: runs/<timestamp>-<run_name>-<stage>[-N]."""
    from .archive import RunArchive, unique_run_id

    return RunArchive.create(params, unique_run_id(params.archive_dir, params.run_name, stage))


@main.command()
@params_option
@click.option("--retry-failed", "retry_failed", default=None, metavar="RUN_ID",
              help="load only the dates left failed in that run's failures.csv")
@click.option("--reload", is_flag=True, default=None, help="load every expected date in range, not only the missing ones")
@click.option("--run-dir", default=None, type=click.Path(file_okay=False),
              help="write into this run archive (default: a new runs/<timestamp>-<run_name>-load)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def load(params_file: str, retry_failed: str | None, reload: bool | None, run_dir: str | None, no_progress: bool) -> None:
    """Load phase 1 files into the raw tables for missing dates (retry once, continue, log failures).

    Exit 0 when every (source, date) ended loaded or waived, 1 when some failed (see failures.csv)."""
    from .archive import RunArchive
    from .load import run_load
    from .lock import RunLockedError, WarehouseLock

    params = _params(params_file, retry_failed=retry_failed, reload=reload or None)
    try:
        if params.retry_failed:
            from .load import read_failure_log

            read_failure_log(params, params.retry_failed)  # a wrong run id fails before any archive is made
        archive = RunArchive.open(run_dir) if run_dir else _new_archive(params, "load")
        with WarehouseLock(params, archive.run_id):
            result = run_load(params, archive=archive, progress=not no_progress)
    except RunLockedError as e:
        click.echo(f"refused: {e}", err=True)
        sys.exit(EXIT_LOCKED)
    except (ParamsError, FileNotFoundError, FileExistsError) as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)
    click.echo(result.summary_table().to_string(index=False))
    for o in result.failed:
        click.echo(f"FAILED {o.date} {o.source}: {o.reason}", err=True)
    click.echo(f"archive: {archive.path}")
    if result.failed:
        click.echo(f"retry with: {result.retry_command()}", err=True)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@main.command()
@params_option
@click.option("--run-dir", default=None, type=click.Path(file_okay=False),
              help="record stages/gate.json in this run archive (default: a new runs/<timestamp>-<run_name>-gate)")
@click.option("--json", "as_json", is_flag=True, help="print the gate record as JSON")
def gate(params_file: str, run_dir: str | None, as_json: bool) -> None:
    """The quality gate: is phase 2 complete against the schedule? Exit 0 passed (or overridden), 3 blocked."""
    from .archive import RunArchive
    from .gate import run_gate

    params = _params(params_file)
    try:
        archive = RunArchive.open(run_dir) if run_dir else _new_archive(params, "gate")
        result = run_gate(params, archive=archive, params_file=params_file, raise_on_block=False)
    except (ParamsError, FileNotFoundError, FileExistsError) as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2, default=str))
    else:
        click.echo(result.reason())
        if result.status != "passed":
            click.echo(result.missing_frame().to_string(index=False))
        for w in result.waived:
            click.echo(f"waived: {w['source']} {w['date']} ({w['reason']}; approved by {w['approved_by']})")
    sys.exit(EXIT_BLOCKED if result.status == "blocked" else EXIT_OK)



@main.command()
@params_option
@click.option("--start-date", default=None, help="override start_date (YYYY-MM-DD)")
@click.option("--end-date", default=None, help="override end_date (YYYY-MM-DD)")
@click.option("--dates", default=None, help="derive exactly these game dates, comma-separated (default: the missing ones)")
@click.option("--chunk-days", type=int, default=None, help="override chunk_days (1 = date by date)")
@click.option("--tables", default=None, help="override tables, comma-separated bare names")
@click.option("--backfill-mode", is_flag=True, default=None, help="skip the defensive checks (backfill_mode: true)")
@click.option("--no-strict", is_flag=True, default=None, help="skip the defensive checks (strict_mode: false)")
def derive(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
           tables: str | None, backfill_mode: bool | None, no_strict: bool | None) -> None:
    """Derive phases 3 and 4 (analytics, precompute) for the missing dates; stop at the first error.

    Exit 0 succeeded, 1 a chunk failed (the message names the date, processor and fix)."""
    from .derive import run_derive, waived_skip_dates

    params = _params(params_file, start_date=start_date, end_date=end_date, chunk_days=chunk_days,
                     tables=_csv(tables), backfill_mode=backfill_mode or None,
                     strict_mode=False if no_strict else None)
    wanted = _dates_option(dates)
    result = _locked_stage(params, None, "derive", lambda archive: run_derive(
        params, dates=wanted, skip_dates=waived_skip_dates(params), params_file=params_file))
    click.echo(str(result))
    if result.processed_dates or result.error:
        click.echo(result.timing_table().to_string(index=False))
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


def _dates_option(dates: str | None):
    from datetime import date as _date

    try:
        return [_date.fromisoformat(d) for d in _csv(dates)] if dates else None
    except ValueError as e:
        click.echo(f"--dates: {e}; give dates as YYYY-MM-DD,YYYY-MM-DD", err=True)
        sys.exit(EXIT_USAGE)


def _locked_stage(params, run_dir: str | None, stage: str, fn):
    """Run one stage under the warehouse lock (only one writer at a time); the archive is optional (``--run-dir``)."""
    from .archive import RunArchive, new_run_id
    from .lock import RunLockedError, WarehouseLock

    try:
        archive = RunArchive.open(run_dir) if run_dir else None
        with WarehouseLock(params, archive.run_id if archive else new_run_id(params.run_name, stage)):
            return fn(archive)
    except RunLockedError as e:
        click.echo(f"refused: {e}", err=True)
        sys.exit(EXIT_LOCKED)
    except FileNotFoundError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)


@main.command()
@params_option
@click.option("--start-date", default=None, help="first game date (YYYY-MM-DD)")
@click.option("--end-date", default=None, help="last game date (YYYY-MM-DD)")
@click.option("--dates", default=None, help="only these game dates (YYYY-MM-DD,YYYY-MM-DD)")
@click.option("--chunk-days", type=int, default=None, help="calendar days per chunk (one transaction each)")
@click.option("--repredict", is_flag=True, default=None, help="predict every player-game in range, not only missing ones")
@click.option("--run-dir", default=None, type=click.Path(file_okay=False), help="record the stage in this run archive")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def predict(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
            repredict: bool | None, run_dir: str | None, no_progress: bool) -> None:
    """Predict phase 5 for player-games with features and no prediction; stop at the first error.

    Exit 0 succeeded, 1 a chunk failed (the message names the dates)."""
    from .predict import PredictError, run_predict

    params = _params(params_file, start_date=start_date, end_date=end_date, chunk_days=chunk_days, repredict=repredict)
    wanted = _dates_option(dates)
    try:
        result = _locked_stage(params, run_dir, "predict",
                               lambda archive: run_predict(params, archive=archive, progress=not no_progress, dates=wanted))
    except PredictError as e:
        click.echo(f"FAILED: {e}", err=True)
        sys.exit(EXIT_FAILED)
    s = result.summary()
    click.echo(f"predicted {s['player_games']} player-games on {s['dates']} dates "
               f"({s['first_date'] or '-'} .. {s['last_date'] or '-'}) in {s['chunks']} chunks, "
               f"{s['rows_written']['nba_predictions.player_prop_predictions']} rows, {s['models_fitted']} models fitted, {s['seconds']} s")
    for system_id, n in sorted(s["rows_by_system"].items()):
        click.echo(f"  {system_id}: {n}")
    sys.exit(EXIT_OK)


@main.command()
@params_option
@click.option("--start-date", default=None, help="first game date (YYYY-MM-DD)")
@click.option("--end-date", default=None, help="last game date (YYYY-MM-DD)")
@click.option("--dates", default=None, help="only these game dates (YYYY-MM-DD,YYYY-MM-DD)")
@click.option("--chunk-days", type=int, default=None, help="calendar days per chunk (one transaction each)")
@click.option("--regrade", is_flag=True, default=None, help="grade every eligible prediction in range again")
@click.option("--run-dir", default=None, type=click.Path(file_okay=False), help="record the stage in this run archive")
@click.option("--json", "as_json", is_flag=True, help="print the stage summary as JSON")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def grade(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
          regrade: bool | None, run_dir: str | None, as_json: bool, no_progress: bool) -> None:
    """Grade phase 5B: predictions of final games without a current grade; print MAE, bias, hit rate.

    Exit 0 succeeded, 1 a chunk failed (the message names the dates)."""
    from .grade import GradeError, run_grade

    params = _params(params_file, start_date=start_date, end_date=end_date, chunk_days=chunk_days, regrade=regrade)
    wanted = _dates_option(dates)
    try:
        result = _locked_stage(params, run_dir, "grade",
                               lambda archive: run_grade(params, archive=archive, progress=not no_progress, dates=wanted))
    except GradeError as e:
        click.echo(f"FAILED: {e}", err=True)
        sys.exit(EXIT_FAILED)
    s = result.summary()
    if as_json:
        click.echo(json.dumps(s, indent=2, default=str))
        sys.exit(EXIT_OK)
    click.echo(f"graded {s['graded']} predictions, voided {s['voided']} (player did not play) on {s['dates']} dates; "
               f"not eligible: {s['not_eligible']}; {s['seconds']} s")
    metrics = result.metrics(["system_id"])
    if not metrics.empty:
        cols = ["system_id", "graded", "voided", "mae", "bias", "calls", "hit_rate", "hit_rate_low", "hit_rate_high",
                "pushes", "passes", "no_line"]
        click.echo(metrics[cols].round(3).to_string(index=False))
    if not result.completeness.empty:
        click.echo(result.completeness[["season_year", "eligible", "graded", "voided", "completeness_pct"]]
                   .round(2).to_string(index=False))
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
