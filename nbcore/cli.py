"""The ``runbook`` command. Each subcommand is a thin wrapper over an nbcore function.

Exit codes: 0 success, 1 a stage failed, 2 bad parameters or usage, 3 a gate blocked the run,
4 another run holds the warehouse lock (nothing was started); a run stopped by a signal exits
130 (SIGINT), 143 (SIGTERM) or 129 (SIGHUP). They come from the error classes
(``nbcore.errors.exit_code_for``): a subcommand raises a ``RunbookError`` and ``RunbookGroup``
prints its message and exits with its code. Any other exception is a bug and shows its traceback
(exit 1); it is never reported as "usage". Stage and step names come from ``nbcore.stages``.
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .errors import EXIT_OPEN, EXIT_INTERRUPTED, EXIT_SUCCEEDED, GateBlockedError, RunbookError, StageFailed, UsageError, WarehouseLockedError, exit_code_for
from .params import load_params
from .shell import show
from .stages import STAGE_NAMES, STEP_NAMES

# named codes for code that still exits directly (prefer raising the error class)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = EXIT_SUCCEEDED, StageFailed.exit_code, UsageError.exit_code
EXIT_BLOCKED, EXIT_LOCKED = GateBlockedError.exit_code, WarehouseLockedError.exit_code


class RunbookGroup(click.Group):
    """Turns a ``RunbookError`` raised by any subcommand into its message and exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C before a run began (a run itself handles its signals): no traceback
            click.echo("interrupted before any work", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except RunbookError as e:
            prefix = "refused: " if isinstance(e, WarehouseLockedError) else "FAILED: " if isinstance(e, StageFailed) else ""
            click.echo(f"{prefix}{show(e, keep_lines=True)}", err=True)  # a message quoting a bad name stays inert
            ctx.exit(exit_code_for(e))


params_option = click.option(
    "--params", "params_file", type=click.Path(dir_okay=False), default="params/demo.yaml", show_default=True,
    help="run parameters (YAML)",
)


def _params(params_file: str, _check: str | None = None, _command: str = "", _run_id: str | None = None,
            _notebooks: bool = False, **overrides):
    """The run parameters: the file, then the options given; with ``_check`` (read, write, build) also
    what they point at (``nbcore.preflight``). A bad value raises ParamsError (a UsageError: exit 2)."""
    params = load_params(params_file, {k: v for k, v in overrides.items() if v is not None})
    if _check:
        from .preflight import preflight

        preflight(params, _check, command=_command, run_id=_run_id, notebooks=_notebooks)
    return params


def _from_option(help_text: str):
    return click.option("--from", "from_stage", default=None, type=click.Choice(list(dict.fromkeys(STEP_NAMES + STAGE_NAMES))),
                        help=help_text)


@click.group(cls=RunbookGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="backfill-runbook", prog_name="runbook")
def main() -> None:
    """Backfill runbook for the NBA props pipeline: find gaps, load, gate, derive, predict, grade, report."""


@main.command()
@params_option
@click.option("--json", "as_json", is_flag=True, help="print the completeness matrix as JSON (each table's `states`)")
@click.option("--check", is_flag=True,
              help="exit 5 when any expected date is missing, stale, failed or blocked (waived is fine): "
                   "for a scheduled job that must notice holes")
def status(params_file: str, as_json: bool, check: bool) -> None:
    """Completeness matrix: season x table, expected vs present dates, each cell marked with its
    waived, stale, failed and blocked dates (read-only). Exit 0; with --check, 5 when anything is open."""
    from .validate import print_status, run_validate

    params = _params(params_file, "read", "status")
    from .warehouse import open_for_reading

    with open_for_reading(params) as wh:  # read-only: status never takes the DuckDB file from a running backfill
        result = run_validate(params, wh, progress=False)
    if as_json:
        click.echo(json.dumps(result.to_status_json(), indent=2))
    else:
        print_status(result)
    from .state import OPEN_STATES

    if check and result.states is not None and result.states.frame.state.isin(list(OPEN_STATES)).any():
        sys.exit(EXIT_OPEN)


@main.command()
@params_option
@click.option("--build-only", is_flag=True, help="build the demo bucket and warehouse, run nothing")
@click.option("--scale", type=click.Choice(["full", "small"]), default=None, help="override demo.scale")
def demo(params_file: str, build_only: bool, scale: str | None) -> None:
    """Build the demo league (bucket + warehouse before state), then run the whole runbook on it."""
    from .demo.build import build_demo

    params = _params(params_file, "build", "demo", _notebooks=not build_only)
    if scale:
        params = params.model_copy(update={"demo": params.demo.model_copy(update={"scale": scale})})
    click.echo(f"building the demo league ({params.demo.scale} scale, seed {params.demo.seed}) ...")
    from .lock import WarehouseLock

    with WarehouseLock(params, f"demo-build-{params.run_name}"):  # rebuilding deletes the warehouse
        built = build_demo(params)
    s = built.summary()
    click.echo(f"  {s['games']} games on {s['game_dates']} dates, {s['player_game_rows']} player-game rows")
    click.echo(f"  bucket:    {show(s['bucket'])}\n  warehouse: {show(s['warehouse'])}  ({s['timings_s']['total']} s)")
    if build_only:
        return
    from .runbook import run_runbook

    outcome = run_runbook(params, echo=click.echo)
    click.echo(f"report: {show(outcome.report_path or outcome.run_dir / 'manifest.json')}")
    sys.exit(outcome.exit_code)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@main.command()
@params_option
@click.option("--run-id", default=None, help="archive folder name (default: <timestamp>-<run_name>)")
@_from_option("start at this step or stage (earlier ones are not run)")
@click.option("--start-date", default=None, help="override start_date (YYYY-MM-DD)")
@click.option("--end-date", default=None, help="override end_date (YYYY-MM-DD)")
@click.option("--stages", default=None, help=f"override stages, comma-separated ({','.join(STAGE_NAMES)})")
@click.option("--tables", default=None, help="override tables, comma-separated bare names")
def run(params_file: str, run_id: str | None, from_stage: str | None, start_date: str | None,
        end_date: str | None, stages: str | None, tables: str | None) -> None:
    """Run the runbook: each stage notebook, in order, into runs/<run_id>/.

    Exit 0 succeeded, 1 a stage failed, 2 usage, 3 the gate blocked, 4 another run holds the warehouse;
    130/143/129 stopped by SIGINT/SIGTERM/SIGHUP at a chunk boundary (status interrupted; resume it)."""
    params = _params(params_file, "write", "run", run_id, True, start_date=start_date, end_date=end_date,
                     stages=_csv(stages), tables=_csv(tables))
    from .runbook import run_runbook

    outcome = run_runbook(params, run_id=run_id, from_stage=from_stage, echo=click.echo)
    sys.exit(outcome.exit_code)


@main.command()
@click.argument("run_id")
@_from_option("restart from this step or stage instead of the one that stopped")
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False),
              help="folder holding the runs (default: archive_dir of --params)")
