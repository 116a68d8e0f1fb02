"""The ``runbook`` command. Each subcommand is a thin wrapper over an nbcore function.

Exit codes (one table, ``EXIT_CODES``; README "Exit codes"): 0 success, 1 a stage failed, 2 bad
parameters or usage, 3 a gate blocked the run, 4 another run holds the warehouse lock (nothing was
started), 5 ``status --check`` found open dates; a run stopped by a signal exits 130 (SIGINT), 143
(SIGTERM) or 129 (SIGHUP). They come from the error classes (``nbcore.errors.exit_code_for``): a
subcommand raises a ``RunbookError`` and ``RunbookGroup`` prints its message and exits with its
code. Any other exception is a bug and shows its traceback (exit 1); it is never reported as
"usage". Stage and step names come from ``nbcore.stages``.

Every command that prints data takes ``--json`` (one JSON document on stdout, nothing else);
tables are drawn with rich and never show NaN or None. The read-only commands (status, plan, why)
import only what they need: heavy modules are imported inside the command that uses them.
"""
from __future__ import annotations

import json
import math
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

#: every exit code of ``runbook``, what it means (the README's table says the same)
EXIT_CODES = {
    0: "success",
    1: "a stage failed (the message names the stage, date and fix); a bug shows a traceback",
    2: "bad parameters or usage: nothing was started or written",
    3: "the gate blocked the run (what is missing and the retry command are printed)",
    4: "another run holds the warehouse lock (it is named); nothing was started",
    5: "status --check: some expected date is missing, stale, failed or blocked",
    129: "stopped by SIGHUP at a chunk boundary (run interrupted; resume it)",
    130: "stopped by SIGINT (Ctrl-C) at a chunk boundary (run interrupted; resume it)",
    143: "stopped by SIGTERM at a chunk boundary (run interrupted; resume it)",
}


def _exits(*codes: int) -> str:
    """An ``Exit codes`` paragraph for a command's help, kept as written (click's ``\\b``)."""
    return "\b\nExit codes:\n" + "\n".join(f"  {c:>3}  {EXIT_CODES[c]}" for c in codes)


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
    metavar="FILE", help="run parameters (a YAML file; relative paths in it resolve against the project holding it)",
)


def json_option(what: str):
    """``--json``: print ``what`` as one JSON document instead of the terminal view."""
    return click.option("--json", "as_json", is_flag=True, help=f"print {what} as JSON (one document on stdout)")


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default))


def _json_default(o):
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    """``1 date``, ``2 dates``, ``1,234 rows``."""
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _cell(value, plain: bool = False) -> str:
    """A table cell: never ``NaN`` or ``None`` (an empty value is ``-``); names escaped (``show``); numbers
    with thousands separators unless ``plain`` (a season or a year)."""
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return "-"
    if getattr(getattr(value, "dtype", None), "kind", "") in ("i", "u", "f", "b"):  # a numpy number
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if plain else f"{value:,}"
    return show(value)


def print_table(rows: list[dict], columns: list[str], title: str | None = None, right: tuple[str, ...] = ()) -> None:
    """Rows as a rich table on stdout (no NaN/None: ``_cell``)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):  # the first column (an id, a name) is never broken
        table.add_column(c, justify="right" if c in right else "left", no_wrap=i == 0, overflow="fold")
    for r in rows:
        table.add_row(*[_cell(r.get(c), plain=("season" in c or "year" in c)) for c in columns])
    console = Console(highlight=False)
    if not console.is_terminal:  # a file or a pipe: whole lines, not the 80 columns rich assumes
        console = Console(highlight=False, width=200)
    console.print(table)


def print_frame(frame, title: str | None = None) -> None:
    """A DataFrame as a rich table (numbers right-aligned)."""
    cols = [str(c) for c in frame.columns]
    numeric = tuple(str(c) for c in frame.columns if frame[c].dtype.kind in "iuf")
    rows = [{str(k): v for k, v in r.items()} for r in frame.astype(object).to_dict("records")]
    print_table(rows, cols, title, right=numeric)


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


_GROUP_HELP = """Backfill runbook for the NBA props pipeline: find gaps, load, gate, derive, predict, grade, report.

