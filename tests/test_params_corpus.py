"""A corpus of bad parameters, each refused before any work.

Every case writes a params file (or passes a CLI option) that is wrong in one way and runs the
``runbook`` command on it. Each must exit 2 with a message that names the field and says the
fix, and leave the folder exactly as it was: no archive folder, no warehouse file, no lock file.
The base parameters are valid (a real, empty DuckDB file and a bucket folder), so each case fails
for its own reason only.
"""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from nbcore.cli import main
from nbcore.params import build_params
from nbcore.preflight import preflight

READ_ONLY_DIR = Path("/proc/sys")  # not writable even for root (os.access says so); used when chmod cannot help


def _base(root: Path) -> dict:
    return {"run_name": "corpus", "duckdb_path": str(root / "wh.duckdb"), "bucket": str(root / "bucket"),
            "archive_dir": str(root / "runs"), "seasons": [2023]}


def _read_only_folder(root: Path) -> Path:
    """A folder this process cannot write to: chmod 555 for a normal user, /proc/sys for root."""
    if os.geteuid() != 0:
        d = root / "locked"
        d.mkdir()
        duckdb.connect(str(d / "wh.duckdb")).close()
        d.chmod(0o555)
        return d
    return READ_ONLY_DIR


def _readonly_duckdb(root, data):
    folder = _read_only_folder(root)
    data["duckdb_path"] = str(folder / "wh.duckdb")
    data["create_warehouse"] = True  # root: the file cannot be created there; a user: it exists but the folder is locked


def _set(**kv):
    def apply(root, data):
        data.update(kv)
    return apply


def _drop(key):
    def apply(root, data):
        data.pop(key)
    return apply


def _waivers(text):
    def apply(root, data):
        (root / "w.yaml").write_text(text)
        data["waivers"] = str(root / "w.yaml")
    return apply


def _params_bytes(encode):
    """The params file as ``encode(valid YAML text)`` returns it: another encoding, or extra lines."""
    def apply(root, data):
        return encode(yaml.safe_dump(data))
    return apply


def _waiver_bytes(content: bytes):
    def apply(root, data):
        (root / "w.yaml").write_bytes(content)
        data["waivers"] = str(root / "w.yaml")
    return apply


WAIVER = "  - source: bdl_player_boxscores\n    reason: The feed was down that day.\n    approved_by: jane.doe\n"


