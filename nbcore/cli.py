"""The ``runbook`` command. Each subcommand is a thin wrapper over an nbcore function.

Exit codes: 0 success, 1 a stage failed, 2 bad parameters or usage, 3 a gate blocked the run.
"""
from __future__ import annotations

import json
import sys

import click

from .params import ParamsError, load_params

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BLOCKED = 0, 1, 2, 3

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
    built = build_demo(params)
    s = built.summary()
    click.echo(f"  {s['games']} games on {s['game_dates']} dates, {s['player_game_rows']} player-game rows")
    click.echo(f"  bucket:    {s['bucket']}\n  warehouse: {s['warehouse']}  ({s['timings_s']['total']} s)")
    if build_only:
        return
    from .runbook import run_runbook

    outcome = run_runbook(params)
    sys.exit(outcome.exit_code)


@main.command()
@params_option
def run(params_file: str) -> None:
    """Run the runbook: each stage notebook, in order, into runs/<run_id>/."""
    from .runbook import run_runbook

    outcome = run_runbook(_params(params_file))
    sys.exit(outcome.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