@click.option("--set", "changes", multiple=True, metavar="KEY=VALUE",
              help="change a parameter for the rest of the run, e.g. --set waivers=params/waivers.yaml (repeatable)")
@params_option
def resume(run_id: str, from_stage: str | None, archive_dir: str | None, changes: tuple[str, ...], params_file: str) -> None:
    """Continue a stopped run in its own archive, from the stage that stopped (or --from STAGE).

    The run keeps its archived parameters; --set KEY=VALUE changes one for the rest of the run
    (a waiver file written after the gate blocked, gate_override and gate_override_reason, ...)."""
    from .params import parse_yaml_value
    from .runbook import resume_run

    base = archive_dir or _params(params_file).archive_dir
    updates = {}
    for item in changes:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: write KEY=VALUE, e.g. --set waivers=params/waivers.yaml")
        updates[key.strip()] = parse_yaml_value(value, f"--set {key.strip()}") if value.strip() else None
    outcome = resume_run(run_id, from_stage=from_stage, archive_dir=base, echo=click.echo, changes=updates or None)
    sys.exit(outcome.exit_code)


@main.command()
@params_option
@click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
def plan(params_file: str, as_json: bool) -> None:
    """What a run would write, per stage and table (dates, games, expected rows). Writes nothing."""
    from .plan import plan_run

    result = plan_run(_params(params_file, "read", "plan"))
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
    else:  # folder names and manifests are not ours to trust: nothing printed may drive the terminal
        shown = frame.drop(columns=["report"]).map(lambda v: show(v) if isinstance(v, str) else v)
        click.echo(shown.to_string(index=False))