Every command that prints data takes --json. `runbook COMMAND --help` says what each option takes.

""" + _exits(*EXIT_CODES)


@click.group(cls=RunbookGroup, context_settings={"help_option_names": ["-h", "--help"]}, help=_GROUP_HELP)
@click.version_option(package_name="backfill-runbook", prog_name="runbook",
                      help="print the installed version (runbook, version X) and exit 0")
def main() -> None:
    pass


@main.command(help=f"""Completeness matrix: season x table, present / expected game dates (expected = the
schedule's completed games), each cell marked with its waived, stale, failed and blocked dates, then
the missing dates (the sanity checks with --checks). Read-only: the warehouse is opened read-only.

{_exits(0, 2, 4, 5)}""")
@params_option
@json_option("the completeness matrix (each table's partition `states`, checks, findings, open_errors)")
@click.option("--check", is_flag=True,
              help="exit 5 when any expected date is missing, stale, failed or blocked (waived is fine): "
                   "for a scheduled job that must notice holes")
@click.option("--checks", "run_checks", is_flag=True,
              help="also run the sanity checks (keys, values, reconciliations; always in --json and in a "
                   "run's validate steps): about half of the command's time on a full warehouse")
def status(params_file: str, as_json: bool, check: bool, run_checks: bool) -> None:
    from .validate import print_status, run_validate
    from .warehouse import open_for_reading

    params = _params(params_file, "read", "status")
    with open_for_reading(params) as wh:  # read-only: status never takes the DuckDB file from a running backfill
        # the terminal view is the state (what a person polls mid-backfill); the sanity checks are
        # validate's, run here on request; grading completeness is in the JSON only
        result = run_validate(params, wh, progress=False, checks=as_json or run_checks, grading=as_json)
    if as_json:
        _echo_json(result.to_status_json())
    else:
        print_status(result, checks=run_checks)
    from .state import OPEN_STATES

    if check and result.states is not None and result.states.frame.state.isin(list(OPEN_STATES)).any():
        sys.exit(EXIT_OPEN)


@main.command(help=f"""Build the demo league (bucket + warehouse in its before state), then run the whole
runbook on it and print the report's path. The before state is built by the stage code without any
run archive: afterwards `runbook runs` lists only the demo's run.

{_exits(0, 1, 2, 3, 4, 129, 130, 143)}""")
@params_option
@click.option("--build-only", is_flag=True, help="build the demo bucket and warehouse, run nothing")
@click.option("--scale", type=click.Choice(["full", "small"]), default=None,
              help="league size: full (5 seasons) or small (2 short seasons); default: demo.scale of --params")
def demo(params_file: str, build_only: bool, scale: str | None) -> None:
    from .demo.build import build_demo

    params = _params(params_file, "build", "demo", _notebooks=not build_only)
    if scale:
        params = params.model_copy(update={"demo": params.demo.model_copy(update={"scale": scale})})
    click.echo(f"building the demo league ({params.demo.scale} scale, seed {params.demo.seed}) ...")
    from .lock import WarehouseLock

    with WarehouseLock(params, f"demo-build-{params.run_name}"):  # rebuilding deletes the warehouse
        built = build_demo(params)
    s = built.summary()
    click.echo(f"  {s['games']:,} games on {s['game_dates']:,} dates, {s['player_game_rows']:,} player-game rows")
    click.echo(f"  bucket:    {show(s['bucket'])}\n  warehouse: {show(s['warehouse'])}  ({s['timings_s']['total']} s)")
    if build_only:
        return
    from .runbook import run_runbook

    outcome = run_runbook(params, echo=click.echo)
    click.echo(f"report: {show(outcome.report_path or outcome.run_dir / 'manifest.json')}")
    sys.exit(outcome.exit_code)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@main.command(help=f"""Run the runbook: each stage notebook, in order, into runs/<run_id>/ (plan.json,
chunks.jsonl, run.log, the executed notebooks, report.html).

{_exits(0, 1, 2, 3, 4, 129, 130, 143)}""")
@params_option
@click.option("--run-id", default=None, metavar="RUN_ID",
              help="archive folder name: ASCII letters, digits, . _ - (default: <timestamp>-<run_name>)")
@_from_option("start at this step or stage (earlier ones are not run)")
@click.option("--start-date", default=None, metavar="YYYY-MM-DD", help="override start_date")
@click.option("--end-date", default=None, metavar="YYYY-MM-DD", help="override end_date")
@click.option("--stages", default=None, metavar="LIST", help=f"override stages, comma-separated ({','.join(STAGE_NAMES)})")
@click.option("--tables", default=None, metavar="LIST", help="override tables, comma-separated bare names")
def run(params_file: str, run_id: str | None, from_stage: str | None, start_date: str | None,
        end_date: str | None, stages: str | None, tables: str | None) -> None:
    params = _params(params_file, "write", "run", run_id, True, start_date=start_date, end_date=end_date,
                     stages=_csv(stages), tables=_csv(tables))
    from .runbook import run_runbook

    outcome = run_runbook(params, run_id=run_id, from_stage=from_stage, echo=click.echo)
    sys.exit(outcome.exit_code)


@main.command(help=f"""Continue a stopped run in its own archive, from the stage that stopped (or --from STAGE).
Also takes over the archive of a stage run on its own (`runbook gate` prints its id).

The run keeps its archived parameters; --set KEY=VALUE changes one for the rest of the run
(a waiver file written after the gate blocked, gate_override and gate_override_reason, ...).
A resume refused because the run is still live (exit 4) writes nothing.

{_exits(0, 1, 2, 3, 4, 129, 130, 143)}""")
@click.argument("run_id")
@_from_option("restart from this step or stage instead of the one that stopped")
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="folder holding the runs (default: archive_dir of --params)")
@click.option("--set", "changes", multiple=True, metavar="KEY=VALUE",
              help="change a parameter for the rest of the run, e.g. --set waivers=params/waivers.yaml (repeatable)")
@params_option
def resume(run_id: str, from_stage: str | None, archive_dir: str | None, changes: tuple[str, ...], params_file: str) -> None:
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


@main.command(help=f"""What a run would write, per stage and table (dates, stale dates, games, expected rows,
chunks). Writes nothing: the warehouse is opened read-only.

{_exits(0, 2, 4)}""")
@params_option
@json_option("the plan (per stage and table, the targets with their causes, the chunks)")
def plan(params_file: str, as_json: bool) -> None:
    from .plan import plan_run

    result = plan_run(_params(params_file, "read", "plan"))
    if as_json:
        _echo_json(result.to_json())
    else:
        result.print()


#: the columns ``runbook runs`` shows, in order
RUNS_COLUMNS = ["run_id", "kind", "status", "range", "started", "duration", "stopped at"]


def _duration(seconds) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _started(value) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC), as the manifest has it."""
    if not value:
        return "-"
    text = str(value)
    return text[:19].replace("T", " ") + (" UTC" if text.endswith(("+00:00", "Z")) else "")


@main.command(help=f"""List archived runs, newest first (by start time, whatever their name): id, kind (run, or
interactive for a stage run by hand), status, date range, start, duration, where it stopped.

{_exits(0, 2)}""")
@params_option
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="folder holding the runs (default: archive_dir of --params)")
@json_option("the runs (a list of objects: run_id, name, kind, status, range, started_at, seconds, stopped_at, report)")
def runs(params_file: str, archive_dir: str | None, as_json: bool) -> None:
    from .archive import list_runs

    records = list_runs(archive_dir or _params(params_file).archive_dir, records=True)
    if as_json:
        _echo_json(records)
    elif not records:
        click.echo("no runs archived yet")
    else:  # folder names and manifests are not ours to trust: every cell goes through show()
        print_table([{"run_id": r["run_id"], "kind": r["kind"], "status": r["status"], "range": r["range"],
                      "started": _started(r["started_at"]), "duration": _duration(r["seconds"]),
                      "stopped at": r["stopped_at"]} for r in records], RUNS_COLUMNS, right=("duration",))


