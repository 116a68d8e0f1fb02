"""Exit codes come from the error classes, in one place: usage 2, stage failed 1, gate blocked 3,
warehouse locked 4; an exception outside the runbook's family is a bug (exit 1, traceback kept),
never "usage". Stage choices come from the registry."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from nbcore import archive
from nbcore.cli import main
from nbcore.errors import (GateBlockedError, RunbookError, StageFailed, UsageError, WarehouseLockedError,
                           exit_code_for)
from nbcore.gate import GateBlocked
from nbcore.lock import RunLockedError
from nbcore.params import ParamsError
from nbcore.stages import STAGE_NAMES, STEP_NAMES


@pytest.mark.parametrize("exc, code", [
    (UsageError("x"), 2), (ParamsError("bad chunk_days"), 2), (StageFailed("chunk 3"), 1),
    (GateBlockedError("raw missing"), 3), (WarehouseLockedError("held"), 4), (RunLockedError("held by run A"), 4),
    (ValueError("a bug"), 1), (KeyError("a bug"), 1), (FileNotFoundError("a bug"), 1),
])
def test_exit_code_for_each_kind_of_failure(exc, code):
    assert exit_code_for(exc) == code


def test_existing_error_classes_joined_the_family_and_keep_their_old_bases():
    assert issubclass(ParamsError, UsageError) and issubclass(ParamsError, ValueError)
    assert issubclass(RunLockedError, WarehouseLockedError) and issubclass(RunLockedError, RuntimeError)
    assert issubclass(GateBlocked, GateBlockedError) and issubclass(GateBlocked, RuntimeError)
    assert all(issubclass(c, RunbookError) for c in (UsageError, StageFailed, GateBlockedError, WarehouseLockedError))


def test_a_bug_is_not_reported_as_usage(tmp_path, monkeypatch):
    def broken(_archive_dir, records=False):
        raise ValueError("column 'seconds' not found")  # a bug deep inside, not the user's input

    monkeypatch.setattr(archive, "list_runs", broken)
    r = CliRunner().invoke(main, ["runs", "--archive-dir", str(tmp_path)])
    assert r.exit_code == 1 and isinstance(r.exception, ValueError)


def test_usage_errors_exit_2_and_say_what_to_do(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["resume", "no-such-run", "--archive-dir", str(tmp_path)])
    assert r.exit_code == 2 and "no run 'no-such-run'" in r.output and "runbook runs" in r.output
    r = runner.invoke(main, ["run", "--from", "derivee"])
    assert r.exit_code == 2 and "derivee" in r.output and "validate_after" in r.output
    from nbcore.warehouse.duckdb import DuckDBWarehouse

    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:  # an existing warehouse: preflight passes
        wh.ensure_schema()
    (tmp_path / "bucket").mkdir()
    pfile = tmp_path / "p.yaml"
    pfile.write_text(f"duckdb_path: {tmp_path / 'w.duckdb'}\nbucket: {tmp_path / 'bucket'}\narchive_dir: {tmp_path / 'runs'}\n")
    r = runner.invoke(main, ["derive", "--params", str(pfile), "--dates", "2024-02-30"])
    assert r.exit_code == 2 and "--dates '2024-02-30'" in r.output and "YYYY-MM-DD" in r.output
    r = runner.invoke(main, ["gate", "--run-dir", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(main, ["why", "no_such_table", "2024-01-01", "--params", str(pfile)])
    assert r.exit_code == 2 and "unknown table 'no_such_table'" in r.output


def test_stage_choices_come_from_the_registry():
    help_text = CliRunner().invoke(main, ["run", "--help"]).output.replace("\n", " ")
    for name in set(STAGE_NAMES) | set(STEP_NAMES):
        assert name in help_text
    assert ",".join(STAGE_NAMES) in help_text.replace(" ", "")