@main.command()
@click.argument("run_id")
@params_option
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), help="default: archive_dir of --params")
@click.option("--follow", "-f", is_flag=True, help="keep printing new lines until the run ends")
def logs(run_id: str, params_file: str, archive_dir: str | None, follow: bool) -> None:
    """Print a run's run.log (timestamped steps, chunks, load batches, signals); --follow tails it."""
    from .runbook import _alive, find_run
    from .runlog import LOG_FILE, follow as follow_log

    run_dir = find_run(run_id, archive_dir or _params(params_file).archive_dir)

    def ended() -> bool:
        if not follow:
            return True
        try:
            m = json.loads((run_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return False
        return m.get("status") != "running" or not _alive(m)

    if not (run_dir / LOG_FILE).exists() and not follow:
        raise UsageError(f"{show(run_dir)} has no {LOG_FILE} (a run made before run logs existed, or not started)")
    for line in follow_log(run_dir, ended):
        click.echo(line)


@main.command(name="open")
@click.argument("run_id")
@params_option
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), help="default: archive_dir of --params")
def open_(run_id: str, params_file: str, archive_dir: str | None) -> None:
    """Print the path of a run's report (report.html; else summary.md or manifest.json)."""
    from .runbook import find_run, report_path

    click.echo(show(report_path(find_run(run_id, archive_dir or _params(params_file).archive_dir))))


@main.command()
@click.argument("table")
@click.argument("day")
@params_option
@click.option("--json", "as_json", is_flag=True)
def why(table: str, day: str, params_file: str, as_json: bool) -> None:
    """Explain a gap: upstream coverage, run history errors, waivers, and the command that fills it."""
    from . import schema
    from .why import why as explain

    params = _params(params_file, "read", "why")
    try:
        schema.table(table)
    except KeyError as e:
        raise UsageError(str(e).strip('"')) from None
    result = explain(params, table, _iso_date(day, "DAY"), params_file=params_file)
    click.echo(json.dumps(result.to_json(), indent=2, default=str) if as_json else result.explain())


@main.command()
@params_option
@click.option("--force", is_flag=True, help="release even if the holder may be alive (e.g. held from another host, "
                                            "or a BigQuery lease that has not expired)")
def unlock(params_file: str, force: bool) -> None:
    """Release the warehouse lock left by a run whose process is gone.

    On BigQuery the lock is the lease row in nba_reference.runbook_lease: an expired lease is
    released (and the session its holder left open aborted); --force releases any."""
    from .lock import unlock as release

    holder = release(_params(params_file), force=force)
    click.echo(f"released the lock of {show(holder.describe())}" if holder else "the warehouse was not locked")


@contextmanager
def _lock_then_archive(params, run_dir: str | None, stage: str):
    """The warehouse lock first, then the archive (``--run-dir`` or a new one): a command refused
    because another run holds the warehouse (exit 4) leaves no ``runs/<ts>-<stage>/`` behind."""
    from .archive import RunArchive, unique_run_id
    from .lock import WarehouseLock

    run_id = Path(run_dir).name if run_dir else unique_run_id(params.archive_dir, params.run_name, stage)
    with WarehouseLock(params, run_id):
        yield RunArchive.open(run_dir) if run_dir else RunArchive.create(params, run_id)


@main.command()
@params_option
@click.option("--retry-failed", "retry_failed", default=None, metavar="RUN_ID",
              help="load only the dates left failed in that run's failures.csv")
@click.option("--reload", is_flag=True, default=None, help="load every expected date in range, not only the missing ones")
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False),
              help="write into this run archive (default: a new runs/<timestamp>-<run_name>-load)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def load(params_file: str, retry_failed: str | None, reload: bool | None, run_dir: str | None, no_progress: bool) -> None:
    """Load phase 1 files into the raw tables for missing dates (retry once, continue, log failures).

    Exit 0 when every (source, date) ended loaded or waived, 1 when some failed (see failures.csv)."""
    from .load import read_failure_log, run_load

    params = _params(params_file, "write", "load", retry_failed=retry_failed, reload=reload or None)
    if params.retry_failed:
        read_failure_log(params, params.retry_failed)  # a wrong run id fails (ParamsError) before any archive is made
    with _lock_then_archive(params, run_dir, "load") as archive:
        result = run_load(params, archive=archive, progress=not no_progress)
    click.echo(result.summary_table().to_string(index=False))
    for o in result.failed:
        click.echo(f"FAILED {o.date} {o.source}: {o.reason}", err=True)
    click.echo(f"archive: {show(archive.path)}")
    if result.failed:
        click.echo(f"retry with: {result.retry_command()}", err=True)
    sys.exit(EXIT_OK if result.ok else StageFailed.exit_code)


@main.command()
@params_option
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False),
              help="record stages/gate.json in this run archive (default: a new runs/<timestamp>-<run_name>-gate)")