def _damaged_duckdb(kind: str):
    """A real DuckDB file with a table of 200,000 rows, then cut short or with a block overwritten."""
    def apply(root, data):
        path = root / "damaged.duckdb"
        con = duckdb.connect(str(path))
        con.execute("CREATE SCHEMA nba_raw; CREATE TABLE nba_raw.t AS SELECT range AS i, md5(range::VARCHAR) AS s "
                    "FROM range(200000)")
        con.close()
        size = path.stat().st_size
        with open(path, "r+b") as f:
            if kind == "truncated":
                f.truncate(size // 2)
            else:
                f.seek(3 * 4096 + 262144 + 100)
                f.write(b"\xab" * 5000)
        data["duckdb_path"] = str(path)
    return apply


def _file_at(key, content=b"not a folder"):
    def apply(root, data):
        (root / "a_file").write_bytes(content)
        data[key] = str(root / "a_file")
    return apply


def _folder_at(key):
    def apply(root, data):
        (root / "a_folder").mkdir()
        data[key] = str(root / "a_folder")
    return apply


# name, mutate(root, data), extra CLI args (default: run), words the message must hold
CASES = [
    ("unknown_key", _set(chunk_size=5), None, ["chunk_size", "unknown key; remove it or check the spelling"]),
    ("season_before_2021", _set(seasons=[2019]), None, ["seasons", "2021 means 2021-22"]),
    ("seasons_not_a_list", _set(seasons="2023"), None, ["seasons", "give a list of season start years"]),
    ("seasons_empty", _set(seasons=[]), None, ["seasons", "selects no season"]),
    ("run_name_with_dotdot", _set(run_name="a..b"), None, ["run_name", "contains '..'"]),
    ("table_typo", _set(tables=["player_game_summry"]), None, ["tables", "known:"]),
    ("tables_not_a_list", _set(tables="player_game_summary"), None, ["tables", "give a list of bare table names"]),
    ("end_before_start", _set(start_date="2024-03-01", end_date="2024-02-01"), None, ["end_date", "swap them"]),
    ("impossible_date", _set(start_date="2024-13-01"), None, ["start_date", "YYYY-MM-DD"]),
    ("chunk_days_zero", _set(chunk_days=0), None, ["chunk_days", "greater than or equal to 1", "e.g. 366"]),
    ("chunk_days_true", _set(chunk_days=True), None, ["chunk_days", "yes/no value", "number of days per chunk"]),
    ("chunk_days_words", _set(chunk_days="thirty"), None, ["chunk_days", "number of days per chunk"]),
    ("backend_unknown", _set(backend="postgres"), None, ["backend", "give duckdb or bigquery"]),
    ("bigquery_without_section", _set(backend="bigquery"), None, ["bigquery", "section (project, ...) is missing"]),
    ("bigquery_section_on_duckdb", _set(bigquery={"project": "my-project"}), None, ["bigquery", "set backend: bigquery"]),
    ("bigquery_without_project", _set(backend="bigquery", bigquery={"location": "US"}), None,
     ["bigquery.project", "GCP project id"]),
    ("bigquery_bytes_true", _set(backend="bigquery", bigquery={"project": "p", "maximum_bytes_billed": True}), None,
     ["bigquery.maximum_bytes_billed", "yes/no value"]),
    ("stage_typo", _set(stages=["validate", "lod"]), None, ["stages", "stages are"]),
    ("stages_empty", _set(stages=[]), None, ["stages", "at least one of validate"]),
    ("run_name_path", _set(run_name="../../x"), None, ["run_name", "start with a letter or digit"]),
    ("run_name_300_chars", _set(run_name="r" * 300), None, ["run_name", "300 characters", "64 or fewer"]),
    ("run_name_empty", _set(run_name=""), None, ["run_name", "e.g. playoffs-2023"]),
    ("override_without_reason", _set(gate_override=True), None, ["gate_override_reason", "write why"]),
    ("webhook_not_a_url", _set(notify_webhook="hooks.example.com/x"), None, ["notify_webhook", "https://"]),
    ("retry_failed_path", _set(retry_failed="../../x"), None, ["retry_failed", "not a run id"]),
    ("retry_failed_unknown_run", _set(retry_failed="20240101-000000-nope"), None, ["retry_failed", "runbook runs"]),
    ("required_source_typo", _set(required_sources=["bdl_boxscores"]), None, ["required_sources", "may list"]),
    ("edge_threshold_negative", _set(edge_threshold=-1), None, ["edge_threshold", "number of points"]),
    ("refit_days_zero", _set(refit_days=0), None, ["refit_days", "number of days"]),
    ("train_window_too_short", _set(train_window_days=3), None, ["train_window_days", "number of days"]),
    ("demo_scale_unknown", _set(demo={"scale": "huge"}), None, ["demo.scale", "give full or small"]),
    ("demo_key_typo", _set(demo={"sede": 7}), None, ["demo.sede", "unknown key"]),
    ("flag_not_a_bool", _set(backfill_mode="maybe"), None, ["backfill_mode", "give true or false"]),
    ("unknown_kernel", _set(kernel_name="python2"), None, ["kernel_name", "jupyter kernelspec list"]),
    ("waivers_missing", _set(waivers="params/no-such-waivers.yaml"), None, ["waivers", "not found"]),
    ("waivers_invalid", _waivers("waivers:\n  - source: bdl_player_boxscores\n"), None, ["waivers"]),
    ("duckdb_path_typo", _set(duckdb_path="wh.duckbd"), None, ["duckdb_path", "typo", "create_warehouse: true"]),
    ("duckdb_path_folder", _folder_at("duckdb_path"), None, ["duckdb_path", "is a folder", "give the file inside"]),
    ("duckdb_read_only_folder", _readonly_duckdb, None, ["duckdb_path", "folder"]),
    ("duckdb_not_a_database", _file_at("duckdb_path", b"x" * 4096), None, ["duckdb_path", "is not a DuckDB database"]),
    ("duckdb_four_bytes", _file_at("duckdb_path", b"DUCK"), ["status"], ["duckdb_path", "is not a DuckDB database"]),
    ("archive_dir_is_a_file", _file_at("archive_dir"), None, ["archive_dir", "is a file", "e.g. runs"]),
    ("archive_dir_read_only", _set(archive_dir=str(READ_ONLY_DIR / "runs")), None,
     ["archive_dir", "choose a folder you can write to"]),
    ("bucket_missing", _set(bucket="no/such/bucket"), None, ["bucket", "runbook demo"]),
    ("bucket_is_a_file", _file_at("bucket"), None, ["bucket", "is a file, not a folder"]),
    ("run_id_parent_path", None, ["run", "--run-id", "../../x"], ["--run-id", "one folder name inside archive_dir"]),
    ("run_id_absolute", None, ["run", "--run-id", "/tmp/elsewhere"], ["--run-id", "one folder name inside archive_dir"]),
    ("cli_start_date", None, ["run", "--start-date", "2024-02-30"], ["start_date", "YYYY-MM-DD"]),
    ("cli_stage_typo", None, ["run", "--stages", "validate,lod"], ["stages", "stages are"]),
    ("cli_table_typo", None, ["run", "--tables", "nope"], ["tables", "known:"]),
    ("cli_from_typo", None, ["run", "--from", "lod"], ["'lod'", "is not one of"]),
    ("derive_chunk_days_zero", None, ["derive", "--chunk-days", "0"], ["chunk_days", "greater than or equal to 1"]),
    ("load_retry_unknown_run", None, ["load", "--retry-failed", "nope"], ["retry_failed", "no run 'nope'"]),
    ("predict_impossible_date", None, ["predict", "--dates", "2024-02-30"], ["--dates", "YYYY-MM-DD"]),
    ("grade_missing_warehouse", _set(duckdb_path="gone.duckdb"), ["grade"], ["duckdb_path", "no warehouse"]),
    ("gate_missing_waivers", _set(waivers="nope.yaml"), ["gate"], ["waivers", "not found"]),
    ("status_missing_warehouse", _set(duckdb_path="gone.duckdb", create_warehouse=True), ["status"],
     ["duckdb_path", "no warehouse", "runbook demo --build-only"]),
    ("plan_warehouse_is_a_folder", _folder_at("duckdb_path"), ["plan"], ["duckdb_path", "is a folder"]),
    ("why_not_a_database", _file_at("duckdb_path", b"y" * 4096), ["why", "player_game_summary", "2024-01-02"],
     ["duckdb_path", "is not a DuckDB database"]),
    ("demo_archive_dir_is_a_file", _file_at("archive_dir"), ["demo", "--build-only"], ["archive_dir", "is a file"]),
    ("empty_yaml", "empty", None, ["duckdb_path", "no warehouse"]),
    ("params_file_missing", "missing", None, ["params file", "not found", "--params"]),
    ("params_not_yaml", "not_yaml", None, ["params file", "not valid YAML"]),
    ("params_a_list", "a_list", None, ["params file", "must hold a mapping"]),
    # issue 24: encodings, impossible dates a YAML parser builds itself, tables quietly reduced
    ("params_utf16_bom", _params_bytes(lambda t: t.encode("utf-16")), None,
     ["params file", "UTF-16", "save it as UTF-8"]),
    ("params_latin1", _params_bytes(lambda t: (t + "# Pr\xe9-saison 2023\n").encode("latin-1")), None,
     ["params file", "not UTF-8", "line 7", "save it as UTF-8"]),
    ("params_unquoted_impossible_date", _params_bytes(lambda t: (t + "start_date: 2024-02-30\n").encode()), None,
     ["params file", "'2024-02-30' is not a real date", "line 7", "YYYY-MM-DD"]),
    ("waivers_impossible_date", _waiver_bytes(("waivers:\n" + WAIVER + "    dates: [2024-02-30]\n").encode()),
     None, ["waivers", "w.yaml", "'2024-02-30' is not a real date", "line 5"]),
    ("waivers_latin1", _waiver_bytes(("waivers:\n" + WAIVER.replace("jane.doe", "Ren\xe9") + "    dates: [2024-02-27]\n")
                                     .encode("latin-1")), None, ["waivers", "w.yaml", "not UTF-8", "line 4"]),
    ("waivers_empty", _waiver_bytes(b"# to do: the outage dates\n"), None, ["waivers", "w.yaml", "is empty"]),
    ("tables_duplicate", _set(tables=["player_game_summary", "player_game_summary"]), None,
     ["tables", "player_game_summary is listed twice"]),
    ("tables_wrong_dataset", _set(tables=["nba_raw.player_game_summary"]), None,
     ["tables", "player_game_summary is in nba_analytics, not nba_raw"]),
    ("tables_trailing_junk", _set(tables=["player_game_summary; drop"]), None,
     ["tables", "'player_game_summary; drop' is not a table"]),
    ("duckdb_truncated", _damaged_duckdb("truncated"), None, ["duckdb_path", "is damaged", "Could not read"]),
    ("duckdb_garbage_block", _damaged_duckdb("garbage"), ["load"], ["duckdb_path", "is damaged", "checksum"]),
    ("bigquery_suffix_with_sql", _set(backend="bigquery", bigquery={"project": "my-project",
                                                                    "dataset_suffix": "_x`; DROP SCHEMA nba_raw; --"}),
     ["status"], ["bigquery.dataset_suffix", "letters, digits and underscores"]),
    ("resume_set_impossible_date", None, ["resume", "some-run", "--set", "start_date=2024-02-30"],
     ["--set start_date", "'2024-02-30' is not a real date"]),
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _setup(root: Path, mutate) -> Path:
    duckdb.connect(str(root / "wh.duckdb")).close()
    (root / "bucket").mkdir()
    path = root / "params.yaml"
    data = _base(root)
    raw = mutate(root, data) if callable(mutate) else None
    if isinstance(raw, bytes):  # the case writes the params file's bytes itself
        path.write_bytes(raw)
    elif mutate == "empty":
        path.write_text("")
    elif mutate == "missing":
        path = root / "no-such-params.yaml"
    elif mutate == "not_yaml":
        path.write_text("run_name: [unclosed\n")
    elif mutate == "a_list":
        path.write_text("- run_name\n- demo\n")
    else:
        path.write_text(yaml.safe_dump(data))
    return path


def test_the_corpus_has_at_least_forty_kinds():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


def test_the_base_parameters_are_valid(tmp_path):
    path = _setup(tmp_path, None)
    params = build_params(yaml.safe_load(path.read_text()), str(path), tmp_path)
    assert preflight(params, "write", command="run", notebooks=True) is params


@pytest.mark.parametrize("name,mutate,args,words", CASES, ids=[c[0] for c in CASES])
def test_bad_parameters_fail_before_any_work(tmp_path, name, mutate, args, words):
    path = _setup(tmp_path, mutate)
    before = _tree(tmp_path)
    args = args or ["run"]
    result = CliRunner().invoke(main, [*args, "--params", str(path)])
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, f"{name}: exit {result.exit_code}\n{out}\n{result.exception!r}"
    assert "Traceback" not in out
    for w in words:
        assert w in out, f"{name}: {w!r} not in:\n{out}"
    # nothing was started: no archive folder, no warehouse file, no lock file, no file at all
    assert _tree(tmp_path) == before, f"{name}: created {_tree(tmp_path) - before}"