@main.command(help=f"""Print a run's run.log (timestamped steps, chunks, load batches, signals); --follow
keeps printing new lines and ends when the run ends.

{_exits(0, 2)}""")
@click.argument("run_id")
@params_option
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="folder holding the runs (default: archive_dir of --params)")
@click.option("--follow", "-f", is_flag=True, help="keep printing new lines until the run ends")
def logs(run_id: str, params_file: str, archive_dir: str | None, follow: bool) -> None:
    from .archive import run_alive
    from .runbook import find_run
    from .runlog import LOG_FILE, follow as follow_log

    run_dir = find_run(run_id, archive_dir or _params(params_file).archive_dir)

    def ended() -> bool:
        if not follow:
            return True
        try:
            m = json.loads((run_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return False
        return m.get("status") != "running" or not run_alive(m)

    if not (run_dir / LOG_FILE).exists() and not follow:
        raise UsageError(f"{show(run_dir)} has no {LOG_FILE} (a run made before run logs existed, or not started)")
    for line in follow_log(run_dir, ended):
        click.echo(line)


@main.command(name="open", help=f"""Print the path of a run's report: report.html (open it in any browser), else
summary.md or manifest.json for a run that did not get that far. It opens nothing itself, so it works
over SSH and in scripts: e.g. `xdg-open "$(runbook open RUN_ID)"`.

{_exits(0, 2)}""")
@click.argument("run_id")
@params_option
@click.option("--archive-dir", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="folder holding the runs (default: archive_dir of --params)")
def open_(run_id: str, params_file: str, archive_dir: str | None) -> None:
    from .runbook import find_run, report_path

    click.echo(show(report_path(find_run(run_id, archive_dir or _params(params_file).archive_dir))))


@main.command(help=f"""Explain one table on one game date: its state and cause, which games have rows, each
upstream table's state (and gaps in its lookback window), the run history with errors, waivers, and
the `runbook run` command that fills it. Read-only: the warehouse is opened read-only.

TABLE is a bare table name (player_game_summary) or dataset.table; DAY is YYYY-MM-DD.

{_exits(0, 2, 4)}""")
@click.argument("table")
@click.argument("day")
@params_option
@json_option("the explanation (state, cause, games, upstream, history, waived, command, notes)")
def why(table: str, day: str, params_file: str, as_json: bool) -> None:
    from . import schema
    from .why import why as explain

    params = _params(params_file, "read", "why")
    try:
        schema.table(table)
    except KeyError as e:
        raise UsageError(str(e).strip('"')) from None
    result = explain(params, table, _iso_date(day, "DAY"), params_file=params_file)
    if as_json:
        _echo_json(result.to_json())
    else:
        click.echo(result.explain())


@main.command(help=f"""Release the warehouse lock left by a run whose process is gone.

On BigQuery the lock is the lease row in nba_reference.runbook_lease: an expired lease is
released (and the session its holder left open aborted); --force releases any.

{_exits(0, 2, 4)}""")
@params_option
@click.option("--force", is_flag=True, help="release even if the holder may be alive (e.g. held from another host, "
                                            "or a BigQuery lease that has not expired)")
def unlock(params_file: str, force: bool) -> None:
    from .lock import unlock as release

    holder = release(_params(params_file), force=force)
    click.echo(f"released the lock of {show(holder.describe())}" if holder else "the warehouse was not locked")


@contextmanager
def _hand_run_manifest(archive, params, stage: str):
    """The manifest of a stage run by hand into a new archive (``kind: interactive``, as every stage run
    by hand has: ``nbcore.stage_run``), whose status is the stage's verdict: a gate that blocked is
    ``blocked`` (exit 3), a load that left dates failed is ``failed`` (exit 1)."""
    from .stage_run import _interactive_manifest

    with _interactive_manifest(archive, params, stage):
        yield
    rec = archive.stage_record(stage) or {}
    verdict = ("blocked", EXIT_BLOCKED) if rec.get("status") == "blocked" else \
        ("failed", EXIT_FAILED) if rec.get("complete") is False else None
    if verdict is not None:
        m = archive.manifest()
        m.update(status=verdict[0], exit_code=verdict[1], reason=rec.get("reason") or m.get("reason"))
        for entry in m.get("stages", []):
            entry["status"] = verdict[0]
        archive.write_manifest(m)


@contextmanager
def _lock_then_archive(params, run_dir: str | None, stage: str):
    """The warehouse lock first, then the archive (``--run-dir`` or a new one): a command refused
    because another run holds the warehouse (exit 4) leaves no ``runs/<ts>-<stage>/`` behind. A new
    archive is a stage run by hand: it gets a ``manifest.json`` (``kind: interactive``, its status
    the stage's), so ``runbook runs`` lists it and ``runbook resume`` can take it over."""
    from .archive import RunArchive, unique_run_id
    from .lock import WarehouseLock

    run_id = Path(run_dir).name if run_dir else unique_run_id(params.archive_dir, params.run_name, stage)
    with WarehouseLock(params, run_id):
        if run_dir:
            yield RunArchive.open(run_dir)
            return
        archive = RunArchive.create(params, run_id)
        with _hand_run_manifest(archive, params, stage):
            yield archive


@main.command(help=f"""Load phase 1 files into the raw tables for missing dates (retry once, continue, log
failures to failures.csv in the archive).

{_exits(0, 1, 2, 4)}""")
@params_option
@click.option("--retry-failed", "retry_failed", default=None, metavar="RUN_ID",
              help="load only the dates left failed in that run's failures.csv")
@click.option("--reload", is_flag=True, default=None, help="load every expected date in range, not only the missing ones")
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="write into this run archive (default: a new runs/<timestamp>-<run_name>-load)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@json_option("the stage record (loaded, retried, failed, waived per source, rows written, failures) and the archive")
def load(params_file: str, retry_failed: str | None, reload: bool | None, run_dir: str | None, no_progress: bool,
         as_json: bool) -> None:
    from .load import read_failure_log, run_load

    params = _params(params_file, "write", "load", retry_failed=retry_failed, reload=reload or None)
    if params.retry_failed:
        read_failure_log(params, params.retry_failed)  # a wrong run id fails (ParamsError) before any archive is made
    with _lock_then_archive(params, run_dir, "load") as archive:
        result = run_load(params, archive=archive, progress=not no_progress and not as_json)
    if as_json:
        _echo_json({**result.summary(), "archive": str(archive.path)})
    else:
        print_frame(result.summary_table())
        click.echo(f"archive: {show(archive.path)}")
    for o in result.failed:
        click.echo(f"FAILED {o.date} {o.source}: {o.reason}", err=True)
    if result.failed:
        click.echo(f"retry with: {result.retry_command()}", err=True)
    sys.exit(EXIT_OK if result.ok else StageFailed.exit_code)


@main.command(help=f"""The quality gate: is phase 2 complete against the schedule (waivers allowed)? Run on its
own it records its verdict in an archive of its own, runs/<timestamp>-<run_name>-gate (listed by
`runbook runs`); when it blocks, it prints the retry: `runbook load ... && runbook resume <its id>`.

{_exits(0, 2, 3, 4)}""")
@params_option
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="record stages/gate.json in this run archive (default: a new runs/<timestamp>-<run_name>-gate)")
@json_option("the gate record (status, missing, waived, warnings, retry commands)")
def gate(params_file: str, run_dir: str | None, as_json: bool) -> None:
    from .gate import run_gate

    params = _params(params_file, "write", "gate")
    # the gate writes nothing to the warehouse, but judging it while a run loads it would judge half a
    # load and leave an archive saying "blocked": it is refused (exit 4, naming the run) like a writer
    with _lock_then_archive(params, run_dir, "gate") as archive:
        result = run_gate(params, archive=archive, params_file=params_file, raise_on_block=False)
    if as_json:
        _echo_json(result.summary())
    else:
        click.echo(result.reason())
        if result.status != "passed":
            print_frame(result.missing_frame())
        for w in result.waived:
            click.echo(f"waived: {w['source']} {w['date']} ({w['reason']}; approved by {w['approved_by']})")
    sys.exit(GateBlockedError.exit_code if result.status == "blocked" else EXIT_OK)


@main.command(help=f"""Derive phases 3 and 4 (analytics, precompute) for the missing and stale dates, in
chunks; stop at the first failing chunk (the message names the date, processor and fix).

{_exits(0, 1, 2, 4)}""")
@params_option
@click.option("--start-date", default=None, metavar="YYYY-MM-DD", help="override start_date")
@click.option("--end-date", default=None, metavar="YYYY-MM-DD", help="override end_date")
@click.option("--dates", default=None, metavar="LIST",
              help="derive exactly these game dates, comma-separated YYYY-MM-DD (default: the missing and stale ones)")
@click.option("--chunk-days", type=int, default=None, metavar="N", help="override chunk_days (1 = date by date)")
@click.option("--tables", default=None, metavar="LIST", help="override tables, comma-separated bare names")
@click.option("--backfill-mode", is_flag=True, default=None, help="skip the defensive checks (backfill_mode: true)")
@click.option("--no-strict", is_flag=True, default=None, help="skip the defensive checks (strict_mode: false)")
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="record the stage in this run archive (default: a new runs/<timestamp>-<run_name>-derive)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@json_option("the stage record (dates, chunks, rows written and deleted per table, seconds)")
def derive(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
           tables: str | None, backfill_mode: bool | None, no_strict: bool | None, run_dir: str | None,
           no_progress: bool, as_json: bool) -> None:
    from .derive import run_derive, waived_skip_dates

    params = _params(params_file, "write", "derive", start_date=start_date, end_date=end_date, chunk_days=chunk_days,
                     tables=_csv(tables), backfill_mode=backfill_mode or None,
                     strict_mode=False if no_strict else None)
    wanted = _dates_option(dates)
    result = _locked_stage(params, run_dir, "derive", lambda archive: run_derive(
        params, archive=archive, progress=not no_progress and not as_json, dates=wanted,
        skip_dates=waived_skip_dates(params), params_file=params_file, raise_on_failure=False))
    if as_json:
        _echo_json(result.summary())
    else:
        s = result.summary()
        chunks = s.get("chunks") or []
        rows = sum((s.get("rows_written") or {}).values())
        click.echo(f"derive {s['status']}: {s['dates_processed']:,}/{_plural(s['dates_requested'], 'date')} in "
                   f"{_plural(len(chunks), 'chunk')}, {_plural(rows, 'row')} changed, {s['seconds']} s")
        if result.error:
            click.echo(f"  stopped at {result.failed_date} in {result.failed_processor}: {result.error}")
        if result.processed_dates or result.error:
            print_frame(result.timing_table())
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
    """Run one stage under the warehouse lock (only one writer at a time); the archive is optional
    (``--run-dir``; without it the stage makes its own ``kind: interactive`` archive)."""
    from .archive import RunArchive, new_run_id
    from .lock import WarehouseLock

    archive = RunArchive.open(run_dir) if run_dir else None
    with WarehouseLock(params, archive.run_id if archive else new_run_id(params.run_name, stage)):
        return fn(archive)


@main.command(help=f"""Predict phase 5 for player-games with features and no prediction (and stale ones), in
chunks; stop at the first error (the message names the dates).

{_exits(0, 1, 2, 4)}""")
@params_option
@click.option("--start-date", default=None, metavar="YYYY-MM-DD", help="first game date")
@click.option("--end-date", default=None, metavar="YYYY-MM-DD", help="last game date")
@click.option("--dates", default=None, metavar="LIST", help="only these game dates, comma-separated YYYY-MM-DD")
@click.option("--chunk-days", type=int, default=None, metavar="N", help="calendar days per chunk (one transaction each)")
@click.option("--repredict", is_flag=True, default=None, help="predict every player-game in range, not only missing ones")
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="record the stage in this run archive (default: a new runs/<timestamp>-<run_name>-predict)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@json_option("the stage record (dates, chunks, player-games, rows changed per system, models fitted, seconds)")
def predict(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
            repredict: bool | None, run_dir: str | None, no_progress: bool, as_json: bool) -> None:
    from .predict import PredictError, run_predict

    params = _params(params_file, "write", "predict", start_date=start_date, end_date=end_date, chunk_days=chunk_days,
                     repredict=repredict)
    wanted = _dates_option(dates)
    try:
        result = _locked_stage(params, run_dir, "predict", lambda archive: run_predict(
            params, archive=archive, progress=not no_progress and not as_json, dates=wanted))
    except PredictError as e:  # predict's own failure type, in the runbook's family (exit 1)
        raise StageFailed(str(e), stage="predict") from e
    s = result.summary()
    if as_json:
        _echo_json(s)
        sys.exit(EXIT_OK)
    changed = sum((s.get("rows_written") or {}).values())
    span = f"{s['first_date']} .. {s['last_date']}" if s.get("first_date") else "no dates"
    click.echo(f"predicted {_plural(s['player_games'], 'player-game')} on {_plural(s['dates'], 'date')} ({span}) "
               f"in {_plural(len(s['chunks']), 'chunk')}: {_plural(changed, 'row')} changed, "
               f"{_plural(s['models_fitted'], 'model')} fitted, {s['seconds']} s")
    for system_id, n in sorted(s["rows_by_system"].items()):
        click.echo(f"  {system_id}: {_plural(n, 'row')} changed")
    sys.exit(EXIT_OK)


@main.command(help=f"""Grade phase 5B: predictions of final games without a current grade; print MAE, bias and
hit rate per system, and grading completeness per season.

{_exits(0, 1, 2, 4)}""")
@params_option
@click.option("--start-date", default=None, metavar="YYYY-MM-DD", help="first game date")
@click.option("--end-date", default=None, metavar="YYYY-MM-DD", help="last game date")
@click.option("--dates", default=None, metavar="LIST", help="only these game dates, comma-separated YYYY-MM-DD")
@click.option("--chunk-days", type=int, default=None, metavar="N", help="calendar days per chunk (one transaction each)")
@click.option("--regrade", is_flag=True, default=None, help="grade every eligible prediction in range again")
@click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="record the stage in this run archive (default: a new runs/<timestamp>-<run_name>-grade)")
@json_option("the stage record (graded, voided, not eligible, completeness and metrics per system)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def grade(params_file: str, start_date: str | None, end_date: str | None, dates: str | None, chunk_days: int | None,
          regrade: bool | None, run_dir: str | None, as_json: bool, no_progress: bool) -> None:
    from .grade import GradeError, run_grade

    params = _params(params_file, "write", "grade", start_date=start_date, end_date=end_date, chunk_days=chunk_days,
                     regrade=regrade)
    wanted = _dates_option(dates)
    try:
        result = _locked_stage(params, run_dir, "grade", lambda archive: run_grade(
            params, archive=archive, progress=not no_progress and not as_json, dates=wanted))
    except GradeError as e:  # grade's own failure type, in the runbook's family (exit 1)
        raise StageFailed(str(e), stage="grade") from e
    s = result.summary()
    if as_json:
        _echo_json(s)
        sys.exit(EXIT_OK)
    ne = s.get("not_eligible") or {}
    waiting = [f"{_plural(int(ne.get(k) or 0), 'prediction')} {what}" for k, what in
               (("not_final", "of games not final yet"), ("awaiting_analytics", "awaiting analytics"))
               if ne.get(k)]
    click.echo(f"graded {_plural(s['graded'], 'prediction')} and voided {s['voided']:,} (player did not play) on "
               f"{_plural(s['dates'], 'date')} in {s['seconds']} s"
               + (f"; not eligible yet: {', '.join(waiting)}" if waiting else ""))
    metrics = result.metrics(["system_id"])
    if not metrics.empty:
        cols = ["system_id", "graded", "voided", "mae", "bias", "calls", "hit_rate", "hit_rate_low", "hit_rate_high",
                "pushes", "passes", "no_line"]
        print_frame(metrics[cols].round(3), title="Accuracy per system")
    if not result.completeness.empty:
        print_frame(result.completeness[["season_year", "eligible", "graded", "voided", "completeness_pct"]].round(2),
                    title="Grading completeness per season")
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