@click.option("--json", "as_json", is_flag=True, help="print the gate record as JSON")
def gate(params_file: str, run_dir: str | None, as_json: bool) -> None:
    """The quality gate: is phase 2 complete against the schedule? Exit 0 passed (or overridden), 3 blocked."""
    from .gate import run_gate

    params = _params(params_file, "write", "gate")
    # the gate writes nothing to the warehouse, but judging it while a run loads it would judge half a
    # load and leave an archive saying "blocked": it is refused (exit 4, naming the run) like a writer
    with _lock_then_archive(params, run_dir, "gate") as archive:
        result = run_gate(params, archive=archive, params_file=params_file, raise_on_block=False)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2, default=str))
    else:
        click.echo(result.reason())
        if result.status != "passed":
            click.echo(result.missing_frame().to_string(index=False))
        for w in result.waived:
            click.echo(f"waived: {w['source']} {w['date']} ({w['reason']}; approved by {w['approved_by']})")
    sys.exit(GateBlockedError.exit_code if result.status == "blocked" else EXIT_OK)



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

    params = _params(params_file, "write", "derive", start_date=start_date, end_date=end_date, chunk_days=chunk_days,
                     tables=_csv(tables), backfill_mode=backfill_mode or None,
                     strict_mode=False if no_strict else None)
    wanted = _dates_option(dates)
    result = _locked_stage(params, None, "derive", lambda archive: run_derive(
        params, dates=wanted, skip_dates=waived_skip_dates(params), params_file=params_file, raise_on_failure=False))
    click.echo(str(result))
    if result.processed_dates or result.error:
        click.echo(result.timing_table().to_string(index=False))
    sys.exit(EXIT_OK if result.ok else StageFailed.exit_code)


def _iso_date(value: str, name: str):
    from datetime import date as _date

    try:
        return _date.fromisoformat(value)
    except ValueError as e:
        raise UsageError(f"{name} {value!r}: {e}; give a date as YYYY-MM-DD") from None


def _dates_option(dates: str | None):
    return [_iso_date(d, "--dates") for d in _csv(dates)] if dates else None


def _locked_stage(params, run_dir: str | None, stage: str, fn):
    """Run one stage under the warehouse lock (only one writer at a time); the archive is optional (``--run-dir``)."""
    from .archive import RunArchive, new_run_id
    from .lock import WarehouseLock

    archive = RunArchive.open(run_dir) if run_dir else None
    with WarehouseLock(params, archive.run_id if archive else new_run_id(params.run_name, stage)):
        return fn(archive)


@main.command()
@params_option
@click.option("--start-date", default=None, help="first game date (YYYY-MM-DD)")
@click.option("--end-date", default=None, help="last game date (YYYY-MM-DD)")
@click.option("--dates", default=None, help="only these game dates (YYYY-MM-DD,YYYY-MM-DD)")
@click.option("--chunk-days", type=int, default=None, help="calendar days per chunk (one transaction each)")
@click.option("--repredict", is_flag=True, default=None, help="predict every player-game in range, not only missing ones")
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), help="record the stage in this run archive")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def predict(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
            repredict: bool | None, run_dir: str | None, no_progress: bool) -> None:
    """Predict phase 5 for player-games with features and no prediction; stop at the first error.

    Exit 0 succeeded, 1 a chunk failed (the message names the dates)."""
    from .predict import PredictError, run_predict

    params = _params(params_file, "write", "predict", start_date=start_date, end_date=end_date, chunk_days=chunk_days,
                     repredict=repredict)
    wanted = _dates_option(dates)
    try:
        result = _locked_stage(params, run_dir, "predict",
                               lambda archive: run_predict(params, archive=archive, progress=not no_progress, dates=wanted))
    except PredictError as e:  # predict's own failure type, in the runbook's family (exit 1)
        raise StageFailed(str(e), stage="predict") from e
    s = result.summary()
    click.echo(f"predicted {s['player_games']} player-games on {s['dates']} dates "
               f"({s['first_date'] or '-'} .. {s['last_date'] or '-'}) in {len(s['chunks'])} chunks, "
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
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), help="record the stage in this run archive")
@click.option("--json", "as_json", is_flag=True, help="print the stage summary as JSON")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def grade(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
          regrade: bool | None, run_dir: str | None, as_json: bool, no_progress: bool) -> None:
    """Grade phase 5B: predictions of final games without a current grade; print MAE, bias, hit rate.

    Exit 0 succeeded, 1 a chunk failed (the message names the dates)."""
    from .grade import GradeError, run_grade

    params = _params(params_file, "write", "grade", start_date=start_date, end_date=end_date, chunk_days=chunk_days,
                     regrade=regrade)
    wanted = _dates_option(dates)
    try:
        result = _locked_stage(params, run_dir, "grade",
                               lambda archive: run_grade(params, archive=archive, progress=not no_progress, dates=wanted))
    except GradeError as e:  # grade's own failure type, in the runbook's family (exit 1)
        raise StageFailed(str(e), stage="grade") from e
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
