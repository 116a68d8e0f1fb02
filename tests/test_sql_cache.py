"""The on-disk cache of translated and generated SQL (``nbcore.sqlfiles``, kept by ``nbcore.cachedir``).

A read-only command (``runbook status``) should not import sqlglot to translate text it translated
before; the cache must give back exactly what sqlglot gives, and a changed text must never be
answered with an old translation.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nbcore import sqlfiles

ROOT = Path(__file__).resolve().parents[1]


def _fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_SQL_CACHE", str(tmp_path / "cache"))
    sqlfiles._cache.cache_clear()
    sqlfiles.to_duckdb.cache_clear()


def test_cached_translation_is_sqlglot_s(tmp_path, monkeypatch):
    _fresh(tmp_path, monkeypatch)
    text = sqlfiles.read_sql("state/partition_reads")
    first = sqlfiles.to_duckdb(text)
    assert first == sqlfiles._translate(text)
    sqlfiles.to_duckdb.cache_clear()  # a new process: only the disk remembers
    assert sqlfiles.to_duckdb(text) == first
    assert any(p.name.startswith("duckdb-") for p in (tmp_path / "cache").iterdir())


def test_a_changed_text_is_translated_again(tmp_path, monkeypatch):
    _fresh(tmp_path, monkeypatch)
    a = sqlfiles.to_duckdb("SELECT 1 AS x")
    b = sqlfiles.to_duckdb("SELECT SAFE_DIVIDE(1, 2) AS x")
    assert a != b and b == sqlfiles._translate("SELECT SAFE_DIVIDE(1, 2) AS x")


def test_cache_off_and_unwritable_folder_still_translate(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_SQL_CACHE", "off")
    sqlfiles._cache.cache_clear(), sqlfiles.to_duckdb.cache_clear()
    assert sqlfiles.to_duckdb("SELECT 2 AS y") == sqlfiles._translate("SELECT 2 AS y")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RUNBOOK_SQL_CACHE", str(blocker / "cache"))
    sqlfiles._cache.cache_clear(), sqlfiles.to_duckdb.cache_clear()
    assert sqlfiles.to_duckdb("SELECT 3 AS z") == sqlfiles._translate("SELECT 3 AS z")


def test_generated_statement_cached_equals_generated(tmp_path, monkeypatch):
    _fresh(tmp_path, monkeypatch)
    sqlfiles.read_sql.cache_clear()
    try:
        cached_once = sqlfiles.read_sql("validate/present_games")
        assert cached_once == sqlfiles._generated()["validate/present_games"]()
        sqlfiles.read_sql.cache_clear()
        assert sqlfiles.read_sql("validate/present_games") == cached_once
    finally:
        sqlfiles.read_sql.cache_clear()


def test_warm_cache_state_read_never_imports_sqlglot(tmp_path):
    """In a new process with a warm cache, the state's statement is read and translated without sqlglot."""
    env = {**os.environ, "RUNBOOK_SQL_CACHE": str(tmp_path / "cache")}
    code = ("import sys\nfrom nbcore.sqlfiles import to_duckdb\nfrom nbcore.state import reads_sql\n"
            "to_duckdb(reads_sql())\nprint(any(m == 'sqlglot' or m.startswith('sqlglot.') for m in sys.modules))")
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["True", "False"]
