"""The runbook's single-writer lock on BigQuery is the warehouse's lease row, so it holds across
machines: a runner on another (simulated) host is refused with the holder's name and exit 4, an
expired lease is released by ``runbook unlock`` (any lease with ``--force``), and a resume after
a crash aborts the session the crashed run left open before it writes. Through the loopback
server and the real google-cloud-bigquery client."""
from __future__ import annotations

import os
from datetime import date, timedelta

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from bqserver import BigQueryLoopback
from nbcore import schema
from nbcore.cli import main
from nbcore.errors import exit_code_for
from nbcore.lock import RunLockedError, WarehouseLock, lock_status
from nbcore.params import build_params
from nbcore.warehouse import open_warehouse
from nbcore.warehouse.bigquery import LEASE_ENV
from nbcore.warehouse.lease import Lease

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

PROJECT = "lock-proj"
BOX = "nba_raw.bdl_player_boxscores"


@pytest.fixture(scope="module")
def server():
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        yield srv


def params_for(server, tmp_path, suffix: str, machine: str):
    """One machine's params: its own archive folder (so its own lock files), the shared warehouse."""
    return build_params({"backend": "bigquery", "archive_dir": str(tmp_path / machine / "runs"),
                         "bigquery": {"project": PROJECT, "dataset_suffix": suffix, "api_endpoint": server.endpoint}})


def lease_row(server, suffix: str) -> list[tuple]:
    """The lease row as (run id, host, session id), read by a bystander."""
    params = build_params({"backend": "bigquery", "bigquery": {"project": PROJECT, "dataset_suffix": suffix,
                                                                "api_endpoint": server.endpoint}})
    with open_warehouse(params, run_id="bystander", read_only=True) as wh:
        held = Lease(wh, "bystander").current()
    return [] if held is None else [(held.run_id, held.host, held.session_id)]


def test_a_runner_on_another_host_is_refused_with_the_holders_name_and_exit_4(server, tmp_path):
    first = WarehouseLock(params_for(server, tmp_path, "_two", "a"), "run-a", host="host-a", heartbeat=False).acquire()
    try:
        assert os.environ[LEASE_ENV] == "run-a"  # the stage kernels this driver starts hold it too
        second = WarehouseLock(params_for(server, tmp_path, "_two", "b"), "run-b", host="host-b", heartbeat=False)
        with pytest.raises(RunLockedError, match=r"is locked by run-a|locked by .* on host-a \(run run-a") as e:
            second.acquire()
        assert e.value.holder.host == "host-a" and e.value.holder.run_id == "run-a"
        assert exit_code_for(e.value) == 4
        _, holder, expired = lock_status(params_for(server, tmp_path, "_two", "b"))
        assert (holder.run_id, holder.host, expired) == ("run-a", "host-a", False)
    finally:
        first.release()
    assert LEASE_ENV not in os.environ and lease_row(server, "_two") == []
    # released: the other machine gets it now
    WarehouseLock(params_for(server, tmp_path, "_two", "b"), "run-b", host="host-b", heartbeat=False).acquire().release()


def test_unlock_releases_an_expired_lease_and_any_lease_with_force(server, tmp_path):
    runner = CliRunner()
    params = params_for(server, tmp_path, "_unlock", "ops")
    pfile = tmp_path / "params.yaml"
    pfile.write_text(yaml.safe_dump(params.public_dict()))

    live = WarehouseLock(params_for(server, tmp_path, "_unlock", "a"), "run-live", host="host-a", heartbeat=False)
    live.acquire()
    refused = runner.invoke(main, ["unlock", "--params", str(pfile)])
    assert refused.exit_code == 4 and "run-live" in refused.output and "--force" in refused.output
    forced = runner.invoke(main, ["unlock", "--params", str(pfile), "--force"])
    assert forced.exit_code == 0 and "released the lock of run run-live" in forced.output
    assert lease_row(server, "_unlock") == []
    live.lease.held = False  # its lease is gone; its release has nothing left to remove
    live.release()

    # a holder that died: its lease expired (a TTL in the past), so plain unlock releases it
    dead = WarehouseLock(params_for(server, tmp_path, "_unlock", "c"), "run-dead", host="host-c",
                         lease_ttl=timedelta(seconds=-1), heartbeat=False).acquire()
    dead.lease.wh.close()  # the process is gone: nothing releases it
    assert lock_status(params)[2] is True  # expired
    out = runner.invoke(main, ["unlock", "--params", str(pfile)])
    assert out.exit_code == 0 and "run-dead" in out.output and lease_row(server, "_unlock") == []
    os.environ.pop(LEASE_ENV, None)


def test_a_resume_after_a_crash_aborts_the_open_session_before_writing(server, tmp_path, monkeypatch):
    params = params_for(server, tmp_path, "_resume", "a")
    lock = WarehouseLock(params, "run-1", host=__import__("socket").gethostname(), heartbeat=False).acquire()
    # a stage kernel of the run (it inherits RUNBOOK_LEASE_RUN_ID) writes inside a transaction, then dies
    kernel = open_warehouse(params, run_id="run-1", stage="load")
    assert kernel.lease is not None
    day = date(2024, 1, 2)
    t = schema.table(BOX)
    rows = pd.DataFrame([{**{c: None for c in t.columns}, "game_id": "g1", "game_date": day, "season_year": 2023,
                          "player_id": i, "player_lookup": f"p{i}", "player_name": f"P {i}", "team_abbr": "BOS",
                          "points": i} for i in range(3)])
    tx = kernel.transaction()
    tx.__enter__()
    kernel.replace_range(BOX, day, day, frame=rows)
    assert kernel.query(f"SELECT COUNT(*) AS n FROM {BOX} WHERE game_date = @d", {"d": day}).n[0] == 3
    left_open = kernel._tx.session_id
    assert lease_row(server, "_resume")[0][2] == left_open  # recorded for a resume to abort
    kernel._client = None  # the kernel is killed: no COMMIT, no ROLLBACK
    os.environ.pop(LEASE_ENV, None)  # ... and so is the driver: its lock is never released
    lock.lease = None

    resumed = WarehouseLock(params, "run-1", host=lock.host, heartbeat=False)
    resumed._acquire_lease()  # the resume (its own lock file is the dead driver's, taken over as stale)
    try:
        assert left_open in resumed.lease.wh.aborted_sessions and left_open not in server.engine.sessions
        with open_warehouse(params, run_id="run-1", stage="load") as wh:
            assert wh.row_count(BOX) == 0  # the crashed chunk left nothing
    finally:
        tx.gen.close()  # the killed kernel's transaction object, dropped now rather than by the garbage collector later
        resumed.release()
        lock._held = False
        lock.path.unlink(missing_ok=True)
